"""Rate limits for the token, authorization, introspection and revocation endpoints (docs/abuse.md).

Fixed-window counters in Django's cache (``OAUTH_SERVER["RATE_LIMIT_CACHE"]``): one counter per
endpoint and client IP, one per endpoint and authenticated client, and a stricter pair counting
only *failed* client authentications (``401 invalid_client``), which throttles secret guessing.

The decorator wraps a view in ``urls.py``; it judges a request by what the view answered rather
than by re-doing client authentication, so it needs no hook in the validator:

- the per-IP counter is incremented before the view runs (atomic ``incr``: concurrent requests
  cannot overshoot it);
- the per-client counter counts only requests whose client presented a secret and was not
  refused, so nobody can spend a confidential client's budget without its secret; public
  clients (whose client_id anyone may send) are limited per IP only;
- the failure counters are checked before and incremented after a 401; once full, even the
  right secret is refused until the window ends (Keycloak's brute-force detection does the same).

A cache failure never takes an endpoint down: the request is served and the error logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any
from urllib.parse import unquote_plus

from django.core.cache import caches
from django.core.exceptions import (
    BadRequest,
    ImproperlyConfigured,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
)
from django.http import HttpRequest, HttpResponse, JsonResponse, RawPostDataException
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from .conf import DEFAULTS, settings
from .network import client_address

logger = logging.getLogger("oauth_server.ratelimit")

ENDPOINTS = ("token", "authorize", "introspect", "revoke")
FAILURES = "client_auth_failures"
KNOWN_LIMITS = frozenset((*ENDPOINTS, FAILURES))
# Endpoints where clients authenticate, so a 401 is a failed client authentication.
CLIENT_AUTH_ENDPOINTS = frozenset(("token", "introspect", "revoke"))
SCOPES = ("ip", "client")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
KEY_PREFIX = "oauth_server:ratelimit"
TOO_MANY_REQUESTS_TEMPLATE = "oauth_server/too_many_requests.html"
# The bodies the endpoints read parameters from (DOT reads request.POST, which parses both).
FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@dataclass(frozen=True)
class Rate:
    """``limit`` requests per ``period`` seconds."""

    limit: int
    period: int

    def window(self, now: float) -> tuple[int, int]:
        start = int(now // self.period) * self.period
        return start, start + self.period


def parse_rate(value: str) -> Rate:
    """``"120/m"``, ``"10/5m"``, ``"1000/h"``...; a ValueError says what is wrong."""
    match = RATE_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a rate like '120/m' (count/period, period s, m, h or d)")
    count, multiplier, unit = match.groups()
    period = (int(multiplier) if multiplier else 1) * UNITS[unit]
    if period <= 0:
        raise ValueError(f"{value!r}: the period must be at least one second")
    return Rate(int(count), period)


def _parse_limit(name: str, value: Any) -> dict[str, Rate | None]:
    if value is None:
        return dict.fromkeys(SCOPES)
    if isinstance(value, str):
        rate = parse_rate(value)
        # At the authorization endpoint nobody authenticates and any client_id can be typed in a
        # URL: counting per client there would let anyone lock every user out of an application.
        # A site that wants it anyway sets {"ip": ..., "client": ...}.
        return {"ip": rate, "client": None if name == "authorize" else rate}
    if isinstance(value, dict):
        unknown = set(value) - set(SCOPES)
        if unknown:
            raise ValueError(f"{name}: unknown keys {sorted(unknown)} (use 'ip' and 'client')")
        return {scope: None if value.get(scope) is None else parse_rate(value[scope]) for scope in SCOPES}
    raise ValueError(f"{name}: expected a rate string, a dict with 'ip'/'client', or None")


def configured_limits() -> dict[str, dict[str, Rate | None]]:
    """The effective limits: the site's ``RATE_LIMITS`` over the defaults; ValueError if invalid."""
    value = settings.RATE_LIMITS
    if value is None:
        return {name: dict.fromkeys(SCOPES) for name in KNOWN_LIMITS}
    if not isinstance(value, dict):
        raise ValueError("RATE_LIMITS must be a dict or None")
    unknown = set(value) - KNOWN_LIMITS
    if unknown:
        raise ValueError(f"unknown RATE_LIMITS keys {sorted(unknown)}; known: {sorted(KNOWN_LIMITS)}")
    merged = {**DEFAULTS["RATE_LIMITS"], **value}
    return {name: _parse_limit(name, merged[name]) for name in KNOWN_LIMITS}


