"""RFC 7662 introspection, as a client: for opaque tokens and for the "introspection" revocation check.

The API authenticates with ``client_secret_basic`` (RFC 6749 2.3.1) as a client whose resource
identifiers include its audience. Answers are cached in the Django cache ``CACHE`` under a SHA-256
of the token (plus a hash of who asked), never the token itself, for at most the given number of
seconds and never beyond the token's ``exp``. Transport failures are never cached: they raise
``ServiceUnavailable`` (503), since the token itself may well be fine.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from typing import Any
from urllib.parse import quote_plus

from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured

from . import http
from .conf import SETTINGS_NAME, settings
from .errors import ServiceUnavailable

logger = logging.getLogger(__name__)

CACHE_PREFIX = "oauth_resource:introspection"
_INACTIVE = {"active": False}


def is_configured() -> bool:
    return bool(
        settings.introspection_url
        and settings.INTROSPECTION_CLIENT_ID
        and settings.INTROSPECTION_CLIENT_SECRET
    )


def _authorization() -> str:
    # RFC 6749 2.3.1: both parts are form-urlencoded before being joined and base64-encoded.
    client_id = quote_plus(settings.INTROSPECTION_CLIENT_ID, safe="")
    secret = quote_plus(settings.INTROSPECTION_CLIENT_SECRET, safe="")
    pair = f"{client_id}:{secret}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def cache_key(token: str) -> str:
    """Where the answer for ``token`` is cached: hashes only, scoped to the endpoint and caller."""
    caller = hashlib.sha256(f"{settings.introspection_url}\n{settings.INTROSPECTION_CLIENT_ID}".encode())
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{CACHE_PREFIX}:{caller.hexdigest()[:16]}:{digest}"


def introspect(token: str, *, cache_seconds: int) -> dict[str, Any] | None:
    """The authorization server's answer for an active token, or None when it is not active."""
    if not is_configured():
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME} needs INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET "
            "(and INTROSPECTION_URL unless it is {ISSUER}/introspect/) to introspect tokens."
        )
    cache = caches[settings.CACHE]
    key = cache_key(token)
    cached = cache.get(key)
    if cached is not None:
        return cached if cached.get("active") is True else None
    url = settings.introspection_url
    try:
        answer = http.post_form(
            url, {"token": token, "token_type_hint": "access_token"}, authorization=_authorization()
        )
    except http.HTTPError as exc:
        if exc.status in (400, 401, 403):
            logger.error(
                "Introspection at %s refused our request (check the client credentials): %s", url, exc
            )
        else:
            logger.warning("Introspection at %s failed: %s", url, exc)
        raise ServiceUnavailable() from exc
    if answer.get("active") is not True:
        if cache_seconds > 0:
            cache.set(key, _INACTIVE, cache_seconds)
        return None
    timeout = cache_seconds
    exp = answer.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        timeout = min(timeout, int(exp - time.time()))
    if timeout > 0:
        cache.set(key, answer, timeout)
    return answer
