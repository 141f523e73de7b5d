"""A login view for sites that have none they care about: Django's, plus OIDC ``login_hint``.

The authorization endpoint sends anonymous users to ``LOGIN_URL?next=<the authorization request>``.
When that request carries ``login_hint`` (OIDC Core 3.1.2.1), this view pre-fills the username so
the user only types a password, and names the application they are signing in for. Wire it in the
site's URLconf before ``django.contrib.auth.urls``::

    path("accounts/login/", LoginView.as_view(), name="login"),

Sites with their own login view keep it; docs/templates.md shows how to read the hint there.

Failed sign-ins are throttled (``RATE_LIMITS["login_failures"]``, docs/abuse.md) per address and
per account *and* address, with the rate limiter's cache counters: the guesser gets 429, while the
same account still signs in from an address that did not fail (no lockout a third party can cause).
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.clickjacking import xframe_options_deny

from .. import audit, ratelimit
from ..models import Client
from ..reauthentication import REAUTH_PARAM
from .authorize import no_frames

logger = logging.getLogger("oauth_server.ratelimit")

# Longer than any username or e-mail address a user could type (RFC 5321 caps addresses at 254).
MAX_LOGIN_HINT_LENGTH = 254


def account_key(username: str) -> str:
    """The account a sign-in attempt names, as counted: NFKC-normalized (as Django's username field
    does), trimmed and case-folded, so ``Alice`` and ``alice`` share one budget (the counter key
    holds only a hash of it)."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


class LoginThrottle(ratelimit.AttemptThrottle):
    """The ``login_failures`` counters of one sign-in attempt, per address and per account
    (``account_key``) and address, with a per-account ceiling (docs/abuse.md)."""

    limit_name = ratelimit.LOGIN_FAILURES
    label = "Sign-in throttling"

    def __init__(self, request: HttpRequest, username: str):
        self.username = username
        super().__init__(request, account_key(username) or None)

    def audit_refusal(self, counter: ratelimit.Counter, retry_after: int) -> None:
        audit.record(
            audit.Event.LOGIN_THROTTLED,
            request=self.request,
            outcome=audit.FAILURE,
            username=self.username,
            scope=counter.scope,
            limit=counter.rate.limit,
            period=counter.rate.period,
            retry_after=retry_after,
        )


@method_decorator(xframe_options_deny, name="dispatch")
class LoginView(auth_views.LoginView):
    """Django's LoginView; ``registration/login.html`` if the site has one, else the app's page."""

    fallback_template_name = "oauth_server/login.html"

    def dispatch(self, request, *args, **kwargs):
        # A login form in a frame is a clickjacking and credential-phishing target.
        return no_frames(super().dispatch(request, *args, **kwargs))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Refuse the attempt (right password or not) when the address or the account from this
        address failed too often; otherwise Django's sign-in, counted."""
        username = request.POST.get("username")
        throttle = LoginThrottle(request, username if isinstance(username, str) else "")
        if throttle.refused is not None:
            return throttle.refusal()
        self.signed_in = False
        response = super().post(request, *args, **kwargs)
        throttle.finish(succeeded=self.signed_in)
        return response

    def form_valid(self, form):
        self.signed_in = True
        return super().form_valid(form)

    def get_template_names(self) -> list[str]:
        return [*super().get_template_names(), self.fallback_template_name]

    def _next_query(self) -> dict[str, list[str]]:
        """The query of ``next``, only when Django deems it a safe redirect (same host)."""
        next_url = self.get_redirect_url()  # "" when absent or pointing elsewhere
        return parse_qs(urlsplit(next_url).query) if next_url else {}

    def login_hint(self) -> str:
        """The hinted username or e-mail; ignored when it could not be one (it is only a default)."""
        hint = (self._next_query().get("login_hint") or [""])[0].strip()
        if len(hint) > MAX_LOGIN_HINT_LENGTH or not hint.isprintable():
            return ""
        return hint

    def requesting_client(self) -> Client | None:
        """The enabled client whose authorization request ``next`` is, to say "to continue to X"."""
        next_url = self.get_redirect_url()
        try:
            authorize_path = reverse("oauth2_provider:authorize")
        except NoReverseMatch:
            return None
        if not next_url or urlsplit(next_url).path != authorize_path:
            return None
        client_ids = self._next_query().get("client_id") or []
        if len(client_ids) != 1:
            return None
        # by_client_id: ``next`` is anyone's text; a NUL byte made PostgreSQL raise (a 500).
        return Client.objects.enabled().by_client_id(client_ids[0]).first()

    def get_initial(self) -> dict[str, Any]:
        initial = super().get_initial()
        hint = self.login_hint()
        if hint:
            initial.setdefault("username", hint)
        return initial

    def get_form(self, form_class=None):
        form = super().get_form(form_class)
        if not form.is_bound and form.initial.get("username"):
            # The username is already there: put the cursor where the user has to type.
            form.fields["username"].widget.attrs.pop("autofocus", None)
            form.fields["password"].widget.attrs["autofocus"] = True
        return form

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["client"] = self.requesting_client()
        # prompt=login / max_age: the signed-in user gets the form and keeps the session meanwhile.
        context["reauthenticating"] = (
            self.request.user.is_authenticated and REAUTH_PARAM in self._next_query()
        )
        return context