def client_ip(request: HttpRequest) -> str:
    """The address requests are counted under (``network.client_address``); IPv6 clients are
    counted per /64, the block one subscriber usually gets."""
    address = client_address(request.META)
    if address is None:
        return request.META.get("REMOTE_ADDR") or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _form(request: HttpRequest) -> Any:
    """The form body, or an empty dict when there is none or it cannot be read (the view will say so).

    The raw body is read first, so that after a parse error the parsed state can be dropped and the
    view, parsing again, meets the same error and answers it as it always does.
    """
    if request.method != "POST" or request.content_type not in FORM_CONTENT_TYPES:
        return {}
    if hasattr(request, "_post"):  # already parsed (by CsrfViewMiddleware, or the view)
        return request.POST
    try:
        request.body  # noqa: B018
        return request.POST
    except (
        MultiPartParserError,
        RequestDataTooBig,
        TooManyFieldsSent,
        SuspiciousOperation,
        BadRequest,
        RawPostDataException,
    ):
        request.__dict__.pop("_post", None)
        request.__dict__.pop("_files", None)
        return {}


def presented_client(request: HttpRequest) -> tuple[str | None, bool]:
    """(client_id, whether a secret came with it), from HTTP Basic or the form body (RFC 6749 2.3.1)."""
    scheme, _sep, credentials = request.META.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            decoded = ""
        client_id, sep, _secret = decoded.partition(":")
        if sep and client_id:
            return unquote_plus(client_id), True
    form = _form(request)
    client_id = form.get("client_id") if form else None
    if not client_id and request.method in ("GET", "HEAD"):
        client_id = request.GET.get("client_id")
    return (client_id or None), bool(form and form.get("client_secret"))


def _digest(value: str) -> str:
    # Hashed: a client_id may hold characters or lengths that some cache backends refuse in keys.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass
class Counter:
    name: str  # endpoint name or FAILURES
    scope: str  # "ip" or "client"
    identity: str
    rate: Rate

    def key(self, now: float) -> str:
        start, _end = self.rate.window(now)
        return f"{KEY_PREFIX}:{self.name}:{self.scope}:{self.rate.period}:{start}:{_digest(self.identity)}"

    def retry_after(self, now: float) -> int:
        _start, end = self.rate.window(now)
        return max(1, math.ceil(end - now))

    def hit(self, cache: Any, now: float) -> int:
        """Count one request; returns the count in the current window."""
        key = self.key(now)
        timeout = self.retry_after(now) + 1
        if cache.add(key, 1, timeout):
            return 1
        try:
            return cache.incr(key)
        except ValueError:  # expired between add() and incr()
            cache.set(key, 1, timeout)
            return 1


