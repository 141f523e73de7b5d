"""The end user's "Connected apps" page: what it lists, revoking access, and its guards.

Tokens come from the real code + refresh flow (tests/helpers.py) where timing or revocation is
what is tested, so "last used" and "tokens stop working" are checked against what the endpoints do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client as BrowserClient
from django.utils import timezone
from freezegun import freeze_time

from oauth_server.models import AccessToken, Consent, Grant, RefreshToken
from tests.factories import (
    AccessTokenFactory,
    ClientFactory,
    ConsentFactory,
    RefreshTokenFactory,
    ScopeFactory,
    UserFactory,
)
from tests.helpers import authorize_params, exchange_code, get_authorize, get_code, token_request
from tests.test_pages import Page

URL = "/oauth/connected-apps/"
USERINFO_URL = "/oauth/userinfo/"


def revoke_url(client) -> str:
    return f"{URL}{client.client_id}/revoke/"


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def app(db):
    ScopeFactory(name="photos:read", description="See your photos")
    return ClientFactory(
        name="Acme Photos",
        client_uri="https://photos.acme.example/",
        logo_uri="https://photos.acme.example/logo.png",
        scopes=["openid", "email", "photos:read"],
    )


def apps_on(page: Page) -> dict[str, dict]:
    """client_id -> the app's name, scope texts, dates and revoke form, as rendered."""
    found = {}
    for item in page.find("li", class_="oas-app"):
        found[item["attrs"]["data-client-id"]] = {"text": " ".join(item["text"].split())}
    return found


def scope_texts(page: Page) -> dict[str, str]:
    return {
        e["attrs"]["data-scope"]: " ".join(e["text"].split()) for e in page.find("li", class_="oas-scope")
    }


def tokens_for(browser, client, scope: str) -> dict:
    code, verifier = get_code(browser, client, scope=scope)
    response = exchange_code(browser, client, code, verifier)
    assert response.status_code == 200, response.content
    return response.json()


def refresh(browser, client, refresh_token: str):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return token_request(browser, data, client=client, secret=client.raw_secret)


# --- listing --------------------------------------------------------------------------------------
def test_lists_only_the_users_active_consents_with_scope_descriptions(logged_in, user, app):
    ConsentFactory(user=user, client=app, scope="openid photos:read")
    revoked = ClientFactory(name="Old App")
    ConsentFactory(user=user, client=revoked, scope="openid", revoked_at=timezone.now())
    someone_elses = ClientFactory(name="Not Mine")
    ConsentFactory(user=UserFactory(), client=someone_elses, scope="openid")

    response = logged_in.get(URL)

    assert response.status_code == 200
    page = Page(response.content.decode())
    assert list(apps_on(page)) == [app.client_id]
    assert page.text("h1") == "Connected apps"
    assert [h["text"].strip() for h in page.find("h2")] == ["Acme Photos"]
    # The user-facing descriptions, not the scope names; a standard scope's from migration 0002.
    assert scope_texts(page) == {"openid": "Sign you in with your account", "photos:read": "See your photos"}
    assert page.one("img", class_="oas-app-logo")["attrs"]["src"] == "https://photos.acme.example/logo.png"
    home = page.one("a", class_="oas-app-home")
    assert home["attrs"]["href"] == "https://photos.acme.example/"
    assert " ".join(home["text"].split()) == "Home page of Acme Photos"
    assert "Old App" not in response.content.decode() and "Not Mine" not in response.content.decode()


