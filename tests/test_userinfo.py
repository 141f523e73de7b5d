"""The UserInfo endpoint (OIDC Core 5.3) as an RFC 6750 protected resource."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from freezegun import freeze_time

from oauth_server.claims import subject_for
from oauth_server.models import AccessToken
from tests.factories import AccessTokenFactory, ClientFactory, MachineClientFactory
from tests.helpers import exchange_code, get_code, token_request

USERINFO_URL = "/oauth/userinfo/"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def oidc_client(db):
    return ClientFactory(scopes=["openid", "profile", "email", "files:read"])


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def tokens_for(browser, client, scope: str) -> dict:
    code, verifier = get_code(browser, client, scope=scope)
    response = exchange_code(browser, client, code, verifier)
    assert response.status_code == 200, response.content
    return response.json()


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def assert_claims(response) -> dict:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    return response.json()


def assert_bearer_error(response, status: int, error: str) -> str:
    """An RFC 6750 3 error: status, the challenge with error and description, the same as JSON."""
    assert response.status_code == status, (response.status_code, response.content)
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'error="{error}"' in challenge
    assert 'error_description="' in challenge
    body = response.json()
    assert body["error"] == error and body["error_description"]
    assert response["Cache-Control"] == "no-store"
    return challenge


def userinfo_hook(request, claims):
    return {
        "groups": ["staff"],
        "hook_saw": [request.user.get_username(), request.client.client_id, request.scopes],
    }


# --- success -----------------------------------------------------------------------------------------
def test_get_with_bearer_header_returns_the_scopes_claims_and_the_id_token_sub(logged_in, user, oidc_client):
    body = tokens_for(logged_in, oidc_client, "openid profile email")
    claims = assert_claims(logged_in.get(USERINFO_URL, **bearer(body["access_token"])))
    assert claims["sub"] == jwt_claims(body["id_token"])["sub"] == subject_for(user)
    assert claims["preferred_username"] == user.username
    assert claims["name"] == "Ada Lovelace"
    assert claims["email"] == user.email
    assert "username" not in claims and "id" not in claims


def test_only_openid_releases_sub_alone(logged_in, user, oidc_client):
    body = tokens_for(logged_in, oidc_client, "openid")
    assert assert_claims(logged_in.get(USERINFO_URL, **bearer(body["access_token"]))) == {
        "sub": subject_for(user)
    }


def test_email_scope_without_profile(logged_in, user, oidc_client):
    body = tokens_for(logged_in, oidc_client, "openid email")
    claims = assert_claims(logged_in.get(USERINFO_URL, **bearer(body["access_token"])))
    assert set(claims) == {"sub", "email", "email_verified"}


def test_post_with_bearer_header(logged_in, user, oidc_client):
    body = tokens_for(logged_in, oidc_client, "openid")
    assert assert_claims(logged_in.post(USERINFO_URL, **bearer(body["access_token"])))["sub"] == subject_for(
        user
    )


def test_post_with_a_form_encoded_body(logged_in, user, oidc_client):
    body = tokens_for(logged_in, oidc_client, "openid")
    response = logged_in.post(USERINFO_URL, f"access_token={body['access_token']}", content_type=FORM)
    assert assert_claims(response)["sub"] == subject_for(user)


def test_opaque_access_token(logged_in, user):
    web = ClientFactory(scopes=["openid", "profile"], access_token_format="opaque")
    body = tokens_for(logged_in, web, "openid profile")
    assert "." not in body["access_token"]
    assert assert_claims(logged_in.get(USERINFO_URL, **bearer(body["access_token"])))["sub"] == subject_for(
        user
    )


@override_settings(OAUTH_SERVER={"USERINFO": "tests.test_userinfo.userinfo_hook"})
def test_userinfo_hook_adds_claims(logged_in, user, oidc_client):
    body = tokens_for(logged_in, oidc_client, "openid profile")
    claims = assert_claims(logged_in.get(USERINFO_URL, **bearer(body["access_token"])))
    assert claims["groups"] == ["staff"]
    assert claims["hook_saw"] == [user.username, oidc_client.client_id, ["openid", "profile"]]
    assert claims["sub"] == subject_for(user)


# --- no token / malformed requests ---------------------------------------------------------------------
def test_missing_token_is_401_with_a_bare_bearer_challenge(client, db):
    response = client.get(USERINFO_URL)
    assert response.status_code == 401
    # RFC 6750 3.1: no error code; RFC 9449 7.1: the DPoP scheme is offered too
    assert response["WWW-Authenticate"] == 'Bearer, DPoP algs="ES256 RS256 PS256 EdDSA"'
    assert "error" not in response.json()
    assert response.json()["error_description"]


def test_other_authorization_schemes_count_as_no_token(client, db):
    response = client.get(USERINFO_URL, HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer, DPoP algs="ES256 RS256 PS256 EdDSA"'


def test_token_in_the_query_string_is_refused(logged_in, oidc_client):
    body = tokens_for(logged_in, oidc_client, "openid")
    response = logged_in.get(USERINFO_URL, {"access_token": body["access_token"]})
    assert_bearer_error(response, 400, "invalid_request")
    assert "sub" not in response.json()


def test_token_in_the_query_string_is_refused_even_next_to_a_header(logged_in, oidc_client):
    token = tokens_for(logged_in, oidc_client, "openid")["access_token"]
    response = logged_in.get(f"{USERINFO_URL}?access_token={token}", **bearer(token))
    assert_bearer_error(response, 400, "invalid_request")


def test_token_in_header_and_body_is_invalid_request(logged_in, oidc_client):
    token = tokens_for(logged_in, oidc_client, "openid")["access_token"]
    response = logged_in.post(USERINFO_URL, f"access_token={token}", content_type=FORM, **bearer(token))
    assert_bearer_error(response, 400, "invalid_request")


def test_repeated_body_token_is_invalid_request(logged_in, oidc_client):
    token = tokens_for(logged_in, oidc_client, "openid")["access_token"]
    response = logged_in.post(USERINFO_URL, f"access_token={token}&access_token={token}", content_type=FORM)
    assert_bearer_error(response, 400, "invalid_request")


def test_body_token_must_be_form_encoded(logged_in, oidc_client):
    token = tokens_for(logged_in, oidc_client, "openid")["access_token"]
    response = logged_in.post(USERINFO_URL, {"access_token": token})  # multipart
    assert_bearer_error(response, 400, "invalid_request")


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "Bearer a b", 'Bearer a"b', "Bearer ä"])
def test_malformed_bearer_header_is_invalid_request(client, db, value):
    assert_bearer_error(client.get(USERINFO_URL, HTTP_AUTHORIZATION=value), 400, "invalid_request")


def test_unreadable_body_is_invalid_request(client, db):
    response = client.post(USERINFO_URL, b"--x\r\ngarbage", content_type="multipart/form-data; boundary=")
    assert_bearer_error(response, 400, "invalid_request")


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_other_methods_are_405(client, db, method):
    response = getattr(client, method)(USERINFO_URL)
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"


def test_options_preflight_does_not_fail(client, db):
    response = client.options(USERINFO_URL, HTTP_ORIGIN="https://spa.example.com")
    assert response.status_code == 200


# --- invalid tokens ----------------------------------------------------------------------------------
def test_unknown_token_is_invalid_token(client, db):
    assert_bearer_error(client.get(USERINFO_URL, **bearer("no-such-token")), 401, "invalid_token")


def test_expired_token_is_invalid_token(logged_in, oidc_client):
    token = tokens_for(logged_in, oidc_client, "openid")["access_token"]
    with freeze_time(timezone.now() + timedelta(seconds=3601)):
        challenge = assert_bearer_error(logged_in.get(USERINFO_URL, **bearer(token)), 401, "invalid_token")
    assert "expired" in challenge


def test_revoked_token_is_invalid_token(logged_in, oidc_client):
    token = tokens_for(logged_in, oidc_client, "openid")["access_token"]
    AccessToken.objects.filter(application=oidc_client).delete()
    assert_bearer_error(logged_in.get(USERINFO_URL, **bearer(token)), 401, "invalid_token")


def test_token_of_a_disabled_client_is_invalid_token(logged_in, oidc_client):
    token = tokens_for(logged_in, oidc_client, "openid")["access_token"]
    oidc_client.is_enabled = False
    oidc_client.save()
    assert_bearer_error(logged_in.get(USERINFO_URL, **bearer(token)), 401, "invalid_token")


def test_token_of_an_inactive_user_is_invalid_token(logged_in, user, oidc_client):
    token = tokens_for(logged_in, oidc_client, "openid")["access_token"]
    user.is_active = False
    user.save()
    assert_bearer_error(logged_in.get(USERINFO_URL, **bearer(token)), 401, "invalid_token")


def test_huge_token_is_just_invalid(client, db):
    assert_bearer_error(client.get(USERINFO_URL, **bearer("a" * 60_000)), 401, "invalid_token")


# --- insufficient scope --------------------------------------------------------------------------------
def test_token_without_openid_is_insufficient_scope(logged_in, oidc_client):
    token = tokens_for(logged_in, oidc_client, "files:read")["access_token"]
    challenge = assert_bearer_error(logged_in.get(USERINFO_URL, **bearer(token)), 403, "insufficient_scope")
    assert 'scope="openid"' in challenge


def test_client_credentials_token_is_insufficient_scope(client, db):
    machine = MachineClientFactory(scopes=["reports:read"])
    issued = token_request(
        client,
        {"grant_type": "client_credentials", "scope": "reports:read"},
        client=machine,
        secret=machine.raw_secret,
    )
    token = issued.json()["access_token"]
    assert_bearer_error(client.get(USERINFO_URL, **bearer(token)), 403, "insufficient_scope")


def test_userless_token_with_openid_is_insufficient_scope_not_a_500(client, db):
    token = AccessTokenFactory(user=None, scope="openid")
    challenge = assert_bearer_error(
        client.get(USERINFO_URL, **bearer(token.raw_token)), 403, "insufficient_scope"
    )
    assert "end-user" in challenge
