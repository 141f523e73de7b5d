"""Consent decisions: when must the user be asked.

Pure decisions (``decide``, ``granted_scopes``) only: the writes (remembering an approval,
withdrawing a consent) are operations in ``flows/consents.py``, so the policy can be read, and
tested, in one place.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from .models import Client, Consent

# Clients nobody vetted (registration.SELF_REGISTERED_SOURCES; not imported: registration imports
# the flows, which import this module).
SELF_REGISTERED_SOURCES = (Client.RegistrationSource.DCR, Client.RegistrationSource.CIMD)


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
    """Ask only for scopes not yet granted, always on prompt=consent, never for skip_consent clients.

    A client nobody vetted (it registered itself) is always shown to the user once, even for a
    request with no scope: nothing reaches it before the user has seen where it comes from.
    """
    requested = list(dict.fromkeys(requested))
    prompt = set(prompt)
    if client.skip_consent and "consent" not in prompt:
        return Decision(Outcome.APPROVE, granted=tuple(requested))
    consent = Consent.objects.active().filter(user=user, client=client).only("scope").first()
    already = set(consent.scopes) if consent else set()
    granted = tuple(s for s in requested if s in already)
    new = tuple(s for s in requested if s not in already)
    unseen = consent is None and client.registration_source in SELF_REGISTERED_SOURCES
    if "consent" in prompt or new or unseen:
        outcome = Outcome.CONSENT_REQUIRED if "none" in prompt else Outcome.ASK
        return Decision(outcome, granted=granted, new=new)
    return Decision(Outcome.APPROVE, granted=granted)


# --- names this module documented before the flows layer (docs/consent.md); kept so sites that
# import them keep working. Resolved lazily: flows import this module.
def revoke_tokens(user, client) -> int:
    """Former home of ``oauth_server.revocation.revoke_tokens(user=..., client=...)``."""
    from .revocation import revoke_tokens as revoke

    return revoke(user=user, client=client)


def revoke_all_tokens(*, user=None, client=None) -> int:
    """Former home of ``oauth_server.revocation.revoke_tokens``."""
    from .revocation import revoke_tokens as revoke

    return revoke(user=user, client=client)


def __getattr__(name: str):
    if name in ("revoke_consent", "record_consent"):
        from .flows import consents

        return getattr(consents, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
