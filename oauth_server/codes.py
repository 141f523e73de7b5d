"""Authorization codes at rest: stored as SHA-256, single use under concurrency, a replay revokes.

Every lookup hashes the presented code (``tokens.token_checksum``), as DOT does for tokens. The
exchange runs in TokenView's transaction: ``redeemable`` locks the Grant row, so a concurrent
exchange of the same code waits, then finds it redeemed; ``redeem`` marks it with a conditional
update, the single-use guarantee even where rows cannot be locked. The validator's oauthlib methods
(``validate_code``, ``invalidate_authorization_code``, ...) call these.

``locked`` is the token request's row lock, used for refresh tokens too.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import router, transaction
from django.db.models import QuerySet
from django.utils import timezone
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors

from . import audit, claims, lookups, signals
from .models import Grant
from .request_state import state_of
from .revocation import revoke_code_tokens
from .tokens import token_checksum

logger = logging.getLogger(__name__)


def locked(queryset: QuerySet, of: tuple[str, ...] = ()) -> QuerySet:
    """``select_for_update`` inside a transaction (TokenView's), a plain read outside one.

    Outside a transaction Django refuses a locking read; SQLite ignores it (its writes are
    serialized, see docs/hardening.md).
    """
    if transaction.get_autocommit(using=router.db_for_write(queryset.model)):
        return queryset
    return queryset.select_for_update(of=of) if of else queryset.order_by("pk").select_for_update()


def at_rest(code: dict[str, Any]) -> dict[str, Any]:
    """oauthlib's code dict with the code replaced by its checksum, for DOT to save."""
    return {**code, "code": token_checksum(code["code"])}


def record_issued(grant: Grant, request: Any) -> Grant:
    """After DOT saved the Grant: the approving session's auth_time (OIDC Core 12.2), the DPoP key
    the code is bound to (RFC 9449 10), and the audit."""
    extra: dict[str, Any] = {}
    auth_time = getattr(request, "auth_time", None)
    if auth_time is not None:
        extra["auth_time"] = auth_time
    # RFC 9449 10: the code is bound to this DPoP key (grants/authorization_code.validate_dpop_jkt
    # checked its form); the code exchange must prove it (dpop.validate_token_request).
    dpop_jkt = getattr(request, "dpop_jkt", None)
    if isinstance(dpop_jkt, str) and dpop_jkt:
        extra["dpop_jkt"] = dpop_jkt
    if extra:
        Grant.objects.filter(pk=grant.pk).update(**extra)
        for name, value in extra.items():
            setattr(grant, name, value)
    audit.record(
        audit.Event.AUTHORIZATION_CODE_ISSUED,
        request=request,
        user=request.user,
        client=request.client,
        scopes=list(request.scopes or []),
        redirect_uri=request.redirect_uri,
        grant_id=grant.pk,
        resource=list(grant.resource or []),
        **audit.profile_details(request.client),
        **({"dpop_jkt": grant.dpop_jkt} if grant.dpop_jkt else {}),
    )
    return grant


def redeemable(code: str, client: Any, request: Any) -> Grant | None:
    """The locked, unexpired, not yet redeemed Grant of ``client`` for ``code``, else None.

    A redeemed code is a replay (RFC 6749 4.1.2): it revokes every token the code issued,
    including those refreshed from them since, whoever presents it: the server cannot tell the
    client's retry from an attacker's use of a leaked code. A code of another client is simply not
    found. The revocation is committed even though the request fails (TokenView commits errors
    found before anything was issued).
    """
    grant = lookups.GRANT_TO_REDEEM.first(checksum=token_checksum(code or ""))  # locked; compiled once
    if grant is None or grant.application_id != getattr(client, "pk", None):
        return None
    claims.remember_loaded_subject(grant.user)  # the ID token's sub, without a query of its own
    if grant.redeemed_at is not None:
        revoke_code_tokens(grant)
        logger.warning(
            "Authorization code %s of client %s presented again: tokens issued from it revoked.",
            grant.pk,
            client.client_id,
        )
        signals.authorization_code_replayed.send(
            sender=Grant, grant=grant, client=client, user=grant.user, request=request
        )
        return None
    if grant.is_expired():
        return None
    return grant


def redeem(code: str, request: Any) -> None:
    """Mark the code redeemed (a tombstone, not a delete), only if nobody else did.

    A request that loses the conditional update raises ``invalid_grant`` and TokenView rolls its
    tokens back.
    """
    redeemed = Grant.objects.filter(
        code=token_checksum(code or ""), application=request.client, redeemed_at__isnull=True
    ).update(redeemed_at=timezone.now())
    if not redeemed:
        raise oauth2_errors.InvalidGrantError(request=request)


def grant_for(code: str, request: Any, client: Any) -> Grant | None:
    """The Grant ``redeemable`` loaded (and locked) for this code, else looked up by the code's hash."""
    checksum = token_checksum(code or "")
    grant = state_of(request).grant
    if grant is not None and grant.code == checksum:
        return grant
    return Grant.objects.filter(code=checksum, application=client).first()


def redeemed_grant(request: Any) -> Grant | None:
    """The code being exchanged by this request, to link the tokens it issues."""
    if getattr(request, "grant_type", None) != "authorization_code":
        return None
    return state_of(request).grant
