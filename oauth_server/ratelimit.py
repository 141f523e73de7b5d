"""Rate limits for the token, authorization, introspection, revocation and registration endpoints, and failed
sign-ins at the app's login view (docs/abuse.md).

Fixed-window counters in Django's cache (``OAUTH_SERVER["RATE_LIMIT_CACHE"]``): one counter per
endpoint and client IP, one per endpoint and authenticated client, and stricter ones counting only
*failed* authentications (``FailureLimiter``): ``401 invalid_client`` at the client-authenticating
endpoints, a refused password at ``views/login.py``. Failures are counted per address and per
subject (client_id, account) *and* address, so the guesser is throttled, never the victim: a third
party cannot lock a client or a user out from elsewhere. A much higher per-subject ceiling stops a
distributed guesser without a lockout: once reached, it refuses only addresses that already failed
for that subject.

The decorator wraps a view in ``urls.py``; it judges a request by what the view answered rather
than by re-doing client authentication, so it needs no hook in the validator:

- the per-IP counter is incremented before the view runs (atomic ``incr``: concurrent requests
  cannot overshoot it);
- the per-client counter counts only requests whose client presented a secret and was not
  refused, so nobody can spend a confidential client's budget without its secret; public
  clients (whose client_id anyone may send) are limited per IP only;
- the failure counters are checked before and incremented after a 401; once the address (or the
  client from that address) is full, even the right secret is refused *from that address* until
  the window ends; the client keeps working from everywhere else.

A cache failure never takes an endpoint down: the request is served and the error logged.
"""

from __future__ import annotations

import contextlib
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

from django.core.cache import caches
from django.core.exceptions import (
    ImproperlyConfigured,
)
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from .conf import DEFAULTS, settings
from .network import client_address
from .request_state import credentials_of

logger = logging.getLogger("oauth_server.ratelimit")

ENDPOINTS = ("token", "authorize", "introspect", "revoke", "par", "register", "device_authorization")
# Endpoints where nobody authenticates with a client secret: a string rate limits per IP only.
IP_ONLY_ENDPOINTS = frozenset(("authorize", "register"))
FAILURES = "client_auth_failures"
LOGIN_FAILURES = "login_failures"
USER_CODE_FAILURES = "user_code_failures"
KNOWN_LIMITS = frozenset((*ENDPOINTS, FAILURES, LOGIN_FAILURES, USER_CODE_FAILURES))
# Endpoints where clients authenticate, so a 401 is a failed client authentication.
CLIENT_AUTH_ENDPOINTS = frozenset(("token", "introspect", "revoke", "par", "device_authorization"))
SCOPES = ("ip", "client")
# Failure limits: (per address, per subject and address, per subject ceiling). The ceiling never
# locks a subject out: it only refuses addresses that already failed for it (FailureLimiter).
FAILURE_SCOPES = {
    FAILURES: ("ip", "client_ip", "client"),
    LOGIN_FAILURES: ("ip", "account_ip", "account"),
    USER_CODE_FAILURES: ("ip", "user_ip", "user"),
}
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
KEY_PREFIX = "oauth_server:ratelimit"
TOO_MANY_REQUESTS_TEMPLATE = "oauth_server/too_many_requests.html"
# The bodies the endpoints read parameters from (DOT reads request.POST, which parses both).


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


def scopes_of(name: str) -> tuple[str, ...]:
    """The scopes a ``RATE_LIMITS`` key accepts in its dict form."""
    return FAILURE_SCOPES.get(name, SCOPES)


def _parse_limit(name: str, value: Any) -> dict[str, Rate | None]:
    scopes = scopes_of(name)
    if value is None:
        return dict.fromkeys(scopes)
    if isinstance(value, str):
        rate = parse_rate(value)
        if name in FAILURE_SCOPES:
            return dict.fromkeys(scopes, rate)
        # At the authorization endpoint nobody authenticates and any client_id can be typed in a
        # URL: counting per client there would let anyone lock every user out of an application.
        # A site that wants it anyway sets {"ip": ..., "client": ...}.
        # The same holds at the registration endpoint, where no client exists yet.
        return {"ip": rate, "client": None if name in IP_ONLY_ENDPOINTS else rate}
    if isinstance(value, dict):
        unknown = set(value) - set(scopes)
        if unknown:
            raise ValueError(f"{name}: unknown keys {sorted(unknown)} (use {', '.join(map(repr, scopes))})")
        return {scope: None if value.get(scope) is None else parse_rate(value[scope]) for scope in scopes}
    raise ValueError(f"{name}: expected a rate string, a dict with {'/'.join(map(repr, scopes))}, or None")


_parsed: dict[str, tuple[Any, Any]] = {}