def test_page_headers_forbid_caching_and_framing(logged_in, user, app):
    ConsentFactory(user=user, client=app, scope="openid")
    response = logged_in.get(URL)
    assert "no-store" in response["Cache-Control"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_revoke_is_a_real_button_in_a_csrf_post_form(logged_in, user, app):
    ConsentFactory(user=user, client=app, scope="openid")
    page = Page(logged_in.get(URL).content.decode())
    form = page.one("form", class_="oas-app-actions")
    assert form["attrs"]["method"] == "post"
    assert form["attrs"]["action"] == revoke_url(app)
    assert page.one("input", name="csrfmiddlewaretoken")["attrs"]["type"] == "hidden"
    button = page.one("button", class_="oas-app-revoke")
    assert button["attrs"]["type"] == "submit"
    assert button["text"].strip() == "Revoke access"
    # The accessible name says which app; it contains the visible label (WCAG 2.5.3).
    assert button["attrs"]["aria-label"] == "Revoke access for Acme Photos"


def test_client_urls_that_are_not_http_are_neither_links_nor_images(logged_in, user):
    shady = ClientFactory(name="Shady", client_uri="javascript:alert(1)", logo_uri="data:image/png;base64,AA")
    ConsentFactory(user=user, client=shady, scope="")
    response = logged_in.get(URL)
    page = Page(response.content.decode())
    assert not page.find("img") and not page.find("a", class_="oas-app-home")
    assert "javascript:" not in response.content.decode()
    assert page.one("span", class_="oas-avatar")["text"].strip() == "S"
    assert "It did not ask for access to any of your information." in apps_on(page)[shady.client_id]["text"]


def test_empty_state(logged_in, user):
    response = logged_in.get(URL)
    page = Page(response.content.decode())
    assert not page.find("li", class_="oas-app")
    assert page.text("h2") == "You haven't connected any apps"


def test_connected_and_last_used_after_a_real_code_and_refresh_flow(logged_in, user, app):
    connected_at = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    refreshed_at = datetime(2026, 3, 5, 17, 30, tzinfo=UTC)
    with freeze_time(connected_at):
        first = tokens_for(logged_in, app, "openid photos:read")
    with freeze_time(refreshed_at):
        response = refresh(logged_in, app, first["refresh_token"])
        assert response.status_code == 200, response.content
    with freeze_time(refreshed_at + timedelta(days=2)):
        response = logged_in.get(URL)

    [listed] = response.context["apps"]
    assert listed.connected == connected_at
    assert listed.last_used == refreshed_at
    page = Page(response.content.decode())
    times = [t["attrs"]["datetime"] for t in page.find("time")]
    assert times == [connected_at.isoformat(), refreshed_at.isoformat()]
    text = apps_on(page)[app.client_id]["text"]
    assert "Connected March 1, 2026" in text
    assert "Last used March 5, 2026, 5:30 p.m." in text


def test_last_used_is_when_the_consent_changed_when_no_token_was_issued(logged_in, user, app):
    with freeze_time("2026-01-10 08:00:00"):
        consent = ConsentFactory(user=user, client=app, scope="openid")
    [listed] = logged_in.get(URL).context["apps"]
    assert listed.last_used == consent.updated == datetime(2026, 1, 10, 8, 0, tzinfo=UTC)


def test_apps_are_sorted_by_name(logged_in, user):
    for name in ("zeta", "Alpha", "beta"):
        ConsentFactory(user=user, client=ClientFactory(name=name), scope="")
    assert [a.name for a in logged_in.get(URL).context["apps"]] == ["Alpha", "beta", "zeta"]


# --- first-party apps: live tokens without a consent row ------------------------------------------
def test_skip_consent_app_with_live_tokens_is_listed_and_can_be_cut_off(logged_in, user):
    trusted = ClientFactory(name="Intranet", skip_consent=True, scopes=["openid", "email"])
    body = tokens_for(logged_in, trusted, "openid email")
    assert not Consent.objects.filter(user=user, client=trusted).exists()

    page = Page(logged_in.get(URL).content.decode())
    assert list(apps_on(page)) == [trusted.client_id]
    assert scope_texts(page) == {"openid": "Sign you in with your account", "email": "See your email address"}
    assert "did not ask for your permission" in apps_on(page)[trusted.client_id]["text"]

    response = logged_in.post(revoke_url(trusted))
    assert response.status_code == 303
    assert not AccessToken.objects.filter(user=user, application=trusted).exists()
    assert not RefreshToken.objects.filter(user=user, application=trusted, revoked__isnull=True).exists()
    assert refresh(logged_in, trusted, body["refresh_token"]).json()["error"] == "invalid_grant"
    assert not logged_in.get(URL).context["apps"]


def test_tokens_that_no_longer_work_do_not_list_an_app(logged_in, user):
    expired = ClientFactory(name="Expired")
    AccessTokenFactory(user=user, application=expired, expires=timezone.now() - timedelta(seconds=1))
    revoked_refresh = ClientFactory(name="Revoked refresh")
    RefreshTokenFactory(user=user, application=revoked_refresh, revoked=timezone.now(), access_token=None)
    aged_refresh = ClientFactory(name="Aged refresh", refresh_token_lifetime=60)
    with freeze_time(timezone.now() - timedelta(seconds=120)):
        RefreshTokenFactory(
            user=user,
            application=aged_refresh,
            access_token__expires=timezone.now() + timedelta(seconds=30),
        )
    disabled = ClientFactory(name="Disabled", is_enabled=False)
    AccessTokenFactory(user=user, application=disabled)
    others = ClientFactory(name="Other user's")
    AccessTokenFactory(user=UserFactory(), application=others)

    assert logged_in.get(URL).context["apps"] == []


def test_a_live_refresh_token_alone_lists_the_app(logged_in, user):
    trusted = ClientFactory(name="Sync", skip_consent=True)
    RefreshTokenFactory(
        user=user,
        application=trusted,
        access_token__expires=timezone.now() - timedelta(minutes=5),
        access_token__scope="openid",
    )
    [listed] = logged_in.get(URL).context["apps"]
    assert listed.client == trusted and listed.consent is None
    assert listed.scope_names == ["openid"]


# --- revoking ---------------------------------------------------------------------------------------
def test_revoke_stops_the_tokens_and_asks_for_consent_again(logged_in, user, app):
    body = tokens_for(logged_in, app, "openid photos:read")
    assert logged_in.get(USERINFO_URL, HTTP_AUTHORIZATION=f"Bearer {body['access_token']}").status_code == 200
    unused_code, _verifier = get_code(logged_in, app, scope="openid")  # approved, not yet exchanged

    response = logged_in.post(revoke_url(app))

    assert response.status_code == 303
    assert response["Location"] == URL
    consent = Consent.objects.get(user=user, client=app)
    assert consent.revoked_at is not None
    assert not AccessToken.objects.filter(user=user, application=app).exists()
    assert not RefreshToken.objects.filter(user=user, application=app, revoked__isnull=True).exists()
    assert not Grant.objects.filter(user=user, application=app).exists()
    assert logged_in.get(USERINFO_URL, HTTP_AUTHORIZATION=f"Bearer {body['access_token']}").status_code == 401
    assert refresh(logged_in, app, body["refresh_token"]).json()["error"] == "invalid_grant"

    page = logged_in.get(URL)
    parsed = Page(page.content.decode())
    assert parsed.text("p", class_="oas-message") == "Acme Photos no longer has access to your account."
    assert parsed.one("div", class_="oas-messages")["attrs"]["role"] == "status"
    assert parsed.text("h2") == "You haven't connected any apps"

    # The next authorization request shows the consent page again instead of approving silently.
    again = get_authorize(logged_in, authorize_params(app, challenge="x" * 43, scope="openid"))
    assert again.status_code == 200
    assert again.templates[0].name == "oauth_server/consent.html"


def test_revoke_leaves_other_apps_and_other_users_alone(logged_in, user, app):
    other_app = ClientFactory(name="Other App")
    ConsentFactory(user=user, client=app, scope="openid")
    mine_elsewhere = ConsentFactory(user=user, client=other_app, scope="openid")
    other_user = UserFactory()
    theirs = ConsentFactory(user=other_user, client=app, scope="openid")
    their_token = AccessTokenFactory(user=other_user, application=app)
    my_other_token = AccessTokenFactory(user=user, application=other_app)

    assert logged_in.post(revoke_url(app)).status_code == 303

    for consent in (mine_elsewhere, theirs):
        consent.refresh_from_db()
        assert consent.revoked_at is None
    assert AccessToken.objects.filter(pk__in=[their_token.pk, my_other_token.pk]).count() == 2


def test_another_users_consent_is_a_404(logged_in, user):
    someone = UserFactory()
    theirs = ConsentFactory(user=someone, client=ClientFactory(), scope="openid")
    token = AccessTokenFactory(user=someone, application=theirs.client)

    response = logged_in.post(revoke_url(theirs.client))

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert AccessToken.objects.filter(pk=token.pk).exists()


def test_unknown_client_is_a_404(logged_in, user):
    assert logged_in.post(f"{URL}no-such-client/revoke/").status_code == 404


def test_revoking_twice_is_not_an_error(logged_in, user, app):
    ConsentFactory(user=user, client=app, scope="openid")
    assert logged_in.post(revoke_url(app)).status_code == 303
    logged_in.get(URL)  # the success message is shown and consumed

    response = logged_in.post(revoke_url(app), follow=True)

    assert response.redirect_chain == [(URL, 303)]
    assert Page(response.content.decode()).text("p", class_="oas-message") == (
        "Access for Acme Photos was already revoked."
    )


def test_get_on_the_revoke_url_is_405(logged_in, user, app):
    consent = ConsentFactory(user=user, client=app, scope="openid")
    assert logged_in.get(revoke_url(app)).status_code == 405
    consent.refresh_from_db()
    assert consent.revoked_at is None


def test_revoke_without_csrf_token_is_403_and_with_the_pages_token_works(user, app):
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(user)
    consent = ConsentFactory(user=user, client=app, scope="openid")

    assert browser.post(revoke_url(app)).status_code == 403
    consent.refresh_from_db()
    assert consent.revoked_at is None

    page = Page(browser.get(URL).content.decode())
    token = page.one("input", name="csrfmiddlewaretoken")["attrs"]["value"]
    assert browser.post(revoke_url(app), {"csrfmiddlewaretoken": token}).status_code == 303
    consent.refresh_from_db()
    assert consent.revoked_at is not None


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_users_are_sent_to_the_login_page(client, app, method):
    target = URL if method == "get" else revoke_url(app)
    response = getattr(client, method)(target)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={target}"


# --- queries ----------------------------------------------------------------------------------------
def _connect(user, n: int) -> None:
    """n apps: consented ones with tokens and refreshes, and one first-party app with tokens only."""
    for i in range(n):
        client = ClientFactory(scopes=["openid", f"scope{i}:read"])
        ConsentFactory(user=user, client=client, scope=f"openid scope{i}:read")
        RefreshTokenFactory(user=user, application=client)
        AccessTokenFactory(user=user, application=client)
    trusted = ClientFactory(skip_consent=True)
    RefreshTokenFactory(user=user, application=trusted, access_token__scope=f"openid scope{n}:x")


def test_query_count_does_not_grow_with_the_number_of_apps(logged_in, user, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _connect(user, 1)
    with CaptureQueriesContext(connection) as one_app:
        assert len(logged_in.get(URL).context["apps"]) == 2

    _connect(user, 4)  # now 5 consented apps and 2 first-party ones
    with django_assert_max_num_queries(len(one_app)):
        assert len(logged_in.get(URL).context["apps"]) == 7


# --- French ---------------------------------------------------------------------------------------
def test_page_in_french(logged_in, user, app):
    ConsentFactory(user=user, client=app, scope="openid email")
    response = logged_in.get(URL, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")
    page = Page(response.content.decode())
    assert response["Content-Language"] == "fr"
    assert page.text("h1") == "Applications connectées"
    assert page.text("button") == "Révoquer l’accès"
    assert page.one("button")["attrs"]["aria-label"] == "Révoquer l’accès de Acme Photos"
    assert scope_texts(page) == {
        "openid": "Vous connecter avec votre compte",
        "email": "Voir votre adresse e-mail",
    }

    logged_in.post(revoke_url(app), HTTP_ACCEPT_LANGUAGE="fr")
    after = Page(logged_in.get(URL, HTTP_ACCEPT_LANGUAGE="fr").content.decode())
    assert after.text("p", class_="oas-message") == "Acme Photos n’a plus accès à votre compte."
    assert after.text("h2") == "Vous n’avez connecté aucune application"
