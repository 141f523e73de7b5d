"""Hostile input at the token endpoint, and client authentication at the token, introspection and
revocation endpoints; the regressions the fuzzer found there."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

import pytest
from django.core.cache import caches
from hypothesis import given
from hypothesis import strategies as st
from jwcrypto import jwk, jws

from oauth_server.grants.token_exchange import ACCESS_TOKEN_TYPE as ACCESS
from oauth_server.grants.token_exchange import ID_TOKEN_TYPE as ID
from oauth_server.grants.token_exchange import NAME as EXCHANGE
from oauth_server.grants.token_exchange import REFRESH_TOKEN_TYPE as REFRESH
from oauth_server.models import AccessToken, Client, IDToken
from tests import dpop_proofs as proofs
from tests.fuzz.harness import (
    FUZZ,
    NUL_CLIENT,
    Sent,
    assert_allowed_status,
    assert_json_error,
    assert_no_server_error,
    assert_nothing_written,
    check_token,
    describe,
    diff,
    observe,
    snapshot,
)
from tests.fuzz.strategies import (
    Body,
    bodies,
    control,
    form,
    headers,
    huge,
    latin1,
    methods,
    parameters,
    text,
)
from tests.fuzz.world import CALLBACK, SPA_CALLBACK, World
from tests.helpers import basic_auth, exchange_code


# --- token endpoint -------------------------------------------------------------------------------
def token_parameters(world: World) -> dict[str, list[str]]:
    return {
        "grant_type": ["authorization_code", "refresh_token", "client_credentials", "password", "implicit"]
        + ["urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"]
        + [EXCHANGE, EXCHANGE],
        "code": [world.code, world.access_token],
        "redirect_uri": [CALLBACK, SPA_CALLBACK, CALLBACK + "/", "https://evil.example/cb"],
        "code_verifier": [world.verifier, world.challenge, "a" * 43, "a" * 129],
        "refresh_token": [world.refresh_token, world.other_refresh_token, world.access_token],
        "client_id": world.client_ids(),
        "client_secret": world.secrets(),
        "scope": ["openid", "files:read", "reports:read", "oauth:admin", "openid files:read", "nope"],
        "resource": ["https://api.example.com", "urn:x", "not a uri", "https://api.example.com#f"],
        "device_code": ["x"],
        # Token exchange (RFC 8693)
        "subject_token": [world.access_token, world.refresh_token, world.id_token, world.other_access_token]
        + [world.admin_token, "x", "a.b.c"],
        "subject_token_type": [ACCESS, ID, REFRESH, "urn:x", ""],
        "actor_token": [world.access_token, world.admin_token, "x"],
        "actor_token_type": [ACCESS, ID, "urn:x"],
        "requested_token_type": [ACCESS, REFRESH, "urn:ietf:params:oauth:token-type:jwt"],
        "audience": ["https://api.example.com", "https://evil.example", "x"],
    }


TOKEN_HTU = "http://testserver/oauth/token/"


@st.composite
def dpop_headers(draw) -> str:
    """A DPoP header (RFC 9449): a valid proof, one with a wrong claim or header, a tampered or
    doubled one, or junk."""
    kind = draw(st.sampled_from(["valid", "claim", "header", "tampered", "two", "junk"]))
    if kind == "junk":
        return latin1(draw(st.one_of(text, control, huge, st.just(""), st.just("a.b.c"))))
    claims: dict = {}
    header: dict = {}
    if kind == "claim":
        name = draw(st.sampled_from(["htm", "htu", "iat", "jti", "nonce", "ath"]))
        claims[name] = draw(st.one_of(st.none(), st.integers(), st.text(max_size=20), st.just(TOKEN_HTU)))
    elif kind == "header":
        name = draw(st.sampled_from(["typ", "alg", "jwk", "crit", "kid"]))
        header[name] = draw(st.one_of(st.none(), st.text(max_size=10), st.just({}), st.just(["x"])))
    try:
        proof = proofs.proof(draw(st.sampled_from(["POST", "GET"])), TOKEN_HTU, header=header, **claims)
    except Exception:  # noqa: BLE001 - jwcrypto refuses to sign some headers: send junk instead
        return "x.y.z"
    if kind == "tampered":
        position = draw(st.integers(0, len(proof) - 1))
        proof = proof[:position] + draw(st.sampled_from("A_-.=")) + proof[position + 1 :]
    elif kind == "two":
        proof = f"{proof}, {proof}"
    return proof


@FUZZ
@given(data=st.data())
def test_token_endpoint(world, data):
    meta = data.draw(headers(world))
    if data.draw(st.booleans()):
        meta["HTTP_DPOP"] = data.draw(dpop_headers())
    sent = Sent(
        method=data.draw(methods("POST")),
        path="/oauth/token/",
        query=data.draw(st.one_of(st.just([]), parameters({"client_secret": world.secrets()}))),
        body=data.draw(parameters(token_parameters(world)).flatmap(bodies)),
        meta=meta,
    )
    response, changed = observe(world, sent)
    check_token(sent, response, changed)


@FUZZ
@given(data=st.data())
def test_token_exchange(world, data):
    """Token exchange requests only: every parameter drawn, the web client authenticated (it may
    exchange its own tokens), so the hostile values reach the grant's checks."""
    every = token_parameters(world)
    params = {
        "grant_type": [EXCHANGE],
        "subject_token": [world.access_token, *every["subject_token"]],
        "subject_token_type": [ACCESS, ACCESS, *every["subject_token_type"]],
        **{name: every[name] for name in ("actor_token", "actor_token_type", "requested_token_type")},
        **{name: every[name] for name in ("scope", "resource", "audience", "client_id")},
    }
    body = data.draw(parameters(params).flatmap(bodies))
    sent = Sent(
        method="POST",
        path="/oauth/token/",
        query=[],
        body=body,
        meta={"HTTP_AUTHORIZATION": basic_auth(world.web.client_id, world.web.raw_secret)},
    )
    response, changed = observe(world, sent)
    check_token(sent, response, changed)