def _parsed_setting(name: str, parse: Callable[[Any], Any]) -> Any:
    """``parse(settings.<name>)``, parsed once per value of the setting rather than on every request:
    ``conf.settings`` hands out the same object until the settings change (``setting_changed``)."""
    value = getattr(settings, name)
    hit = _parsed.get(name)
    if hit is not None and hit[0] is value:
        return hit[1]
    result = parse(value)
    _parsed[name] = (value, result)
    return result


def configured_limits() -> dict[str, dict[str, Rate | None]]:
    """The effective limits: the site's ``RATE_LIMITS`` over the defaults; ValueError if invalid."""
    return _parsed_setting("RATE_LIMITS", _configured_limits)


def _configured_limits(value: Any) -> dict[str, dict[str, Rate | None]]:
    if value is None:
        return {name: dict.fromkeys(scopes_of(name)) for name in KNOWN_LIMITS}
    if not isinstance(value, dict):
        raise ValueError("RATE_LIMITS must be a dict or None")
    unknown = set(value) - KNOWN_LIMITS
    if unknown:
        raise ValueError(f"unknown RATE_LIMITS keys {sorted(unknown)}; known: {sorted(KNOWN_LIMITS)}")
    merged = {**DEFAULTS["RATE_LIMITS"], **value}
    return {name: _parse_limit(name, merged[name]) for name in KNOWN_LIMITS}


def client_overrides() -> dict[str, dict[str, dict[str, Rate | None]]]:
    """``CLIENT_RATE_LIMITS`` parsed: {client_id: {endpoint: {"ip": rate, "client": rate}}}; a
    ValueError says what is wrong. Only the client-authenticating endpoints can be overridden: an
    override applies once the client presented its credentials."""
    return _parsed_setting("CLIENT_RATE_LIMITS", _client_overrides)


def _client_overrides(value: Any) -> dict[str, dict[str, dict[str, Rate | None]]]:
    value = value or {}
    if not isinstance(value, dict):
        raise ValueError("CLIENT_RATE_LIMITS must be a dict of client_id to {endpoint: rate}")
    parsed = {}
    for client_id, limits in value.items():
        if not isinstance(client_id, str) or not isinstance(limits, dict):
            raise ValueError(f"CLIENT_RATE_LIMITS[{client_id!r}] must be a dict of endpoint to rate")
        unknown = set(limits) - CLIENT_AUTH_ENDPOINTS
        if unknown:
            raise ValueError(
                f"CLIENT_RATE_LIMITS[{client_id!r}]: {sorted(unknown)} cannot be set per client; "
                f"known: {sorted(CLIENT_AUTH_ENDPOINTS)}"
            )
        parsed[client_id] = {name: _parse_limit(name, rate) for name, rate in limits.items()}
    return parsed


def client_ip(request: HttpRequest) -> str:
    """The address requests are counted under (``network.client_address``); IPv6 clients are
    counted per /64, the block one subscriber usually gets."""
    address = client_address(request.META)
    if address is None:
        return request.META.get("REMOTE_ADDR") or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def presented_client(request: HttpRequest) -> tuple[str | None, bool]:
    """(client_id, whether a credential came with it), from the request's parsed credentials."""
    credentials = credentials_of(request)
    return (credentials.client_id or None), credentials.presents_credential


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
        """Count one request; returns the count in the current window.

        ``incr`` first: in a busy window the key exists, and one operation counts (``add`` first
        cost two on every request after the window's first). The key's expiry, set by the ``add``
        that created it, is kept by ``incr``.
        """
        key = self.key(now)
        try:
            return cache.incr(key)
        except ValueError:  # the window's first request (or its key just expired)
            pass
        timeout = self.retry_after(now) + 1
        if cache.add(key, 1, timeout):
            return 1
        try:
            return cache.incr(key)  # another request created it in between
        except ValueError:  # and it expired in between too
            cache.set(key, 1, timeout)
            return 1


# A count no window reaches: the subject+address counter when only the ceiling needs it.
UNLIMITED = 2**62


def _counter(name: str, scope: str, identity: str | None, rate: Rate | None) -> Counter | None:
    if rate is None or not identity:
        return None
    return Counter(name, scope, identity, rate)


