"""``/clients/``: list, create, read, change, delete clients, and rotate a client's secret."""

from __future__ import annotations

from typing import Any

from django.db import connections
from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema_view
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ... import client_auth
from ...flows import clients as client_flows
from ...models import Client, GrantType, Scope
from ..permissions import ISSUE_CLIENT_SECRET, MANAGE_TRUSTED_CLIENT, permission_name
from ..schema import admin_schema, crud_schema, error_responses
from ..serializers import ClientSecretSerializer, ClientSerializer, ClientWithSecretSerializer
from .base import CRUD, AdminAPIMixin, model_permissions, parse_bool, require


def filter_clients(queryset: QuerySet, params: Any) -> QuerySet:
    if name := params.get("name"):
        queryset = queryset.filter(name__icontains=name)
    if client_type := params.get("client_type"):
        if client_type not in dict(Client.CLIENT_TYPES):
            raise exceptions.ValidationError({"client_type": [_("Use confidential or public.")]})
        queryset = queryset.filter(client_type=client_type)
    if (enabled := params.get("enabled")) is not None and enabled != "":
        queryset = queryset.filter(is_enabled=parse_bool("enabled", enabled))
    if grant_type := params.get("grant_type"):
        if grant_type not in GrantType.values:
            raise exceptions.ValidationError(
                {"grant_type": [_("Use one of: %s.") % ", ".join(GrantType.values)]}
            )
        if connections[queryset.db].features.supports_json_field_contains:
            queryset = queryset.filter(grant_types__contains=[grant_type])
        else:
            # SQLite cannot search JSON lists; the client table is small, so filter the ids here.
            ids = [
                pk for pk, grants in queryset.values_list("pk", "grant_types") if grant_type in (grants or [])
            ]
            queryset = queryset.filter(pk__in=ids)
    return queryset


CLIENT_LIST_PARAMETERS = [
    OpenApiParameter("name", str, description=_("Name contains (case-insensitive).")),
    OpenApiParameter("grant_type", str, enum=GrantType.values),
    OpenApiParameter("client_type", str, enum=[Client.CLIENT_CONFIDENTIAL, Client.CLIENT_PUBLIC]),
    OpenApiParameter("enabled", bool),
]


@extend_schema_view(
    **crud_schema(
        ClientSerializer,
        written=ClientWithSecretSerializer,
        list_parameters=CLIENT_LIST_PARAMETERS,
        summaries={
            "list": _("List clients"),
            "create": _("Create a client"),
            "retrieve": _("Read a client"),
            "update": _("Replace a client"),
            "partial_update": _("Change a client"),
            "destroy": _("Delete a client"),
        },
        descriptions={
            "create": _(
                "The server generates client_id and, for confidential clients, the secret: it is in "
                "this response only."
            ),
            "update": _(
                "Turning a public client confidential generates a secret, returned in this response only."
            ),
            "destroy": _("Its tokens, codes and consents are deleted with it."),
        },
    )
)
class ClientViewSet(AdminAPIMixin, viewsets.ModelViewSet):
    serializer_class = ClientSerializer
    lookup_field = "client_id"
    lookup_value_regex = "[^/]+"
    # skip_consent and secrets of existing clients need more: see check_client_write and rotate_secret.
    required_permissions = {
        **model_permissions(Client, **CRUD),
        "rotate_secret": [(permission_name(Client, "change"),), (ISSUE_CLIENT_SECRET,)],
    }

    def get_queryset(self) -> QuerySet:
        queryset = Client.objects.prefetch_related(
            Prefetch("allowed_scopes", queryset=Scope.objects.only("id", "name"))
        ).order_by("name", "id")
        if self.action == "list":
            queryset = filter_clients(queryset, self.request.query_params)
        return queryset

    def check_client_write(self, request: Request, client: Client | None, data: dict[str, Any]) -> None:
        """The powers beyond add/change: a client that skips consent, a new secret for a client.

        Checked after validation and before anything is saved. A client that skips consent gets
        codes for any user without asking; changing any of its fields (say a redirect URI) is as
        strong as setting the flag. A secret given to an existing client (public -> confidential)
        lets whoever reads it act as that client. A new client's first secret needs only add.
        """
        skips = data.get("skip_consent", client.skip_consent if client is not None else False)
        if skips or (client is not None and client.skip_consent):
            require(request, MANAGE_TRUSTED_CLIENT)
        # Token exchange impersonation: tokens indistinguishable from the user's own (RFC 8693 1.1).
        if data.get("token_exchange_impersonation") and not (
            client is not None and client.token_exchange_impersonation
        ):
            require(request, MANAGE_TRUSTED_CLIENT)
        if client is not None and not client.client_secret:
            client_type = data.get("client_type", client.client_type)
            if client_type == Client.CLIENT_CONFIDENTIAL:
                require(request, ISSUE_CLIENT_SECRET)
        if client is not None and not client.encrypted_client_secret:
            # Switching to client_secret_jwt issues a new secret: the stored hash cannot key an HMAC.
            method = client_auth.registry.get(
                data.get("token_endpoint_auth_method") or client.token_endpoint_auth_method
            )
            if method is not None and method.secret_kept_encrypted:
                require(request, ISSUE_CLIENT_SECRET)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ClientSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.check_client_write(request, None, serializer.validated_data)
        client = serializer.save()
        location = request.build_absolute_uri(f"{client.client_id}/")
        return Response(ClientWithSecretSerializer(client).data, status=201, headers={"Location": location})

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        client = self.get_object()
        serializer = ClientSerializer(client, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        self.check_client_write(request, client, serializer.validated_data)
        client = serializer.save()
        client._prefetched_objects_cache = {}
        response_serializer = ClientWithSecretSerializer if client.new_secret else ClientSerializer
        return Response(response_serializer(client).data)

    @admin_schema(
        summary=_("Rotate a client's secret"),
        description=_(
            "The old secret stops working at once; issued tokens are left alone. The new secret is in "
            "this response only. Sends oauth_server.signals.client_secret_rotated."
        ),
        request=None,
        responses={200: ClientSecretSerializer, **error_responses(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        client = self.get_object()
        if client.skip_consent:
            require(request, MANAGE_TRUSTED_CLIENT)
        if client.client_type != Client.CLIENT_CONFIDENTIAL:
            raise exceptions.ValidationError({"client_type": [_("Public clients have no secret to rotate.")]})
        if not client.uses_secret:
            raise exceptions.ValidationError(
                {
                    "token_endpoint_auth_method": [
                        _("This client authenticates with its keys: it has no secret.")
                    ]
                }
            )
        client.new_secret = client_flows.rotate_secret(client)
        return Response(ClientSecretSerializer(client).data)
