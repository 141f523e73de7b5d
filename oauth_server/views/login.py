"""A login view for sites that have none they care about: Django's, plus OIDC ``login_hint``.

The authorization endpoint sends anonymous users to ``LOGIN_URL?next=<the authorization request>``.
When that request carries ``login_hint`` (OIDC Core 3.1.2.1), this view pre-fills the username so
the user only types a password, and names the application they are signing in for. Wire it in the
site's URLconf before ``django.contrib.auth.urls``::

    path("accounts/login/", LoginView.as_view(), name="login"),

Sites with their own login view keep it; docs/templates.md shows how to read the hint there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.contrib.auth import views as auth_views
from django.urls import NoReverseMatch, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.clickjacking import xframe_options_deny

from ..models import Client
from ..reauthentication import REAUTH_PARAM
from .authorize import no_frames

# Longer than any username or e-mail address a user could type (RFC 5321 caps addresses at 254).
MAX_LOGIN_HINT_LENGTH = 254


@method_decorator(xframe_options_deny, name="dispatch")
class LoginView(auth_views.LoginView):
    """Django's LoginView; ``registration/login.html`` if the site has one, else the app's page."""

    fallback_template_name = "oauth_server/login.html"

    def dispatch(self, request, *args, **kwargs):
        # A login form in a frame is a clickjacking and credential-phishing target.
        return no_frames(super().dispatch(request, *args, **kwargs))

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
        return Client.objects.enabled().filter(client_id=client_ids[0]).first()

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
