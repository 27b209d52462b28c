"""Django model permissions, enforced per role (oms/roles.py), reads included.

DRF's DjangoModelPermissions lets any authenticated user read; here reading needs the model's
view permission too, and each life-cycle action names the custom permission it needs
(`action_permissions` on the view), e.g. confirming an order needs orders.transition_order.
"""

from __future__ import annotations

from rest_framework.permissions import DjangoModelPermissions


class RolePermissions(DjangoModelPermissions):
    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        required = getattr(view, "action_permissions", {}).get(getattr(view, "action", None))
        if required is not None:
            return user.has_perms(required)
        return super().has_permission(request, view)
