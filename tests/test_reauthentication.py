"""prompt=login and max_age ask for a fresh sign-in without ending the session first (issue 9, item 5).

A top-level link from any site to the authorization endpoint with prompt=login or max_age=0 used to
sign the user out at once. Now the session stays until a new sign-in succeeds; the login page's
``next`` carries a signed marker that only a sign-in made after the request satisfies.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

import pytest
from django.contrib.sessions.models import Session
from django.core import signing
from django.test import Client as BrowserClient
from freezegun import freeze_time
from joserfc import jwt
from joserfc.jwk import KeySet

from oauth_server.claims import subject_for
from oauth_server.models import AuditEvent, Grant
from oauth_server.reauthentication import REAUTH_PARAM
from tests.factories import DEFAULT_PASSWORD, ClientFactory, UserFactory, pkce_pair
from tests.helpers import (
    AUTHORIZE_URL,
    authorize_params,
    consent_form_data,
    exchange_code,
    get_authorize,
    query,
)
from tests.test_pages import Page

START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
LOGIN_URL = "/accounts/login/"
CONNECTED_APPS_URL = "/oauth/connected-apps/"
REAUTH_CASES = [{"prompt": "login"}, {"max_age": "0"}]
REAUTH_IDS = ["prompt=login", "max_age=0"]


@pytest.fixture
def oidc_client(db):
    return ClientFactory(name="Acme Notes", scopes=["openid", "profile", "files:read"])


def sign_in(browser, user) -> None:
    assert browser.login(username=user.username, password=DEFAULT_PASSWORD)


def ask(browser, oidc_client, **extra) -> tuple[object, str]:
    """An authorization request; returns (response, code_verifier)."""
    verifier, challenge = pkce_pair()
    params = authorize_params(oidc_client, challenge=challenge, scope="openid", nonce="n-1", **extra)
    return get_authorize(browser, params), verifier


def next_of(response) -> str:
    assert response.status_code == 302, response
    assert urlsplit(response["Location"]).path == LOGIN_URL
    return query(response["Location"])["next"]


def login_form_post(browser, next_url: str, user) -> object:
    """Submit the real login page (oauth_server.views.login.LoginView) as a browser would."""
    page = browser.get(LOGIN_URL + "?" + urlencode({"next": next_url}))
    assert page.status_code == 200
    fields = Page(page.content.decode()).post_form_fields()
    return browser.post(
        LOGIN_URL + "?" + urlencode({"next": next_url}),
        {**fields, "username": user.username, "password": DEFAULT_PASSWORD},
    )


def finish(browser, oidc_client, url: str, verifier: str) -> dict:
    """Follow the way back from the login page to a code, exchange it, return the ID token's claims."""
    response = browser.get(url)
    if response.status_code == 200:  # the consent page
        response = browser.post(AUTHORIZE_URL, {**consent_form_data(response), "allow": "true"})
    assert response.status_code == 302 and "code" in query(response["Location"]), response
    body = exchange_code(browser, oidc_client, query(response["Location"])["code"], verifier).json()
    key_set = KeySet.import_key_set(browser.get("/oauth/.well-known/jwks.json").json())
    return jwt.decode(body["id_token"], key_set).claims


def session_user(browser) -> str | None:
    return browser.session.get("_auth_user_id")


# --- the session survives the request ---------------------------------------------------------------
@pytest.mark.parametrize("extra", REAUTH_CASES, ids=REAUTH_IDS)
def test_reauthentication_request_keeps_the_session_and_shows_the_login_page(
    client, user, oidc_client, extra
):
    sign_in(client, user)
    key = client.session.session_key
    response, _ = ask(client, oidc_client, **extra)
    next_url = next_of(response)
    assert "prompt" not in query(next_url) and "max_age" not in query(next_url)
    assert REAUTH_PARAM in query(next_url)
    # Still signed in, same session: another site's link cannot sign the user out.
    assert session_user(client) == str(user.pk) and client.session.session_key == key
    assert client.get(CONNECTED_APPS_URL).status_code == 200
    assert not AuditEvent.objects.filter(event="logout").exists()
    assert not Grant.objects.exists()


@pytest.mark.parametrize("extra", REAUTH_CASES, ids=REAUTH_IDS)
def test_cross_site_navigation_does_not_sign_the_user_out(client, user, oidc_client, extra):
    """What another site's link does: a top-level GET with a foreign Referer, then the user leaves."""
    sign_in(client, user)
    params = authorize_params(oidc_client, challenge=pkce_pair()[1], scope="openid", **extra)
    client.get(
        AUTHORIZE_URL + "?" + urlencode(params),
        HTTP_REFERER="https://evil.example/",
        HTTP_SEC_FETCH_SITE="cross-site",
    )
    assert client.get(CONNECTED_APPS_URL).status_code == 200  # abandoning the login page: still in


