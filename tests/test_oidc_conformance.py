"""OpenID Connect Core behaviours the Basic OP certification plan checks: prompt, max_age, auth_time,
id_token_hint, nonce, claims. ID tokens are decoded with joserfc, not with the code that signed them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.factories import DEFAULT_PASSWORD, ClientFactory, UserFactory, pkce_pair
from tests.helpers import (
    AUTHORIZE_URL,
    authorize_params,
    consent_form_data,
    exchange_code,
    get_authorize,
    get_code,
    query,
)

START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def oidc_client(db):
    return ClientFactory(scopes=["openid", "profile", "email", "files:read"])


def decode(browser, token: str) -> dict:
    key_set = KeySet.import_key_set(browser.get("/oauth/.well-known/jwks.json").json())
    return jwt.decode(token, key_set).claims


def id_token_for(browser, client, **extra) -> dict:
    code, verifier = get_code(browser, client, scope="openid profile", **extra)
    body = exchange_code(browser, client, code, verifier).json()
    return decode(browser, body["id_token"]), body


def login(browser, user) -> None:
    assert browser.login(username=user.username, password=DEFAULT_PASSWORD)


def test_prompt_login_asks_for_a_fresh_login_and_keeps_the_session_meanwhile(client, user, oidc_client):
    login(client, user)
    response = get_authorize(
        client, authorize_params(oidc_client, challenge=pkce_pair()[1], scope="openid", prompt="login")
    )
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    # Not signed out: a link from another site must not end the session (tests/test_reauthentication.py).
    assert client.session["_auth_user_id"] == str(user.pk)
    next_url = query(response["Location"])["next"]
    assert "prompt" not in query(next_url)
    login(client, user)
    assert client.get(next_url).status_code == 200  # the consent page, no loop


def test_prompt_login_keeps_other_prompt_values(client, user, oidc_client):
    login(client, user)
    params = authorize_params(oidc_client, challenge=pkce_pair()[1], scope="openid", prompt="login consent")
    next_url = query(get_authorize(client, params)["Location"])["next"]
    assert query(next_url)["prompt"] == "consent"


def test_max_age_exceeded_forces_reauthentication_and_auth_time_is_fresh(client, user, oidc_client):
    with freeze_time(START) as clock:
        login(client, user)
        clock.tick(timedelta(minutes=10))
        params = authorize_params(oidc_client, challenge=pkce_pair()[1], scope="openid", max_age="60")
        response = get_authorize(client, params)
        assert response["Location"].startswith("/accounts/login/")
        next_url = query(response["Location"])["next"]
        assert "max_age" not in query(next_url)
        clock.tick(timedelta(seconds=5))
        login(client, user)
        relogin_time = int((START + timedelta(minutes=10, seconds=5)).timestamp())
        claims, _ = id_token_for(client, oidc_client)
    assert claims["auth_time"] == relogin_time


def test_max_age_zero_does_not_loop(client, user, oidc_client):
    login(client, user)
    params = authorize_params(oidc_client, challenge=pkce_pair()[1], scope="openid", max_age="0")
    next_url = query(get_authorize(client, params)["Location"])["next"]
    login(client, user)
    assert client.get(next_url).status_code == 200


def test_max_age_within_the_session_age_needs_no_login(client, user, oidc_client):
    with freeze_time(START) as clock:
        login(client, user)
        clock.tick(timedelta(seconds=30))
        params = authorize_params(oidc_client, challenge=pkce_pair()[1], scope="openid", max_age="3600")
        assert get_authorize(client, params).status_code == 200
        claims, _ = id_token_for(client, oidc_client, max_age="3600")
    assert claims["auth_time"] == int(START.timestamp())


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", ""])
def test_invalid_max_age_is_invalid_request(client, user, oidc_client, value):
    login(client, user)
    response = get_authorize(
        client, authorize_params(oidc_client, challenge=pkce_pair()[1], scope="openid", max_age=value)
    )
    assert query(response["Location"])["error"] == "invalid_request"


def test_prompt_none_with_an_old_session_and_max_age_is_login_required(client, user, oidc_client):
    with freeze_time(START) as clock:
        login(client, user)
        clock.tick(timedelta(hours=2))
        params = authorize_params(
            oidc_client, challenge=pkce_pair()[1], scope="openid", max_age="60", prompt="none"
        )
        response = get_authorize(client, params)
    assert query(response["Location"])["error"] == "login_required"


def test_auth_time_is_the_session_login_time_not_the_token_time(client, user, oidc_client):
    with freeze_time(START) as clock:
        login(client, user)
        clock.tick(timedelta(minutes=20))
        claims, _ = id_token_for(client, oidc_client)
    assert claims["auth_time"] == int(START.timestamp())
    assert claims["iat"] == int((START + timedelta(minutes=20)).timestamp())


def test_nonce_is_echoed_when_sent_and_absent_otherwise(client, user, oidc_client):
    login(client, user)
    with_nonce, _ = id_token_for(client, oidc_client, nonce="n-0S6_WzA2Mj")
    assert with_nonce["nonce"] == "n-0S6_WzA2Mj"
    without, _ = id_token_for(client, oidc_client)
    assert "nonce" not in without


def test_id_token_hint_for_the_signed_in_user_is_accepted(client, user, oidc_client):
    login(client, user)
    _, body = id_token_for(client, oidc_client)
    params = authorize_params(oidc_client, challenge=pkce_pair()[1], scope="openid profile", prompt="none")
    params["id_token_hint"] = body["id_token"]
    response = get_authorize(client, params)
    assert "code" in query(response["Location"])


def test_id_token_hint_for_another_user_is_login_required(client, user, oidc_client):
    login(client, user)
    _, body = id_token_for(client, oidc_client)
    client.logout()
    login(client, UserFactory())
    params = authorize_params(
        oidc_client, challenge=pkce_pair()[1], scope="openid", id_token_hint=body["id_token"]
    )
    assert query(get_authorize(client, params)["Location"])["error"] == "login_required"


def test_forged_id_token_hint_is_login_required(client, user, oidc_client):
    login(client, user)
    params = authorize_params(
        oidc_client, challenge=pkce_pair()[1], scope="openid", id_token_hint="e30.e30.sig"
    )
    assert query(get_authorize(client, params)["Location"])["error"] == "login_required"


def test_claims_parameter_never_releases_claims_beyond_the_scopes(client, user, oidc_client):
    login(client, user)
    claims_param = json.dumps({"id_token": {"email": {"essential": True}}, "userinfo": {"email": None}})
    code, verifier = get_code(client, oidc_client, scope="openid", claims=claims_param)
    body = exchange_code(client, oidc_client, code, verifier).json()
    id_claims = decode(client, body["id_token"])
    assert "email" not in id_claims and "name" not in id_claims
    userinfo = client.get("/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}").json()
    assert set(userinfo) == {"sub"}


def test_malformed_claims_parameter_is_invalid_request(client, user, oidc_client):
    login(client, user)
    params = authorize_params(oidc_client, challenge=pkce_pair()[1], scope="openid", claims="{not json")
    response = get_authorize(client, params)
    assert query(response["Location"])["error"] == "invalid_request"


def test_login_hint_reaches_the_login_page(client, oidc_client):
    params = authorize_params(oidc_client, challenge=pkce_pair()[1], scope="openid", login_hint="alice")
    response = get_authorize(client, params)
    assert query(query(response["Location"])["next"])["login_hint"] == "alice"


def test_openid_consent_post_issues_an_id_token(client, user, oidc_client):
    login(client, user)
    verifier, challenge = pkce_pair()
    page = get_authorize(
        client, authorize_params(oidc_client, challenge=challenge, scope="openid email", nonce="abc")
    )
    data = consent_form_data(page)
    data["allow"] = "true"
    code = query(client.post(AUTHORIZE_URL, data)["Location"])["code"]
    body = exchange_code(client, oidc_client, code, verifier).json()
    claims = decode(client, body["id_token"])
    assert claims["nonce"] == "abc" and claims["email"] == user.email


def test_dot_runs_our_server_with_oidc_on():
    """DOT swaps in OIDC_SERVER_CLASS when OIDC is enabled; it must still be ours (no implicit, hybrid
    or password grants registered; the device grant is ours, grants/device_code.py)."""
    from oauth2_provider.settings import oauth2_settings

    from oauth_server.server import OAuth2Server

    assert oauth2_settings.OIDC_ENABLED
    assert oauth2_settings.OAUTH2_SERVER_CLASS is OAuth2Server
    server = OAuth2Server(oauth2_settings.OAUTH2_VALIDATOR_CLASS())
    assert set(server.response_types) == {"code"}
    assert set(server.grant_types) == {
        "authorization_code",
        "client_credentials",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    }
