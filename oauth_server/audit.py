"""The audit trail: one ``record()`` call per security-relevant event (see docs/audit.md).

Each event becomes an ``AuditEvent`` row, an ``oauth_server.signals.audit_event`` signal and a
structured log record on the ``oauth_server.audit`` logger, so a site can keep it in the database,
forward it from a receiver, or ship it with its logging configuration (Keycloak events, Hydra audit
logs). Recording never breaks the request that triggers it: any failure is logged and swallowed.

Transactions:

- a success event is saved, logged and signalled when the caller's transaction commits
  (``transaction.on_commit``; at once in autocommit): an action that rolls back leaves no event
  claiming it happened, and the write is one INSERT in autocommit, outside the request's
  transaction (the token endpoint's included);
- a failure event (``client_auth_failed``, reuse or replay detection, ...) is saved at once, inside
  a savepoint when there is a transaction, and logged and signalled at once. The code that records
  one answers with an error *response*, which commits (TokenView commits errors found before
  anything is issued; ``ATOMIC_REQUESTS`` only rolls back on an exception); should the
  transaction still roll back, the log record has already been written.

Where from. The IP and user agent come from the request passed in (a Django request, or an oauthlib
request, whose headers are DOT's copy of ``request.META``), else from the request being served
(captured from ``request_started``, so receivers of model signals get them too). The IP is
``REMOTE_ADDR``; ``X-Forwarded-For`` is believed only behind the proxies listed in
``TRUSTED_PROXIES`` (the rate limiter's rule too: ``network.py``). With ``AuditContextMiddleware``
installed, events without a user (client changes in the admin) name the signed-in staff user, and
events about another user name them as ``details["actor"]``.
"""

from __future__ import annotations

import datetime
import functools
import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from django.core.signals import request_finished, request_started
from django.db import router, transaction
from django.http import HttpRequest

from . import compiled, profiles, signals
from .conf import settings
from .models import AuditEvent, Client, plausible_client_id
from .network import client_address
from .request_state import credentials_of, state_of

logger = logging.getLogger("oauth_server.audit")

Event = AuditEvent.Event
SUCCESS = AuditEvent.Outcome.SUCCESS
FAILURE = AuditEvent.Outcome.FAILURE


class AuditWriteFailed(Exception):
    """An ``IN_TRANSACTION`` event could not be written; its transaction must be rolled back."""


# Events written inside the request's transaction rather than after it commits: the token
# endpoint's, the hottest path. The row commits with the token (one commit, one fsync on SQLite,
# instead of two) and no token exists without its event. Other success events wait for the commit,
# so a failed audit write can never undo what it describes.
IN_TRANSACTION = frozenset({Event.TOKEN_ISSUED, Event.TOKEN_REFRESHED, Event.TOKEN_EXCHANGED})

#: Detail keys that would carry a credential: dropped, whatever the caller passes (defence in depth).
SECRET_DETAIL_KEYS = frozenset(
    {
        "access_token",
        "assertion",
        "client_assertion",
        "client_secret",
        "encrypted_client_secret",
        "code",
        "code_verifier",
        "id_token",
        "id_token_hint",
        "password",
        "refresh_token",
        "secret",
        "token",
    }
)
MAX_DETAIL_STRING = 1000
USER_AGENT_LENGTH = AuditEvent._meta.get_field("user_agent").max_length
CLIENT_ID_LENGTH = AuditEvent._meta.get_field("client_id").max_length
_META_KEYS = ("REMOTE_ADDR", "HTTP_USER_AGENT", "HTTP_X_FORWARDED_FOR")

# The request being served: a Django request (AuditContextMiddleware) or the META values captured
# from request_started. Context-local, so threads and asyncio tasks each see their own.
_current: ContextVar[Any] = ContextVar("oauth_server_audit_request", default=None)


# --- the request being served ------------------------------------------------------------------
def _remember_request(
    sender: Any, environ: Mapping | None = None, scope: Mapping | None = None, **kwargs: Any
) -> None:
    """IP and user agent of the request being served, for events recorded without a request."""
    meta: dict[str, str] = {}
    if environ is not None:
        meta = {key: environ[key] for key in _META_KEYS if isinstance(environ.get(key), str)}
    elif scope is not None:
        client = scope.get("client")
        if client:
            meta["REMOTE_ADDR"] = str(client[0])
        for name, value in scope.get("headers") or ():
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            if key in _META_KEYS:
                meta[key] = value.decode("latin-1")
    _current.set(meta)


