"""Signing keys kept in the database: generation, encryption at rest, rotation, JWKS, signing.

One key is ``active`` and signs; one ``next`` key is already published so resource servers have it
cached before it starts signing; ``retired`` keys stay published until every token they signed has
expired (``retire_after``). See docs/key-rotation.md.

Private keys are stored as a JWE (``dir`` + ``A256GCM``) under a 256-bit key derived with HKDF from
``SIGNING_KEY_ENCRYPTION_SECRET`` (falling back to ``SECRET_KEY``); old secrets listed in
``SIGNING_KEY_ENCRYPTION_SECRET_FALLBACKS`` still decrypt, like Django's ``SECRET_KEY_FALLBACKS``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone
from jwcrypto import jwe, jwk, jws
from jwcrypto.common import JWException, base64url_encode
from jwcrypto.jwa import JWA

from . import signals
from .conf import settings
from .models import Client, SigningKey

logger = logging.getLogger(__name__)

State = SigningKey.State
Algorithm = SigningKey.Algorithm

_HKDF_INFO = b"oauth_server signing-key encryption v1"


# --- encryption at rest --------------------------------------------------------------------------
def _secret_values() -> list[str]:
    """The current secret first (it encrypts), then the fallbacks (they only decrypt)."""
    primary = settings.SIGNING_KEY_ENCRYPTION_SECRET or django_settings.SECRET_KEY
    return [primary, *settings.SIGNING_KEY_ENCRYPTION_SECRET_FALLBACKS]


def _wrapping_key(secret: str) -> jwk.JWK:
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret.encode())
    return jwk.JWK(kty="oct", k=base64url_encode(raw))


def encrypt_private_key(key: jwk.JWK) -> str:
    token = jwe.JWE(
        key.export_private().encode(),
        protected=json.dumps({"alg": "dir", "enc": "A256GCM", "cty": "jwk+json"}),
    )
    token.add_recipient(_wrapping_key(_secret_values()[0]))
    return token.serialize(compact=True)


class KeyDecryptionError(Exception):
    """No configured secret decrypts a stored key (the encryption secret was changed without a fallback).

    A configuration error, not a client error: the token endpoint answers ``server_error`` (500)
    and logs this; nothing is issued or saved until the old secret is listed in
    ``SIGNING_KEY_ENCRYPTION_SECRET_FALLBACKS`` (docs/key-rotation.md).
    """


def decrypt_private_key(blob: str, *, kid: str = "") -> jwk.JWK:
    """The private JWK in ``blob``, decrypted with the current secret or any fallback."""
    for secret in _secret_values():
        token = jwe.JWE()
        try:
            token.deserialize(blob, key=_wrapping_key(secret))
        except (JWException, ValueError):
            continue
        return jwk.JWK.from_json(token.payload.decode())
    which = f" {kid}" if kid else ""
    raise KeyDecryptionError(
        f"Neither SIGNING_KEY_ENCRYPTION_SECRET nor any of its fallbacks decrypts the signing key{which}: "
        "was the secret (or SECRET_KEY) changed without listing the old value in "
        "SIGNING_KEY_ENCRYPTION_SECRET_FALLBACKS?"
    )


# --- generation ------------------------------------------------------------------------------------
def _generate_jwk(algorithm: str) -> jwk.JWK:
    if algorithm == Algorithm.RS256:
        return jwk.JWK.generate(kty="RSA", size=settings.RSA_KEY_SIZE)
    if algorithm == Algorithm.ES256:
        return jwk.JWK.generate(kty="EC", crv="P-256")
    if algorithm == Algorithm.EDDSA:
        return jwk.JWK.generate(kty="OKP", crv="Ed25519")
    raise ValueError(f"Unsupported signing algorithm: {algorithm!r}")


def new_key(algorithm: str | None = None, state: str = State.NEXT) -> SigningKey:
    """Generate and save a key; the kid is its RFC 7638 thumbprint."""
    algorithm = algorithm or settings.SIGNING_KEY_ALGORITHM
    private = _generate_jwk(algorithm)
    kid = private.thumbprint()
    public = {**json.loads(private.export_public()), "kid": kid, "alg": algorithm, "use": "sig"}
    now = timezone.now()
    return SigningKey.objects.create(
        kid=kid,
        algorithm=algorithm,
        state=state,
        private_key=encrypt_private_key(private),
        public_jwk=public,
        activated_at=now if state == State.ACTIVE else None,
    )


# --- the active key, cached per process -------------------------------------------------------------
@dataclass(frozen=True)
class ActiveKey:
    kid: str
    algorithm: str
    jwk: jwk.JWK


_cache_lock = threading.Lock()
_active_cache: tuple[float, ActiveKey] | None = None
_private_cache: dict[str, jwk.JWK] = {}


def clear_cache() -> None:
    global _active_cache
    with _cache_lock:
        _active_cache = None
        _private_cache.clear()


def _private_jwk(key: SigningKey) -> jwk.JWK:
    cached = _private_cache.get(key.kid)
    if cached is None:
        cached = decrypt_private_key(key.private_key, kid=key.kid)
        _private_cache[key.kid] = cached
    return cached


def _find_active() -> SigningKey | None:
    return SigningKey.objects.filter(state=State.ACTIVE).first()


def ensure_keys() -> SigningKey:
    """Return the active key, creating an active and a next key on first use.

    Two processes may both find no key and both try to create one: the partial unique constraints
    (one active, one next) make the loser's insert fail, and it then uses the winner's key.
    """
    key = _find_active()
    if key is not None:
        return key
    try:
        with transaction.atomic():
            key = new_key(state=State.ACTIVE)
            if not SigningKey.objects.filter(state=State.NEXT).exists():
                new_key(state=State.NEXT)
            return key
    except IntegrityError:
        # Another process created the first keys at the same moment: use theirs.
        return SigningKey.objects.get(state=State.ACTIVE)


def active_key() -> ActiveKey:
    """The key that signs now. Cached for SIGNING_KEY_CACHE_SECONDS: a rotation done by another
    process is picked up within that time, and the old key stays published meanwhile."""
    global _active_cache
    now = time.monotonic()
    cached = _active_cache
    if cached is not None and cached[0] > now:
        return cached[1]
    key = ensure_keys()
    result = ActiveKey(kid=key.kid, algorithm=key.algorithm, jwk=_private_jwk(key))
    with _cache_lock:
        _active_cache = (now + settings.SIGNING_KEY_CACHE_SECONDS, result)
    return result


# --- signing -----------------------------------------------------------------------------------------
def sign(claims: dict[str, Any], *, typ: str = "JWT", key: ActiveKey | None = None) -> str:
    """A compact JWS of ``claims`` with ``key`` (default: the active key); the header carries kid,
    alg and typ. Pass the key when something else in the token depends on its algorithm (at_hash).
    """
    key = key or active_key()
    # The compact serialization written out (RFC 7515 7.1) around jwcrypto's own algorithm: a
    # jwcrypto JWS object deep-copies its header registry on creation, which cost more than the
    # rest of the signing on the token endpoint's hot path (docs/performance.md).
    header = json.dumps({"alg": key.algorithm, "kid": key.kid, "typ": typ}, separators=(",", ":"))
    payload = json.dumps(claims, separators=(",", ":"), default=str)
    signing_input = f"{base64url_encode(header)}.{base64url_encode(payload)}"
    signature = JWA.signing_alg(key.algorithm).sign(key.jwk, signing_input.encode("ascii"))
    return f"{signing_input}.{base64url_encode(signature)}"


def verify(token: str, *, typ: str | None = None) -> dict[str, Any]:
    """Verify a JWS we signed with any published key (in-process use); raises JWException.

    Expiry and audience are the caller's checks (see oauth_server.resource for the full validator).
    """
    parsed = jws.JWS()
    parsed.deserialize(token)
    header = parsed.jose_header
    if typ is not None and header.get("typ") != typ:
        raise JWException(f"Unexpected token type {header.get('typ')!r}")
    public = published_keys().get(header.get("kid"))
    if public is None:
        raise JWException("Unknown key")
    parsed.verify(jwk.JWK(**public), alg=public["alg"])
    return json.loads(parsed.payload)


# --- publication -------------------------------------------------------------------------------------
def _published_queryset():
    now = timezone.now()
    return SigningKey.objects.filter(
        Q(state__in=[State.ACTIVE, State.NEXT]) | Q(state=State.RETIRED, retire_after__gt=now)
    )


def published_keys() -> dict[str, dict[str, Any]]:
    return {key.kid: key.public_jwk for key in _published_queryset()}


def jwks() -> dict[str, list[dict[str, Any]]]:
    """The JWKS document: active first, then next, then retired keys still in use."""
    return jwks_with_lifetime()[0]


def jwks_with_lifetime() -> tuple[dict[str, list[dict[str, Any]]], float | None]:
    """The JWKS document and how many seconds it stays true by itself: until the first published
    retired key's ``retire_after`` (then it leaves the set), None if no retired key is published.

    Every other change (a rotation, a new or deleted key) goes through the model's signals, which
    invalidate the cached copy (``published.py``)."""
    ensure_keys()
    now = timezone.now()
    order = {State.ACTIVE: 0, State.NEXT: 1, State.RETIRED: 2}
    keys = sorted(_published_queryset(), key=lambda k: (order[k.state], -k.created.timestamp()))
    ends = [k.retire_after for k in keys if k.state == State.RETIRED and k.retire_after is not None]
    valid_for = (min(ends) - now).total_seconds() if ends else None
    return {"keys": [dict(k.public_jwk) for k in keys]}, valid_for


def publication_delay() -> int:
    """The longest time, in seconds, before every resource server can have a newly published key:
    the server's own cached JWKS (``DISCOVERY_CACHE_SECONDS``; at once with a shared cache, which the
    rotation invalidates) plus the HTTP cache time resource servers may keep it (``JWKS_MAX_AGE``).

    A ``next`` key should be at least this old when a rotation makes it sign."""
    return settings.DISCOVERY_CACHE_SECONDS + settings.JWKS_MAX_AGE


# --- rotation ----------------------------------------------------------------------------------------
def longest_token_lifetime() -> int:
    """Seconds a token signed now may stay valid: the longest access-token or ID-token lifetime.

    Covers the site lifetimes (ours and DOT's ACCESS_TOKEN_EXPIRE_SECONDS, which a site may set
    in OAUTH2_PROVIDER) and every client's own access-token lifetime.
    """
    from oauth2_provider.settings import oauth2_settings

    per_client = Client.objects.aggregate(m=Max("access_token_lifetime"))["m"] or 0
    return max(
        settings.ACCESS_TOKEN_LIFETIME,
        oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS or 0,
        settings.ID_TOKEN_LIFETIME,
        per_client,
    )


def retire_delay() -> int:
    """How long a key that stops signing now must stay published.

    Each token it signed lives at most ``longest_token_lifetime()``; the leeway covers clock skew.
    Other processes may go on signing with it for up to SIGNING_KEY_CACHE_SECONDS (their cached
    active key), so the leeway is never shorter than that window.
    """
    leeway = max(settings.SIGNING_KEY_RETIRE_LEEWAY, settings.SIGNING_KEY_CACHE_SECONDS)
    return longest_token_lifetime() + leeway


@dataclass(frozen=True)
class Rotation:
    activated: SigningKey
    retired: SigningKey | None
    next: SigningKey
    retire_after: datetime | None


def rotate(algorithm: str | None = None) -> Rotation:
    """next -> active, active -> retired (published until its tokens expire), new next key.

    ``algorithm`` applies to the new next key, so a change of algorithm is published one rotation
    before it signs; without it the new next key keeps the algorithm of the key now activated (a
    change sticks). With no next key (first use, or deleted), one is made and activated at once,
    in ``algorithm`` or SIGNING_KEY_ALGORITHM.
    """
    now = timezone.now()
    with transaction.atomic():
        keys = {
            k.state: k
            for k in SigningKey.objects.select_for_update().filter(state__in=[State.ACTIVE, State.NEXT])
        }
        old = keys.get(State.ACTIVE)
        upcoming = keys.get(State.NEXT)
        retire_after = None
        if old is not None:
            retire_after = now + timedelta(seconds=retire_delay())
            old.state = State.RETIRED
            old.retired_at = now
            old.retire_after = retire_after
            old.save(update_fields=["state", "retired_at", "retire_after"])
        if upcoming is None:
            upcoming = new_key(algorithm, state=State.ACTIVE)
        else:
            upcoming.state = State.ACTIVE
            upcoming.activated_at = now
            upcoming.save(update_fields=["state", "activated_at"])
        following = new_key(algorithm or upcoming.algorithm, state=State.NEXT)
        # Inside a caller's transaction, the new state is visible only once it commits.
        transaction.on_commit(clear_cache)
    # This process signs with the new key at once; other processes within SIGNING_KEY_CACHE_SECONDS.
    clear_cache()
    logger.info("Signing keys rotated: %s now signs, %s retired", upcoming.kid, old.kid if old else None)
    rotation = Rotation(activated=upcoming, retired=old, next=following, retire_after=retire_after)
    signals.signing_key_rotated.send(sender=SigningKey, rotation=rotation)  # the audit trail listens
    return rotation


def purge_expired() -> int:
    """Delete retired keys no longer published; returns how many."""
    deleted, _ = SigningKey.objects.filter(state=State.RETIRED, retire_after__lte=timezone.now()).delete()
    return deleted
