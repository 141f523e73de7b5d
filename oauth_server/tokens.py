"""Access tokens: JWTs per RFC 9068 (default) or opaque strings, their audience (RFC 8707), and the
hashes of token values (``token_checksum``: the stored form of every token and code; ``at_hash``).

DOT calls ``access_token_generator`` (its ACCESS_TOKEN_GENERATOR setting) once per issued token,
after the request is validated; ``resolve_audience`` runs earlier, as a token-request validator, so a
bad ``resource`` is an ``invalid_target`` error response rather than a half-issued token.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from typing import Any

from oauth2_provider.oauth2_validators import is_valid_resource_uri
from oauthlib.oauth2.rfc6749 import errors

from . import claims as claim_utils
from . import keys
from .conf import settings
from .request_state import AccessTokenMeta, state_of

logger = logging.getLogger(__name__)

JWT_ACCESS_TOKEN_TYPE = "at+jwt"

# Claims the server decides and a site's ACCESS_TOKEN_CLAIMS hook may not change (RFC 9068 2.2, 7519).
PROTECTED_ACCESS_TOKEN_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope", "auth_time", "cnf", "act"}
)


class InvalidTargetError(errors.OAuth2Error):
    """RFC 8707 2: the requested resource is invalid, unknown, or not allowed for this client."""

    error = "invalid_target"
    status_code = 400


def issuer(request) -> str:
    from oauth2_provider.settings import oauth2_settings

    return oauth2_settings.oidc_issuer(request)


def requested_resources(request) -> list[str]:
    """Every ``resource`` parameter of the request (RFC 8707 allows repeating it)."""
    values = [value for key, value in (getattr(request, "decoded_body", None) or []) if key == "resource"]
    if not values:
        single = getattr(request, "resource", None)
        if isinstance(single, str) and single:
            values = [single]
        elif isinstance(single, list):
            values = [v for v in single if isinstance(v, str)]
    return list(dict.fromkeys(values))


def _bound_resources(request) -> list[str]:
    """What the authorization code (its ``resource`` at the authorization endpoint) or the refresh
    token (its token request's ``resource``) was bound to."""
    if request.grant_type == "authorization_code":
        return state_of(request).grant_resource
    rt = getattr(request, "refresh_token_instance", None)
    if request.grant_type == "refresh_token" and rt is not None:
        return list(getattr(rt, "resource", None) or [])
    return []


def resolve_audience(request) -> None:
    """Token-request validator: decide the token's ``aud`` and refuse resources the client may not use.

    aud = the requested resources if the client lists them all in ``audiences``; else what the
    authorization code or refresh token was bound to; else the client's audiences; else the site
    default (``DEFAULT_AUDIENCE``, or the issuer).

    Every check DOT makes later, while saving the token (absolute URI, no escalation beyond the
    code's or refresh token's resources), is made here first: this runs before anything is signed
    or saved, so a refused ``resource`` leaves no ID token row behind and the code unused.
    """
    client = request.client
    allowed = list(getattr(client, "audiences", None) or [])
    requested = requested_resources(request)
    bound = _bound_resources(request)
    for resource in requested or bound:
        if resource not in allowed or not is_valid_resource_uri(resource):
            raise InvalidTargetError(
                description=f"The client may not request tokens for the resource {resource!r}.",
                request=request,
            )
        if requested and bound and resource not in bound:
            raise InvalidTargetError(
                description=f"The resource {resource!r} was not part of the original grant.",
                request=request,
            )
    audience = requested or bound or allowed or [settings.DEFAULT_AUDIENCE or issuer(request)]
    state_of(request).audience = audience


def _audience(request) -> list[str]:
    state = state_of(request)
    if state.audience is None:
        resolve_audience(request)
    return state.audience


def token_format(client) -> str:
    return (getattr(client, "access_token_format", "") or settings.ACCESS_TOKEN_FORMAT).lower()


def signing_key(request) -> keys.ActiveKey:
    """The active key, or oauthlib's ``server_error`` (HTTP 500, JSON) when it cannot be decrypted.

    A key nobody can decrypt is the operator's misconfiguration: it is logged as an error, and the
    client gets a well-formed error it may retry later instead of Django's HTML 500 page.
    """
    try:
        return keys.active_key()
    except keys.KeyDecryptionError as exc:
        logger.error("Cannot sign tokens: %s", exc)
        raise errors.ServerError(
            description="The authorization server cannot issue tokens at the moment.",
            request=request,
            status_code=500,
        ) from exc


def auth_time(request) -> int | None:
    """When the user authenticated, as carried by the code (``Grant.auth_time``) or refresh token."""
    value = getattr(request, "auth_time", None)
    return int(value.timestamp()) if value is not None else None


def access_token_claims(request, *, jti: str, audience: list[str]) -> dict[str, Any]:
    """The RFC 9068 payload: iss, exp, aud, sub, client_id, iat, jti, scope (+ auth_time for users).

    ``auth_time`` is the authentication of the session that approved the code, carried through
    refreshes, never ``user.last_login`` (which another session may have moved since).
    """
    now = int(time.time())
    client = request.client
    user = getattr(request, "user", None)
    is_user_token = request.grant_type != "client_credentials" and user is not None and user.is_authenticated
    payload: dict[str, Any] = {
        "iss": issuer(request),
        "exp": now + int(request.expires_in),
        "aud": audience[0] if len(audience) == 1 else audience,
        "sub": claim_utils.subject_for(user) if is_user_token else client.client_id,
        "client_id": client.client_id,
        "iat": now,
        "jti": jti,
        "scope": " ".join(request.scopes or []),
    }
    jkt = state_of(request).dpop_jkt
    if jkt:  # RFC 9449 6.1: the token is bound to the DPoP proof's key
        payload["cnf"] = {"jkt": jkt}
    authenticated_at = auth_time(request) if is_user_token else None
    if authenticated_at is not None:
        payload["auth_time"] = authenticated_at
    exchange = state_of(request).exchange
    if exchange is not None and exchange.act is not None:
        payload["act"] = exchange.act  # RFC 8693 4.1: who acts for the user (grants/token_exchange.py)
    return claim_utils.apply_hook("ACCESS_TOKEN_CLAIMS", request, payload, PROTECTED_ACCESS_TOKEN_CLAIMS)


def access_token_generator(request) -> str:
    """DOT's ACCESS_TOKEN_GENERATOR: a signed JWT, or an opaque token for clients that want one.

    The jti, audience and exp are left in the request's state for the validator to store with the
    token row (request_state.py).
    """
    audience = _audience(request)
    jti = secrets.token_urlsafe(18)
    meta = state_of(request).token_meta = AccessTokenMeta(jti=jti, audience=audience)
    if token_format(request.client) == "opaque":
        meta.format = "opaque"
        return secrets.token_urlsafe(32)
    key = signing_key(request)
    payload = access_token_claims(request, jti=jti, audience=audience)
    meta.exp = payload["exp"]
    return keys.sign(payload, typ=JWT_ACCESS_TOKEN_TYPE, key=key)


def refresh_token_generator(request) -> str:
    """Refresh tokens stay opaque: only the authorization server ever reads them."""
    return secrets.token_urlsafe(32)


# --- hashes of token values ----------------------------------------------------------------------------
def token_checksum(value: str) -> str:
    """The stored form of a token or authorization code (DOT's COMPLIANT_BCP_RFC9700_TOKEN_STORAGE,
    our code hashing): its SHA-256. Every lookup hashes the presented value."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


# OIDC Core 3.1.3.6: the hash of the ID token's alg; Ed25519 (EdDSA) signs with SHA-512.
_AT_HASH_FUNCTIONS = {"RS256": hashlib.sha256, "ES256": hashlib.sha256, "EdDSA": hashlib.sha512}


def at_hash(access_token: str, algorithm: str) -> str:
    """The ID token's ``at_hash``: the base64url left-most half of the hash of the access token, for
    an ID token signed with ``algorithm`` (oauthlib always uses SHA-256, wrong for EdDSA)."""
    digest = _AT_HASH_FUNCTIONS[algorithm](access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
