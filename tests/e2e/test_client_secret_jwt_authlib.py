"""Authlib's ``client_secret_jwt`` (``authlib.oauth2.rfc7523.ClientSecretJWT``: RFC 7523 assertions
MACed with the client secret, HS256/384/512) against the running demo (``demo_site``) over real
HTTP: a service registered with ``create_oauth_client --auth-method client_secret_jwt`` gets a
client-credentials token, introspects it and revokes it, each request authenticated by an assertion
Authlib signs (docs/interop.md, docs/client-authentication.md).

And what the server refuses, each ``invalid_client`` to the client with the reason in the audit
trail: an assertion MACed with the wrong secret (at all three endpoints), the same assertion twice,
Authlib's default hour-long assertion, and algorithm confusion both ways (an RSA-signed assertion
for this secret client; an HMAC keyed with a ``private_key_jwt`` client's published public key).
The set-up shared with ``test_private_key_jwt_authlib.py`` is ``tests/e2e/client_assertions.py``.
"""

from __future__ import annotations

import json

import pytest
from authlib.oauth2.rfc7523 import ClientSecretJWT
from joserfc.jwk import RSAKey

from tests.e2e.client_assertions import (
    ShortLivedClientSecretJWT,
    ShortLivedPrivateKeyJWT,
    assert_refused,
    assert_replay_refused,
    assert_token_refused,
    assertion_session,
    register,
    token_introspect_revoke,
)

pytestmark = [pytest.mark.live, pytest.mark.once]

CLIENT_ID = "authlib-client-secret-jwt"
KEY_CLIENT_ID = "authlib-hmac-confusion-target"  # a private_key_jwt client, for the confusion
ENDPOINTS = ["token", "introspection", "revocation"]
# To the rate limiter (client_assertions.py) the service and the attacker are two hosts, each with
# fewer refusals than its limits (10 a minute per address, 5 per client and address).
ADDRESS, ATTACKER = "127.0.0.3", "127.0.0.4"


@pytest.fixture(scope="module")
def service(demo_site) -> dict:
    """The client, with the secret create_oauth_client generated (kept encrypted for the HMAC)."""
    return register(
        demo_site, CLIENT_ID, "Authlib client_secret_jwt service", "--auth-method", "client_secret_jwt"
    )


@pytest.fixture(scope="module")
def key_client(demo_site, tmp_path_factory: pytest.TempPathFactory) -> RSAKey:
    """A ``private_key_jwt`` client; its RSA key (the public half is all an attacker needs)."""
    key = RSAKey.generate_key(2048, parameters={"kid": "confusion-target", "alg": "RS256", "use": "sig"})
    public = tmp_path_factory.mktemp("confusion-keys") / "public.jwks.json"
    public.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    register(
        demo_site, KEY_CLIENT_ID, "private_key_jwt service",
        "--auth-method", "private_key_jwt", "--jwks-file", str(public),
    )  # fmt: skip
    return key


def session(service: dict, alg: str = "HS256", auth: ClientSecretJWT | None = None):
    """The service's Authlib client: it MACs its assertions with the client secret (as text, as
    Authlib takes it)."""
    return assertion_session(
        CLIENT_ID, service["client_secret"], auth or ShortLivedClientSecretJWT(alg=alg), ADDRESS
    )


def test_the_secret_is_long_enough_for_every_hmac(service):
    """RFC 7518 3.2: a key at least as long as the hash, 64 bytes for HS512."""
    assert service["token_endpoint_auth_method"] == "client_secret_jwt"
    assert len(service["client_secret"].encode()) >= 64


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_client_credentials_introspection_and_revocation(demo_site, service, alg):
    token_introspect_revoke(demo_site, session(service, alg))


def test_authlibs_default_hour_long_assertion_is_refused(demo_site, service):
    assert_token_refused(demo_site, session(service, auth=ClientSecretJWT()), "lifetime_too_long")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_wrong_secret_is_refused(demo_site, service, endpoint):
    oauth = assertion_session(CLIENT_ID, "not-the-secret-" + "x" * 64, ShortLivedClientSecretJWT(), ATTACKER)
    url = demo_site.endpoints[endpoint]
    if endpoint == "token":
        assert_token_refused(demo_site, oauth, "invalid_signature")
    else:
        sent = {"introspection": oauth.introspect_token, "revocation": oauth.revoke_token}[endpoint]
        assert_refused(demo_site, sent(url, token="any-token"), CLIENT_ID, "invalid_signature")


def test_a_replayed_assertion_is_refused(demo_site, service):
    """Authlib signs a new assertion (new jti) per request; the same assertion twice is a replay."""
    auth = ShortLivedClientSecretJWT()
    assert_replay_refused(demo_site, session(service, auth=auth), auth)


def test_an_rsa_signed_assertion_for_the_secret_client_is_refused(demo_site, service):
    """Algorithm confusion one way: RS256 names ``private_key_jwt``, a method this client is not
    registered for, so no verifier ever sees the attacker's key."""
    attacker_key = RSAKey.generate_key(2048)
    oauth = assertion_session(CLIENT_ID, attacker_key, ShortLivedPrivateKeyJWT(alg="RS256"), ATTACKER)
    assert_token_refused(demo_site, oauth, "auth_method_not_allowed", method="private_key_jwt")


def test_an_hmac_keyed_with_a_key_clients_public_key_is_refused(demo_site, key_client):
    """The classic confusion the other way: HS256 keyed with the public key a ``private_key_jwt``
    client publishes. HS* names ``client_secret_jwt``, which this client is not registered for.

    Authlib (joserfc) will not MAC with a PEM public key at all; its JWK text it takes as a secret."""
    auth = ShortLivedClientSecretJWT(alg="HS256")
    pem = key_client.as_pem(private=False).decode()
    with pytest.raises(ValueError, match="Asymmetric public keys"):
        auth.sign(assertion_session(KEY_CLIENT_ID, pem, auth, ATTACKER).client_auth(None), "unused")
    public_jwk = json.dumps(key_client.as_dict(private=False))
    oauth = assertion_session(KEY_CLIENT_ID, public_jwk, auth, ATTACKER)
    assert_token_refused(demo_site, oauth, "auth_method_not_allowed", method="client_secret_jwt")
