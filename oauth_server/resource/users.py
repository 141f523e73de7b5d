"""From a token to a Django user, for an API running inside the authorization server's site.

A token's ``sub`` is an opaque identifier stored in the provider's ``Subject`` table, so this
needs ``oauth_server`` installed; it is imported only when called. An API elsewhere keys its own
data by ``sub`` instead.
"""

from __future__ import annotations

from typing import Any

from .tokens import AccessTokenClaims


def user_for_token(claims: AccessTokenClaims) -> Any | None:
    """The active user the token speaks for; None for a client-credentials token or an unknown or
    inactive user. One query; not cached (the user may change)."""
    from oauth_server.claims import user_for_subject

    user = user_for_subject(claims.sub)
    if user is None or not user.is_active:
        return None
    return user
