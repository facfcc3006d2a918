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

    def _queryset(self, view):
        # Only the model matters here. The view's class-level queryset names
        # it; get_queryset() would build the list's prefetching queryset on
        # every request, writes included, just to be asked for its model.
        if getattr(view, "queryset", None) is not None:
            return view.queryset
        return super()._queryset(view)
