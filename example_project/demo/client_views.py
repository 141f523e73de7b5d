"""The Demo Web App: a third-party web application that signs users in with this server and calls the
files API for them.

It behaves like an application running somewhere else:

- its state lives in **its own session** (cookie ``demo_web_app_session``, path ``/demo/``), never
  in the authorization server's: signing out of the server does not touch it, and the tokens are
  only ever in this session;
- it talks to the authorization server and to the files API **over HTTP** with ``requests``:
  discovery, token endpoint (code + PKCE, refresh), JWKS, userinfo, revocation, and the API. The
  server's URL is the ``DEMO_CLIENT_SERVER_URL`` setting, by default ``DEMO_BASE_URL`` (the address
  ``manage.py demo`` serves; runserver is threaded, so the site can call itself), never the Host
  header of the request being served;
- it verifies what it receives: ``state`` (one use) and ``iss`` (RFC 9207) on the callback, the
  ID token's signature against the JWKS and its ``iss``, ``aud``, ``exp`` and ``nonce``.

Flow: ``start`` -> the server's login and consent -> ``callback`` (exchange, verify, keep the
tokens) -> ``app`` (files through the API, Refresh, Log out) -> RP-initiated logout ->
``logged_out``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from functools import wraps
from importlib import import_module
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from jwcrypto import jwk, jws
from jwcrypto.common import JWException

from oauth_server.conf import settings as oauth_settings
from oauth_server.models import Client

from . import seed, site

SESSION_COOKIE = "demo_web_app_session"
SESSION_COOKIE_PATH = "/demo/"
FLOW_MAX_AGE = 600  # seconds a started flow may wait for its callback
FLOWS_KEPT = 5  # pending flows per session (several tabs), oldest dropped first
HTTP_TIMEOUT = 10  # seconds
DISCOVERY_CACHE_SECONDS = 300
LEEWAY = 60  # seconds of clock skew accepted on the ID token's exp and iat
ALGORITHMS = ["RS256", "ES256", "EdDSA"]


class ServerError(Exception):
    """The authorization server could not be reached or gave an unusable answer."""


# --- the client's own session ---------------------------------------------------------------------
def client_session(view: Callable) -> Callable:
    """Give the view ``request.client_session``: the Demo Web App's session, apart from the site's.

    Same session engine as the site, its own cookie (HttpOnly, SameSite=Lax so the redirect back
    from the server carries it, path /demo/). Emptied, it is deleted with its cookie.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        engine = import_module(django_settings.SESSION_ENGINE)
        store = engine.SessionStore(request.COOKIES.get(SESSION_COOKIE))
        request.client_session = store
        response = view(request, *args, **kwargs)
        if store.modified:
            if not list(store.keys()):  # is_empty() is False for a stored session with no data
                store.delete()
                response.delete_cookie(SESSION_COOKIE, path=SESSION_COOKIE_PATH, samesite="Lax")
            else:
                store.save()
                response.set_cookie(
                    SESSION_COOKIE,
                    store.session_key,
                    max_age=store.get_expiry_age(),
                    path=SESSION_COOKIE_PATH,
                    secure=request.is_secure(),
                    httponly=True,
                    samesite="Lax",
                )
        return response

    return wrapper


# --- talking to the server over HTTP --------------------------------------------------------------
def server_url(request: HttpRequest) -> str:
    """Where the client reaches the authorization server and the files API: configured, never the
    Host header of the request being served (a forged one would send the client secret elsewhere)."""
    configured = getattr(django_settings, "DEMO_CLIENT_SERVER_URL", None)
    return site.normalize_base_url(configured or django_settings.DEMO_BASE_URL)


def _http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # the demo calls itself: never through a proxy from the environment
    return session


_discovery_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_discovery_lock = threading.Lock()


def discovery(base_url: str) -> dict[str, Any]:
    """The server's OpenID Connect discovery document, cached like any client would."""
    url = base_url + reverse("oauth2_provider:oidc-connect-discovery-info")
    with _discovery_lock:
        cached = _discovery_cache.get(url)
    if cached and time.monotonic() - cached[0] < DISCOVERY_CACHE_SECONDS:
        return cached[1]
    try:
        response = _http().get(url, timeout=HTTP_TIMEOUT)
        document = response.json() if response.status_code == 200 else None
    except (requests.RequestException, ValueError) as exc:
        raise ServerError(_("Could not read %(url)s: %(error)s") % {"url": url, "error": exc}) from exc
    needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
    if not isinstance(document, dict) or not all(isinstance(document.get(k), str) for k in needed):
        raise ServerError(_("%(url)s is not a discovery document.") % {"url": url})
    with _discovery_lock:
        _discovery_cache[url] = (time.monotonic(), document)
    return document


