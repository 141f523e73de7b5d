"""The public documents (discovery metadata, JWKS) served from Django's cache: no SQL once warm.

Every cached document carries the *version* token it was built under, kept in the same cache; it is
served only while that token is current. Anything that changes
what the documents say (a signing key created, rotated, retired or deleted; a scope saved or deleted;
a setting changed) replaces the token: at once, and again when the surrounding transaction commits.
The second replacement matters on several nodes: a process that read the database between the first
one and the commit may have cached the old state, under a token nobody asks for any more after the
commit. Reading the token and the document is one round trip (``get_many``). With a cache every
process shares (Redis, ``OAUTH_SERVER["DISCOVERY_CACHE"]``), every node
serves the new documents from its next request; with a per-process cache (local memory), other
processes see them when their copy expires (``DISCOVERY_CACHE_SECONDS``). docs/performance.md has
the timing, and how it relates to ``JWKS_MAX_AGE`` and key rotation.

A document is kept as its serialized body and a strong ETag (a hash of the body), so a request costs
one cache round trip and no JSON encoding; ``If-None-Match`` gets a 304.

A cache that fails (Redis down) costs the cache, not the documents: they are built from the
database, as before caching, and the error is logged; a failed invalidation is logged as an error
(other nodes then serve their copy until it expires) and never undoes the change that caused it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.cache import get_conditional_response

from .conf import settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "oauth_server:published"
VERSION_KEY = f"{KEY_PREFIX}:version"


@dataclass(frozen=True)
class Document:
    """A serialized document, its ETag, and the version token it was built under."""

    body: bytes
    etag: str
    version: str = ""


def _cache():
    return caches[settings.DISCOVERY_CACHE]


def version(value: str | None = None) -> str:
    """The current version token (created if the cache has none: after an eviction or a flush);
    ``value`` is what was just read, to spare a round trip."""
    cache = _cache()
    if value is None:
        value = cache.get(VERSION_KEY)
    if value is None:
        value = secrets.token_hex(8)
        if not cache.add(VERSION_KEY, value, None):
            value = cache.get(VERSION_KEY) or value
    return value


def replace_version() -> None:
    """Every cached document is stale from now on (not transactional: for setting changes)."""
    _replace_version()


def _replace_version() -> None:
    try:
        _cache().set(VERSION_KEY, secrets.token_hex(8), None)
    except Exception:  # the change itself must stand: a broken cache only delays its publication
        logger.exception(
            "Could not invalidate the cached discovery documents and JWKS in cache %r: other processes "
            "serve their copy for up to DISCOVERY_CACHE_SECONDS.",
            settings.DISCOVERY_CACHE,
        )


def invalidate(**kwargs: Any) -> None:
    """Every cached document is stale: now, and again when the current transaction commits.

    Usable as a signal receiver (keyword arguments are ignored).
    """
    _replace_version()
    transaction.on_commit(_replace_version)


def _serialize(data: dict[str, Any], version: str = "") -> Document:
    body = json.dumps(data, cls=DjangoJSONEncoder).encode()
    return Document(body=body, etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"', version=version)


def document(name: str, variant: str, build: Callable[[], tuple[dict[str, Any], int | None]]) -> Document:
    """The cached document ``name`` (for ``variant``: what in the request changes it), built by
    ``build`` on a miss. ``build`` returns the data and the longest time (seconds) it stays true,
    or None for no limit of its own; the cache keeps it at most ``DISCOVERY_CACHE_SECONDS``."""
    timeout = settings.DISCOVERY_CACHE_SECONDS
    if timeout <= 0:
        return _serialize(build()[0])
    key = f"{KEY_PREFIX}:{name}:{variant}"
    try:
        cache = _cache()
        found = cache.get_many([VERSION_KEY, key])
        current = version(found.get(VERSION_KEY))
    except Exception:
        logger.exception("Cache %r failed: %s built from the database.", settings.DISCOVERY_CACHE, name)
        return _serialize(build()[0])
    cached = found.get(key)
    if isinstance(cached, Document) and cached.version == current:
        return cached
    data, valid_for = build()
    result = _serialize(data, current)
    if valid_for is not None:
        timeout = min(timeout, max(int(valid_for), 1))
    try:
        cache.set(key, result, timeout)
    except Exception:
        logger.exception("Cache %r failed: %s not cached.", settings.DISCOVERY_CACHE, name)
    return result


def variant_of(*parts: str) -> str:
    """A short cache-key-safe digest of what in the request shapes a document (host, prefix)."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:24]


def respond(request: HttpRequest, doc: Document, cache_control: str) -> HttpResponse:
    """The document as a public JSON response with ETag and Cache-Control; 304 if the client has it."""
    response = HttpResponse(doc.body, content_type="application/json")
    response["ETag"] = doc.etag
    response["Cache-Control"] = cache_control
    response["Access-Control-Allow-Origin"] = "*"  # public, credential-free documents
    conditional = get_conditional_response(request, etag=doc.etag, response=response)
    if isinstance(conditional, HttpResponseNotModified):
        # RFC 9110 15.4.5: a 304 repeats the headers a 200 would have sent for caching.
        for header in ("Cache-Control", "Access-Control-Allow-Origin"):
            conditional[header] = response[header]
    return conditional
