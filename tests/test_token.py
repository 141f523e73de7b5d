"""The token endpoint: code exchange, refresh rotation, unsupported grants, metadata (RFC 6749 4.1.3,
5, 6; RFC 7636; RFC 8414; RFC 9700 2.1.1, 4.14)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from django.test import override_settings
from freezegun import freeze_time

from oauth_server.models import AccessToken, GrantType, RefreshToken
from oauth_server.tokens import token_checksum
from tests.factories import ClientFactory, UserFactory, pkce_pair
from tests.helpers import TOKEN_URL, exchange_code, get_code, token_request

METADATA_URL = "/oauth/.well-known/oauth-authorization-server"


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def assert_error(response, error: str, status: int = 400) -> dict:
    """An RFC 6749 5.2 error: the status, a JSON body with ``error``, never cached."""
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == error, body
    return body


def assert_no_store(response) -> None:
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"


def refresh(browser, client, refresh_token: str, **extra: str):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return token_request(browser, data, client=client, secret=client.raw_secret)


def tokens_for(browser, client, scope: str = "files:read") -> dict:
    """Run consent + code exchange and return the token response body."""
    code, verifier = get_code(browser, client, scope=scope)
    response = exchange_code(browser, client, code, verifier)
    assert response.status_code == 200, response.content
    return response.json()


# --- authorization_code: success -----------------------------------------------------------------
def test_code_exchange_returns_bearer_token_with_site_lifetime_refresh_and_scope(logged_in, web_client):
    code, verifier = get_code(logged_in, web_client, scope="files:read files:write")
    response = exchange_code(logged_in, web_client, code, verifier)
    assert response.status_code == 200, response.content
    assert_no_store(response)
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"]
    assert body["refresh_token"]
    assert set(body["scope"].split()) == {"files:read", "files:write"}


def test_code_exchange_uses_the_clients_access_token_lifetime(logged_in, db):
    web = ClientFactory(scopes=["files:read"], access_token_lifetime=300)
    body = tokens_for(logged_in, web)
    assert body["expires_in"] == 300
    token = AccessToken.objects.get(application=web)
    assert 295 <= (token.expires - token.created).total_seconds() <= 301


def test_jwt_exp_matches_expires_in(logged_in, db):
    web = ClientFactory(scopes=["files:read"], access_token_lifetime=300)
    payload = tokens_for(logged_in, web)["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["exp"] - claims["iat"] == 300


@override_settings(OAUTH_SERVER={"ACCESS_TOKEN_LIFETIME": 1200})
def test_code_exchange_uses_the_site_access_token_lifetime_setting(logged_in, web_client):
    assert tokens_for(logged_in, web_client)["expires_in"] == 1200


def test_code_exchange_for_client_without_refresh_grant_has_no_refresh_token(logged_in, db):
    web = ClientFactory(scopes=["files:read"], grant_types=[GrantType.AUTHORIZATION_CODE])
    body = tokens_for(logged_in, web)
    assert "refresh_token" not in body
    assert not RefreshToken.objects.filter(application=web).exists()


def test_public_client_exchanges_code_with_pkce_and_client_id_only(logged_in, public_client):
    code, verifier = get_code(logged_in, public_client, scope="files:read")
    response = exchange_code(logged_in, public_client, code, verifier)
    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "Bearer"


# --- authorization_code: single use and expiry ----------------------------------------------------
def test_code_is_single_use(logged_in, web_client):
    code, verifier = get_code(logged_in, web_client, scope="files:read")
    assert exchange_code(logged_in, web_client, code, verifier).status_code == 200
    response = exchange_code(logged_in, web_client, code, verifier)
    assert_error(response, "invalid_grant")
    assert_no_store(response)


def test_code_is_single_use_also_later(logged_in, web_client):
    with freeze_time() as frozen:
        code, verifier = get_code(logged_in, web_client, scope="files:read")
        assert exchange_code(logged_in, web_client, code, verifier).status_code == 200
        frozen.tick(30)
        assert_error(exchange_code(logged_in, web_client, code, verifier), "invalid_grant")


@override_settings(OAUTH_SERVER={"AUTHORIZATION_CODE_LIFETIME": 60})
def test_code_expires_after_its_lifetime(logged_in, web_client):
    with freeze_time() as frozen:
        code, verifier = get_code(logged_in, web_client, scope="files:read")
        frozen.tick(61)
        assert_error(exchange_code(logged_in, web_client, code, verifier), "invalid_grant")


@override_settings(OAUTH_SERVER={"AUTHORIZATION_CODE_LIFETIME": 10})
def test_code_lifetime_follows_the_setting(logged_in, web_client):
    with freeze_time() as frozen:
        code, verifier = get_code(logged_in, web_client, scope="files:read")
        frozen.tick(11)
        assert_error(exchange_code(logged_in, web_client, code, verifier), "invalid_grant")


@override_settings(OAUTH_SERVER={"AUTHORIZATION_CODE_LIFETIME": 60})
def test_code_is_accepted_within_its_lifetime(logged_in, web_client):
    with freeze_time() as frozen:
        code, verifier = get_code(logged_in, web_client, scope="files:read")
        frozen.tick(59)
        assert exchange_code(logged_in, web_client, code, verifier).status_code == 200


# --- authorization_code: binding to verifier, redirect URI and client ------------------------------
def test_wrong_code_verifier_is_invalid_grant(logged_in, web_client):
    code, verifier = get_code(logged_in, web_client, scope="files:read")
    other_verifier, _ = pkce_pair()
    response = exchange_code(logged_in, web_client, code, verifier, code_verifier=other_verifier)
    assert_error(response, "invalid_grant")


def test_empty_code_verifier_is_invalid_grant(logged_in, web_client):
    code, verifier = get_code(logged_in, web_client, scope="files:read")
    response = exchange_code(logged_in, web_client, code, verifier, code_verifier="")
    assert_error(response, "invalid_grant")


def test_absent_code_verifier_is_invalid_request(logged_in, web_client):
    code, _verifier = get_code(logged_in, web_client, scope="files:read")
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": web_client.redirect_uri_list[0]}
    response = token_request(logged_in, data, client=web_client, secret=web_client.raw_secret)
    # A code bound to a challenge needs the verifier; a missing required parameter is
    # invalid_request (RFC 6749 5.2, oauthlib's MissingCodeVerifierError).
    body = assert_error(response, "invalid_request")
    assert "verifier" in body["error_description"].lower()
    assert not AccessToken.objects.exists()


def test_failed_verifier_does_not_leave_a_usable_code(logged_in, web_client):
    code, verifier = get_code(logged_in, web_client, scope="files:read")
    wrong, _ = pkce_pair()
    assert_error(exchange_code(logged_in, web_client, code, verifier, code_verifier=wrong), "invalid_grant")
    # The right verifier still works: a wrong guess does not burn the code for its owner,
    # but only the one holding the verifier can redeem it.
    assert exchange_code(logged_in, web_client, code, verifier).status_code == 200


def test_redirect_uri_mismatch_is_invalid_grant(logged_in, web_client):
    code, verifier = get_code(logged_in, web_client, scope="files:read")
    response = exchange_code(
        logged_in, web_client, code, verifier, redirect_uri="https://client.example.com/other"
    )
    assert_error(response, "invalid_grant")


def test_code_of_client_a_used_by_client_b_is_invalid_grant(logged_in, web_client):
    other = ClientFactory(scopes=["files:read"])
    code, verifier = get_code(logged_in, web_client, scope="files:read")
    response = exchange_code(logged_in, other, code, verifier, redirect_uri=web_client.redirect_uri_list[0])
    assert_error(response, "invalid_grant")
    # ...and client A can still redeem its own code.
    assert exchange_code(logged_in, web_client, code, verifier).status_code == 200


def test_unknown_code_is_invalid_grant(logged_in, web_client):
    _code, verifier = get_code(logged_in, web_client, scope="files:read")
    assert_error(exchange_code(logged_in, web_client, "not-a-code", verifier), "invalid_grant")


def test_missing_code_is_invalid_request(client, web_client):
    data = {
        "grant_type": "authorization_code",
        "redirect_uri": web_client.redirect_uri_list[0],
        "code_verifier": pkce_pair()[0],
    }
    response = token_request(client, data, client=web_client, secret=web_client.raw_secret)
    assert_error(response, "invalid_request")


def test_error_responses_are_not_cached(client, web_client):
    response = token_request(
        client, {"grant_type": "authorization_code", "code": "x"}, client=web_client, secret="wrong"
    )
    assert response.status_code == 401
    assert_no_store(response)


# --- refresh_token --------------------------------------------------------------------------------
def test_refresh_rotates_the_refresh_token_and_revokes_the_old_one(logged_in, web_client):
    first = tokens_for(logged_in, web_client)
    response = refresh(logged_in, web_client, first["refresh_token"])
    assert response.status_code == 200, response.content
    assert_no_store(response)
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == "files:read"
    third = refresh(logged_in, web_client, second["refresh_token"]).json()
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    live = RefreshToken.objects.filter(application=web_client, revoked__isnull=True)
    assert live.count() == 1
    assert RefreshToken.objects.filter(application=web_client, revoked__isnull=False).count() == 2


def test_reusing_a_rotated_refresh_token_is_invalid_grant_and_revokes_the_family(logged_in, web_client):
    first = tokens_for(logged_in, web_client)
    second = refresh(logged_in, web_client, first["refresh_token"]).json()
    assert AccessToken.objects.filter(application=web_client).count() == 1

    assert_error(refresh(logged_in, web_client, first["refresh_token"]), "invalid_grant")

    # DOT's REFRESH_TOKEN_REUSE_PROTECTION: every refresh token of the family is revoked and the
    # family's access tokens are deleted, so the legitimate (or stolen) newest token dies too.
    assert not RefreshToken.objects.filter(application=web_client, revoked__isnull=True).exists()
    assert not AccessToken.objects.filter(application=web_client).exists()
    assert_error(refresh(logged_in, web_client, second["refresh_token"]), "invalid_grant")


def test_reuse_protection_spares_other_sessions(logged_in, web_client):
    session_a = tokens_for(logged_in, web_client)
    session_b = tokens_for(logged_in, web_client)
    refresh(logged_in, web_client, session_a["refresh_token"])
    assert_error(refresh(logged_in, web_client, session_a["refresh_token"]), "invalid_grant")
    assert refresh(logged_in, web_client, session_b["refresh_token"]).status_code == 200


def test_rotation_revokes_the_old_pair_and_links_the_new_one(logged_in, web_client):
    first = tokens_for(logged_in, web_client)
    old = RefreshToken.objects.get(token_checksum=token_checksum(first["refresh_token"]))
    old_access = old.access_token
    second = refresh(logged_in, web_client, first["refresh_token"]).json()
    old.refresh_from_db()
    assert old.revoked is not None and old.access_token is None
    assert not AccessToken.objects.filter(pk=old_access.pk).exists()
    new = RefreshToken.objects.get(token_checksum=token_checksum(second["refresh_token"]))
    assert new.token_family == old.token_family and new.revoked is None
    assert new.access_token.source_refresh_token == old
    assert new.access_token.token_checksum == token_checksum(second["access_token"])


def test_rotation_sends_the_delete_signals_of_the_old_access_token(logged_in, web_client):
    # Receivers rely on them (the demo tells its APIs' revocation cache): rotation deletes the old
    # access token without Django's collector queries, not without its signals.
    from django.db.models.signals import post_delete, pre_delete

    first = tokens_for(logged_in, web_client)
    old_access = AccessToken.objects.get(token_checksum=token_checksum(first["access_token"]))
    seen: list[tuple[str, str]] = []

    def before(sender, instance, **kwargs):
        seen.append(("pre", instance.jti))

    def after(sender, instance, **kwargs):
        seen.append(("post", instance.jti))

    pre_delete.connect(before, sender=AccessToken, dispatch_uid="test.rotation.pre")
    post_delete.connect(after, sender=AccessToken, dispatch_uid="test.rotation.post")
    try:
        assert refresh(logged_in, web_client, first["refresh_token"]).status_code == 200
    finally:
        pre_delete.disconnect(sender=AccessToken, dispatch_uid="test.rotation.pre")
        post_delete.disconnect(sender=AccessToken, dispatch_uid="test.rotation.post")
    assert seen == [("pre", old_access.jti), ("post", old_access.jti)]


def test_rotation_falls_back_to_the_collector_for_an_unknown_relation(logged_in, web_client, monkeypatch):
    from oauth_server import revocation

    monkeypatch.setattr(revocation, "_only_known_relations", lambda: False)
    first = tokens_for(logged_in, web_client)
    old_access = AccessToken.objects.get(token_checksum=token_checksum(first["access_token"]))
    assert refresh(logged_in, web_client, first["refresh_token"]).status_code == 200
    assert not AccessToken.objects.filter(pk=old_access.pk).exists()
    assert AccessToken.objects.filter(application=web_client).count() == 1


def test_shipped_models_let_rotation_skip_the_collector():
    from oauth_server import revocation

    assert revocation._only_known_relations()


def test_refresh_past_dots_refresh_token_expire_seconds_is_invalid_grant(logged_in, web_client, monkeypatch):
    from oauth2_provider.settings import oauth2_settings

    monkeypatch.setattr(oauth2_settings, "REFRESH_TOKEN_EXPIRE_SECONDS", 100)
    with freeze_time() as frozen:
        first = tokens_for(logged_in, web_client)
        frozen.tick(3600 + 100)  # the access token's hour, then DOT's limit
        assert_error(refresh(logged_in, web_client, first["refresh_token"]), "invalid_grant")
        rt = RefreshToken.objects.get(token_checksum=token_checksum(first["refresh_token"]))
        assert rt.revoked is None  # refused, not rotated


def test_refresh_past_dots_refresh_token_expire_seconds_accepts_before(logged_in, web_client, monkeypatch):
    from oauth2_provider.settings import oauth2_settings

    monkeypatch.setattr(oauth2_settings, "REFRESH_TOKEN_EXPIRE_SECONDS", 100)
    with freeze_time() as frozen:
        first = tokens_for(logged_in, web_client)
        frozen.tick(3600 + 99)
        assert refresh(logged_in, web_client, first["refresh_token"]).status_code == 200


def test_orphaned_refresh_token_is_invalid_grant(logged_in, web_client):
    # Its access token deleted out of band (not through a revocation): nothing to refresh (DOT).
    first = tokens_for(logged_in, web_client)
    AccessToken.objects.filter(application=web_client).delete()
    assert_error(refresh(logged_in, web_client, first["refresh_token"]), "invalid_grant")
    assert not AccessToken.objects.filter(application=web_client).exists()


def test_refresh_with_narrower_scope(logged_in, web_client):
    first = tokens_for(logged_in, web_client, scope="files:read files:write")
    response = refresh(logged_in, web_client, first["refresh_token"], scope="files:read")
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "files:read"


def test_refresh_with_broader_scope_is_invalid_scope(logged_in, web_client):
    first = tokens_for(logged_in, web_client, scope="files:read")
    response = refresh(logged_in, web_client, first["refresh_token"], scope="files:read files:write")
    assert_error(response, "invalid_scope")


def test_refresh_token_of_another_client_is_invalid_grant(logged_in, web_client):
    other = ClientFactory(scopes=["files:read"])
    first = tokens_for(logged_in, web_client)
    assert_error(refresh(logged_in, other, first["refresh_token"]), "invalid_grant")


def test_unknown_refresh_token_is_invalid_grant(client, web_client):
    assert_error(refresh(client, web_client, "not-a-refresh-token"), "invalid_grant")


def test_per_client_refresh_token_lifetime(logged_in, db):
    web = ClientFactory(scopes=["files:read"], refresh_token_lifetime=600)
    with freeze_time() as frozen:
        first = tokens_for(logged_in, web)
        frozen.tick(599)
        second = refresh(logged_in, web, first["refresh_token"])
        assert second.status_code == 200, second.content
        # The lifetime counts from the issue of the (rotated) token it presents.
        frozen.tick(601)
        assert_error(refresh(logged_in, web, second.json()["refresh_token"]), "invalid_grant")


@override_settings(OAUTH_SERVER={"REFRESH_TOKEN_LIFETIME": 1000})
def test_site_refresh_token_lifetime(logged_in, web_client):
    with freeze_time() as frozen:
        first = tokens_for(logged_in, web_client)
        frozen.tick(1001)
        assert_error(refresh(logged_in, web_client, first["refresh_token"]), "invalid_grant")


@override_settings(OAUTH_SERVER={"REFRESH_TOKEN_LIFETIME": 1000})
def test_site_refresh_token_lifetime_accepts_before_expiry(logged_in, web_client):
    with freeze_time() as frozen:
        first = tokens_for(logged_in, web_client)
        frozen.tick(999)
        assert refresh(logged_in, web_client, first["refresh_token"]).status_code == 200


def test_client_lifetime_overrides_longer_site_lifetime(logged_in, db):
    web = ClientFactory(scopes=["files:read"], refresh_token_lifetime=60)
    with freeze_time() as frozen:
        first = tokens_for(logged_in, web)
        frozen.tick(61)  # far inside the 30-day site default
        assert_error(refresh(logged_in, web, first["refresh_token"]), "invalid_grant")


def test_refresh_for_inactive_user_is_invalid_grant(logged_in, user, web_client):
    first = tokens_for(logged_in, web_client)
    # A queryset update skips the receiver that revokes the tokens: the validator must refuse on its own.
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert_error(refresh(logged_in, web_client, first["refresh_token"]), "invalid_grant")
    assert not AccessToken.objects.get(application=web_client).is_valid()


def test_refresh_grant_removed_from_client_is_unauthorized_client(logged_in, web_client):
    first = tokens_for(logged_in, web_client)
    web_client.grant_types = [GrantType.AUTHORIZATION_CODE]
    web_client.save()
    assert_error(refresh(logged_in, web_client, first["refresh_token"]), "unauthorized_client")


def test_refresh_for_disabled_client_is_invalid_client(logged_in, web_client):
    first = tokens_for(logged_in, web_client)
    web_client.is_enabled = False
    web_client.save()
    assert_error(refresh(logged_in, web_client, first["refresh_token"]), "invalid_client", 401)


# --- unsupported grants ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "grant_type",
    [
        "password",
        "implicit",
        "token",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "something-else",
    ],
)
def test_unsupported_grant_types(client, web_client, grant_type):
    data = {"grant_type": grant_type, "username": "u", "password": "p", "device_code": "d"}
    response = token_request(client, data, client=web_client, secret=web_client.raw_secret)
    assert_error(response, "unsupported_grant_type")
    assert not AccessToken.objects.exists()


def test_device_code_grant_without_device_code_is_not_a_500(client, web_client):
    """DOT's token view answered 500 here; the device grant (tests/test_device.py) answers the error."""
    data = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code"}
    response = token_request(client, data, client=web_client, secret=web_client.raw_secret)
    assert_error(response, "invalid_request")


def test_password_grant_is_unsupported_even_for_a_real_user(client, web_client):
    user = UserFactory()
    data = {"grant_type": "password", "username": user.username, "password": "correct horse battery staple"}
    response = token_request(client, data, client=web_client, secret=web_client.raw_secret)
    assert_error(response, "unsupported_grant_type")


def test_missing_grant_type(client, web_client):
    # oauthlib falls back to its default grant (authorization_code), whose validation then
    # rejects the absent grant_type as unsupported_grant_type.
    response = token_request(client, {"code": "x"}, client=web_client, secret=web_client.raw_secret)
    assert_error(response, "unsupported_grant_type")


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_other_methods_on_the_token_endpoint_are_405(client, db, method):
    response = getattr(client, method)(TOKEN_URL)
    assert response.status_code == 405


def test_get_with_parameters_issues_nothing(client, web_client):
    response = client.get(
        TOKEN_URL,
        {
            "grant_type": "client_credentials",
            "client_id": web_client.client_id,
            "client_secret": web_client.raw_secret,
        },
    )
    assert response.status_code == 405
    assert not AccessToken.objects.exists()


def test_malformed_body_is_not_a_500(client, web_client):
    response = client.post(TOKEN_URL, data="{not json", content_type="application/json")
    assert 400 <= response.status_code < 500


