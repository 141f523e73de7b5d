"""The token endpoint: DOT's TokenView without its device-code polling shortcut.

DOT's view answers ``grant_type=urn:ietf:params:oauth:grant-type:device_code`` itself, before
oauthlib and before client authentication: ``404 device_not_found`` for any code, and a 500 when
``device_code`` is missing. The device grant is not supported here, so every request goes to our
oauthlib server, which answers ``unsupported_grant_type`` (RFC 6749 5.2).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from oauth2_provider import views as dot_views


class TokenView(dot_views.TokenView):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return self.authorization_flow_token_response(request)
