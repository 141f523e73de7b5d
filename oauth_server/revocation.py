"""Revoking what the server issued, row by row: a grant (a refresh-token family), what a code
issued, and every token of a user, a client, or a user at a client.

These are the primitives: no audit event, no signal. The operations that staff, users and clients
start (revoke one token, a user's tokens, a consent, a client's tokens) are in ``flows/``, which
call these and record the audit event; the token endpoint's replay handling (``codes.py``) and the
deactivation receivers (``receivers.py``) call them directly. ``resource/revocation.py`` is the
resource-server kit's check of whether a token it validated offline was revoked since.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import models, router, transaction
from django.db.models import QuerySet
from django.db.models.deletion import Collector
from django.utils import timezone

from .models import AccessToken, Grant, RefreshToken


def revoke_grant(refresh_token: RefreshToken) -> None:
    """Revoke a refresh token's whole family and every access token minted from it."""
    if refresh_token.token_family:
        RefreshToken.revoke_family(refresh_token.token_family)
        AccessToken.objects.filter(source_refresh_token__token_family=refresh_token.token_family).delete()
    else:
        refresh_token.revoke()
        AccessToken.objects.filter(source_refresh_token=refresh_token).delete()


def retire_rotated(refresh_token: RefreshToken, *, exchanged: bool) -> None:
    """Rotation: the refresh token revoked (its row kept, for reuse detection) and its access token
    deleted, as DOT's ``RefreshToken.revoke()`` does, in two statements instead of its six (eight with
    its savepoint).

    The caller holds the refresh token's row locked since it read it (``validator.
    validate_refresh_token``), with its access token and whether any token was exchanged from that
    one (``exchanged``, RFC 8693): DOT's re-read under a lock, its read of the access token and its
    savepoint (the token endpoint's transaction is the unit) have nothing left to do. The access
    token goes through Django's collector as before when something was exchanged from it (the
    cascade, however deep) or when a relation this function does not know points at it; otherwise
    the collector deletes just that row: its ``pre_delete``/``post_delete`` signals still run, and
    the one other row that referenced it, this refresh token (``access_token`` is one-to-one), was
    cleared by the ``UPDATE`` just before, so the collector's ``SET NULL`` would change nothing.
    A token exchanged from it by a request that commits between that read and the ``DELETE`` is
    not left behind: its foreign key then fails this transaction's commit (everything rolls back),
    as it did when the collector's own ``SELECT`` ran just before the ``DELETE``.
    """
    access_token = refresh_token.access_token
    refresh_token.access_token = None
    refresh_token.revoked = timezone.now()
    refresh_token.save(update_fields=["access_token", "revoked", "updated"])
    if access_token is None:
        return
    if exchanged or not _only_known_relations():
        access_token.delete()
        return
    collector = Collector(using=router.db_for_write(AccessToken, instance=access_token), origin=access_token)
    collector.add([access_token])  # the row only: its relations are taken care of (docstring)
    collector.delete()


@cache
def _only_known_relations() -> bool:
    """Whether the rows that may reference an access token are only the two ``retire_rotated``
    handles: the refresh token's ``access_token`` (SET_NULL) and tokens ``exchanged_from`` it
    (CASCADE). Another app's foreign key to it (with an ``on_delete`` that acts) sends it back to
    the collector."""
    known = {(RefreshToken, "access_token"), (AccessToken, "exchanged_from")}
    relations = {
        (rel.related_model, rel.field.name)
        for rel in AccessToken._meta.related_objects
        if rel.on_delete is not models.DO_NOTHING
    }
    return relations <= known and not AccessToken._meta.private_fields


def revoke_token_grant(token: AccessToken | RefreshToken) -> RefreshToken | None:
    """Revoke a token and, with it, its whole grant; returns the refresh token whose grant was
    revoked, or None for an access token issued without one (only that token is revoked).

    RFC 7009 2.1: revoking a refresh token SHOULD invalidate the access tokens of the same grant;
    revoking an access token MAY revoke its refresh token. A rotated family is one grant, so any of
    its tokens ends it: otherwise a refresh token would mint a replacement for a revoked access token.
    """
    if isinstance(token, AccessToken):
        refresh = RefreshToken.objects.filter(access_token=token).first()
        if refresh is None:
            token.revoke()
            return None
        token = refresh
    revoke_grant(token)
    return token


def revoke_code_tokens(grant: Grant) -> None:
    """Revoke what a code issued: its refresh-token families (every token refreshed from them
    included) and its access tokens."""
    families = set(
        RefreshToken.objects.filter(grant=grant)
        .exclude(token_family=None)
        .values_list("token_family", flat=True)
    )
    with transaction.atomic(using=router.db_for_write(AccessToken)):
        for family in families:
            RefreshToken.revoke_family(family)
        now = timezone.now()
        RefreshToken.objects.filter(grant=grant, revoked__isnull=True).update(revoked=now, updated=now)
        AccessToken.objects.filter(grant=grant).delete()
        if families:
            AccessToken.objects.filter(source_refresh_token__token_family__in=families).delete()


def revoke_tokens(*, user: Any = None, client: Any = None) -> int:
    """Revoke the live tokens and delete the codes of a user, a client (or a queryset of clients),
    or a user at a client; returns how many.

    Refresh tokens are marked revoked (kept for reuse detection), access tokens and codes deleted:
    codes approved but not yet exchanged would otherwise still yield tokens.
    """
    lookup: dict[str, Any] = {}
    if user is not None:
        lookup["user"] = user
    if isinstance(client, QuerySet):
        lookup["application__in"] = client
    elif client is not None:
        lookup["application"] = client
    if not lookup:
        raise ValueError("revoke_tokens needs a user or a client")
    now = timezone.now()
    # No savepoint when nested: the three statements stand or fall with the caller's transaction.
    with transaction.atomic(savepoint=False):
        refreshed = RefreshToken.objects.filter(**lookup, revoked__isnull=True).update(
            revoked=now, updated=now
        )
        deleted, _counts = AccessToken.objects.filter(**lookup).delete()
        codes, _counts = Grant.objects.filter(**lookup).delete()
    return refreshed + deleted + codes
