"""Hostile input at the revocation, introspection and userinfo endpoints."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from oauth_server.models import AccessToken, RefreshToken
from tests.fuzz.harness import (
    FUZZ,
    Sent,
    assert_allowed_status,
    assert_json_error,
    assert_no_server_error,
    assert_nothing_written,
    diff,
    example,
    observe,
    options_answered,
    send,
    snapshot,
)
from tests.fuzz.strategies import bodies, headers, methods, parameters
from tests.fuzz.world import World
from tests.helpers import basic_auth


# --- revocation and introspection -----------------------------------------------------------------
def revocation_parameters(world: World) -> dict[str, list[str]]:
    return {
        "token": world.tokens(),
        "token_type_hint": ["access_token", "refresh_token", "id_token", "nope"],
        "client_id": world.client_ids(),
        "client_secret": world.secrets(),
    }


def caller_pks(world: World, sent: Sent) -> set[int]:
    """The clients whose credentials appear anywhere in the request (those it may act for)."""
    ids = set(sent.values("client_id"))
    authorization = sent.meta.get("HTTP_AUTHORIZATION", "")
    for client in world.clients:
        if client.client_id in authorization or client.client_id in ids:
            ids.add(client.client_id)
        raw_basic = basic_auth(client.client_id, getattr(client, "raw_secret", None) or "")
        if authorization.startswith(raw_basic):
            ids.add(client.client_id)
    return {c.pk for c in world.clients if c.client_id in ids}


@FUZZ
@given(data=st.data())
def test_revocation_endpoint(world, data):
    sent = Sent(
        method=data.draw(methods("POST")),
        path="/oauth/revoke/",
        query=data.draw(st.one_of(st.just([]), parameters({"token": world.tokens()}))),
        body=data.draw(parameters(revocation_parameters(world)).flatmap(bodies)),
        meta=data.draw(headers(world)),
    )
    with example(world) as browser:
        before_tokens = token_rows()
        before = snapshot()
        response = send(browser, sent)
        changed = diff(before, snapshot())
        after_tokens = token_rows()
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    assert "Location" not in response
    if response.status_code == 200:
        assert response["Content-Type"] == "application/json"
        if sent.method != "HEAD" and sent.method != "OPTIONS":
            assert json.loads(response.content) == {}
        # A legitimate revocation touches the caller's own tokens only.
        touched = {row[1] for key, row in before_tokens.items() if after_tokens.get(key) != row}
        assert touched <= caller_pks(world, sent), (touched, sent.meta.get("HTTP_AUTHORIZATION"))
        assert set(changed) <= {
            "oauth_server.AccessToken",
            "oauth_server.RefreshToken",
            "oauth_server.IDToken",
            "oauth_server.AccessToken:rows",
            "oauth_server.RefreshToken:rows",
            "oauth_server.IDToken:rows",
        }, changed
        return
    assert_allowed_status(response, {400, 401, 405, 413, 415, 429})
    assert_json_error(sent, response)
    assert_nothing_written(changed, response)


def token_rows() -> dict[tuple[str, int], tuple]:
    """(table, pk) -> (revoked-or-present marker, client pk) for every access and refresh token."""
    rows: dict[tuple[str, int], tuple] = {}
    for pk, client, revoked in RefreshToken.objects.values_list("pk", "application_id", "revoked"):
        rows[("refresh", pk)] = (revoked, client)
    for pk, client in AccessToken.objects.values_list("pk", "application_id"):
        rows[("access", pk)] = (None, client)
    return rows


@FUZZ
@given(data=st.data())
def test_introspection_endpoint(world, data):
    sent = Sent(
        method=data.draw(methods("POST")),
        path="/oauth/introspect/",
        query=data.draw(st.one_of(st.just([]), parameters({"token": world.tokens()}))),
        body=data.draw(parameters(revocation_parameters(world)).flatmap(bodies)),
        meta=data.draw(headers(world)),
    )
    response, changed = observe(world, sent)
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    assert "Location" not in response
    assert_nothing_written(changed, response)  # introspection never writes, whatever the answer
    if response.status_code == 200:
        assert response["Content-Type"] == "application/json"
        if sent.method not in ("HEAD", "OPTIONS"):
            body = json.loads(response.content)
            assert isinstance(body.get("active"), bool), body
        return
    assert_allowed_status(response, {400, 401, 405, 413, 415, 429})
    assert_json_error(sent, response)


# --- userinfo ---------------------------------------------------------------------------------------
BARE_CHALLENGE = 'Bearer, DPoP algs="ES256 RS256 PS256 EdDSA"'


@FUZZ
@given(data=st.data())
def test_userinfo_endpoint(world, data):
    base = {"access_token": [world.access_token, world.other_access_token, world.admin_token]}
    sent = Sent(
        method=data.draw(methods("GET", "POST")),
        path="/oauth/userinfo/",
        query=data.draw(st.one_of(st.just([]), parameters(base, ["schema", "claims"]))),
        body=data.draw(st.one_of(st.none(), parameters(base).flatmap(bodies))),
        meta=data.draw(headers(world)),
    )
    response, changed = observe(world, sent)
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    assert "Location" not in response
    assert_nothing_written(changed, response)
    if response.status_code == 200:
        assert response["Content-Type"].startswith("application/json")
        if sent.method not in ("HEAD", "OPTIONS"):
            assert json.loads(response.content)["sub"]
        return
    assert_allowed_status(response, {400, 401, 403, 405, 413, 415, 429})
    # RFC 6750 3.1: a request without any token gets a bare challenge (no error code).
    # RFC 9449 7.1: DPoP is offered alongside Bearer.
    bare = response.status_code == 401 and response.get("WWW-Authenticate") == BARE_CHALLENGE
    if bare:
        assert response["Content-Type"].startswith("application/json")
        if sent.method != "HEAD":
            assert json.loads(response.content)["error_description"]
    else:
        assert_json_error(sent, response)
    if response.status_code in (401, 403):
        challenge = response["WWW-Authenticate"]
        assert challenge.startswith(("Bearer", "DPoP ")), challenge
