"""The demo MCP server at /mcp/ (example_project/demo/mcp_server.py, docs/mcp.md): the official ``mcp``
SDK behind the resource-server kit. Tokens come from the real token endpoint; the site is the demo's
URLconf with base URL http://testserver (in-process), or pytest-django's live server for the SDK client."""

from __future__ import annotations

import json

import anyio
import pytest
from django.core.cache import cache
from django.test import Client as BrowserClient

from example_project.demo import site
from oauth_server.resource import jwks
from tests.factories import ClientFactory, DemoFileFactory, MachineClientFactory, UserFactory
from tests.helpers import exchange_code, get_code, token_request

BASE = "http://testserver"
MCP = site.mcp_url(BASE)
FILES = site.files_api_url(BASE)
METADATA = "http://testserver/.well-known/oauth-protected-resource/mcp/"
# MCP: a 401 names the scope to ask for (RFC 6750 3's scope attribute) and the metadata (RFC 9728 5.1).
BEARER_CHALLENGE = f'Bearer realm="api", scope="mcp:tools", resource_metadata="{METADATA}"'
# RFC 9449 7.1: the kit offers DPoP alongside Bearer (an MCP client reads resource_metadata from either).
CHALLENGE = (
    f'{BEARER_CHALLENGE}, DPoP realm="api", scope="mcp:tools", algs="ES256 RS256 PS256 EdDSA", '
    f'resource_metadata="{METADATA}"'
)
# What the SDK's client sends: both media types accepted, JSON-RPC in the body.
MCP_HEADERS = {"HTTP_ACCEPT": "application/json, text/event-stream"}


def use_base(settings, base: str) -> None:
    derived = site.settings_for(base)
    settings.DEMO_BASE_URL = derived["DEMO_BASE_URL"]
    settings.OAUTH_RESOURCE_SERVER = derived["OAUTH_RESOURCE_SERVER"]
    cache.clear()


@pytest.fixture(autouse=True)
def demo_site(settings):
    use_base(settings, BASE)
    yield settings
    jwks.reset()
    cache.clear()


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


def user_token(user, scope: str, audiences: list[str], capture) -> str:
    client = ClientFactory(scopes=["mcp:tools", "files:read", "files:write"], audiences=audiences)
    browser = BrowserClient()
    browser.force_login(user)
    with capture(execute=True):  # the demo primes the revocation cache on commit
        code, verifier = get_code(browser, client, scope=scope)
        response = exchange_code(browser, client, code, verifier)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


@pytest.fixture
def token_for(alice, django_capture_on_commit_callbacks):
    def issue(scope: str = "mcp:tools", audiences=(MCP,), user=None) -> str:
        return user_token(user or alice, scope, list(audiences), django_capture_on_commit_callbacks)

    return issue


def rpc(token: str | None, message, method: str = "post"):
    headers = dict(MCP_HEADERS)
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if method != "post":
        return getattr(BrowserClient(), method)("/mcp/", **headers)
    return BrowserClient().post("/mcp/", data=json.dumps(message), content_type="application/json", **headers)


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}


def call_tool(name: str, request_id: int = 2) -> dict:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": {}},
    }


def tool_result(response) -> dict:
    assert response.status_code == 200, response.content
    body = response.json()
    assert "error" not in body, body
    return body["result"]


# --- 401: no token, or a token that is not for this server -------------------------------------------
@pytest.mark.parametrize("method", ["post", "get", "delete"])
def test_no_token_is_a_401_naming_the_metadata(db, method):
    response = rpc(None, INITIALIZE, method)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == CHALLENGE
    assert response.json()["error"] == "unauthorized"


def test_the_challenge_names_the_configured_url_not_the_host_header(db):
    response = BrowserClient().post(
        "/mcp/", data="{}", content_type="application/json", HTTP_HOST="localhost"
    )
    assert response["WWW-Authenticate"] == CHALLENGE  # testserver, from DEMO_BASE_URL


