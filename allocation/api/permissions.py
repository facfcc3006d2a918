from rest_framework.permissions import DjangoModelPermissions


class ModelWritePermissions(DjangoModelPermissions):
    """Reads need a logged-in user; writes need the model's add/change/delete permission."""

    perms_map = {
        "GET": [],
        "OPTIONS": [],
        "HEAD": [],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }
