"""Device authorization grant (RFC 8628) at rest: codes, their lifetimes, polling, the user's decision.

The endpoint (``views/device.py``), the verification page and the grant's token handler
(``grants/device_code.py``) call these functions; none of them answers HTTP.

- Device codes are 256-bit random strings; user codes are ``DEVICE_USER_CODE_LENGTH`` characters of
  an alphabet with no vowels (no words) and no look-alikes (no 0/O, 1/I, no digits at all), shown as
  ``XXXX-XXXX``. Both are stored as SHA-256 (``tokens.token_checksum``), the user code after
  ``normalize_user_code`` (case, dashes and spaces do not matter).
- A decision is one conditional update from ``pending`` (a second decision, or one after expiry,
  changes nothing); the tokens are issued once: ``redeemable`` locks the row inside TokenView's
  transaction and ``redeem`` marks it with a conditional update, as ``codes.py`` does for codes.
- Polling (RFC 8628 3.5): a poll sooner than ``interval`` seconds after the previous one is
  ``slow_down`` and adds 5 seconds to the interval of that device code, for good.
- Rows stay after their decision and redemption (a reused device code is recognised and audited)
  until ``purge_expired`` deletes them once expired (``manage.py purge_expired``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors
from oauthlib.oauth2.rfc8628 import errors as device_errors

from . import audit
from .cleanup import DEFAULT_BATCH_SIZE, delete_in_batches
from .codes import locked
from .conf import settings
from .models import Client, DeviceAuthorization
from .tokens import token_checksum

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
# RFC 8628 6.1: no vowels (no words spelt), no digits, none of the look-alikes 0/O, 1/I/L... kept
# simple: 20 consonants, so 8 characters give 20**8 (about 2**34.6) codes.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
SLOW_DOWN_STEP = 5  # RFC 8628 3.5
# Bounds of what a person may type (normalisation trims the rest); longer input is simply wrong.
MAX_USER_CODE_INPUT = 64


# RFC 6749 5.2 errors oauthlib raises without a description: every answer here carries one.
DESCRIPTIONS = {
    "invalid_client": "Client authentication failed.",
    "unauthorized_client": "The client may not use the device authorization grant.",
    "invalid_scope": "The requested scope is invalid, unknown, or not allowed for this client.",
    "invalid_request": "The request is missing a parameter or is malformed.",
    "invalid_grant": "The device_code is invalid.",
}


def described(error: oauth2_errors.OAuth2Error) -> oauth2_errors.OAuth2Error:
    """The error, with a description if oauthlib gave it none."""
    if not error.description:
        error.description = DESCRIPTIONS.get(error.error, error.error)
    return error


def lifetime_for(client: Client) -> int:
    return client.device_code_lifetime or settings.DEVICE_CODE_LIFETIME


def interval_for(client: Client) -> int:
    return client.device_poll_interval or settings.DEVICE_POLL_INTERVAL


def generate_user_code(length: int | None = None) -> str:
    """A fresh user code, without its dash (``format_user_code`` adds it)."""
    length = length or settings.DEVICE_USER_CODE_LENGTH
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(length))


def format_user_code(code: str) -> str:
    """``BCDFGHJK`` -> ``BCDF-GHJK``: groups of four are easier to read out and type."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def normalize_user_code(value: object) -> str | None:
    """What the user typed, as stored: upper case, without dashes, spaces or other separators;
    None if it cannot be a user code (a character outside the alphabet, too long, not text)."""
    if not isinstance(value, str) or len(value) > MAX_USER_CODE_INPUT:
        return None
    cleaned = "".join(ch for ch in value.upper() if ch not in " -\u2010\u2011\u2012\u2013\u2014\t")
    if not cleaned or any(ch not in USER_CODE_ALPHABET for ch in cleaned):
        return None
    return cleaned


@dataclass(frozen=True)
class IssuedCodes:
    """The clear codes of a new device authorization: returned to the device once, never stored."""

    authorization: DeviceAuthorization
    device_code: str
    user_code: str  # formatted, XXXX-XXXX

    @property
    def expires_in(self) -> int:
        return max(0, int((self.authorization.expires - self.authorization.created).total_seconds()))


def start(client: Client, scopes: list[str]) -> IssuedCodes:
    """Create a pending device authorization for ``client``; retries a (rare) user-code collision."""
    now = timezone.now()
    for _attempt in range(5):
        device_code = secrets.token_urlsafe(32)
        user_code = generate_user_code()
        try:
            with transaction.atomic():
                authorization = DeviceAuthorization.objects.create(
                    client=client,
                    device_code=token_checksum(device_code),
                    user_code=token_checksum(user_code),
                    scope=" ".join(scopes),
                    created=now,
                    expires=now + timedelta(seconds=lifetime_for(client)),
                    interval=interval_for(client),
                )
        except IntegrityError:
            # A user code still stored (pending or kept until purged): draw another one.
            continue
        return IssuedCodes(authorization, device_code, format_user_code(user_code))
    raise RuntimeError("Could not draw an unused user code: raise DEVICE_USER_CODE_LENGTH.")


