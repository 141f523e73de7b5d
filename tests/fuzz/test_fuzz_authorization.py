"""Hostile input at the authorization endpoint (GET and the consent POST) and the login page; the
regressions the fuzzer found there."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.core import signing
from hypothesis import given
from hypothesis import strategies as st

from oauth_server.models import Client, Consent, Grant
from tests.factories import (
    DEFAULT_PASSWORD,
)
from tests.fuzz.harness import (
    FUZZ,
    NUL_CLIENT,
    Sent,
    assert_page,
    check_authorize,
    check_login,
    describe,
    diff,
    login_next,
    observe,
    snapshot,
)
from tests.fuzz.strategies import DEEP_NESTING, bodies, headers, methods, parameters
from tests.fuzz.world import CALLBACK, FIRST_PARTY_CALLBACK, SPA_CALLBACK, World


# --- authorization endpoint -------------------------------------------------------------------------
def authorize_parameters(world: World) -> dict[str, list[str]]:
    return {
        "response_type": ["code", "token", "id_token", "code id_token", "none"],
        "client_id": world.client_ids(),
        "redirect_uri": [CALLBACK, SPA_CALLBACK, FIRST_PARTY_CALLBACK, "https://evil.example/cb"]
        + [CALLBACK + "?x=1", CALLBACK + "#f", "//evil.example", "/\\evil.example", "javascript:alert(1)"],
        "scope": ["openid", "openid profile", "files:read", "reports:read", "oauth:admin", "nope"],
        "state": ["xyz", "a" * 300],
        "code_challenge": [world.challenge, "abc", world.challenge + "=", "A" * 129],
        "code_challenge_method": ["S256", "plain"],
        "nonce": ["n-0S6", "n" * 255],
        "prompt": ["none", "login", "consent", "none login", "select_account"],
        "max_age": ["0", "3600", "-1", "1e3", "²", "9" * 4301, "9" * 16],
        "oauth_server_reauth": [
            "x",
            signing.dumps({"after": 0, "not": ""}, salt="oauth_server.reauthentication"),
        ],
        "id_token_hint": [world.id_token, world.access_token],
        "login_hint": ["alice"],
        "resource": ["https://api.example.com", "urn:x"],
        "response_mode": ["query", "fragment", "form_post"],
        "claims": ['{"userinfo": {"email": null}}', "{", "[]", DEEP_NESTING[0], DEEP_NESTING[1]],
        "request": ["eyJ.eyJ.x", *world.request_objects],
        "request_uri": ["https://evil.example/r", "urn:ietf:params:oauth:request_uri:x"],
        "dpop_jkt": [world.dpop_jkt, "short", world.dpop_jkt + "="],
        "ui_locales": ["fr", "xx"],
    }


@FUZZ
@given(data=st.data(), logged_in=st.booleans())
def test_authorization_endpoint_get(world, data, logged_in):
    sent = Sent(
        method=data.draw(methods("GET")),
        path="/oauth/authorize/",
        query=data.draw(parameters(authorize_parameters(world))),
        body=None,
        meta=data.draw(headers(world)),
    )
    response, changed = observe(world, sent, logged_in=world.user if logged_in else None)
    client_ids = [v for k, v in sent.query if k == "client_id"]
    check_authorize(world, sent, response, changed, client_ids)


def consent_parameters(world: World) -> dict[str, list[str]]:
    return {
        "client_id": world.client_ids(),
        "redirect_uri": [CALLBACK, SPA_CALLBACK, FIRST_PARTY_CALLBACK, "https://evil.example/cb"],
        "response_type": ["code", "token"],
        "scope": ["openid", "openid profile", "files:read", "oauth:admin", "nope"],
        "state": ["xyz"],
        "code_challenge": [world.challenge, "abc", "A" * 129],
        "code_challenge_method": ["S256", "plain"],
        "nonce": ["n", "n" * 255, "n" * 256],
        "claims": ['{"userinfo": {"email": null}}', "{", DEEP_NESTING[0]],
        "resource": ["https://api.example.com", "urn:x"],
        "dpop_jkt": [world.dpop_jkt, "short", "A" * 65],
        "request_uri": ["urn:ietf:params:oauth:request_uri:x", "https://evil.example/r"],
        "allow": ["true", "false", "Authorize"],
    }


@FUZZ
@given(data=st.data())
def test_authorization_endpoint_consent_post(world, data):
    pairs = data.draw(parameters(consent_parameters(world)))
    sent = Sent(
        method=data.draw(methods("POST")),
        path="/oauth/authorize/",
        query=data.draw(st.one_of(st.just([]), parameters({"client_id": world.client_ids()}))),
        body=data.draw(bodies(pairs)),
        meta=data.draw(headers(world, authorization=False)),
        body_pairs=pairs,
    )
    response, changed = observe(world, sent, logged_in=world.user)
    client_ids = sent.values("client_id") + [v for k, v in pairs if k == "client_id"]
    check_authorize(world, sent, response, changed, client_ids)


# --- login page --------------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_login_page(world, data):
    """The login page reads ``next`` (an authorization request: its client_id and login_hint)."""
    authorize_pairs = data.draw(parameters(authorize_parameters(world)))
    next_values = [login_next(world, authorize_pairs), "https://evil.example/", "//evil.example"]
    base = {"next": next_values, "username": [world.user.username], "password": [DEFAULT_PASSWORD]}
    pairs = data.draw(parameters(base))
    method = data.draw(methods("GET", "POST"))
    as_query = method != "POST" or data.draw(st.booleans())
    sent = Sent(
        method=method,
        path="/accounts/login/",
        query=pairs if as_query else data.draw(st.one_of(st.just([]), parameters({"next": next_values}))),
        body=None if as_query else data.draw(bodies(pairs)),
        meta=data.draw(headers(world, authorization=False)),
        body_pairs=pairs,
    )
    response, changed = observe(world, sent)
    check_login(world, sent, response, changed)


# --- regressions: what the fuzzer found, pinned down -------------------------------------------------
@pytest.mark.parametrize("allow", [None, "true"])
@pytest.mark.parametrize(
    "redirect_uri", ["https://evil.example/cb", SPA_CALLBACK, CALLBACK + "/", CALLBACK + "?x=1", ""]
)
def test_tampered_redirect_uri_in_the_consent_form_is_refused(client, world, allow, redirect_uri):
    """A denial was sent to the consent form's hidden redirect_uri unchecked: an open redirect."""
    client.force_login(world.user)
    data = {
        "client_id": world.web.client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "openid",
        "state": "s",
        "code_challenge": world.challenge,
        "code_challenge_method": "S256",
    }
    if allow:
        data["allow"] = allow
    before = snapshot()
    response = client.post("/oauth/authorize/", data)
    assert response.status_code == 400, describe(response)
    assert "Location" not in response
    assert_page(Sent("POST", "/oauth/authorize/", [], None, {}), response)
    assert diff(before, snapshot()) == []


