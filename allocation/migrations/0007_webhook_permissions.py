"""Webhook subscriptions' permissions for the groups of 0002: ``warehouse ops`` manage
them (view, add, change for pause/resume, delete), ``viewer`` may only look. As in
0004, the permissions are created first: post_migrate, which normally does it, runs
only after every migration.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = {
    "warehouse ops": [
        "view_webhooksubscription",
        "add_webhooksubscription",
        "change_webhooksubscription",
        "delete_webhooksubscription",
    ],
    "viewer": ["view_webhooksubscription"],
}


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
    for name, codenames in GROUPS.items():
        permissions = Permission.objects.using(using).filter(
            content_type__app_label="allocation", codename__in=codenames
        )
        for group in Group.objects.using(using).filter(name=name):
            group.permissions.add(*permissions)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    using = schema_editor.connection.alias
    for name, codenames in GROUPS.items():
        permissions = Permission.objects.using(using).filter(
            content_type__app_label="allocation", codename__in=codenames
        )
        for group in Group.objects.using(using).filter(name=name):
            group.permissions.remove(*permissions)


class Migration(migrations.Migration):
    dependencies = [("allocation", "0006_webhook_subscriptions")]

    operations = [migrations.RunPython(grant, revoke)]
