"""The demo's own OAuth client: "Demo Web App" (confidential) running the authorization code flow.

It behaves like a third-party web application: a fresh PKCE pair, ``state`` and ``nonce`` per
attempt, kept in the session; the callback checks ``state`` and ``iss`` (RFC 9207), exchanges the
code with the verifier, verifies the ID token and shows what came back.

The token and userinfo endpoints are called *in process* (``call_endpoint``): the request goes
through the same view and oauthlib code as over HTTP, but without a network hop to itself, so the
demo also works behind a single-threaded server. A client in another process would use HTTP (the
end-to-end tests do, with Authlib and pyoidc). This module is the place the demo client grows
(files API calls, refresh, logout).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.test import RequestFactory
from django.urls import resolve, reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from jwcrypto.common import JWException
from oauth2_provider.settings import oauth2_settings

from oauth_server import keys
from oauth_server.conf import settings as oauth_settings
from oauth_server.models import Client

from . import seed

SESSION_FLOWS = "demo_oauth_flows"
FLOW_MAX_AGE = 600  # seconds a started flow may wait for its callback
FLOWS_KEPT = 5  # pending flows per session (several tabs), oldest dropped first


# --- in-process calls to the authorization server -------------------------------------------------
def call_endpoint(
    request: HttpRequest,
    url_name: str,
    *,
    data: dict[str, str] | None = None,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Call one of the server's endpoints in process; return (status, JSON body).

    The inner request has the outer request's host and scheme, so the issuer (and every URL the
    server derives from the request) is the one the browser sees.
    """
    path = reverse(f"oauth2_provider:{url_name}")
    factory = RequestFactory()
    headers = {"host": request.get_host(), **(headers or {})}
    if method == "POST":
        inner = factory.post(path, data or {}, headers=headers, secure=request.is_secure())
    else:
        inner = factory.get(path, data or {}, headers=headers, secure=request.is_secure())
    inner.user = AnonymousUser()
    match = resolve(path)
    response = match.func(inner, *match.args, **match.kwargs)
    if hasattr(response, "render"):
        response.render()
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        body = {
            "error": "invalid_response",
            "error_description": response.content[:200].decode(errors="replace"),
        }
    return response.status_code, body


