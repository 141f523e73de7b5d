"""private_key_jwt client authentication (RFC 7523 2.2, 3; OIDC Core 9) and its attacks."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from jwcrypto import jwk, jws, jwt

from oauth_server import client_keys
from oauth_server.models import AccessToken, AuditEvent
from tests.factories import MachineClientFactory
from tests.helpers import REVOKE_URL, TOKEN_URL, assert_client_auth_refused, basic_auth

ISSUER = "http://testserver/oauth"
TOKEN_ENDPOINT = "http://testserver/oauth/token/"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KEYS = {
    "RS256": lambda: jwk.JWK.generate(kty="RSA", size=2048),
    "PS256": lambda: jwk.JWK.generate(kty="RSA", size=2048),
    "ES256": lambda: jwk.JWK.generate(kty="EC", crv="P-256"),
    "EdDSA": lambda: jwk.JWK.generate(kty="OKP", crv="Ed25519"),
}
_POOL: dict[str, jwk.JWK] = {}


def key_for(alg: str) -> jwk.JWK:
    if alg not in _POOL:
        key = KEYS[alg]()
        key["kid"] = f"k-{alg}"  # type: ignore[index]
        _POOL[alg] = jwk.JWK(**{**json.loads(key.export_private()), "kid": f"k-{alg}"})
    return _POOL[alg]


def public_jwks(*keys: jwk.JWK) -> dict:
    return {"keys": [json.loads(k.export_public()) for k in keys]}


def make_client(alg: str = "ES256", **extra):
    client = MachineClientFactory(scopes=["reports:read"])
    client.token_endpoint_auth_method = "private_key_jwt"
    client.client_secret = ""
    client.jwks = public_jwks(key_for(alg))
    for name, value in extra.items():
        setattr(client, name, value)
    client.full_clean()
    client.save()
    return client


def assertion(client_id: str, alg: str = "ES256", key: jwk.JWK | None = None, **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER,
        "exp": now + 60,
        "iat": now,
        "jti": uuid.uuid4().hex,
        **overrides,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    key = key or key_for(alg)
    token = jwt.JWT(header={"alg": alg, "kid": key.get("kid") or ""}, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


def cc(subject: str, signed: str, **extra) -> dict:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
        **extra,
    }


def refused(response, reason: str, method: str = "private_key_jwt") -> None:
    assert_client_auth_refused(response, reason, method)


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_each_allowed_algorithm_authenticates(client, db, alg):
    app = make_client(alg)
    response = client.post(TOKEN_URL, cc(app.client_id, assertion(app.client_id, alg)))
    assert response.status_code == 200, response.content
    assert AccessToken.objects.get().application == app


def test_no_secret_is_generated_and_the_token_endpoint_url_is_an_accepted_audience(client, db):
    app = make_client()
    assert app.client_secret == "" and not app.uses_secret
    signed = assertion(app.client_id, aud=[TOKEN_ENDPOINT])
    response = client.post(TOKEN_URL, cc(app.client_id, signed, client_id=app.client_id))
    assert response.status_code == 200, response.content


def test_replayed_assertion_is_refused(client, db):
    app = make_client()
    signed = assertion(app.client_id)
    assert client.post(TOKEN_URL, cc(app.client_id, signed)).status_code == 200
    AccessToken.objects.all().delete()
    refused(client.post(TOKEN_URL, cc(app.client_id, signed)), "replayed_jti")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "https://other-server.example/oauth"}, "wrong_audience"),
        ({"aud": None}, "wrong_audience"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"exp": int(time.time()) + 3600}, "lifetime_too_long"),
        ({"exp": None}, "missing_exp"),
        ({"jti": None}, "missing_jti"),
        ({"nbf": int(time.time()) + 600}, "bad_nbf"),
        ({"iss": "someone-else"}, "wrong_issuer_or_subject"),
    ],
)
def test_bad_claims_are_refused(client, db, overrides, reason):
    app = make_client()
    refused(client.post(TOKEN_URL, cc(app.client_id, assertion(app.client_id, **overrides))), reason)


def test_assertion_signed_by_another_key_is_refused(client, db):
    app = make_client("ES256")
    stranger = jwk.JWK.generate(kty="EC", crv="P-256", kid="k-ES256")
    refused(
        client.post(TOKEN_URL, cc(app.client_id, assertion(app.client_id, key=stranger))), "invalid_signature"
    )


def test_client_cannot_sign_as_another_client(client, db):
    """Client A's key, claiming to be client B: verified with B's keys, so refused."""
    victim = make_client("ES256")
    attacker = MachineClientFactory()
    attacker.token_endpoint_auth_method = "private_key_jwt"
    other_key = jwk.JWK.generate(kty="EC", crv="P-256", kid="attacker")
    attacker.client_secret = ""
    attacker.jwks = public_jwks(other_key)
    attacker.save()
    signed = assertion(victim.client_id, key=other_key)
    refused(client.post(TOKEN_URL, cc(victim.client_id, signed)), "invalid_signature")


def test_hmac_with_the_public_key_and_alg_none_are_refused(client, db):
    """Algorithm confusion: HS256 keyed with the public key, or no signature at all.

    An HMAC assertion is client_secret_jwt's form, a method this client is not registered for."""
    app = make_client("RS256")
    public_pem = key_for("RS256").export_to_pem()
    hmac_key = jwk.JWK(kty="oct", k=jws.base64url_encode(public_pem))
    now = int(time.time())
    claims = {"iss": app.client_id, "sub": app.client_id, "aud": ISSUER, "exp": now + 60, "jti": "x1"}
    forged = jwt.JWT(header={"alg": "HS256"}, claims=claims)
    forged.make_signed_token(hmac_key)
    refused(
        client.post(TOKEN_URL, cc(app.client_id, forged.serialize())),
        "auth_method_not_allowed",
        method="client_secret_jwt",
    )
    header = jws.base64url_encode(json.dumps({"alg": "none"}))
    payload = jws.base64url_encode(json.dumps({**claims, "jti": "x2"}))
    refused(client.post(TOKEN_URL, cc(app.client_id, f"{header}.{payload}.")), "algorithm_not_allowed")


