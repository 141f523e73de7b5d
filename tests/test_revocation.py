"""Token revocation (RFC 7009): client authentication, own tokens only, whole grants, the answers."""

from __future__ import annotations

import pytest
from django.test import override_settings

from oauth_server.models import AccessToken, RefreshToken
from tests.factories import AccessTokenFactory, ClientFactory, PublicClientFactory, RefreshTokenFactory
from tests.helpers import REVOKE_URL, basic_auth, exchange_code, get_code, token_request

INTROSPECT_URL = "/oauth/introspect/"
USERINFO_URL = "/oauth/userinfo/"


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def revoke(browser, client, token: str | None, *, secret: str | None = None, **data: str):
    """POST to the revocation endpoint: HTTP Basic for confidential clients, client_id for public."""
    if token is not None:
        data["token"] = token
    if client.client_type == "public":
        return browser.post(REVOKE_URL, {"client_id": client.client_id, **data})
    auth = basic_auth(client.client_id, secret if secret is not None else client.raw_secret)
    return browser.post(REVOKE_URL, data, HTTP_AUTHORIZATION=auth)


def tokens_for(browser, client, scope: str = "files:read") -> dict:
    code, verifier = get_code(browser, client, scope=scope)
    response = exchange_code(browser, client, code, verifier)
    assert response.status_code == 200, response.content
    return response.json()


def refresh(browser, client, refresh_token: str):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return token_request(browser, data, client=client, secret=getattr(client, "raw_secret", None))


def is_active(browser, client, token: str) -> bool:
    auth = basic_auth(client.client_id, client.raw_secret)
    return browser.post(INTROSPECT_URL, {"token": token}, HTTP_AUTHORIZATION=auth).json()["active"]


def assert_ok(response) -> None:
    """RFC 7009 2.2: 200 (not 204), here with an empty JSON object, never cached."""
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == {}
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"


