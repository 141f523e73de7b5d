"""``/users/<id>/tokens/``: list, read and revoke a user's access and refresh tokens, or all of them."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import CharField, DateTimeField, F, PositiveIntegerField, QuerySet, TextField, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_view
from rest_framework import exceptions, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from ...flows import tokens as token_flows
from ...models import AccessToken, RefreshToken
from ..permissions import permission_name
from ..schema import admin_schema, error_responses
from ..serializers import TOKEN_TYPES, TokenSerializer
from .base import USER_ID, AdminAPIMixin, pk_or_404, user_or_404

TOKEN_TYPE = OpenApiParameter("token_type", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(TOKEN_TYPES))
TOKEN_ID = OpenApiParameter("token_id", OpenApiTypes.INT, OpenApiParameter.PATH)


def _access_rows(queryset: QuerySet) -> QuerySet:
    """Access tokens as rows of the token list (every column an expression, so a UNION lines up)."""
    return queryset.values(
        t_type=Value("access_token", output_field=CharField()),
        t_id=F("id"),
        t_client_id=F("application__client_id"),
        t_scope=F("scope"),
        t_created=F("created"),
        t_expires=F("expires"),
        t_revoked=Value(None, output_field=DateTimeField()),
        t_rt_lifetime=Value(None, output_field=PositiveIntegerField()),
    )


def _refresh_rows(queryset: QuerySet) -> QuerySet:
    return queryset.values(
        t_type=Value("refresh_token", output_field=CharField()),
        t_id=F("id"),
        t_client_id=F("application__client_id"),
        t_scope=Coalesce(F("access_token__scope"), Value(""), output_field=TextField()),
        t_created=F("created"),
        t_expires=Value(None, output_field=DateTimeField()),
        t_revoked=F("revoked"),
        t_rt_lifetime=F("application__refresh_token_lifetime"),
    )


def _revoke_permissions(*token_models: type[models.Model]) -> list[tuple[str, ...]]:
    # Revoking deletes access tokens and marks refresh tokens: change or delete of each model, as
    # the admin's revoke actions.
    return [(permission_name(m, "change"), permission_name(m, "delete")) for m in token_models]


TOKEN_LIST_PARAMETERS = [
    USER_ID,
    OpenApiParameter("client_id", str, description=_("Only this client's tokens.")),
    OpenApiParameter("type", str, enum=list(TOKEN_TYPES)),
]


@extend_schema_view(
    list=admin_schema(
        summary=_("List a user's tokens"),
        description=_("Access and refresh tokens, newest first; never their values or checksums."),
        parameters=TOKEN_LIST_PARAMETERS,
        responses={200: TokenSerializer(many=True), **error_responses(400, 401, 403, 404)},
    ),
    retrieve=admin_schema(
        summary=_("Read one of a user's tokens"),
        parameters=[USER_ID, TOKEN_TYPE, TOKEN_ID],
        responses={200: TokenSerializer, **error_responses(401, 403, 404)},
    ),
    destroy=admin_schema(
        summary=_("Revoke one of a user's tokens"),
        description=_(
            "As /oauth/revoke/ does: the token's whole grant (the refresh token family and its access "
            "tokens) is revoked."
        ),
        operation_id="users_tokens_revoke",
        parameters=[USER_ID, TOKEN_TYPE, TOKEN_ID],
        responses={204: None, **error_responses(401, 403, 404)},
    ),
)
class UserTokenViewSet(AdminAPIMixin, viewsets.GenericViewSet):
    serializer_class = TokenSerializer
    # One list holds both kinds of token, and a revocation reaches both (the whole grant).
    required_permissions = {
        "list": [(permission_name(AccessToken, "view"),), (permission_name(RefreshToken, "view"),)],
        "retrieve": [(permission_name(AccessToken, "view"),), (permission_name(RefreshToken, "view"),)],
        "destroy": _revoke_permissions(AccessToken, RefreshToken),
        "destroy_all": _revoke_permissions(AccessToken, RefreshToken),
    }

    def _user(self) -> Any:
        return user_or_404(self.kwargs["user_id"])

    def get_queryset(self) -> QuerySet:
        user = self._user()
        params = self.request.query_params
        kind = params.get("type")
        if kind and kind not in TOKEN_TYPES:
            raise exceptions.ValidationError({"type": [_("Use access_token or refresh_token.")]})
        access = AccessToken.objects.filter(user=user)
        refresh = RefreshToken.objects.filter(user=user)
        if client_id := params.get("client_id"):
            access = access.filter(application__client_id=client_id)
            refresh = refresh.filter(application__client_id=client_id)
        if kind == "access_token":
            rows = _access_rows(access)
        elif kind == "refresh_token":
            rows = _refresh_rows(refresh)
        else:
            rows = _access_rows(access).union(_refresh_rows(refresh), all=True)
        return rows.order_by("-t_created", "t_type", "-t_id")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(TokenSerializer(page, many=True).data)

    @admin_schema(
        summary=_("Revoke all of a user's tokens"),
        description=_(
            "Log out everywhere: every refresh token is revoked, access tokens and unused codes are "
            "deleted. Consents stay."
        ),
        operation_id="users_tokens_revoke_all",
        parameters=[USER_ID],
        responses={204: None, **error_responses(401, 403, 404)},
    )
    def destroy_all(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        token_flows.revoke_user_tokens(self._user(), via="api", request=request)
        return Response(status=204)

    def _token(self) -> AccessToken | RefreshToken:
        user = self._user()
        model = {"access_token": AccessToken, "refresh_token": RefreshToken}.get(self.kwargs["token_type"])
        if model is None:
            raise exceptions.NotFound()
        token = model.objects.filter(user=user, pk=pk_or_404(model, self.kwargs["token_id"])).first()
        if token is None:
            raise exceptions.NotFound()
        return token

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        token = self._token()
        rows = _access_rows if isinstance(token, AccessToken) else _refresh_rows
        row = rows(type(token).objects.filter(pk=token.pk)).get()
        return Response(TokenSerializer(row).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        token_flows.revoke_token(self._token(), via="api", request=request)
        return Response(status=204)
