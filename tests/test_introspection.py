"""Token introspection (RFC 7662): who may ask, what they may see, and what an answer holds."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from freezegun import freeze_time

from oauth_server.claims import subject_for
from oauth_server.models import AccessToken, RefreshToken
from tests.factories import (
    AccessTokenFactory,
    ClientFactory,
    MachineClientFactory,
    PublicClientFactory,
    RefreshTokenFactory,
    UserFactory,
)
from tests.helpers import REVOKE_URL, basic_auth, exchange_code, get_code, token_request

INTROSPECT_URL = "/oauth/introspect/"
API = "https://api.example.com"
INACTIVE = {"active": False}


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def introspect(browser, caller, token: str | None, *, secret: str | None = None, **data: str):
    """POST to the introspection endpoint, authenticating ``caller`` with HTTP Basic."""
    if token is not None:
        data["token"] = token
    auth = basic_auth(caller.client_id, secret if secret is not None else caller.raw_secret)
    return browser.post(INTROSPECT_URL, data, HTTP_AUTHORIZATION=auth)


def tokens_for(browser, client, scope: str = "files:read") -> dict:
    code, verifier = get_code(browser, client, scope=scope)
    response = exchange_code(browser, client, code, verifier)
    assert response.status_code == 200, response.content
    return response.json()


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def assert_no_store(response) -> None:
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"


def assert_inactive(response) -> None:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == INACTIVE
    assert_no_store(response)


def assert_error(response, error: str, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error and body["error_description"], body
    assert "active" not in body
    assert_no_store(response)
    return body


# --- active answers --------------------------------------------------------------------------------
def test_own_jwt_access_token_is_active_with_the_rfc_7662_members(logged_in, user, web_client):
    body = tokens_for(logged_in, web_client, scope="files:read files:write")
    response = introspect(logged_in, web_client, body["access_token"])
    assert response.status_code == 200
    assert_no_store(response)
    data = response.json()
    jwt = jwt_claims(body["access_token"])
    assert set(data) == {
        "active",
        "scope",
        "client_id",
        "token_type",
        "exp",
        "iat",
        "sub",
        "aud",
        "iss",
        "jti",
    }
    assert data["active"] is True
    assert set(data["scope"].split()) == {"files:read", "files:write"}
    assert data["client_id"] == web_client.client_id
    assert data["token_type"] == "Bearer"
    # The opaque sub of the JWT (and ID token), never the username or the database id.
    assert data["sub"] == jwt["sub"] == subject_for(user)
    assert data["sub"] not in (user.username, str(user.pk))
    assert (data["iss"], data["aud"], data["jti"], data["exp"]) == (
        jwt["iss"],
        jwt["aud"],
        jwt["jti"],
        jwt["exp"],
    )
    assert abs(data["iat"] - jwt["iat"]) <= 1


def test_opaque_access_token_is_found_by_its_checksum(logged_in, user):
    web = ClientFactory(scopes=["files:read"], access_token_format="opaque")
    token = tokens_for(logged_in, web)["access_token"]
    assert token.count(".") == 0
    assert not AccessToken.objects.filter(token=token).exists()  # the value is never stored
    data = introspect(logged_in, web, token).json()
    assert data["active"] is True and data["sub"] == subject_for(user)
    assert data["client_id"] == web.client_id


def test_client_secret_post_authenticates_too(logged_in, web_client):
    token = tokens_for(logged_in, web_client)["access_token"]
    response = logged_in.post(
        INTROSPECT_URL,
        {"token": token, "client_id": web_client.client_id, "client_secret": web_client.raw_secret},
    )
    assert response.json()["active"] is True


def test_client_credentials_token_has_the_client_as_subject(client, db):
    machine = MachineClientFactory(scopes=["reports:read"], access_token_format="opaque")
    issued = token_request(
        client,
        {"grant_type": "client_credentials", "scope": "reports:read"},
        client=machine,
        secret=machine.raw_secret,
    )
    data = introspect(client, machine, issued.json()["access_token"]).json()
    assert data["active"] is True
    assert data["sub"] == machine.client_id
    assert data["scope"] == "reports:read"


def test_refresh_token_is_active_with_and_without_hint(logged_in, user, web_client):
    body = tokens_for(logged_in, web_client)
    for extra in ({"token_type_hint": "refresh_token"}, {}, {"token_type_hint": "access_token"}):
        data = introspect(logged_in, web_client, body["refresh_token"], **extra).json()
        assert data["active"] is True, extra
        assert data["token_type"] == "refresh_token"
        assert data["client_id"] == web_client.client_id
        assert data["sub"] == subject_for(user)
        assert data["scope"] == "files:read"
        rt = RefreshToken.objects.get(application=web_client, revoked__isnull=True)
        assert data["iat"] == int(rt.created.timestamp())
        assert data["exp"] == int((rt.created + timedelta(days=30)).timestamp())


def test_access_token_with_a_refresh_token_hint_is_still_found(logged_in, web_client):
    token = tokens_for(logged_in, web_client)["access_token"]
    data = introspect(logged_in, web_client, token, token_type_hint="refresh_token").json()
    assert data["active"] is True and data["token_type"] == "Bearer"


def test_an_unknown_hint_value_is_ignored(logged_in, web_client):
    token = tokens_for(logged_in, web_client)["access_token"]
    assert introspect(logged_in, web_client, token, token_type_hint="id_token").json()["active"] is True


# --- who sees what ---------------------------------------------------------------------------------
def test_resource_server_sees_tokens_issued_for_its_audience(logged_in, user):
    web = ClientFactory(scopes=["files:read"], audiences=[API])
    api = MachineClientFactory(resource_identifiers=[API])
    token = tokens_for(logged_in, web)["access_token"]
    data = introspect(logged_in, api, token).json()
    assert data["active"] is True
    assert data["client_id"] == web.client_id  # the client the token was issued to
    assert data["aud"] == API


def test_resource_server_of_another_audience_sees_nothing(logged_in):
    web = ClientFactory(scopes=["files:read"], audiences=[API])
    other_api = MachineClientFactory(resource_identifiers=["https://other.example.com"])
    token = tokens_for(logged_in, web)["access_token"]
    assert_inactive(introspect(logged_in, other_api, token))


def test_another_clients_token_is_inactive(logged_in, web_client):
    token = tokens_for(logged_in, web_client)["access_token"]
    assert_inactive(introspect(logged_in, ClientFactory(), token))


def test_refresh_tokens_are_visible_only_to_their_own_client(logged_in, user):
    web = ClientFactory(scopes=["files:read"], audiences=[API])
    api = MachineClientFactory(resource_identifiers=[API])
    refresh = tokens_for(logged_in, web)["refresh_token"]
    assert_inactive(introspect(logged_in, api, refresh, token_type_hint="refresh_token"))


# --- inactive answers: {"active": false} and nothing else -----------------------------------------
def test_unknown_token_is_inactive(client, web_client):
    assert_inactive(introspect(client, web_client, "no-such-token"))


def test_expired_token_is_inactive(logged_in, web_client):
    token = tokens_for(logged_in, web_client)["access_token"]
    with freeze_time(timezone.now() + timedelta(seconds=3601)):
        assert_inactive(introspect(logged_in, web_client, token))


def test_revoked_access_token_is_inactive(logged_in, web_client):
    token = tokens_for(logged_in, web_client)["access_token"]
    auth = basic_auth(web_client.client_id, web_client.raw_secret)
    assert logged_in.post(REVOKE_URL, {"token": token}, HTTP_AUTHORIZATION=auth).status_code == 200
    assert_inactive(introspect(logged_in, web_client, token))


def test_revoked_refresh_token_is_inactive(logged_in, web_client):
    refresh = tokens_for(logged_in, web_client)["refresh_token"]
    RefreshToken.objects.get(application=web_client, revoked__isnull=True).revoke()
    assert_inactive(introspect(logged_in, web_client, refresh, token_type_hint="refresh_token"))


def test_expired_refresh_token_is_inactive(logged_in, web_client):
    refresh = tokens_for(logged_in, web_client)["refresh_token"]
    with freeze_time(timezone.now() + timedelta(days=30, seconds=1)):
        assert_inactive(introspect(logged_in, web_client, refresh))


def test_token_of_a_disabled_client_is_inactive_to_a_resource_server(logged_in):
    web = ClientFactory(scopes=["files:read"], audiences=[API])
    api = MachineClientFactory(resource_identifiers=[API])
    tokens = tokens_for(logged_in, web)
    web.is_enabled = False
    web.save()
    assert_inactive(introspect(logged_in, api, tokens["access_token"]))


def test_tokens_of_an_inactive_user_are_inactive(logged_in, user, web_client):
    tokens = tokens_for(logged_in, web_client)
    user.is_active = False
    user.save()
    assert_inactive(introspect(logged_in, web_client, tokens["access_token"]))
    assert_inactive(introspect(logged_in, web_client, tokens["refresh_token"]))


def test_orphaned_refresh_token_is_inactive(db, client):
    rt = RefreshTokenFactory()
    AccessToken.objects.filter(pk=rt.access_token_id).delete()
    assert_inactive(introspect(client, rt.application, rt.raw_token))


# --- client authentication ---------------------------------------------------------------------------
def test_unauthenticated_request_is_invalid_client_with_a_basic_challenge(client, web_client):
    token = AccessTokenFactory(application=web_client).raw_token
    response = client.post(INTROSPECT_URL, {"token": token})
    assert_error(response, "invalid_client", 401)
    assert response["WWW-Authenticate"].startswith("Basic")


def test_wrong_secret_is_invalid_client(client, web_client):
    token = AccessTokenFactory(application=web_client).raw_token
    response = introspect(client, web_client, token, secret="wrong-secret")
    assert_error(response, "invalid_client", 401)
    assert response["WWW-Authenticate"].startswith("Basic")


def test_public_client_may_not_introspect_even_its_own_tokens(client, db):
    public = PublicClientFactory()
    token = AccessTokenFactory(application=public).raw_token
    response = client.post(INTROSPECT_URL, {"token": token, "client_id": public.client_id})
    assert_error(response, "invalid_client", 401)


def test_disabled_caller_is_invalid_client(client, web_client):
    token = AccessTokenFactory(application=web_client).raw_token
    web_client.is_enabled = False
    web_client.save()
    assert_error(introspect(client, web_client, token), "invalid_client", 401)


def test_two_authentication_methods_are_invalid_request(client, web_client):
    token = AccessTokenFactory(application=web_client).raw_token
    response = introspect(client, web_client, token, client_secret=web_client.raw_secret)
    assert_error(response, "invalid_request", 400)


def test_bearer_token_with_an_introspection_scope_does_not_authenticate(client, web_client):
    """DOT lets such a token in; we only accept client credentials (docs/endpoints.md)."""
    bearer = AccessTokenFactory(application=web_client, scope="introspection").raw_token
    token = AccessTokenFactory(application=web_client).raw_token
    response = client.post(INTROSPECT_URL, {"token": token}, HTTP_AUTHORIZATION=f"Bearer {bearer}")
    assert_error(response, "invalid_client", 401)


# --- malformed requests ------------------------------------------------------------------------------
def test_get_with_the_token_in_the_query_is_refused_and_reveals_nothing(client, web_client):
    token = AccessTokenFactory(application=web_client).raw_token
    auth = basic_auth(web_client.client_id, web_client.raw_secret)
    response = client.get(INTROSPECT_URL, {"token": token}, HTTP_AUTHORIZATION=auth)
    assert_error(response, "invalid_request", 405)
    assert response["Allow"] == "POST, OPTIONS"


@pytest.mark.parametrize("method", ["put", "patch", "delete", "head"])
def test_other_methods_are_405(client, web_client, method):
    response = getattr(client, method)(INTROSPECT_URL)
    assert response.status_code == 405
    if method != "head":
        assert_error(response, "invalid_request", 405)


def test_options_preflight_does_not_fail(client, db):
    response = client.options(INTROSPECT_URL)
    assert response.status_code == 200
    assert "POST" in response["Allow"]


def test_query_parameters_on_a_post_are_invalid_request(client, web_client):
    token = AccessTokenFactory(application=web_client).raw_token
    auth = basic_auth(web_client.client_id, web_client.raw_secret)
    response = client.post(f"{INTROSPECT_URL}?token={token}", {"token": token}, HTTP_AUTHORIZATION=auth)
    assert_error(response, "invalid_request", 400)


def test_missing_token_is_invalid_request(client, web_client):
    assert_error(introspect(client, web_client, None), "invalid_request", 400)


def test_repeated_token_is_invalid_request(client, web_client):
    mine = AccessTokenFactory(application=web_client).raw_token
    auth = basic_auth(web_client.client_id, web_client.raw_secret)
    body = f"token={mine}&token=other"
    response = client.post(
        INTROSPECT_URL, body, content_type="application/x-www-form-urlencoded", HTTP_AUTHORIZATION=auth
    )
    assert "token" in assert_error(response, "invalid_request", 400)["error_description"]


def test_malformed_multipart_body_is_invalid_request(client, web_client):
    auth = basic_auth(web_client.client_id, web_client.raw_secret)
    response = client.post(
        INTROSPECT_URL,
        b"--x\r\ngarbage",
        content_type="multipart/form-data; boundary=",
        HTTP_AUTHORIZATION=auth,
    )
    assert_error(response, "invalid_request", 400)


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_oversized_body_is_invalid_request(client, web_client):
    auth = basic_auth(web_client.client_id, web_client.raw_secret)
    body = "token=" + "a" * 4096
    response = client.post(
        INTROSPECT_URL, body, content_type="application/x-www-form-urlencoded", HTTP_AUTHORIZATION=auth
    )
    assert_error(response, "invalid_request", 400)


def test_a_huge_token_value_is_simply_inactive(client, web_client):
    assert_inactive(introspect(client, web_client, "x" * 100_000))


def test_json_body_is_missing_token(client, web_client):
    auth = basic_auth(web_client.client_id, web_client.raw_secret)
    response = client.post(
        INTROSPECT_URL, {"token": "abc"}, content_type="application/json", HTTP_AUTHORIZATION=auth
    )
    assert_error(response, "invalid_request", 400)


# --- cost ---------------------------------------------------------------------------------------------
def test_one_query_for_the_caller_and_one_for_the_token(client, django_assert_max_num_queries, db):
    user = UserFactory()
    subject_for(user)
    web = ClientFactory()
    token = AccessTokenFactory(application=web, user=user, scope="openid", audience=API)
    with django_assert_max_num_queries(2):
        data = introspect(client, web, token.raw_token).json()
    assert data["active"] is True and data["sub"] == subject_for(user)
