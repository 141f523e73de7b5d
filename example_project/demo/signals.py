"""Keep the files and reports APIs' revocation answers current: a revoked token is refused at once.

The demo's APIs check revocation against the database (``REVOCATION_CHECK = "database"``), and the
kit caches each answer for ``REVOCATION_CACHE_SECONDS``. Because the APIs live in the site that
issues and revokes the tokens, the site can also *tell* the cache: "not revoked" when a token is
issued (so even a token's first API call costs no query) and "revoked" when its row is deleted
(revocation endpoint, Connected apps, RP-initiated logout, refresh rotation, a disabled client or
user), so the next call is refused without waiting for the cache to expire.

Both run after the transaction commits: a rolled-back issuance or revocation never reaches the
cache. The cache must be shared by every process that serves the APIs (LocMemCache is per
process, fine for runserver; use Redis or Memcached in production), and anything that bypasses
model signals (a raw SQL delete) is still caught by the database lookup once the cached answer
expires.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from oauth_server.resource import revocation

ACCESS_TOKEN_MODEL = settings.OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL


def _remember_on_commit(instance, *, revoked: bool) -> None:
    jti, expires = instance.jti, instance.expires
    if not jti or expires is None:
        return  # opaque tokens have no jti: the kit introspects those
    transaction.on_commit(lambda: revocation.remember(jti, revoked=revoked, exp=expires.timestamp()))


@receiver(post_save, sender=ACCESS_TOKEN_MODEL, dispatch_uid="demo.access_token_issued")
def access_token_issued(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        _remember_on_commit(instance, revoked=False)


@receiver(post_delete, sender=ACCESS_TOKEN_MODEL, dispatch_uid="demo.access_token_deleted")
def access_token_deleted(sender, instance, **kwargs) -> None:
    _remember_on_commit(instance, revoked=True)
