"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) with our signing keys.

DOT's RPInitiatedLogoutView checks ``id_token_hint`` with DOT's settings key (we sign with the
database keys of ``keys.py``), answers an unknown ``client_id`` with a 500, needs a CSRF token on
the RP's own POST, and deletes the user's tokens at *every* client. This subclass keeps its flow
(validate, maybe ask the user, log out, redirect) and changes what differs:

- ``id_token_hint``: signed by one of our published keys (an expired one is accepted, as the
  spec allows, unless DOT's OIDC_RP_INITIATED_LOGOUT_ACCEPT_EXPIRED_TOKENS is off), issued by us,
  for an enabled client; the client is its ``azp``/``aud`` and must equal ``client_id`` if given.
- ``post_logout_redirect_uri``: only one registered for that client, exact match; anything else
  is an error page, never a redirect. ``state`` is echoed on the redirect.
- GET and the RP's form POST are logout requests; the confirmation page posts back with a CSRF
  token, and only a POST whose CSRF token checks out counts as the user's answer.
- The session ends; with OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS (DOT's default: on) the tokens the
  *requesting client* holds for the user whose session ends are revoked, and no other client's.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.contrib.auth import logout
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render, resolve_url
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from jwcrypto.common import JWException
from oauth2_provider import views as dot_views
from oauth2_provider.compat import login_not_required
from oauth2_provider.exceptions import (
    ClientIdMissmatch,
    InvalidIDTokenError,
    InvalidOIDCClientError,
    InvalidRequestFatalError,
    LogoutDenied,
    OIDCError,
)
from oauth2_provider.forms import ConfirmLogoutForm
from oauth2_provider.http import OAuth2ResponseRedirect
from oauth2_provider.settings import oauth2_settings
from oauthlib.common import add_params_to_uri

from .. import keys
from ..claims import user_for_subject
from ..conf import settings
from ..models import Client
from ..revocation import revoke_tokens
from ..tokens import issuer
from .authorize import no_frames

LOGOUT_PARAMS = (
    "id_token_hint",
    "logout_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "ui_locales",
)


class RepeatedParameterError(InvalidRequestFatalError):
    description = "A logout parameter was sent more than once."


class UnreadableRequestError(InvalidRequestFatalError):
    description = "The logout request could not be read."


def _csrf_token_is_valid(request: HttpRequest) -> bool:
    """Run Django's CSRF check by hand: the view is exempt so that an RP's POST gets through."""
    return CsrfViewMiddleware(lambda r: HttpResponse()).process_view(request, None, (), {}) is None


def enabled_client(client_id: Any) -> Client | None:
    return Client.objects.enabled().by_client_id(client_id).first()


@method_decorator([csrf_exempt, never_cache], name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class RPInitiatedLogoutView(dot_views.RPInitiatedLogoutView):
    template_name = "oauth_server/logout_confirm.html"
    # HEAD would otherwise run get() and end the session for a link prefetcher.
    http_method_names = ["get", "post", "options"]

    # --- entry points ------------------------------------------------------------------------
    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return self.logout_request(request.GET)

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            data = request.POST
            confirmation = "csrfmiddlewaretoken" in data
        except (MultiPartParserError, RequestDataTooBig, TooManyFieldsSent, SuspiciousOperation, BadRequest):
            return self.error_response(UnreadableRequestError())
        if confirmation and _csrf_token_is_valid(request):
            return self.confirmation(data)
        # The RP's own POST (form serialization, spec section 2), or a forged confirmation:
        # either way a logout *request*, which asks the user whenever the spec says so.
        return self.logout_request(data)

    def http_method_not_allowed(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        error = InvalidRequestFatalError(_("Use GET or POST to sign out."))
        error.status_code = 405
        response = self.error_response(error)
        response["Allow"] = ", ".join(self._allowed_methods())
        return response

    # --- the two kinds of request ----------------------------------------------------------------
    def params(self, data: QueryDict) -> dict[str, str | None]:
        repeated = [name for name in LOGOUT_PARAMS if len(data.getlist(name)) > 1]
        if repeated:
            raise RepeatedParameterError(
                _("Logout parameters may not be repeated: %(names)s.") % {"names": ", ".join(repeated)}
            )
        return {name: data.get(name) or None for name in LOGOUT_PARAMS}

    def logout_request(self, data: QueryDict) -> HttpResponse:
        try:
            params = self.params(data)
            application, hint_user = self.validate_logout_request(
                id_token_hint=params["id_token_hint"],
                client_id=params["client_id"],
                post_logout_redirect_uri=params["post_logout_redirect_uri"],
            )
        except OIDCError as error:
            return self.error_response(error)
        if not self.must_prompt(hint_user):
            return self.do_logout(application, params["post_logout_redirect_uri"], params["state"], hint_user)
        self.oidc_data = params
        form = self.get_form_class()(initial=self.get_initial())  # unbound, even for the RP's POST
        context = self.get_context_data(form=form, application=application)
        return no_frames(self.render_to_response(context))

    def confirmation(self, data: QueryDict) -> HttpResponse:
        """The user's answer on the confirmation page (CSRF-checked)."""
        form = ConfirmLogoutForm(data)
        if not form.is_valid():
            return self.error_response(UnreadableRequestError())
        params = {name: form.cleaned_data.get(name) or None for name in LOGOUT_PARAMS}
        try:
            application, hint_user = self.validate_logout_request(
                id_token_hint=params["id_token_hint"],
                client_id=params["client_id"],
                post_logout_redirect_uri=params["post_logout_redirect_uri"],
            )
            if not form.cleaned_data.get("allow"):
                raise LogoutDenied(_("You are still signed in."))
        except OIDCError as error:
            return self.error_response(error)
        return self.do_logout(application, params["post_logout_redirect_uri"], params["state"], hint_user)

    # --- validation ----------------------------------------------------------------------------
    def validate_logout_request(self, id_token_hint, client_id, post_logout_redirect_uri):
        """(client, user of the hint); raises OIDCError for anything we may not act on."""
        hint_client, hint_user = (None, None)
        if id_token_hint:
            hint_client, hint_user = self.validate_id_token_hint(id_token_hint)
        application = hint_client
        if client_id:
            if hint_client is not None and hint_client.client_id != client_id:
                raise ClientIdMissmatch()
            application = hint_client or enabled_client(client_id)
            if application is None:
                raise InvalidOIDCClientError()
        # DOT's check: a client is known, the scheme is allowed, the URI is registered (exact).
        self.validate_post_logout_redirect_uri(application, post_logout_redirect_uri)
        return application, hint_user

    def validate_id_token_hint(self, id_token_hint: str):
        """An ID token we issued (signature, ``iss``) to an enabled client: (client, user)."""
        try:
            payload = keys.verify(id_token_hint, typ="JWT")
        except (JWException, ValueError, TypeError, KeyError, AttributeError):
            raise InvalidIDTokenError() from None
        if not isinstance(payload, dict) or payload.get("iss") != issuer(self.request):
            raise InvalidIDTokenError()
        if not oauth2_settings.OIDC_RP_INITIATED_LOGOUT_ACCEPT_EXPIRED_TOKENS:
            exp = payload.get("exp")
            if not isinstance(exp, int) or exp <= timezone.now().timestamp():
                raise InvalidIDTokenError()
        audience = payload.get("aud")
        audience = [audience] if isinstance(audience, str) else audience
        if not isinstance(audience, list):
            raise InvalidIDTokenError()
        client_id = payload.get("azp") or (audience[0] if len(audience) == 1 else None)
        client = enabled_client(client_id) if client_id in audience else None
        sub = payload.get("sub")
        user = user_for_subject(sub) if isinstance(sub, str) and sub else None
        if client is None or user is None:
            raise InvalidIDTokenError()
        return client, user

    # --- outcome -------------------------------------------------------------------------------
    def do_logout(self, application=None, post_logout_redirect_uri=None, state=None, token_user=None):
        """End the session, revoke the requesting client's tokens of that user, redirect."""
        user = self.request.user
        revoked = 0
        if (
            application is not None
            and user.is_authenticated
            and oauth2_settings.OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS
        ):
            revoked = revoke_tokens(user=user, client=application)
        # For the audit trail's logout event (receivers.audit_logout, on Django's user_logged_out).
        self.request.oauth_server_logout = {"client": application, "tokens_revoked": revoked}
        logout(self.request)
        if post_logout_redirect_uri:
            target = post_logout_redirect_uri
            if state:
                target = add_params_to_uri(target, [("state", state)])
            return OAuth2ResponseRedirect(target, application.get_allowed_schemes())
        return HttpResponseRedirect(resolve_url(getattr(django_settings, "LOGOUT_REDIRECT_URL", None) or "/"))

    def error_response(self, error: OIDCError) -> HttpResponse:
        """A page for the user, never a redirect: the RP's URI is not trusted at this point."""
        status = 200 if isinstance(error, LogoutDenied) else error.status_code
        response = render(
            self.request,
            settings.ERROR_TEMPLATE,
            {"error": error.error, "description": error.description},
            status=status,
        )
        return no_frames(response)
