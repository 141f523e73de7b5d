"""Client-secret hashing: salted SHA-256, constant-time checks, legacy Django hashes, secret rules."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.test import override_settings

from oauth_server import hashers
from oauth_server.models import Client, GrantType
from tests.factories import MachineClientFactory
from tests.helpers import token_request

SECRET = "a-high-entropy-client-secret-0123456789-abcdefghijklmnop"
PBKDF2 = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]


# --- make / check ------------------------------------------------------------------------------------
def test_round_trip():
    stored = hashers.make_secret_hash(SECRET)
    assert hashers.check_secret(SECRET, stored)
    assert not hashers.check_secret(SECRET + "x", stored)
    assert not hashers.check_secret(SECRET[:-1], stored)


def test_format_is_algorithm_salt_digest():
    algorithm, salt, digest = hashers.make_secret_hash(SECRET).split("$")
    assert algorithm == "sha256"
    assert len(salt) == 16
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert SECRET not in digest


def test_hashes_are_salted():
    first, second = hashers.make_secret_hash(SECRET), hashers.make_secret_hash(SECRET)
    assert first != second
    assert first.split("$")[1] != second.split("$")[1]
    assert hashers.check_secret(SECRET, first) and hashers.check_secret(SECRET, second)


def test_explicit_salt_is_deterministic():
    assert hashers.make_secret_hash(SECRET, salt="abc") == hashers.make_secret_hash(SECRET, salt="abc")


def test_unicode_secret_round_trip():
    secret = "sécret-秘密-" + "x" * 32
    assert hashers.check_secret(secret, hashers.make_secret_hash(secret))


def test_check_compares_in_constant_time():
    stored = hashers.make_secret_hash(SECRET)
    with mock.patch.object(hashers.hmac, "compare_digest", wraps=hashers.hmac.compare_digest) as compare:
        assert not hashers.check_secret("wrong", stored)
        assert hashers.check_secret(SECRET, stored)
    assert compare.call_count == 2


def test_tampered_digest_or_salt_fails():
    algorithm, salt, digest = hashers.make_secret_hash(SECRET).split("$")
    flipped = ("0" if digest[0] != "0" else "1") + digest[1:]
    assert not hashers.check_secret(SECRET, f"{algorithm}${salt}${flipped}")
    assert not hashers.check_secret(SECRET, f"{algorithm}${salt}x${digest}")


# --- what is never accepted -------------------------------------------------------------------------
@pytest.mark.parametrize("stored", [SECRET, "sha256$" + SECRET, "0123456789abcdef0123456789abcdef"])
def test_unhashed_stored_value_is_never_accepted(stored):
    assert not hashers.check_secret(stored, stored)
    assert not hashers.is_hashed(stored)


def test_presenting_the_hash_itself_fails():
    stored = hashers.make_secret_hash(SECRET)
    assert not hashers.check_secret(stored, stored)


@pytest.mark.parametrize("presented", ["", None])
def test_empty_secret_is_never_accepted(presented):
    assert not hashers.check_secret(presented, hashers.make_secret_hash(SECRET))
    # ...not even against the hash of an empty secret.
    assert not hashers.check_secret(presented, hashers.make_secret_hash(""))


def test_empty_stored_value_is_never_accepted():
    assert not hashers.check_secret(SECRET, "")
    assert not hashers.check_secret("", "")


@pytest.mark.parametrize("stored", ["sha256$onlysalt", "sha256$", "pbkdf2_sha256$bogus", "md5$$"])
def test_malformed_hashes_fail_closed(stored):
    assert not hashers.check_secret(SECRET, stored)


@override_settings(PASSWORD_HASHERS=PBKDF2)
@pytest.mark.parametrize("stored", ["pbkdf2_sha256$bogus", "pbkdf2_sha256$x$salt$hash", "pbkdf2_sha256$$$"])
def test_malformed_legacy_hashes_fail_closed(stored):
    assert not hashers.check_secret(SECRET, stored)


def test_malformed_stored_hash_is_invalid_client_not_a_500(client, db):
    machine = MachineClientFactory(client_secret="md5$$", raw_secret=SECRET)
    response = token_request(client, {"grant_type": "client_credentials"}, client=machine, secret=SECRET)
    assert response.status_code == 401


# --- legacy Django password hashes (rows made by plain DOT) ----------------------------------------
@override_settings(PASSWORD_HASHERS=PBKDF2)
def test_django_pbkdf2_hash_verifies():
    stored = make_password(SECRET)
    assert stored.startswith("pbkdf2_sha256$")
    assert hashers.is_hashed(stored)
    assert hashers.check_secret(SECRET, stored)
    assert not hashers.check_secret(SECRET + "x", stored)
    assert not hashers.check_secret("", stored)


def test_legacy_hash_of_a_hasher_the_site_dropped_fails_closed():
    with override_settings(PASSWORD_HASHERS=PBKDF2):
        stored = make_password(SECRET)
    # tests.settings only configures MD5: the PBKDF2 hash is unknown and must not raise.
    assert not hashers.check_secret(SECRET, stored)


@override_settings(PASSWORD_HASHERS=PBKDF2)
def test_legacy_client_authenticates_and_is_not_rehashed_on_save(client, db):
    machine = MachineClientFactory(client_secret=make_password(SECRET), raw_secret=SECRET)
    stored = Client.objects.get(pk=machine.pk).client_secret
    assert stored.startswith("pbkdf2_sha256$")
    machine.save()
    assert Client.objects.get(pk=machine.pk).client_secret == stored
    response = token_request(client, {"grant_type": "client_credentials"}, client=machine, secret=SECRET)
    assert response.status_code == 200, response.content
    assert (
        token_request(
            client, {"grant_type": "client_credentials"}, client=machine, secret="x" * 40
        ).status_code
        == 401
    )


# --- is_hashed / generate_secret ----------------------------------------------------------------------
def test_is_hashed():
    assert hashers.is_hashed(hashers.make_secret_hash(SECRET))
    assert hashers.is_hashed(make_password(SECRET))  # the configured Django hasher
    assert not hashers.is_hashed("")
    assert not hashers.is_hashed(SECRET)
    assert not hashers.is_hashed("sha256$a$b$c")


def test_generated_secrets_are_long_random_and_url_safe():
    secrets = {hashers.generate_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert len(secret) == 64  # 48 bytes, base64url without padding
        assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@override_settings(OAUTH_SERVER={"CLIENT_SECRET_BYTES": 32})
def test_generated_secret_length_follows_the_setting():
    assert len(hashers.generate_secret()) == 43


# --- Client.save / set_secret -------------------------------------------------------------------------
def _client(**fields) -> Client:
    defaults = {
        "name": "m",
        "client_type": Client.CLIENT_CONFIDENTIAL,
        "grant_types": [GrantType.CLIENT_CREDENTIALS],
    }
    return Client(**{**defaults, **fields})


def test_save_hashes_a_clear_secret(db):
    c = _client(client_secret=SECRET)
    c.save()
    stored = Client.objects.get(pk=c.pk).client_secret
    assert stored.startswith("sha256$") and SECRET not in stored
    assert Client.objects.get(pk=c.pk).check_secret(SECRET)


def test_save_does_not_hash_twice(db):
    c = _client(client_secret=SECRET)
    c.save()
    stored = c.client_secret
    c.name = "renamed"
    c.save()
    assert Client.objects.get(pk=c.pk).client_secret == stored
    assert c.check_secret(SECRET)


def test_set_secret_generates_returns_the_clear_value_and_stores_a_hash(db):
    c = _client()
    clear = c.set_secret()
    assert len(clear) == 64
    assert c.client_secret != clear and hashers.is_hashed(c.client_secret)
    c.save()
    assert Client.objects.get(pk=c.pk).check_secret(clear)


def test_set_secret_rotates(db):
    c = _client()
    old = c.set_secret()
    c.save()
    new = c.set_secret()
    c.save()
    fresh = Client.objects.get(pk=c.pk)
    assert fresh.check_secret(new)
    assert not fresh.check_secret(old)


def test_set_secret_enforces_the_minimum_length():
    c = _client()
    with pytest.raises(ValidationError) as exc:
        c.set_secret("x" * 31)
    assert "client_secret" in exc.value.message_dict
    assert c.client_secret == ""
    assert c.set_secret("x" * 32) == "x" * 32


@override_settings(OAUTH_SERVER={"CLIENT_SECRET_MIN_LENGTH": 50})
def test_minimum_length_follows_the_setting():
    with pytest.raises(ValidationError):
        _client().set_secret("x" * 49)
    _client().set_secret("x" * 50)


def test_create_client_refuses_a_short_secret_and_saves_nothing(db):
    with pytest.raises(ValidationError):
        Client.objects.create_client(
            name="m",
            client_type=Client.CLIENT_CONFIDENTIAL,
            grant_types=[GrantType.CLIENT_CREDENTIALS],
            client_secret="short",
        )
    assert not Client.objects.exists()
