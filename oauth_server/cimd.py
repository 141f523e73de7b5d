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

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http.request import validate_host
from django.utils import timezone
from oauth2_provider import cimd as dot_cimd

from . import audit, fetcher, registration
from .conf import settings
from .validators import is_exact_uri

logger = logging.getLogger(__name__)

MAX_CLIENT_ID_LENGTH = 255
MAX_NAME_LENGTH = 100
# Members a metadata document must not carry (draft section 4.1: no shared secret).
FORBIDDEN_MEMBERS = ("client_secret", "client_secret_expires_at")
LIST_MEMBERS = ("redirect_uris", "post_logout_redirect_uris", "grant_types", "response_types")
TEXT_MEMBERS = ("client_name", "scope", "logo_uri", "client_uri", "policy_uri", "tos_uri")


# A refused fetch or document; ``reason`` is a short code for the audit trail (fetcher.py).
DocumentRefused = fetcher.FetchRefused


# --- which URLs are document URLs -------------------------------------------------------------------
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
            return fetcher.is_loopback_host(urlsplit(client_id).hostname or "")
        except ValueError:
            return False
    return False


def document_url(client_id: str) -> SplitResult:
    """The client_id checked as a document URL (draft section 3): https (or plain http to a loopback
    host, in development), a host, a path, no userinfo, fragment or dot segments, a bounded length."""
    if len(client_id) > MAX_CLIENT_ID_LENGTH:
        raise DocumentRefused("invalid_url", f"client_id URL longer than {MAX_CLIENT_ID_LENGTH} characters")
    return fetcher.https_url(client_id, name="client_id")


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
class CIMDFetcher(fetcher.SafeJSONFetcher):
    """The hardened fetcher (fetcher.py) on a client_id URL: the draft's URL rules and the
    document's cache bounds; ``fetch(client_id)`` returns ``(document, max_age)`` or raises
    ``DocumentRefused``."""

    user_agent = "oauth_server (client ID metadata document fetch)"

    def check_url(self, url: str) -> SplitResult:
        return document_url(url)

    def max_age(self, cache_control: str | None) -> int:
        return cache_seconds(cache_control)


def cache_seconds(cache_control: str | None) -> int:
    """Cache-Control max-age within CIMD_MIN/MAX_CACHE_SECONDS."""
    return fetcher.cache_seconds(
        cache_control, settings.CIMD_MIN_CACHE_SECONDS, settings.CIMD_MAX_CACHE_SECONDS
    )


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
        if parts.scheme.lower() == "http" and not fetcher.is_loopback_host(parts.hostname or ""):
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