def _forget_request(sender: Any, **kwargs: Any) -> None:
    _current.set(None)


request_started.connect(_remember_request, dispatch_uid="oauth_server.audit.remember_request")
request_finished.connect(_forget_request, dispatch_uid="oauth_server.audit.forget_request")


class AuditContextMiddleware:
    """Optional: makes the request (and its signed-in user) known to events recorded deep down.

    Without it, events recorded without a request still get the IP and user agent; with it, they
    also name the staff user who acted (``user`` when the event has none, else ``details.actor``).
    """

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        token = _current.set(request)
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)


# --- where from ----------------------------------------------------------------------------------
def _meta(request: Any) -> Mapping | None:
    source = request if request is not None else _current.get()
    if source is None or isinstance(source, Mapping):
        return source
    meta = getattr(source, "META", None)
    if meta is not None:
        return meta
    # oauthlib's Request: DOT passes a copy of request.META as its headers.
    return getattr(source, "headers", None)


def client_ip(meta: Mapping | None) -> str | None:
    """The caller's address (``network.client_address``: REMOTE_ADDR, or behind TRUSTED_PROXIES the
    right-most X-Forwarded-For hop that is not one of them)."""
    address = client_address(meta)
    return str(address) if address is not None else None


def _actor(request: Any):
    """The signed-in user of the Django request, if it was already loaded (never a query)."""
    source = request if isinstance(request, HttpRequest) else _current.get()
    user = getattr(source, "_cached_user", None) if isinstance(source, HttpRequest) else None
    return user if user is not None and user.is_authenticated else None


# --- what -----------------------------------------------------------------------------------------
def _text(value: str, limit: int = MAX_DETAIL_STRING) -> str:
    # PostgreSQL text and jsonb cannot hold NUL characters.
    return value.replace("\x00", "")[:limit]


def clean_details(value: Any) -> Any:
    """JSON-safe details without credentials: secret-named keys dropped, long strings cut."""
    if isinstance(value, Mapping):
        cleaned = {}
        for key, item in value.items():
            name = _text(str(key), 100)
            if name.lower() in SECRET_DETAIL_KEYS:
                logger.warning("Audit detail %r dropped: details never hold credentials", name)
                continue
            cleaned[name] = clean_details(item)
        return cleaned
    if isinstance(value, (set, frozenset)):
        return [clean_details(item) for item in sorted(value, key=str)]
    if isinstance(value, (list, tuple)):
        return [clean_details(item) for item in value]
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return _text(str(value))


def _fields(event, request, user, client, outcome, details) -> dict[str, Any]:
    meta = _meta(request)
    actor = _actor(request)
    username = details.pop("username", "")
    client_id = details.pop("client_id", "")
    if user is None and actor is not None:
        user = actor
    elif actor is not None and user is not None and actor.pk != user.pk:
        details["actor"] = actor.get_username()
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None  # AnonymousUser
    return {
        "event": str(event),
        "outcome": str(outcome),
        "user": user,
        "username": _text(user.get_username() if user is not None else str(username or ""), 150),
        "application": client,
        "client_id": _text(
            client.client_id if client is not None else str(client_id or ""), CLIENT_ID_LENGTH
        ),
        "ip": client_ip(meta),
        "user_agent": _text(str((meta or {}).get("HTTP_USER_AGENT") or ""), USER_AGENT_LENGTH),
        "details": clean_details(details),
    }


# --- recording ------------------------------------------------------------------------------------
def record(
    event: str,
    *,
    request: Any = None,
    user: Any = None,
    client: Any = None,
    outcome: str = SUCCESS,
    **details: Any,
) -> AuditEvent | None:
    """Record one audit event; never raises.

    ``username=`` and ``client_id=`` fill the copies when there is no user or client object (a
    failed login, an unknown client). Returns the event, or None when auditing is off or the event
    could not be built. A success event is saved when the transaction commits (its ``pk`` is set
    then); a failure event at once; a token event inside the token endpoint's transaction, in it
    (``IN_TRANSACTION``), and if that INSERT fails, ``AuditWriteFailed`` is raised: the caller's
    transaction cannot commit (it must roll back, and answer with an error).
    """
    mode = settings.AUDIT_LOG
    if not mode:
        return None
    try:
        fields = _fields(event, request, user, client, outcome, details)
    except Exception:
        logger.exception("Audit event %s could not be recorded", event)
        return None
    instance = AuditEvent(**fields)
    using = router.db_for_write(AuditEvent)
    save = mode != "log-only"
    if instance.outcome == FAILURE:
        _save_and_emit(instance, fields, using, save)
    elif event in IN_TRANSACTION and transaction.get_connection(using).in_atomic_block:
        _save_in_transaction(instance, fields, using, save)
    else:
        transaction.on_commit(functools.partial(_save_and_emit, instance, fields, using, save), using=using)
    return instance