class FailureLimiter:
    """Failed authentications of one subject (a client_id, an account) from one address.

    Throttles the guesser, not the victim. Up to three counters (``RATE_LIMITS[name]``):

    - per address: every failure from it, whatever the subject (one address trying many subjects);
    - per subject and address: one address guessing one subject's secret or password;
    - per subject, a ceiling: the subject's failures from everywhere. Reaching it refuses only the
      addresses that already failed for the subject in their subject+address window, so the real
      client or user, from an address that did not fail, is still served. A distributed guesser
      then gets about one guess per address and window instead of the per-address allowance.

    Once a counter refuses an address, the right secret or password from it is refused too until
    the window ends (otherwise the limit would only tell the guesser when it has won).

    Two ways to count: ``check()`` then ``failed()`` (client authentication: the endpoint's answer
    says whether it failed), or ``reserve()`` then ``release()``/``confirm()`` (sign-in: the
    attempt is counted atomically before the password is checked, so concurrent guesses cannot
    overshoot the limit, and given back when it succeeds).
    """

    def __init__(self, name: str, ip: str, subject: str | None, limits: dict[str, dict[str, Rate | None]]):
        self.name = name
        self.ip = ip
        ip_scope, pair_scope, subject_scope = FAILURE_SCOPES[name]
        rates = limits[name]
        self.ip_counter = _counter(name, ip_scope, ip, rates[ip_scope])
        self.ceiling = _counter(name, subject_scope, subject, rates[subject_scope])
        pair_rate = rates[pair_scope]
        if pair_rate is None and self.ceiling is not None:
            # Not a limit: only tells the ceiling whether this address failed for the subject.
            pair_rate = Rate(UNLIMITED, self.ceiling.rate.period)
        # An IP holds no space, so "<ip> <subject>" cannot collide with another pair.
        self.pair_counter = _counter(name, pair_scope, subject and f"{ip} {subject}", pair_rate)

    @property
    def counters(self) -> list[Counter]:
        return [c for c in (self.ip_counter, self.pair_counter, self.ceiling) if c is not None]

    def keys(self, now: float) -> list[str]:
        """The keys ``refusing()`` needs, to be read in one ``get_many`` with others."""
        return [counter.key(now) for counter in self.counters]

    def refusing(self, counts: dict[str, int], now: float, *, offset: int = 0) -> Counter | None:
        """The counter that refuses this address given the counts read (``offset``: how many of
        the ip and pair counts are this request's own reservation), or None."""

        def count(counter: Counter | None) -> int:
            return counts.get(counter.key(now), 0) - offset if counter is not None else 0

        for counter in (self.ip_counter, self.pair_counter):
            if counter is not None and count(counter) >= counter.rate.limit:
                return counter
        if (
            self.ceiling is not None
            and counts.get(self.ceiling.key(now), 0) >= self.ceiling.rate.limit
            and count(self.pair_counter) > 0
        ):
            return self.ceiling
        return None

    def check(self, cache: Any, now: float) -> Counter | None:
        """Peek (nothing counted): the counter that refuses this address, or None."""
        keys = self.keys(now)
        return self.refusing(cache.get_many(keys), now) if keys else None

    def failed(self, cache: Any, now: float) -> None:
        """Count one failure on every counter."""
        for counter in self.counters:
            self._hit(counter, cache, now)

    def reserve(self, cache: Any, now: float) -> Counter | None:
        """Count this attempt as a failure on the address counters before the credentials are
        checked (atomic: no overshoot); the counter that refuses it, or None."""
        counts = {}
        for counter in (self.ip_counter, self.pair_counter):
            if counter is not None:
                counts[counter.key(now)] = self._hit(counter, cache, now, warn_at=counter.rate.limit + 1)
        if self.ceiling is not None:
            counts[self.ceiling.key(now)] = cache.get(self.ceiling.key(now), 0)
        return self.refusing(counts, now, offset=1)

    def release(self, cache: Any, now: float) -> None:
        """The reserved attempt succeeded: it was no failure (``now`` as given to ``reserve``)."""
        for counter in (self.ip_counter, self.pair_counter):
            if counter is not None:
                with contextlib.suppress(ValueError):  # the key expired meanwhile
                    cache.decr(counter.key(now))

    def confirm(self, cache: Any, now: float) -> None:
        """The reserved attempt failed: count it on the subject's ceiling too."""
        if self.ceiling is not None:
            self._hit(self.ceiling, cache, now)

    def _hit(self, counter: Counter, cache: Any, now: float, warn_at: int | None = None) -> int:
        count = counter.hit(cache, now)
        if count == (counter.rate.limit if warn_at is None else warn_at):
            logger.warning(
                "%s: %s failures per %s reached for %r: refused from there until the window ends.",
                self.name,
                counter.rate.limit,
                counter.scope,
                counter.identity[:200],
            )
        return count

    def first_refusal(self, counter: Counter, cache: Any, now: float) -> bool:
        """True once per counter, address and window: to audit a throttle without letting the
        throttled guesser write one event per request."""
        key = f"{counter.key(now)}:refused:{_digest(self.ip)}"
        return bool(cache.add(key, 1, counter.retry_after(now) + 1))


