"""``/scopes/``: list, create, read, change, delete scopes."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_view
from rest_framework import exceptions, viewsets

from ...models import Scope
from ..schema import crud_schema
from ..serializers import ScopeSerializer
from .base import CRUD, AdminAPIMixin, model_permissions


@extend_schema_view(
    **crud_schema(
        ScopeSerializer,
        summaries={
            "list": _("List scopes"),
            "create": _("Create a scope"),
            "retrieve": _("Read a scope"),
            "update": _("Replace a scope (the name cannot change)"),
            "partial_update": _("Change a scope (the name cannot change)"),
            "destroy": _("Delete a scope"),
        },
        descriptions={
            "destroy": _("Clients lose it; refresh tokens stop minting it. Stored consents keep the name.")
        },
    )
)
class ScopeViewSet(AdminAPIMixin, viewsets.ModelViewSet):
    serializer_class = ScopeSerializer
    queryset = Scope.objects.order_by("name")
    lookup_field = "name"
    # Scope names are printable ASCII and may contain "/" (RFC 6749 3.3).
    lookup_value_regex = ".+"
    required_permissions = model_permissions(Scope, **CRUD)

    def perform_create(self, serializer: ScopeSerializer) -> None:
        try:
            with transaction.atomic():
                serializer.save()
        except IntegrityError:  # a concurrent create of the same name
            raise exceptions.ValidationError(
                {"name": [_("A scope with this name already exists.")]}
            ) from None