def test_the_login_page_shows_the_form_to_the_signed_in_user(client, user, oidc_client):
    sign_in(client, user)
    next_url = next_of(ask(client, oidc_client, prompt="login")[0])
    response = client.get(LOGIN_URL + "?" + urlencode({"next": next_url}))
    assert response.status_code == 200 and response.context["reauthenticating"] is True
    page = Page(response.content.decode())
    assert page.text("h1") == "Sign in again"
    assert page.text("p", class_="oas-lead") == "to continue to Acme Notes"
    assert user.username in page.text("p", class_="oas-reauthenticate")
    assert page.one("input", name="password")
    assert page.post_form_fields()["next"] == next_url


def test_the_login_page_without_a_marker_is_the_plain_sign_in(client, user, oidc_client):
    sign_in(client, user)
    response = client.get(LOGIN_URL)
    assert response.status_code == 200 and response.context["reauthenticating"] is False


# --- signing in again --------------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [*REAUTH_CASES, {"max_age": "60"}], ids=[*REAUTH_IDS, "max_age=60"])
def test_signing_in_again_completes_the_flow_with_the_new_auth_time(client, user, oidc_client, extra):
    with freeze_time(START) as clock:
        sign_in(client, user)
        old_key = client.session.session_key
        clock.tick(timedelta(minutes=10))
        response, verifier = ask(client, oidc_client, **extra)
        next_url = next_of(response)
        clock.tick(timedelta(seconds=5))
        signed_in = login_form_post(client, next_url, user)
        assert signed_in.status_code == 302 and signed_in["Location"] == next_url
        # Same user, yet a fresh session key (Django's login() keeps it for the same user).
        assert client.session.session_key != old_key
        assert not Session.objects.filter(session_key=old_key).exists()
        claims = finish(client, oidc_client, next_url, verifier)
    assert claims["auth_time"] == int((START + timedelta(minutes=10, seconds=5)).timestamp())
    assert claims["sub"] and claims["nonce"] == "n-1"


def test_max_age_zero_does_not_loop_even_seconds_later(client, user, oidc_client):
    with freeze_time(START) as clock:
        sign_in(client, user)
        clock.tick(timedelta(seconds=1))
        response, verifier = ask(client, oidc_client, max_age="0")
        next_url = next_of(response)
        clock.tick(timedelta(seconds=2))
        sign_in(client, user)
        clock.tick(timedelta(seconds=3))
        assert client.get(next_url).status_code == 200  # the consent page, not the login page again
        claims = finish(client, oidc_client, next_url, verifier)
    assert claims["auth_time"] == int((START + timedelta(seconds=3)).timestamp())


def test_signing_in_within_the_same_second_satisfies_the_marker(client, user, oidc_client):
    with freeze_time(START):
        sign_in(client, user)
        next_url = next_of(ask(client, oidc_client, prompt="login")[0])
        sign_in(client, user)
        assert client.get(next_url).status_code == 200


def test_signing_in_again_as_the_same_user_rotates_the_session_key(client, user):
    """Django's login() keeps the key when the signed-in user signs in again; we cycle it."""
    sign_in(client, user)
    old_key = client.session.session_key
    sign_in(client, user)
    assert client.session.session_key != old_key and session_user(client) == str(user.pk)
    assert not Session.objects.filter(session_key=old_key).exists()


@pytest.mark.parametrize("extra", REAUTH_CASES, ids=REAUTH_IDS)
def test_anonymous_user_signs_in_once(client, user, oidc_client, extra):
    with freeze_time(START) as clock:
        response, verifier = ask(client, oidc_client, **extra)
        next_url = next_of(response)
        assert REAUTH_PARAM in query(next_url)
        clock.tick(timedelta(seconds=20))
        assert login_form_post(client, next_url, user)["Location"] == next_url
        clock.tick(timedelta(seconds=2))
        claims = finish(client, oidc_client, next_url, verifier)
    assert claims["auth_time"] == int((START + timedelta(seconds=20)).timestamp())


def test_another_user_signing_in_gets_a_new_session(client, user, oidc_client):
    other = UserFactory(username="grace")
    sign_in(client, user)
    old_key = client.session.session_key
    response, verifier = ask(client, oidc_client, prompt="login")
    next_url = next_of(response)
    assert login_form_post(client, next_url, other)["Location"] == next_url
    assert client.session.session_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()
    assert session_user(client) == str(other.pk)
    claims = finish(client, oidc_client, next_url, verifier)
    assert claims["sub"] == subject_for(other) != subject_for(user)


