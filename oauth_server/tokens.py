"""Access tokens: JWTs per RFC 9068 (default) or opaque strings, and their audience (RFC 8707).

DOT calls ``access_token_generator`` (its ACCESS_TOKEN_GENERATOR setting) once per issued token,
after the request is validated; ``resolve_audience`` runs earlier, as a token-request validator, so a
bad ``resource`` is an ``invalid_target`` error response rather than a half-issued token.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from oauthlib.oauth2.rfc6749 import errors

from . import claims as claim_utils
from . import keys
from .conf import settings

JWT_ACCESS_TOKEN_TYPE = "at+jwt"


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


def resolve_audience(request) -> None:
    """Token-request validator: decide the token's ``aud`` and refuse resources the client may not use.

    aud = the requested resources if the client lists them all in ``audiences``; else what the
    authorization code or refresh token was bound to; else the client's audiences; else the site
    default (``DEFAULT_AUDIENCE``, or the issuer).
    """
    client = request.client
    allowed = list(getattr(client, "audiences", None) or [])
    requested = requested_resources(request)
    for resource in requested:
        if resource not in allowed:
            raise InvalidTargetError(
                description=f"The client may not request tokens for the resource {resource!r}.",
                request=request,
            )
    inherited: list[str] = []
    rt = getattr(request, "refresh_token_instance", None)
    if rt is not None and getattr(rt, "resource", None):
        inherited = list(rt.resource)
    audience = requested or inherited or allowed or [settings.DEFAULT_AUDIENCE or issuer(request)]
    request.oauth_server_audience = audience


def _audience(request) -> list[str]:
    audience = getattr(request, "oauth_server_audience", None)
    if audience is None:
        resolve_audience(request)
        audience = request.oauth_server_audience
    return audience


def token_format(client) -> str:
    return (getattr(client, "access_token_format", "") or settings.ACCESS_TOKEN_FORMAT).lower()


def access_token_claims(request, *, jti: str, audience: list[str]) -> dict[str, Any]:
    """The RFC 9068 payload: iss, exp, aud, sub, client_id, iat, jti, scope (+ auth_time for users)."""
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
    if is_user_token and user.last_login is not None:
        payload["auth_time"] = int(user.last_login.timestamp())
    return claim_utils.apply_hook("ACCESS_TOKEN_CLAIMS", request, payload)


def access_token_generator(request) -> str:
    """DOT's ACCESS_TOKEN_GENERATOR: a signed JWT, or an opaque token for clients that want one.

    The jti and audience are left on the request for the validator to store with the token row.
    """
    audience = _audience(request)
    jti = secrets.token_urlsafe(18)
    request.oauth_server_token_meta = {"jti": jti, "audience": audience}
    if token_format(request.client) == "opaque":
        return secrets.token_urlsafe(32)
    return keys.sign(access_token_claims(request, jti=jti, audience=audience), typ=JWT_ACCESS_TOKEN_TYPE)


def refresh_token_generator(request) -> str:
    """Refresh tokens stay opaque: only the authorization server ever reads them."""
    return secrets.token_urlsafe(32)
