"""The UserInfo endpoint (OIDC Core 5.3) as an RFC 6750 protected resource.

DOT's view hands the request to oauthlib, which takes the token from the header, the body *or
the query string* (the BCP transport gate only guards ``verify_request``), uses two methods at
once without complaint, and answers every failure with a bare ``invalid_token``. This view reads
the token itself, strictly:

- ``Authorization: Bearer`` (GET or POST), or ``access_token`` in a form-encoded POST body
  (RFC 6750 2.1, 2.2); never the query string (RFC 6750 5.3, RFC 9700 4.3.2);
- no token: 401 with a bare ``Bearer`` challenge (RFC 6750 3.1, no error code); more than one
  token, a repeated or malformed one: 400 ``invalid_request``; a token that is unknown, expired,
  revoked, of a disabled client or of an inactive user: 401 ``invalid_token``; a valid token
  without ``openid`` or without an end-user: 403 ``insufficient_scope``.

The claims are the validator's ``get_userinfo_claims`` (``sub``, the standard claims the token's
scopes release, the site's USERINFO hook), so they match the ID token's.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views as dot_views
from oauth2_provider.compat import login_not_required
from oauthlib.common import Request as OAuthlibRequest

from .. import dpop
from ..claims import loaded_subject, subject_for
from ..conf import settings
from ..lookups import ACCESS_TOKEN_BY_CHECKSUM
from ..models import AccessToken
from ..resource import dpop as core_dpop
from ..resource.errors import BearerError, ErrorFormat, InsufficientScope, InvalidToken
from ..resource.schemes import BOUND_AS_BEARER, DPoPScheme, ResourceProtector, TokenScheme
from ..resource.transport import TokenTransport
from ..tokens import token_checksum
from .introspection import no_store

# RFC 6750 2.1 and 2.2 (header or form body), never the query string; checked before anything else.
TRANSPORT = TokenTransport(
    header="strict",
    query="refuse",
    query_first=True,
    body="accept",
    malformed_header=gettext_lazy("The Authorization header is not a valid Bearer credential."),
    in_query=gettext_lazy("Access tokens are not accepted in the URL query; send them in a header."),
    more_than_one=gettext_lazy("Send the access token once, by one method only."),
    body_not_form=gettext_lazy("An access token in the body must be sent form-encoded (RFC 6750 2.2)."),
    unreadable_body=gettext_lazy("The request body could not be read."),
    missing=gettext_lazy("This endpoint requires an access token."),
)
# No realm, a bare "Bearer" for a missing token (whose body has no error member), quoted-string escaping.
FORMAT = ErrorFormat(realm=None, escape=True, missing_token_error=None)


def load_access_token(value: str) -> AccessToken:
    """The usable database row of ``value`` for UserInfo, or the RFC 6750 refusal."""
    token = ACCESS_TOKEN_BY_CHECKSUM.first(checksum=token_checksum(value))
    if token is None:
        raise InvalidToken(_("The access token is invalid."))
    if token.is_expired():
        raise InvalidToken(_("The access token has expired."))
    if not token.is_valid():  # disabled client or inactive user: say no more than "invalid"
        raise InvalidToken(_("The access token is invalid."))
    if token.user is None:
        raise InsufficientScope(_("The access token was not issued for an end-user."), scopes=["openid"])
    if "openid" not in token.scope.split():
        raise InsufficientScope(_("The access token does not carry the openid scope."), scopes=["openid"])
    return token


class UserInfoBearer(TokenScheme):
    """Bearer tokens checked against the provider's table (any format: JWT or opaque); a DPoP-bound
    token is refused as Bearer (RFC 9449 7.2)."""

    name = "Bearer"

    def validate(self, request: Any, token: str, **options: Any) -> AccessToken:
        row = load_access_token(token)
        if row.dpop_jkt:
            raise InvalidToken(BOUND_AS_BEARER)
        return row


class UserInfoDPoP(DPoPScheme):
    """DPoP-bound tokens (RFC 9449 7) checked against the provider's table, with the provider's
    DPoP settings (algorithms, nonces) and its shared replay cache."""

    def enabled(self) -> bool:
        return True

    def algorithms(self) -> list[str]:
        return dpop.algorithms()

    def load(self, request: Any, token: str, **options: Any) -> tuple[AccessToken, str | None]:
        row = load_access_token(token)
        return row, row.dpop_jkt or None

    def urls(self, request: Any) -> list[str]:
        return dpop.public_urls(request.build_absolute_uri(request.path))

    def nonces_required(self) -> bool:
        return bool(settings.DPOP_NONCES)

    def current_nonce(self) -> str:
        return dpop.current_nonce()

    def check_proof(self, proof: str, *, method: str, urls: list[str], access_token: str) -> core_dpop.Proof:
        return dpop.check(
            proof, method=method, urls=urls, namespace="dpop:userinfo", access_token=access_token
        )


PROTECTOR = ResourceProtector([UserInfoBearer(), UserInfoDPoP()], transport=TRANSPORT, fmt=FORMAT)


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class UserInfoView(dot_views.UserInfoView):
    http_method_names = ["get", "post", "head", "options"]

    def http_method_not_allowed(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        body = {
            "error": "invalid_request",
            "error_description": _("The %(method)s method is not allowed here; use GET or POST.")
            % {"method": request.method},
        }
        response = HttpResponse(json.dumps(body), status=405, content_type="application/json")
        response["Allow"] = ", ".join(self._allowed_methods())
        return no_store(response)

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return self._create_userinfo_response(request)

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return self._create_userinfo_response(request)

    def _create_userinfo_response(self, request: HttpRequest) -> HttpResponse:
        try:
            token = PROTECTOR.authenticate(request)
        except BearerError as error:
            return no_store(PROTECTOR.error_response(error))
        claims = self.get_claims(request, token)
        return no_store(HttpResponse(json.dumps(claims), content_type="application/json"))

    def get_claims(self, request: HttpRequest, token: AccessToken) -> dict:
        """The validator's claims for the token, as the USERINFO hook expects its request."""
        uri, method, body, headers = self.get_oauthlib_core()._extract_params(request)
        oauthlib_request = OAuthlibRequest(uri, method, body, headers)
        oauthlib_request.access_token = token
        oauthlib_request.client = token.application
        oauthlib_request.client_id = token.application.client_id
        oauthlib_request.user = token.user
        oauthlib_request.scopes = token.scope.split()
        loaded_subject(token.user)
        claims = self.get_oauthlib_core().server.request_validator.get_userinfo_claims(oauthlib_request)
        claims = dict(claims or {})
        claims.setdefault("sub", subject_for(token.user))
        return claims
