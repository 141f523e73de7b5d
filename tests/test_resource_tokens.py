"""The resource-server kit's validator: real tokens from the token endpoint, and one forgery per check.

Every failed check must be an ``InvalidToken`` whose reason names that check (so a test cannot pass
because an earlier, unrelated check failed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from freezegun import freeze_time
from jwcrypto import jwk, jws

from oauth_server import keys
from oauth_server.models import AccessToken, Subject
from oauth_server.resource import (
    AccessTokenClaims,
    InvalidToken,
    ServiceUnavailable,
    introspection,
    jwks,
    user_for_token,
    validate_access_token,
)
from oauth_server.resource import http as rs_http
from tests.factories import ClientFactory, MachineClientFactory
from tests.helpers import REVOKE_URL, basic_auth, exchange_code, get_code
from tests.resource_urls import API, ISSUER, RS_SETTINGS, b64, client_credentials_token, segment, token_parts

pytestmark = pytest.mark.urls("tests.resource_urls")
START = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def rs(settings):
    settings.OAUTH_RESOURCE_SERVER = dict(RS_SETTINGS)
    cache.clear()
    yield settings
    jwks.reset()
    cache.clear()


def configure(settings, **values) -> None:
    settings.OAUTH_RESOURCE_SERVER = {**settings.OAUTH_RESOURCE_SERVER, **values}


@pytest.fixture
def machine(db):
    return MachineClientFactory(scopes=["files:read", "files:write"], audiences=[API])


def reason(token: str) -> str:
    with pytest.raises(InvalidToken) as info:
        validate_access_token(token)
    return info.value.reason


def sign(header: dict, payload: dict, key: keys.ActiveKey | None = None) -> str:
    """A JWS with exactly ``header`` as protected header, signed with a published provider key."""
    key = key or keys.active_key()
    token = jws.JWS(json.dumps(payload).encode())
    token.add_signature(key.jwk, alg=header.get("alg", key.algorithm), protected=json.dumps(header))
    return token.serialize(compact=True)


def claims(**overrides) -> dict:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": API,
        "sub": "the-subject",
        "client_id": "the-client",
        "iat": now,
        "exp": now + 600,
        "jti": "the-jti",
        "scope": "files:read",
    }
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def forge(header: dict | None = None, **overrides) -> str:
    key = keys.active_key()
    return sign(
        {"alg": key.algorithm, "kid": key.kid, "typ": "at+jwt", **(header or {})}, claims(**overrides)
    )


# --- valid tokens -------------------------------------------------------------------------------------------
def test_client_credentials_token_from_the_token_endpoint(client, machine):
    token = client_credentials_token(client, machine, "files:read")
    result = validate_access_token(token)
    assert isinstance(result, AccessTokenClaims)
    assert result.sub == machine.client_id == result.client_id
    assert result.scopes == {"files:read"}
    assert result.aud == (API,)
    assert result.iss == ISSUER
    assert result.source == "jwt"
    assert result.jti == AccessToken.objects.get().jti
    assert result["scope"] == "files:read" and result.exp == token_parts(token)[1]["exp"]
    assert result.has_scopes("files:read") and not result.has_scopes("files:read", "files:write")
    assert result.has_any_scope("files:write", "files:read")
    assert user_for_token(result) is None  # a client's own token speaks for no user


def test_user_token_and_user_for_token(client, user):
    web = ClientFactory(scopes=["files:read"], audiences=[API])
    client.force_login(user)
    code, verifier = get_code(client, web, scope="files:read")
    token = exchange_code(client, web, code, verifier).json()["access_token"]
    result = validate_access_token(token)
    assert result.sub == Subject.objects.get(user=user).sub != str(user.pk)
    assert result.client_id == web.client_id
    assert user_for_token(result) == user
    user.is_active = False
    user.save()
    assert user_for_token(result) is None


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_typ_variants_accepted(db, typ):
    assert validate_access_token(forge({"typ": typ})).sub == "the-subject"


def test_audience_list_in_token_and_in_settings(db, settings):
    assert validate_access_token(forge(aud=["https://other.example/", API])).aud == (
        "https://other.example/",
        API,
    )
    configure(settings, AUDIENCE=["https://v2.example.com/", "https://v3.example.com/"])
    assert validate_access_token(forge(aud="https://v3.example.com/")).sub == "the-subject"
    assert "aud" in reason(forge(aud=API))


# --- each failed check --------------------------------------------------------------------------------------
def test_bad_signature(client, machine):
    token = client_credentials_token(client, machine, "files:read")
    header, payload, signature = token.split(".")
    _h, claims_ = token_parts(token)
    tampered = segment({**claims_, "scope": "files:read files:write"})
    assert "signature" in reason(f"{header}.{tampered}.{signature}")
    assert "signature" in reason(f"{header}.{payload}.{signature[:-4]}AAAA")


def test_unknown_kid(db):
    assert "unknown key" in reason(forge({"kid": "no-such-key"}))
    assert "kid" in reason(forge({"kid": None}))


def test_id_token_is_not_an_access_token(client, user):
    web = ClientFactory(scopes=["openid", "files:read"], audiences=[API])
    client.force_login(user)
    code, verifier = get_code(client, web, scope="openid files:read")
    body = exchange_code(client, web, code, verifier).json()
    assert token_parts(body["id_token"])[0]["typ"] == "JWT"
    assert "typ" in reason(body["id_token"])
    assert validate_access_token(body["access_token"]).sub == Subject.objects.get(user=user).sub


def test_missing_or_null_typ(db):
    key = keys.active_key()
    assert "typ" in reason(sign({"alg": key.algorithm, "kid": key.kid}, claims()))
    assert "typ" in reason(forge({"typ": None}))
    assert "typ" in reason(forge({"typ": "JWT"}))


def test_alg_none_is_refused(db):
    kid = keys.active_key().kid
    unsigned = f"{segment({'alg': 'none', 'kid': kid, 'typ': 'at+jwt'})}.{segment(claims())}."
    assert "algorithm" in reason(unsigned)


def test_hs256_forgery_with_the_public_key_as_hmac_secret(db):
    """The classic algorithm confusion: HMAC "signed" with the published public key."""
    active = keys.active_key()
    public = next(k for k in keys.jwks()["keys"] if k["kid"] == active.kid)
    pem = jwk.JWK(**public).export_to_pem()
    header = segment({"alg": "HS256", "kid": active.kid, "typ": "at+jwt"})
    body = segment(claims(scope="files:read files:write"))
    signature = b64(hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    assert "algorithm" in reason(f"{header}.{body}.{signature}")


@pytest.mark.parametrize("algorithms", [["HS256"], ["RS256", "none"], "RS256", []])
def test_symmetric_or_none_algorithms_cannot_be_configured(db, settings, algorithms):
    configure(settings, ALGORITHMS=algorithms)
    with pytest.raises(ImproperlyConfigured):
        validate_access_token(forge())


def test_header_alg_must_match_the_keys_alg(db, settings):
    configure(settings, ALGORITHMS=["RS256", "ES256"])
    active = keys.active_key()
    assert active.algorithm == "RS256"
    ec = jwk.JWK.generate(kty="EC", crv="P-256")
    token = jws.JWS(json.dumps(claims()).encode())
    token.add_signature(
        ec, alg="ES256", protected=json.dumps({"alg": "ES256", "kid": active.kid, "typ": "at+jwt"})
    )
    assert "does not match its key" in reason(token.serialize(compact=True))


def test_algorithm_not_in_allow_list(db, settings):
    configure(settings, ALGORITHMS=["ES256"])
    assert "algorithm" in reason(forge())


@pytest.mark.parametrize(
    "iss", ["http://testserver/oauth/", "http://evil.example/oauth", None, ["http://testserver/oauth"]]
)
def test_wrong_issuer(db, iss):
    assert "issuer" in reason(forge(iss=iss))


@pytest.mark.parametrize(
    "aud", ["https://other.example.com/", ["https://other.example.com/"], None, 42, [API, 1]]
)
def test_wrong_audience(db, aud):
    assert "aud" in reason(forge(aud=aud))


def test_expired_token_with_leeway(client, machine):
    with freeze_time(START):
        token = client_credentials_token(client, machine, "files:read")
        exp = token_parts(token)[1]["exp"]
        assert exp == int(START.timestamp()) + 3600
    with freeze_time(START + timedelta(seconds=3600 + 29)):
        assert validate_access_token(token).exp == exp  # within the 30 s leeway
    with freeze_time(START + timedelta(seconds=3600 + 30)):
        assert "expired" in reason(token)


def test_not_before_and_issued_at_in_the_future(db):
    now = int(time.time())
    assert "nbf" in reason(forge(nbf=now + 120))
    assert validate_access_token(forge(nbf=now + 20)).sub == "the-subject"  # clock skew
    assert "nbf" in reason(forge(nbf="soon"))
    assert "iat" in reason(forge(iat=now + 120))
    assert validate_access_token(forge(iat=now + 20)).sub == "the-subject"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"exp": None}, "exp"),
        ({"exp": "tomorrow"}, "exp"),
        ({"exp": True}, "exp"),
        ({"exp": float("inf")}, "exp"),
        ({"sub": None}, "sub"),
        ({"sub": ""}, "sub"),
        ({"client_id": None}, "client_id"),
        ({"client_id": 7}, "client_id"),
        ({"scope": None}, "scope"),
        ({"scope": ["files:read"]}, "scope"),
    ],
)
def test_required_claims(db, overrides, expected):
    assert expected in reason(forge(**overrides))


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("", "empty"),
        ("x" * 9000, "too long"),
        ("a.b.c", "malformed"),
        (f"{b64(b'[1]')}.{b64(b'{}')}.sig", "malformed"),
        ("a.b.c.d.e", "JWE"),
        (f"{b64(b'[' * 5000)}.e30.sig", "malformed"),
    ],
)
def test_malformed_tokens(db, token, expected):
    assert expected in reason(token)


def test_unsupported_critical_header(db):
    key = keys.active_key()
    token = ".".join(
        [
            segment({"alg": key.algorithm, "kid": key.kid, "typ": "at+jwt", "crit": ["exp"], "exp": 1}),
            "e30",
            "AA",
        ]
    )
    assert "critical" in reason(token)


def test_payload_must_be_an_object(db):
    key = keys.active_key()
    token = jws.JWS(b"[1, 2]")
    token.add_signature(
        key.jwk,
        alg=key.algorithm,
        protected=json.dumps({"alg": key.algorithm, "kid": key.kid, "typ": "at+jwt"}),
    )
    assert "malformed" in reason(token.serialize(compact=True))


def test_opaque_token_without_introspection(db):
    assert "introspect" in reason("an-opaque-token")


def test_missing_issuer_or_audience_setting_is_a_configuration_error(db, settings):
    configure(settings, ISSUER=None)
    with pytest.raises(ImproperlyConfigured, match="ISSUER"):
        validate_access_token(forge())
    configure(settings, ISSUER=ISSUER, AUDIENCE="")
    with pytest.raises(ImproperlyConfigured, match="AUDIENCE"):
        validate_access_token(forge())


# --- revocation check: database ----------------------------------------------------------------------------
def revoke(browser, machine, token: str):
    response = browser.post(
        REVOKE_URL, {"token": token}, HTTP_AUTHORIZATION=basic_auth(machine.client_id, machine.raw_secret)
    )
    assert response.status_code == 200, response.content


def test_revocation_not_checked_by_default(client, machine):
    token = client_credentials_token(client, machine, "files:read")
    revoke(client, machine, token)
    assert not AccessToken.objects.exists()
    assert validate_access_token(token).client_id == machine.client_id  # valid until exp: the trade-off


def test_database_revocation_check(client, machine, settings, django_assert_num_queries):
    configure(settings, REVOCATION_CHECK="database", REVOCATION_CACHE_SECONDS=0)
    token = client_credentials_token(client, machine, "files:read")
    validate_access_token(token)  # keys fetched once
    with django_assert_num_queries(1):
        assert validate_access_token(token).client_id == machine.client_id
    revoke(client, machine, token)
    assert "revoked" in reason(token)


def test_database_revocation_check_sees_a_disabled_client(client, machine, settings):
    configure(settings, REVOCATION_CHECK="database", REVOCATION_CACHE_SECONDS=0)
    token = client_credentials_token(client, machine, "files:read")
    assert validate_access_token(token)
    machine.is_enabled = False
    machine.save()
    assert "revoked" in reason(token)


def test_database_revocation_answers_are_cached(client, machine, settings, django_assert_num_queries):
    configure(settings, REVOCATION_CHECK="database", REVOCATION_CACHE_SECONDS=30)
    token = client_credentials_token(client, machine, "files:read")
    validate_access_token(token)
    revoke(client, machine, token)
    with django_assert_num_queries(0):
        assert validate_access_token(token)  # accepted for up to REVOCATION_CACHE_SECONDS
    cache.clear()
    assert "revoked" in reason(token)


def test_database_revocation_needs_a_jti(db, settings):
    configure(settings, REVOCATION_CHECK="database")
    assert "jti" in reason(forge(jti=None))
    assert "revoked" in reason(forge(jti="never-issued"))


def test_unknown_revocation_mode_is_a_configuration_error(db, settings):
    configure(settings, REVOCATION_CHECK="sometimes")
    with pytest.raises(ImproperlyConfigured):
        validate_access_token(forge())


# --- introspection, against the real endpoint over HTTP ----------------------------------------------------
@pytest.fixture
def introspecting(live_server, settings):
    """An API registered as a client (resource identifier API) that introspects over real HTTP."""
    api_client = ClientFactory(resource_identifiers=[API], redirect_uris="")
    configure(
        settings,
        ISSUER=f"{live_server.url}/oauth",
        JWKS_SOURCE="url",
        INTROSPECTION_CLIENT_ID=api_client.client_id,
        INTROSPECTION_CLIENT_SECRET=api_client.raw_secret,
    )
    return api_client


@pytest.fixture
def http_calls(monkeypatch):
    calls: list[str] = []
    post_form, get_json = rs_http.post_form, rs_http.get_json

    def counting_post(url, data, **kwargs):
        calls.append(f"POST {url}")
        return post_form(url, data, **kwargs)

    def counting_get(url):
        calls.append(f"GET {url}")
        return get_json(url)

    monkeypatch.setattr(rs_http, "post_form", counting_post)
    monkeypatch.setattr(rs_http, "get_json", counting_get)
    return calls


def live_token(live_server, client_, scope: str) -> str:
    response = requests.post(
        f"{live_server.url}/oauth/token/",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client_.client_id, client_.raw_secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.mark.django_db(transaction=True)
def test_opaque_token_via_introspection_is_cached(live_server, introspecting, http_calls):
    opaque = MachineClientFactory(scopes=["files:read"], audiences=[API], access_token_format="opaque")
    token = live_token(live_server, opaque, "files:read")
    assert token.count(".") == 0
    result = validate_access_token(token)
    assert result.source == "introspection"
    assert (result.sub, result.client_id, result.scopes) == (
        opaque.client_id,
        opaque.client_id,
        {"files:read"},
    )
    assert result.iss == f"{live_server.url}/oauth"
    assert http_calls == [f"POST {live_server.url}/oauth/introspect/"]
    assert validate_access_token(token).sub == opaque.client_id
    assert len(http_calls) == 1  # the second call was answered from the cache
    key = introspection.cache_key(token)
    assert token not in key and hashlib.sha256(token.encode()).hexdigest() in key
    assert cache.get(key)["active"] is True
    assert cache.get(key)["exp"] <= time.time() + 3600


@pytest.mark.django_db(transaction=True)
def test_inactive_introspection_answers(live_server, introspecting, http_calls):
    assert "not active" in reason("no-such-token-at-all")
    assert "not active" in reason("no-such-token-at-all")
    assert len(http_calls) == 1  # inactive answers are cached too
    other_api = MachineClientFactory(
        scopes=["files:read"], audiences=["https://other.example.com/"], access_token_format="opaque"
    )
    foreign = live_token(live_server, other_api, "files:read")
    assert "not active" in reason(foreign)  # not for this API: the server does not show it to us


@pytest.mark.django_db(transaction=True)
def test_revoked_opaque_token_is_inactive(live_server, introspecting, settings):
    opaque = MachineClientFactory(scopes=["files:read"], audiences=[API], access_token_format="opaque")
    token = live_token(live_server, opaque, "files:read")
    assert validate_access_token(token)
    requests.post(
        f"{live_server.url}/oauth/revoke/",
        data={"token": token},
        auth=(opaque.client_id, opaque.raw_secret),
        timeout=10,
    )
    assert validate_access_token(token)  # cached for INTROSPECTION_CACHE_SECONDS
    cache.clear()
    assert "not active" in reason(token)


@pytest.mark.django_db(transaction=True)
def test_introspection_revocation_check_for_jwts(live_server, introspecting, settings, http_calls):
    configure(settings, REVOCATION_CHECK="introspection")
    jwt_client = MachineClientFactory(scopes=["files:read"], audiences=[API])
    token = live_token(live_server, jwt_client, "files:read")
    assert token.count(".") == 2
    assert validate_access_token(token).source == "jwt"
    assert validate_access_token(token)
    assert http_calls == [
        f"GET {live_server.url}/oauth/.well-known/jwks.json",
        f"POST {live_server.url}/oauth/introspect/",
    ]
    requests.post(
        f"{live_server.url}/oauth/revoke/",
        data={"token": token},
        auth=(jwt_client.client_id, jwt_client.raw_secret),
        timeout=10,
    )
    cache.clear()
    assert "revoked" in reason(token)


@pytest.mark.django_db(transaction=True)
def test_introspection_failures_are_503_not_invalid_token(live_server, introspecting, settings, caplog):
    configure(settings, INTROSPECTION_CLIENT_SECRET="wrong-secret")
    with pytest.raises(ServiceUnavailable):
        validate_access_token("an-opaque-token")
    assert "check the client credentials" in caplog.text
    configure(settings, INTROSPECTION_URL="http://127.0.0.1:9/introspect/", HTTP_TIMEOUT=2)
    with pytest.raises(ServiceUnavailable):
        validate_access_token("an-opaque-token")
    assert cache.get(introspection.cache_key("an-opaque-token")) is None  # failures are never cached


# --- verified signatures kept per process ------------------------------------------------------------------
def count_verifications(monkeypatch) -> list[str]:
    from oauth_server.resource import tokens as rs_tokens

    calls: list[str] = []
    real = rs_tokens.JWA

    class Counting:
        @staticmethod
        def signing_alg(alg):
            calls.append(alg)
            return real.signing_alg(alg)

    monkeypatch.setattr(rs_tokens, "JWA", Counting)
    return calls


def test_a_token_seen_before_is_not_verified_again_but_its_claims_are(db, monkeypatch):
    calls = count_verifications(monkeypatch)
    now = int(time.time())
    token = forge(exp=now + 100)
    assert validate_access_token(token).sub == "the-subject"
    assert validate_access_token(token).sub == "the-subject"
    assert len(calls) == 1  # the signature was checked once
    with freeze_time(datetime.fromtimestamp(now + 200, tz=UTC)):
        assert "expired" in reason(token)  # time-based checks run on every call
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert "signature" in reason(tampered)  # another string: verified, and refused
    assert len(calls) == 2


def test_a_remembered_token_stops_when_its_key_leaves_the_jwks(db, monkeypatch):
    token = forge()
    assert validate_access_token(token).sub == "the-subject"
    monkeypatch.setattr(jwks, "get_key", lambda kid: None)  # rotated out, or withdrawn
    assert "unknown key" in reason(token)


def test_a_remembered_token_is_checked_again_when_the_settings_change(db, settings):
    token = forge()
    assert validate_access_token(token).sub == "the-subject"
    configure(settings, ALGORITHMS=["ES256"])  # the API stops accepting RS256
    assert "algorithm" in reason(token)
