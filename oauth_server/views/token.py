"""The token endpoint: DOT's TokenView without its device-code polling shortcut, always JSON, no-store.

DOT's view answers ``grant_type=urn:ietf:params:oauth:grant-type:device_code`` itself, before
oauthlib and before client authentication: ``404 device_not_found`` for any code, and a 500 when
``device_code`` is missing. Here every request goes to our oauthlib server: the device grant is
served by ``grants/device_code.py`` after client authentication (docs/device.md).

Errors oauthlib raises before a grant runs (credentials in the query string, RFC 6749 2.3.1) come
back without headers, so DOT would send them as uncacheable-unmarked text/html: every response
here is JSON with ``Cache-Control: no-store`` (RFC 6749 5.1, 5.2).

Each request is one database transaction. oauthlib saves the new tokens before it invalidates the
code (oauthlib #618); inside one transaction, with the validator locking the code's (or refresh
token's) row when it validates it, a concurrent request for the same code waits and then finds it
redeemed. An error answered after tokens were written (the validator notes it in the request's
``TokenRequestState``, request_state.py) rolls them back, so a losing request never leaves tokens
behind; errors before that point (a replayed code's or a reused refresh token's revocation, audit
records) are committed. See docs/hardening.md.
"""

from __future__ import annotations

import logging

from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.db import IntegrityError, router, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _
from oauth2_provider import views as dot_views
from oauth2_provider.signals import app_authorized

from .. import dpop
from ..conf import settings
from ..models import AccessToken
from ..request_state import state_of

# RFC 6749 5.2: a 401 carries a WWW-Authenticate challenge for the scheme clients authenticate
# with here (HTTP Basic); oauthlib's default names Bearer, the resource servers' scheme.
CLIENT_AUTH_CHALLENGE = 'Basic realm="oauth"'

logger = logging.getLogger(__name__)


class TokenView(dot_views.TokenView):
    def authorization_flow_token_response(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        """DOT's, sending ``app_authorized`` with the AccessToken row the validator just saved:
        DOT re-parses its own JSON body and reads that row back by checksum, one SELECT per token."""
        state = state_of(request)  # before DOT copies META into the oauthlib request (request_state.py)
        state.url = request.build_absolute_uri(request.path)
        url, headers, body, status = self.create_token_response(request)
        token = state.access_token
        if status == 200 and token is not None:
            app_authorized.send(sender=self, request=request, token=token)
        response = HttpResponse(content=body, status=status)
        for name, value in headers.items():
            response[name] = value
        return response

    def http_method_not_allowed(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        """JSON like every other answer of the endpoint (Django's default is an empty HTML 405)."""
        description = _("The %(method)s method is not allowed here; send a POST.") % {
            "method": request.method
        }
        response = JsonResponse({"error": "invalid_request", "error_description": description}, status=405)
        response["Allow"] = ", ".join(self._allowed_methods())
        return response

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            request.POST  # noqa: B018 -- a broken body is the client's error, not a 500 from DOT
        except (MultiPartParserError, RequestDataTooBig, TooManyFieldsSent, SuspiciousOperation, BadRequest):
            description = _("The request body could not be read.")
            response = JsonResponse(
                {"error": "invalid_request", "error_description": description}, status=400
            )
            response["Cache-Control"] = "no-store"
            return response
        try:
            with transaction.atomic(using=router.db_for_write(AccessToken)):
                response = self.authorization_flow_token_response(request)
                if response.status_code != 200 and state_of(request).issued:
                    transaction.set_rollback(True, using=router.db_for_write(AccessToken))
        except IntegrityError:
            # A concurrent request changed what this one read (a token exchanged from the access
            # token a refresh retires commits between the refresh's read and its DELETE): all of this
            # request is rolled back, and the client may try again with the same grant.
            logger.warning("Token request rolled back: a concurrent request changed its grant", exc_info=True)
            response = JsonResponse(
                {
                    "error": "invalid_grant",
                    "error_description": _(
                        "The grant was used by another request at the same time; nothing was issued. "
                        "Try again."
                    ),
                },
                status=400,
            )
        response["Content-Type"] = "application/json"
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        if response.status_code == 401:
            response["WWW-Authenticate"] = CLIENT_AUTH_CHALLENGE
        if settings.DPOP_NONCES:  # RFC 9449 8: the nonce the next proof must carry
            response["DPoP-Nonce"] = dpop.current_nonce()
        return response
