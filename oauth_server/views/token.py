"""The token endpoint: DOT's TokenView without its device-code polling shortcut, always JSON, no-store.

DOT's view answers ``grant_type=urn:ietf:params:oauth:grant-type:device_code`` itself, before
oauthlib and before client authentication: ``404 device_not_found`` for any code, and a 500 when
``device_code`` is missing. The device grant is not supported here, so every request goes to our
oauthlib server, which answers ``unsupported_grant_type`` (RFC 6749 5.2).

Errors oauthlib raises before a grant runs (credentials in the query string, RFC 6749 2.3.1) come
back without headers, so DOT would send them as uncacheable-unmarked text/html: every response
here is JSON with ``Cache-Control: no-store`` (RFC 6749 5.1, 5.2).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from oauth2_provider import views as dot_views

# RFC 6749 5.2: a 401 carries a WWW-Authenticate challenge for the scheme clients authenticate
# with here (HTTP Basic); oauthlib's default names Bearer, the resource servers' scheme.
CLIENT_AUTH_CHALLENGE = 'Basic realm="oauth"'


class TokenView(dot_views.TokenView):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = self.authorization_flow_token_response(request)
        response["Content-Type"] = "application/json"
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        if response.status_code == 401:
            response["WWW-Authenticate"] = CLIENT_AUTH_CHALLENGE
        return response
