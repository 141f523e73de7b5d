"""DPoP proofs (RFC 9449): the one validator used by the token endpoint and by the resource kit.

A proof is the ``DPoP`` request header: a JWT whose header has ``typ: dpop+jwt``, an asymmetric
``alg`` and the client's public ``jwk``, signed with that key, with claims ``jti``, ``htm``,
``htu``, ``iat`` (and ``ath`` at a resource, ``nonce`` when the server hands out nonces).
``validate_proof`` checks all of it and returns the key's RFC 7638 thumbprint (``jkt``), which is
what a DPoP-bound token carries as ``cnf.jkt``.

This module needs neither the database nor the provider (remote resource servers use it): the
caller passes the replay check (``replay(jti, expires_at) -> first use?``) and the nonce secret.
Server nonces are stateless: an HMAC of the current time window, so every process that shares the
secret accepts them, and the current and previous windows are accepted (rotation without a store).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jwcrypto import jwk, jws

PROOF_TYPE = "dpop+jwt"
#: Algorithms a proof may use: asymmetric only (RFC 9449 4.2: never ``none`` or a MAC).
SUPPORTED_ALGORITHMS = frozenset({"ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"})
DEFAULT_ALGORITHMS = ("ES256", "RS256", "PS256", "EdDSA")
#: Far above a proof with an RSA-4096 key (~1.5 kB): refuses oversized headers before parsing.
MAX_PROOF_LENGTH = 8192
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class DPoPError(Exception):
    """A refused proof: ``error`` is ``invalid_dpop_proof`` or ``use_dpop_nonce`` (RFC 9449 12.2)."""

    def __init__(self, description: str, error: str = "invalid_dpop_proof"):
        self.error = error
        self.description = description
        super().__init__(description)


@dataclass(frozen=True)
class Proof:
    """A valid proof: the key's thumbprint and the claims (for logs; ``jti`` is already consumed)."""

    jkt: str
    jti: str
    claims: dict[str, Any]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def access_token_hash(token: str) -> str:
    """``ath``: base64url(SHA-256(ASCII access token)) (RFC 9449 4.2)."""
    return b64url(hashlib.sha256(token.encode("ascii", "replace")).digest())


def normalized_url(url: str) -> str | None:
    """``url`` without query and fragment, scheme and host lowercased, default port dropped,
    empty path as "/" (RFC 9449 4.3 step 9, RFC 3986 6.2.2/6.2.3); None when it is no http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", "", ""))


def single_header(values: str | None) -> str | None:
    """The one DPoP header value; ``DPoPError`` when there are several (a WSGI server joins repeated
    headers with commas, which a compact JWS never contains) or it is oversized."""
    if values is None:
        return None
    value = values.strip()
    if "," in value:
        raise DPoPError("Exactly one DPoP header is allowed.")
    if len(value) > MAX_PROOF_LENGTH:
        raise DPoPError("The DPoP proof is too large.")
    return value


def proof_header(request: Any) -> str | None:
    """The raw ``DPoP`` header of a Django/DRF request or of oauthlib's (whose headers are ``META``)."""
    plain = getattr(request, "_request", request)
    meta = getattr(plain, "META", None)
    if isinstance(meta, dict):
        return single_header(meta.get("HTTP_DPOP"))
    headers = getattr(request, "headers", None) or {}
    return single_header(headers.get("HTTP_DPOP", headers.get("DPoP")))


