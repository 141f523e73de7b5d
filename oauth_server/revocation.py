"""Revoking what the server issued: a grant (a refresh-token family), what a code issued, and the
token a client presents at the revocation endpoint (RFC 7009).

This is the provider's side. ``views/revocation.py`` is the endpoint (DOT's view, JSON errors) that
reaches ``revoke_presented_token`` through the validator; ``resource/revocation.py`` is the
resource-server kit's check of whether a token it validated offline was revoked since.
"""

from __future__ import annotations

from typing import Any

from django.db import router, transaction
from django.utils import timezone

from . import audit
from .models import AccessToken, Grant, RefreshToken
from .tokens import token_checksum


def revoke_grant(refresh_token: RefreshToken) -> None:
    """Revoke a refresh token's whole family and every access token minted from it."""
    if refresh_token.token_family:
        RefreshToken.revoke_family(refresh_token.token_family)
        AccessToken.objects.filter(source_refresh_token__token_family=refresh_token.token_family).delete()
    else:
        refresh_token.revoke()
        AccessToken.objects.filter(source_refresh_token=refresh_token).delete()


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


def revoke_presented_token(token: str, token_type_hint: str | None, request: Any) -> None:
    """Revoke the caller's (``request.client``) own token, and with it every token of the same grant.

    RFC 7009 2.1: revoking a refresh token SHOULD invalidate the access tokens of the same
    grant; revoking an access token MAY revoke its refresh token. A rotated refresh-token
    family is one grant, so any of its tokens (even an already rotated refresh token) ends
    it: otherwise a refresh token would mint a replacement for a revoked access token. A
    token of another client is left alone and the answer is the same 200 (no oracle).
    """
    client_pk = getattr(request.client, "pk", None)
    if client_pk is None or not token:
        return
    lookup = {"token_checksum": token_checksum(token), "application_id": client_pk}
    models = (
        (RefreshToken, AccessToken) if token_type_hint == "refresh_token" else (AccessToken, RefreshToken)
    )
    with transaction.atomic(using=router.db_for_write(AccessToken)):
        for model in models:
            found = list(model.objects.filter(**lookup).select_related("user"))
            if found:
                break
        for item in found:
            kind = "access_token" if isinstance(item, AccessToken) else "refresh_token"
            holder = item.user
            if isinstance(item, AccessToken):
                refresh = RefreshToken.objects.filter(access_token=item).first()
                if refresh is None:
                    item.revoke()
                    audit.record(
                        audit.Event.TOKEN_REVOKED,
                        request=request,
                        user=holder,
                        client=request.client,
                        via="revocation_endpoint",
                        token_type=kind,
                    )
                    continue
                item = refresh
            revoke_grant(item)
            audit.record(
                audit.Event.TOKEN_REVOKED,
                request=request,
                user=holder,
                client=request.client,
                via="revocation_endpoint",
                token_type=kind,
                token_family=item.token_family,
            )
