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
import re

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views as dot_views
from oauth2_provider.compat import login_not_required
from oauthlib.common import Request as OAuthlibRequest

from ..claims import loaded_subject, subject_for
from ..models import AccessToken
from ..tokens import token_checksum
from .introspection import no_store

# RFC 6750 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
B64TOKEN_RE = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class BearerError(Exception):
    """An RFC 6750 3 error: the status, the challenge's error code and description."""

    def __init__(self, status: int, error: str | None = None, description: str = "", scope: str = ""):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = str(description)
        self.scope = scope


def _quote(value: str) -> str:
    """An RFC 9110 quoted-string: no way out of the quotes, no header injection."""
    return value.replace("\r", "").replace("\n", "").replace("\\", "\\\\").replace('"', '\\"')


def bearer_error_response(error: BearerError) -> HttpResponse:
    params = []
    body: dict[str, str] = {}
    if error.error:  # RFC 6750 3.1: a request without any token gets a bare challenge
        params.append(f'error="{error.error}"')
        params.append(f'error_description="{_quote(error.description)}"')
        body["error"] = error.error
    body["error_description"] = error.description
    if error.scope:
        params.append(f'scope="{error.scope}"')
    response = HttpResponse(json.dumps(body), status=error.status, content_type="application/json")
    response["WWW-Authenticate"] = "Bearer" + (" " + ", ".join(params) if params else "")
    return no_store(response)


def _invalid_request(description: str) -> BearerError:
    return BearerError(400, "invalid_request", description)


def bearer_token(request: HttpRequest) -> str:
    """The one access token of the request, from the header or a form-encoded body."""
    if "access_token" in request.GET:
        raise _invalid_request(_("Access tokens are not accepted in the URL query; send them in a header."))
    found: list[str] = []
    scheme, _sep, credentials = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        credentials = credentials.strip()
        if not B64TOKEN_RE.match(credentials):
            raise _invalid_request(_("The Authorization header is not a valid Bearer credential."))
        found.append(credentials)
    if request.method == "POST":
        try:
            values = request.POST.getlist("access_token")
        except (MultiPartParserError, RequestDataTooBig, TooManyFieldsSent, SuspiciousOperation, BadRequest):
            raise _invalid_request(_("The request body could not be read.")) from None
        if values and request.content_type != FORM_CONTENT_TYPE:
            raise _invalid_request(_("An access token in the body must be sent form-encoded (RFC 6750 2.2)."))
        found.extend(values)
    if len(found) > 1:
        raise _invalid_request(_("Send the access token once, by one method only."))
    if not found or not found[0]:
        raise BearerError(401, description=_("This endpoint requires an access token."))
    return found[0]


def load_access_token(value: str) -> AccessToken:
    token = (
        AccessToken.objects.select_related("application", "user", "user__oauth_subject")
        .filter(token_checksum=token_checksum(value))
        .first()
    )
    if token is None:
        raise BearerError(401, "invalid_token", _("The access token is invalid."))
    if token.is_expired():
        raise BearerError(401, "invalid_token", _("The access token has expired."))
    if not token.is_valid():  # disabled client or inactive user: say no more than "invalid"
        raise BearerError(401, "invalid_token", _("The access token is invalid."))
    if token.user is None:
        raise BearerError(
            403, "insufficient_scope", _("The access token was not issued for an end-user."), scope="openid"
        )
    if "openid" not in token.scope.split():
        raise BearerError(
            403, "insufficient_scope", _("The access token does not carry the openid scope."), scope="openid"
        )
    return token


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
            token = load_access_token(bearer_token(request))
        except BearerError as error:
            return bearer_error_response(error)
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
