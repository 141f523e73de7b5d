"""The Demo Web App's pages: a third-party web application that signs users in with this server and
calls the files API for them.

It behaves like an application running somewhere else. The OpenID Connect relying party it is
built on is ``rp.py`` (its own session, discovery, PKCE, token exchange and refresh, ID token
verification against the JWKS, userinfo, revocation, all over HTTP with ``requests``); what it knows
of the provider's side (its registration, "is it seeded?") is in ``client_registration.py``. The
server's URL is the ``DEMO_CLIENT_SERVER_URL`` setting, by default ``DEMO_BASE_URL`` (the address
``manage.py demo`` serves; runserver is threaded, so the site can call itself), never the Host
header of the request being served. On the callback it checks ``state`` (one use) and ``iss``
(RFC 9207).

Flow: ``start`` -> the server's login and consent -> ``callback`` (exchange, verify, keep the
tokens) -> ``app`` (files through the API, Refresh, Log out) -> RP-initiated logout ->
``logged_out``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from . import client_registration as registration
from . import rp, site
from .rp import (
    SIGNED_IN_KEYS,
    ServerError,
    client_session,
    end_session_url,
    revoke_refresh_token,
    start_flow,
    store_tokens,
    take_flow,
    token_request,
)


# --- where the server is --------------------------------------------------------------------------
def server_url(request: HttpRequest) -> str:
    """Where the client reaches the authorization server and the files API: configured, never the
    Host header of the request being served (a forged one would send the client secret elsewhere)."""
    configured = getattr(django_settings, "DEMO_CLIENT_SERVER_URL", None)
    return site.normalize_base_url(configured or django_settings.DEMO_BASE_URL)


def discovery(request: HttpRequest) -> dict[str, Any]:
    """The server's discovery document, read at the configured server URL."""
    return rp.discovery(server_url(request) + reverse("oauth2_provider:oidc-connect-discovery-info"))


def call_api(request: HttpRequest, method: str, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
    """Call a path of the server (files API, userinfo) with the access token."""
    return rp.call_api(method, server_url(request) + path, token, **kwargs)


# --- helpers --------------------------------------------------------------------------------------------
def _own_url(request: HttpRequest, name: str) -> str:
    return request.build_absolute_uri(reverse(name))


def _preview(secret: str) -> str:
    return f"{secret[:8]}…{secret[-4:]}" if secret else ""


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True) if value else ""


def _error_page(request: HttpRequest, error: str, description: str, *, status: int = 400) -> HttpResponse:
    return render(
        request, "demo/callback_error.html", {"error": error, "description": description}, status=status
    )


def _flash(request: HttpRequest, kind: str, text: str, api: dict[str, Any] | None = None) -> None:
    request.client_session["flash"] = {"kind": kind, "text": text, "api": api}


# --- views ------------------------------------------------------------------------------------------
@never_cache
@require_GET
@client_session
def start(request: HttpRequest) -> HttpResponse:
    """ "Sign in with the demo server": a fresh PKCE verifier, ``state`` and ``nonce``, then the
    server's authorization endpoint (from its discovery document)."""
    redirect_uri = registration.web_app_redirect_uri(_own_url(request, "demo-callback"))
    if redirect_uri is None:
        return render(request, "demo/not_seeded.html", status=503)
    try:
        config = discovery(request)
    except ServerError as exc:
        return _error_page(request, "server_unreachable", str(exc), status=502)
    prompt = request.GET.get("prompt")
    url = start_flow(
        request.client_session,
        config,
        registration.WEB_APP,
        redirect_uri=redirect_uri,
        scope=registration.SCOPE,
        prompt=prompt if prompt in ("consent", "login") else None,
    )
    return HttpResponseRedirect(url)