def basic_auth(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _client_auth() -> dict[str, str]:
    return {"Authorization": basic_auth(seed.WEB_APP.client_id, seed.WEB_APP.client_secret or "")}


def token_request(config: dict[str, Any], data: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST to the token endpoint with the client's secret (client_secret_basic)."""
    try:
        response = _http().post(
            config["token_endpoint"], data=data, headers=_client_auth(), timeout=HTTP_TIMEOUT
        )
    except requests.RequestException as exc:
        raise ServerError(str(exc)) from exc
    try:
        body = response.json()
    except ValueError:
        body = {"error": "invalid_response", "error_description": response.text[:200]}
    return response.status_code, body if isinstance(body, dict) else {"error": "invalid_response"}


def verify_jwt(config: dict[str, Any], token: str, typ: str) -> dict[str, Any]:
    """A JWT's claims after checking its signature against the server's JWKS (fetched over HTTP)."""
    try:
        keyset = jwk.JWKSet.from_json(_http().get(config["jwks_uri"], timeout=HTTP_TIMEOUT).text)
    except (requests.RequestException, JWException, ValueError) as exc:
        raise ServerError(_("Could not read the server's keys: %(error)s") % {"error": exc}) from exc
    parsed = jws.JWS()
    try:
        parsed.deserialize(token)
        header = parsed.jose_header
        if str(header.get("typ", "")).lower() != typ.lower() or header.get("alg") not in ALGORITHMS:
            raise ValueError(_("unexpected typ or alg"))
        key = keyset.get_key(header.get("kid"))
        if key is None:
            raise ValueError(_("unknown key"))
        parsed.verify(key, alg=header["alg"])
        claims = json.loads(parsed.payload)
    except (JWException, ValueError, TypeError, KeyError) as exc:
        raise ValueError(_("The %(typ)s did not verify: %(error)s") % {"typ": typ, "error": exc}) from exc
    if not isinstance(claims, dict):
        raise ValueError(_("The %(typ)s has no claims.") % {"typ": typ})
    return claims


def check_id_token(config: dict[str, Any], claims: dict[str, Any], *, nonce: str | None) -> list[str]:
    """OIDC Core 3.1.3.7: what is wrong with the ID token's claims (an empty list: nothing)."""
    problems = []
    audience = claims.get("aud")
    audience = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if claims.get("iss") != config["issuer"]:
        problems.append(_("The ID token's issuer is wrong."))
    if seed.WEB_APP.client_id not in audience:
        problems.append(_("The ID token is not addressed to this client."))
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] + LEEWAY < time.time():
        problems.append(_("The ID token has expired."))
    if nonce is not None and claims.get("nonce") != nonce:
        problems.append(_("The ID token's nonce is not the one this flow sent."))
    return problems


def call_api(request: HttpRequest, method: str, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
    """Call the files API with the access token; what it answered, errors included, for the page."""
    url = server_url(request) + path
    try:
        response = _http().request(
            method, url, headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT, **kwargs
        )
    except requests.RequestException as exc:
        return {"method": method, "url": url, "status": None, "body": {"error": str(exc)}, "ok": False}
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = {"error": "invalid_response", "error_description": response.text[:200]}
    return {
        "method": method,
        "url": url,
        "status": response.status_code,
        "ok": 200 <= response.status_code < 300,
        "body": body,
        "www_authenticate": response.headers.get("WWW-Authenticate", ""),
    }


# --- helpers --------------------------------------------------------------------------------------------
def web_client_registered() -> bool:
    return Client.objects.filter(client_id=seed.WEB_APP.client_id, is_enabled=True).exists()


def _own_url(request: HttpRequest, name: str) -> str:
    return request.build_absolute_uri(reverse(name))


def _redirect_uri(request: HttpRequest, client: Client) -> str:
    """This host's callback if registered (127.0.0.1 vs localhost), else the first registered one."""
    here = _own_url(request, "demo-callback")
    return here if client.redirect_uri_allowed(here) else client.redirect_uri_list[0]


def _pending_flows(request: HttpRequest) -> dict[str, dict[str, Any]]:
    now = time.time()
    flows = request.client_session.get("flows", {})
    return {state: flow for state, flow in flows.items() if now - flow.get("started", 0) < FLOW_MAX_AGE}


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


def _store_tokens(
    request: HttpRequest, config: dict[str, Any], tokens: dict[str, Any], *, grant: str, nonce: str | None
) -> list[str]:
    """Verify what the token endpoint returned and keep it in the client's session; the problems found."""
    session = request.client_session
    previous = session.get("tokens") or {}
    id_token = tokens.get("id_token") or previous.get("id_token", "")
    problems: list[str] = []
    id_claims = session.get("id_claims")
    if tokens.get("id_token"):
        try:
            id_claims = verify_jwt(config, tokens["id_token"], "JWT")
            problems += check_id_token(config, id_claims, nonce=nonce)
        except ValueError as exc:
            id_claims, problems = None, [str(exc)]
        previous_sub = (session.get("id_claims") or {}).get("sub")
        if grant == "refresh_token" and id_claims and previous_sub != id_claims.get("sub"):
            problems.append(_("The refreshed ID token is for another user."))  # OIDC Core 12.2
    at_claims, at_note = None, _("Opaque: only the server and the API can read it.")
    if tokens["access_token"].count(".") == 2:
        try:
            at_claims = verify_jwt(config, tokens["access_token"], "at+jwt")
            at_note = _(
                "A JWT (RFC 9068), signature verified with the server's JWKS. Shown for the demo: "
                "a client never needs to read its access token."
            )
        except ValueError as exc:
            at_note = str(exc)
    session["tokens"] = {
        "access_token": tokens["access_token"],
        "refresh_token": tokens.get("refresh_token") or previous.get("refresh_token", ""),
        "id_token": id_token,
        "token_type": tokens.get("token_type", ""),
        "scope": tokens.get("scope", ""),
        "expires_in": tokens.get("expires_in"),
        "received_at": int(time.time()),
        "grant": grant,
    }
    session["id_claims"] = id_claims
    session["at_claims"] = at_claims
    session["at_note"] = at_note
    return problems


# --- views ------------------------------------------------------------------------------------------
@never_cache
@require_GET
@client_session
def start(request: HttpRequest) -> HttpResponse:
    """ "Sign in with the demo server": a fresh PKCE verifier, ``state`` and ``nonce``, then the
    server's authorization endpoint (from its discovery document)."""
    client = Client.objects.filter(client_id=seed.WEB_APP.client_id, is_enabled=True).first()
    if client is None or not client.redirect_uri_list:
        return render(request, "demo/not_seeded.html", status=503)
    try:
        config = discovery(server_url(request))
    except ServerError as exc:
        return _error_page(request, "server_unreachable", str(exc), status=502)
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
    request.client_session["flows"] = dict(
        sorted(flows.items(), key=lambda item: item[1]["started"])[-FLOWS_KEPT:]
    )
    params = {
        "response_type": "code",
        "client_id": seed.WEB_APP.client_id,
        "redirect_uri": redirect_uri,
        "scope": seed.CLIENT_APP_SCOPE,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if request.GET.get("prompt") in ("consent", "login"):
        params["prompt"] = request.GET["prompt"]
    return HttpResponseRedirect(f"{config['authorization_endpoint']}?{urlencode(params)}")


@never_cache
@require_GET
@client_session
def callback(request: HttpRequest) -> HttpResponse:
    """The redirect URI: finish a flow this app started (then on to the app), or show a foreign code."""
    state = request.GET.get("state", "")
    flows = _pending_flows(request)
    flow = flows.pop(state, None) if state else None
    if flow is not None:
        request.client_session["flows"] = flows  # a state is good for one callback only
    try:
        config = discovery(server_url(request))
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
            "lifetime": oauth_settings.AUTHORIZATION_CODE_LIFETIME,
        }
        return render(request, "demo/callback_manual.html", context)
    if iss is None:
        return _error_page(request, "invalid_issuer", _("The response has no iss parameter (RFC 9207)."))
    try:
        status, tokens = token_request(
            config,
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
        problems = _store_tokens(request, config, tokens, grant="authorization_code", nonce=flow["nonce"])
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
        config = discovery(server_url(request))
        status, tokens = token_request(
            config, {"grant_type": "refresh_token", "refresh_token": old.get("refresh_token", "")}
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
        session["problems"] = _store_tokens(request, config, tokens, grant="refresh_token", nonce=None)
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
    for key in ("tokens", "id_claims", "at_claims", "at_note", "userinfo", "problems", "rotation", "flows"):
        session.pop(key, None)
    try:
        config = discovery(server_url(request))
    except ServerError as exc:
        _flash(request, "error", str(exc))
        return HttpResponseRedirect(reverse("demo-app"), status=303)
    if tokens.get("refresh_token") and config.get("revocation_endpoint"):
        # Best effort: the server's logout revokes this app's tokens too.
        with contextlib.suppress(requests.RequestException):
            _http().post(
                config["revocation_endpoint"],
                data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
                headers=_client_auth(),
                timeout=HTTP_TIMEOUT,
            )
    end_session = config.get("end_session_endpoint")
    if not tokens.get("id_token") or not end_session:
        return HttpResponseRedirect(reverse("demo-app-logged-out"), status=303)
    state = secrets.token_urlsafe(16)
    session["logout_state"] = state
    params = {
        "id_token_hint": tokens["id_token"],
        "client_id": seed.WEB_APP.client_id,
        "post_logout_redirect_uri": _own_url(request, "demo-app-logged-out"),
        "state": state,
    }
    return HttpResponseRedirect(f"{end_session}?{urlencode(params)}", status=303)


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
        "client_id": seed.SPA.client_id,
        "token_url": request.build_absolute_uri(reverse("oauth2_provider:token")),
        "redirect_uri": request.build_absolute_uri(request.path),
    }
    return render(request, "demo/spa_callback.html", context)
