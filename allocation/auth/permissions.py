"""Who may do what through the API: reads need a login, writes a model permission.

DRF's ``DjangoModelPermissions`` finds the model by calling the view's
``get_queryset()``, which on our list views builds the prefetching queryset
of the list on every request, writes included, only to be asked for its
model. Here the model is the view's class-level ``queryset``'s; the rest is
DRF's public ``perms_map`` and ``get_required_permissions``, and the check is
``user.has_perms`` (answered without a query for a token-authenticated user,
see ``allocation.auth.backends``). A view with no model (the router's API
root) says what guards it with its own ``permission_classes``.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
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

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        return user.has_perms(self.get_required_permissions(request.method, _model_of(view)))


def _model_of(view):
    queryset = getattr(view, "queryset", None)
    if queryset is None and hasattr(view, "get_queryset"):
        queryset = view.get_queryset()
    if queryset is None:
        raise ImproperlyConfigured(
            f"{type(view).__name__} has no queryset: ModelWritePermissions cannot tell "
            "which model's permissions guard it."
        )
    return queryset.model


class CanViewEvents(ModelWritePermissions):
    """The event feed: a logged-in user with ``allocation.view_event`` (SPEC 6.1)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm("allocation.view_event"))


class ModelPermissions(ModelWritePermissions):
    """Reads too need the model's ``view`` permission (webhook subscriptions, SPEC 6.2)."""

    perms_map = {
        **ModelWritePermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }
