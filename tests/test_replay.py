"""Replay and revocation: a replayed code revokes what it issued (RFC 6749 4.1.2), a reused refresh
token revokes its family (RFC 9700 4.14), a token request that fails after writing leaves nothing,
and disabling a client or deactivating a user revokes their tokens. See docs/hardening.md."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from freezegun import freeze_time

from oauth_server import signals
from oauth_server.models import AccessToken, Client, Grant, GrantType, IDToken, RefreshToken
from oauth_server.request_state import state_of
from oauth_server.tokens import token_checksum
from oauth_server.validator import OAuthServerValidator
from tests.factories import ClientFactory, UserFactory
from tests.helpers import basic_auth, exchange_code, get_code, token_request

SCOPE = "openid files:read"


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def web(db):
    return ClientFactory(scopes=["openid", "files:read"])


def assert_invalid_grant(response) -> None:
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_grant"


def refresh(browser, client, refresh_token: str):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return token_request(browser, data, client=client, secret=client.raw_secret)


def introspect_active(browser, client, token: str) -> bool:
    auth = basic_auth(client.client_id, client.raw_secret)
    response = browser.post("/oauth/introspect/", {"token": token}, HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200, response.content
    return response.json()["active"]


def exchange(browser, client, scope: str = SCOPE) -> tuple[str, str, dict]:
    code, verifier = get_code(browser, client, scope=scope)
    response = exchange_code(browser, client, code, verifier)
    assert response.status_code == 200, response.content
    return code, verifier, response.json()


# --- the code at rest and its tombstone ---------------------------------------------------------------
def test_code_is_stored_as_its_sha256_and_kept_as_a_tombstone_once_exchanged(logged_in, web):
    code, verifier = get_code(logged_in, web, scope=SCOPE)
    grant = Grant.objects.get(application=web)
    assert grant.code == token_checksum(code) and code not in grant.code
    assert grant.redeemed_at is None

    body = exchange_code(logged_in, web, code, verifier).json()
    grant.refresh_from_db()
    assert grant.redeemed_at is not None
    access = AccessToken.objects.get(token_checksum=token_checksum(body["access_token"]))
    rt = RefreshToken.objects.get(token_checksum=token_checksum(body["refresh_token"]))
    assert access.grant_id == grant.pk and rt.grant_id == grant.pk


def test_the_stored_checksum_is_not_a_code(logged_in, web):
    code, verifier = get_code(logged_in, web, scope=SCOPE)
    stored = Grant.objects.get(application=web).code
    assert_invalid_grant(exchange_code(logged_in, web, stored, verifier))
    assert exchange_code(logged_in, web, code, verifier).status_code == 200


def test_cleartokens_purges_expired_tombstones_and_keeps_the_tokens(logged_in, web):
    _code, _verifier, body = exchange(logged_in, web)
    with freeze_time(timezone.now() + timedelta(minutes=5)):
        call_command("cleartokens")
    assert not Grant.objects.exists()
    access = AccessToken.objects.get(token_checksum=token_checksum(body["access_token"]))
    assert access.grant_id is None
    assert refresh(logged_in, web, body["refresh_token"]).status_code == 200


# --- replayed codes ---------------------------------------------------------------------------------
def test_replayed_code_is_invalid_grant_and_revokes_every_token_issued_from_it(logged_in, web):
    code, verifier, first = exchange(logged_in, web)
    refreshed = refresh(logged_in, web, first["refresh_token"]).json()  # later tokens of the same code
    assert introspect_active(logged_in, web, refreshed["access_token"])
    received = []
    signals.authorization_code_replayed.connect(
        lambda **kw: received.append(kw), weak=False, dispatch_uid="test"
    )
    try:
        assert_invalid_grant(exchange_code(logged_in, web, code, verifier))
    finally:
        # Only this test's receiver: the audit trail's stays connected.
        signals.authorization_code_replayed.disconnect(dispatch_uid="test")

    assert not AccessToken.objects.filter(application=web).exists()
    assert not RefreshToken.objects.filter(application=web, revoked__isnull=True).exists()
    assert not introspect_active(logged_in, web, refreshed["access_token"])
    assert_invalid_grant(refresh(logged_in, web, refreshed["refresh_token"]))
    assert [r["client"] for r in received] == [web]


def test_replay_revokes_the_access_token_of_a_client_without_refresh_tokens(logged_in, db):
    web = ClientFactory(scopes=["files:read"], grant_types=[GrantType.AUTHORIZATION_CODE])
    code, verifier, body = exchange(logged_in, web, scope="files:read")
    assert "refresh_token" not in body
    assert_invalid_grant(exchange_code(logged_in, web, code, verifier))
    assert not AccessToken.objects.filter(token_checksum=token_checksum(body["access_token"])).exists()


def test_replay_leaves_other_sessions_of_the_same_user_and_client_alone(logged_in, web):
    code, verifier, _ = exchange(logged_in, web)
    _other_code, _other_verifier, other = exchange(logged_in, web)
    assert_invalid_grant(exchange_code(logged_in, web, code, verifier))
    assert introspect_active(logged_in, web, other["access_token"])
    assert refresh(logged_in, web, other["refresh_token"]).status_code == 200


def test_a_code_presented_by_another_client_revokes_nothing(logged_in, web):
    code, verifier, body = exchange(logged_in, web)
    other = ClientFactory(scopes=["openid", "files:read"])
    assert_invalid_grant(exchange_code(logged_in, other, code, verifier))
    assert introspect_active(logged_in, web, body["access_token"])


# --- one transaction per token request ----------------------------------------------------------------
def test_a_code_redeemed_while_tokens_were_being_saved_leaves_no_token_behind(logged_in, web, monkeypatch):
    """A concurrent request redeems the code between our save and our invalidate: invalid_grant, and
    the tokens (and ID token) this request wrote are rolled back."""
    code, verifier = get_code(logged_in, web, scope=SCOPE)
    save = OAuthServerValidator.save_bearer_token

    def save_then_lose_the_race(self, token, request, *args, **kwargs):
        result = save(self, token, request, *args, **kwargs)
        Grant.objects.filter(pk=state_of(request).grant.pk).update(redeemed_at=timezone.now())
        return result

    monkeypatch.setattr(OAuthServerValidator, "save_bearer_token", save_then_lose_the_race)
    assert_invalid_grant(exchange_code(logged_in, web, code, verifier))
    assert not AccessToken.objects.exists()
    assert not RefreshToken.objects.exists()
    assert not IDToken.objects.exists()
    assert Grant.objects.get(application=web).redeemed_at is None  # rolled back with the rest


def test_refresh_reuse_is_invalid_grant_and_revokes_the_whole_family(logged_in, web):
    _code, _verifier, first = exchange(logged_in, web)
    second = refresh(logged_in, web, first["refresh_token"]).json()
    assert_invalid_grant(refresh(logged_in, web, first["refresh_token"]))  # the rotated one, again
    assert_invalid_grant(refresh(logged_in, web, second["refresh_token"]))  # its successor is dead too
    assert not AccessToken.objects.filter(application=web).exists()
    assert not introspect_active(logged_in, web, second["access_token"])


def touches_tokens(queries) -> bool:
    tables = {m._meta.db_table for m in (AccessToken, RefreshToken, Grant)}
    return any(table in q["sql"] for q in queries for table in tables)


# --- disabled clients, deactivated users --------------------------------------------------------------
def test_disabling_a_client_revokes_its_tokens_and_codes(logged_in, web, user):
    _code, _verifier, body = exchange(logged_in, web)
    pending, _pending_verifier = get_code(logged_in, web, scope=SCOPE)
    other = ClientFactory(scopes=["openid", "files:read"])
    _c, _v, other_body = exchange(logged_in, other)

    web.is_enabled = False
    web.save()

    assert not AccessToken.objects.filter(application=web).exists()
    assert not RefreshToken.objects.filter(application=web, revoked__isnull=True).exists()
    assert not Grant.objects.filter(application=web).exists()
    web.is_enabled = True
    web.save()  # enabling again brings nothing back
    assert_invalid_grant(refresh(logged_in, web, body["refresh_token"]))
    assert introspect_active(logged_in, other, other_body["access_token"])


def test_disabling_a_client_loaded_elsewhere_revokes(logged_in, web):
    exchange(logged_in, web)
    loaded = Client.objects.get(pk=web.pk)
    loaded.is_enabled = False
    loaded.save(update_fields=["is_enabled"])
    assert not AccessToken.objects.filter(application=web).exists()


def test_saving_a_client_without_disabling_it_revokes_nothing(logged_in, web):
    exchange(logged_in, web)
    web.name = "Renamed"
    web.save()
    for loaded in (Client.objects.get(pk=web.pk), Client.objects.only("pk", "name").get(pk=web.pk)):
        with CaptureQueriesContext(connection) as queries:
            loaded.name = "Renamed again"
            loaded.save()
        assert not touches_tokens(queries), [q["sql"] for q in queries]
    # A disabled flag set in memory but not written (update_fields) revokes nothing either.
    web.is_enabled = False
    web.save(update_fields=["name"])
    assert AccessToken.objects.filter(application=web).count() == 1


def test_deactivating_a_user_revokes_their_tokens_and_codes(logged_in, web, user):
    _code, _verifier, body = exchange(logged_in, web)
    get_code(logged_in, web, scope=SCOPE)
    someone = UserFactory()
    kept = AccessToken.objects.create(
        user=someone, application=web, scope="files:read", expires=timezone.now() + timedelta(hours=1)
    )

    user.is_active = False
    user.save()

    assert not AccessToken.objects.filter(user=user).exists()
    assert not RefreshToken.objects.filter(user=user, revoked__isnull=True).exists()
    assert not Grant.objects.filter(user=user).exists()
    assert AccessToken.objects.filter(pk=kept.pk).exists()
    user.is_active = True
    user.save()
    assert_invalid_grant(refresh(logged_in, web, body["refresh_token"]))


def test_saving_a_user_costs_no_extra_query_unless_deactivated(logged_in, web, user):
    exchange(logged_in, web)
    with CaptureQueriesContext(connection) as queries:
        user.first_name = "Ada"
        user.save()
    assert len(queries) == 1, [q["sql"] for q in queries]  # the UPDATE: no read of the old flag
    user.is_active = False
    user.save(update_fields=["first_name"])  # not written: nothing revoked
    assert AccessToken.objects.filter(user=user).exists()
    inactive = type(user).objects.get(pk=user.pk)
    inactive.save()  # loaded as active, saved as active
    assert AccessToken.objects.filter(user=user).exists()
    user.save(update_fields=["is_active"])
    assert not AccessToken.objects.filter(user=user).exists()