class Limiter:
    """The counters that apply to one request to one endpoint."""

    def __init__(self, endpoint: str, request: HttpRequest, limits: dict[str, dict[str, Rate | None]]):
        self.endpoint = endpoint
        self.ip = client_ip(request)
        self.client_id, with_secret = presented_client(request)
        endpoint_limits = limits[endpoint]
        failure_limits = limits[FAILURES]
        self.ip_counter = self._counter(endpoint, "ip", self.ip, endpoint_limits)
        # Only a client that presented a secret is counted as itself; at the authorization
        # endpoint (per-client counting only if configured) the client_id parameter is counted.
        counts_client = with_secret if endpoint in CLIENT_AUTH_ENDPOINTS else True
        self.client_counter = (
            self._counter(endpoint, "client", self.client_id, endpoint_limits) if counts_client else None
        )
        self.failure_counters = []
        if endpoint in CLIENT_AUTH_ENDPOINTS:
            self.failure_counters = [
                counter
                for counter in (
                    self._counter(FAILURES, "ip", self.ip, failure_limits),
                    self._counter(FAILURES, "client", self.client_id, failure_limits),
                )
                if counter is not None
            ]

    @staticmethod
    def _counter(
        name: str, scope: str, identity: str | None, limits: dict[str, Rate | None]
    ) -> Counter | None:
        rate = limits.get(scope)
        if rate is None or not identity:
            return None
        return Counter(name, scope, identity, rate)

    def check(self, cache: Any, now: float) -> Counter | None:
        """The counter the request exceeds (it is refused), or None; counts the request per IP."""
        peeked = [counter for counter in [*self.failure_counters, self.client_counter] if counter]
        if peeked:
            counts = cache.get_many([counter.key(now) for counter in peeked])
            for counter in peeked:
                if counts.get(counter.key(now), 0) >= counter.rate.limit:
                    return counter
        if self.ip_counter is not None:
            count = self.ip_counter.hit(cache, now)
            if count > self.ip_counter.rate.limit:
                if count == self.ip_counter.rate.limit + 1:
                    logger.warning("Rate limit %r reached for IP %s.", self.endpoint, self.ip)
                return self.ip_counter
        return None

    def record(self, cache: Any, now: float, response: HttpResponse) -> None:
        """Count the answered request against the client, or as a failed client authentication."""
        if response.status_code == 401 and self.endpoint in CLIENT_AUTH_ENDPOINTS:
            for counter in self.failure_counters:
                if counter.hit(cache, now) == counter.rate.limit:
                    logger.warning(
                        "%s failed client authentications from %s %r: refused until the window ends.",
                        counter.rate.limit,
                        counter.scope,
                        counter.identity,
                    )
        elif self.client_counter is not None:
            self.client_counter.hit(cache, now)


def too_many_requests(request: HttpRequest, retry_after: int, *, html: bool) -> HttpResponse:
    """429 in the endpoint's own error format; a page for browsers, never a redirect to the client."""
    description = _("Too many requests. Try again in %(seconds)s seconds.") % {"seconds": retry_after}
    if html:
        response = render(
            request,
            TOO_MANY_REQUESTS_TEMPLATE,
            {"error": "too_many_requests", "description": description, "retry_after": retry_after},
            status=429,
        )
        add_never_cache_headers(response)
    else:
        response = JsonResponse({"error": "too_many_requests", "error_description": description}, status=429)
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
    response["Retry-After"] = str(retry_after)
    return response


def rate_limit(endpoint: str, *, html: bool = False) -> Callable[[Callable], Callable]:
    """Decorate a view with the ``RATE_LIMITS[endpoint]`` and client-authentication-failure limits."""
    if endpoint not in ENDPOINTS:
        raise ImproperlyConfigured(f"Unknown rate-limited endpoint {endpoint!r}")

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "OPTIONS":  # CORS preflights and Allow probes cost nothing
                return view(request, *args, **kwargs)
            try:
                limiter = Limiter(endpoint, request, configured_limits())
                cache = caches[settings.RATE_LIMIT_CACHE]
                now = time.time()
                exceeded = limiter.check(cache, now)
            except Exception:  # fail open: a broken cache or setting must not stop logins
                logger.exception("Rate limiting of %r skipped: the limiter failed.", endpoint)
                return view(request, *args, **kwargs)
            if exceeded is not None:
                return too_many_requests(request, exceeded.retry_after(now), html=html)
            response = view(request, *args, **kwargs)
            try:
                limiter.record(cache, now, response)
            except Exception:
                logger.exception("Rate limiting of %r: could not count the request.", endpoint)
            return response

        return wrapped

    return decorator