def test_a_token_for_another_audience_is_refused(token_for):
    """A files-API token (same issuer, same user, the right scope) is not an MCP token."""
    token = token_for("mcp:tools files:read", audiences=[FILES])
    response = rpc(token, INITIALIZE)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert response["WWW-Authenticate"].endswith(f'scope="mcp:tools", resource_metadata="{METADATA}"')


def test_the_mcp_token_is_refused_by_the_files_api(token_for):
    token = token_for("mcp:tools files:read")
    response = BrowserClient().get("/api/files/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
    assert (
        'resource_metadata="http://testserver/.well-known/oauth-protected-resource/api/files/"'
        in response["WWW-Authenticate"]
    )


def test_a_garbage_token_is_a_401(db):
    response = rpc("not-a-token", INITIALIZE)
    assert response.status_code == 401
    assert f'resource_metadata="{METADATA}"' in response["WWW-Authenticate"]


# --- 403: the scopes, step-up ----------------------------------------------------------------------
def test_a_token_without_the_mcp_scope_is_a_403_naming_it(token_for):
    response = rpc(token_for("files:read"), INITIALIZE)
    assert response.status_code == 403
    header = response["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in header and 'scope="mcp:tools"' in header
    assert f'resource_metadata="{METADATA}"' in header


def test_list_files_without_files_read_is_a_403_naming_every_scope_needed(token_for):
    token = token_for("mcp:tools")
    assert tool_result(rpc(token, call_tool("whoami")))  # whoami needs mcp:tools only
    response = rpc(token, call_tool("list_files"))
    assert response.status_code == 403
    assert 'scope="mcp:tools files:read"' in response["WWW-Authenticate"]


HEAD = b'{"jsonrpc": "2.0", "id": 2, '


@pytest.mark.parametrize(
    "body",
    [
        # Duplicate keys: whichever one a parser keeps, list_files never runs without files:read.
        HEAD + b'"method": "tools/call", "params": {"name": "whoami", "name": "list_files"}}',
        HEAD + b'"method": "tools/call", "params": {"name": "list_files", "name": "whoami"}}',
        HEAD + b'"method": "tools/call", "params": {"name": "list_files"}, "params": {"name": "whoami"}}',
        HEAD + b'"method": "tools/call", "params": {"name": "whoami"}, "params": {"name": "list_files"}}',
        HEAD + b'"method": "ping", "method": "tools/call", "params": {"name": "list_files"}}',
        HEAD + b'"method": "tools/call", "method": "ping", "params": {"name": "list_files"}}',
    ],
)
def test_list_files_never_runs_without_files_read(token_for, alice, body):
    """The HTTP-level scope check reads the body with Python's json; the tool checks again."""
    DemoFileFactory(owner=alice, name="private.txt")
    response = BrowserClient().post(
        "/mcp/",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_for('mcp:tools')}",
        **MCP_HEADERS,
    )
    assert response.status_code < 500
    assert b"private.txt" not in response.content


def test_list_files_checks_files_read_itself(token_for, alice):
    """Defence in depth: called past the view (another transport, a parser disagreement), the tool
    still refuses a token without files:read, and reads nothing."""
    from example_project.demo import mcp_server
    from oauth_server.resource import InsufficientScope, validate_access_token

    DemoFileFactory(owner=alice, name="private.txt")

    claims = validate_access_token(token_for("mcp:tools"), audience=MCP)

    async def call():
        mcp_server._caller.set(mcp_server.Caller(alice, claims))
        return await mcp_server.list_files()

    with pytest.raises(InsufficientScope):
        anyio.run(call)


def test_a_service_token_has_no_user_to_speak_for(db, django_capture_on_commit_callbacks):
    machine = MachineClientFactory(scopes=["mcp:tools"], audiences=[MCP])
    with django_capture_on_commit_callbacks(execute=True):
        response = token_request(
            BrowserClient(),
            {"grant_type": "client_credentials", "scope": "mcp:tools"},
            client=machine,
            secret=machine.raw_secret,
        )
    response = rpc(response.json()["access_token"], call_tool("whoami"))
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"


# --- the tools, through the SDK's server ----------------------------------------------------------------
def test_initialize_then_whoami_and_list_files(token_for, alice):
    DemoFileFactory(owner=alice, name="alice.txt", content="hello")
    DemoFileFactory(owner=UserFactory(username="bob"), name="bob.txt")
    token = token_for("mcp:tools files:read")

    init = tool_result(rpc(token, INITIALIZE))
    assert init["serverInfo"]["name"] == "oauth-server-demo"
    assert "tools" in init["capabilities"]

    listed = tool_result(rpc(token, {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
    assert {tool["name"] for tool in listed["tools"]} == {"whoami", "list_files"}

    whoami = tool_result(rpc(token, call_tool("whoami")))
    assert whoami["content"][0]["text"] == "alice"

    files = tool_result(rpc(token, call_tool("list_files")))["structuredContent"]["files"]
    assert [f["name"] for f in files] == ["alice.txt"]
    assert files[0]["content"] == "hello"
    assert files[0]["url"] == f"{BASE}/api/files/{files[0]['id']}/"


def test_get_and_delete_are_405_once_authorized(token_for):
    token = token_for()
    for method in ("get", "delete"):
        response = rpc(token, None, method)
        assert response.status_code == 405
        assert response["Allow"] == "POST"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b"null",
        b'{"jsonrpc": "2.0"}',
        b'{"method": "tools/call", "params": []}',
        b"[" * 3000 + b"]" * 3000,  # past json's recursion limit
        b'{"method": "tools/call", "params": ' * 2000 + b"{}" + b"}" * 2000,
        b"\xff\xfe",
    ],
)
def test_malformed_bodies_get_an_answer_not_a_500(token_for, body):
    response = BrowserClient().post(
        "/mcp/",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token_for()}",
        **MCP_HEADERS,
    )
    assert 200 <= response.status_code < 500, response.content


# --- the metadata the 401 points at -----------------------------------------------------------------
def test_the_metadata_lists_the_issuer_and_the_tools_scopes(db):
    response = BrowserClient().get("/.well-known/oauth-protected-resource/mcp/")
    assert response.status_code == 200
    assert response.json() == {
        "resource": MCP,
        "authorization_servers": [f"{BASE}/oauth"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Demo MCP server",
        "scopes_supported": ["mcp:tools", "files:read"],
    }


# --- the official SDK client against a live server ------------------------------------------------------
@pytest.mark.live
def test_the_official_sdk_client_calls_whoami(live_server, settings, django_capture_on_commit_callbacks):
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    use_base(settings, live_server.url)
    # Tokens minted in-process must carry the live server's issuer.
    settings.OAUTH2_PROVIDER = site.settings_for(live_server.url, getattr(settings, "OAUTH2_PROVIDER", None))[
        "OAUTH2_PROVIDER"
    ]
    alice = UserFactory(username="alice")
    mcp_url = site.mcp_url(live_server.url)
    DemoFileFactory(owner=alice, name="alice.txt")
    token = user_token(alice, "mcp:tools files:read", [mcp_url], django_capture_on_commit_callbacks)

    async def session_calls() -> tuple[str, str, list[str]]:
        import httpx2

        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
            streamable_http_client(mcp_url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            whoami = await session.call_tool("whoami", {})
            files = await session.call_tool("list_files", {})
            names = [f["name"] for f in files.structured_content["files"]]
            return whoami.content[0].text, str(whoami.is_error), names

    assert anyio.run(session_calls) == ("alice", "False", ["alice.txt"])


@pytest.mark.once
def test_oauth_server_never_imports_mcp():
    """The MCP SDK is the demo's dependency, not the app's (pyproject: the demo and test extras)."""
    import ast
    from pathlib import Path

    import oauth_server

    offenders = []
    for path in Path(oauth_server.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            offenders += [
                f"{path.name}: {name}" for name in names if name.split(".")[0] in ("mcp", "mcp_types")
            ]
    assert offenders == []
