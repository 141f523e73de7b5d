"""OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a client_id
that is an https URL names a JSON document describing the client, fetched on first use.

What lives here (docs/client-registration.md, "Client ID metadata documents"):

- ``CIMDFetcher``: DOT's SSRF-hardened ``SafeMetadataFetcher`` (https only, resolve once and connect
  to that address, no redirects, size and time caps), extended rather than forked: the same address
  rules (DOT's ``_ip_is_public``: private, loopback, link-local, multicast, reserved, IPv4-mapped,
  6to4, Teredo, NAT64 refused), plus what DOT lacks: one deadline for the whole body (DOT's socket
  timeout restarts on every received chunk, so a server dripping a byte at a time holds the worker
  for ``size x timeout``), no compressed bodies (a small gzip body is a large document), the
  development-only loopback and extra-CA settings, and reasons a person can act on.
- ``load_client``: the policy around it, on our ``Client`` model: host block and allow lists, the
  failure back-off and in-flight cap (DOT's), the document's checks (``client_id`` equal to the URL,
  forbidden members, grant types, scopes, redirect URIs by ``Client.clean``), the atomic upsert,
  the refresh when ``cimd_expires_at`` has passed, and the audit events.

The validator calls ``load_client`` for every URL client_id (``validator._load_application``), so the
authorization, token, revocation and introspection endpoints all see the same client.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import SplitResult, urlsplit

import urllib3
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http.request import validate_host
from django.utils import timezone
from oauth2_provider import cimd as dot_cimd

from . import audit, registration
from .conf import settings
from .validators import is_exact_uri

logger = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "localhost."})
MAX_CLIENT_ID_LENGTH = 255
MAX_NAME_LENGTH = 100
# Members a metadata document must not carry (draft section 4.1: no shared secret).
FORBIDDEN_MEMBERS = ("client_secret", "client_secret_expires_at")
LIST_MEMBERS = ("redirect_uris", "post_logout_redirect_uris", "grant_types", "response_types")
TEXT_MEMBERS = ("client_name", "scope", "logo_uri", "client_uri", "policy_uri", "tos_uri")
# Resolver used for every lookup (a module attribute, so tests can answer with any address).
getaddrinfo = socket.getaddrinfo


class DocumentRefused(dot_cimd.CIMDError):
    """A metadata document that could not be fetched or was refused; ``reason`` is a short code
    for the audit trail, the message says why in words (never the document's content)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


# --- which URLs are document URLs -------------------------------------------------------------------
def _is_loopback_host(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_document_url(client_id: object) -> bool:
    """Whether ``client_id`` names a metadata document this site would fetch (a cheap gate: the
    URL's full checks come with the fetch)."""
    if not settings.CIMD_ENABLED or not isinstance(client_id, str):
        return False
    lowered = client_id[:8].lower()
    if lowered == "https://":
        return True
    if settings.CIMD_ALLOW_HTTP_LOOPBACK and lowered.startswith("http://"):
        try:
            return _is_loopback_host(urlsplit(client_id).hostname or "")
        except ValueError:
            return False
    return False


def document_url(client_id: str) -> SplitResult:
    """The client_id checked as a document URL (draft section 3): https (or plain http to a loopback
    host, in development), a host, a path, no userinfo, fragment or dot segments."""
    if len(client_id) > MAX_CLIENT_ID_LENGTH:
        raise DocumentRefused("invalid_url", f"client_id URL longer than {MAX_CLIENT_ID_LENGTH} characters")
    try:
        parts = urlsplit(client_id)
        parts.port  # noqa: B018 (an out-of-range port raises here)
    except ValueError as exc:
        raise DocumentRefused("invalid_url", f"client_id is not a valid URL: {exc}") from exc
    checked = client_id
    if (
        parts.scheme == "http"
        and settings.CIMD_ALLOW_HTTP_LOOPBACK
        and _is_loopback_host(parts.hostname or "")
    ):
        checked = "https" + client_id[4:]  # the same rules otherwise
    try:
        dot_cimd._validate_client_id_url(checked)
    except dot_cimd.CIMDError as exc:
        raise DocumentRefused("invalid_url", str(exc)) from exc
    return parts


# --- host policy ---------------------------------------------------------------------------------------
def host_blocked(host: str) -> bool:
    """Blocked by CIMD_BLOCKED_HOSTS or by staff (``BlockedClientHost``, the admin)."""
    from .models import BlockedClientHost

    host = host.lower()
    if validate_host(host, list(settings.CIMD_BLOCKED_HOSTS or [])):
        return True
    return validate_host(host, list(BlockedClientHost.objects.values_list("host", flat=True)))


def host_allowed(host: str) -> bool:
    allowed = settings.CIMD_ALLOWED_HOSTS
    return allowed is None or validate_host(host.lower(), list(allowed))


# --- fetching ----------------------------------------------------------------------------------------
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


def cache_seconds(cache_control: str | None) -> int:
    """Cache-Control max-age (no-store/no-cache: the minimum), within the configured bounds."""
    floor, ceiling = settings.CIMD_MIN_CACHE_SECONDS, settings.CIMD_MAX_CACHE_SECONDS
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


class CIMDFetcher(dot_cimd.SafeMetadataFetcher):
    """DOT's hardened fetcher with a whole-body deadline, identity encoding only, the development
    settings and reasons; ``fetch(client_id)`` returns ``(document, max_age)`` or raises
    ``DocumentRefused``."""

    chunk_size = 4096

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
            raise DocumentRefused("dns_failed", f"could not resolve {host!r}: {exc}") from exc
        ips = list(dict.fromkeys(info[4][0] for info in infos))
        for ip in ips:
            if not address_allowed(ip):
                raise DocumentRefused("address_refused", f"{host!r} resolves to a non-public address ({ip})")
        if not ips:
            raise DocumentRefused("dns_failed", f"{host!r} has no address")
        return ips

    def fetch(self, client_id: str) -> tuple[dict[str, Any], int]:
        parts = document_url(client_id)
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        ips = self.resolve(parts.hostname, port)
        deadline = time.monotonic() + settings.CIMD_FETCH_TIMEOUT
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {
            "Host": parts.netloc,
            "Accept": "application/json, application/*+json",
            "Accept-Encoding": "identity",
            "User-Agent": "oauth_server (client ID metadata document fetch)",
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
                last_error = DocumentRefused("timeout", "the document server did not answer in time")
                last_error.__cause__ = exc
            except urllib3.exceptions.HTTPError as exc:
                last_error = exc
            finally:
                pool.close()
        if isinstance(last_error, DocumentRefused):
            raise last_error
        if last_error is None:
            raise DocumentRefused("timeout", "the document server did not answer in time")
        raise DocumentRefused("fetch_failed", f"could not fetch the document: {type(last_error).__name__}")

    def read(self, response, deadline: float) -> tuple[dict[str, Any], int]:
        if response.status != 200:
            kind = "redirect" if 300 <= response.status < 400 else "http_status"
            raise DocumentRefused(kind, f"the document URL answered HTTP {response.status} (200 required)")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media_type != "application/json" and not (
            media_type.startswith("application/") and media_type.endswith("+json")
        ):
            raise DocumentRefused("content_type", f"the document is not JSON (Content-Type {media_type!r})")
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise DocumentRefused("content_encoding", f"compressed documents are refused ({encoding!r})")
        limit = settings.CIMD_MAX_DOCUMENT_SIZE
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise DocumentRefused("too_large", f"the document is larger than {limit} bytes")
        body = bytearray()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DocumentRefused("timeout", "the document server did not answer in time")
            sock = getattr(getattr(response, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(remaining)  # the deadline holds for every chunk, not per chunk
            try:
                chunk = response.read1(self.chunk_size)
            except (OSError, urllib3.exceptions.HTTPError) as exc:
                if isinstance(exc, (TimeoutError, socket.timeout, urllib3.exceptions.TimeoutError)):
                    raise DocumentRefused("timeout", "the document server did not answer in time") from exc
                raise
            if not chunk:
                break
            body += chunk
            if len(body) > limit:
                raise DocumentRefused("too_large", f"the document is larger than {limit} bytes")
        try:
            document = json.loads(bytes(body))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DocumentRefused("invalid_json", "the document is not valid JSON") from exc
        if not isinstance(document, dict):
            raise DocumentRefused("invalid_json", "the document is not a JSON object")
        return document, cache_seconds(response.headers.get("Cache-Control"))


# --- the document's checks ---------------------------------------------------------------------------
@dataclass
class ClientFields:
    """What a valid document sets on the Client."""

    name: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    grant_types: list[str]
    scopes: list[Any]
    uris: dict[str, str]


def _refuse(message: str) -> DocumentRefused:
    return DocumentRefused("invalid_metadata", message)


def client_fields(document: dict[str, Any], client_id: str) -> ClientFields:
    """Check a fetched document against the URL and the site policy (docs/client-registration.md)."""
    if document.get("client_id") != client_id:
        raise DocumentRefused(
            "client_id_mismatch", "the document's client_id is not the URL it was fetched from"
        )
    present = [member for member in FORBIDDEN_MEMBERS if member in document]
    if present:
        raise DocumentRefused(
            "forbidden_member", f"a metadata document must not contain {', '.join(present)}"
        )
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise DocumentRefused(
            "forbidden_member", f"token_endpoint_auth_method must be none (public client), not {method!r}"
        )
    for member in LIST_MEMBERS:
        value = document.get(member)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise _refuse(f"{member} must be an array of strings")
    for member in TEXT_MEMBERS:
        if document.get(member) is not None and not isinstance(document[member], str):
            raise _refuse(f"{member} must be a string")
    for member in (*LIST_MEMBERS, *TEXT_MEMBERS):
        value = document.get(member)
        if any("\x00" in v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)):
            raise _refuse(f"{member} contains a NUL character")
    redirect_uris = list(dict.fromkeys(document.get("redirect_uris") or []))
    if not redirect_uris:
        raise _refuse("redirect_uris must list at least one redirect URI")
    for uri in redirect_uris:
        if not is_exact_uri(uri):
            raise _refuse(f"redirect URI {uri!r} is not an exact absolute URI")
        parts = urlsplit(uri)
        if parts.scheme.lower() not in ("https", "http"):
            raise _refuse(f"redirect URI {uri!r}: only https, or http to a loopback address, is allowed")
        if parts.scheme.lower() == "http" and not _is_loopback_host(parts.hostname or ""):
            raise _refuse(f"redirect URI {uri!r}: plain http is allowed only to a loopback address")
    response_types = document.get("response_types") or ["code"]
    if set(response_types) != {"code"}:
        raise _refuse('response_types must be ["code"]')
    requested = document.get("grant_types") or ["authorization_code"]
    unsupported = sorted(set(requested) - {"authorization_code", "refresh_token"})
    if unsupported:
        raise _refuse(f"unsupported grant types: {', '.join(unsupported)}")
    grant_types = registration.self_registered_grant_types(requested)
    if "authorization_code" not in grant_types:
        raise _refuse("grant_types must include authorization_code")
    policy = list(registration.self_registered_scope_objects())
    asked = (document.get("scope") or "").split()
    scopes = [scope for scope in policy if scope.name in asked] if asked else policy
    name = (document.get("client_name") or "").strip()[:MAX_NAME_LENGTH] or urlsplit(client_id).hostname
    uris = {
        member: document.get(member) or "" for member in ("logo_uri", "client_uri", "policy_uri", "tos_uri")
    }
    return ClientFields(
        name=name,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=list(dict.fromkeys(document.get("post_logout_redirect_uris") or [])),
        grant_types=grant_types,
        scopes=scopes,
        uris=uris,
    )


# --- the client -------------------------------------------------------------------------------------
TRACKED = (
    "name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "logo_uri",
    "client_uri",
    "policy_uri",
    "tos_uri",
)


def _apply(client, fields: ClientFields, max_age: int) -> None:
    client.name = fields.name
    client.redirect_uris = " ".join(fields.redirect_uris)
    client.post_logout_redirect_uris = " ".join(fields.post_logout_redirect_uris)
    client.grant_types = fields.grant_types
    for member, value in fields.uris.items():
        setattr(client, member, value)
    client.client_type = client.CLIENT_PUBLIC
    client.token_endpoint_auth_method = "none"
    client.registration_source = client.RegistrationSource.CIMD
    client.cimd_expires_at = timezone.now() + timedelta(seconds=max_age)
    try:
        client.full_clean(exclude=["client_secret"], validate_unique=False)
    except ValidationError as exc:
        raise _refuse("; ".join(exc.messages)) from exc


def _upsert(client_id: str, document: dict[str, Any], max_age: int):
    """Create or update the client from a checked document, atomically; returns (client, changes)."""
    from .models import Client

    fields = client_fields(document, client_id)
    with transaction.atomic():
        client = Client.objects.select_for_update().filter(client_id=client_id).first()
        created = client is None
        if created:
            client = Client(client_id=client_id, user=None, skip_consent=False, client_secret="")
            client.audiences = registration.self_registered_audiences()
            before: dict[str, Any] = {}
            old_scopes: set[str] = set()
        else:
            if client.registration_source != Client.RegistrationSource.CIMD:
                raise DocumentRefused("collision", "a client registered otherwise already has this client_id")
            before = {name: getattr(client, name) for name in TRACKED}
            old_scopes = set(client.allowed_scopes.values_list("name", flat=True))
        _apply(client, fields, max_age)
        client.save()
        client.allowed_scopes.set(fields.scopes)
    changed = sorted(name for name in TRACKED if not created and before[name] != getattr(client, name))
    if not created and old_scopes != {scope.name for scope in fields.scopes}:
        changed.append("allowed_scopes")
    return client, created, changed


def _failed(client_id: str, request: Any, error: DocumentRefused, client=None) -> None:
    audit.record(
        audit.Event.CIMD_FETCH_FAILED,
        request=request,
        client=client,
        outcome=audit.FAILURE,
        client_id=client_id,
        reason=error.reason,
        message=str(error),
        refresh=client is not None,
    )


def load_client(client_id: str, request: Any = None):
    """The client a document URL names: the stored one while fresh, else fetched (first use) or
    refreshed (``cimd_expires_at`` passed). None when refused: unknown client to the caller.

    A refresh that fails keeps the last good document (the client keeps working; the failure is
    audited and backed off); a refresh that succeeds replaces it atomically.
    """
    from .models import Client

    existing = Client.objects.filter(client_id=client_id).first()
    if existing is not None and existing.registration_source != Client.RegistrationSource.CIMD:
        return existing  # staff registered this URL themselves: no document involved
    try:
        parts = document_url(client_id)
    except DocumentRefused as error:
        if existing is None:
            _failed(client_id, request, error)
        return None
    host = parts.hostname
    blocked = host_blocked(host)
    if blocked or not host_allowed(host):
        reason = "host_blocked" if blocked else "host_not_allowed"
        _failed(client_id, request, DocumentRefused(reason, f"documents from {host!r} are refused"), existing)
        return None
    if existing is not None and existing.cimd_expires_at and timezone.now() < existing.cimd_expires_at:
        return existing
    backoff_key = dot_cimd._backoff_cache_key(client_id)
    if cache.get(backoff_key):
        return existing
    with dot_cimd._fetch_slot() as acquired:
        if not acquired:
            logger.warning("Client metadata document fetch skipped (in-flight cap reached): %s", client_id)
            return existing
        try:
            document, max_age = CIMDFetcher().fetch(client_id)
            client, created, changed = _upsert(client_id, document, max_age)
        except DocumentRefused as error:
            cache.set(backoff_key, True, settings.CIMD_FAILURE_BACKOFF)
            _failed(client_id, request, error, existing)
            return existing
        except IntegrityError:
            # The same URL's first use in another request won the race: its row is as good.
            return Client.objects.filter(client_id=client_id).first()
        except Exception:
            # A client-controlled URL on an unauthenticated path: never a 500.
            logger.exception("Client metadata document %s could not be loaded", client_id)
            cache.set(backoff_key, True, settings.CIMD_FAILURE_BACKOFF)
            _failed(client_id, request, DocumentRefused("error", "unexpected error"), existing)
            return existing
    if created or changed:
        audit.record(
            audit.Event.CLIENT_REGISTERED,
            request=request,
            client=client,
            source="cimd",
            host=host,
            action="created" if created else "updated",
            changed=changed,
            expires_at=client.cimd_expires_at,
        )
    return client


def host_of(client_id: str) -> str | None:
    """The host name of a document URL (lower case, no port or brackets)."""
    try:
        return (urlsplit(client_id).hostname or "").lower() or None
    except ValueError:
        return None


def clients_of_host(host: str):
    """The metadata-document clients whose client_id URL is on ``host`` (ALLOWED_HOSTS syntax)."""
    from .models import Client

    clients = Client.objects.filter(registration_source=Client.RegistrationSource.CIMD)
    ids = [
        pk
        for pk, client_id in clients.values_list("pk", "client_id")
        if validate_host(host_of(client_id) or "", [host.lower()])
    ]
    return clients.filter(pk__in=ids)


def block_host(host: str, reason: str = "") -> tuple[Any, int]:
    """Block a host (``BlockedClientHost``) and disable the clients registered from it (their
    tokens are revoked by the ``is_enabled`` receiver). Returns the block and how many clients."""
    from .models import BlockedClientHost

    with transaction.atomic():
        block, _created = BlockedClientHost.objects.get_or_create(
            host=host.strip().lower(), defaults={"reason": reason}
        )
        disabled = 0
        for client in clients_of_host(block.host).filter(is_enabled=True):
            client.is_enabled = False
            client.save(update_fields=["is_enabled", "updated"])
            disabled += 1
    return block, disabled
