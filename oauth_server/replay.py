"""Single-use identifiers (a client assertion's ``jti``, later a DPoP proof's), shared by all processes.

``first_use`` records an identifier until it expires and says whether this was its first use. It
uses ``cache.add`` (atomic set-if-absent) on ``OAUTH_SERVER["REPLAY_CACHE"]``, a cache alias that
must be shared by every server process in production (Redis, Memcached or the database cache).
When the cache fails, the identifier is refused: a replay cache that cannot remember must not let
a replay through.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.core.cache import caches

from .conf import settings

logger = logging.getLogger(__name__)
KEY_PREFIX = "oauth_server:replay"


def first_use(namespace: str, identifier: str, expires_at: float) -> bool:
    """True the first time ``identifier`` is seen in ``namespace`` before ``expires_at`` (epoch s)."""
    digest = hashlib.sha256(f"{namespace}\x00{identifier}".encode("utf-8", "surrogatepass")).hexdigest()
    timeout = max(1, math.ceil(expires_at - time.time()) + settings.CLOCK_SKEW_SECONDS)
    try:
        return bool(caches[settings.REPLAY_CACHE].add(f"{KEY_PREFIX}:{digest}", 1, timeout))
    except Exception:  # noqa: BLE001 - any backend error: refuse rather than allow a replay
        logger.exception("Replay cache %r failed; refusing %s", settings.REPLAY_CACHE, namespace)
        return False
