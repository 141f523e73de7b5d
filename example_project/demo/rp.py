"""A small OpenID Connect relying party: what the Demo Web App (``client_views.py``) needs to sign
users in with an authorization server it reaches only over HTTP.

It knows the server through its discovery document and nothing else: this module imports nothing
of ``oauth_server`` and none of the provider's models (``tests/test_demo_client.py`` checks it), so
it works against any OpenID Connect server, like a third-party application would.

- its state lives in **its own session** (cookie ``demo_web_app_session``, path ``/demo/``), never
  in the authorization server's: signing out of the server does not touch it, and the tokens are
  only ever in this session (``client_session``);
- it talks to the server with ``requests``: discovery (cached), the token endpoint (code + PKCE,
  refresh) with ``client_secret_basic``, the JWKS, userinfo and the API (``call_api``), revocation;
- it verifies what it receives: the ID token's signature against the JWKS and its ``iss``, ``aud``,
  ``exp`` and ``nonce`` (``store_tokens``); ``state`` is one use (``take_flow``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from importlib import import_module
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings as django_settings
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from jwcrypto import jwk, jws
from jwcrypto.common import JWException

SESSION_COOKIE = "demo_web_app_session"
SESSION_COOKIE_PATH = "/demo/"
FLOW_MAX_AGE = 600  # seconds a started flow may wait for its callback
FLOWS_KEPT = 5  # pending flows per session (several tabs), oldest dropped first
HTTP_TIMEOUT = 10  # seconds
DISCOVERY_CACHE_SECONDS = 300
LEEWAY = 60  # seconds of clock skew accepted on the ID token's exp and iat
ALGORITHMS = ["RS256", "ES256", "EdDSA"]
# What the client keeps of a sign-in; all of it is forgotten on logout.
SIGNED_IN_KEYS = ("tokens", "id_claims", "at_claims", "at_note", "userinfo", "problems", "rotation", "flows")


class ServerError(Exception):
    """The authorization server could not be reached or gave an unusable answer."""


@dataclass(frozen=True)
class Credentials:
    """The client's registration at the server: its client_id and (confidential client) secret."""

    client_id: str
    client_secret: str


# --- the client's own session ---------------------------------------------------------------------
def client_session(view: Callable) -> Callable:
    """Give the view ``request.client_session``: the client's session, apart from the site's.

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


def pending_flows(session: SessionBase) -> dict[str, dict[str, Any]]:
    """The flows started in this session and not yet expired, by ``state``."""
    now = time.time()
    flows = session.get("flows", {})
    return {state: flow for state, flow in flows.items() if now - flow.get("started", 0) < FLOW_MAX_AGE}


def take_flow(session: SessionBase, state: str) -> dict[str, Any] | None:
    """The flow this ``state`` started, removed from the session: a state is good for one callback."""
    flows = pending_flows(session)
    flow = flows.pop(state, None) if state else None
    if flow is not None:
        session["flows"] = flows
    return flow


# --- talking to the server over HTTP --------------------------------------------------------------
def _http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # the demo calls itself: never through a proxy from the environment
    return session


_discovery_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_discovery_lock = threading.Lock()


def discovery(url: str) -> dict[str, Any]:
    """The server's OpenID Connect discovery document at ``url``, cached like any client would."""
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


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge) pair (RFC 7636 4.1, 4.2)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def start_flow(
    session: SessionBase,
    config: dict[str, Any],
    credentials: Credentials,
    *,
    redirect_uri: str,
    scope: str,
    prompt: str | None = None,
) -> str:
    """Remember a new flow (PKCE verifier, ``state``, ``nonce``) and return the authorization URL."""
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    flows = pending_flows(session)
    flows[state] = {
        "verifier": verifier,
        "nonce": nonce,
        "redirect_uri": redirect_uri,
        "started": time.time(),
    }
    session["flows"] = dict(sorted(flows.items(), key=lambda item: item[1]["started"])[-FLOWS_KEPT:])
    params = {
        "response_type": "code",
        "client_id": credentials.client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if prompt:
        params["prompt"] = prompt
    return f"{config['authorization_endpoint']}?{urlencode(params)}"


def basic_auth(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def _client_auth(credentials: Credentials) -> dict[str, str]:
    return {"Authorization": basic_auth(credentials.client_id, credentials.client_secret or "")}


def token_request(
    config: dict[str, Any], credentials: Credentials, data: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """POST to the token endpoint with the client's secret (client_secret_basic)."""
    try:
        response = _http().post(
            config["token_endpoint"], data=data, headers=_client_auth(credentials), timeout=HTTP_TIMEOUT
        )
    except requests.RequestException as exc:
        raise ServerError(str(exc)) from exc
    try:
        body = response.json()
    except ValueError:
        body = {"error": "invalid_response", "error_description": response.text[:200]}
    return response.status_code, body if isinstance(body, dict) else {"error": "invalid_response"}


def revoke_refresh_token(config: dict[str, Any], credentials: Credentials, token: str) -> None:
    """Best effort (RFC 7009): revoke the refresh token if the server has a revocation endpoint."""
    if not token or not config.get("revocation_endpoint"):
        return
    with contextlib.suppress(requests.RequestException):
        _http().post(
            config["revocation_endpoint"],
            data={"token": token, "token_type_hint": "refresh_token"},
            headers=_client_auth(credentials),
            timeout=HTTP_TIMEOUT,
        )


def end_session_url(
    config: dict[str, Any],
    credentials: Credentials,
    *,
    id_token: str,
    post_logout_redirect_uri: str,
    state: str,
) -> str | None:
    """RP-initiated logout's URL at the server, or None without an ID token or an end_session_endpoint."""
    end_session = config.get("end_session_endpoint")
    if not id_token or not end_session:
        return None
    params = {
        "id_token_hint": id_token,
        "client_id": credentials.client_id,
        "post_logout_redirect_uri": post_logout_redirect_uri,
        "state": state,
    }
    return f"{end_session}?{urlencode(params)}"


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


def check_id_token(
    config: dict[str, Any], claims: dict[str, Any], *, client_id: str, nonce: str | None
) -> list[str]:
    """OIDC Core 3.1.3.7: what is wrong with the ID token's claims (an empty list: nothing)."""
    problems = []
    audience = claims.get("aud")
    audience = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
    if claims.get("iss") != config["issuer"]:
        problems.append(_("The ID token's issuer is wrong."))
    if client_id not in audience:
        problems.append(_("The ID token is not addressed to this client."))
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] + LEEWAY < time.time():
        problems.append(_("The ID token has expired."))
    if nonce is not None and claims.get("nonce") != nonce:
        problems.append(_("The ID token's nonce is not the one this flow sent."))
    return problems


def call_api(method: str, url: str, token: str, **kwargs: Any) -> dict[str, Any]:
    """Call an API (or userinfo) with the access token; what it answered, errors included, for the page."""
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


def store_tokens(
    session: SessionBase,
    config: dict[str, Any],
    credentials: Credentials,
    tokens: dict[str, Any],
    *,
    grant: str,
    nonce: str | None,
) -> list[str]:
    """Verify what the token endpoint returned and keep it in the client's session; the problems found."""
    previous = session.get("tokens") or {}
    id_token = tokens.get("id_token") or previous.get("id_token", "")
    problems: list[str] = []
    id_claims = session.get("id_claims")
    if tokens.get("id_token"):
        try:
            id_claims = verify_jwt(config, tokens["id_token"], "JWT")
            problems += check_id_token(config, id_claims, client_id=credentials.client_id, nonce=nonce)
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
