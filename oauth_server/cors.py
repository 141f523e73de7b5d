"""CORS for browser applications (public clients) at the token, revocation and UserInfo endpoints.

Rules (docs/abuse.md):

- An origin is allowed only if a **public**, enabled client lists it in ``allowed_origins`` (DOT's
  field, space-separated). A confidential client's secret must never be in a browser, so its
  origins are not honoured.
- Preflight (``OPTIONS`` with ``Access-Control-Request-Method``): the browser sends no client_id,
  so the origin is allowed if *any* public client lists it. The answer names that origin, the
  allowed methods and headers and a max-age.
- Actual requests at the token and revocation endpoints: the origin must be listed by the client
  the request names (``client_id``, or the Basic user). UserInfo requests name no client (the
  access token does): any public client's origin is allowed there, as at preflight.
- ``Access-Control-Allow-Origin`` is always one exact origin, never ``*``, and
  ``Access-Control-Allow-Credentials`` is never sent: tokens travel in headers and bodies, not in
  cookies. Unknown origins get no CORS headers (the browser then hides the response); the server
  still answers, since CORS protects the browser's user, not the server.
- Discovery and JWKS are public documents: ``*`` (without credentials), as the views already send.

oauthlib adds ``Access-Control-Allow-Origin`` itself for some grants (via
``validator.is_origin_allowed``, for confidential clients too): every CORS header a wrapped view
sets is replaced by this module's decision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers
from oauth2_provider.models import is_origin_allowed

from .conf import settings
from .models import Client
from .ratelimit import presented_client

# DPoP: a browser client sends its proof (RFC 9449) and reads the server's next nonce.
ALLOWED_HEADERS = "Authorization, Content-Type, DPoP"
# Headers a browser application needs to read: when to retry, why a token was refused, the DPoP nonce.
EXPOSED_HEADERS = "Retry-After, WWW-Authenticate, DPoP-Nonce"
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` in the form browsers send (lowercase, default port left out).

    None for anything that is not a plain http(s) origin: ``null``, paths, userinfo, garbage.
    """
    value = value or ""
    # Browsers send printable ASCII (hosts in punycode); urlsplit would silently drop tabs and
    # newlines, which must never reach a response header.
    if not value.isascii() or not value.isprintable() or " " in value:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or "*" in value:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}" + (f":{port}" if port and port != DEFAULT_PORTS[scheme] else "")


def origin_listed(origin: str, allowed_origins: str | Iterable[str]) -> bool:
    """Exact (normalised) match; schemes limited by DOT's ``ALLOWED_SCHEMES`` (https by default)."""
    if isinstance(allowed_origins, str):
        allowed_origins = allowed_origins.split()
    normalized = normalize_origin(origin)
    if normalized is None:
        return False
    registered = [n for n in (normalize_origin(o) for o in allowed_origins) if n]
    return is_origin_allowed(normalized, registered)


def _public_clients():
    return Client.objects.enabled().filter(client_type=Client.CLIENT_PUBLIC).exclude(allowed_origins="")


def origin_allowed_for_any_client(origin: str) -> bool:
    normalized = normalize_origin(origin)
    if normalized is None:
        return False
    host = urlsplit(normalized).hostname or ""
    candidates = _public_clients().filter(allowed_origins__icontains=host)
    return any(
        origin_listed(origin, allowed) for allowed in candidates.values_list("allowed_origins", flat=True)
    )


def origin_allowed_for_client(origin: str, client_id: str | None) -> bool:
    # A NUL names no client (and PostgreSQL refuses it in a query: a 500, found by the fuzz suite).
    if not client_id or "\x00" in client_id or normalize_origin(origin) is None:
        return False
    allowed = _public_clients().filter(client_id=client_id).values_list("allowed_origins", flat=True).first()
    return bool(allowed) and origin_listed(origin, allowed)


def _strip_cors(response: HttpResponse) -> None:
    for name in [name for name, _value in response.items() if name.lower().startswith("access-control-")]:
        del response[name]


def _is_preflight(request: HttpRequest) -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def _preflight_response(origin: str, methods: Iterable[str]) -> HttpResponse:
    response = HttpResponse(status=200)
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Allow-Methods"] = ", ".join(methods)
    response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response["Access-Control-Max-Age"] = str(settings.CORS_MAX_AGE)
    response["Content-Length"] = "0"
    return response


def client_cors(
    methods: Iterable[str], *, client_bound: bool = True
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """CORS for an endpoint browser applications call; ``client_bound``: the request names its client."""
    methods = tuple(methods)

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            # What browsers send is already normalised; echoing our normalised form keeps anything
            # else (case, default ports, stray characters) out of the response.
            origin = normalize_origin(request.headers.get("Origin", ""))
            if origin and _is_preflight(request) and origin_allowed_for_any_client(origin):
                response = _preflight_response(origin, methods)
            else:
                response = view(request, *args, **kwargs)
                _strip_cors(response)
                if origin and not _is_preflight(request):
                    if client_bound:
                        allowed = origin_allowed_for_client(origin, presented_client(request)[0])
                    else:
                        allowed = origin_allowed_for_any_client(origin)
                    if allowed:
                        response["Access-Control-Allow-Origin"] = origin
                        response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            # The answer depends on Origin: shared caches must not serve one origin's to another.
            patch_vary_headers(response, ["Origin"])
            return response

        return wrapped

    return decorator


def public_cors(
    methods: Iterable[str] = ("GET", "HEAD", "OPTIONS"),
    *,
    headers: str = "Content-Type",
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A public, credential-free resource: any origin may call it (``*``, never with cookies).

    ``headers``: the request headers a preflight allows (the registration endpoints take a bearer
    token in ``Authorization``, which ``*`` allows since no cookie is ever involved).
    """
    methods = tuple(methods)

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.headers.get("Origin") and _is_preflight(request):
                response = _preflight_response("*", methods)
                response["Access-Control-Allow-Headers"] = headers
                return response
            response = view(request, *args, **kwargs)
            _strip_cors(response)
            response["Access-Control-Allow-Origin"] = "*"
            return response

        return wrapped

    return decorator
