"""Who may call the management API: a staff session, or a client_credentials token with the admin scope.

Both classes are set explicitly on every API view, so a site's ``REST_FRAMEWORK`` defaults
(``AllowAny``, ``BasicAuthentication``...) can never loosen them.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import SuspiciousOperation
from django.utils.translation import gettext_lazy as _
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauth2_provider.www_authenticate import build_bearer_challenge
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from ..conf import settings
from ..models import AccessToken

REALM = "oauth_server_admin"


class AdminBearerAuthentication(OAuth2Authentication):
    """``Authorization: Bearer <access token>``, checked in-process by DOT (checksum lookup).

    Unlike DOT's class, only the header is read (never a body or query parameter), a presented but
    unusable token is a 401 ``invalid_token`` rather than a fall-through to the session, and the
    request body is not parsed before the caller is authenticated.
    """

    www_authenticate_realm = REALM

    def authenticate(self, request: Request) -> tuple[Any, AccessToken] | None:
        scheme, _sep, credentials = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        django_request = request._request
        error = {"error": "invalid_token", "error_description": "The access token is invalid."}
        if not credentials.strip():
            django_request.oauth2_error = error
            raise exceptions.AuthenticationFailed(_("The access token is invalid."), code="invalid_token")
        try:
            valid, oauthlib_request = get_oauthlib_core().verify_request(django_request, scopes=[])
        except (ValueError, SuspiciousOperation):
            valid, oauthlib_request = False, None
        if not valid:
            django_request.oauth2_error = getattr(oauthlib_request, "oauth2_error", None) or error
            description = django_request.oauth2_error.get("error_description") or error["error_description"]
            raise exceptions.AuthenticationFailed(description, code="invalid_token")
        return oauthlib_request.user or AnonymousUser(), oauthlib_request.access_token

    def authenticate_header(self, request: Request) -> str:
        return build_bearer_challenge(
            request,
            oauth2_error=getattr(request._request, "oauth2_error", None),
            realm=self.www_authenticate_realm,
            resource_metadata_url=None,
        )


# Bearer first: its challenge is the WWW-Authenticate of a 401. DRF's SessionAuthentication enforces
# CSRF for every unsafe request it authenticates.
AUTHENTICATION_CLASSES = [AdminBearerAuthentication, SessionAuthentication]


class IsAdminAPICaller(BasePermission):
    """A staff user's session, or a machine token (client_credentials) carrying ``ADMIN_API_SCOPE``.

    Tokens issued to a user are refused even with the scope: a consent click by an ordinary user
    on a misconfigured client must never turn into admin rights.
    """

    message = _("You do not have permission to use the management API.")
    code = "forbidden"

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if isinstance(token, AccessToken):
            scope = settings.ADMIN_API_SCOPE
            if token.user_id is not None:
                self.message = _("Only client_credentials access tokens may use the management API.")
                return False
            if not token.is_valid([scope]):
                self.code = "insufficient_scope"
                self.message = _("The access token lacks the %(scope)s scope.") % {"scope": scope}
                return False
            return True
        user = request.user
        return bool(
            isinstance(request.successful_authenticator, SessionAuthentication)
            and user
            and user.is_authenticated
            and user.is_active
            and user.is_staff
        )


PERMISSION_CLASSES = [IsAdminAPICaller]
