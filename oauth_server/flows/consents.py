"""Consent operations: remember what a user approved, withdraw a consent.

``consent.py`` decides when to ask; these write the answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from .. import signals
from ..models import Consent
from ..revocation import revoke_tokens


def record_consent(user, client, scopes: Iterable[str]) -> Consent:
    """Remember approved scopes, adding to what an active consent already holds.

    Sends ``consent_granted`` on commit (its receiver records the audit event).
    """
    scopes = list(scopes)
    with transaction.atomic():
        consent, created = Consent.objects.select_for_update().get_or_create(
            user=user, client=client, defaults={"scope": " ".join(scopes)}
        )
        if not created:
            kept = consent.scopes if consent.is_active else []
            consent.scope = " ".join(dict.fromkeys(kept + scopes))
            consent.revoked_at = None
            consent.save(update_fields=["scope", "revoked_at", "updated"])
    transaction.on_commit(
        lambda: signals.consent_granted.send(
            sender=Consent, user=user, client=client, scopes=scopes, consent=consent
        )
    )
    return consent


def revoke_consent(consent: Consent) -> bool:
    """Withdraw an active consent: the user will be asked again, and every token and unused code
    the client holds for the user is revoked. Returns False (and does nothing) if it was already
    revoked, so a double submit neither revokes nor audits twice.

    Sends ``consent_revoked`` on commit (its receiver records the audit event, with the acting
    staff user as ``actor``).
    """
    if not consent.is_active:
        return False
    with transaction.atomic(savepoint=False):
        consent.revoked_at = timezone.now()
        consent.save(update_fields=["revoked_at", "updated"])
        revoke_tokens(user=consent.user, client=consent.client)
        transaction.on_commit(lambda: signals.consent_revoked.send(sender=Consent, consent=consent))
    return True
