"""Fetching a JSON document from a URL a client gave us, without letting the client aim the server
at itself or its network (SSRF).

Used for client ID metadata documents (cimd.py) and clients' ``jwks_uri`` (client_keys.py). It
extends DOT's ``SafeMetadataFetcher`` (https only, the host resolved once and the connection made to
the checked address, no redirects, size and time caps) rather than forking it, and adds what DOT
lacks:

- every address the host resolves to must be public (DOT's ``_ip_is_public``, which decodes IPv4
  embedded in IPv6, plus no multicast, unspecified or reserved addresses), so a split DNS answer
  cannot smuggle an internal address in;
- one deadline for the whole body: DOT's socket timeout restarts on every chunk, so a server
  dripping a byte at a time would hold a worker for ``size x timeout``;
- identity encoding only (a small gzip body is a large document);
- the development-only settings ``CIMD_ALLOW_HTTP_LOOPBACK`` and ``CIMD_CA_FILE`` (refused in
  deployment by check E004), and refusal reasons a person can act on.

No model is imported here, so any module may use it.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import time
from typing import Any
from urllib.parse import SplitResult, urlsplit

import urllib3
from oauth2_provider import cimd as dot_cimd

from .conf import settings

LOOPBACK_NAMES = frozenset({"localhost", "localhost."})
# Resolver used for every lookup (a module attribute, so tests can answer with any address).
getaddrinfo = socket.getaddrinfo


class FetchRefused(dot_cimd.CIMDError):
    """A document that could not be fetched or was refused; ``reason`` is a short code for the audit
    trail, the message says why in words (never the document's content)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def is_loopback_host(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _embedded(address: ipaddress.IPv4Address | ipaddress.IPv6Address):
    """The IPv4 address an IPv4-mapped, 6to4 or NAT64 (64:ff9b::/96) address carries, else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in dot_cimd.NAT64_PREFIX:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return embedded
    return address


def address_allowed(ip: str) -> bool:
    """Public unicast addresses: DOT's rule (``_ip_is_public``: private, loopback, link-local,
    shared, reserved, IPv4 embedded in IPv6 decoded) and no multicast, which Python's ``is_global``
    counts as global (224.0.0.0/4, ff00::/8). Loopback too with CIMD_ALLOW_HTTP_LOOPBACK."""
    try:
        address = _embedded(ipaddress.ip_address(ip))
    except ValueError:
        return False
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return False
    if dot_cimd._ip_is_public(ip):
        return True
    return bool(settings.CIMD_ALLOW_HTTP_LOOPBACK) and address.is_loopback


def cache_seconds(cache_control: str | None, floor: int, ceiling: int) -> int:
    """Cache-Control max-age (no-store/no-cache: the floor), within ``[floor, ceiling]``."""
    age = ceiling
    if cache_control:
        lowered = cache_control.lower()
        directives = {part.strip().split("=", 1)[0] for part in lowered.split(",")}
        if "no-store" in directives or "no-cache" in directives:
            age = floor
        else:
            for part in lowered.split(","):
                name, _, value = part.strip().partition("=")
                if name == "max-age" and value.strip().strip('"').isdigit():
                    age = int(value.strip().strip('"'))
                    break
    return max(floor, min(age, ceiling))


def https_url(url: str, *, name: str = "") -> SplitResult:
    """A URL we may fetch: https (or plain http to a loopback host with CIMD_ALLOW_HTTP_LOOPBACK),
    a host, a path, no userinfo, fragment or dot segments (DOT's client_id URL rules). ``name``
    ("client_id") names the URL in the refusal's message."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (an out-of-range port raises here)
    except ValueError as exc:
        raise FetchRefused("invalid_url", f"{name or 'the URL'} is not a valid URL: {exc}") from exc
    checked = url
    if (
        parts.scheme == "http"
        and settings.CIMD_ALLOW_HTTP_LOOPBACK
        and is_loopback_host(parts.hostname or "")
    ):
        checked = "https" + url[4:]  # the same rules otherwise
    try:
        dot_cimd._validate_client_id_url(checked)
    except dot_cimd.CIMDError as exc:
        message = str(exc) if name == "client_id" else str(exc).replace("client_id URL", "URL")
        raise FetchRefused("invalid_url", message) from exc
    return parts


class SafeJSONFetcher(dot_cimd.SafeMetadataFetcher):
    """``fetch(url)`` returns ``(document, max_age)`` or raises ``FetchRefused``. Subclasses set
    the URL rules (``check_url``) and the cache bounds (``max_age``)."""

    chunk_size = 4096
    user_agent = "oauth_server (document fetch)"

    def check_url(self, url: str) -> SplitResult:
        return https_url(url)

    def max_age(self, cache_control: str | None) -> int:
        return cache_seconds(cache_control, settings.CIMD_MIN_CACHE_SECONDS, settings.CIMD_MAX_CACHE_SECONDS)

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if settings.CIMD_CA_FILE:
            context.load_verify_locations(cafile=settings.CIMD_CA_FILE)
        return context

    def resolve(self, host: str, port: int) -> list[str]:
        """Every address the host resolves to, each checked: one refused refuses the host (a split
        answer cannot smuggle an internal address in)."""
        try:
            infos = getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            raise FetchRefused("dns_failed", f"could not resolve {host!r}: {exc}") from exc
        ips = list(dict.fromkeys(info[4][0] for info in infos))
        for ip in ips:
            if not address_allowed(ip):
                raise FetchRefused("address_refused", f"{host!r} resolves to a non-public address ({ip})")
        if not ips:
            raise FetchRefused("dns_failed", f"{host!r} has no address")
        return ips

    def fetch(self, url: str) -> tuple[dict[str, Any], int]:
        parts = self.check_url(url)
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        ips = self.resolve(parts.hostname, port)
        deadline = time.monotonic() + settings.CIMD_FETCH_TIMEOUT
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {
            "Host": parts.netloc,
            "Accept": "application/json, application/*+json",
            "Accept-Encoding": "identity",
            "User-Agent": self.user_agent,
        }
        last_error: Exception | None = None
        for ip in ips:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            timeout = urllib3.Timeout(connect=remaining, read=remaining, total=remaining)
            # Connect to the checked address; SNI, certificate and Host use the URL's host name.
            if https:
                pool = urllib3.HTTPSConnectionPool(
                    host=ip,
                    port=port,
                    timeout=timeout,
                    retries=False,
                    maxsize=1,
                    ssl_context=self.ssl_context(),
                    server_hostname=parts.hostname,
                )
            else:
                pool = urllib3.HTTPConnectionPool(
                    host=ip, port=port, timeout=timeout, retries=False, maxsize=1
                )
            try:
                response = pool.urlopen(
                    "GET", path, headers=headers, redirect=False, preload_content=False, decode_content=False
                )
                try:
                    return self.read(response, deadline)
                finally:
                    response.release_conn()
            except urllib3.exceptions.TimeoutError as exc:
                last_error = FetchRefused("timeout", "the server did not answer in time")
                last_error.__cause__ = exc
            except urllib3.exceptions.HTTPError as exc:
                last_error = exc
            finally:
                pool.close()
        if isinstance(last_error, FetchRefused):
            raise last_error
        if last_error is None:
            raise FetchRefused("timeout", "the server did not answer in time")
        raise FetchRefused("fetch_failed", f"could not fetch the document: {type(last_error).__name__}")

    def read(self, response, deadline: float) -> tuple[dict[str, Any], int]:
        if response.status != 200:
            kind = "redirect" if 300 <= response.status < 400 else "http_status"
            raise FetchRefused(kind, f"the URL answered HTTP {response.status} (200 required)")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media_type != "application/json" and not (
            media_type.startswith("application/") and media_type.endswith("+json")
        ):
            raise FetchRefused("content_type", f"the document is not JSON (Content-Type {media_type!r})")
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise FetchRefused("content_encoding", f"compressed documents are refused ({encoding!r})")
        limit = settings.CIMD_MAX_DOCUMENT_SIZE
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchRefused("too_large", f"the document is larger than {limit} bytes")
        body = bytearray()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchRefused("timeout", "the server did not answer in time")
            sock = getattr(getattr(response, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(remaining)  # the deadline holds for every chunk, not per chunk
            try:
                chunk = response.read1(self.chunk_size)
            except (OSError, urllib3.exceptions.HTTPError) as exc:
                if isinstance(exc, (TimeoutError, socket.timeout, urllib3.exceptions.TimeoutError)):
                    raise FetchRefused("timeout", "the server did not answer in time") from exc
                raise
            if not chunk:
                break
            body += chunk
            if len(body) > limit:
                raise FetchRefused("too_large", f"the document is larger than {limit} bytes")
        try:
            document = json.loads(bytes(body))
        except (ValueError, UnicodeDecodeError) as exc:
            raise FetchRefused("invalid_json", "the document is not valid JSON") from exc
        if not isinstance(document, dict):
            raise FetchRefused("invalid_json", "the document is not a JSON object")
        return document, self.max_age(response.headers.get("Cache-Control"))
