"""The demo MCP server at ``/mcp/``: the official ``mcp`` SDK's server, behind the resource-server kit.

A Django (WSGI) view does what the SDK's own server leaves to its host (docs/mcp.md):

1. **Authorization, by the kit**, before a byte reaches the SDK: a valid access token whose
   audience is this server's own URL (``site.mcp_url``, from ``DEMO_BASE_URL``, never from the
   ``Host`` header) and the scope ``mcp:tools`` (a 401 names it: ``scope="mcp:tools"``); a tool that
   needs more (``TOOL_SCOPES``) is refused with 403 ``insufficient_scope`` naming the scopes, so the
   client can step up. Every refusal names the RFC 9728 metadata (``resource_metadata``). The token
   must speak for a user.
2. **The protocol, by the SDK**: ``MCPServer`` (tools, schemas, JSON-RPC, protocol versions) served
   as a Streamable HTTP endpoint in *stateless* mode with *JSON responses*: each POST is complete in
   itself (no session to keep in a worker's memory, no long-lived stream), which is what a WSGI
   server (runserver, gunicorn sync workers) can host. The view hands the request to the SDK's
   Starlette app for the length of that one request (``async_to_sync``) and returns its answer.

Tools read the database through ``sync_to_async``: it runs the query back on the request's own
thread (and database connection), as Django requires.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings as django_settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from oauth_server.resource import (
    AccessTokenClaims,
    BearerError,
    InvalidToken,
    authenticate,
    check_scopes,
    error_response,
    user_for_token,
)
from oauth_server.resource.metadata import attach

from . import site
from .models import File

# What each tool needs on top of MCP_SCOPE (checked before the SDK sees the call: HTTP 403 step-up).
TOOL_SCOPES: dict[str, tuple[str, ...]] = {"whoami": (), "list_files": ("files:read",)}
INSTRUCTIONS = (
    "The oauth_server demo: who signed in (whoami) and her files in the demo's files API (list_files)."
)


def mcp_audience(request: HttpRequest | None = None) -> str:
    """This server's resource identifier: its own URL, from the configured base URL."""
    return site.mcp_url(django_settings.DEMO_BASE_URL)


@dataclass(frozen=True)
class Caller:
    """Who the request's token speaks for, for the tools."""

    user: AbstractBaseUser
    claims: AccessTokenClaims


_caller: ContextVar[Caller] = ContextVar("demo_mcp_caller")


def caller() -> Caller:
    return _caller.get()


# --- the MCP server: the SDK's, with two tools --------------------------------------------------------
server = MCPServer(name="oauth-server-demo", instructions=INSTRUCTIONS)


@server.tool()
async def whoami() -> str:
    """The username of the person who signed in (the user this access token speaks for)."""
    return caller().user.get_username()


def _files_of(user: AbstractBaseUser) -> list[dict[str, Any]]:
    base = django_settings.DEMO_BASE_URL
    return [
        {
            "id": file.pk,
            "name": file.name,
            "content": file.content,
            "created": file.created.isoformat(),
            "url": base + reverse("api-file-detail", args=[file.pk]),
        }
        for file in File.objects.filter(owner=user)
    ]


@server.tool()
async def list_files() -> dict[str, list[dict[str, Any]]]:
    """The signed-in user's files in the demo's files API: id, name, content, creation time, URL."""
    current = caller()
    # The view refused a token without it already; checked again where the data is read.
    check_scopes(current.claims, ("files:read",))
    return {"files": await sync_to_async(_files_of)(current.user)}


# --- the Django view -----------------------------------------------------------------------------
def _tools_called(body: bytes) -> list[str]:
    """Names of the tools a JSON-RPC body calls (one message or a batch); [] for anything else.

    Only a look at the names, to check scopes at the HTTP layer: the SDK parses and answers it.
    """
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return []
    names = []
    for item in message if isinstance(message, list) else [message]:
        params = item.get("params") if isinstance(item, dict) and item.get("method") == "tools/call" else None
        if isinstance(params, dict) and isinstance(params.get("name"), str):
            names.append(params["name"])
    return names