def _save_in_transaction(instance: AuditEvent, fields: dict[str, Any], using: str, save: bool) -> None:
    """The INSERT now, in the caller's transaction (no savepoint); the log record and the signal
    once it commits. The event commits with what it records or not at all, and a failed INSERT
    fails the request: no token is issued without its event."""
    if save:
        try:
            saved = AuditEvent(**fields)
            compiled.insert(saved)  # objects.create(), its INSERT built once per connection
        except Exception as exc:
            logger.exception("Audit event %s could not be saved; what it records is undone", instance.event)
            raise AuditWriteFailed(instance.event) from exc
        instance.pk = saved.pk
        instance._state.adding = False
        instance._state.db = saved._state.db
    transaction.on_commit(functools.partial(_emit, instance), using=using)


def _save_and_emit(instance: AuditEvent, fields: dict[str, Any], using: str, save: bool) -> None:
    """One INSERT (in a savepoint inside a transaction, so a failure cannot poison it), then the
    log record and the signal. A failed write is logged, and the event is still logged and sent."""
    if save:
        try:
            if transaction.get_connection(using).in_atomic_block:
                with transaction.atomic(using=using):
                    saved = AuditEvent.objects.create(**fields)
            else:
                saved = AuditEvent.objects.create(**fields)
        except Exception:
            logger.exception("Audit event %s could not be saved; it is only logged", instance.event)
        else:
            instance.pk = saved.pk
            instance._state.adding = False
            instance._state.db = saved._state.db
    _emit(instance)


def as_dict(instance: AuditEvent) -> dict[str, Any]:
    """The event as the log record's ``audit`` attribute carries it (JSON-ready)."""
    return {
        "id": instance.pk,
        "created": instance.created.isoformat(),
        "event": instance.event,
        "outcome": instance.outcome,
        "user_id": instance.user_id,
        "username": instance.username,
        "client_id": instance.client_id,
        "ip": instance.ip,
        "user_agent": instance.user_agent,
        "details": instance.details,
    }


def _emit(instance: AuditEvent) -> None:
    # logging itself never raises into the caller (a failing handler reports to stderr).
    logger.log(
        logging.WARNING if instance.outcome == FAILURE else logging.INFO,
        "%s %s user=%s client=%s ip=%s",
        instance.event,
        instance.outcome,
        instance.username or "-",
        instance.client_id or "-",
        instance.ip or "-",
        extra={"audit": as_dict(instance)},
    )
    for receiver, result in signals.audit_event.send_robust(sender=AuditEvent, event=instance):
        if isinstance(result, Exception):
            error = (type(result), result, result.__traceback__)
            logger.error("audit_event receiver %r failed", receiver, exc_info=error)


# --- helpers for the validator ------------------------------------------------------------------
def endpoint(request: Any) -> str:
    """The path of an oauthlib request (token, revoke, introspect), for the event's details."""
    from urllib.parse import urlsplit

    uri = getattr(request, "uri", None)
    return urlsplit(uri).path if isinstance(uri, str) else ""


def client_auth_failed(request: Any, reason: str | None = None) -> None:
    """``client_auth_failed`` for an oauthlib request (token, revocation, introspection endpoints).

    The claimed client and the method come from the request's parsed credentials
    (``request_state.credentials_of``), never from the Authorization header again. DOT forgets a
    client it could not authenticate, so the claimed one is looked up again (error path only):
    ``reason`` is then ``invalid_secret``, ``client_disabled`` or ``unknown_client`` unless the
    caller knows better.
    """
    credentials = credentials_of(request)
    claimed = credentials.client_id
    client = getattr(request, "client", None)
    if client is None or client.client_id != claimed:
        # No lookup for a NUL byte: PostgreSQL refuses it (and its client_id cannot exist).
        client = Client.objects.filter(client_id=claimed).first() if plausible_client_id(claimed) else None
    if reason is None:
        if client is None:
            reason = "unknown_client"
        else:
            reason = "invalid_secret" if client.is_enabled else "client_disabled"
    record(
        Event.CLIENT_AUTH_FAILED,
        request=request,
        client=client,
        outcome=FAILURE,
        client_id=claimed,
        reason=reason,
        method=credentials.method,
        endpoint=endpoint(request),
        grant_type=getattr(request, "grant_type", None),
    )


