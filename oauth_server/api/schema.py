"""The management API's OpenAPI plumbing: the error responses and ``admin_schema`` the viewsets use,
the bearer scheme, and the view that serves the document.

The viewsets (``views/``) import from here; this module imports no viewset (urls.py gives
``SchemaView`` the API's URL patterns).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from .. import __version__
from ..conf import settings
from .errors import api_exception_handler
from .permissions import AUTHENTICATION_CLASSES, PERMISSION_CLASSES
from .serializers import ErrorSerializer

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


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: ERROR_RESPONSES[code] for code in codes}


# A model viewset's actions: the success status and the errors each can answer.
CRUD_RESPONSES = {
    "list": (200, (401, 403, 404)),
    "create": (201, (400, 401, 403)),
    "retrieve": (200, (401, 403, 404)),
    "update": (200, (400, 401, 403, 404)),
    "partial_update": (200, (400, 401, 403, 404)),
    "destroy": (204, (401, 403, 404)),
}


def crud_schema(
    serializer: type,
    *,
    summaries: dict[str, Any],
    descriptions: dict[str, Any] | None = None,
    list_parameters: list[Any] | None = None,
    written: type | None = None,
) -> dict[str, Any]:
    """``extend_schema_view`` arguments for a ``ModelViewSet``: one place for the statuses and errors
    of its six actions, so each viewset states only its words.

    ``summaries`` and ``descriptions`` are per action; a list with ``list_parameters`` (filters)
    can also answer 400. ``written`` is the response of create and update when it differs from
    ``serializer`` (a client's response carries a new secret); the request is then ``serializer``.
    """
    descriptions = descriptions or {}
    schemas = {}
    for name, (status, errors) in CRUD_RESPONSES.items():
        kwargs: dict[str, Any] = {"summary": summaries[name]}
        if name in descriptions:
            kwargs["description"] = descriptions[name]
        if name == "list":
            body: Any = serializer(many=True)
            if list_parameters:
                kwargs["parameters"] = list_parameters
                errors = (400, *errors)
        elif name == "destroy":
            body = None
        elif name in ("create", "update", "partial_update") and written is not None:
            kwargs["request"] = serializer
            body = written
        else:
            body = serializer
        kwargs["responses"] = {status: body, **error_responses(*errors)}
        schemas[name] = admin_schema(**kwargs)
    return schemas


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