def test_denial_still_goes_back_to_the_registered_redirect_uri(client, world):
    client.force_login(world.user)
    data = {"client_id": world.web.client_id, "redirect_uri": CALLBACK, "response_type": "code"}
    data.update(scope="openid", state="s", code_challenge=world.challenge, code_challenge_method="S256")
    response = client.post("/oauth/authorize/", data)
    assert response.status_code == 302
    assert response["Location"].startswith(CALLBACK + "?error=access_denied&state=s")


@pytest.mark.parametrize("logged_in", [True, False])
def test_nul_byte_in_client_id_at_the_authorization_endpoint_is_an_error_page(client, world, logged_in):
    if logged_in:
        client.force_login(world.user)
    query = urlencode({"response_type": "code", "client_id": NUL_CLIENT, "redirect_uri": CALLBACK})
    response = client.get(f"/oauth/authorize/?{query}")
    assert response.status_code == 400, describe(response)
    assert "Location" not in response
    assert b"invalid_request" in response.content or b"invalid_client" in response.content


def test_nul_byte_in_the_consent_forms_client_id_is_refused(client, world):
    client.force_login(world.user)
    data = {"client_id": NUL_CLIENT, "redirect_uri": CALLBACK, "response_type": "code", "allow": "true"}
    response = client.post("/oauth/authorize/", data)
    assert response.status_code == 400, describe(response)
    assert "Location" not in response


def test_consent_is_not_recorded_when_the_approved_request_fails(client, world):
    """oauthlib answers a tampered claims field with an error redirect; the approval was recorded anyway."""
    client.force_login(world.user)
    data = {"client_id": world.web.client_id, "redirect_uri": CALLBACK, "response_type": "code"}
    data.update(scope="openid email", state="s", code_challenge=world.challenge, code_challenge_method="S256")
    before = snapshot()
    response = client.post("/oauth/authorize/", {**data, "claims": "{", "allow": "true"})
    assert response.status_code == 302
    assert "error=invalid_request" in response["Location"], response["Location"]
    assert response["Location"].startswith(CALLBACK + "?")
    assert diff(before, snapshot()) == []
    assert "email" not in Consent.objects.get(user=world.user, client=world.web).scope.split()
    # The same approval without the tampering is remembered.
    response = client.post("/oauth/authorize/", {**data, "allow": "true"})
    assert "code=" in response["Location"]
    assert "email" in Consent.objects.get(user=world.user, client=world.web).scope.split()


