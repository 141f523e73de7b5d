"""The authorization server's public keys, cached per process.

Steady state costs nothing: keys are kept in memory for ``JWKS_CACHE_SECONDS``, so validating a
token makes no HTTP call and no database query. A token signed with a kid we do not know (a key
rotation) triggers one refetch, and refetches are rate-limited to one per
``JWKS_MIN_REFETCH_INTERVAL`` whatever the cause, so random kids cannot turn this API into an
amplifier against the authorization server. A failed fetch keeps the last good key set (logged):
an authorization server that is briefly down does not take the API down with it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db import DatabaseError
from jwcrypto import jwk
from jwcrypto.common import JWException

from . import http
from .conf import on_reload, settings

logger = logging.getLogger(__name__)


class JWKSUnavailable(Exception):
    """No key set could ever be obtained: the tokens cannot be checked (a 503, not the client's fault)."""


@dataclass(frozen=True)
class PublicKey:
    kid: str
    alg: str | None
    jwk: jwk.JWK


def parse_jwks(document: Any) -> dict[str, PublicKey]:
    """The usable signature keys of a JWKS document, by kid.

    Keys without a kid, for encryption (``use: enc``), symmetric (``oct``) or unreadable are left
    out; a private key published by mistake is reduced to its public half.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document (no 'keys' list)")
    keys: dict[str, PublicKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, Mapping):
            continue
        kid, use, alg = entry.get("kid"), entry.get("use"), entry.get("alg")
        if not isinstance(kid, str) or not kid or use not in (None, "sig") or entry.get("kty") == "oct":
            continue
        if alg is not None and not isinstance(alg, str):
            continue
        try:
            key = jwk.JWK(**entry)
            if key.has_private:
                logger.warning(
                    "The JWKS publishes the private part of key %s: only its public part is used.", kid
                )
                key = jwk.JWK(**key.export_public(as_dict=True))
        except (JWException, ValueError, TypeError) as exc:
            logger.warning("Ignoring unreadable JWK %s: %s", kid, exc)
            continue
        keys.setdefault(kid, PublicKey(kid=kid, alg=alg, jwk=key))
    return keys


class _State(NamedTuple):
    keys: dict[str, PublicKey] | None
    fetched_at: float | None  # last successful fetch
    attempted_at: float | None  # last attempt, successful or not
    generation: int


class JWKSCache:
    """A thread-safe key cache around ``fetch()`` (which returns a JWKS document).

    Readers never take the lock: the state is one immutable tuple, swapped whole. Only a refetch
    takes it, and a thread that waited for another's refetch uses that result instead of fetching
    again. The clock is the real monotonic clock (captured here, so freezegun in tests does not
    move it); tests of the timing pass their own.
    """

    def __init__(
        self,
        fetch: Callable[[], Any],
        *,
        cache_seconds: float,
        min_refetch_interval: float,
        name: str = "JWKS",
        clock: Callable[[], float] = time.monotonic,
    ):
        self._fetch = fetch
        self.cache_seconds = cache_seconds
        self.min_refetch_interval = min_refetch_interval
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._state = _State(None, None, None, 0)

    def _fresh(self, state: _State) -> bool:
        if state.keys is None or state.fetched_at is None:
            return False
        return 0 <= self._clock() - state.fetched_at < self.cache_seconds

    def _refresh(self, seen: _State) -> _State:
        with self._lock:
            state = self._state
            if state.generation != seen.generation:
                return state  # another thread fetched (or tried) while we waited: use its result
            now = self._clock()
            if state.attempted_at is not None and 0 <= now - state.attempted_at < self.min_refetch_interval:
                return state  # rate-limited
            try:
                keys = parse_jwks(self._fetch())
            except (http.HTTPError, ValueError, DatabaseError) as exc:
                kept = "keeping the last good key set" if state.keys is not None else "no keys yet"
                logger.warning("Fetching the %s failed (%s): %s.", self.name, exc, kept)
                self._state = state._replace(attempted_at=now, generation=state.generation + 1)
            else:
                self._state = _State(keys, now, now, state.generation + 1)
            return self._state

    def get(self, kid: str) -> PublicKey | None:
        """The key ``kid``, refetching on expiry or on an unknown kid (both rate-limited).

        Raises JWKSUnavailable when no key set was ever fetched.
        """
        state = self._state
        if not self._fresh(state):
            state = self._refresh(state)
        if state.keys is None:
            raise JWKSUnavailable(f"The {self.name} could not be fetched.")
        key = state.keys.get(kid)
        if key is None:
            state = self._refresh(state)
            key = state.keys.get(kid) if state.keys else None
        return key

    def clear(self) -> None:
        with self._lock:
            self._state = _State(None, None, None, self._state.generation + 1)


def _local_jwks() -> dict[str, Any]:
    # In-process mode only: the provider's keys, imported when first needed, never at import time.
    from oauth_server import keys

    return {"keys": list(keys.published_keys().values())}


def _build() -> JWKSCache:
    if settings.jwks_source == "local":
        fetch, name = _local_jwks, "local signing keys"
    else:
        url = settings.jwks_url
        fetch, name = (lambda: http.get_json(url)), f"JWKS at {url}"
    return JWKSCache(
        fetch,
        cache_seconds=settings.JWKS_CACHE_SECONDS,
        min_refetch_interval=settings.JWKS_MIN_REFETCH_INTERVAL,
        name=name,
    )


_cache: JWKSCache | None = None
_build_lock = threading.Lock()


def get_cache() -> JWKSCache:
    """The process-wide cache for the configured source (rebuilt when the settings change)."""
    global _cache
    cache = _cache
    if cache is None:
        with _build_lock:
            if _cache is None:
                _cache = _build()
            cache = _cache
    return cache


def get_key(kid: str) -> PublicKey | None:
    return get_cache().get(kid)


def reset() -> None:
    """Forget the cached keys (the next token fetches them again)."""
    global _cache
    with _build_lock:
        _cache = None


on_reload(reset)
