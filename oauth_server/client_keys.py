"""A client's public keys (RFC 7591 ``jwks`` / ``jwks_uri``), for verifying what it signs.

``private_key_jwt`` assertions (client_auth/private_key_jwt.py) and signed request objects
(request_objects.py) are verified with these keys. Keys are registered inline (``Client.jwks``) or
published by the client at ``Client.jwks_uri``, fetched with the SSRF-hardened fetcher of
fetcher.py (https only, every address the host resolves to checked public and the connection made
to it, no redirects, one deadline for the whole body, identity encoding, a size cap; the same
fetcher as client ID metadata documents and the same ``CIMD_FETCH_TIMEOUT``/
``CIMD_MAX_DOCUMENT_SIZE``), cached for ``JWKS_URI_CACHE_SECONDS`` and refetched when an assertion
or a request object names an unknown ``kid`` (the client rotated its key), at most once per
``JWKS_URI_MIN_REFRESH`` seconds so unknown kids cannot make us hammer the client's server.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

from django.core.cache import caches
from jwcrypto import jwk
from jwcrypto.common import JWException

from . import fetcher
from .conf import settings

logger = logging.getLogger(__name__)
CACHE_PREFIX = "oauth_server:client_jwks"
KEY_TYPES = {"RSA", "EC", "OKP"}
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
MIN_RSA_BITS = 2048


class JWKSFetcher(fetcher.SafeJSONFetcher):
    """jwks_uri documents: the cache lifetime is ours (JWKS_URI_CACHE_SECONDS), not the server's."""

    user_agent = "oauth_server (client jwks_uri fetch)"

    def max_age(self, cache_control: str | None) -> int:
        return settings.JWKS_URI_CACHE_SECONDS


# The class used to fetch (a module attribute, so tests can substitute one).
fetcher_class: type[fetcher.SafeJSONFetcher] = JWKSFetcher


class ClientKeysError(Exception):
    """The client's keys cannot be had (message safe to log and audit; never the document)."""


def jwks_problems(value: Any) -> list[str]:
    """What is wrong with a JWKS a client registers (empty list: fine). Public asymmetric keys only."""
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or not value["keys"]:
        return ['A JWKS is a JSON object with a non-empty "keys" array.']
    problems = []
    for index, key in enumerate(value["keys"]):
        if not isinstance(key, dict):
            problems.append(f"Key {index}: not a JSON object.")
            continue
        if key.get("kty") not in KEY_TYPES:
            problems.append(f"Key {index}: kty must be RSA, EC or OKP.")
            continue
        if PRIVATE_MEMBERS & set(key):
            problems.append(
                f"Key {index}: holds private or symmetric key material; register public keys only."
            )
            continue
        try:
            parsed = jwk.JWK(**key)
        except (JWException, ValueError, TypeError):
            problems.append(f"Key {index}: not a valid JWK.")
            continue
        if key["kty"] == "RSA" and _rsa_bits(parsed) < MIN_RSA_BITS:
            problems.append(f"Key {index}: RSA keys need at least {MIN_RSA_BITS} bits.")
    if len(json.dumps(value)) > 64 * 1024:
        problems.append("The JWKS is larger than 64 KiB.")
    return problems


def _rsa_bits(key: jwk.JWK) -> int:
    try:
        return key.get_op_key("verify").key_size
    except Exception:  # noqa: BLE001 - any key jwcrypto cannot use is too weak to count
        return 0


def key_set(client: Any, kid: str | None) -> jwk.JWKSet:
    """The client's verification keys; refetched from ``jwks_uri`` once if ``kid`` is not among them."""
    if client.jwks:
        return _as_set(client.jwks)
    if not client.jwks_uri:
        raise ClientKeysError("the client has registered no keys (jwks or jwks_uri)")
    keys = _cached(client.jwks_uri)
    if keys is None or (kid and not _has_kid(keys, kid) and _may_refresh(client.jwks_uri)):
        keys = _fetch(client.jwks_uri)
    return _as_set(keys)


def _as_set(document: dict[str, Any]) -> jwk.JWKSet:
    problems = jwks_problems(document)
    if problems:
        raise ClientKeysError(problems[0])
    key_set = jwk.JWKSet()
    for key in document["keys"]:
        key_set.add(jwk.JWK(**key))
    return key_set


def _has_kid(document: dict[str, Any], kid: str) -> bool:
    return any(isinstance(k, dict) and k.get("kid") == kid for k in document.get("keys", []))


def _key(uri: str, kind: str) -> str:
    return f"{CACHE_PREFIX}:{kind}:{hashlib.sha256(uri.encode()).hexdigest()}"


def _cached(uri: str) -> dict[str, Any] | None:
    try:
        return caches["default"].get(_key(uri, "doc"))
    except Exception:  # noqa: BLE001 - a cache failure only costs a fetch
        return None


def _may_refresh(uri: str) -> bool:
    try:
        return bool(caches["default"].add(_key(uri, "refresh"), 1, settings.JWKS_URI_MIN_REFRESH))
    except Exception:  # noqa: BLE001
        return False


def _fetch(uri: str) -> dict[str, Any]:
    started = time.monotonic()
    try:
        document, _max_age = fetcher_class().fetch(uri)
    except fetcher.FetchRefused as exc:
        logger.warning("jwks_uri %s could not be fetched (%s): %s", uri, exc.reason, exc)
        raise ClientKeysError(f"the client's jwks_uri could not be fetched ({exc.reason})") from exc
    problems = jwks_problems(document)
    if problems:
        raise ClientKeysError(f"the client's jwks_uri document is not a usable JWKS: {problems[0]}")
    try:
        caches["default"].set(_key(uri, "doc"), document, settings.JWKS_URI_CACHE_SECONDS)
        caches["default"].add(_key(uri, "refresh"), 1, settings.JWKS_URI_MIN_REFRESH)
    except Exception:  # noqa: BLE001
        logger.warning("could not cache the JWKS of %s (%.3fs)", uri, time.monotonic() - started)
    return document