# --- metadata -------------------------------------------------------------------------------------
def test_authorization_server_metadata_lists_exactly_what_is_supported(client, db):
    response = client.get(METADATA_URL)
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == "http://testserver/oauth"
    assert meta["token_endpoint"] == "http://testserver" + TOKEN_URL
    assert meta["response_types_supported"] == ["code"]
    assert sorted(meta["grant_types_supported"]) == [
        "authorization_code",
        "client_credentials",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ]
    assert meta["device_authorization_endpoint"] == "http://testserver/oauth/device_authorization/"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "plain" not in meta["code_challenge_methods_supported"]
    for forbidden in ("implicit", "password", "token"):
        assert forbidden not in meta["grant_types_supported"]
        assert forbidden not in meta["response_types_supported"]


def test_app_authorized_is_sent_with_the_saved_token_without_reading_it_back(client, machine_client):
    """DOT's signal still fires once per issued token, with the row the validator saved."""
    from oauth2_provider.signals import app_authorized

    received = []

    def receiver(sender, request, token, **kwargs):
        received.append(token)

    app_authorized.connect(receiver)
    try:
        response = token_request(
            client,
            {"grant_type": "client_credentials", "scope": "reports:read"},
            client=machine_client,
            secret=machine_client.raw_secret,
        )
    finally:
        app_authorized.disconnect(receiver)
    assert response.status_code == 200
    assert len(received) == 1
    token = received[0]
    assert token.pk is not None and token.application_id == machine_client.pk
    assert token.token_checksum == hashlib.sha256(response.json()["access_token"].encode()).hexdigest()


@pytest.mark.django_db(transaction=True)  # the request's transaction really rolls back
def test_a_conflicting_concurrent_write_is_invalid_grant_and_the_refresh_token_still_works(
    logged_in, web_client, monkeypatch
):
    """An IntegrityError inside the token request (a concurrent request changed the grant, e.g. a
    token exchanged from the access token the refresh retires) rolls everything back and answers
    invalid_grant, never a 500; the refresh token was not spent, so a retry succeeds."""
    from django.db import IntegrityError

    from oauth_server import compiled

    issued = tokens_for(logged_in, web_client)
    real_insert = compiled.insert

    def conflicting(obj):
        real_insert(obj)
        raise IntegrityError("insert or update violates foreign key constraint (simulated race)")

    monkeypatch.setattr(compiled, "insert", conflicting)
    response = refresh(logged_in, web_client, issued["refresh_token"])
    monkeypatch.undo()
    body = assert_error(response, "invalid_grant")
    assert "same time" in body["error_description"]
    assert_no_store(response)
    assert AccessToken.objects.count() == 1  # the first token only: nothing of the failed refresh
    assert refresh(logged_in, web_client, issued["refresh_token"]).status_code == 200