def assert_error(response, error: str, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error and body["error_description"], body
    assert response["Cache-Control"] == "no-store"
    return body


# --- access tokens ---------------------------------------------------------------------------------
def test_revoked_access_token_is_inactive_and_refused_by_userinfo(logged_in):
    web_client = ClientFactory(scopes=["openid", "files:read"])
    body = tokens_for(logged_in, web_client, scope="openid files:read")
    assert logged_in.get(USERINFO_URL, HTTP_AUTHORIZATION=f"Bearer {body['access_token']}").status_code == 200
    assert is_active(logged_in, web_client, body["access_token"])
    assert_ok(revoke(logged_in, web_client, body["access_token"], token_type_hint="access_token"))
    assert not is_active(logged_in, web_client, body["access_token"])
    userinfo = logged_in.get(USERINFO_URL, HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert userinfo.status_code == 401
    assert 'error="invalid_token"' in userinfo["WWW-Authenticate"]


def test_revoking_an_access_token_ends_its_grant(logged_in, web_client):
    """Otherwise the refresh token would simply mint a replacement (RFC 7009 2.1 MAY)."""
    body = tokens_for(logged_in, web_client)
    assert_ok(revoke(logged_in, web_client, body["access_token"]))
    assert not RefreshToken.objects.filter(application=web_client, revoked__isnull=True).exists()
    assert refresh(logged_in, web_client, body["refresh_token"]).json()["error"] == "invalid_grant"


def test_access_token_without_refresh_token_is_deleted(client, web_client):
    token = AccessTokenFactory(application=web_client)
    assert_ok(revoke(client, web_client, token.raw_token))
    assert not AccessToken.objects.filter(pk=token.pk).exists()


# --- refresh tokens --------------------------------------------------------------------------------
@pytest.mark.parametrize("hint", ["refresh_token", "access_token", None])
def test_revoked_refresh_token_is_invalid_grant_and_takes_its_access_token(logged_in, web_client, hint):
    body = tokens_for(logged_in, web_client)
    extra = {"token_type_hint": hint} if hint else {}
    assert_ok(revoke(logged_in, web_client, body["refresh_token"], **extra))
    assert not is_active(logged_in, web_client, body["access_token"])
    assert not is_active(logged_in, web_client, body["refresh_token"])
    response = refresh(logged_in, web_client, body["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_revoking_a_rotated_refresh_token_revokes_the_whole_family(logged_in, web_client):
    first = tokens_for(logged_in, web_client)
    second = refresh(logged_in, web_client, first["refresh_token"]).json()
    assert is_active(logged_in, web_client, second["access_token"])
    # The old token was already rotated out; revoking it still ends the grant (RFC 7009 2.1).
    assert_ok(revoke(logged_in, web_client, first["refresh_token"]))
    assert not is_active(logged_in, web_client, second["access_token"])
    assert refresh(logged_in, web_client, second["refresh_token"]).json()["error"] == "invalid_grant"
    assert not RefreshToken.objects.filter(application=web_client, revoked__isnull=True).exists()


def test_access_tokens_minted_from_the_refresh_token_are_revoked(client, web_client):
    """Also the access token whose ``source_refresh_token`` is the revoked one, not only the linked one."""
    rt = RefreshTokenFactory(application=web_client)
    minted = AccessTokenFactory(application=web_client, user=rt.user, source_refresh_token=rt)
    assert_ok(revoke(client, web_client, rt.raw_token, token_type_hint="refresh_token"))
    assert not AccessToken.objects.filter(pk__in=[minted.pk, rt.access_token_id]).exists()
    rt.refresh_from_db()
    assert rt.revoked is not None


def test_other_grants_of_the_same_user_and_client_survive(logged_in, web_client):
    first = tokens_for(logged_in, web_client)
    second = tokens_for(logged_in, web_client)
    assert_ok(revoke(logged_in, web_client, first["refresh_token"]))
    assert is_active(logged_in, web_client, second["access_token"])
    assert refresh(logged_in, web_client, second["refresh_token"]).status_code == 200


# --- public clients --------------------------------------------------------------------------------
def test_public_client_revokes_with_its_client_id(logged_in, public_client):
    body = tokens_for(logged_in, public_client)
    assert_ok(revoke(logged_in, public_client, body["refresh_token"]))
    assert refresh(logged_in, public_client, body["refresh_token"]).json()["error"] == "invalid_grant"


# --- another client's token --------------------------------------------------------------------------
def test_another_clients_token_is_200_but_not_revoked(logged_in, web_client):
    body = tokens_for(logged_in, web_client)
    intruder = ClientFactory()
    assert_ok(revoke(logged_in, intruder, body["access_token"]))
    assert_ok(revoke(logged_in, intruder, body["refresh_token"]))
    public = PublicClientFactory()
    assert_ok(revoke(logged_in, public, body["refresh_token"]))
    assert is_active(logged_in, web_client, body["access_token"])
    assert refresh(logged_in, web_client, body["refresh_token"]).status_code == 200


# --- always 200 for a well-formed request --------------------------------------------------------------
def test_unknown_token_is_200(client, web_client):
    assert_ok(revoke(client, web_client, "no-such-token"))


def test_already_revoked_token_is_200(logged_in, web_client):
    body = tokens_for(logged_in, web_client)
    assert_ok(revoke(logged_in, web_client, body["access_token"]))
    assert_ok(revoke(logged_in, web_client, body["access_token"]))
    assert_ok(revoke(logged_in, web_client, body["refresh_token"]))


def test_unknown_hint_is_ignored_and_the_token_revoked(logged_in, web_client):
    """RFC 7009 2.1: an invalid token_type_hint is ignored (not unsupported_token_type)."""
    body = tokens_for(logged_in, web_client)
    assert_ok(revoke(logged_in, web_client, body["access_token"], token_type_hint="id_token"))
    assert not is_active(logged_in, web_client, body["access_token"])


# --- errors ------------------------------------------------------------------------------------------
def test_missing_token_is_invalid_request(client, web_client):
    assert_error(revoke(client, web_client, None), "invalid_request", 400)


def test_empty_token_is_invalid_request(client, web_client):
    assert_error(revoke(client, web_client, ""), "invalid_request", 400)


def test_unauthenticated_confidential_client_is_invalid_client(logged_in, web_client):
    body = tokens_for(logged_in, web_client)
    response = logged_in.post(REVOKE_URL, {"token": body["access_token"], "client_id": web_client.client_id})
    assert_error(response, "invalid_client", 401)
    assert response["WWW-Authenticate"].startswith("Basic")
    assert is_active(logged_in, web_client, body["access_token"])


def test_wrong_secret_is_invalid_client(logged_in, web_client):
    body = tokens_for(logged_in, web_client)
    response = revoke(logged_in, web_client, body["access_token"], secret="wrong")
    assert_error(response, "invalid_client", 401)
    assert response["WWW-Authenticate"].startswith("Basic")
    assert is_active(logged_in, web_client, body["access_token"])


def test_no_client_at_all_is_invalid_client(client, web_client):
    token = AccessTokenFactory(application=web_client).raw_token
    assert_error(client.post(REVOKE_URL, {"token": token}), "invalid_client", 401)
    assert AccessToken.objects.filter(application=web_client).exists()


def test_disabled_client_is_invalid_client(client, web_client):
    token = AccessTokenFactory(application=web_client).raw_token
    web_client.is_enabled = False
    web_client.save()
    assert_error(revoke(client, web_client, token), "invalid_client", 401)


def test_client_secret_post_authenticates(logged_in, web_client):
    body = tokens_for(logged_in, web_client)
    response = logged_in.post(
        REVOKE_URL,
        {
            "token": body["access_token"],
            "client_id": web_client.client_id,
            "client_secret": web_client.raw_secret,
        },
    )
    assert_ok(response)
    assert not is_active(logged_in, web_client, body["access_token"])


def test_two_authentication_methods_are_invalid_request(client, web_client):
    token = AccessTokenFactory(application=web_client).raw_token
    response = revoke(client, web_client, token, client_secret=web_client.raw_secret)
    assert_error(response, "invalid_request", 400)
    assert AccessToken.objects.filter(application=web_client).exists()


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_are_405(client, web_client, method):
    token = AccessTokenFactory(application=web_client).raw_token
    auth = basic_auth(web_client.client_id, web_client.raw_secret)
    response = getattr(client, method)(f"{REVOKE_URL}?token={token}", HTTP_AUTHORIZATION=auth)
    assert_error(response, "invalid_request", 405)
    assert response["Allow"] == "POST, OPTIONS"
    assert AccessToken.objects.filter(application=web_client).exists()


def test_options_preflight_does_not_fail(client, db):
    assert client.options(REVOKE_URL).status_code == 200


def test_token_in_the_query_of_a_post_is_invalid_request(client, web_client):
    token = AccessTokenFactory(application=web_client).raw_token
    auth = basic_auth(web_client.client_id, web_client.raw_secret)
    response = client.post(f"{REVOKE_URL}?token={token}", {}, HTTP_AUTHORIZATION=auth)
    assert_error(response, "invalid_request", 400)
    assert AccessToken.objects.filter(application=web_client).exists()


def test_repeated_token_is_invalid_request_and_revokes_nothing(client, web_client):
    first = AccessTokenFactory(application=web_client)
    second = AccessTokenFactory(application=web_client)
    auth = basic_auth(web_client.client_id, web_client.raw_secret)
    response = client.post(
        REVOKE_URL,
        f"token={first.raw_token}&token={second.raw_token}",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=auth,
    )
    assert_error(response, "invalid_request", 400)
    assert AccessToken.objects.filter(pk__in=[first.pk, second.pk]).count() == 2


def test_malformed_multipart_body_is_invalid_request(client, web_client):
    auth = basic_auth(web_client.client_id, web_client.raw_secret)
    response = client.post(
        REVOKE_URL, b"--x\r\ngarbage", content_type="multipart/form-data; boundary=", HTTP_AUTHORIZATION=auth
    )
    assert_error(response, "invalid_request", 400)


@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=10)
def test_too_many_fields_is_invalid_request(client, web_client):
    auth = basic_auth(web_client.client_id, web_client.raw_secret)
    body = "&".join(f"f{i}=x" for i in range(50)) + "&token=abc"
    response = client.post(
        REVOKE_URL, body, content_type="application/x-www-form-urlencoded", HTTP_AUTHORIZATION=auth
    )
    assert_error(response, "invalid_request", 400)