def test_client_id_parameter_must_match_the_subject(client, db):
    app = make_client()
    other = make_client()
    response = client.post(TOKEN_URL, cc(app.client_id, assertion(app.client_id), client_id=other.client_id))
    assert response.status_code == 401
    assert not AccessToken.objects.exists()


def test_secret_client_cannot_use_an_assertion_and_key_client_cannot_use_basic(client, db):
    secret_client = MachineClientFactory(scopes=["reports:read"])
    response = client.post(TOKEN_URL, cc(secret_client.client_id, assertion(secret_client.client_id)))
    assert response.status_code == 401
    assert AuditEvent.objects.latest("id").details["reason"] == "auth_method_not_allowed"
    app = make_client()
    response = client.post(
        TOKEN_URL,
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, "x" * 43),
    )
    assert response.status_code == 401


def test_assertion_and_basic_at_once_is_invalid_request(client, db):
    app = make_client()
    response = client.post(
        TOKEN_URL,
        cc(app.client_id, assertion(app.client_id)),
        HTTP_AUTHORIZATION=basic_auth(app.client_id, "x" * 43),
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "x" * 20000])
def test_garbage_assertions_are_invalid_client(client, db, garbage):
    app = make_client()
    response = client.post(TOKEN_URL, cc(app.client_id, garbage, client_id=app.client_id))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_works_at_introspection_and_revocation(client, db):
    app = make_client()
    app.resource_identifiers = ["https://api.example.com"]
    app.save()
    token = client.post(TOKEN_URL, cc(app.client_id, assertion(app.client_id))).json()["access_token"]
    introspected = client.post(
        "/oauth/introspect/",
        {
            "token": token,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(app.client_id),
        },
    )
    assert introspected.status_code == 200, introspected.content
    revoked = client.post(
        REVOKE_URL,
        {
            "token": token,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(app.client_id),
        },
    )
    assert revoked.status_code == 200, revoked.content
    assert not AccessToken.objects.exists()


def test_discovery_advertises_the_method_and_algorithms(client, db):
    metadata = client.get("/oauth/.well-known/oauth-authorization-server").json()
    for endpoint in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        assert "private_key_jwt" in metadata[f"{endpoint}_auth_methods_supported"]
        assert metadata[f"{endpoint}_auth_signing_alg_values_supported"] == [
            "RS256",
            "PS256",
            "ES256",
            "EdDSA",
            "HS256",  # client_secret_jwt's (tests/test_client_secret_jwt.py)
            "HS384",
            "HS512",
        ]


