"""Authlib's RFC 7523 client authentication (``authlib.oauth2.rfc7523.PrivateKeyJWT``) against the
running demo (``demo_site``): a service registered with ``create_oauth_client --auth-method
private_key_jwt --jwks-file`` gets a client-credentials token, introspects it and revokes it, each
request authenticated by an assertion Authlib signs (docs/interop.md).

What Authlib does by default and this server refuses: its assertions are valid for an hour
(``expires_in=3600``), longer than ``CLIENT_ASSERTION_MAX_LIFETIME`` (300 s). ``ShortLivedPrivateKeyJWT``
is the few lines a client adds (docs/interop.md); the default is tested to be refused, so a change
on either side shows up here. The set-up and the checks it shares with the ``client_secret_jwt``
file (``test_client_secret_jwt_authlib.py``) are ``tests/e2e/client_assertions.py``.
"""

from __future__ import annotations

import json

import pytest
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey, RSAKey
from jwcrypto import jwk

from tests.e2e.client_assertions import (
    ShortLivedPrivateKeyJWT,
    assert_replay_refused,
    assert_token_refused,
    assertion_session,
    register,
    token_introspect_revoke,
)

pytestmark = [pytest.mark.live, pytest.mark.once]

CLIENT_ID = "authlib-private-key-jwt"
ADDRESS = "127.0.0.2"  # this module's host, to the rate limiter (client_assertions.py)

# Generated once: RSA generation is slow. RS256 is Authlib's default; ES256 the other common choice.
KEYS = {
    "RS256": jwk.JWK.generate(kty="RSA", size=2048, kid="authlib-rsa", alg="RS256", use="sig"),
    "ES256": jwk.JWK.generate(kty="EC", crv="P-256", kid="authlib-ec", alg="ES256", use="sig"),
}


@pytest.fixture(scope="module")
def service(demo_site, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The client, registered with its two public keys (no secret), for the reports API."""
    public = tmp_path_factory.mktemp("authlib-keys") / "public.jwks.json"
    public.write_text(json.dumps({"keys": [json.loads(key.export_public()) for key in KEYS.values()]}))
    return register(
        demo_site, CLIENT_ID, "Authlib private_key_jwt service",
        "--auth-method", "private_key_jwt", "--jwks-file", str(public),
    )  # fmt: skip


def session(alg: str = "RS256", auth: PrivateKeyJWT | None = None):
    """An Authlib client authenticating with the private key of ``alg`` (a joserfc key, as Authlib wants)."""
    key_class = {"RS256": RSAKey, "ES256": ECKey}[alg]
    private_key = key_class.import_key(KEYS[alg].export_to_pem(private_key=True, password=None))
    return assertion_session(CLIENT_ID, private_key, auth or ShortLivedPrivateKeyJWT(alg=alg), ADDRESS)


def test_the_client_has_no_secret(service):
    assert service["token_endpoint_auth_method"] == "private_key_jwt"
    assert service["client_secret"] is None


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_client_credentials_introspection_and_revocation(demo_site, service, alg):
    token_introspect_revoke(demo_site, session(alg))


def test_the_issuer_as_audience_works_at_every_endpoint(demo_site, service):
    """RFC 7523bis / FAPI 2.0: the issuer as the assertion's only audience."""
    oauth = session(auth=ShortLivedPrivateKeyJWT(token_endpoint=demo_site.issuer))
    token = oauth.fetch_token(demo_site.endpoints["token"], grant_type="client_credentials")
    introspected = oauth.introspect_token(demo_site.endpoints["introspection"], token=token["access_token"])
    assert introspected.json()["active"] is True
    revoked = oauth.revoke_token(demo_site.endpoints["revocation"], token=token["access_token"])
    assert revoked.status_code == 200


def test_authlibs_default_hour_long_assertion_is_refused(demo_site, service):
    assert_token_refused(demo_site, session(auth=PrivateKeyJWT()), "lifetime_too_long")  # exp = iat + 3600


def test_another_servers_audience_is_refused(demo_site, service):
    auth = ShortLivedPrivateKeyJWT(token_endpoint="https://other-server.example/oauth/token/")
    assert_token_refused(demo_site, session(auth=auth), "wrong_audience")


def test_a_replayed_assertion_is_refused(demo_site, service):
    """Authlib signs a new assertion (new jti) per request; the same assertion twice is a replay."""
    auth = ShortLivedPrivateKeyJWT()
    assert_replay_refused(demo_site, session(auth=auth), auth)


def test_authlib_with_a_claims_dict_reuses_its_jti_and_the_server_catches_it(demo_site, service):
    """``PrivateKeyJWT(claims={...})``: Authlib writes the jti it generates into that dict, so every
    later assertion carries the same jti (docs/interop.md); the second request is a replay."""
    auth = ShortLivedPrivateKeyJWT(claims={})
    oauth = session(auth=auth)
    oauth.fetch_token(demo_site.endpoints["token"], grant_type="client_credentials")
    assert "jti" in auth.claims
    assert_token_refused(demo_site, oauth, "replayed_jti")
