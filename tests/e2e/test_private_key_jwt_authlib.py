"""Authlib's RFC 7523 client authentication (``authlib.oauth2.rfc7523.PrivateKeyJWT``) against the
running demo (``demo_site``): a service registered with ``create_oauth_client --auth-method
private_key_jwt --jwks-file`` gets a client-credentials token, introspects it and revokes it, each
request authenticated by an assertion Authlib signs (docs/interop.md).

What Authlib does by default and this server refuses: its assertions are valid for an hour
(``expires_in=3600``), longer than ``CLIENT_ASSERTION_MAX_LIFETIME`` (300 s). ``ShortLivedPrivateKeyJWT``
is the few lines a client adds (docs/interop.md); the default is tested to be refused, so a change
on either side shows up here.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import private_key_jwt_sign
from joserfc.jwk import ECKey, RSAKey
from jwcrypto import jwk

from tests.e2e.conftest import DemoSite

pytestmark = [pytest.mark.live, pytest.mark.once]

CLIENT_ID = "authlib-private-key-jwt"
SCOPE = "reports:read"
ASSERTION_LIFETIME = 60  # seconds


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):
    """Authlib's PrivateKeyJWT with assertions valid for a minute instead of an hour."""

    def sign(self, auth, token_endpoint):
        return private_key_jwt_sign(
            auth.client_secret,
            client_id=auth.client_id,
            token_endpoint=token_endpoint,
            claims=self.claims,
            header=self.headers,
            alg=self.alg,
            expires_in=ASSERTION_LIFETIME,
        )


# Generated once: RSA generation is slow. RS256 is Authlib's default; ES256 the other common choice.
KEYS = {
    "RS256": jwk.JWK.generate(kty="RSA", size=2048, kid="authlib-rsa", alg="RS256", use="sig"),
    "ES256": jwk.JWK.generate(kty="EC", crv="P-256", kid="authlib-ec", alg="ES256", use="sig"),
}


def last_refusal(site: DemoSite) -> str:
    """The ``reason`` of the client's last ``client_auth_failed`` audit event (docs/audit.md), read
    from the demo's database: the client itself is only told invalid_client."""
    with sqlite3.connect(site.cwd / "demo.sqlite3") as db:
        (details,) = db.execute(
            "SELECT details FROM oauth_server_auditevent WHERE event = 'client_auth_failed' "
            "AND client_id = ? ORDER BY id DESC LIMIT 1",
            (CLIENT_ID,),
        ).fetchone()
    return json.loads(details)["reason"]


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


