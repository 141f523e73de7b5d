"""Hostile input at the token endpoint, and client authentication at the token, introspection and
revocation endpoints; the regressions the fuzzer found there."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oauth_server.grants.token_exchange import ACCESS_TOKEN_TYPE as ACCESS
from oauth_server.grants.token_exchange import ID_TOKEN_TYPE as ID
from oauth_server.grants.token_exchange import NAME as EXCHANGE
from oauth_server.grants.token_exchange import REFRESH_TOKEN_TYPE as REFRESH
from oauth_server.models import AccessToken, IDToken
from tests import dpop_proofs as proofs
from tests.fuzz.harness import FUZZ, NUL_CLIENT, Sent, check_token, describe, diff, observe, snapshot
from tests.fuzz.strategies import bodies, control, headers, huge, latin1, methods, parameters, text
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