@never_cache
@require_GET
@client_session
def callback(request: HttpRequest) -> HttpResponse:
    """The redirect URI: finish a flow this app started (then on to the app), or show a foreign code."""
    state = request.GET.get("state", "")
    flow = take_flow(request.client_session, state)
    try:
        config = discovery(request)
    except ServerError as exc:
        return _error_page(request, "server_unreachable", str(exc), status=502)
    issuer = config["issuer"]
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
            "lifetime": registration.authorization_code_lifetime(),
        }
        return render(request, "demo/callback_manual.html", context)
    if iss is None:
        return _error_page(request, "invalid_issuer", _("The response has no iss parameter (RFC 9207)."))
    try:
        status, tokens = token_request(
            config,
            registration.WEB_APP,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": flow["redirect_uri"],
                "code_verifier": flow["verifier"],
            },
        )
        if status != 200 or not isinstance(tokens.get("access_token"), str):
            return _error_page(
                request, tokens.get("error", "server_error"), tokens.get("error_description", "")
            )
        problems = store_tokens(
            request.client_session,
            config,
            registration.WEB_APP,
            tokens,
            grant="authorization_code",
            nonce=flow["nonce"],
        )
        userinfo = call_api(request, "GET", reverse("oauth2_provider:user-info"), tokens["access_token"])
    except ServerError as exc:
        return _error_page(request, "server_unreachable", str(exc), status=502)
    request.client_session["userinfo"] = userinfo["body"] if userinfo["ok"] else None
    request.client_session["problems"] = problems
    request.client_session.pop("rotation", None)
    request.client_session.cycle_key()  # signed in: a new session key (no fixation)
    return HttpResponseRedirect(reverse("demo-app"), status=303)


@never_cache
@require_GET
@client_session
def app(request: HttpRequest) -> HttpResponse:
    """The app's page: who is signed in (verified ID token), their files through the API, actions."""
    session = request.client_session
    tokens = session.get("tokens")
    base = server_url(request)
    context: dict[str, Any] = {
        "connected_apps_url": base + reverse("oauth2_provider:connected-apps"),
        "files_api_url": base + site.FILES_API_PATH,
        "server_url": base,
        "flash": session.pop("flash", None),
    }
    if not tokens:
        return render(request, "demo/app_signed_out.html", context)
    files = call_api(request, "GET", site.FILES_API_PATH, tokens["access_token"])
    received = tokens.get("received_at") or 0
    context.update(
        {
            "tokens": tokens,
            "grant": tokens.get("grant"),
            "received_at": time.strftime("%H:%M:%S", time.gmtime(received)),
            "expires_at": time.strftime("%H:%M:%S", time.gmtime(received + (tokens.get("expires_in") or 0))),
            "access_token_preview": _preview(tokens["access_token"]),
            "refresh_token_preview": _preview(tokens.get("refresh_token", "")),
            "id_claims": _pretty(session.get("id_claims")),
            "name": (session.get("id_claims") or {}).get("name", ""),
            "at_claims": _pretty(session.get("at_claims")),
            "at_note": session.get("at_note", ""),
            "userinfo": _pretty(session.get("userinfo")),
            "problems": session.get("problems") or [],
            "rotation": session.get("rotation"),
            "files": files,
            "file_list": (files["body"] or {}).get("files", []) if files["ok"] else [],
            "files_error": None if files["ok"] else _pretty(files["body"]),
        }
    )
    return render(request, "demo/app.html", context)


def _signed_in(view: Callable) -> Callable:
    """POST actions of the app need its tokens; without them, back to the app's page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.client_session.get("tokens"):
            _flash(request, "error", _("You are not signed in to the Demo Web App."))
            return HttpResponseRedirect(reverse("demo-app"), status=303)
        return view(request, *args, **kwargs)

    return wrapper


@never_cache
@require_POST
@client_session
@_signed_in
def create_file(request: HttpRequest) -> HttpResponse:
    """Create a file in the user's account: a POST to the files API with the access token."""
    tokens = request.client_session["tokens"]
    data = {"name": request.POST.get("name", ""), "content": request.POST.get("content", "")}
    result = call_api(request, "POST", site.FILES_API_PATH, tokens["access_token"], json=data)
    if result["ok"]:
        _flash(request, "ok", _("The files API created %(name)s.") % {"name": result["body"]["name"]}, result)
    else:
        _flash(request, "error", _("The files API refused to create the file."), result)
    return HttpResponseRedirect(reverse("demo-app"), status=303)


