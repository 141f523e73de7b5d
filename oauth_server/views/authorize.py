"""The authorization endpoint with the consent screen (RFC 6749 4.1, RFC 7636, RFC 9207, RFC 9700).

DOT's AuthorizationView does the protocol work (oauthlib validates client, redirect URI, PKCE and
scopes, and creates the code); this subclass adds remembered consent, ``prompt`` handling, the
product's consent and error pages, and the headers an authorization page must carry.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from django import forms
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_deny
from jwcrypto.common import JWException
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.forms import AllowForm
from oauth2_provider.oauth2_backends import _add_iss_to_redirect
from oauth2_provider.oauth2_validators import is_valid_resource_uri
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import AuthorizationView as DOTAuthorizationView
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors

from .. import audit, consent, keys, par, profiles, reauthentication, registration, request_objects
from ..claims import subject_for
from ..conf import settings
from ..flows.consents import record_consent
from ..models import Client, Scope
from ..parameters import parse_max_age, valid_dpop_jkt
from ..session_keys import SESSION_AUTH_TIME_KEY
from ..tokens import InvalidTargetError
from ..validators import CLIENT_LINK_FIELDS, shown_client_links


def _prompt(request: HttpRequest) -> set[str]:
    return set(request.GET.get("prompt", "").split())


def session_auth_time(request: HttpRequest) -> int:
    """When the user authenticated in this session (epoch seconds); last_login for older sessions."""
    value = request.session.get(SESSION_AUTH_TIME_KEY)
    if isinstance(value, int):
        return value
    last_login = getattr(request.user, "last_login", None)
    return int(last_login.timestamp()) if last_login else int(time.time())


def consent_page_context(
    request: HttpRequest, application: Client, redirect_uri: str, pushed: par.Pushed | None = None
) -> dict[str, Any]:
    """What the consent page shows around the form (docs/templates.md).

    The client's URLs come from registration, so only http(s) ones become links or images (https
    ones, and no logo, for a client nobody vetted: ``client_origin`` is then set and the page
    warns, docs/consent.md). The
    switch-account URL is this request with prompt=login, which comes back here through the login
    page (without login_hint: the user said the hinted account is not theirs); the session is
    replaced only when the other account signs in.
    """
    target = urlsplit(redirect_uri)
    origin = registration.client_origin(application)
    if pushed is not None:  # the browser carries only the request_uri (par.query_for adds prompt=login)
        query = par.browser_query(pushed, prompt="login")
    else:
        query = request.GET.copy()
        query.pop("login_hint", None)
        query["prompt"] = " ".join(sorted(_prompt(request) | {"login"}))
    return {
        "redirect_origin": f"{target.scheme}://{target.netloc}" if target.netloc else redirect_uri,
        "switch_account_url": f"{request.path}?{query.urlencode()}",
        "client_links": shown_client_links(
            {field: getattr(application, field, "") for field in CLIENT_LINK_FIELDS},
            vetted=origin is None,
        ),
        "client_origin": origin,
        "security_profile": profiles.profile_of(application),  # docs/fapi.md: one modest line
    }


def no_frames(response: HttpResponse) -> HttpResponse:
    """Pages the user decides on must never be framed (clickjacking) nor leak via Referer.

    ``same-origin``, not ``no-referrer``: browsers send ``Origin: null`` with a form POST from a
    no-referrer page, which Django's CSRF check rejects; other sites still get no Referer.
    """
    response["X-Frame-Options"] = "DENY"
    response["Content-Security-Policy"] = "frame-ancestors 'none'"
    response["Referrer-Policy"] = "same-origin"
    return response


class ConsentForm(AllowForm):
    """DOT's hidden fields, and the request_uri of a pushed request (RFC 9126): the decision is then
    applied to the pushed parameters, never to what the browser posts back (form_valid)."""

    request_uri = forms.CharField(required=False, widget=forms.HiddenInput())
    # RFC 9449 10: the DPoP key the code is bound to (validated by the grant on GET).
    dpop_jkt = forms.CharField(required=False, widget=forms.HiddenInput())

    def clean_dpop_jkt(self) -> str:
        value = self.cleaned_data.get("dpop_jkt") or ""
        if value and not valid_dpop_jkt(value):
            raise forms.ValidationError("dpop_jkt is not a JWK thumbprint.")
        return value


@method_decorator([never_cache, xframe_options_deny], name="dispatch")
class AuthorizationView(DOTAuthorizationView):
    """GET shows the consent page (or approves silently); POST records the user's decision."""

    # FormView maps PUT to post(); a consent decision is only ever a POST.
    http_method_names = ["get", "post", "head", "options"]
    form_class = ConsentForm
    pushed: par.Pushed | None = None  # a pushed authorization request this request brought (RFC 9126)

    def get_template_names(self) -> list[str]:
        return [settings.CONSENT_TEMPLATE]

    def dispatch(self, request, *args, **kwargs):
        if "request" in request.GET:
            # RFC 9101: a signed request object, verified and stored; the browser continues with its
            # request_uri (request_objects.resolve). A refused one gets a page: its redirect URI is
            # among the parameters that could not be trusted.
            return no_frames(self._request_object_redirect())
        if "request_uri" in request.GET:
            if not str(request.GET.get("request_uri")).startswith(par.URN_PREFIX):
                # RFC 9101 5.2: only the PAR endpoint's references, never a URL to fetch.
                return no_frames(
                    self._error_page(
                        "request_uri_not_supported",
                        "Only request_uri values from the pushed authorization request endpoint work here.",
                    )
                )
            # RFC 9126 4: the pushed parameters replace the browser's; an unknown, expired or other
            # client's request_uri gets a page (its redirect URI cannot be trusted before then).
            self.pushed = par.resolve(request.GET.get("client_id"), request.GET.get("request_uri"))
            if self.pushed is None:
                return no_frames(self._request_uri_error())
            request.GET = par.query_for(self.pushed, request.GET)
            # DOT hands oauthlib request.get_full_path(): the pushed parameters, not the browser's.
            request.META["QUERY_STRING"] = request.GET.urlencode()
        response = no_frames(super().dispatch(request, *args, **kwargs))
        if getattr(response, "is_authorization_response", False):
            if self.pushed is not None:
                par.consume(self.pushed)
            # RFC 9700 4.2.4: the redirect carrying the code (or error) to the client must not let
            # the client's page leak this URL onward; no form is posted from it, so no CSRF issue.
            response["Referrer-Policy"] = "no-referrer"
        return response

    # --- responses ----------------------------------------------------------------------------
    def _error_page(self, error: str, description: str) -> HttpResponse:
        return render(
            self.request, settings.ERROR_TEMPLATE, {"error": error, "description": description}, status=400
        )

    def _request_uri_error(self) -> HttpResponse:
        return self._error_page(
            "invalid_request",
            "The request_uri is unknown, expired or already used: start again from the application.",
        )

    def _request_object_redirect(self) -> HttpResponse:
        """Verify the ``request`` parameter and continue with the stored request's request_uri."""
        if "request_uri" in self.request.GET:
            return self._error_page("invalid_request", "Send request or request_uri, not both (RFC 9101 5).")
        if len(self.request.GET.getlist("request")) != 1:
            return self._error_page("invalid_request", "Send one request object.")
        try:
            pushed = request_objects.resolve(self.request, self.request.GET.get("client_id"))
        except request_objects.RequestObjectRefused as exc:
            return self._error_page(exc.error, exc.description)
        return HttpResponseRedirect(f"{self.request.path}?{par.browser_query(pushed).urlencode()}")

    def redirect(self, redirect_to: str, application) -> HttpResponse:
        """Every redirect back to the client carries ``iss`` (RFC 9207), errors included."""
        if oauth2_settings.COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS:
            redirect_to = _add_iss_to_redirect(
                redirect_to, oauth2_settings.oauth2_authorization_server_issuer(self.request)
            )
        response = super().redirect(redirect_to, application)
        response.is_authorization_response = True
        return response

    def error_response(self, error: OAuthToolkitError, application, **kwargs) -> HttpResponse:
        """Errors we may not redirect (bad client or redirect URI) get a page, never a redirect."""
        redirect, response = OAuthLibMixin.error_response(self, error, **kwargs)
        if redirect:
            return self.redirect(response["url"], application)
        oauthlib_error = response["error"]
        return render(
            self.request,
            settings.ERROR_TEMPLATE,
            {"error": oauthlib_error.error, "description": oauthlib_error.description},
            status=oauthlib_error.status_code,
        )

    def _error_redirect(self, credentials: dict, application, error_class, description: str):
        error = OAuthToolkitError(
            error=error_class(description=description, state=credentials.get("state")),
            redirect_uri=credentials["redirect_uri"],
        )
        return self.error_response(error, application)

    # --- anonymous users ------------------------------------------------------------------------
    def handle_no_permission(self):
        """Validate the request before sending anyone to the login page, so a bad client or
        redirect URI gets its error page at once (DOT covers prompt=none -> login_required).

        prompt=login or a max_age: the sign-in about to happen satisfies them, so the login page
        returns with the re-authentication marker instead (one sign-in, not two)."""
        prompt = _prompt(self.request)
        if self.pushed is not None and "none" not in prompt:
            # Back here after sign-in with the request_uri, never with the pushed parameters.
            next_url = f"{self.request.path}?{par.browser_query(self.pushed).urlencode()}"
            return redirect_to_login(next_url, self.get_login_url(), self.get_redirect_field_name())
        if "none" not in prompt:
            try:
                self.validate_authorization_request(self.request)
            except OAuthToolkitError as error:
                return self.error_response(error, application=None)
            max_age = self.request.GET.get("max_age")
            if "create" not in prompt and ("login" in prompt or (max_age is not None and max_age.isdigit())):
                return self.reauthenticate()
        return super().handle_no_permission()

    # --- GET: decide whether to ask -------------------------------------------------------------
    def get(self, request, *args, **kwargs):
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        application = Client.objects.get(client_id=credentials["client_id"])
        if not par.was_pushed(self.pushed) and profiles.requires_par(application):
            return self._error_redirect(
                credentials,
                application,
                oauth2_errors.InvalidRequestError,
                "This client must push its authorization requests (RFC 9126).",
            )
        if not self._signed() and request_objects.required_for(application):
            return self._error_redirect(
                credentials,
                application,
                oauth2_errors.InvalidRequestError,
                "This client must send its authorization requests as signed request objects (RFC 9101).",
            )
        prompt = _prompt(request)
        if "none" in prompt and len(prompt) > 1:
            return self._error_redirect(
                credentials, application, oauth2_errors.InvalidRequestError, "prompt=none cannot be combined."
            )
        if "login" in prompt:
            return self.reauthenticate()
        markers = request.GET.getlist(reauthentication.REAUTH_PARAM)
        if markers and not reauthentication.satisfied(request, markers):
            # The login page's way back after prompt=login or max_age, reached without a fresh
            # sign-in (the old session, a tampered or foreign marker): ask again, never answer.
            if "none" in prompt:
                return self._error_redirect(
                    credentials,
                    application,
                    oauth2_errors.LoginRequired,
                    "The user has not signed in again.",
                )
            return self.reauthenticate()
        max_age = request.GET.get("max_age")
        if max_age is not None:
            # ASCII digits only: str.isdigit() accepts "²", which int() refuses (a 500).
            max_age = parse_max_age(max_age)
            if max_age is None:
                return self._error_redirect(
                    credentials,
                    application,
                    oauth2_errors.InvalidRequestError,
                    "max_age must be a number of seconds (1 to 16 ASCII digits).",
                )
            if time.time() - session_auth_time(request) > max_age:
                if "none" in prompt:
                    return self._error_redirect(
                        credentials,
                        application,
                        oauth2_errors.LoginRequired,
                        "The session is older than max_age.",
                    )
                return self.reauthenticate()
        resources = request.GET.getlist("resource")
        if resources:
            refused = next((r for r in resources if not self._resource_allowed(application, r)), None)
            if refused is not None:
                return self._error_redirect(
                    credentials,
                    application,
                    InvalidTargetError,
                    f"The client may not request tokens for the resource {refused!r}.",
                )
            # RFC 8707 2.1: the code is bound to these; the token request may only narrow them.
            credentials["resource"] = list(dict.fromkeys(resources))
        hint = request.GET.get("id_token_hint")
        if hint and not self._hint_matches_user(hint):
            return self._error_redirect(
                credentials,
                application,
                oauth2_errors.LoginRequired,
                "The signed-in user is not the hinted user.",
            )

        decision = consent.decide(request.user, application, scopes, prompt)
        if decision.outcome is consent.Outcome.CONSENT_REQUIRED:
            return self._error_redirect(
                credentials,
                application,
                oauth2_errors.ConsentRequired,
                "The user has not approved these scopes.",
            )
        if decision.outcome is consent.Outcome.APPROVE:
            try:
                uri, _headers, _body, _status = self.create_authorization_response(
                    request=request, scopes=" ".join(scopes), credentials=credentials, allow=True
                )
            except OAuthToolkitError as error:
                return self.error_response(error, application)
            return self.redirect(uri, application)

        if isinstance(credentials.get("claims"), dict):
            credentials["claims"] = json.dumps(credentials["claims"])  # a hidden form field
        self.oauth2_data = {
            **{k: v for k, v in credentials.items() if k != "request"},
            "scope": scopes,
            "application": application,
        }
        if "resource" in credentials:
            self.oauth2_data["resource"] = " ".join(credentials["resource"])  # a hidden form field
        form = self.get_form()
        # Step-up: the page asks for the new scopes only, and lists below, as secondary, what the
        # user already allowed: the requested scopes approved before, then the rest of the consent.
        already = list(decision.granted) + sorted(
            consent.granted_scopes(request.user, application) - set(scopes) - set(decision.granted)
        )
        descriptions = dict(
            Scope.objects.filter(name__in=[*scopes, *already]).values_list("name", "description")
        )
        context = self.get_context_data(
            form=form,
            application=application,
            client=application,
            scopes=scopes,
            new_scopes=[(name, descriptions.get(name, name)) for name in decision.new],
            granted_scopes=[(name, descriptions.get(name, name)) for name in already],
            scopes_descriptions=[descriptions.get(name, name) for name in scopes],
            **consent_page_context(request, application, credentials.get("redirect_uri") or "", self.pushed),
        )
        return self.render_to_response(context)

    def _signed(self) -> bool:
        """The request being handled came from a verified request object (RFC 9101)."""
        return self.pushed is not None and self.pushed.is_signed

    def _hint_matches_user(self, hint: str) -> bool:
        """id_token_hint (OIDC Core 3.1.2.1): one of our ID tokens, expired or not, for this user."""
        try:
            payload = keys.verify(hint, typ="JWT")
        except (JWException, ValueError, TypeError):
            return False
        return payload.get("sub") == subject_for(self.request.user)

    def reauthenticate(self) -> HttpResponse:
        """prompt=login or a session older than max_age: ask for a fresh sign-in.

        The session is kept (a link from any site must not sign the user out); the old one stays
        until a new sign-in succeeds, which replaces it (receivers.remember_auth_time). The login page
        returns to this request without prompt=login and max_age but with a marker only a sign-in
        made from now on satisfies (reauthentication.py), so max_age=0 cannot loop and the old
        session cannot skip the login page.
        """
        marker = reauthentication.marker(self.request)
        if self.pushed is not None:  # par.query_for drops prompt=login and max_age for the marker
            query = par.browser_query(self.pushed, **{reauthentication.REAUTH_PARAM: marker})
        else:
            query = self.request.GET.copy()
            for name in ("prompt", "max_age", reauthentication.REAUTH_PARAM):
                query.pop(name, None)
            prompt = [p for p in _prompt(self.request) if p != "login"]
            if prompt:
                query["prompt"] = " ".join(prompt)
            query[reauthentication.REAUTH_PARAM] = marker
        next_url = f"{self.request.path}?{urlencode(list(query.lists()), doseq=True)}"
        return redirect_to_login(next_url, self.get_login_url(), self.get_redirect_field_name())

    def get_initial(self) -> dict[str, Any]:
        initial = super().get_initial()
        initial["request_uri"] = self.pushed.request_uri if self.pushed is not None else None
        initial["dpop_jkt"] = self.oauth2_data.get("dpop_jkt") or None  # RFC 9449 10
        return initial

    # --- POST: the user's decision ------------------------------------------------------------
    def form_invalid(self, form):
        """A tampered or incomplete consent form is a bad request, shown as a page."""
        return render(
            self.request,
            settings.ERROR_TEMPLATE,
            {"error": "invalid_request", "description": "The consent form was incomplete."},
            status=400,
        )

    def form_valid(self, form):
        client_id = form.cleaned_data["client_id"]
        client = Client.objects.by_client_id(client_id).first()
        if client is None:
            return self.form_invalid(form)
        if form.cleaned_data.get("request_uri"):
            self.pushed = par.resolve(client_id, form.cleaned_data["request_uri"])
            if self.pushed is None:
                return self._request_uri_error()
            if not _apply_pushed(form, self.pushed):
                return self.form_invalid(form)
        if (not par.was_pushed(self.pushed) and profiles.requires_par(client)) or (
            not self._signed() and request_objects.required_for(client)
        ):
            return self.form_invalid(form)
        self.posted_dpop_jkt = form.cleaned_data.get("dpop_jkt") or ""
        # The hidden redirect_uri can be tampered with too: DOT sends a denial to it unchecked,
        # which would be an open redirect (tests/fuzz/test_fuzz_authorization.py).
        if not client.redirect_uri_allowed(form.cleaned_data.get("redirect_uri") or ""):
            return self.form_invalid(form)
        # The hidden resource field can be tampered with: it may only name the client's audiences.
        resources = (form.cleaned_data.get("resource") or "").split()
        if any(not self._resource_allowed(client, r) for r in resources):
            return self.form_invalid(form)
        return super().form_valid(form)

    @staticmethod
    def _resource_allowed(client: Client, resource: str) -> bool:
        """RFC 8707 2: an absolute URI without fragment that the client lists in its audiences."""
        return resource in (client.audiences or []) and is_valid_resource_uri(resource)

    def create_authorization_response(self, request, scopes, credentials, allow):
        """Issue the code, then remember what the user approved (only on success)."""
        credentials = {
            **credentials,
            "auth_time": datetime.fromtimestamp(session_auth_time(request), tz=UTC),
        }
        if request.method == "POST" and getattr(self, "posted_dpop_jkt", ""):
            credentials["dpop_jkt"] = self.posted_dpop_jkt  # DOT's form_valid knows only its own fields
        if not allow:
            audit.record(
                audit.Event.CONSENT_DENIED,
                request=request,
                user=request.user,
                client=Client.objects.filter(client_id=credentials.get("client_id")).first(),
                outcome=audit.FAILURE,
                scopes=scopes.split() if scopes else [],
            )
        result = super().create_authorization_response(request, scopes, credentials, allow)
        # oauthlib answers some invalid requests (a tampered ``claims`` field...) with an error
        # redirect, not an exception: remember the approval only when a code was issued.
        issued = "code" in dict(parse_qsl(urlsplit(result[0] or "").query))
        if allow and request.method == "POST" and issued:
            client = Client.objects.get(client_id=credentials["client_id"])
            record_consent(request.user, client, scopes.split() if scopes else [])
        return result


# The consent form's fields that carry the authorization request itself; the scope the user approved
# may only be narrower than the pushed one.
PUSHED_FIELDS = ("redirect_uri", "state", "response_type", "code_challenge", "code_challenge_method", "nonce")


def _apply_pushed(form: forms.Form, pushed: par.Pushed) -> bool:
    """Put the pushed parameters in the decision, whatever the browser posted; False if the posted
    scopes are not within the pushed ones (a tampered form)."""
    stored = pushed.parameters
    for name in PUSHED_FIELDS:
        form.cleaned_data[name] = (stored.get(name) or [""])[0]
    form.cleaned_data["resource"] = " ".join(stored.get("resource", []))
    form.cleaned_data["dpop_jkt"] = (stored.get("dpop_jkt") or [""])[0]
    if "claims" in stored:
        form.cleaned_data["claims"] = stored["claims"][0]
    pushed_scopes = set(" ".join(stored.get("scope", [])).split())
    posted = set((form.cleaned_data.get("scope") or "").split())
    return not pushed_scopes or posted <= pushed_scopes
