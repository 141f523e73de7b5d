"""The management API's error format: every error as ``{"error", "error_description"}``.

Set per view (``AdminAPIMixin.get_exception_handler``, ``SchemaView``), never through the site's
``REST_FRAMEWORK["EXCEPTION_HANDLER"]``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import set_rollback

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
