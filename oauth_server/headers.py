"""Security headers every response of the app carries, applied in ``urls.py`` around each view.

The views set most of these themselves; these decorators make them a property of the URLconf, so
an endpoint added later cannot forget them (``tests/test_security_headers.py`` walks every URL).

- ``token_headers``: token, introspection, revocation and UserInfo answers carry tokens or token
  information: ``Cache-Control: no-store`` and ``Pragma: no-cache`` (RFC 6749 5.1, RFC 7662 2.2,
  OIDC Core 5.3.2), errors and 429s included.
- ``page_headers``: pages a user acts on (sign-in, consent, errors, logout, connected apps) may
  never be framed (clickjacking: ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``),
  leak their URL to other sites (``Referrer-Policy: same-origin`` unless the view chose stricter,
  such as ``no-referrer`` on the redirect carrying an authorization code) nor be cached.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

FRAME_ANCESTORS = "frame-ancestors 'none'"


def secure_token_response(response: HttpResponse) -> HttpResponse:
    cache_control = response.get("Cache-Control", "")
    if "no-store" not in cache_control.replace(" ", "").lower().split(","):
        response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def secure_page_response(response: HttpResponse) -> HttpResponse:
    response["X-Frame-Options"] = "DENY"
    policy = response.get("Content-Security-Policy", "").strip().rstrip(";")
    if "frame-ancestors" not in policy:
        response["Content-Security-Policy"] = f"{policy}; {FRAME_ANCESTORS}" if policy else FRAME_ANCESTORS
    if "Referrer-Policy" not in response:
        response["Referrer-Policy"] = "same-origin"
    if "Cache-Control" not in response:
        add_never_cache_headers(response)
    return response


def _decorate(apply: Callable[[HttpResponse], HttpResponse]) -> Callable[[Callable], Callable]:
    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return apply(view(request, *args, **kwargs))

        return wrapped

    return decorator


token_headers = _decorate(secure_token_response)
page_headers = _decorate(secure_page_response)
