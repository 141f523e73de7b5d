"""Hostile input at the RFC 9728 metadata URLs, the demo MCP server (/mcp/) and the demo's report
builder (/api/my-report/, token exchange over HTTP served in-process), on the demo's URLconf."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from django.core.cache import cache
from django.test import Client as BrowserClient
from hypothesis import given
from hypothesis import strategies as st

from example_project.demo import site
from oauth_server.resource import jwks
from tests.factories import ClientFactory, DemoFileFactory, UserFactory
from tests.fuzz.harness import (
    FUZZ,
    Sent,
    assert_allowed_status,
    assert_json_error,
    assert_no_server_error,
    assert_nothing_written,
    describe,
    observe,
    options_answered,
)
from tests.fuzz.strategies import Body, authorization_headers, control, headers, hostile_values, methods, text
from tests.helpers import exchange_code, get_code

BASE = "http://testserver"
MCP = site.mcp_url(BASE)
METADATA = f'resource_metadata="{BASE}/.well-known/oauth-protected-resource/mcp/"'
WELL_KNOWN = "/.well-known/oauth-protected-resource"
MY_REPORT = site.my_report_url(BASE)
SERVED = {
    WELL_KNOWN + "/mcp/",
    WELL_KNOWN + "/api/files/",
    WELL_KNOWN + "/api/reports/",
    WELL_KNOWN + "/api/my-report/",
}
SECRET_FILE = "someone-elses-secret.txt"


@pytest.fixture
def mcp_world(world, settings, django_capture_on_commit_callbacks):
    """The world, the demo's resource settings for http://testserver, and MCP tokens for its user."""
    derived = site.settings_for(BASE)
    settings.DEMO_BASE_URL = BASE
    settings.OAUTH_RESOURCE_SERVER = derived["OAUTH_RESOURCE_SERVER"]
    cache.clear()
    DemoFileFactory(owner=world.user, name="mine.txt")
    DemoFileFactory(owner=UserFactory(), name=SECRET_FILE)
    client = ClientFactory(scopes=["mcp:tools", "files:read"], audiences=[MCP])
    browser = BrowserClient()
    browser.force_login(world.user)
    tokens = []
    for scope in ("mcp:tools files:read", "mcp:tools", "files:read"):
        with django_capture_on_commit_callbacks(execute=True):
            code, verifier = get_code(browser, client, scope=scope)
            tokens.append(exchange_code(browser, client, code, verifier).json()["access_token"])
    world.mcp_tokens = tokens
    yield world
    jwks.reset()
    cache.clear()


def rpc_messages() -> st.SearchStrategy:
    names = st.one_of(st.sampled_from(["whoami", "list_files", "nope", ""]), hostile_values(["whoami"]))
    methods_ = st.one_of(
        st.sampled_from(
            ["initialize", "tools/list", "tools/call", "ping", "resources/list", "notifications/initialized"]
        ),
        text,
    )
    ids = st.one_of(st.integers(), text, st.none(), st.just([]), st.just({}))
    params = st.one_of(
        st.fixed_dictionaries(
            {"name": names, "arguments": st.one_of(st.just({}), st.dictionaries(text, text))}
        ),
        st.fixed_dictionaries(
            {
                "protocolVersion": st.sampled_from(
                    ["2025-06-18", "2025-11-25", "2026-07-28", "1999-01-01", ""]
                ),
                "capabilities": st.just({}),
                "clientInfo": st.just({"name": "fuzz", "version": "1"}),
            }
        ),
        st.none(),
        text,
        st.lists(text, max_size=3),
    )
    message = st.fixed_dictionaries(
        {
            "jsonrpc": st.sampled_from(["2.0", "2.0", "1.0", ""]),
            "id": ids,
            "method": methods_,
            "params": params,
        }
    )
    return st.one_of(message, st.lists(message, max_size=3))


@st.composite
def mcp_bodies(draw) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["rpc", "rpc", "rpc", "json", "bytes", "empty", "deep"]))
    content_type = draw(
        st.sampled_from(
            ["application/json", "application/json", "text/plain", "", "application/json; charset=bogus"]
        )
    )
    if kind == "rpc":
        return content_type, json.dumps(draw(rpc_messages())).encode()
    if kind == "json":
        return content_type, json.dumps(
            draw(st.one_of(text, st.integers(), st.none(), st.dictionaries(text, text)))
        ).encode()
    if kind == "bytes":
        return content_type, draw(st.binary(max_size=200))
    if kind == "deep":
        return content_type, ("[" * 3000 + "]" * 3000).encode()
    return content_type, b""


