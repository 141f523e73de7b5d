"""PKCE value formats (RFC 7636 4.1, 4.2): malformed challenges are invalid_request at the authorization
endpoint (redirected, nothing saved); malformed verifiers are invalid_grant at the token endpoint
(RFC 7636 4.6), even when their hash matches the challenge."""

from __future__ import annotations

import base64
import hashlib

import pytest

from oauth_server.models import AccessToken, Grant
from tests.factories import pkce_pair
from tests.helpers import (
    AUTHORIZE_URL,
    approve,
    authorize_params,
    consent_form_data,
    exchange_code,
    get_authorize,
    query,
)

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def assert_invalid_request_redirect(response, client) -> dict[str, str]:
    assert response.status_code == 302, response
    assert response["Location"].startswith(client.redirect_uri_list[0] + "?")
    params = query(response["Location"])
    assert params["error"] == "invalid_request", params
    assert "challenge" in params["error_description"].lower(), params
    assert params["state"] == "xyz-state"
    return params


VALID = s256("x" * 43)
MALFORMED_CHALLENGES = [
    pytest.param("abc", id="too-short"),
    pytest.param("A" * 200, id="200-characters"),
    pytest.param(VALID + "=", id="padded"),
    pytest.param(base64.b64encode(b"\xfb\xff" * 16).decode().rstrip("="), id="standard-base64"),
    pytest.param(VALID[:42] + ".", id="not-base64url"),
    pytest.param(VALID[:42] + "\x00", id="nul"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("challenge", MALFORMED_CHALLENGES)
def test_malformed_challenge_is_invalid_request_on_get(logged_in, web_client, challenge):
    params = authorize_params(web_client, challenge=challenge, scope="files:read")
    assert_invalid_request_redirect(get_authorize(logged_in, params), web_client)
    assert not Grant.objects.exists()


@pytest.mark.parametrize("challenge", MALFORMED_CHALLENGES)
def test_malformed_challenge_is_refused_in_the_consent_form(logged_in, web_client, challenge):
    page = get_authorize(
        logged_in, authorize_params(web_client, challenge=pkce_pair()[1], scope="files:read")
    )
    data = {**consent_form_data(page), "code_challenge": challenge, "allow": "true"}
    response = logged_in.post(AUTHORIZE_URL, data)
    if "\x00" in challenge:  # Django's form fields refuse NUL: a tampered form, shown as a page
        assert response.status_code == 400
    else:
        assert_invalid_request_redirect(response, web_client)
    assert not Grant.objects.exists()


def test_a_well_formed_challenge_still_works(logged_in, web_client):
    response = approve(logged_in, authorize_params(web_client, challenge=VALID, scope="files:read"))
    assert "code" in query(response["Location"])
    assert Grant.objects.get().code_challenge == VALID


def code_for(browser, client, verifier: str) -> str:
    """A code whose S256 challenge is the hash of ``verifier`` (well formed or not)."""
    response = approve(browser, authorize_params(client, challenge=s256(verifier), scope="files:read"))
    return query(response["Location"])["code"]


@pytest.mark.parametrize(
    "verifier",
    [
        pytest.param("a", id="one-character"),
        pytest.param("a" * 42, id="42-characters"),
        pytest.param("a" * 129, id="129-characters"),
        pytest.param("a" * 42 + "+", id="plus"),
        pytest.param("a" * 42 + "/", id="slash"),
        pytest.param("a" * 42 + "=", id="equals"),
        pytest.param("a" * 42 + " ", id="space"),
        pytest.param("a" * 42 + "é", id="non-ascii"),
    ],
)
@pytest.mark.parametrize("which", ["web", "public"])
def test_malformed_verifier_is_invalid_grant_even_when_its_hash_matches(
    logged_in, web_client, public_client, verifier, which
):
    """RFC 7636 4.6: the verifier fails verification; before, "a" was exchanged for tokens."""
    client = web_client if which == "web" else public_client
    code = code_for(logged_in, client, verifier)
    response = exchange_code(logged_in, client, code, verifier)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid_grant", body
    assert "code_verifier" in body["error_description"]
    assert not AccessToken.objects.exists()
    assert Grant.objects.get().redeemed_at is None


@pytest.mark.parametrize(
    "verifier",
    [
        pytest.param("a" * 43, id="43-characters"),
        pytest.param((UNRESERVED * 2)[:128], id="128-characters-every-unreserved"),
        pytest.param(pkce_pair()[0], id="token_urlsafe"),
    ],
)
def test_well_formed_verifiers_are_exchanged(logged_in, web_client, verifier):
    code = code_for(logged_in, web_client, verifier)
    response = exchange_code(logged_in, web_client, code, verifier)
    assert response.status_code == 200, response.content
    assert "access_token" in response.json()


def test_a_well_formed_but_wrong_verifier_is_still_invalid_grant(logged_in, web_client):
    code = code_for(logged_in, web_client, "a" * 43)
    response = exchange_code(logged_in, web_client, code, "b" * 43)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_the_test_helpers_make_valid_pkce_pairs():
    from oauth_server.parameters import valid_code_verifier, valid_s256_challenge

    for _ in range(20):
        verifier, challenge = pkce_pair()
        assert valid_code_verifier(verifier) and valid_s256_challenge(challenge)
        assert challenge == s256(verifier)
