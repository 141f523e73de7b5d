"""Dynamic client registration (RFC 7591) and management (RFC 7592): the policy and the writes.

The views (``views/registration.py``) parse HTTP and answer JSON; everything they decide is here:

- who may register (``REGISTRATION_POLICY``: closed, initial access token, open);
- what a self-registered client may have: redirect URIs (``validators.self_registered_redirect_uri_error``),
  grant types (the grant registry, limited by ``SELF_REGISTERED_GRANT_TYPES``), a client-authentication
  method (``client_auth.registry``), scopes (``SELF_REGISTERED_SCOPES``, never ``ADMIN_API_SCOPE``), never
  ``skip_consent``;
- the credentials: initial access tokens and registration access tokens are random values stored as
  SHA-256 only; the registration access token is rotated on every update.

Every write is one transaction: a refused request saves nothing (the client, its scopes, its
registration row, the initial access token's use count).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import transaction
from django.db.models import F, Max, Q, QuerySet
from django.utils import timezone

from . import client_auth, grants, signals
from .conf import settings
from .models import (
    SCOPE_TOKEN_RE,
    AccessToken,
    Client,
    ClientRegistration,
    Grant,
    InitialAccessToken,
    RefreshToken,
    Scope,
)
from .validators import self_registered_redirect_uri_error

CLOSED = "closed"
INITIAL_ACCESS_TOKEN = "initial_access_token"
OPEN = "open"
POLICIES = (CLOSED, INITIAL_ACCESS_TOKEN, OPEN)

#: Sources of clients nobody vetted (``Client.registration_source``): they registered themselves.
SELF_REGISTERED_SOURCES = (Client.RegistrationSource.DCR, Client.RegistrationSource.CIMD)

# RFC 7591 3.2.2 error codes.
INVALID_REDIRECT_URI = "invalid_redirect_uri"
INVALID_CLIENT_METADATA = "invalid_client_metadata"
INVALID_SOFTWARE_STATEMENT = "invalid_software_statement"

# Bounds on what one registration may hold (hostile payloads: huge arrays, long strings).
MAX_REDIRECT_URIS = 20
MAX_CONTACTS = 10
MAX_SCOPES = 100
MAX_GRANT_TYPES = 10
MAX_NAME = 255
MAX_LINK = 500
MAX_SOFTWARE_FIELD = 255
TOKEN_BYTES = 32

#: Members a client may not set for itself: the site's administrators decide them. Refused with a
#: clear error rather than ignored, so a registrant learns at once that it cannot have them.
SERVER_CONTROLLED = frozenset(
    {
        "security_profile",  # docs/fapi.md: chosen by the site's administrators, never by the client
        "skip_consent",
        "skip_authorization",
        "is_enabled",
        "allowed_scopes",
        "audiences",
        "resource_identifiers",
        "client_type",
        "user",
        "access_token_lifetime",
        "refresh_token_lifetime",
        "access_token_format",
        "allowed_origins",
        "registration_source",
        "client_id_issued_at",
        "client_secret_expires_at",
        "registration_access_token",
        "registration_client_uri",
    }
)


class RegistrationError(Exception):
    """A refused registration request: the RFC 7591 3.2.2 error code, its description, the status."""

    def __init__(self, error: str, description: str, status: int = 400, *, token_presented: bool = True):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        # RFC 6750 3.1: a 401 to a request with no token at all carries no error in its challenge.
        self.token_presented = token_presented


def _invalid(description: str) -> RegistrationError:
    return RegistrationError(INVALID_CLIENT_METADATA, description)


# --- policy -----------------------------------------------------------------------------------------
def policy() -> str:
    """The ``REGISTRATION_POLICY`` in force (an unknown value is treated as closed; checks.py reports it)."""
    value = settings.REGISTRATION_POLICY
    return value if value in POLICIES else CLOSED


def is_self_registered(client: Client) -> bool:
    """Whether nobody vetted the client: it registered itself (DCR) or names a metadata document (CIMD)."""
    return client.registration_source in SELF_REGISTERED_SOURCES


def self_registered_scope_objects() -> QuerySet:
    """The database scopes a self-registered client (DCR or CIMD) may be allowed.

    ``SELF_REGISTERED_SCOPES`` (None: every scope); ``ADMIN_API_SCOPE`` is never among them.
    """
    scopes = Scope.objects.order_by("name")
    configured = settings.SELF_REGISTERED_SCOPES
    if configured is not None:
        scopes = scopes.filter(name__in=list(configured))
    return scopes.exclude(name=settings.ADMIN_API_SCOPE)


def self_registered_scopes() -> list[str]:
    """Names of ``self_registered_scope_objects``."""
    return list(self_registered_scope_objects().values_list("name", flat=True))


def self_registered_grant_types(requested: list[str] | None = None) -> list[str]:
    """The grant types a client may register for itself: the grant registry's, as the setting limits
    (and, given ``requested``, only those it asked for), in the registry's order."""
    allowed = set(settings.SELF_REGISTERED_GRANT_TYPES or ())
    names = [name for name in grants.registry.names() if name in allowed]
    return names if requested is None else [name for name in names if name in requested]


