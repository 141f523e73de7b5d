"""Hostile input at the RFC 7591 registration endpoint and the RFC 7592 configuration endpoint,
under each registration policy; the regressions the fuzzer found there."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from oauth_server import registration
from oauth_server.conf import DEFAULTS
from oauth_server.models import ClientRegistration, InitialAccessToken
from tests.factories import ScopeFactory
from tests.fuzz.harness import (
    FUZZ,
    Sent,
    assert_allowed_status,
    assert_json_error,
    assert_local_or_registered,
    assert_no_server_error,
    assert_nothing_written,
    describe,
    diff,
    observe,
    options_answered,
    snapshot,
)
from tests.fuzz.strategies import Body, control, deep_nesting, headers, hostile_values, huge, methods, text
from tests.fuzz.sweep import HOSTILE_CLASSES

CALLBACK = "https://agent.example.com/cb"
FIELDS = {
    "client_name": ["Agent"],
    "redirect_uris": [[CALLBACK], ["http://127.0.0.1:9/cb"], ["javascript:alert(1)"], ["https://*.x/cb"]],
    "grant_types": [["authorization_code", "refresh_token"], ["client_credentials"], ["implicit"], []],
    "response_types": [["code"], ["token"], []],
    "token_endpoint_auth_method": ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"]
    + ["client_secret_jwt"],
    "scope": ["files:read", "openid files:read", "oauth:admin", "nope", ""],
    "logo_uri": ["https://agent.example.com/logo.png", "javascript:x"],
    "client_uri": ["https://agent.example.com"],
    "policy_uri": ["http://agent.example.com/p"],
    "tos_uri": ["https://agent.example.com/t"],
    "contacts": [["a@agent.example"], ["nope"]],
    "software_id": ["agent"],
    "software_version": ["1"],
    "software_statement": ["e30.e30."],
    "skip_consent": [True],
    "client_id": ["chosen"],
    "client_secret": ["x" * 40],
    "is_enabled": [False],
    "jwks": [{"keys": []}],
    "security_profile": ["fapi2", ""],
}


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        hostile_values([CALLBACK, "code", "none", "files:read"]),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=3),
        max_leaves=8,
    )


@st.composite
def payloads(draw, client_id: str) -> Any:
    payload: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from([*FIELDS, "client_id"]), unique=True)):
        valid = FIELDS[name] if name != "client_id" else [client_id, "other"]
        payload[name] = draw(st.one_of(st.sampled_from(valid), json_values()))
    return draw(st.one_of(st.just(payload), st.just(payload), json_values()))


@st.composite
def bodies(draw, client_id: str) -> Body:
    payload = draw(payloads(client_id))
    kind = draw(st.sampled_from(["json", "json", "json", "bytes", "nested", "huge", "wrong-type", "empty"]))
    if kind == "json":
        return Body("application/json", json.dumps(payload).encode())
    if kind == "bytes":
        return Body("application/json", draw(st.binary(min_size=1, max_size=64)))
    if kind == "nested":
        return Body("application/json", draw(deep_nesting).encode("utf-8", "surrogatepass"))
    if kind == "huge":
        value = draw(st.one_of(huge, control))
        return Body("application/json", json.dumps({"client_name": value, "redirect_uris": [value]}).encode())
    if kind == "wrong-type":
        ctype = draw(
            st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""])
        )
        return Body(ctype, json.dumps(payload).encode())
    return Body("application/json", b"")


@FUZZ
@given(data=st.data())
def test_registration_endpoints(world, data):
    with override_settings(OAUTH_SERVER={**DEFAULTS, "REGISTRATION_POLICY": "open"}):
        registered = registration.register(
            registration.parse_metadata({"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"})
        )
    initial, _row = registration.create_initial_access_token(expires_in=600)
    client_id = registered.client.client_id
    policy = data.draw(st.sampled_from(registration.POLICIES))
    path = data.draw(
        st.sampled_from(
            [
                "/oauth/register/",
                f"/oauth/register/{client_id}/",
                "/oauth/register/nope/",
                f"/oauth/register/{client_id}",
            ]
        )
    )
    method = data.draw(methods("POST", "GET", "PUT", "DELETE"))
    meta = data.draw(headers(world))
    auth = data.draw(st.sampled_from(["initial", "registration", "other", "none"]))
    if auth == "initial":
        meta["HTTP_AUTHORIZATION"] = f"Bearer {initial}"
    elif auth == "registration":
        meta["HTTP_AUTHORIZATION"] = f"Bearer {registered.access_token}"
    sent = Sent(method=method, path=path, query=[], body=data.draw(bodies(client_id)), meta=meta)
    rows = (
        list(InitialAccessToken.objects.order_by("pk").values_list()),
        list(ClientRegistration.objects.order_by("pk").values_list()),
    )
    with override_settings(OAUTH_SERVER={**DEFAULTS, "REGISTRATION_POLICY": policy}):
        response, changed = observe(world, sent)
    assert_no_server_error(response)
    if response.status_code in (301, 308):  # CommonMiddleware's APPEND_SLASH, on this site
        assert_local_or_registered(response, set())
        assert_nothing_written(changed, response)
        return
    if options_answered(sent, response, changed):
        return
    assert "Location" not in response, describe(response)
    assert response["Cache-Control"] == "no-store", describe(response)
    if response.status_code in (200, 201, 204):
        assert policy != "closed"
        return  # an accepted request: what it writes is the endpoint's business (tests/test_dcr.py)
    assert_allowed_status(response, {400, 401, 404, 405, 413, 429})
    assert_json_error(sent, response)
    assert_nothing_written(changed, response)
    assert rows == (
        list(InitialAccessToken.objects.order_by("pk").values_list()),
        list(ClientRegistration.objects.order_by("pk").values_list()),
    )


# --- regressions ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b'{"client_name": "\\ud800", "redirect_uris": ["https://a.example/cb"]}',
        b'{"redirect_uris": ["https://a.example/\\u0000"]}',
        b'{"scope": "\\u0000"}',
        b'{"contacts": ["\\u0000@x.example"]}',
        b'{"software_id": "\\u0000"}',
        b"[" * 50000,
        b'{"redirect_uris": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"client_name": 1e999}',
        b'{"client_name": ' + b"7" * 5000 + b"}",
    ],
)
def test_hostile_json_is_invalid_client_metadata(client, db, body):
    with override_settings(OAUTH_SERVER={**DEFAULTS, "REGISTRATION_POLICY": "open"}):
        response = client.generic("POST", "/oauth/register/", body, content_type="application/json")
    assert response.status_code == 400, describe(response)
    assert response.json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")
    assert not ClientRegistration.objects.exists()


# --- the sweep: one hostile value of each class in each member of an otherwise valid registration ----
VALID = {
    "client_name": "Agent",
    "redirect_uris": [CALLBACK],
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "token_endpoint_auth_method": "none",
    "scope": "files:read",
    "client_uri": "https://agent.example.com",
    "contacts": ["a@agent.example"],
    "software_id": "agent",
}


LIST_MEMBERS = ("redirect_uris", "grant_types", "response_types", "contacts")
SWEEP = [(m, "value") for m in sorted(VALID)] + [(m, "in-list") for m in LIST_MEMBERS]


@pytest.mark.parametrize("hostile_class", sorted(HOSTILE_CLASSES))
@pytest.mark.parametrize(("member", "shape"), SWEEP)
def test_hostile_class_sweep_at_registration(client, db, member, hostile_class, shape):
    ScopeFactory(name="files:read")
    value = HOSTILE_CLASSES[hostile_class]
    payload = {**VALID, member: [value] if shape == "in-list" else value}
    sent = Sent("POST", "/oauth/register/", [], Body("application/json", json.dumps(payload).encode()), {})
    before = snapshot()
    with override_settings(OAUTH_SERVER={**DEFAULTS, "REGISTRATION_POLICY": "open"}):
        response = client.generic("POST", sent.path, sent.body.data, content_type="application/json")
    assert_no_server_error(response)
    if response.status_code == 201:
        return
    assert response.status_code == 400, describe(response)
    assert_json_error(sent, response)
    assert_nothing_written(diff(before, snapshot()), response)
