"""What every view of the management API shares.

Every view takes its authentication, permissions, renderers, parsers, pagination, filters and
exception handler from ``AdminAPIMixin``, never from the site's ``REST_FRAMEWORK`` defaults: the
API cannot be opened (or reshaped) by a site-wide setting. Also here: the helpers that turn URL
and query parameters into 4xx answers, the permission table builders, and the JSON 404 for
anything else under the API.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.urls import Resolver404, resolve
from django.utils.translation import gettext_lazy as _
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..errors import RequestTooLarge, api_exception_handler
from ..pagination import AdminPagination
from ..permissions import (
    AUTHENTICATION_CLASSES,
    MODEL_PERMISSION_CLASSES,
    PERMISSION_CLASSES,
    api_account,
    missing_permissions,
    permission_denied_message,
    permission_name,
)


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


def parse_bool(name: str, value: str) -> bool:
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise exceptions.ValidationError({name: [_("Use true or false.")]})


def pk_or_404(model: type[models.Model], value: str) -> Any:
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


# --- users' consents and tokens: the user of the URL ----------------------------------------------
def user_or_404(user_id: str) -> Any:
    user_model = get_user_model()
    user = user_model._default_manager.filter(pk=pk_or_404(user_model, user_id)).first()
    if user is None:
        raise exceptions.NotFound(_("No such user."))
    return user


USER_ID = OpenApiParameter(
    "user_id", OpenApiTypes.STR, OpenApiParameter.PATH, description=_("The user's primary key.")
)


# --- anything else under the API -----------------------------------------------------------------------
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