def test_switch_account_link_replaces_the_session_only_on_success(client, user, oidc_client):
    other = UserFactory(username="grace")
    sign_in(client, user)
    page = Page(ask(client, oidc_client)[0].content.decode())
    href = page.one("a", class_="oas-account-switch")["attrs"]["href"]
    next_url = next_of(client.get(href))
    wrong = client.post(
        LOGIN_URL + "?" + urlencode({"next": next_url}),
        {"username": "grace", "password": "wrong", "next": next_url},
    )
    assert wrong.status_code == 200  # the form again
    assert session_user(client) == str(user.pk)  # a failed sign-in changes nothing
    assert login_form_post(client, next_url, other)["Location"] == next_url
    assert session_user(client) == str(other.pk)
    consent = client.get(next_url)
    assert consent.status_code == 200 and consent.context["user"] == other


# --- the marker cannot be skipped, forged or replayed ------------------------------------------------
def test_the_old_session_cannot_take_the_way_back(client, user, oidc_client):
    sign_in(client, user)
    next_url = next_of(ask(client, oidc_client, prompt="login")[0])
    response = client.get(next_url)
    again = next_of(response)  # the login page again, never a code or the consent page
    assert REAUTH_PARAM in query(again)
    assert session_user(client) == str(user.pk)


def test_prompt_none_on_the_way_back_without_a_sign_in_is_login_required(client, user, oidc_client):
    sign_in(client, user)
    next_url = next_of(ask(client, oidc_client, prompt="login")[0])
    response = client.get(next_url + "&prompt=none")
    assert response.status_code == 302 and query(response["Location"])["error"] == "login_required"


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda m: m[:-2] + ("AA" if not m.endswith("AA") else "BB"), id="tampered-signature"),
        pytest.param(lambda m: "garbage", id="garbage"),
        pytest.param(
            lambda m: signing.dumps({"after": 0, "not": ""}, salt="another.salt"), id="signed-for-another-use"
        ),
        pytest.param(lambda m: signing.dumps({"after": 0, "not": ""}, key="not-our-key"), id="another-key"),
    ],
)
def test_a_forged_marker_is_refused(client, user, oidc_client, forge):
    sign_in(client, user)
    next_url = next_of(ask(client, oidc_client, prompt="login")[0])
    params = query(next_url)
    params[REAUTH_PARAM] = forge(params[REAUTH_PARAM])
    response = get_authorize(client, params)
    assert REAUTH_PARAM in query(next_of(response))


def test_a_repeated_marker_is_refused(client, user, oidc_client):
    sign_in(client, user)
    next_url = next_of(ask(client, oidc_client, prompt="login")[0])
    sign_in(client, user)
    assert client.get(next_url).status_code == 200
    duplicated = next_url + "&" + urlencode({REAUTH_PARAM: query(next_url)[REAUTH_PARAM]})
    assert next_of(client.get(duplicated))


def test_a_marker_obtained_elsewhere_does_not_satisfy_an_older_session(client, user, oidc_client):
    """An attacker signs in, collects a marker from their own prompt=login, and sends the victim the
    marker-bearing URL: the victim signed in before the marker was issued, so it asks again."""
    with freeze_time(START) as clock:
        sign_in(client, user)  # the victim
        clock.tick(timedelta(minutes=1))
        attacker = BrowserClient()
        sign_in(attacker, UserFactory(username="mallory"))
        attackers_url = next_of(ask(attacker, oidc_client, prompt="login")[0])
        clock.tick(timedelta(minutes=1))
        assert next_of(client.get(attackers_url))  # the victim: login page, no code
        assert session_user(client) == str(user.pk)


def test_stripping_the_marker_is_a_request_without_prompt_login(client, user, oidc_client):
    """Dropping the marker gives a plain request, answered with the OLD auth_time: the client that
    sent prompt=login or max_age sees the stale auth_time in the ID token (OIDC Core 3.1.3.7)."""
    with freeze_time(START) as clock:
        sign_in(client, user)
        clock.tick(timedelta(minutes=10))
        response, verifier = ask(client, oidc_client, prompt="login")
        params = query(next_of(response))
        del params[REAUTH_PARAM]
        claims = finish(client, oidc_client, AUTHORIZE_URL + "?" + urlencode(params), verifier)
    assert claims["auth_time"] == int(START.timestamp())


def test_prompt_none_with_a_stale_max_age_is_still_login_required(client, user, oidc_client):
    with freeze_time(START) as clock:
        sign_in(client, user)
        clock.tick(timedelta(hours=1))
        response, _ = ask(client, oidc_client, max_age="60", prompt="none")
    assert query(response["Location"])["error"] == "login_required"
    assert session_user(client) == str(user.pk)
