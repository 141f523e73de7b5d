"""Hostile input at the pages and documents: logout, connected apps, discovery and JWKS."""

from __future__ import annotations

import json
from urllib.parse import quote

from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import (
    FUZZ,
    Sent,
    assert_allowed_status,
    assert_local_or_registered,
    assert_no_server_error,
    assert_nothing_written,
    assert_page,
    describe,
    diff,
    observe,
    options_answered,
    snapshot,
)
from tests.fuzz.strategies import bodies, control, headers, huge, methods, parameters, percent_garbage, text
from tests.fuzz.world import BYE, CALLBACK, World


# --- logout -------------------------------------------------------------------------------------------
def logout_parameters(world: World) -> dict[str, list[str]]:
    return {
        "id_token_hint": [world.id_token, world.access_token, world.admin_token],
        "client_id": world.client_ids(),
        "post_logout_redirect_uri": [BYE, CALLBACK, "https://evil.example/bye", "//evil.example", BYE + "/"],
        "state": ["s"],
        "logout_hint": ["x"],
        "ui_locales": ["fr"],
    }


@FUZZ
@given(data=st.data(), logged_in=st.booleans())
def test_logout_endpoint(world, data, logged_in):
    pairs = data.draw(parameters(logout_parameters(world)))
    method = data.draw(methods("GET", "POST"))
    as_query = method != "POST" or data.draw(st.booleans())
    sent = Sent(
        method=method,
        path="/oauth/logout/",
        query=pairs if as_query else [],
        body=None if as_query else data.draw(bodies(pairs)),
        meta=data.draw(headers(world, authorization=False)),
        body_pairs=pairs,
    )
    response, changed = observe(world, sent, logged_in=world.user if logged_in else None)
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    if response.status_code in (301, 302, 303, 307, 308):
        # Registered post-logout URIs (of any client: the view itself narrows it to the hint's).
        registered = {BYE}
        assert_local_or_registered(response, registered)
        return  # a logout: the session ends and the requesting client's tokens may be revoked
    assert_nothing_written(changed, response)
    if response.status_code == 200 and sent.method == "OPTIONS":
        return
    assert_allowed_status(response, {200, 400, 403, 405, 413, 429})
    if sent.method != "HEAD":
        assert_page(sent, response)


# --- connected apps ---------------------------------------------------------------------------------
@FUZZ
@given(data=st.data(), logged_in=st.booleans())
def test_connected_apps(world, data, logged_in):
    target = data.draw(
        st.one_of(
            st.just(""),
            st.sampled_from(world.client_ids()).map(lambda cid: f"{quote(cid, safe='')}/revoke/"),
            st.one_of(text, control, percent_garbage, huge).map(lambda v: f"{quote(v, safe='%/')}/revoke/"),
        )
    )
    pairs = data.draw(parameters({"csrfmiddlewaretoken": ["x"], "next": ["https://evil.example"]}))
    sent = Sent(
        method=data.draw(methods("GET", "POST")),
        path="/oauth/connected-apps/" + target,
        query=data.draw(st.one_of(st.just([]), parameters({"next": ["https://evil.example", "//evil"]}))),
        body=data.draw(bodies(pairs)),
        meta=data.draw(headers(world, authorization=False)),
    )
    response, changed = observe(world, sent, logged_in=world.user if logged_in else None)
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    if response.status_code in (301, 302, 303, 307, 308):
        assert_local_or_registered(response, set())
        if response.status_code == 303:
            return  # the user revoked one of their apps
    assert_nothing_written(changed, response)
    assert_allowed_status(response, {200, 302, 400, 403, 404, 405, 413, 429})


# --- discovery and JWKS -------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_discovery_and_jwks(world, data):
    sent = Sent(
        method=data.draw(methods("GET")),
        path=data.draw(
            st.sampled_from(
                [
                    "/oauth/.well-known/openid-configuration",
                    "/oauth/.well-known/oauth-authorization-server",
                    "/oauth/.well-known/jwks.json",
                ]
            )
        ),
        query=data.draw(parameters({"format": ["json", "yaml"]})),
        body=data.draw(st.one_of(st.none(), parameters({"x": ["y"]}).flatmap(bodies))),
        meta=data.draw(headers(world)),
    )
    # Conditional requests (published.py answers If-None-Match with 304): garbage, lists, "*", weak
    # and strong forms of the document's current ETag.
    current = Client().get(sent.path)["ETag"]
    condition = data.draw(
        st.one_of(
            st.none(),
            st.one_of(text, control, huge).map(lambda v: v.encode("utf-8", "replace").decode("latin-1")),
            st.sampled_from(["*", current, "W/" + current, f'"x", {current}', current.strip('"'), '""']),
        )
    )
    if condition is not None:
        sent.meta["HTTP_IF_NONE_MATCH"] = condition
    response, changed = observe(world, sent)
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    assert_nothing_written(changed, response)
    assert "Location" not in response
    if sent.method in ("GET", "HEAD") and response.status_code == 304:
        assert condition is not None and response["ETag"] == current, describe(response)
        assert response["Cache-Control"].startswith("public, max-age=")
    elif sent.method in ("GET", "HEAD"):
        assert response.status_code == 200, describe(response)
        if sent.method == "GET":
            document = json.loads(response.content)
            assert "keys" in document or document["issuer"], document
    else:
        assert_allowed_status(response, {200, 204, 405})


# --- regressions: what the fuzzer found, pinned down -------------------------------------------------
def test_nul_byte_in_a_connected_app_url_is_a_404(client, world):
    client.force_login(world.user)
    before = snapshot()
    response = client.post("/oauth/connected-apps/web%00/revoke/")
    assert response.status_code == 404, describe(response)
    assert diff(before, snapshot()) == []