class Limiter:
    """The counters that apply to one request to one endpoint."""

    def __init__(self, endpoint: str, request: HttpRequest, limits: dict[str, dict[str, Rate | None]]):
        self.endpoint = endpoint
        self.ip = client_ip(request)
        self.client_id, with_secret = presented_client(request)
        endpoint_limits = limits[endpoint]
        if with_secret and endpoint in CLIENT_AUTH_ENDPOINTS and settings.CLIENT_RATE_LIMITS:
            # A wrong secret still counts as a failure (below), so claiming a busy client's id
            # buys a guesser no more than client_auth_failures allows.
            endpoint_limits = client_overrides().get(self.client_id, {}).get(endpoint, endpoint_limits)
        self.ip_counter = _counter(endpoint, "ip", self.ip, endpoint_limits["ip"])
        # Only a client that presented a secret is counted as itself; at the authorization
        # endpoint (per-client counting only if configured) the client_id parameter is counted.
        counts_client = with_secret if endpoint in CLIENT_AUTH_ENDPOINTS else True
        self.client_counter = (
            _counter(endpoint, "client", self.client_id, endpoint_limits["client"]) if counts_client else None
        )
        self.failures = (
            FailureLimiter(FAILURES, self.ip, self.client_id, limits)
            if endpoint in CLIENT_AUTH_ENDPOINTS
            else None
        )

    def check(self, cache: Any, now: float) -> Counter | None:
        """The counter the request exceeds (it is refused), or None; counts the request per IP."""
        keys = self.failures.keys(now) if self.failures is not None else []
        if self.client_counter is not None:
            keys.append(self.client_counter.key(now))
        if keys:
            counts = cache.get_many(keys)
            refusing = self.failures.refusing(counts, now) if self.failures is not None else None
            if refusing is not None:
                return refusing
            if (
                self.client_counter is not None
                and counts.get(self.client_counter.key(now), 0) >= self.client_counter.rate.limit
            ):
                return self.client_counter
        if self.ip_counter is not None:
            count = self.ip_counter.hit(cache, now)
            if count > self.ip_counter.rate.limit:
                if count == self.ip_counter.rate.limit + 1:
                    logger.warning("Rate limit %r reached for IP %s.", self.endpoint, self.ip)
                return self.ip_counter
        return None

    def record(self, cache: Any, now: float, response: HttpResponse) -> None:
        """Count the answered request against the client, or as a failed client authentication."""
        if response.status_code == 401 and self.failures is not None:
            self.failures.failed(cache, now)
        elif self.client_counter is not None:
            self.client_counter.hit(cache, now)


class AttemptThrottle:
    """The failure counters of one attempt a person makes (a sign-in, a device user code).

    The attempt is counted as a failure before it is checked (``FailureLimiter.reserve``: atomic,
    so parallel guesses cannot overshoot), then given back if it succeeds or counted against the
    subject's ceiling if not (``finish``). A refusal is a 429 page, audited once per counter,
    address and window (``audit_refusal``, the subclass's event). Fails open: a broken cache or
    setting is logged and the attempt proceeds unthrottled.
    """

    limit_name: str  # the RATE_LIMITS key
    label = "Throttling"  # for log lines

    def __init__(self, request: HttpRequest, subject: str | None):
        self.request = request
        self.limiter: FailureLimiter | None = None
        self.refused: Counter | None = None
        try:
            limits = configured_limits()
            self.cache = caches[settings.RATE_LIMIT_CACHE]
            self.now = time.time()
            limiter = FailureLimiter(self.limit_name, client_ip(request), subject, limits)
            self.refused = limiter.reserve(self.cache, self.now)
            self.limiter = limiter
        except Exception:
            logger.exception("%s skipped: the limiter failed.", self.label)

    def audit_refusal(self, counter: Counter, retry_after: int) -> None:
        raise NotImplementedError

    def refusal(self) -> HttpResponse:
        """429 with the too-many-requests page; audited once per counter, address and window."""
        counter = self.refused
        assert counter is not None and self.limiter is not None
        retry_after = counter.retry_after(self.now)
        try:
            first = self.limiter.first_refusal(counter, self.cache, self.now)
        except Exception:
            logger.exception("%s: could not tell whether the refusal was audited.", self.label)
            first = True
        if first:
            self.audit_refusal(counter, retry_after)
        return too_many_requests(self.request, retry_after, html=True)

    def finish(self, *, succeeded: bool) -> None:
        """Give the attempt back if it succeeded, else count it against the subject's ceiling."""
        if self.limiter is None:
            return
        try:
            if succeeded:
                self.limiter.release(self.cache, self.now)
            else:
                self.limiter.confirm(self.cache, self.now)
        except Exception:
            logger.exception("%s: could not count the attempt.", self.label)


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
