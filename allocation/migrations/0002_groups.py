"""The two groups ops need out of the box: ``warehouse ops`` and ``viewer``.

Permissions are normally created by a post_migrate signal, i.e. only after
every migration has run, so on a fresh database they do not exist yet when
this migration runs. It creates them first (Django's own
``create_permissions``, against the historical models), then the groups.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = {
    "warehouse ops": [
        "view_batch",
        "add_batch",
        "change_batch",
        "delete_batch",
        "view_orderline",
        "delete_orderline",
    ],
    "viewer": ["view_batch", "view_orderline"],
}


def create_groups(apps, schema_editor):
    using = schema_editor.connection.alias
    app_config = apps.get_app_config("allocation")
    # Historical app configs have no models module, which create_permissions
    # takes to mean "no models here"; mark it for the duration of the call.
    models_module = getattr(app_config, "models_module", None)
    app_config.models_module = models_module or True
    try:
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
    finally:
        app_config.models_module = models_module

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.using(using).get_or_create(name=name)
        permissions = Permission.objects.using(using).filter(
            content_type__app_label="allocation", codename__in=codenames
        )
        group.permissions.set(permissions)


def delete_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("allocation", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, delete_groups)]
