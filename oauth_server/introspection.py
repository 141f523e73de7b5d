"""What introspection (RFC 7662) answers about a token the provider issued, and to whom.

This is the provider's side: the claims of an active token the caller may see. The endpoint itself
(POST, client authentication, JSON errors) is ``views/introspection.py``, which reaches
``introspect`` through the validator's ``introspect_token``; ``resource/introspection.py`` is the
resource-server kit calling an introspection endpoint as a client.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from .claims import loaded_subject
from .conf import settings
from .lookups import ACCESS_TOKEN_BY_CHECKSUM, REFRESH_TOKEN_BY_CHECKSUM
from .models import AccessToken, RefreshToken
from .tokens import issuer, token_checksum


def introspect(token: str, token_type_hint: str | None, caller: Any, request: Any) -> dict[str, Any] | None:
    """RFC 7662 claims of an active token ``caller`` (the authenticated client) may see, or None
    (``{"active": false}``).

    The caller sees tokens issued to itself, and access tokens whose audience is one of its
    ``resource_identifiers`` (a resource server registered as a client). Refresh tokens are
    visible only to their own client. One query per token type tried (one with a right hint).
    """
    checksum = token_checksum(token)
    kinds = (
        ("refresh_token", "access_token")
        if token_type_hint == "refresh_token"
        else ("access_token", "refresh_token")
    )
    for kind in kinds:
        if kind == "access_token":
            found = ACCESS_TOKEN_BY_CHECKSUM.first(checksum=checksum)
            if found is not None:
                return access_token_claims(found, caller, request)
        else:
            found = REFRESH_TOKEN_BY_CHECKSUM.first(checksum=checksum)
            if found is not None:
                return refresh_token_claims(found, caller, request)
    return None


def _timestamp(value) -> int:
    return int(value.timestamp())


def access_token_claims(token: AccessToken, caller: Any, request: Any) -> dict[str, Any] | None:
    """The claims of a valid access token issued to ``caller`` or for one of its resources, else None."""
    audience = token.audience.split()
    own = token.application_id == caller.pk
    if not own and not set(audience) & set(caller.resource_identifiers or []):
        return None
    if token.application is None or not token.is_valid():
        return None
    data: dict[str, Any] = {
        "scope": token.scope,
        "client_id": token.application.client_id,
        "token_type": "Bearer",
        "exp": _timestamp(token.expires),
        "iat": _timestamp(token.created),
        # RFC 9068: the user's opaque sub, or the client itself for client_credentials tokens.
        "sub": loaded_subject(token.user) if token.user_id else token.application.client_id,
        "iss": issuer(request),
    }
    if audience:
        data["aud"] = audience[0] if len(audience) == 1 else audience
    if token.jti:
        data["jti"] = token.jti
    if token.act:
        data["act"] = token.act  # RFC 8693 4.1: a delegation token says who acts for the user
    if token.dpop_jkt:  # RFC 9449 6.2: a DPoP-bound token
        data["token_type"] = "DPoP"
        data["cnf"] = {"jkt": token.dpop_jkt}
    return data


def refresh_token_claims(token: RefreshToken, caller: Any, request: Any) -> dict[str, Any] | None:
    """The claims of ``caller``'s own refresh token while it can still refresh, else None."""
    client = token.application
    if client is None or token.application_id != caller.pk or not client.is_enabled:
        return None
    if token.access_token is None or (token.user_id and not token.user.is_active):
        return None  # an orphan (its access token was revoked) can no longer refresh
    lifetime = client.refresh_token_lifetime or settings.REFRESH_TOKEN_LIFETIME
    expires = token.created + timedelta(seconds=lifetime) if lifetime else None
    if expires is not None and expires <= timezone.now():
        return None
    data: dict[str, Any] = {
        "scope": token.access_token.scope,
        "client_id": client.client_id,
        "token_type": "refresh_token",
        "iat": _timestamp(token.created),
        "sub": loaded_subject(token.user) if token.user_id else client.client_id,
        "iss": issuer(request),
    }
    if expires is not None:
        data["exp"] = _timestamp(expires)
    return data