# --- regressions: issue 9, item 4 (500s on hostile input) ------------------------------------------
DEEP_ARRAY = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"userinfo":' * 1000 + "null" + "}" * 1000


def authorize_query(world: World, client: Client | None = None, **extra: str) -> dict[str, str]:
    """A valid authorization request of ``client`` (the web client by default), with ``extra``."""
    client = client or world.web
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri_list[0],
        "scope": "openid",
        "state": "s",
        "code_challenge": world.challenge,
        "code_challenge_method": "S256",
    }
    return {**params, **extra}


def assert_invalid_request_redirect(response, redirect_uri: str = CALLBACK) -> None:
    assert response.status_code == 302, describe(response)
    location = response["Location"]
    assert location.startswith(redirect_uri + "?"), location
    back = dict(parse_qsl(urlsplit(location).query))
    assert back["error"] == "invalid_request", back
    assert back["state"] == "s", back
    assert "code" not in back, back


@pytest.mark.parametrize(
    "max_age",
    ["²", "٣", "１", "1" * 4301, "9" * 17, "1_000", " 60", "60 ", "+60", "0x10", "6\x000"],
)
def test_max_age_of_non_ascii_digits_or_too_many_digits_is_invalid_request(client, world, max_age):
    """str.isdigit() accepted "²" and int() then failed; 4,301 digits hit Python's int-string limit."""
    client.force_login(world.user)
    before = snapshot()
    response = client.get("/oauth/authorize/?" + urlencode(authorize_query(world, max_age=max_age)))
    assert_invalid_request_redirect(response)
    assert "max_age" in dict(parse_qsl(urlsplit(response["Location"]).query))["error_description"]
    assert diff(before, snapshot()) == []


@pytest.mark.parametrize("max_age", ["9" * 16, "3600"])
def test_max_age_within_the_accepted_form_still_works(client, world, max_age):
    client.force_login(world.user)
    response = client.get("/oauth/authorize/?" + urlencode(authorize_query(world, max_age=max_age)))
    assert response.status_code == 302, describe(response)  # consent is remembered: a code at once
    assert "code" in dict(parse_qsl(urlsplit(response["Location"]).query)), response["Location"]


def test_max_age_of_zeros_asks_for_a_fresh_login(client, world):
    client.force_login(world.user)
    response = client.get("/oauth/authorize/?" + urlencode(authorize_query(world, max_age="0" * 16)))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    "claims", [DEEP_ARRAY, DEEP_OBJECT, '{"userinfo": {"a": ' + "[" * 40 + "]" * 40 + "}}"]
)
@pytest.mark.parametrize("logged_in", [True, False])
def test_deeply_nested_claims_are_invalid_request(client, world, claims, logged_in):
    """json.loads raised RecursionError (a 500), even for an anonymous user."""
    if logged_in:
        client.force_login(world.user)
    before = snapshot()
    response = client.get("/oauth/authorize/?" + urlencode(authorize_query(world, claims=claims)))
    assert_invalid_request_redirect(response)
    assert diff(before, snapshot()) == []


def test_oversized_claims_are_invalid_request(client, world):
    claims = json.dumps({"userinfo": {f"claim_{i}": None for i in range(1000)}})
    client.force_login(world.user)
    response = client.get("/oauth/authorize/?" + urlencode(authorize_query(world, claims=claims)))
    assert_invalid_request_redirect(response)


@pytest.mark.parametrize("claims", [DEEP_ARRAY, DEEP_OBJECT])
def test_deeply_nested_claims_in_the_consent_form_are_invalid_request(client, world, claims):
    client.force_login(world.user)
    before = snapshot()
    response = client.post("/oauth/authorize/", {**authorize_query(world, claims=claims), "allow": "true"})
    assert_invalid_request_redirect(response)
    assert diff(before, snapshot()) == []


def test_claims_within_the_bounds_still_reach_the_code(client, world):
    claims = {"userinfo": {"email": {"essential": True}}, "id_token": {"auth_time": {"essential": True}}}
    client.force_login(world.user)
    data = {**authorize_query(world, claims=json.dumps(claims)), "allow": "true"}
    response = client.post("/oauth/authorize/", data)
    assert "code=" in response["Location"], response["Location"]
    assert json.loads(Grant.objects.latest("pk").claims) == claims


