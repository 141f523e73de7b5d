"""The pushed authorization request endpoint (RFC 9126): a client posts its authorization request.

The client authenticates as at the token endpoint (any registered method: secrets,
``private_key_jwt``; a public client sends its client_id). The parameters are validated as the
authorization endpoint would validate them (client, redirect URI, response type, scopes, PKCE,
``claims``, RFC 8707 resources), so an error reaches the client here, as JSON, instead of the user
later. The answer is ``201 {"request_uri", "expires_in"}`` (par.py stores the request).

A ``request`` parameter (RFC 9101 signed request object, request_objects.py) replaces the other
parameters; a ``DPoP`` header proof binds the code to its key (RFC 9449 10.1, dpop.py).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import View
from oauth2_provider.compat import login_not_required
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.common import Request as OAuthlibRequest
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors

from .. import dpop, par, request_objects
from ..conf import settings
from .authorize import AuthorizationView
from .introspection import FormEndpointMixin, json_error, no_store
from .token import CLIENT_AUTH_CHALLENGE


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class PushedAuthorizationRequestView(FormEndpointMixin, OAuthLibMixin, View):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        error = self.form_error(request)
        if error is not None:
            return error
        if request.GET:
            return json_error("invalid_request", _("Send the parameters in the body, not the query string."))
        core = self.get_oauthlib_core()
        uri, method, body, headers = self.oauthlib_params(request)
        oauthlib_request = OAuthlibRequest(uri, method, body, headers)
        validator = core.server.request_validator
        try:
            if validator.client_authentication_required(oauthlib_request):
                authenticated = validator.authenticate_client(oauthlib_request)
            else:
                authenticated = validator.authenticate_client_id(oauthlib_request.client_id, oauthlib_request)
        except oauth2_errors.OAuth2Error as exc:
            return json_error(exc.error, exc.description or exc.error, exc.status_code)
        if not authenticated:
            response = json_error("invalid_client", _("Client authentication failed."), 401)
            response["WWW-Authenticate"] = CLIENT_AUTH_CHALLENGE
            return response
        client = oauthlib_request.client
        try:
            # RFC 9449 10.1: a DPoP proof sent here binds the code like dpop_jkt (and must agree with
            # it). Checked before a request object is read, whose jti a refusal here would spend: the
            # client answered use_dpop_nonce resends the same request object (RFC 9449 8).
            proof_jkt = dpop.pushed_request_proof(request)
        except dpop.UseDPoPNonceError as exc:
            response = json_error(exc.error, exc.description)
            response["DPoP-Nonce"] = dpop.current_nonce()
            return response
        except dpop.InvalidDPoPProofError as exc:
            return json_error(exc.error, exc.description)

        parameters = {name: values for name, values in request.POST.lists() if name not in par.NOT_PUSHED}
        if "request_uri" in request.POST:
            return json_error("invalid_request", _("request_uri cannot be pushed (RFC 9126 2.1)."))
        if parameters.get("client_id", [client.client_id]) != [client.client_id]:
            return json_error("invalid_request", _("client_id does not match the authenticated client."))
        signed = "request" in request.POST
        if signed:
            # RFC 9101 + RFC 9126 3: a signed request object; its parameters replace the others.
            if len(request.POST.getlist("request")) != 1:
                return json_error("invalid_request", _("Send one request object."))
            try:
                parameters = request_objects.read(client, request.POST["request"], request, endpoint="par")
            except request_objects.RequestObjectRefused as exc:
                return json_error(exc.error, exc.description)
        elif request_objects.required_for(client):
            return json_error(
                "invalid_request",
                _("This client must send its authorization requests as signed request objects (RFC 9101)."),
            )
        parameters["client_id"] = [client.client_id]
        try:
            jkt = dpop.pushed_request_binding(proof_jkt, parameters.get("dpop_jkt"))
        except dpop.InvalidDPoPProofError as exc:
            return json_error(exc.error, exc.description)
        if jkt is not None:
            parameters["dpop_jkt"] = [jkt]
        query = urlencode([(name, value) for name, values in parameters.items() for value in values])
        try:
            core.server.validate_authorization_request(
                request.build_absolute_uri(reverse("oauth2_provider:authorize")) + "?" + query,
                "GET",
                None,
                {},
            )
        except oauth2_errors.OAuth2Error as exc:
            # A bad redirect URI or scope, a missing PKCE challenge...: answered to the client, here
            # (RFC 9126 2.3), never to the user later.
            return json_error(exc.error, exc.description or exc.error, 400)
        refused = [
            r for r in parameters.get("resource", []) if not AuthorizationView._resource_allowed(client, r)
        ]
        if refused:
            return json_error(
                "invalid_target",
                _("The client may not request tokens for the resource %(r)r.") % {"r": refused[0]},
            )
        request_uri, expires_in = par.push(client, parameters, signed=signed)
        response = no_store(JsonResponse({"request_uri": request_uri, "expires_in": expires_in}, status=201))
        if settings.DPOP_NONCES:
            response["DPoP-Nonce"] = dpop.current_nonce()  # RFC 9449 8: for the token request to come
        return response
