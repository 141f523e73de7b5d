"""Who may call the management API, and what each caller may do there.

Two questions, two permission classes:

- ``IsAdminAPICaller``: who is calling. A staff user's session, or a client_credentials token with
  the admin scope whose client is owned (``Client.user``) by an active service account.
- ``HasActionPermissions``: may that *account* do this action. Each viewset maps every action to
  Django model permissions (``required_permissions``), checked with ``user.has_perm`` exactly as
  the Django admin does, so a staff user holds in the API what they hold in the admin, and a
  machine token holds what its service account holds. Superusers hold everything.

Both are set explicitly on every API view, so a site's ``REST_FRAMEWORK`` defaults
(``AllowAny``, ``BasicAuthentication``...) can never loosen them. docs/management-api.md has the
table of actions and permissions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import SuspiciousOperation
from django.utils.translation import gettext_lazy as _
from oauth2_provider.oauth2_backends import get_oauthlib_core
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .. import permissions
from ..conf import settings
from ..models import AccessToken
from ..resource.errors import BearerError, ErrorFormat, InvalidToken
from ..resource.schemes import ResourceProtector, TokenScheme
from ..resource.transport import TokenTransport

REALM = "oauth_server_admin"


class AdminBearer(TokenScheme):
    """Bearer tokens checked in-process by DOT (``verify_request``: checksum lookup, expiry, RFC 8707
    resource, usable client), the database-backed scheme of the management API."""

    name = "Bearer"

    def validate(self, request: Any, token: str, **options: Any) -> tuple[Any, AccessToken]:
        """``(user, token)``: DRF's pair; a machine token's user is anonymous."""
        if not token:
            raise InvalidToken()
        try:
            valid, oauthlib_request = get_oauthlib_core().verify_request(request, scopes=[])
        except (ValueError, SuspiciousOperation):
            valid, oauthlib_request = False, None
        if not valid:
            error = getattr(oauthlib_request, "oauth2_error", None)
            # DOT's error may name no reason: the challenge then carries none either (the body does).
            raise InvalidToken(error.get("error_description", "") if error else None)
        return oauthlib_request.user or AnonymousUser(), oauthlib_request.access_token


# Only the header (a query or body token is left to DOT's gate or ignored); whatever follows
# "Bearer" goes to DOT, so a malformed credential is a 401 invalid_token, not a 400.
ADMIN_PROTECTOR = ResourceProtector(
    [AdminBearer()],
    transport=TokenTransport(header="lenient", query="ignore", body="ignore"),
    fmt=ErrorFormat(realm=REALM, separator=",", escape=True),
)


class AdminBearerAuthentication(BaseAuthentication):
    """``Authorization: Bearer <access token>``, read by the kit, checked by DOT (``AdminBearer``).

    Unlike DOT's class, only the header is read (never a body or query parameter), a presented but
    unusable token is a 401 ``invalid_token`` rather than a fall-through to the session, and the
    request body is not parsed before the caller is authenticated.
    """

    www_authenticate_realm = REALM

    def authenticate(self, request: Request) -> tuple[Any, AccessToken] | None:
        django_request = request._request
        try:
            found = ADMIN_PROTECTOR.authenticate(django_request, optional=True)
        except BearerError as error:
            django_request.bearer_error = error
            raise exceptions.AuthenticationFailed(
                error.description or _("The access token is invalid."), code="invalid_token"
            ) from error
        return found

    def authenticate_header(self, request: Request) -> str:
        return ADMIN_PROTECTOR.challenge(getattr(request._request, "bearer_error", None))


# Bearer first: its challenge is the WWW-Authenticate of a 401. DRF's SessionAuthentication enforces
# CSRF for every unsafe request it authenticates.
AUTHENTICATION_CLASSES = [AdminBearerAuthentication, SessionAuthentication]


def permission_name(model: Any, action: str) -> str:
    """Django's name of a model permission, e.g. ``oauth_server.view_client``."""
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


# Custom permissions (Client.Meta.permissions): powers beyond "change a client", the same rule for
# the admin and the API (oauth_server/permissions.py says why each exists).
MANAGE_TRUSTED_CLIENT = permissions.MANAGE_TRUSTED_CLIENT
ISSUE_CLIENT_SECRET = permissions.ISSUE_CLIENT_SECRET


def api_account(request: Request) -> Any:
    """The user whose Django permissions the request acts with, or None.

    A session: its user. A machine token (client_credentials, no user): the service account that
    owns the token's client (``Client.user``, DOT's ``Application.user``).
    """
    token = request.auth
    if isinstance(token, AccessToken):
        if token.user_id is not None:
            return None
        application = token.application
        return application.user if application is not None and application.user_id else None
    user = request.user
    return user if user and user.is_authenticated else None


def missing_permissions(account: Any, required: Iterable[Sequence[str]]) -> list[str]:
    """The requirements ``account`` does not meet; each is a tuple of alternatives (any one suffices)."""
    missing = []
    for alternatives in required:
        if account is None or not any(account.has_perm(name) for name in alternatives):
            missing.append(" or ".join(alternatives))
    return missing


def permission_denied_message(missing: Sequence[str]) -> str:
    return _("You need the permission %(permissions)s.") % {"permissions": ", ".join(missing)}


class IsAdminAPICaller(BasePermission):
    """A staff user's session, or a machine token (client_credentials) carrying ``ADMIN_API_SCOPE``
    whose client is owned by an active user, the service account whose permissions it acts with.

    Tokens issued to a user are refused even with the scope: a consent click by an ordinary user
    on a misconfigured client must never turn into admin rights. A token of a client without an
    (active) owner has no permissions to act with, so it is refused here with a message saying why.
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
            account = api_account(request)
            if account is None or not account.is_active:
                self.message = _(
                    "The client of this access token has no service account: set its owner (user) to an "
                    "active user holding the management API permissions."
                )
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


class HasActionPermissions(BasePermission):
    """The account (``api_account``) holds the Django permissions the view requires for its action.

    The view's ``required_permissions`` maps each action to a list of requirements, each a tuple of
    permission names of which any one suffices. An action missing from the map is refused (deny by
    default); a request with no action at all (a method the view does not route: 405, or OPTIONS)
    is left to the view.
    """

    message = _("You do not have permission to perform this action.")
    code = "forbidden"

    def has_permission(self, request: Request, view: Any) -> bool:
        action = getattr(view, "action", None)
        if action is None:
            return True
        required: Mapping[str, Sequence[Sequence[str]]] = getattr(view, "required_permissions", {})
        if action not in required:
            return False
        missing = missing_permissions(api_account(request), required[action])
        if missing:
            self.message = permission_denied_message(missing)
            return False
        return True


# Who may call at all (the OpenAPI document and unknown URLs need nothing more).
PERMISSION_CLASSES = [IsAdminAPICaller]
# Every viewset: the caller, then the Django permissions of its action.
MODEL_PERMISSION_CLASSES = [IsAdminAPICaller, HasActionPermissions]