def find_by_user_code(value: object) -> DeviceAuthorization | None:
    """The pending, unexpired authorization for what the user typed, else None (wrong, used, expired)."""
    code = normalize_user_code(value)
    if code is None:
        return None
    return (
        DeviceAuthorization.objects.pending()
        .select_related("client")
        .filter(user_code=token_checksum(code), client__is_enabled=True)
        .first()
    )


def decide(authorization: DeviceAuthorization, user: Any, *, allow: bool, auth_time: datetime | None) -> bool:
    """Record the user's decision, once, while the code is pending and unexpired; False otherwise."""
    now = timezone.now()
    updated = DeviceAuthorization.objects.filter(
        pk=authorization.pk, status=DeviceAuthorization.Status.PENDING, expires__gt=now
    ).update(
        status=DeviceAuthorization.Status.APPROVED if allow else DeviceAuthorization.Status.DENIED,
        user=user,
        decided_at=now,
        auth_time=auth_time,
    )
    return bool(updated)


def redeemable(device_code: object, client: Client, request: Any) -> DeviceAuthorization:
    """The locked, approved authorization of ``client`` for ``device_code``; otherwise the polling
    error RFC 8628 3.5 prescribes, raised after the poll has been recorded.

    A code of another client is unknown (``invalid_grant``): a client can neither poll nor learn the
    state of another's code. A code that already gave its tokens is ``invalid_grant`` too, and
    audited (``device_code_replayed``).
    """
    if not isinstance(device_code, str) or not device_code:
        raise oauth2_errors.InvalidRequestError(description="Missing device_code parameter.", request=request)
    if "\x00" in device_code:
        raise oauth2_errors.InvalidGrantError(description="Unknown device_code.", request=request)
    queryset = DeviceAuthorization.objects.filter(device_code=token_checksum(device_code), client=client)
    authorization = locked(queryset.select_related("user"), of=("self",)).first()
    if authorization is None:
        raise oauth2_errors.InvalidGrantError(description="Unknown device_code.", request=request)
    status = authorization.status
    if status == DeviceAuthorization.Status.REDEEMED:
        audit.record(
            audit.Event.DEVICE_CODE_REPLAYED,
            request=request,
            user=authorization.user,
            client=client,
            outcome=audit.FAILURE,
            device_authorization_id=authorization.pk,
        )
        raise oauth2_errors.InvalidGrantError(
            description="This device_code has already been used.", request=request
        )
    if authorization.is_expired():
        raise device_errors.ExpiredTokenError(description="The device_code has expired.", request=request)
    if status == DeviceAuthorization.Status.DENIED:
        raise device_errors.AccessDenied(description="The user denied the request.", request=request)
    if status == DeviceAuthorization.Status.PENDING:
        now = timezone.now()
        too_soon = authorization.last_polled is not None and now < authorization.last_polled + timedelta(
            seconds=authorization.interval
        )
        changes: dict[str, Any] = {"last_polled": now}
        if too_soon:
            changes["interval"] = F("interval") + SLOW_DOWN_STEP
        DeviceAuthorization.objects.filter(pk=authorization.pk).update(**changes)
        if too_soon:
            wait = authorization.interval + SLOW_DOWN_STEP
            raise device_errors.SlowDownError(
                description=f"Polling too fast: wait {wait} seconds between requests.", request=request
            )
        raise device_errors.AuthorizationPendingError(
            description="The user has not yet approved the request.", request=request
        )
    if authorization.user is None or not authorization.user.is_active:
        raise oauth2_errors.InvalidGrantError(description="The approving user is inactive.", request=request)
    return authorization


def redeem(authorization: DeviceAuthorization, request: Any) -> None:
    """Mark the authorization redeemed, only if nobody else did (else ``invalid_grant``; TokenView
    then rolls back the tokens just written)."""
    updated = DeviceAuthorization.objects.filter(
        pk=authorization.pk, status=DeviceAuthorization.Status.APPROVED
    ).update(status=DeviceAuthorization.Status.REDEEMED, redeemed_at=timezone.now())
    if not updated:
        raise oauth2_errors.InvalidGrantError(
            description="This device_code has already been used.", request=request
        )


def purge_expired(batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Delete device authorizations past ``expires``, whatever their status; how many.

    Pending ones still in time are kept. Once deleted, an expired device code polls as unknown
    (``invalid_grant`` instead of ``expired_token``: the device gives up either way), and its user
    code goes back to the pool new codes are drawn from.
    """
    expired = DeviceAuthorization.objects.filter(expires__lte=timezone.now())
    return delete_in_batches(expired, batch_size)