@pytest.fixture(scope="module")
def service(demo_site: DemoSite, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The client, registered with its two public keys (no secret), for the reports API."""
    public = tmp_path_factory.mktemp("authlib-keys") / "public.jwks.json"
    public.write_text(json.dumps({"keys": [json.loads(key.export_public()) for key in KEYS.values()]}))
    created = demo_site.manage(
        "create_oauth_client", "--json", "--name", "Authlib private_key_jwt service",
        "--client-id", CLIENT_ID, "--type", "confidential", "--grant-type", "client_credentials",
        "--scope", SCOPE, "--audience", demo_site.data["apis"]["reports_api"],
        "--auth-method", "private_key_jwt", "--jwks-file", str(public),
    )  # fmt: skip
    return json.loads(created.stdout)


def session(alg: str = "RS256", auth: PrivateKeyJWT | None = None) -> OAuth2Session:
    """An Authlib client authenticating with the private key of ``alg`` (a joserfc key, as Authlib wants);
    the assertion's ``aud`` is the URL of each endpoint called (Authlib's default)."""
    auth = auth or ShortLivedPrivateKeyJWT(alg=alg)
    key_class = {"RS256": RSAKey, "ES256": ECKey}[alg]
    private_key = key_class.import_key(KEYS[alg].export_to_pem(private_key=True, password=None))
    oauth = OAuth2Session(
        CLIENT_ID,
        private_key,
        scope=SCOPE,
        token_endpoint_auth_method=auth,
        revocation_endpoint_auth_method=auth,
    )
    oauth.trust_env = False
    return oauth


def test_the_client_has_no_secret(service):
    assert service["token_endpoint_auth_method"] == "private_key_jwt"
    assert service["client_secret"] is None


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_client_credentials_introspection_and_revocation(demo_site, service, alg):
    oauth = session(alg)
    token = oauth.fetch_token(demo_site.endpoints["token"], grant_type="client_credentials")
    assert token["token_type"].lower() == "bearer" and token["scope"] == SCOPE

    reports = http().get(
        demo_site.data["apis"]["reports_api"], headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert reports.status_code == 200, reports.text

    introspected = oauth.introspect_token(demo_site.endpoints["introspection"], token=token["access_token"])
    assert introspected.status_code == 200, introspected.text
    assert introspected.json()["active"] is True
    assert introspected.json()["client_id"] == CLIENT_ID

    revoked = oauth.revoke_token(demo_site.endpoints["revocation"], token=token["access_token"])
    assert revoked.status_code == 200, revoked.text
    after = oauth.introspect_token(demo_site.endpoints["introspection"], token=token["access_token"])
    assert after.json() == {"active": False}
    refused = http().get(
        demo_site.data["apis"]["reports_api"], headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert refused.status_code == 401


def test_the_issuer_as_audience_works_at_every_endpoint(demo_site, service):
    """RFC 7523bis / FAPI 2.0: the issuer as the assertion's only audience."""
    oauth = session(auth=ShortLivedPrivateKeyJWT(token_endpoint=demo_site.issuer))
    token = oauth.fetch_token(demo_site.endpoints["token"], grant_type="client_credentials")
    introspected = oauth.introspect_token(demo_site.endpoints["introspection"], token=token["access_token"])
    assert introspected.json()["active"] is True
    revoked = oauth.revoke_token(demo_site.endpoints["revocation"], token=token["access_token"])
    assert revoked.status_code == 200


def test_authlibs_default_hour_long_assertion_is_refused(demo_site, service):
    oauth = session(auth=PrivateKeyJWT())  # exp = iat + 3600
    with pytest.raises(OAuthError) as refused:
        oauth.fetch_token(demo_site.endpoints["token"], grant_type="client_credentials")
    assert refused.value.error == "invalid_client"
    assert last_refusal(demo_site) == "lifetime_too_long"


def test_another_servers_audience_is_refused(demo_site, service):
    auth = ShortLivedPrivateKeyJWT(token_endpoint="https://other-server.example/oauth/token/")
    with pytest.raises(OAuthError) as refused:
        session(auth=auth).fetch_token(demo_site.endpoints["token"], grant_type="client_credentials")
    assert refused.value.error == "invalid_client"
    assert last_refusal(demo_site) == "wrong_audience"


def test_a_replayed_assertion_is_refused(demo_site, service):
    """Authlib signs a new assertion (new jti) per request; the same assertion twice is a replay."""
    assertion = ShortLivedPrivateKeyJWT().sign(
        session().client_auth(None), demo_site.endpoints["token"]
    )  # an Authlib-signed assertion, sent by hand
    form = {
        "grant_type": "client_credentials",
        "scope": SCOPE,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    first = http().post(demo_site.endpoints["token"], data=form)
    assert first.status_code == 200, first.text
    again = http().post(demo_site.endpoints["token"], data=form)
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"
    assert last_refusal(demo_site) == "replayed_jti"


def test_authlib_with_a_claims_dict_reuses_its_jti_and_the_server_catches_it(demo_site, service):
    """``PrivateKeyJWT(claims={...})``: Authlib writes the jti it generates into that dict, so every
    later assertion carries the same jti (docs/interop.md); the second request is a replay."""
    auth = ShortLivedPrivateKeyJWT(claims={})
    oauth = session(auth=auth)
    oauth.fetch_token(demo_site.endpoints["token"], grant_type="client_credentials")
    assert "jti" in auth.claims
    with pytest.raises(OAuthError) as refused:
        oauth.fetch_token(demo_site.endpoints["token"], grant_type="client_credentials")
    assert refused.value.error == "invalid_client"
    assert last_refusal(demo_site) == "replayed_jti"