@never_cache
@require_POST
@client_session
@_signed_in
def delete_file(request: HttpRequest, pk: int) -> HttpResponse:
    tokens = request.client_session["tokens"]
    result = call_api(request, "DELETE", f"{site.FILES_API_PATH}{pk}/", tokens["access_token"])
    if result["ok"]:
        _flash(request, "ok", _("The files API deleted the file."), result)
    else:
        _flash(request, "error", _("The files API refused to delete the file."), result)
    return HttpResponseRedirect(reverse("demo-app"), status=303)


@never_cache
@require_POST
@client_session
@_signed_in
def refresh(request: HttpRequest) -> HttpResponse:
    """The refresh_token grant: new tokens, and the refresh token rotates (the old one is dead)."""
    session = request.client_session
    old = session["tokens"]
    try:
        config = discovery(request)
        status, tokens = token_request(
            config,
            registration.WEB_APP,
            {"grant_type": "refresh_token", "refresh_token": old.get("refresh_token", "")},
        )
        if status != 200 or not isinstance(tokens.get("access_token"), str):
            # invalid_grant: revoked (Connected apps, logout) or expired. The tokens are kept so that
            # Log out can still name the user (id_token_hint); the user signs in again.
            _flash(
                request,
                "error",
                _("The server refused to refresh: %(error)s. Sign in again.")
                % {"error": tokens.get("error", status)},
                {"status": status, "body": tokens, "method": "POST", "url": config["token_endpoint"]},
            )
            return HttpResponseRedirect(reverse("demo-app"), status=303)
        session["problems"] = store_tokens(
            session, config, registration.WEB_APP, tokens, grant="refresh_token", nonce=None
        )
    except ServerError as exc:
        _flash(request, "error", str(exc))
        return HttpResponseRedirect(reverse("demo-app"), status=303)
    new = session["tokens"]
    session["rotation"] = {
        "access_token": [_preview(old["access_token"]), _preview(new["access_token"])],
        "refresh_token": [_preview(old.get("refresh_token", "")), _preview(new.get("refresh_token", ""))],
    }
    _flash(request, "ok", _("New tokens: the refresh token rotated, the old one no longer works."))
    return HttpResponseRedirect(reverse("demo-app"), status=303)


@never_cache
@require_POST
@client_session
def logout(request: HttpRequest) -> HttpResponse:
    """Forget the tokens, revoke the refresh token, then RP-initiated logout at the server."""
    session = request.client_session
    tokens = session.get("tokens") or {}
    for key in SIGNED_IN_KEYS:
        session.pop(key, None)
    try:
        config = discovery(request)
    except ServerError as exc:
        _flash(request, "error", str(exc))
        return HttpResponseRedirect(reverse("demo-app"), status=303)
    # Best effort: the server's logout revokes this app's tokens too.
    revoke_refresh_token(config, registration.WEB_APP, tokens.get("refresh_token", ""))
    state = secrets.token_urlsafe(16)
    url = end_session_url(
        config,
        registration.WEB_APP,
        id_token=tokens.get("id_token", ""),
        post_logout_redirect_uri=_own_url(request, "demo-app-logged-out"),
        state=state,
    )
    if url is None:
        return HttpResponseRedirect(reverse("demo-app-logged-out"), status=303)
    session["logout_state"] = state
    return HttpResponseRedirect(url, status=303)


@never_cache
@require_GET
@client_session
def logged_out(request: HttpRequest) -> HttpResponse:
    """The registered post_logout_redirect_uri: the server ended its session and sent the user back."""
    expected = request.client_session.pop("logout_state", None)
    state = request.GET.get("state")
    context = {
        "confirmed": bool(expected) and state == expected,
        "unexpected": state is not None and state != expected,
    }
    return render(request, "demo/app_logged_out.html", context)


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
        "client_id": registration.SPA_CLIENT_ID,
        "token_url": request.build_absolute_uri(reverse("oauth2_provider:token")),
        "redirect_uri": request.build_absolute_uri(request.path),
    }
    return render(request, "demo/spa_callback.html", context)