def _scope_error(request: HttpRequest, body: bytes) -> BearerError | None:
    needed = [site.MCP_SCOPE]
    for name in _tools_called(body):
        needed.extend(TOOL_SCOPES.get(name, ()))
    try:
        check_scopes(request.oauth_token, needed)
    except BearerError as exc:
        return attach(exc, mcp_audience())
    return None


def _configured_server() -> tuple[str, int]:
    """(host, port) of the configured base URL: the ASGI ``server`` (never the request's Host)."""
    parts = urlsplit(django_settings.DEMO_BASE_URL)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def _asgi_scope(request: HttpRequest) -> dict[str, Any]:
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in request.headers.items()
        if name.lower()
        not in ("authorization", "cookie")  # the kit has read the token; the SDK needs neither
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": request.scheme,
        "path": site.MCP_PATH,
        "raw_path": site.MCP_PATH.encode(),
        "root_path": "",
        "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"),
        "headers": headers,
        "client": (request.META.get("REMOTE_ADDR", ""), 0),
        "server": _configured_server(),
    }


async def _serve(scope: dict[str, Any], body: bytes, who: Caller) -> tuple[int, list, bytes]:
    """One request through the SDK's stateless, JSON-response Streamable HTTP app."""
    _caller.set(who)
    app = server.streamable_http_app(
        streamable_http_path=site.MCP_PATH,
        stateless_http=True,
        json_response=True,
        # Host is checked by Django (ALLOWED_HOSTS) before this view runs, and no cookie is honoured
        # here (a bearer token only), so a rebound page has nothing to ride on: docs/mcp.md.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    answered = anyio.Event()
    sent_body = False
    status, headers, chunks = 500, [], []

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()  # a stream still listening: it ends with the response
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], message.get("headers", [])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                answered.set()

    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    return status, headers, b"".join(chunks)


@csrf_exempt  # a bearer token, never a cookie: nothing to forge
@login_not_required  # an MCP client gets the 401 challenge, not a sign-in page
def mcp_endpoint(request: HttpRequest) -> HttpResponse:
    """``/mcp/``: POST a JSON-RPC message with ``Authorization: Bearer <token for this URL>``."""
    audience = mcp_audience()
    try:
        request.oauth_token = authenticate(request, audience=audience)
    except BearerError as exc:
        if exc.status_code == 401:
            # The scope every request needs: MCP clients ask for what a 401 names (before the
            # metadata's scopes_supported); a tool that needs more steps up on its 403.
            exc.scopes = (site.MCP_SCOPE,)
        return error_response(attach(exc, audience))
    if request.method != "POST":
        # Stateless: no server-initiated stream to GET, no session to DELETE (Streamable HTTP allows 405).
        response = JsonResponse(
            {"error": "method_not_allowed", "error_description": _("Send MCP messages with POST.")},
            status=405,
        )
        response["Allow"] = "POST"
        return response
    try:
        body = request.body
    except RequestDataTooBig:
        return JsonResponse(
            {"error": "invalid_request", "error_description": _("The request body is too large.")}, status=413
        )
    refused = _scope_error(request, body)
    if refused is not None:
        return error_response(refused)
    claims = request.oauth_token
    user = user_for_token(claims)
    if user is None:
        if claims.sub == claims.client_id:
            return JsonResponse(
                {
                    "error": "access_denied",
                    "error_description": _("The MCP server acts for a person: use a user's token."),
                },
                status=403,
            )
        return error_response(
            attach(InvalidToken(_("The access token's user is no longer active.")), mcp_audience())
        )
    status, headers, content = async_to_sync(_serve)(_asgi_scope(request), body, Caller(user, claims))
    response = HttpResponse(content, status=status)
    for name, value in headers:
        key = name.decode("latin-1")
        if key.lower() not in ("content-length", "connection", "transfer-encoding"):
            response[key] = value.decode("latin-1")
    response["Cache-Control"] = "no-store"
    return response