def self_registered_audiences() -> list[str]:
    """RFC 8707 resources every self-registered client may ask tokens for (``SELF_REGISTERED_AUDIENCES``)."""
    return list(settings.SELF_REGISTERED_AUDIENCES or [])


@dataclass(frozen=True)
class ClientOrigin:
    """Where a client nobody vetted comes from, for the consent and Connected apps pages."""

    source: str  # Client.RegistrationSource: "dcr" or "cimd"
    host: str = ""  # cimd: the metadata document's host (its client_id is the document's URL)


def client_origin(client: Client) -> ClientOrigin | None:
    """None for a client an operator registered; else its source and, for a metadata document,
    the host serving it, in ASCII (punycode) so a look-alike Unicode host cannot pass for another."""
    if not is_self_registered(client):
        return None
    host = ""
    if client.registration_source == Client.RegistrationSource.CIMD:
        try:
            parts = urlsplit(client.client_id)
            host = parts.hostname or ""
            port = parts.port
        except ValueError:
            host, port = "", None
        with contextlib.suppress(UnicodeError):  # not IDNA-encodable: shown as parsed
            host = host.encode("idna").decode("ascii")
        if ":" in host:
            host = f"[{host}]"
        if host and port and port != {"https": 443, "http": 80}.get(parts.scheme):
            host = f"{host}:{port}"
    return ClientOrigin(str(client.registration_source), host)


