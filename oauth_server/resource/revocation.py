"""The "database" revocation check: is the JWT's row still there and valid in the provider's tables?

Only for an API served by the authorization server's own Django site (``oauth_server`` installed,
same database). Revoking an access token deletes its row (DOT), and ``AccessToken.is_valid()`` is
False once the client is disabled or the user deactivated, so a missing or invalid row means
revoked. Answers are cached for ``REVOCATION_CACHE_SECONDS`` (never beyond ``exp``), which is the
longest a revoked token may still be accepted; 0 asks the database on every request.
"""

from __future__ import annotations

import hashlib
import time

from django.apps import apps
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured

from .claims import AccessTokenClaims
from .conf import SETTINGS_NAME, settings

CACHE_PREFIX = "oauth_resource:revoked"


def _lookup(claims: AccessTokenClaims) -> bool:
    if not apps.is_installed("oauth_server"):
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}['REVOCATION_CHECK'] = 'database' needs oauth_server in INSTALLED_APPS; "
            "use 'introspection' in an API that runs apart from the authorization server."
        )
    from oauth_server.lookups import ACCESS_TOKEN_BY_JTI  # the provider's models: only in this mode

    row = ACCESS_TOKEN_BY_JTI.first(jti=claims.jti)
    if row is None or row.application is None or row.application.client_id != claims.client_id:
        return True
    return not row.is_valid()


def _key(jti: str) -> str:
    return f"{CACHE_PREFIX}:{hashlib.sha256(str(jti).encode()).hexdigest()}"


def remember(jti: str, *, revoked: bool, exp: float) -> None:
    """Tell the cache a token's state before anyone asks: for a site that issues the tokens its own
    APIs check. ``revoked=True`` when the token is deleted makes the refusal immediate instead of
    up to ``REVOCATION_CACHE_SECONDS`` late; ``revoked=False`` at issuance spares the first lookup.
    Kept until ``exp`` when revoked, else for at most ``REVOCATION_CACHE_SECONDS``."""
    if not jti:
        return
    remaining = int(exp - time.time())
    timeout = remaining if revoked else min(settings.REVOCATION_CACHE_SECONDS, remaining)
    if timeout > 0:
        caches[settings.CACHE].set(_key(jti), revoked, timeout)


def is_revoked(claims: AccessTokenClaims) -> bool:
    cache = caches[settings.CACHE]
    key = _key(str(claims.jti))
    cached = cache.get(key)
    if cached is not None:
        return bool(cached)
    revoked = _lookup(claims)
    timeout = min(settings.REVOCATION_CACHE_SECONDS, int(claims.exp - time.time()))
    if timeout > 0:
        cache.set(key, revoked, timeout)
    return revoked
