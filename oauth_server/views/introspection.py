"""Token introspection (RFC 7662) for clients and resource servers registered as clients.

DOT's IntrospectTokenView answers GET with the token in the query string, lets in any bearer token
holding an ``introspection`` scope, and shows any client every token. Here the endpoint is
oauthlib's (POST only, form parameters, no query string) and the caller must authenticate as a
confidential client, exactly as at the token endpoint. What the caller may see is the validator's
``introspect_token``: its own tokens, and access tokens issued for an API it serves.

``FormEndpointMixin`` is the part shared with the revocation endpoint: JSON errors for every bad
request (wrong method, unreadable or repeated parameters) and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import json

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import View
from oauth2_provider.compat import login_not_required
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors
from oauthlib.oauth2.rfc6749.endpoints import IntrospectEndpoint

from .token import CLIENT_AUTH_CHALLENGE


def no_store(response: HttpResponse) -> HttpResponse:
    """RFC 6749 5.1 / RFC 7662 2.2: token information must never be cached."""
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def json_error(error: str, description: str, status: int = 400) -> JsonResponse:
    return no_store(JsonResponse({"error": error, "error_description": str(description)}, status=status))


def oauthlib_response(headers: dict, body: str | None, status: int) -> HttpResponse:
    """An oauthlib (headers, body, status) triple as a JSON, uncacheable response.

    A 401 carries the challenge of the scheme clients authenticate with here (HTTP Basic,
    RFC 6749 5.2); oauthlib's default names Bearer, the resource servers' scheme.
    """
    if status >= 400:
        body = _with_description(body)
    response = HttpResponse(content=body or "{}", status=status, content_type="application/json")
    for name, value in headers.items():
        if name.lower() not in ("content-type", "www-authenticate"):
            response[name] = value
    if status == 401:
        response["WWW-Authenticate"] = CLIENT_AUTH_CHALLENGE
    return no_store(response)


# oauthlib raises some errors without a description; a client deserves to know what went wrong.
DEFAULT_DESCRIPTIONS = {
    "invalid_client": _lazy(
        "Client authentication failed: unknown or disabled client, wrong secret, or no credentials."
    ),
    "invalid_request": _lazy("The request is malformed."),
}


def _with_description(body: str | None) -> str:
    try:
        data = json.loads(body or "{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict) or "error" not in data:
        data = {"error": "server_error"}
    if not data.get("error_description"):
        data["error_description"] = str(DEFAULT_DESCRIPTIONS.get(data["error"], data["error"]))
    return json.dumps({"error": data["error"], "error_description": data["error_description"]})


class FormEndpointMixin:
    """A POST-only endpoint taking form parameters, each at most once (RFC 6749 3.2)."""

    http_method_names = ["post", "options"]

    def http_method_not_allowed(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        # A GET never reaches the endpoint, so a token in a query string is never looked up.
        response = json_error(
            "invalid_request",
            _("The %(method)s method is not allowed here; send a POST.") % {"method": request.method},
            status=405,
        )
        response["Allow"] = ", ".join(self._allowed_methods())
        return response

    def form_error(self, request: HttpRequest) -> HttpResponse | None:
        """An ``invalid_request`` response for an unreadable body or a repeated parameter."""
        try:
            params = request.POST.lists()
            repeated = sorted(name for name, values in params if len(values) > 1)
        except (MultiPartParserError, RequestDataTooBig, TooManyFieldsSent, SuspiciousOperation, BadRequest):
            return json_error("invalid_request", _("The request body could not be read."))
        if repeated:
            return json_error(
                "invalid_request",
                _("Parameters may not be repeated: %(names)s.") % {"names": ", ".join(repeated)},
            )
        return None

    def oauthlib_params(self, request: HttpRequest) -> tuple[str, str, str, dict]:
        """(uri, method, body, headers) as DOT hands them to oauthlib."""
        return self.get_oauthlib_core()._extract_params(request)


class ConfidentialClientIntrospectEndpoint(IntrospectEndpoint):
    """oauthlib's introspection endpoint, for authenticated confidential clients only.

    oauthlib lets a public client in with its client_id alone (``authenticate_client_id``), which
    would let anyone who knows a public client_id probe its tokens.
    """

    def _raise_on_invalid_client(self, request) -> None:
        if not self.request_validator.authenticate_client(request):
            raise oauth2_errors.InvalidClientError(request=request)
        if not request.client.is_confidential:
            raise oauth2_errors.InvalidClientError(
                description=_("Only confidential clients may introspect tokens."), request=request
            )


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class IntrospectTokenView(FormEndpointMixin, OAuthLibMixin, View):
    """POST ``token`` (+ ``token_type_hint``) with client authentication; RFC 7662 2.2 answer."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        error = self.form_error(request)
        if error is not None:
            return error
        endpoint = ConfidentialClientIntrospectEndpoint(self.get_oauthlib_core().server.request_validator)
        uri, method, body, headers = self.oauthlib_params(request)
        headers, body, status = endpoint.create_introspect_response(uri, method, body, headers)
        if status == 200 and not json.loads(body).get("active"):
            body = json.dumps({"active": False})  # nothing else, whatever the reason
        return oauthlib_response(headers, body, status)