# --- credentials ------------------------------------------------------------------------------------
def checksum(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def _new_token() -> tuple[str, str]:
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    return raw, checksum(raw)


def create_initial_access_token(
    *, expires_in: int | None, max_uses: int | None = 1, description: str = ""
) -> tuple[str, InitialAccessToken]:
    """Issue an initial access token; return its clear value (shown once) and the stored row."""
    raw, digest = _new_token()
    expires_at = timezone.now() + timedelta(seconds=expires_in) if expires_in else None
    row = InitialAccessToken.objects.create(
        token_checksum=digest, expires_at=expires_at, max_uses=max_uses, description=description
    )
    return raw, row


def find_initial_access_token(raw: str | None) -> InitialAccessToken | None:
    """The usable (unexpired, with uses left) initial access token with this value, or None."""
    if not raw or "\x00" in raw or len(raw) > 512:
        return None
    return InitialAccessToken.objects.usable().filter(token_checksum=checksum(raw)).first()


def _use_initial_access_token(token: InitialAccessToken) -> bool:
    """Spend one use, atomically (two concurrent registrations cannot both take the last use)."""
    now = timezone.now()
    updated = (
        InitialAccessToken.objects.usable()
        .filter(pk=token.pk)
        .update(use_count=F("use_count") + 1, last_used_at=now)
    )
    return updated == 1


def find_registration(client_id: Any, raw: str | None) -> ClientRegistration | None:
    """The registration of ``client_id`` if ``raw`` is its registration access token, else None."""
    if not raw or "\x00" in raw or len(raw) > 512:
        return None
    registration = (
        ClientRegistration.objects.select_related("client")
        .filter(client__in=Client.objects.by_client_id(client_id))
        .first()
    )
    if registration is None:
        # Same work as a match, so timing tells nothing about which client_ids exist.
        hmac.compare_digest(checksum(raw), "0" * 64)
        return None
    if not hmac.compare_digest(checksum(raw), registration.access_token_checksum):
        return None
    if registration.client.registration_source != Client.RegistrationSource.DCR:
        return None
    return registration


# --- metadata -------------------------------------------------------------------------------------
@dataclass
class Metadata:
    """A validated registration request, as model fields."""

    fields: dict[str, Any]  # Client fields
    scopes: list[str]
    extra: dict[str, Any] = field(default_factory=dict)  # ClientRegistration.metadata


def _has_control(value: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def _string(data: dict, name: str, max_length: int) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _invalid(f"{name} must be a string.")
    if len(value) > max_length:
        raise _invalid(f"{name} must be at most {max_length} characters long.")
    if _has_control(value):
        raise _invalid(f"{name} cannot contain control characters.")
    return value.strip()


def _list_of_strings(data: dict, name: str, max_items: int, default: list[str] | None = None) -> list[str]:
    value = data.get(name)
    if value is None:
        return list(default or [])
    if not isinstance(value, list):
        raise _invalid(f"{name} must be an array of strings.")
    if len(value) > max_items:
        raise _invalid(f"{name} may hold at most {max_items} values.")
    if not all(isinstance(item, str) for item in value):
        raise _invalid(f"Each value of {name} must be a string.")
    return list(dict.fromkeys(value))


def _link(data: dict, name: str) -> str:
    url = _string(data, name, MAX_LINK)
    if not url:
        return ""
    try:
        URLValidator(schemes=["https"])(url)
    except ValidationError:
        raise _invalid(f"{name} must be an https URL.") from None
    return url


def _grant_types(data: dict) -> list[str]:
    names = _list_of_strings(data, "grant_types", MAX_GRANT_TYPES, default=["authorization_code"])
    if not names:
        raise _invalid("grant_types must not be empty.")
    unknown = [g for g in names if g not in grants.registry]
    if unknown:
        raise _invalid(
            f"Unsupported grant type {unknown[0]!r}; this server supports: "
            + ", ".join(grants.registry.names())
            + "."
        )
    allowed = self_registered_grant_types()
    refused = [g for g in names if g not in allowed]
    if refused:
        raise _invalid(
            f"The grant type {refused[0]!r} is not available to self-registered clients; allowed: "
            + (", ".join(allowed) or "none")
            + "."
        )
    return names


def _response_types(data: dict, grant_types: list[str]) -> None:
    """RFC 7591 2.1: response_types and grant_types must agree (``code`` with authorization_code)."""
    code_flow = "authorization_code" in grant_types
    names = _list_of_strings(data, "response_types", 5, default=["code"] if code_flow else [])
    supported = grants.registry.response_types()
    unknown = [r for r in names if r not in supported]
    if unknown:
        raise _invalid(
            f"Unsupported response type {unknown[0]!r}; this server supports: " + ", ".join(supported) + "."
        )
    if code_flow != ("code" in names):
        raise _invalid('response_types must be ["code"] exactly when grant_types has authorization_code.')


def _auth_method(data: dict) -> client_auth.ClientAuthMethod:
    name = data.get("token_endpoint_auth_method", "client_secret_basic")
    method = client_auth.registry.get(name) if isinstance(name, str) else None
    if method is None:
        raise _invalid(
            f"Unsupported token_endpoint_auth_method {name!r}; this server supports: "
            + ", ".join(client_auth.registry.names())
            + "."
        )
    return method


def _redirect_uris(data: dict, grant_types: list[str]) -> list[str]:
    value = data.get("redirect_uris")
    if value is not None and not isinstance(value, list):
        raise RegistrationError(INVALID_REDIRECT_URI, "redirect_uris must be an array of strings.")
    if isinstance(value, list) and len(value) > MAX_REDIRECT_URIS:
        raise RegistrationError(INVALID_REDIRECT_URI, f"At most {MAX_REDIRECT_URIS} redirect URIs.")
    uris = list(dict.fromkeys(value or []))
    for uri in uris:
        error = self_registered_redirect_uri_error(uri)
        if error:
            raise RegistrationError(INVALID_REDIRECT_URI, error)
    if "authorization_code" in grant_types and not uris:
        raise RegistrationError(INVALID_REDIRECT_URI, "redirect_uris is required for authorization_code.")
    return uris


def _scopes(data: dict) -> list[str]:
    allowed = self_registered_scopes()
    value = data.get("scope")
    if value is None:
        return allowed  # RFC 7591 2: the server may register a default set of scopes
    if not isinstance(value, str):
        raise _invalid("scope must be a string of space-separated scope names.")
    names = list(dict.fromkeys(value.split(" ")))
    names = [n for n in names if n]
    if len(names) > MAX_SCOPES:
        raise _invalid(f"scope may name at most {MAX_SCOPES} scopes.")
    bad = [n for n in names if not SCOPE_TOKEN_RE.match(n)]
    if bad:
        raise _invalid("scope must be scope names separated by single spaces (RFC 6749 3.3).")
    if settings.ADMIN_API_SCOPE in names:
        raise _invalid(
            f"The scope {settings.ADMIN_API_SCOPE!r} is never available to self-registered clients."
        )
    refused = [n for n in names if n not in allowed]
    if refused:
        raise _invalid("Scopes not available to self-registered clients: " + " ".join(refused[:10]) + ".")
    return names


def _contacts(data: dict) -> list[str]:
    contacts = _list_of_strings(data, "contacts", MAX_CONTACTS)
    for contact in contacts:
        try:
            validate_email(contact)
        except ValidationError:
            raise _invalid("contacts must be email addresses.") from None
    return contacts


def parse_metadata(data: Any, *, client: Client | None = None) -> Metadata:
    """Validate an RFC 7591 registration request (or an RFC 7592 update of ``client``).

    Members this server does not know are ignored (RFC 7591 2); members only an administrator may
    set are refused (``SERVER_CONTROLLED``).
    """
    if not isinstance(data, dict):
        raise _invalid("The request body must be a JSON object.")
    if "software_statement" in data:
        raise RegistrationError(
            INVALID_SOFTWARE_STATEMENT, "This server does not accept software statements."
        )
    controlled = sorted(name for name in data if name in SERVER_CONTROLLED)
    if controlled:
        raise _invalid(f"{controlled[0]} is set by the server's administrators, not by registration.")
    if client is None and ("client_id" in data or "client_secret" in data):
        raise _invalid("client_id and client_secret are issued by the server.")
    grant_types = _grant_types(data)
    _response_types(data, grant_types)
    method = _auth_method(data)
    fields = {
        "name": _string(data, "client_name", MAX_NAME),
        "client_type": Client.CLIENT_CONFIDENTIAL if method.confidential else Client.CLIENT_PUBLIC,
        "token_endpoint_auth_method": method.name,
        "grant_types": grant_types,
        "redirect_uris": " ".join(_redirect_uris(data, grant_types)),
        **{name: _link(data, name) for name in ("logo_uri", "client_uri", "policy_uri", "tos_uri")},
    }
    extra = {
        "contacts": _contacts(data),
        "software_id": _string(data, "software_id", MAX_SOFTWARE_FIELD),
        "software_version": _string(data, "software_version", MAX_SOFTWARE_FIELD),
    }
    return Metadata(fields=fields, scopes=_scopes(data), extra={k: v for k, v in extra.items() if v})


def _validation_description(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in error.message_dict.items())
    return "; ".join(error.messages)


# --- writes -------------------------------------------------------------------------------------------
@dataclass
class Registered:
    client: Client
    registration: ClientRegistration
    access_token: str  # the registration access token, in clear (only in this response)
    client_secret: str | None = None  # in clear, only when just issued


def register(metadata: Metadata, *, initial_access_token: InitialAccessToken | None = None) -> Registered:
    """Create the client, its allowed scopes and its registration, in one transaction."""
    secret = None
    client = Client(
        registration_source=Client.RegistrationSource.DCR,
        skip_consent=False,
        audiences=list(settings.SELF_REGISTERED_AUDIENCES or []),
        **metadata.fields,
    )
    if client.client_type == Client.CLIENT_CONFIDENTIAL:
        secret = client.set_secret()
    try:
        client.full_clean()
    except ValidationError as error:
        raise _invalid(_validation_description(error)) from None
    raw, digest = _new_token()
    with transaction.atomic():
        if initial_access_token is not None and not _use_initial_access_token(initial_access_token):
            raise RegistrationError("invalid_token", "The initial access token is expired or used up.", 401)
        client.save()
        client.allowed_scopes.set(Scope.objects.filter(name__in=metadata.scopes))
        registration = ClientRegistration.objects.create(
            client=client,
            access_token_checksum=digest,
            initial_access_token=initial_access_token,
            metadata=metadata.extra,
        )
        transaction.on_commit(
            lambda: signals.client_registered.send(sender=Client, client=client, registration=registration)
        )
    return Registered(client, registration, raw, secret)


def update(registration: ClientRegistration, metadata: Metadata) -> Registered:
    """RFC 7592 2.2: replace the client's metadata; the registration access token is rotated."""
    client = registration.client
    if metadata.fields["client_type"] != client.client_type:
        raise _invalid(
            "token_endpoint_auth_method cannot change between none and a secret-based method: "
            "register a new client."
        )
    before = {name: getattr(client, name) for name in metadata.fields}
    before_scopes = sorted(client.allowed_scopes.values_list("name", flat=True))
    for name, value in metadata.fields.items():
        setattr(client, name, value)
    # To client_secret_jwt: its HMAC key must be readable, and only a hash of the current secret is
    # stored, so a new secret is issued in this response (RFC 7592 2.2 allows a new client_secret).
    secret = client.set_secret() if client.needs_new_secret else None
    try:
        client.full_clean()
    except ValidationError as error:
        raise _invalid(_validation_description(error)) from None
    raw, digest = _new_token()
    with transaction.atomic():
        client.save()
        client.allowed_scopes.set(Scope.objects.filter(name__in=metadata.scopes))
        registration.access_token_checksum = digest
        registration.token_issued_at = timezone.now()
        registration.metadata = metadata.extra
        registration.save()
        changed = sorted(name for name, value in metadata.fields.items() if before[name] != value)
        if sorted(metadata.scopes) != before_scopes:
            changed.append("allowed_scopes")
        transaction.on_commit(
            lambda: signals.client_registration_updated.send(
                sender=Client, client=client, registration=registration, changed=changed
            )
        )
        if secret is not None:  # as flows.clients.secret_rotated: the audit receiver records it
            transaction.on_commit(lambda: signals.client_secret_rotated.send(sender=Client, client=client))
    return Registered(client, registration, raw, secret)


def unregister(registration: ClientRegistration, *, via: str = "rfc7592") -> None:
    """Delete the client: its tokens, codes, consents and registration go with it (cascade)."""
    client = registration.client
    client_id, name = client.client_id, client.name
    with transaction.atomic():
        client.delete()
        transaction.on_commit(
            lambda: signals.client_registration_deleted.send(
                sender=Client, client_id=client_id, name=name, via=via
            )
        )


def client_metadata(registered: Client, registration: ClientRegistration) -> dict[str, Any]:
    """The registered metadata, as RFC 7591 3.2.1 returns it (without the credentials)."""
    client = registered
    data: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created.timestamp()) if client.created else None,
        "client_name": client.name or None,
        "redirect_uris": client.redirect_uri_list,
        "grant_types": list(client.grant_types or []),
        "response_types": ["code"] if client.has_grant_type("authorization_code") else [],
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "scope": " ".join(sorted(client.allowed_scopes.values_list("name", flat=True))),
        **{
            name: getattr(client, name) or None
            for name in ("logo_uri", "client_uri", "policy_uri", "tos_uri")
        },
        **(registration.metadata or {}),
    }
    if client.client_type == Client.CLIENT_CONFIDENTIAL:
        data["client_secret_expires_at"] = 0  # RFC 7591 3.2.1: 0 = does not expire
    return {key: value for key, value in data.items() if value is not None}


# --- unused registrations -----------------------------------------------------------------------------
def last_activity(client: Client) -> datetime:
    """When the client last did anything: its newest token or code, else its registration."""
    times = [client.created]
    for model in (AccessToken, RefreshToken, Grant):
        newest = model.objects.filter(application=client).aggregate(newest=Max("created"))["newest"]
        if newest:
            times.append(newest)
    return max(t for t in times if t is not None)


def unused_registrations(days: int) -> QuerySet:
    """Self-registered clients created more than ``days`` days ago with no access token, refresh
    token or authorization code created since (a sign-in, a refresh or an approval creates one)."""
    cutoff = timezone.now() - timedelta(days=days)
    recent = Q()
    for relation in ("accesstoken", "refreshtoken", "grant"):
        recent |= Q(**{f"{relation}__created__gte": cutoff})
    active = Client.objects.filter(recent).values("pk")
    return (
        Client.objects.filter(registration_source__in=SELF_REGISTERED_SOURCES, created__lt=cutoff)
        .exclude(pk__in=active)
        .order_by("created", "pk")
    )
