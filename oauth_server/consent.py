"""Consent decisions: when must the user be asked, and what is remembered once they answer.

Pure decisions (``decide``) are kept apart from the writes (``record_consent``, ``revoke_consent``)
so the policy can be read, and tested, in one place.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from . import signals
from .models import AccessToken, Consent, Grant, RefreshToken


class Outcome(enum.Enum):
    APPROVE = "approve"  # issue the code without showing the page
    ASK = "ask"  # show the consent page
    CONSENT_REQUIRED = "consent_required"  # prompt=none, but the user would have to be asked


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    granted: tuple[str, ...] = ()  # requested scopes the user already approved
    new: tuple[str, ...] = ()  # requested scopes not yet approved


def granted_scopes(user, client) -> set[str]:
    consent = Consent.objects.active().filter(user=user, client=client).only("scope").first()
    return set(consent.scopes) if consent else set()


def decide(user, client, requested: Iterable[str], prompt: Iterable[str] = ()) -> Decision:
    """Ask only for scopes not yet granted, always on prompt=consent, never for skip_consent clients."""
    requested = list(dict.fromkeys(requested))
    prompt = set(prompt)
    if client.skip_consent and "consent" not in prompt:
        return Decision(Outcome.APPROVE, granted=tuple(requested))
    already = granted_scopes(user, client)
    granted = tuple(s for s in requested if s in already)
    new = tuple(s for s in requested if s not in already)
    if "consent" in prompt or new:
        outcome = Outcome.CONSENT_REQUIRED if "none" in prompt else Outcome.ASK
        return Decision(outcome, granted=granted, new=new)
    return Decision(Outcome.APPROVE, granted=granted)


def record_consent(user, client, scopes: Iterable[str]) -> Consent:
    """Remember approved scopes, adding to what an active consent already holds."""
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


def revoke_tokens(user, client) -> int:
    """Revoke every live token and unused code the client holds for the user; returns how many."""
    return revoke_all_tokens(user=user, client=client)


def revoke_all_tokens(*, user=None, client=None) -> int:
    """Revoke the live tokens and delete the codes of a user, a client, or a user at a client.

    Refresh tokens are marked revoked (kept for reuse detection), access tokens and codes deleted:
    codes approved but not yet exchanged would otherwise still yield tokens.
    """
    lookup = {}
    if user is not None:
        lookup["user"] = user
    if client is not None:
        lookup["application"] = client
    if not lookup:
        raise ValueError("revoke_all_tokens needs a user or a client")
    now = timezone.now()
    with transaction.atomic():
        refreshed = RefreshToken.objects.filter(**lookup, revoked__isnull=True).update(
            revoked=now, updated=now
        )
        deleted, _ = AccessToken.objects.filter(**lookup).delete()
        codes, _ = Grant.objects.filter(**lookup).delete()
    return refreshed + deleted + codes


def revoke_consent(consent: Consent) -> None:
    """Withdraw a consent: the user will be asked again, and the client's tokens stop working."""
    with transaction.atomic():
        consent.revoked_at = timezone.now()
        consent.save(update_fields=["revoked_at", "updated"])
        revoke_tokens(consent.user, consent.client)
        transaction.on_commit(lambda: signals.consent_revoked.send(sender=Consent, consent=consent))