def token_issued(token: Mapping[str, Any], request: Any) -> None:
    """``token_issued`` (or ``token_refreshed``) for one token response, from what the validator holds:
    no query besides the INSERT. Identifiers only (row ids, the JWT's jti), never a token value."""
    grant_type = getattr(request, "grant_type", None)
    state = state_of(request)
    meta, refresh = state.token_meta, state.refreshed
    details: dict[str, Any] = {
        "grant_type": grant_type,
        "scopes": str(token.get("scope") or "").split(),
        "expires_in": token.get("expires_in"),
        "refresh_token_issued": "refresh_token" in token,
        "id_token_issued": "id_token" in token,
        "token_format": meta.format if meta is not None else "opaque",
    }
    if meta is not None and meta.jti:
        details["jti"] = meta.jti
    if meta is not None and meta.audience:
        details["audience"] = list(meta.audience)
    if state.dpop_jkt:
        details["dpop_jkt"] = state.dpop_jkt  # RFC 9449: the key the tokens are bound to
    details.update(profile_details(request.client))
    if grant_type == "refresh_token" and refresh is not None:
        details["token_family"] = refresh.token_family
        details["previous_refresh_token_id"] = refresh.pk
    event = Event.TOKEN_REFRESHED if grant_type == "refresh_token" else Event.TOKEN_ISSUED
    if state.exchange is not None:
        event = Event.TOKEN_EXCHANGED
        details.update(_exchange_details(state.exchange))
    record(event, request=request, user=getattr(request, "user", None), client=request.client, **details)


def profile_details(client: Any) -> dict[str, Any]:
    """``{"security_profile": name}`` when the client is under a security profile (docs/fapi.md)."""
    name = profiles.name_of(client)
    return {"security_profile": name} if name else {}


def _exchange_details(exchange: Any) -> dict[str, Any]:
    """RFC 8693: who the token is for (the subject token's client and row), who acts, how."""
    subject = exchange.subject
    details: dict[str, Any] = {
        "subject_client_id": subject.application.client_id,
        "subject_token_id": subject.pk,
        "subject_jti": subject.jti,
        "impersonation": exchange.act is None,
        "requested_token_type": exchange.requested_token_type,
    }
    if exchange.act is not None:
        details["actor"] = exchange.act.get("sub")
        details["act"] = exchange.act
    if exchange.actor is not None:
        details["actor_token_id"] = exchange.actor.pk
    return details


def token_exchange_refused(request: Any, reason: str) -> None:
    """``token_exchanged`` (failure) when a subject or actor token is refused (RFC 8693 2.2.2):
    an unknown, expired, revoked or foreign token presented by an authenticated client."""
    record(
        Event.TOKEN_EXCHANGED,
        request=request,
        client=getattr(request, "client", None),
        outcome=FAILURE,
        reason=reason,
        endpoint=endpoint(request),
        grant_type=getattr(request, "grant_type", None),
    )


def refresh_token_reused(checksum: str, client: Any, request: Any) -> None:
    """``refresh_token_reuse_detected`` when the refresh token presented was already rotated or
    revoked (DOT has then revoked its family); nothing for an unknown token. One SELECT, on the
    error path only."""
    from django.db.models import F

    from .models import RefreshToken

    rt = (
        RefreshToken.objects.filter(token_checksum=checksum)
        .select_related("application", "user")
        .order_by(F("revoked").desc(nulls_first=True))
        .first()
    )
    if rt is None or rt.revoked is None:
        return
    details: dict[str, Any] = {
        "refresh_token_id": rt.pk,
        "token_family": rt.token_family,
        "revoked_at": rt.revoked,
        "family_revoked": bool(rt.token_family),
    }
    if client is not None and rt.application_id != client.pk:
        details["presented_by"] = client.client_id
    record(
        Event.REFRESH_TOKEN_REUSE_DETECTED,
        request=request,
        user=rt.user,
        client=rt.application,
        outcome=FAILURE,
        **details,
    )