def basic_auth(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def web_client_registered() -> bool:
    return Client.objects.filter(client_id=seed.WEB_APP.client_id, is_enabled=True).exists()


def _redirect_uri(request: HttpRequest, client: Client) -> str:
    """This host's callback if registered (127.0.0.1 vs localhost), else the first registered one."""
    here = request.build_absolute_uri(reverse("demo-callback"))
    return here if client.redirect_uri_allowed(here) else client.redirect_uri_list[0]


def _pending_flows(request: HttpRequest) -> dict[str, dict[str, Any]]:
    now = time.time()
    flows = request.session.get(SESSION_FLOWS, {})
    return {state: flow for state, flow in flows.items() if now - flow.get("started", 0) < FLOW_MAX_AGE}


# --- views ------------------------------------------------------------------------------------------
@never_cache
@require_GET
def start(request: HttpRequest) -> HttpResponse:
    """Begin the authorization code flow for the Demo Web App, like a "Sign in with ..." link."""
    client = Client.objects.filter(client_id=seed.WEB_APP.client_id, is_enabled=True).first()
    if client is None or not client.redirect_uri_list:
        return render(request, "demo/not_seeded.html", status=503)
    verifier, challenge = seed.pkce_pair()
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    redirect_uri = _redirect_uri(request, client)
    flows = _pending_flows(request)
    flows[state] = {
        "verifier": verifier,
        "nonce": nonce,
        "redirect_uri": redirect_uri,
        "started": time.time(),
    }
    request.session[SESSION_FLOWS] = dict(
        sorted(flows.items(), key=lambda item: item[1]["started"])[-FLOWS_KEPT:]
    )
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "scope": seed.AUTHORIZATION_SCOPE,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if request.GET.get("prompt") in ("consent", "login"):
        params["prompt"] = request.GET["prompt"]
    return HttpResponseRedirect(f"{reverse('oauth2_provider:authorize')}?{urlencode(params)}")


def _decode_jwt(token: str, typ: str) -> tuple[dict[str, Any] | None, str]:
    """(claims, note): verified against the server's published keys when it is one of ours."""
    if token.count(".") != 2:
        return None, _("Opaque token: only the authorization server can read it (use introspection).")
    try:
        return keys.verify(token, typ=typ), _("Signature verified with a key from the JWKS.")
    except (JWException, ValueError, TypeError, KeyError) as exc:
        return None, _("Signature check failed: %(error)s") % {"error": exc}


def _error_page(request: HttpRequest, error: str, description: str, *, status: int = 400) -> HttpResponse:
    return render(
        request, "demo/callback_error.html", {"error": error, "description": description}, status=status
    )


@never_cache
@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    """The Demo Web App's redirect URI: finish a flow this site started, or show a foreign code."""
    state = request.GET.get("state", "")
    flows = _pending_flows(request)
    flow = flows.pop(state, None) if state else None
    if flow is not None:
        request.session[SESSION_FLOWS] = flows  # a state is good for one callback only
    issuer = oauth2_settings.oidc_issuer(request)
    iss = request.GET.get("iss")
    if iss is not None and iss != issuer:
        # RFC 9207: a response from another server (mix-up attack) is dropped, code unused.
        return _error_page(
            request,
            "invalid_issuer",
            _("The response names issuer %(iss)s, not %(expected)s.") % {"iss": iss, "expected": issuer},
        )
    if "error" in request.GET:
        return _error_page(request, request.GET["error"], request.GET.get("error_description", ""))
    code = request.GET.get("code", "")
    if not code:
        return _error_page(request, "invalid_request", _("The callback has no authorization code."))
    if flow is None:
        # Not started here (the URL printed by seed_demo, or an expired/replayed state): show the
        # code for a manual exchange instead of spending it.
        context = {
            "code": code,
            "state": state,
            "issuer": iss,
            "lifetime": oauth_settings.AUTHORIZATION_CODE_LIFETIME,
        }
        return render(request, "demo/callback_manual.html", context)
    if iss is None:
        return _error_page(request, "invalid_issuer", _("The response has no iss parameter (RFC 9207)."))

    status, tokens = call_endpoint(
        request,
        "token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow["redirect_uri"],
            "code_verifier": flow["verifier"],
        },
        headers={"authorization": basic_auth(seed.WEB_APP.client_id, seed.WEB_APP.client_secret or "")},
    )
    if status != 200:
        return _error_page(request, tokens.get("error", "server_error"), tokens.get("error_description", ""))

    id_claims, id_note = (
        _decode_jwt(tokens.get("id_token", ""), "JWT") if tokens.get("id_token") else (None, "")
    )
    problems = []
    if id_claims is not None:
        if id_claims.get("nonce") != flow["nonce"]:
            problems.append(_("The ID token's nonce is not the one this flow sent."))
        if seed.WEB_APP.client_id not in (
            [id_claims.get("aud")] if isinstance(id_claims.get("aud"), str) else id_claims.get("aud") or []
        ):
            problems.append(_("The ID token is not addressed to this client."))
        if id_claims.get("iss") != issuer:
            problems.append(_("The ID token's issuer is wrong."))
    at_claims, at_note = _decode_jwt(tokens.get("access_token", ""), "at+jwt")
    userinfo_status, userinfo = call_endpoint(
        request,
        "user-info",
        method="GET",
        headers={"authorization": f"Bearer {tokens.get('access_token', '')}"},
    )
    refresh = tokens.get("refresh_token", "")
    context = {
        "tokens": tokens,
        "id_claims": _pretty(id_claims),
        "id_note": id_note,
        "at_claims": _pretty(at_claims),
        "at_note": at_note,
        "userinfo": _pretty(userinfo) if userinfo_status == 200 else None,
        "refresh_token_preview": f"{refresh[:8]}…{refresh[-4:]}" if refresh else "",
        "problems": problems,
        "issuer": issuer,
    }
    return render(request, "demo/callback.html", context)


@never_cache
@require_GET
def spa_callback(request: HttpRequest) -> HttpResponse:
    """The Demo SPA's redirect URI. A browser app exchanges the code itself (no secret, PKCE): this
    page shows the parameters; a later version of the demo runs the SPA here."""
    context = {
        "code": request.GET.get("code", ""),
        "state": request.GET.get("state", ""),
        "issuer": request.GET.get("iss", ""),
        "error": request.GET.get("error", ""),
        "error_description": request.GET.get("error_description", ""),
        "client_id": seed.SPA.client_id,
        "token_url": request.build_absolute_uri(reverse("oauth2_provider:token")),
        "redirect_uri": request.build_absolute_uri(request.path),
    }
    return render(request, "demo/spa_callback.html", context)


def _pretty(value: dict[str, Any] | None) -> str:
    return json.dumps(value, indent=2, sort_keys=True) if value else ""
