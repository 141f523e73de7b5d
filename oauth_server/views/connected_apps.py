"""The end user's "Connected apps" page: which clients can act on their account, and a way out.

A user should be able to cut off any app without finding the admin or the app itself (Google's
"Third-party apps", Keycloak's account console "Applications"). An app is listed when the user has
an active ``Consent`` for it, or when it still holds live tokens for the user without one (a
``skip_consent`` first-party app, or tokens that outlived a deleted consent row): otherwise the
apps users never had to approve would be the only ones they could not remove (docs/connected-apps.md).

The list is built in a constant number of queries whatever the number of apps: consents, two
token aggregates, then (only when needed) the token-only clients, their scopes and the scope
descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Max, Min, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_deny
from django.views.generic import TemplateView

from ..conf import settings
from ..flows.consents import revoke_consent
from ..flows.tokens import revoke_user_tokens
from ..models import AccessToken, Client, Consent, RefreshToken, Scope
from ..registration import ClientOrigin, client_origin
from ..validators import shown_client_links
from .authorize import no_frames


@dataclass
class ConnectedApp:
    """One row of the page (the template's ``apps``)."""

    client: Client
    consent: Consent | None  # None: the app holds live tokens but the user never approved it here
    connected: datetime  # when the user first connected it
    last_used: datetime  # the latest token issue or refresh, else when the consent last changed
    scope_names: list[str] = field(default_factory=list)
    scopes: list[tuple[str, str]] = field(default_factory=list)  # (name, description)
    links: dict[str, str] = field(default_factory=dict)  # only http(s) client URLs
    origin: ClientOrigin | None = None  # where a client nobody vetted comes from (None: an operator's)

    @property
    def name(self) -> str:
        return self.client.name or self.client.client_id


def _safe_links(client: Client, origin: ClientOrigin | None) -> dict[str, str]:
    """The client's URLs come from registration: only http(s) ones may become links or images
    (https and no logo for a self-registered client: ``validators.shown_client_links``)."""
    values = {name: getattr(client, name, "") for name in ("logo_uri", "client_uri")}
    return shown_client_links(values, vetted=origin is None)


def _refresh_lifetime(client: Client) -> int | None:
    return client.refresh_token_lifetime or settings.REFRESH_TOKEN_LIFETIME


def connected_apps(user) -> list[ConnectedApp]:
    """Every app that can act on the user's account, sorted by name, in a constant number of queries."""
    now = timezone.now()
    consents = list(Consent.objects.active().filter(user=user).select_related("client"))
    # One aggregate per token table, grouped by client: issue times for "last used", and enough
    # to tell whether a client without a consent row still holds a working token.
    access = {
        row["application_id"]: row
        for row in AccessToken.objects.filter(user=user, application__isnull=False)
        .values("application_id")
        .annotate(first=Min("created"), last=Max("created"), live_until=Max("expires"))
        .order_by()
    }
    refresh = {
        row["application_id"]: row
        for row in RefreshToken.objects.filter(user=user, application__isnull=False)
        .values("application_id")
        .annotate(
            first=Min("created"),
            last=Max("created"),
            # A refresh token works while unrevoked, attached to its access token (DOT detaches it
            # on revocation) and younger than the client's refresh lifetime (our validator).
            newest_live=Max("created", filter=Q(revoked__isnull=True, access_token__isnull=False)),
        )
        .order_by()
    }

    def issued(client_id: int, key: str, pick) -> datetime | None:
        values = [row[key] for row in (access.get(client_id), refresh.get(client_id)) if row and row[key]]
        return pick(values) if values else None

    apps = [
        ConnectedApp(
            client=consent.client,
            consent=consent,
            connected=consent.created,
            last_used=issued(consent.client_id, "last", max) or consent.updated,
            scope_names=consent.scopes,
        )
        for consent in consents
    ]

    consented = {consent.client_id for consent in consents}
    candidates = (set(access) | set(refresh)) - consented
    if candidates:
        token_only = []
        for client in Client.objects.filter(pk__in=candidates, is_enabled=True):
            live_access = (access.get(client.pk) or {}).get("live_until")
            newest_refresh = (refresh.get(client.pk) or {}).get("newest_live")
            lifetime = _refresh_lifetime(client)
            if (live_access and live_access > now) or (
                newest_refresh and (not lifetime or newest_refresh + timedelta(seconds=lifetime) > now)
            ):
                token_only.append(client)
        if token_only:
            by_client: dict[int, list[str]] = {client.pk: [] for client in token_only}
            # The scopes these tokens carry: of live access tokens, and of the access tokens live
            # refresh tokens are attached to (a refresh mints the same scopes again).
            rows = (
                AccessToken.objects.filter(user=user, application_id__in=list(by_client))
                .filter(
                    Q(expires__gt=now) | Q(refresh_token__revoked__isnull=True, refresh_token__isnull=False)
                )
                .values_list("application_id", "scope")
                .order_by("created")
            )
            for client_pk, scope in rows:
                by_client[client_pk].extend(scope.split())
            for client in token_only:
                apps.append(
                    ConnectedApp(
                        client=client,
                        consent=None,
                        connected=issued(client.pk, "first", min) or now,
                        last_used=issued(client.pk, "last", max) or now,
                        scope_names=list(dict.fromkeys(by_client[client.pk])),
                    )
                )

    names = {name for app in apps for name in app.scope_names}
    descriptions = (
        dict(Scope.objects.filter(name__in=names).values_list("name", "description")) if names else {}
    )
    for app in apps:
        app.scopes = [(name, descriptions.get(name) or "") for name in app.scope_names]
        app.origin = client_origin(app.client)
        app.links = _safe_links(app.client, app.origin)
    apps.sort(key=lambda app: (app.name.casefold(), app.client.client_id))
    return apps


@method_decorator([never_cache, xframe_options_deny], name="dispatch")
class ConnectedAppsView(LoginRequiredMixin, TemplateView):
    """GET: the signed-in user's connected apps, each with a "Revoke access" form."""

    template_name = "oauth_server/connected_apps.html"
    http_method_names = ["get", "head", "options"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return no_frames(super().dispatch(request, *args, **kwargs))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(apps=connected_apps(self.request.user), **kwargs)


@method_decorator([never_cache, xframe_options_deny], name="dispatch")
class RevokeConnectedAppView(LoginRequiredMixin, View):
    """POST only (CSRF-checked): withdraw the user's consent for one app and revoke its tokens.

    Only the signed-in user's own grants are reachable: a client they have no consent for and no
    live token at is a 404, whoever else uses it. Submitting twice (a double click, the back
    button) is not an error: the app is already gone, so the user is sent back with a note.
    """

    http_method_names = ["post"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return no_frames(super().dispatch(request, *args, **kwargs))

    def post(self, request: HttpRequest, client_id: str) -> HttpResponse:
        user = request.user
        client = Client.objects.by_client_id(client_id).first()
        if client is None:
            raise Http404
        name = client.name or client.client_id
        consent = Consent.objects.filter(user=user, client=client).first()
        if consent is not None and consent.is_active:
            revoke_consent(consent)
        elif any(app.client.pk == client.pk for app in connected_apps(user)):
            # A first-party (skip_consent) app, or tokens without a consent row: cut them off.
            revoke_user_tokens(user, client=client, via="connected_apps", request=request)
        elif consent is not None:
            messages.info(
                request, _("Access for %(name)s was already revoked.") % {"name": name}, fail_silently=True
            )
            return self._back()
        else:
            raise Http404
        messages.success(
            request, _("%(name)s no longer has access to your account.") % {"name": name}, fail_silently=True
        )
        return self._back()

    def _back(self) -> HttpResponse:
        # 303: the browser follows with a GET, so reloading the list never re-submits (PRG).
        return HttpResponseRedirect(reverse("oauth2_provider:connected-apps"), status=303)
