"""Token revocation (RFC 7009): DOT's RevokeTokenView with JSON errors and no-store everywhere.

oauthlib validates the request (POST, no query string, ``token`` present, client authentication as
at the token endpoint: confidential clients authenticate, public clients send their client_id);
the validator's ``revoke_token`` revokes only the caller's own tokens, and a whole grant at once.

The answer is 200 with ``{}`` for every well-formed request, also for an unknown, already revoked
or foreign token and for an unknown ``token_type_hint`` (RFC 7009 2.1: "An invalid token type hint
value is ignored"), so the endpoint never tells a client whether a token exists.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views as dot_views
from oauth2_provider.compat import login_not_required

from .introspection import FormEndpointMixin, oauthlib_response


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class RevokeTokenView(FormEndpointMixin, dot_views.RevokeTokenView):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        error = self.form_error(request)
        if error is not None:
            return error
        _, headers, body, status = self.create_revocation_response(request)
        return oauthlib_response(headers, body if status != 200 else "{}", status)
