"""Validating an access token: RFC 9068 JWTs offline, opaque tokens through RFC 7662 introspection.

``validate_access_token(token)`` is the whole kit in one call; everything else (DRF, decorators)
wraps it. It returns ``AccessTokenClaims`` or raises ``InvalidToken`` with the failed check as its
reason (``ServiceUnavailable`` when the token cannot be checked at all).

A JWT is checked in the order of docs/resource-servers.md: shape, ``typ`` (``at+jwt``: an ID
token signed with the same keys is refused), ``alg`` in the allow-list, key by ``kid`` (refetching
once on an unknown kid), the key's own ``alg``, signature, ``iss``, ``aud``, ``exp``/``nbf``/``iat``
with ``LEEWAY``, then ``sub``/``client_id``/``scope``; then, when configured, revocation.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from django.utils.translation import gettext as _
from jwcrypto.common import base64url_decode
from jwcrypto.jwa import JWA

from . import introspection, jwks, revocation
from .claims import AccessTokenClaims
from .conf import on_reload, settings
from .errors import InvalidToken, ServiceUnavailable

# RFC 9068 2.1 / 4: the media type of JWT access tokens, "application/" prefix optional.
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
# Far above any token we issue; refuses megabyte "tokens" before any parsing.
MAX_TOKEN_LENGTH = 8192

# Signatures already verified in this process: token -> (kid, the key that verified it, payload).
# A client sends the same token with every call for its lifetime, and checking the header, the
# signature and decoding the payload cost more than everything else an API does to authenticate a
# call (docs/performance.md). A hit stands only while the same key object is in the JWKS cache (a
# key gone from the issuer's set stops its tokens at the next refetch); the claims (exp, nbf, aud,
# iss...) and revocation are checked on every call. Emptied when full and when the settings change.
VERIFIED_CACHE_SIZE = 1024
_verified: dict[str, tuple[str, Any, dict[str, Any]]] = {}
on_reload(_verified.clear)


# --- helpers --------------------------------------------------------------------------------------------
# A base64url segment without padding (RFC 7515 2): anything else is no JWS of ours.
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


def _b64json(segment: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidToken(_("The access token is malformed.")) from exc


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _audience_list(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def check_claims(claims: Mapping[str, Any], *, source: str, audience: Any = None) -> AccessTokenClaims:
    """The claim checks shared by JWTs and introspection answers (iss, aud, times, identities).

    ``audience``: the identifier(s) of the API asking, when it is not the site's ``AUDIENCE``.
    """
    accepted = settings.audiences_for(audience)
    # An introspection answer comes straight from the issuer; RFC 7662 makes its iss optional.
    if source == "introspection" and "iss" not in claims:
        claims = {**claims, "iss": settings.issuer}
    if claims.get("iss") != settings.issuer:
        raise InvalidToken(_("The access token was not issued by the expected issuer."))
    token_audience = _audience_list(claims.get("aud"))
    if not token_audience or not set(token_audience) & accepted:
        raise InvalidToken(_("The access token is not meant for this API (aud)."))
    now, leeway = time.time(), settings.LEEWAY
    exp = claims.get("exp")
    if not _number(exp):
        raise InvalidToken(_("The access token has no expiry (exp)."))
    if now >= exp + leeway:
        raise InvalidToken(_("The access token has expired."))
    nbf = claims.get("nbf")
    if nbf is not None and (not _number(nbf) or nbf > now + leeway):
        raise InvalidToken(_("The access token is not valid yet (nbf)."))
    iat = claims.get("iat")
    if iat is not None and (not _number(iat) or iat > now + leeway):
        raise InvalidToken(_("The access token was issued in the future (iat)."))
    sub, client_id = claims.get("sub"), claims.get("client_id")
    if not isinstance(sub, str) or not sub or not isinstance(client_id, str) or not client_id:
        raise InvalidToken(_("The access token has no subject or client (sub, client_id)."))
    scope = claims.get("scope", "" if source == "introspection" else None)
    if not isinstance(scope, str):
        raise InvalidToken(_("The access token has no scope claim."))
    jti = claims.get("jti")
    return AccessTokenClaims(
        sub=sub,
        client_id=client_id,
        scopes=frozenset(scope.split()),
        aud=token_audience,
        exp=int(exp),
        iss=claims["iss"],
        jti=jti if isinstance(jti, str) and jti else None,
        claims=MappingProxyType(dict(claims)),
        source=source,
    )


# --- JWT ------------------------------------------------------------------------------------------------
def _verified_payload(token: str, header_segment: str) -> dict[str, Any]:
    hit = _verified.get(token)
    if hit is not None:
        kid, key, payload = hit
        try:
            if jwks.get_key(kid) is key:
                return payload
        except jwks.JWKSUnavailable as exc:
            raise ServiceUnavailable() from exc
    header = _b64json(header_segment)
    if not isinstance(header, dict):
        raise InvalidToken(_("The access token is malformed."))
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise InvalidToken(_("This is not an access token (typ must be at+jwt)."))
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in settings.algorithms:
        raise InvalidToken(_("The access token's signing algorithm is not accepted."))
    if "crit" in header:
        raise InvalidToken(_("The access token uses unsupported critical header parameters."))
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidToken(_("The access token names no signing key (kid)."))
    try:
        key = jwks.get_key(kid)
    except jwks.JWKSUnavailable as exc:
        raise ServiceUnavailable() from exc
    if key is None:
        raise InvalidToken(_("The access token was signed with an unknown key."))
    if key.alg is not None and key.alg != alg:
        raise InvalidToken(_("The access token's algorithm does not match its key."))
    # The compact form checked by hand around jwcrypto's algorithm (RFC 7515 5.2): a jwcrypto JWS
    # object deep-copies its header registry on creation, which cost more than the verification
    # itself on every API call. ``alg`` is one of ALGORITHMS (asymmetric only) and the key's own.
    header_b64, payload_b64, signature_b64 = token.split(".")
    if not all(_SEGMENT.fullmatch(part) for part in (header_b64, payload_b64, signature_b64)):
        raise InvalidToken(_("The access token is malformed."))
    try:
        signature = base64url_decode(signature_b64)
        JWA.signing_alg(alg).verify(key.jwk, f"{header_b64}.{payload_b64}".encode("ascii"), signature)
    except Exception as exc:  # noqa: BLE001 - any failure to verify is an invalid signature, never a 500
        raise InvalidToken(_("The access token's signature is invalid.")) from exc
    payload = _b64json(payload_b64)
    if not isinstance(payload, dict):
        raise InvalidToken(_("The access token is malformed."))
    if len(_verified) >= VERIFIED_CACHE_SIZE:
        _verified.clear()
    _verified[token] = (kid, key, payload)
    return payload


def _validate_jwt(token: str, header_segment: str, audience: Any) -> AccessTokenClaims:
    claims = check_claims(_verified_payload(token, header_segment), source="jwt", audience=audience)
    mode = settings.revocation_check
    if mode == "database":
        if claims.jti is None:
            raise InvalidToken(_("The access token has no token id (jti) to check revocation with."))
        if revocation.is_revoked(claims):
            raise InvalidToken(_("The access token has been revoked."))
    elif mode == "introspection":
        answer = introspection.introspect(token, cache_seconds=settings.REVOCATION_CACHE_SECONDS)
        if answer is None:
            raise InvalidToken(_("The access token has been revoked."))
    return claims


# --- opaque tokens --------------------------------------------------------------------------------------
def _validate_opaque(token: str, audience: Any) -> AccessTokenClaims:
    if not introspection.is_configured():
        raise InvalidToken(_("The access token is not a JWT, and this API does not introspect tokens."))
    answer = introspection.introspect(token, cache_seconds=settings.INTROSPECTION_CACHE_SECONDS)
    if answer is None:
        raise InvalidToken(_("The access token is not active."))
    token_type = answer.get("token_type")
    if token_type is not None and str(token_type).lower() not in ("bearer", "dpop"):
        raise InvalidToken(_("This is not an access token."))
    if answer.get("token_use", "access_token") != "access_token":
        raise InvalidToken(_("This is not an access token."))
    return check_claims(answer, source="introspection", audience=audience)


def validate_access_token(token: str, *, audience: str | Iterable[str] | None = None) -> AccessTokenClaims:
    """The claims of ``token`` if this API may accept it; else ``InvalidToken`` with the reason.

    A three-part token is a JWS and is validated offline; a five-part one (JWE) is refused; anything
    else is opaque and is introspected when introspection is configured. ``audience`` replaces the
    ``AUDIENCE`` setting for this call: a site serving several APIs names the one asking.
    """
    if not isinstance(token, str) or not token:
        raise InvalidToken(_("The access token is empty."))
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken(_("The access token is too long."))
    audience = settings.audiences_for(audience)  # a misconfigured view fails before any work
    parts = token.split(".")
    if len(parts) == 3:
        return _validate_jwt(token, parts[0], audience)
    if len(parts) == 5:
        raise InvalidToken(_("Encrypted access tokens (JWE) are not accepted."))
    return _validate_opaque(token, audience)