# --- registration rules --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("jwks", "jwks_uri", "field"),
    [
        (None, "", "jwks"),  # no keys at all
        ({"keys": [json.loads(jwk.JWK.generate(kty="EC", crv="P-256").export_private())]}, "", "jwks"),
        ({"keys": [json.loads(jwk.JWK.generate(kty="RSA", size=1024).export_public())]}, "", "jwks"),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, "", "jwks"),
        ({"keys": []}, "", "jwks"),
        (None, "http://keys.example.com/jwks.json", "jwks_uri"),
        (
            {"keys": [json.loads(jwk.JWK.generate(kty="EC", crv="P-256").export_public())]},
            "https://k.example/j",
            "jwks_uri",
        ),
    ],
)
def test_bad_key_registrations_are_refused(db, jwks, jwks_uri, field):
    client = MachineClientFactory()
    client.token_endpoint_auth_method = "private_key_jwt"
    client.client_secret = ""
    client.jwks, client.jwks_uri = jwks, jwks_uri
    with pytest.raises(ValidationError) as info:
        client.full_clean()
    assert field in info.value.message_dict


def test_command_creates_a_key_client(db, tmp_path, capsys):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(public_jwks(key_for("ES256"))))
    call_command(
        "create_oauth_client",
        "--name=signed",
        "--type=confidential",
        "--grant-type=client_credentials",
        "--auth-method=private_key_jwt",
        f"--jwks-file={path}",
        "--json",
    )
    out = json.loads(capsys.readouterr().out)
    assert out["client_secret"] is None and out["token_endpoint_auth_method"] == "private_key_jwt"


# --- jwks_uri: cached, refetched on an unknown kid, at most once a minute -------------------------
class CountingFetcher:
    documents: dict[str, dict] = {}
    calls: list[str] = []

    def fetch(self, url):
        type(self).calls.append(url)
        return type(self).documents[url], 300


@pytest.fixture
def fetcher(monkeypatch):
    from django.core.cache import cache

    cache.clear()
    monkeypatch.setattr(client_keys, "fetcher_class", CountingFetcher)
    CountingFetcher.documents, CountingFetcher.calls = {}, []
    yield CountingFetcher
    cache.clear()


def test_jwks_uri_is_fetched_cached_and_refetched_on_rotation(client, db, fetcher):
    url = "https://client.example.com/jwks.json"
    first = jwk.JWK.generate(kty="EC", crv="P-256", kid="one")
    fetcher.documents[url] = public_jwks(first)
    app = make_client(jwks=None, jwks_uri=url)
    for _ in range(2):
        response = client.post(TOKEN_URL, cc(app.client_id, assertion(app.client_id, key=first)))
        assert response.status_code == 200, response.content
    assert fetcher.calls == [url]  # cached

    second = jwk.JWK.generate(kty="EC", crv="P-256", kid="two")
    fetcher.documents[url] = public_jwks(second)
    response = client.post(TOKEN_URL, cc(app.client_id, assertion(app.client_id, key=second)))
    assert response.status_code == 401  # unknown kid, but refreshed within the last minute: no refetch
    assert fetcher.calls == [url]


def test_unknown_kid_refetches_once_the_refresh_guard_expired(client, db, fetcher):
    from django.core.cache import cache

    url = "https://client.example.com/jwks.json"
    first = jwk.JWK.generate(kty="EC", crv="P-256", kid="one")
    fetcher.documents[url] = public_jwks(first)
    app = make_client(jwks=None, jwks_uri=url)
    assert client.post(TOKEN_URL, cc(app.client_id, assertion(app.client_id, key=first))).status_code == 200
    second = jwk.JWK.generate(kty="EC", crv="P-256", kid="two")
    fetcher.documents[url] = public_jwks(second)
    cache.delete(client_keys._key(url, "refresh"))  # the refresh guard expired: a minute later
    response = client.post(TOKEN_URL, cc(app.client_id, assertion(app.client_id, key=second)))
    assert response.status_code == 200, (AuditEvent.objects.latest("id").details, fetcher.calls)
    assert fetcher.calls == [url, url]