# --- client assertions (private_key_jwt, client_secret_jwt) at every endpoint that authenticates --------
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_PATHS = ["/oauth/token/", "/oauth/introspect/", "/oauth/revoke/", "/oauth/par/"]


@dataclass
class AssertionClients:
    hmac: Client
    secret: str
    keyed: Client
    key: jwk.JWK


@pytest.fixture
def assertion_clients(world) -> AssertionClients:
    """A client_secret_jwt and a private_key_jwt client, beside the world's (the test's database)."""
    hmac_client, secret = Client.objects.create_client(
        name="HMAC",
        client_type=Client.CLIENT_CONFIDENTIAL,
        grant_types=["client_credentials", "authorization_code"],
        redirect_uris=[CALLBACK],
        scopes=["reports:read"],
        token_endpoint_auth_method="client_secret_jwt",
    )
    key = jwk.JWK.generate(kty="EC", crv="P-256", kid="fuzz")
    keyed, _ = Client.objects.create_client(
        name="Keyed",
        client_type=Client.CLIENT_CONFIDENTIAL,
        grant_types=["client_credentials"],
        scopes=["reports:read"],
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [json.loads(key.export_public())]},
    )
    return AssertionClients(hmac_client, secret, keyed, key)


CLAIM_VALUES = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.floats(),  # NaN and infinities included: Python's json writes and reads them
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 1e308, 2**63, -1]),
    st.booleans(),
    text,
    st.lists(text, max_size=3),
    st.just({}),
    st.sampled_from(["http://testserver/oauth", "http://testserver/oauth/token/", "https://evil.example/"]),
)