@FUZZ
@given(data=st.data())
def test_mcp_endpoint(mcp_world, data):
    world = mcp_world
    valid = [f"Bearer {token}" for token in world.mcp_tokens]
    meta = data.draw(headers(world, authorization=False))
    meta["HTTP_AUTHORIZATION"] = data.draw(
        st.one_of(st.sampled_from(valid), st.sampled_from(valid), authorization_headers(world), control)
    )
    meta.setdefault(
        "HTTP_ACCEPT", data.draw(st.sampled_from(["application/json, text/event-stream", "*/*", ""]))
    )
    content_type, body = data.draw(mcp_bodies())
    sent = Sent(
        method=data.draw(methods("POST")),
        path="/mcp/",
        query=data.draw(st.one_of(st.just([]), st.lists(st.tuples(text, text), max_size=2))),
        body=Body(content_type, body),
        meta=meta,
    )
    response, changed = observe(world, sent)
    assert_no_server_error(response)
    assert_nothing_written(changed, response)  # the tools only read
    assert SECRET_FILE.encode() not in response.content
    if options_answered(sent, response, changed):
        return
    assert "Location" not in response
    authorization = meta["HTTP_AUTHORIZATION"]
    if response.status_code in (400, 401, 403) and "WWW-Authenticate" in response:
        assert METADATA in response["WWW-Authenticate"], response["WWW-Authenticate"]
    if response.status_code in (401, 403, 405, 413):
        assert_json_error(sent, response)
    if response.status_code < 300:
        # Only a token for this server gets through the kit.
        assert any(token in authorization for token in world.mcp_tokens), describe(response)
    assert_allowed_status(response, {200, 202, 400, 401, 403, 404, 405, 406, 413, 415, 421})


@FUZZ
@given(data=st.data())
def test_protected_resource_metadata(mcp_world, data):
    world = mcp_world
    suffix = data.draw(
        st.one_of(
            st.sampled_from(
                [
                    "/mcp/",
                    "/api/files/",
                    "/api/reports/",
                    "/api/my-report/",
                    "",
                    "/",
                    "/mcp",
                    "//mcp/",
                    "/MCP/",
                ]
            ),
            text.map(lambda t: "/" + t.replace("?", "").replace("#", "")),
            hostile_values(["/mcp/"]).map(lambda t: "/" + t.replace("?", "").replace("#", "")),
        )
    )
    sent = Sent(
        method=data.draw(methods("GET", "HEAD")),
        path=WELL_KNOWN + quote(suffix, safe="/%"),
        query=data.draw(
            st.one_of(st.just([]), st.just([]), st.lists(st.tuples(text, text), min_size=1, max_size=2))
        ),
        body=None,
        meta=data.draw(headers(world)),
    )
    response, changed = observe(world, sent)
    assert_no_server_error(response)
    assert_nothing_written(changed, response)
    if response.status_code == 200 and sent.method in ("GET", "HEAD"):
        assert WELL_KNOWN + suffix in SERVED and not sent.query, (suffix, sent.query)
        if sent.method == "GET":
            document = json.loads(response.content)
            assert document["resource"] == BASE + suffix  # path insertion, exactly
            assert document["authorization_servers"] == [BASE + "/oauth"]
        return
    if options_answered(sent, response, changed):
        return
    assert_allowed_status(response, {400, 404, 405})
    if response.status_code in (404, 405) and response["Content-Type"].startswith("application/json"):
        assert_json_error(sent, response)


@pytest.fixture
def report_world(mcp_world, monkeypatch, django_capture_on_commit_callbacks):
    """The seeded report builder (its HTTP calls served in-process) and tokens for it."""
    from example_project.demo import seed
    from tests.demo_http import served_in_process

    served_in_process(monkeypatch)
    seed._seed_client(seed.REPORT_BUILDER, BASE)
    client = ClientFactory(scopes=["files:read", "files:write"], audiences=[MY_REPORT])
    browser = BrowserClient()
    browser.force_login(mcp_world.user)
    tokens = []
    for scope in ("files:read", "files:read files:write", "files:write"):
        with django_capture_on_commit_callbacks(execute=True):
            code, verifier = get_code(browser, client, scope=scope)
            tokens.append(exchange_code(browser, client, code, verifier).json()["access_token"])
    mcp_world.report_tokens = tokens
    return mcp_world


@FUZZ
@given(data=st.data())
def test_my_report_endpoint(report_world, data):
    world = report_world
    valid = [f"Bearer {token}" for token in world.report_tokens]
    meta = data.draw(headers(world, authorization=False))
    meta["HTTP_AUTHORIZATION"] = data.draw(
        st.one_of(
            st.sampled_from(valid),
            st.sampled_from(valid),
            st.sampled_from([f"DPoP {t}" for t in world.report_tokens] + [f"Bearer {world.mcp_tokens[0]}"]),
            authorization_headers(world),
            control,
        )
    )
    content_type, body = data.draw(mcp_bodies())
    sent = Sent(
        method=data.draw(methods("GET")),
        path="/api/my-report/",
        query=data.draw(st.one_of(st.just([]), st.lists(st.tuples(text, text), max_size=2))),
        body=Body(content_type, body),
        meta=meta,
    )
    response, changed = observe(world, sent)
    assert_no_server_error(response)
    assert SECRET_FILE.encode() not in response.content  # only the caller's own files
    if options_answered(sent, response, changed):
        return
    assert "Location" not in response
    if response.status_code != 200:
        assert_nothing_written(changed, response)
        if sent.method != "HEAD":
            assert_json_error(sent, response)
        if response.status_code in (401, 403) and "WWW-Authenticate" in response:
            assert "/.well-known/oauth-protected-resource/api/my-report/" in response["WWW-Authenticate"]
    else:
        # Only a token for the report builder with files:read gets a report; the exchange wrote it.
        authorization = meta["HTTP_AUTHORIZATION"]
        assert any(t in authorization for t in world.report_tokens[:2]), describe(response)
        if sent.method == "GET":
            assert json.loads(response.content)["files_api_saw"]["act"] == {"sub": "report-builder"}
    assert_allowed_status(response, {200, 400, 401, 403, 405, 406, 415})
