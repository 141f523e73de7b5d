"""Signing keys: encryption at rest, RFC 7638 kids, the JWKS (RFC 7517), first use, the per-process
cache and rotation. Tokens are checked with joserfc against the JWKS as served."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from freezegun import freeze_time
from joserfc import jwe, jwt
from joserfc.jwk import KeySet, OctKey

from oauth_server import keys
from oauth_server.models import AccessToken, Grant, IDToken, SigningKey
from oauth_server.tokens import token_checksum
from tests.factories import ClientFactory, MachineClientFactory
from tests.helpers import exchange_code, get_code, token_request

JWKS_URL = "/oauth/.well-known/jwks.json"
ALGORITHMS = ["RS256", "ES256", "EdDSA"]
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
START = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
State = SigningKey.State


def jwks(browser) -> list[dict]:
    return browser.get(JWKS_URL).json()["keys"]


def kids(browser) -> list[str]:
    return [key["kid"] for key in jwks(browser)]


def verify(browser, token: str):
    return jwt.decode(token, KeySet.import_key_set(browser.get(JWKS_URL).json()), algorithms=ALGORITHMS)


def machine_token(browser, machine):
    return token_request(
        browser, {"grant_type": "client_credentials"}, client=machine, secret=machine.raw_secret
    )


def with_oauth_settings(settings, **values) -> None:
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, **values}


@pytest.fixture
def machine(db):
    return MachineClientFactory(scopes=["reports:read"])


# --- encryption at rest ---------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_private_key_is_stored_as_a_jwe_never_in_clear(db, algorithm):
    key = keys.new_key(algorithm, state=State.ACTIVE)
    stored = SigningKey.objects.filter(pk=key.pk).values("private_key", "public_jwk").get()
    private = json.loads(keys.decrypt_private_key(stored["private_key"]).export_private())

    parts = stored["private_key"].split(".")
    assert len(parts) == 5  # compact JWE
    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    assert header == {"alg": "dir", "enc": "A256GCM", "cty": "jwk+json"}
    secret_values = [private[m] for m in PRIVATE_MEMBERS if m in private]
    assert secret_values  # d (and p, q, ... for RSA)
    for value in secret_values:
        assert value not in stored["private_key"]
        assert value not in json.dumps(stored["public_jwk"])
    assert not PRIVATE_MEMBERS & set(stored["public_jwk"])


def derived_key(secret: str) -> OctKey:
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"oauth_server signing-key encryption v1"
    ).derive(secret.encode())
    return OctKey.import_key(raw)


def test_jwe_is_dir_a256gcm_under_hkdf_of_the_configured_secret(db, settings):
    """Decrypted independently (joserfc): the documented scheme, so the keys can be recovered."""
    with_oauth_settings(settings, SIGNING_KEY_ENCRYPTION_SECRET="s3cret-for-keys-" * 3)
    key = keys.new_key("ES256")
    result = jwe.decrypt_compact(key.private_key, derived_key("s3cret-for-keys-" * 3))
    assert result.protected == {"alg": "dir", "enc": "A256GCM", "cty": "jwk+json"}
    private = json.loads(result.plaintext)
    assert private["kty"] == "EC" and private["d"]
    assert {k: v for k, v in private.items() if k != "d"} == {
        k: key.public_jwk[k] for k in ("kty", "crv", "x", "y")
    }


def test_secret_key_is_the_default_encryption_secret(db, settings):
    key = keys.new_key("ES256")
    assert json.loads(jwe.decrypt_compact(key.private_key, derived_key(settings.SECRET_KEY)).plaintext)["d"]


def test_fallback_secrets_decrypt_and_the_current_one_encrypts(db, settings):
    with_oauth_settings(settings, SIGNING_KEY_ENCRYPTION_SECRET="old-secret-" * 4)
    old = keys.new_key("ES256")
    with_oauth_settings(
        settings,
        SIGNING_KEY_ENCRYPTION_SECRET="new-secret-" * 4,
        SIGNING_KEY_ENCRYPTION_SECRET_FALLBACKS=["old-secret-" * 4],
    )
    assert keys.decrypt_private_key(old.private_key).thumbprint() == old.kid
    new = keys.new_key("ES256", state=State.ACTIVE)
    jwe.decrypt_compact(new.private_key, derived_key("new-secret-" * 4))  # encrypted under the new one


def test_wrong_secret_is_a_clear_key_decryption_error(db, settings):
    key = keys.new_key("ES256")
    with_oauth_settings(settings, SIGNING_KEY_ENCRYPTION_SECRET="another-secret-" * 3)
    with pytest.raises(keys.KeyDecryptionError, match="SIGNING_KEY_ENCRYPTION_SECRET_FALLBACKS") as info:
        keys.decrypt_private_key(key.private_key, kid=key.kid)
    assert key.kid in str(info.value)
    with pytest.raises(keys.KeyDecryptionError):
        keys.decrypt_private_key("not.a.jwe.at.all")


def test_undecryptable_key_at_the_token_endpoint_is_a_json_server_error(client, user, settings, caplog, db):
    """A changed secret without a fallback: 500 server_error JSON (logged), nothing saved, and the
    authorization code is still usable once the operator adds the fallback."""
    web = ClientFactory(scopes=["openid", "files:read"])
    keys.ensure_keys()
    client.force_login(user)
    code, verifier = get_code(client, web, scope="openid files:read")
    with_oauth_settings(settings, SIGNING_KEY_ENCRYPTION_SECRET="rotated-without-fallback-" * 2)
    keys.clear_cache()

    with caplog.at_level(logging.ERROR, logger="oauth_server.tokens"):
        response = exchange_code(client, web, code, verifier)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response.json()["error"] == "server_error"
    assert "SIGNING_KEY_ENCRYPTION_SECRET" not in response.content.decode()  # no config detail leaked
    assert "SIGNING_KEY_ENCRYPTION_SECRET_FALLBACKS" in caplog.text  # ... but the operator is told
    assert not AccessToken.objects.exists() and not IDToken.objects.exists()
    assert Grant.objects.filter(code=token_checksum(code), redeemed_at=None).exists()

    with_oauth_settings(
        settings,
        SIGNING_KEY_ENCRYPTION_SECRET="rotated-without-fallback-" * 2,
        SIGNING_KEY_ENCRYPTION_SECRET_FALLBACKS=[settings.SECRET_KEY],
    )
    response = exchange_code(client, web, code, verifier)
    assert response.status_code == 200, response.content
    verify(client, response.json()["id_token"])


def test_undecryptable_key_for_client_credentials_and_opaque_id_tokens(client, user, settings, db):
    machine = MachineClientFactory(scopes=["reports:read"])
    opaque = ClientFactory(scopes=["openid"], access_token_format="opaque")
    keys.ensure_keys()
    client.force_login(user)
    code, verifier = get_code(client, opaque, scope="openid")
    with_oauth_settings(settings, SIGNING_KEY_ENCRYPTION_SECRET="x" * 40)
    keys.clear_cache()
    for response in (machine_token(client, machine), exchange_code(client, opaque, code, verifier)):
        assert response.status_code == 500 and response.json()["error"] == "server_error"
    assert not AccessToken.objects.exists() and not IDToken.objects.exists()


# --- algorithms and kids ----------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_algorithm_signs_tokens_joserfc_verifies_and_kid_is_the_rfc7638_thumbprint(
    client, machine, settings, algorithm
):
    with_oauth_settings(settings, SIGNING_KEY_ALGORITHM=algorithm)
    response = machine_token(client, machine)
    assert response.status_code == 200, response.content
    token = verify(client, response.json()["access_token"])
    assert token.header["alg"] == algorithm
    published = {key["kid"]: key for key in jwks(client)}
    key = KeySet.import_key_set({"keys": [published[token.header["kid"]]]}).keys[0]
    assert key.thumbprint() == token.header["kid"]  # RFC 7638, computed by joserfc
    assert all(k["alg"] == algorithm for k in published.values())


def test_unsupported_algorithm_is_refused(db):
    with pytest.raises(ValueError, match="Unsupported signing algorithm"):
        keys.new_key("HS256")


# --- the JWKS -------------------------------------------------------------------------------------------
def test_jwks_publishes_active_next_and_retired_public_keys_with_cache_headers(client, db, settings):
    with_oauth_settings(settings, JWKS_MAX_AGE=123)
    first = keys.ensure_keys()
    rotation = keys.rotate(algorithm="EdDSA")
    response = client.get(JWKS_URL)
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=123"
    assert response["Access-Control-Allow-Origin"] == "*"
    published = response.json()["keys"]
    # active first, then next, then retired
    assert [k["kid"] for k in published] == [rotation.activated.kid, rotation.next.kid, first.kid]
    assert rotation.retired.kid == first.kid
    for key in published:
        assert key["use"] == "sig" and key["alg"] in ALGORITHMS and key["kid"]
        assert not PRIVATE_MEMBERS & set(key), key
    assert published[1]["alg"] == "EdDSA" and published[1]["crv"] == "Ed25519"
    KeySet.import_key_set(response.json())  # a valid RFC 7517 set


def test_first_use_creates_an_active_and_a_next_key(client, db):
    assert not SigningKey.objects.exists()
    published = jwks(client)
    assert len(published) == 2
    assert SigningKey.objects.get(state=State.ACTIVE).kid == published[0]["kid"]
    assert SigningKey.objects.get(state=State.NEXT).kid == published[1]["kid"]
    assert jwks(client) == published  # stable: no new keys on later requests


def test_first_token_request_creates_the_keys(client, machine):
    response = machine_token(client, machine)
    assert response.status_code == 200
    assert verify(client, response.json()["access_token"]).header["kid"] == keys.ensure_keys().kid
    assert SigningKey.objects.count() == 2


def test_concurrent_first_use_uses_the_key_the_other_process_created(db, monkeypatch):
    """Both processes saw no key; the other one committed first: our insert hits the one-active
    constraint and we use its key, with no error and no extra key."""
    theirs = keys.new_key(state=State.ACTIVE)
    keys.new_key(state=State.NEXT)
    calls = []

    def find_before_the_other_commit():
        calls.append(1)
        return None  # what this process saw before the other one committed

    monkeypatch.setattr(keys, "_find_active", find_before_the_other_commit)
    create = mock.patch.object(keys, "new_key", wraps=keys.new_key)
    with create as new_key:
        assert keys.ensure_keys() == theirs
    assert calls == [1] and new_key.call_count == 1  # it tried, hit the constraint, used theirs
    assert SigningKey.objects.count() == 2
    monkeypatch.undo()
    assert keys.active_key().kid == theirs.kid  # and the database is still usable afterwards


# --- rotation and retirement -----------------------------------------------------------------------------
def test_retired_key_leaves_the_jwks_after_retire_after_and_is_purged(client, db):
    with freeze_time(START) as frozen:
        first = keys.ensure_keys()
        rotation = keys.rotate()
        assert rotation.retire_after == START + timedelta(seconds=3600 + 300)
        frozen.move_to(rotation.retire_after - timedelta(seconds=1))
        assert first.kid in kids(client)
        assert keys.purge_expired() == 0
        frozen.move_to(rotation.retire_after)
        assert first.kid not in kids(client)
        assert keys.published_keys().keys() == {rotation.activated.kid, rotation.next.kid}
        assert keys.purge_expired() == 1
        assert set(SigningKey.objects.values_list("state", flat=True)) == {State.ACTIVE, State.NEXT}


@pytest.mark.parametrize(
    ("oauth_server", "client_lifetime", "expected"),
    [
        ({}, None, 3600 + 300),  # site access token lifetime
        ({}, 7200, 7200 + 300),  # a client's longer access tokens
        ({"ID_TOKEN_LIFETIME": 10800}, 7200, 10800 + 300),  # longer ID tokens
        ({"ACCESS_TOKEN_LIFETIME": 60, "ID_TOKEN_LIFETIME": 60}, None, 60 + 300),
        ({"SIGNING_KEY_RETIRE_LEEWAY": 0}, None, 3600 + 30),  # never less than the cache window
        ({"SIGNING_KEY_RETIRE_LEEWAY": 0, "SIGNING_KEY_CACHE_SECONDS": 90}, None, 3600 + 90),
    ],
)
def test_retire_after_covers_the_longest_token_lifetime(
    db, settings, oauth_server, client_lifetime, expected
):
    with_oauth_settings(settings, **oauth_server)
    ClientFactory(access_token_lifetime=client_lifetime)
    keys.ensure_keys()
    with freeze_time(START):
        assert keys.rotate().retire_after == START + timedelta(seconds=expected)


def test_retire_after_covers_dots_own_access_token_setting(db, settings):
    settings.OAUTH2_PROVIDER = {"ACCESS_TOKEN_EXPIRE_SECONDS": 20000}
    keys.ensure_keys()
    with freeze_time(START):
        assert keys.rotate().retire_after == START + timedelta(seconds=20000 + 300)


def test_rotation_with_no_next_key_activates_a_new_one(db):
    first = keys.ensure_keys()
    SigningKey.objects.filter(state=State.NEXT).delete()
    rotation = keys.rotate()
    assert rotation.retired == first
    assert SigningKey.objects.get(state=State.ACTIVE) == rotation.activated != first
    assert SigningKey.objects.get(state=State.NEXT) == rotation.next


# --- the active-key cache ----------------------------------------------------------------------------------
def test_rotation_in_this_process_takes_effect_at_once(client, machine):
    before = verify(client, machine_token(client, machine).json()["access_token"]).header["kid"]
    rotation = keys.rotate()
    after = verify(client, machine_token(client, machine).json()["access_token"]).header["kid"]
    assert before == rotation.retired.kid and after == rotation.activated.kid


def test_rotation_by_another_process_is_picked_up_within_the_cache_time(client, machine, settings):
    """Another process rotated: this one keeps its cached key for SIGNING_KEY_CACHE_SECONDS, and its
    tokens still verify because the retired key stays published."""
    with_oauth_settings(settings, SIGNING_KEY_CACHE_SECONDS=30)
    with freeze_time(START) as frozen:
        old = verify(client, machine_token(client, machine).json()["access_token"]).header["kid"]
        with mock.patch.object(keys, "clear_cache"):  # the other process cannot clear our cache
            rotation = keys.rotate()
        assert rotation.retired.kid == old

        frozen.tick(timedelta(seconds=29))
        stale = machine_token(client, machine).json()["access_token"]
        assert verify(client, stale).header["kid"] == old  # signed with the retired key: still valid

        frozen.tick(timedelta(seconds=2))
        fresh = machine_token(client, machine).json()["access_token"]
        assert verify(client, fresh).header["kid"] == rotation.activated.kid
        verify(client, stale)