@st.composite
def client_assertions(draw, clients: AssertionClients) -> tuple[str, str, bool]:
    """(client_id it claims, assertion, whether it is a valid one), valid or subtly (or grossly) not:
    HMAC with the right or a wrong secret, the keyed client's public key as an HMAC secret, an
    asymmetric signature for the HMAC client, alg none, a changed claim or header, tampering."""
    target = draw(st.sampled_from(["hmac", "keyed"]))
    client = clients.hmac if target == "hmac" else clients.keyed
    now = int(time.time())
    claims: dict = {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": draw(st.sampled_from(["http://testserver/oauth", "http://testserver/oauth/token/"])),
        "exp": now + 60,
        "iat": now,
        "jti": draw(st.sampled_from(["j1", "j2", "j3"])),
    }
    valid = True
    if draw(st.booleans()):
        claims[draw(st.sampled_from(["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]))] = draw(CLAIM_VALUES)
        valid = False
    signer = draw(st.sampled_from(["own", "own", "wrong-secret", "public-key-hmac", "foreign-key", "none"]))
    alg = draw(st.sampled_from(["HS256", "HS384", "HS512"])) if target == "hmac" else "ES256"
    header: dict = {}
    if draw(st.integers(0, 4)) == 0:
        header[draw(st.sampled_from(["kid", "crit", "jwk", "typ", "b64"]))] = draw(CLAIM_VALUES)
        valid = False
    payload = json.dumps(claims).encode()
    if signer == "none":
        head = jws.base64url_encode(json.dumps({"alg": "none", **header}))
        return client.client_id, f"{head}.{jws.base64url_encode(payload)}.", False
    if signer == "own":
        key = jwk.JWK(kty="oct", k=jws.base64url_encode(clients.secret)) if target == "hmac" else clients.key
    elif signer == "wrong-secret":
        key, alg, valid = jwk.JWK(kty="oct", k=jws.base64url_encode("w" * 64)), "HS256", False
    elif signer == "public-key-hmac":
        key, alg, valid = (
            jwk.JWK(kty="oct", k=jws.base64url_encode(clients.key.export_to_pem())),
            "HS256",
            False,
        )
    else:
        key, alg, valid = jwk.JWK.generate(kty="EC", crv="P-256"), "ES256", False
    try:
        token = jws.JWS(payload)
        token.add_signature(key, alg=alg, protected=json.dumps({"alg": alg, **header}, default=str))
        signed = token.serialize(compact=True)
    except Exception:  # noqa: BLE001 - jwcrypto refuses to sign some headers: send junk instead
        return client.client_id, "x.y.z", False
    if draw(st.integers(0, 5)) == 0:
        position = draw(st.integers(0, len(signed) - 1))
        signed, valid = signed[:position] + draw(st.sampled_from("A_-.=")) + signed[position + 1 :], False
    return client.client_id, signed, valid


@FUZZ
@given(data=st.data())
def test_client_assertions(world, assertion_clients, data):
    """A forged, altered or misplaced assertion never authenticates (only valid ones get a 200 or
    201), and nothing hostile about one is a 500."""
    path = data.draw(st.sampled_from(ASSERTION_PATHS))
    client_id, signed, valid = data.draw(client_assertions(assertion_clients))
    pairs = [
        ("client_assertion_type", data.draw(st.sampled_from([ASSERTION_TYPE] * 4 + ["urn:x", ""]))),
        ("client_assertion", signed),
    ]
    valid = valid and pairs[0][1] == ASSERTION_TYPE
    extra = data.draw(
        parameters(
            {
                "client_id": [client_id, world.web.client_id],
                "grant_type": ["client_credentials"],
                "scope": ["reports:read"],
                "token": [world.access_token],
                "response_type": ["code"],
                "redirect_uri": [CALLBACK],
                "code_challenge": [world.challenge],
                "code_challenge_method": ["S256"],
            }
        )
    )
    if any(name == "client_id" and value != client_id for name, value in extra):
        valid = False
    body = data.draw(st.sampled_from(["form", "form", "other"]))
    encoded = Body("application/x-www-form-urlencoded", form(pairs + extra))
    if body == "other":
        encoded = data.draw(bodies(pairs + extra))
    meta = data.draw(headers(world)) if data.draw(st.integers(0, 3)) == 0 else {}
    sent = Sent(method="POST", path=path, query=[], body=encoded, meta=meta)
    response, changed = observe(world, sent)
    assert_no_server_error(response)
    if response.status_code in (200, 201):
        assert valid, (describe(response), signed)
        return
    assert_allowed_status(response, {400, 401, 413, 415, 429})
    assert_json_error(sent, response, description=False)
    assert_nothing_written(changed, response)


HOSTILE_CLAIM_VALUES = [
    None,
    float("nan"),
    float("inf"),
    float("-inf"),
    1e308,
    -1,
    0,
    2**64,
    10**400,
    True,
    "",
    "\x00",
    "é😀",
    "9" * 5000,
    [],
    ["http://testserver/oauth", None],
    ["http://testserver/oauth", {}],
    {},
    {"a": [1]},
]


@pytest.mark.parametrize("target", ["hmac", "keyed"])
def test_client_assertion_claim_sweep(client, world, assertion_clients, target):
    """Each claim of an otherwise valid, correctly signed assertion set to each hostile value: never
    a 500, never a token (a random draw rarely gets a signed assertion with exactly one bad claim)."""
    clients = assertion_clients
    app = clients.hmac if target == "hmac" else clients.keyed
    key = jwk.JWK(kty="oct", k=jws.base64url_encode(clients.secret)) if target == "hmac" else clients.key
    alg = "HS256" if target == "hmac" else "ES256"
    now = int(time.time())
    for claim in ("iss", "sub", "aud", "exp", "nbf", "iat", "jti"):
        for number, value in enumerate(HOSTILE_CLAIM_VALUES):
            long_past = claim in ("nbf", "iat") and value in (None, 0, -1) and not isinstance(value, bool)
            any_string = claim == "jti" and isinstance(value, str) and 0 < len(value) <= 256
            if long_past or any_string:
                continue  # absent or long past, or any jti: legitimately accepted
            claims = {"iss": app.client_id, "sub": app.client_id, "aud": "http://testserver/oauth"}
            claims |= {"exp": now + 60, "jti": f"{claim}-{number}", claim: value}
            token = jws.JWS(json.dumps(claims).encode())
            token.add_signature(key, alg=alg, protected=json.dumps({"alg": alg}))
            data = {
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": token.serialize(compact=True),
            }
            caches["default"].clear()  # the failure rate limits, not the subject here
            response = client.post("/oauth/token/", data)
            assert response.status_code == 401, (claim, value, describe(response))
            assert response.json()["error"] == "invalid_client"
    assert not AccessToken.objects.filter(application__in=[clients.hmac, clients.keyed]).exists()


# --- regressions: what the fuzzer found, pinned down ------------------------------------------------
NON_ASCII_BASIC = latin1("Basic " + base64.b64encode("é:😀".encode()).decode())


@pytest.mark.parametrize("path", ["/oauth/token/", "/oauth/introspect/", "/oauth/revoke/"])
@pytest.mark.parametrize("authorization", [NON_ASCII_BASIC, latin1("Basic é")])
def test_non_ascii_basic_credentials_are_invalid_client(client, world, path, authorization):
    """DOT's base64 decoding raised ValueError (a 500) for an Authorization header with non-ASCII."""
    data = {"grant_type": "client_credentials", "token": world.access_token}
    before = snapshot()
    response = client.post(path, data, HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 401, describe(response)
    assert response.json()["error"] == "invalid_client"
    assert response["WWW-Authenticate"] == 'Basic realm="oauth"'
    assert diff(before, snapshot()) == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"grant_type=client_credentials"),  # no boundary
        ("multipart/form-data; boundary=", b"--\r\n"),
        ("multipart/form-data; boundary=\x00", b"--\x00\r\n"),
    ],
)
def test_unreadable_body_at_the_token_endpoint_is_invalid_request(client, world, content_type, body):
    """A multipart body Django cannot parse escaped DOT's token view as a 500."""
    auth = basic_auth(world.machine.client_id, world.machine.raw_secret)
    response = client.generic(
        "POST", "/oauth/token/", body, content_type=content_type, HTTP_AUTHORIZATION=auth
    )
    assert response.status_code == 400, describe(response)
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "The request body could not be read.",
    }
    assert response["Cache-Control"] == "no-store"
    assert not AccessToken.objects.filter(application=world.machine).exists()


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD"])
def test_wrong_method_at_the_token_endpoint_is_a_json_405(client, db, method):
    """Django's default 405 was an empty text/html answer, unlike every other error of the endpoint."""
    response = client.generic(method, "/oauth/token/?grant_type=client_credentials")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert "POST" in response["Allow"]
    assert response["Cache-Control"] == "no-store"
    if method != "HEAD":
        assert response.json()["error"] == "invalid_request"
        assert method in response.json()["error_description"]


@pytest.mark.parametrize("auth", ["basic", "body", "public"])
@pytest.mark.parametrize("path", ["/oauth/token/", "/oauth/introspect/", "/oauth/revoke/"])
def test_nul_byte_in_client_id_is_invalid_client(client, world, auth, path):
    """PostgreSQL refuses NUL bytes: DOT's client lookup failed with DataError (a 500)."""
    data = {"grant_type": "client_credentials", "token": world.access_token}
    extra = {}
    if auth == "basic":
        extra["HTTP_AUTHORIZATION"] = basic_auth(NUL_CLIENT, world.web.raw_secret)
    elif auth == "body":
        data.update(client_id=NUL_CLIENT, client_secret=world.web.raw_secret)
    else:
        data["client_id"] = NUL_CLIENT
    before = snapshot()
    response = client.post(path, data, **extra)
    assert response.status_code in (400, 401), describe(response)
    assert response.json()["error"] in ("invalid_client", "invalid_request")
    assert diff(before, snapshot()) == []


@pytest.mark.parametrize("scope", ["openid\x00", "openid oauth:admin files:write", "A" * 300])
def test_scope_parameter_of_a_code_exchange_is_not_recorded_on_the_id_token(client, world, scope):
    """DOT saved the ID token row with the request's raw ``scope`` (a code exchange ignores it): a NUL
    byte was a 500 on PostgreSQL, and the row claimed scopes that were never granted."""
    response = exchange_code(client, world.web, world.code, world.verifier, scope=scope)
    assert response.status_code == 200, describe(response)
    id_token = IDToken.objects.latest("pk")
    assert sorted(id_token.scope.split()) == ["files:read", "openid"]
