"""``/scopes/``: list, create, read, change, delete scopes."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_view
from rest_framework import exceptions, viewsets

from ...models import Scope
from ..schema import admin_schema, error_responses
from ..serializers import ScopeSerializer
from .base import CRUD, AdminAPIMixin, model_permissions


@extend_schema_view(
    list=admin_schema(
        summary=_("List scopes"),
        responses={200: ScopeSerializer(many=True), **error_responses(401, 403, 404)},
    ),
    create=admin_schema(
        summary=_("Create a scope"), responses={201: ScopeSerializer, **error_responses(400, 401, 403)}
    ),
    retrieve=admin_schema(
        summary=_("Read a scope"), responses={200: ScopeSerializer, **error_responses(401, 403, 404)}
    ),
    update=admin_schema(
        summary=_("Replace a scope (the name cannot change)"),
        responses={200: ScopeSerializer, **error_responses(400, 401, 403, 404)},
    ),
    partial_update=admin_schema(
        summary=_("Change a scope (the name cannot change)"),
        responses={200: ScopeSerializer, **error_responses(400, 401, 403, 404)},
    ),
    destroy=admin_schema(
        summary=_("Delete a scope"),
        description=_("Clients lose it; refresh tokens stop minting it. Stored consents keep the name."),
        responses={204: None, **error_responses(401, 403, 404)},
    ),
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
