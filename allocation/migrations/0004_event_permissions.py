"""Reading events (the feed, the admin's Events page) needs ``view_event``:
both groups of 0002 get it. As in 0002, the permission is created first, since
the post_migrate signal that normally does it runs only after every migration.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = ("warehouse ops", "viewer")


def grant(apps, schema_editor):
    using = schema_editor.connection.alias
    app_config = apps.get_app_config("allocation")
    # Historical app configs have no models module (see 0002).
    models_module = getattr(app_config, "models_module", None)
    app_config.models_module = models_module or True
    try:
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
    finally:
        app_config.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view_event = Permission.objects.using(using).get(
        content_type__app_label="allocation", codename="view_event"
    )
    for group in Group.objects.using(using).filter(name__in=GROUPS):
        group.permissions.add(view_event)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    using = schema_editor.connection.alias
    for group in Group.objects.using(using).filter(name__in=GROUPS):
        group.permissions.remove(
            *Permission.objects.using(using).filter(
                content_type__app_label="allocation", codename="view_event"
            )
        )


class Migration(migrations.Migration):
    dependencies = [("allocation", "0003_events")]

    operations = [migrations.RunPython(grant, revoke)]
