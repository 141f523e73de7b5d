"""Views of the management API: clients, scopes, users' consents and tokens, and the OpenAPI document.

Every view takes its authentication, permissions, renderers, parsers, pagination, filters and
exception handler from ``AdminAPIMixin``, never from the site's ``REST_FRAMEWORK`` defaults: the
API cannot be opened (or reshaped) by a site-wide setting.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connections, models, transaction
from django.db.models import (
    CharField,
    DateTimeField,
    F,
    PositiveIntegerField,
    Prefetch,
    QuerySet,
    TextField,
    Value,
)
from django.db.models.functions import Coalesce
from django.http import Http404
from django.urls import Resolver404, resolve
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView, set_rollback

from .. import __version__, audit, consent, signals
from ..conf import settings
from ..consent import revoke_consent
from ..models import AccessToken, Client, Consent, GrantType, RefreshToken, Scope
from ..revocation import revoke_grant
from .permissions import (
    AUTHENTICATION_CLASSES,
    ISSUE_CLIENT_SECRET,
    MANAGE_TRUSTED_CLIENT,
    MODEL_PERMISSION_CLASSES,
    PERMISSION_CLASSES,
    api_account,
    missing_permissions,
    permission_denied_message,
    permission_name,
)
from .serializers import (
    TOKEN_TYPES,
    ClientSecretSerializer,
    ClientSerializer,
    ClientWithSecretSerializer,
    ConsentSerializer,
    ErrorSerializer,
    ScopeSerializer,
    TokenSerializer,
)

# --- errors ------------------------------------------------------------------------------------------
# DRF's default codes -> the codes of our JSON errors (OAuth style, as Hydra's admin API).
ERROR_CODES = {
    "invalid": "invalid_request",
    "parse_error": "invalid_request",
    "not_authenticated": "unauthorized",
    "authentication_failed": "unauthorized",
    "permission_denied": "forbidden",
    "throttled": "too_many_requests",
}


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large.")
    default_code = "request_too_large"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error as ``{"error", "error_description"}`` (plus ``errors`` by field on a 400)."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if not isinstance(detail, dict):
            detail = {api_settings.NON_FIELD_ERRORS_KEY: detail if isinstance(detail, list) else [detail]}
        body: dict[str, Any] = {
            "error": "invalid_request",
            "error_description": str(_("The request is invalid: see errors.")),
            "errors": detail,
        }
    else:
        code = getattr(exc.detail, "code", None) or exc.default_code
        body = {"error": ERROR_CODES.get(code, code), "error_description": str(exc.detail)}
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


class AdminPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class AdminAPIMixin:
    """The fixed policy of every API view (see the module docstring)."""

    authentication_classes = AUTHENTICATION_CLASSES
    permission_classes = MODEL_PERMISSION_CLASSES
    # Each viewset maps every action to the Django permissions it needs (HasActionPermissions);
    # an action missing here is refused.
    required_permissions: dict[str, list[tuple[str, ...]]] = {}
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    pagination_class = AdminPagination
    filter_backends: list = []
    versioning_class = None
    schema = AutoSchema()

    def get_exception_handler(self):
        return api_exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # PostgreSQL refuses NUL in text; checked here so it is a 4xx, never a database error.
        if "\x00" in request.path:
            raise exceptions.NotFound()
        if any("\x00" in key + "".join(values) for key, values in request.query_params.lists()):
            raise exceptions.ParseError(_("Query parameters cannot contain NUL characters."))
        limit = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            raise RequestTooLarge()

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        # Admin data (and, once, secrets): never cached by a browser or proxy.
        response["Cache-Control"] = "no-store"
        return response


ERROR_RESPONSES = {
    400: OpenApiResponse(ErrorSerializer, description=_("Invalid request (field errors in errors).")),
    401: OpenApiResponse(ErrorSerializer, description=_("No or invalid credentials.")),
    403: OpenApiResponse(
        ErrorSerializer,
        description=_(
            "Not a staff session or no admin scope, or the account lacks the permission for the action."
        ),
    ),
    404: OpenApiResponse(ErrorSerializer, description=_("Not found.")),
}


def admin_schema(**kwargs: Any):
    """``extend_schema`` built on drf-spectacular's AutoSchema, whatever the site's DEFAULT_SCHEMA_CLASS.

    Without this hint, ``extend_schema`` derives from ``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]``
    (DRF's own by default), which cannot produce OpenAPI 3; the API sets its schema class per view.
    """
    decorate = extend_schema(**kwargs)

    def decorator(function: Any) -> Any:
        function.schema = AutoSchema
        return decorate(function)

    return decorator


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: ERROR_RESPONSES[code] for code in codes}


def _parse_bool(name: str, value: str) -> bool:
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise exceptions.ValidationError({name: [_("Use true or false.")]})


def _pk_or_404(model: type[models.Model], value: str) -> Any:
    """A primary key from the URL, or 404: never a database error for "abc" or 10**30."""
    try:
        return model._meta.pk.clean(value, None)
    except (DjangoValidationError, TypeError, ValueError, OverflowError):
        raise exceptions.NotFound() from None


def model_permissions(model: type[models.Model], **actions: str) -> dict[str, list[tuple[str, ...]]]:
    """``required_permissions`` of a viewset over one model: ``list="view"`` -> ``app.view_model``."""
    return {action: [(permission_name(model, verb),)] for action, verb in actions.items()}


CRUD = {
    "list": "view",
    "retrieve": "view",
    "create": "add",
    "update": "change",
    "partial_update": "change",
    "destroy": "delete",
}


def require(request: Request, *permissions: str) -> None:
    """Refuse (403) unless the caller's account holds every one of ``permissions``."""
    missing = missing_permissions(api_account(request), [(name,) for name in permissions])
    if missing:
        raise exceptions.PermissionDenied(permission_denied_message(missing))


# --- clients -----------------------------------------------------------------------------------------
def filter_clients(queryset: QuerySet, params: Any) -> QuerySet:
    if name := params.get("name"):
        queryset = queryset.filter(name__icontains=name)
    if client_type := params.get("client_type"):
        if client_type not in dict(Client.CLIENT_TYPES):
            raise exceptions.ValidationError({"client_type": [_("Use confidential or public.")]})
        queryset = queryset.filter(client_type=client_type)
    if (enabled := params.get("enabled")) is not None and enabled != "":
        queryset = queryset.filter(is_enabled=_parse_bool("enabled", enabled))
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
    list=admin_schema(
        summary=_("List clients"),
        parameters=CLIENT_LIST_PARAMETERS,
        responses={200: ClientSerializer(many=True), **_errors(400, 401, 403, 404)},
    ),
    create=admin_schema(
        summary=_("Create a client"),
        description=_(
            "The server generates client_id and, for confidential clients, the secret: it is in this "
            "response only."
        ),
        request=ClientSerializer,
        responses={201: ClientWithSecretSerializer, **_errors(400, 401, 403)},
    ),
    retrieve=admin_schema(
        summary=_("Read a client"), responses={200: ClientSerializer, **_errors(401, 403, 404)}
    ),
    update=admin_schema(
        summary=_("Replace a client"),
        description=_(
            "Turning a public client confidential generates a secret, returned in this response only."
        ),
        request=ClientSerializer,
        responses={200: ClientWithSecretSerializer, **_errors(400, 401, 403, 404)},
    ),
    partial_update=admin_schema(
        summary=_("Change a client"),
        request=ClientSerializer,
        responses={200: ClientWithSecretSerializer, **_errors(400, 401, 403, 404)},
    ),
    destroy=admin_schema(
        summary=_("Delete a client"),
        description=_("Its tokens, codes and consents are deleted with it."),
        responses={204: None, **_errors(401, 403, 404)},
    ),
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
        if client is not None and not client.client_secret:
            client_type = data.get("client_type", client.client_type)
            if client_type == Client.CLIENT_CONFIDENTIAL:
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
        responses={200: ClientSecretSerializer, **_errors(400, 401, 403, 404)},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        client = self.get_object()
        if client.skip_consent:
            require(request, MANAGE_TRUSTED_CLIENT)
        if client.client_type != Client.CLIENT_CONFIDENTIAL:
            raise exceptions.ValidationError({"client_type": [_("Public clients have no secret to rotate.")]})
        with transaction.atomic():
            client.new_secret = client.set_secret()
            client.save(update_fields=["client_secret", "updated"])
            transaction.on_commit(lambda: signals.client_secret_rotated.send(sender=Client, client=client))
        return Response(ClientSecretSerializer(client).data)


# --- scopes ------------------------------------------------------------------------------------------
@extend_schema_view(
    list=admin_schema(
        summary=_("List scopes"), responses={200: ScopeSerializer(many=True), **_errors(401, 403, 404)}
    ),
    create=admin_schema(
        summary=_("Create a scope"), responses={201: ScopeSerializer, **_errors(400, 401, 403)}
    ),
    retrieve=admin_schema(
        summary=_("Read a scope"), responses={200: ScopeSerializer, **_errors(401, 403, 404)}
    ),
    update=admin_schema(
        summary=_("Replace a scope (the name cannot change)"),
        responses={200: ScopeSerializer, **_errors(400, 401, 403, 404)},
    ),
    partial_update=admin_schema(
        summary=_("Change a scope (the name cannot change)"),
        responses={200: ScopeSerializer, **_errors(400, 401, 403, 404)},
    ),
    destroy=admin_schema(
        summary=_("Delete a scope"),
        description=_("Clients lose it; refresh tokens stop minting it. Stored consents keep the name."),
        responses={204: None, **_errors(401, 403, 404)},
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


# --- users' consents and tokens ----------------------------------------------------------------------
def user_or_404(user_id: str) -> Any:
    user_model = get_user_model()
    user = user_model._default_manager.filter(pk=_pk_or_404(user_model, user_id)).first()
    if user is None:
        raise exceptions.NotFound(_("No such user."))
    return user


USER_ID = OpenApiParameter(
    "user_id", OpenApiTypes.STR, OpenApiParameter.PATH, description=_("The user's primary key.")
)
CLIENT_ID = OpenApiParameter("client_id", OpenApiTypes.STR, OpenApiParameter.PATH)
TOKEN_TYPE = OpenApiParameter("token_type", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(TOKEN_TYPES))
TOKEN_ID = OpenApiParameter("token_id", OpenApiTypes.INT, OpenApiParameter.PATH)


@extend_schema_view(
    list=admin_schema(
        summary=_("List a user's consents"),
        parameters=[
            USER_ID,
            OpenApiParameter("active", bool, description=_("Only active (or revoked) ones.")),
        ],
        responses={200: ConsentSerializer(many=True), **_errors(400, 401, 403, 404)},
    ),
    retrieve=admin_schema(
        summary=_("Read a user's consent to a client"),
        parameters=[USER_ID, CLIENT_ID],
        responses={200: ConsentSerializer, **_errors(401, 403, 404)},
    ),
    destroy=admin_schema(
        summary=_("Revoke a user's consent to a client"),
        description=_(
            "The user is asked again next time, and every token and unused code the client holds for "
            "the user is revoked. Revoking a revoked consent changes nothing."
        ),
        parameters=[USER_ID, CLIENT_ID],
        responses={204: None, **_errors(401, 403, 404)},
    ),
)
class UserConsentViewSet(
    AdminAPIMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ConsentSerializer
    lookup_field = "client__client_id"
    lookup_url_kwarg = "client_id"
    # Revoking keeps the row (revoked_at): change or delete, as the admin's revoke action.
    required_permissions = {
        **model_permissions(Consent, list="view", retrieve="view"),
        "destroy": [(permission_name(Consent, "change"), permission_name(Consent, "delete"))],
    }

    def get_queryset(self) -> QuerySet:
        user = user_or_404(self.kwargs["user_id"])
        queryset = (
            Consent.objects.filter(user=user).select_related("client", "user").order_by("-updated", "-id")
        )
        if (active := self.request.query_params.get("active")) and self.action == "list":
            queryset = queryset.filter(revoked_at__isnull=_parse_bool("active", active))
        return queryset

    def perform_destroy(self, consent: Consent) -> None:
        if consent.is_active:
            revoke_consent(consent)


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
        responses={200: TokenSerializer(many=True), **_errors(400, 401, 403, 404)},
    ),
    retrieve=admin_schema(
        summary=_("Read one of a user's tokens"),
        parameters=[USER_ID, TOKEN_TYPE, TOKEN_ID],
        responses={200: TokenSerializer, **_errors(401, 403, 404)},
    ),
    destroy=admin_schema(
        summary=_("Revoke one of a user's tokens"),
        description=_(
            "As /oauth/revoke/ does: the token's whole grant (the refresh token family and its access "
            "tokens) is revoked."
        ),
        operation_id="users_tokens_revoke",
        parameters=[USER_ID, TOKEN_TYPE, TOKEN_ID],
        responses={204: None, **_errors(401, 403, 404)},
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
        responses={204: None, **_errors(401, 403, 404)},
    )
    def destroy_all(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        user = self._user()
        revoked = consent.revoke_all_tokens(user=user)
        audit.record(
            audit.Event.TOKEN_REVOKED, request=request, user=user, via="api", scope="all", count=revoked
        )
        return Response(status=204)

    def _token(self) -> AccessToken | RefreshToken:
        user = self._user()
        model = {"access_token": AccessToken, "refresh_token": RefreshToken}.get(self.kwargs["token_type"])
        if model is None:
            raise exceptions.NotFound()
        token = model.objects.filter(user=user, pk=_pk_or_404(model, self.kwargs["token_id"])).first()
        if token is None:
            raise exceptions.NotFound()
        return token

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        token = self._token()
        rows = _access_rows if isinstance(token, AccessToken) else _refresh_rows
        row = rows(type(token).objects.filter(pk=token.pk)).get()
        return Response(TokenSerializer(row).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        token = self._token()
        with transaction.atomic():
            if isinstance(token, AccessToken):
                refresh = RefreshToken.objects.filter(access_token=token).first()
                if refresh is None:
                    token.revoke()
                else:
                    revoke_grant(refresh)
            else:
                revoke_grant(token)
        audit.record(
            audit.Event.TOKEN_REVOKED,
            request=request,
            user=token.user,
            client=token.application,
            via="api",
            token_type="access_token" if isinstance(token, AccessToken) else "refresh_token",
        )
        return Response(status=204)


# --- anything else under the API, and the OpenAPI document ---------------------------------------------
class NotFoundView(AdminAPIMixin, APIView):
    """Unknown URLs under the API: a JSON 404 (after authentication), not the site's HTML page."""

    schema = None
    permission_classes = PERMISSION_CLASSES

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        detail = _("Not found.")
        if not request.path.endswith("/"):
            try:
                resolve(request.path + "/")
                detail = _("Not found. API URLs end with a slash: %(path)s/") % {"path": request.path}
            except Resolver404:
                pass
        raise exceptions.NotFound(detail)


class AdminBearerScheme(OpenApiAuthenticationExtension):
    """The bearer authentication in the OpenAPI document: a client_credentials token with the admin scope."""

    target_class = "oauth_server.api.permissions.AdminBearerAuthentication"
    name = "adminToken"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        from django.urls import reverse

        token_url = reverse("oauth2_provider:token")
        request = getattr(auto_schema.view, "request", None)
        if request is not None:
            token_url = request.build_absolute_uri(token_url)
        return {
            "type": "oauth2",
            "description": str(
                _("An access token from the client_credentials grant, sent as Authorization: Bearer.")
            ),
            "flows": {
                "clientCredentials": {
                    "tokenUrl": token_url,
                    "scopes": {settings.ADMIN_API_SCOPE: str(_("Use the management API"))},
                }
            },
        }

    def get_security_requirement(self, auto_schema: AutoSchema) -> dict[str, list[str]]:
        return {self.name: [settings.ADMIN_API_SCOPE]}


SCHEMA_SETTINGS = {
    "TITLE": "oauth_server management API",
    "DESCRIPTION": "Clients, scopes, and users' consents and tokens. See docs/management-api.md.",
    "VERSION": __version__,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"TokenTypeEnum": "oauth_server.api.serializers.TOKEN_TYPES"},
}


class SchemaView(SpectacularAPIView):
    """The OpenAPI 3 document of this API, behind the API's own authentication (see the docs).

    Generated from this API's URL patterns only (``patterns``, set in urls.py), so other DRF views of
    the site never appear in it; ``servers`` is where the API is mounted.
    """

    authentication_classes = AUTHENTICATION_CLASSES
    permission_classes = PERMISSION_CLASSES
    renderer_classes = [OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2]
    versioning_class = None
    serve_public = True
    custom_settings = SCHEMA_SETTINGS
    schema = None

    def get_exception_handler(self):
        return api_exception_handler

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        # Errors are JSON like the rest of the API, not an "OpenAPI document" media type.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        root = request.path.rsplit("/schema/", 1)[0]
        response.data["servers"] = [{"url": request.build_absolute_uri(root)}]
        return response

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response