def _segment(value: str) -> Any:
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    return json.loads(raw)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- nonces (RFC 9449 8, 9) ---------------------------------------------------------------------------
def make_nonce(secret: bytes, window: int, *, now: float | None = None) -> str:
    """The nonce of the current window: ``<window index>.<HMAC>``, unpredictable without ``secret``."""
    index = int((time.time() if now is None else now) // max(1, window))
    return _nonce(secret, index)


def _nonce(secret: bytes, index: int) -> str:
    mac = hmac.new(secret, f"dpop-nonce:{index}".encode(), hashlib.sha256).digest()
    return f"{index}.{b64url(mac[:18])}"


def nonce_is_fresh(value: Any, secret: bytes, window: int, *, now: float | None = None) -> bool:
    """True for the nonce of the current or the previous window (rotation without state)."""
    if not isinstance(value, str) or len(value) > 64:
        return False
    current = int((time.time() if now is None else now) // max(1, window))
    return any(hmac.compare_digest(value, _nonce(secret, i)) for i in (current, current - 1))


# --- the proof ----------------------------------------------------------------------------------------
def validate_proof(
    proof: str,
    *,
    method: str,
    url: str | Iterable[str],
    algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
    max_age: int = 60,
    skew: int = 30,
    replay: Callable[[str, float], bool],
    access_token: str | None = None,
    nonce: Callable[[Any], bool] | None = None,
) -> Proof:
    """The checks of RFC 9449 4.3, in its order; returns the proof's key thumbprint.

    ``url``: the request's URL (or the URLs it may be known by, e.g. behind a proxy), compared to
    ``htu`` after normalisation. ``access_token``: at a resource, ``ath`` must be its hash.
    ``nonce``: when the server requires nonces, a check of the ``nonce`` claim (a missing or stale
    one is ``use_dpop_nonce``). ``replay(jti, expires_at)`` is False when the jti was seen before.
    """
    if not isinstance(proof, str) or not proof:
        raise DPoPError("The DPoP proof is missing.")
    if len(proof) > MAX_PROOF_LENGTH:
        raise DPoPError("The DPoP proof is too large.")
    parts = proof.split(".")
    if len(parts) != 3:
        raise DPoPError("The DPoP proof is not a signed JWT.")
    try:
        header, payload = _segment(parts[0]), _segment(parts[1])
    except (ValueError, UnicodeDecodeError, RecursionError, TypeError) as exc:
        raise DPoPError("The DPoP proof is malformed.") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise DPoPError("The DPoP proof is malformed.")
    if header.get("typ") != PROOF_TYPE:
        raise DPoPError("The DPoP proof's typ must be dpop+jwt.")
    alg = header.get("alg")
    allowed = set(algorithms) & SUPPORTED_ALGORITHMS
    if not isinstance(alg, str) or alg not in allowed:
        raise DPoPError("The DPoP proof's signing algorithm is not accepted.")
    if "crit" in header:
        raise DPoPError("The DPoP proof uses unsupported critical header parameters.")
    public = header.get("jwk")
    if not isinstance(public, dict) or not public.get("kty"):
        raise DPoPError("The DPoP proof carries no public key (jwk).")
    if _PRIVATE_MEMBERS & set(public):
        raise DPoPError("The DPoP proof's jwk must be a public key.")
    try:
        key = jwk.JWK(**public)
        if key.has_private or not key.has_public:
            raise DPoPError("The DPoP proof's jwk must be a public key.")
        parsed = jws.JWS()
        parsed.deserialize(proof)
        parsed.allowed_algs = [alg]
        parsed.verify(key, alg=alg)
        jkt = key.thumbprint()
    except DPoPError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to load the client's key or verify is a refusal
        raise DPoPError("The DPoP proof's signature is invalid.") from exc
    jti = payload.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise DPoPError("The DPoP proof has no valid jti.")
    if payload.get("htm") != method:
        raise DPoPError("The DPoP proof's htm does not match the request method.")
    htu = payload.get("htu")
    expected = {url} if isinstance(url, str) else set(url)
    accepted = {normalized_url(u) for u in expected} - {None}
    if not isinstance(htu, str) or normalized_url(htu) not in accepted:
        raise DPoPError("The DPoP proof's htu does not match the request URL.")
    iat, now = payload.get("iat"), time.time()
    if not _number(iat) or iat > now + skew or iat < now - max_age - skew:
        raise DPoPError("The DPoP proof's iat is outside the accepted window.")
    if access_token is not None:
        ath = payload.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(ath, access_token_hash(access_token)):
            raise DPoPError("The DPoP proof's ath does not match the access token.")
    if nonce is not None and not nonce(payload.get("nonce")):
        raise DPoPError(
            "A fresh DPoP nonce is required: use the one in the DPoP-Nonce header.", error="use_dpop_nonce"
        )
    if not replay(jti, iat + max_age + skew):
        raise DPoPError("The DPoP proof has already been used (jti).")
    return Proof(jkt=jkt, jti=jti, claims=payload)


def cache_replay(cache: Any, namespace: str) -> Callable[[str, float], bool]:
    """A ``replay`` callable on a Django cache: ``cache.add`` is atomic set-if-absent, so of two
    processes sharing the cache only one sees a jti first. A failing cache refuses the proof."""

    def first_use(jti: str, expires_at: float) -> bool:
        digest = hashlib.sha256(f"{namespace}\x00{jti}".encode("utf-8", "surrogatepass")).hexdigest()
        timeout = max(1, math.ceil(expires_at - time.time()))
        try:
            return bool(cache.add(f"oauth_server:dpop:{digest}", 1, timeout))
        except Exception:  # noqa: BLE001 - a replay cache that cannot remember must not let a replay in
            return False

    return first_use


def token_jkt(claims: Any) -> str | None:
    """The ``cnf.jkt`` of a token's claims (JWT or introspection answer), None when not bound."""
    cnf = claims.get("cnf") if hasattr(claims, "get") else None
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) and jkt else None