# Values PostgreSQL refused when the code was saved (DataError, a 500): longer than the column or with
# a NUL byte. SQLite stored them.
STORED_COLUMN_VALUES = [
    pytest.param("code_challenge", "A" * 129, id="challenge-over-128"),
    pytest.param("code_challenge", "A" * 42 + "\x00", id="challenge-nul"),
    pytest.param("nonce", "n" * 256, id="nonce-over-255"),
    pytest.param("nonce", "n-0S6\x00", id="nonce-nul"),
]


@pytest.mark.parametrize(("name", "value"), STORED_COLUMN_VALUES)
def test_values_the_code_cannot_store_are_invalid_request_on_get(client, world, name, value):
    """The first-party client skips consent: the GET itself issues (saves) the code."""
    client.force_login(world.user)
    before = snapshot()
    params = authorize_query(world, world.first_party, **{name: value})
    response = client.get("/oauth/authorize/?" + urlencode(params))
    assert_invalid_request_redirect(response, FIRST_PARTY_CALLBACK)
    assert diff(before, snapshot()) == []


@pytest.mark.parametrize(("name", "value"), STORED_COLUMN_VALUES)
def test_values_the_code_cannot_store_are_invalid_request_on_consent(client, world, name, value):
    client.force_login(world.user)
    before = snapshot()
    response = client.post("/oauth/authorize/", {**authorize_query(world, **{name: value}), "allow": "true"})
    if "\x00" in value:  # Django's form fields refuse NUL: a tampered consent form, shown as a page
        assert response.status_code == 400, describe(response)
        assert "Location" not in response
    else:
        assert_invalid_request_redirect(response)
    assert diff(before, snapshot()) == []


def test_longest_nonce_the_code_can_store_still_works(client, world):
    client.force_login(world.user)
    params = authorize_query(world, world.first_party, nonce="n" * 255)
    response = client.get("/oauth/authorize/?" + urlencode(params))
    assert "code=" in response["Location"], response["Location"]
    assert Grant.objects.latest("pk").nonce == "n" * 255


@pytest.mark.parametrize(
    "next_url",
    [
        "/oauth/authorize/%3Fclient_id%3Da%2500b",
        "/oauth/authorize/?client_id=a%00b",
        "/oauth/authorize/?client_id=" + "a" * 5000,
    ],
)
def test_hostile_client_id_in_the_login_pages_next_is_ignored(client, world, next_url):
    """The login view looked the client up with DOT's raw filter: PostgreSQL refused the NUL byte."""
    response = client.get("/accounts/login/?next=" + next_url)
    assert response.status_code == 200, describe(response)
    assert response.context["client"] is None


@pytest.mark.parametrize("logged_in", [True, False])
def test_each_world_request_object_at_the_authorization_endpoint(world, logged_in):
    """Every request object of the world (valid, and validly signed hostile ones), by value, then
    the request_uri it leads to: pages, local redirects or registered redirects only."""
    statuses = []
    for signed in world.request_objects:
        pairs = [
            ("client_id", world.web.client_id),
            ("request", signed),
            ("redirect_uri", "https://evil.example/cb"),
        ]
        sent = Sent("GET", "/oauth/authorize/", pairs, None, {})
        user = world.user if logged_in else None
        response, changed = observe(world, sent, logged_in=user)
        check_authorize(world, sent, response, changed, [world.web.client_id])
        statuses.append(response.status_code)
        if response.status_code == 302:
            follow = urlsplit(response["Location"])
            assert follow.path == "/oauth/authorize/"
            assert [k for k, _ in parse_qsl(follow.query)] == ["client_id", "request_uri"]
    assert 302 in statuses and 400 in statuses, statuses


def test_the_parameters_of_a_request_object_are_checked_like_any(world, client):
    """Followed to the end: a hostile redirect URI inside a valid signature gets a page, other bad
    parameters an error redirect to the registered URI, never a 500."""
    from tests.fuzz.harness import assert_local_or_registered, registered_redirects

    client.force_login(world.user)
    outcomes = []
    for signed in world.request_objects:
        first = client.get("/oauth/authorize/", {"client_id": world.web.client_id, "request": signed})
        assert first.status_code in (302, 400), first.status_code
        if first.status_code != 302:
            continue
        second = client.get(first["Location"])
        assert second.status_code < 500
        if second.status_code == 302:
            assert_local_or_registered(second, registered_redirects(world, [world.web.client_id]))
        outcomes.append(second.status_code)
    assert 302 in outcomes and 400 in outcomes, outcomes  # codes or error redirects; error pages
