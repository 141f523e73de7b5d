"""Token operations: revoke one token's grant (management API, revocation endpoint), a user's
tokens (management API, connected-apps page), and single credentials from the admin.

Each records one ``token_revoked`` event whose ``via`` names the caller (``api``,
``revocation_endpoint``, ``connected_apps``, ``admin``); the event is saved when the transaction
commits, so a rolled-back revocation leaves no event.
"""

from __future__ import annotations

from typing import Any

from django.db import router, transaction
from oauth2_provider.models import revoke_access_token as dot_revoke_access_token

from .. import audit
from ..models import AccessToken, IDToken, RefreshToken
from ..revocation import revoke_token_grant, revoke_tokens
from ..tokens import token_checksum


def _atomic():
    return transaction.atomic(using=router.db_for_write(AccessToken), savepoint=False)


def _kind(token: AccessToken | RefreshToken) -> str:
    return "access_token" if isinstance(token, AccessToken) else "refresh_token"


def revoke_token(
    token: AccessToken | RefreshToken,
    *,
    via: str,
    request: Any = None,
    client: Any = None,
    name_family: bool = False,
) -> None:
    """Revoke a token and its whole grant (``revocation.revoke_token_grant``), and audit it.

    ``client`` saves a query when the caller holds the token's client already. ``name_family``
    adds the revoked family's id to the event: the revocation endpoint's events have it, the
    management API's never had it (kept as it was; see docs/audit.md).
    """
    kind = _kind(token)
    user = token.user
    with _atomic():
        revoked_grant = revoke_token_grant(token)
        details: dict[str, Any] = {"token_type": kind}
        if name_family and revoked_grant is not None:
            details["token_family"] = revoked_grant.token_family
        audit.record(
            audit.Event.TOKEN_REVOKED,
            request=request,
            user=user,
            client=client if client is not None else token.application,
            via=via,
            **details,
        )


def revoke_presented_token(token: str, token_type_hint: str | None, request: Any) -> None:
    """RFC 7009: revoke the caller's (``request.client``) own token, and with it its whole grant.

    Any token of a rotated refresh-token family (even an already rotated refresh token) ends the
    family. A token of another client is left alone and the answer is the same 200 (no oracle).
    """
    client = request.client
    client_pk = getattr(client, "pk", None)
    if client_pk is None or not token:
        return
    lookup = {"token_checksum": token_checksum(token), "application_id": client_pk}
    models = (
        (RefreshToken, AccessToken) if token_type_hint == "refresh_token" else (AccessToken, RefreshToken)
    )
    with _atomic():
        for model in models:
            found = list(model.objects.filter(**lookup).select_related("user"))
            if found:
                break
        for item in found:
            revoke_token(item, via="revocation_endpoint", request=request, client=client, name_family=True)


def revoke_user_tokens(user: Any, *, via: str, client: Any = None, request: Any = None) -> int:
    """Revoke every live token and unused code of a user (everywhere: "log out everywhere"), or
    only those ``client`` holds for the user (a first-party app cut off without a consent to
    withdraw); returns how many. Consents stay.

    The event for "everywhere" carries ``scope: "all"`` and the ``count``; the one for a single
    client carries neither (as the management API and the connected-apps page recorded them).
    """
    with transaction.atomic(savepoint=False):
        count = revoke_tokens(user=user, client=client)
        details: dict[str, Any] = {"scope": "all", "count": count} if client is None else {}
        audit.record(audit.Event.TOKEN_REVOKED, request=request, user=user, client=client, via=via, **details)
    return count


# --- one credential, as the admin's revoke actions do --------------------------------------------------
def _revoke_credential(credential: Any, revoke: Any, token_type: str, via: str, request: Any) -> None:
    with _atomic():
        revoke(credential)
        audit.record(
            audit.Event.TOKEN_REVOKED,
            request=request,
            user=credential.user,
            client=credential.application,
            via=via,
            token_type=token_type,
        )


def revoke_access_token(token: AccessToken, *, via: str, request: Any = None) -> None:
    """Revoke an access token and its bound refresh token (DOT's shared revoke path, RFC 7009 2.1),
    so the client cannot simply refresh its way back in. Other tokens of its family are left alone
    (``revoke_token`` ends the whole grant)."""
    _revoke_credential(token, dot_revoke_access_token, "access_token", via, request)


def revoke_refresh_token(token: RefreshToken, *, via: str, request: Any = None) -> None:
    """Revoke a refresh token: the row stays as a tombstone (reuse detection), its access token is
    deleted."""
    _revoke_credential(token, RefreshToken.revoke, "refresh_token", via, request)


def _revoke_id_token(id_token: IDToken) -> None:
    access_token = AccessToken.objects.filter(id_token=id_token).first()
    if access_token is not None:
        dot_revoke_access_token(access_token)
    id_token.revoke()


def revoke_id_token(id_token: IDToken, *, via: str, request: Any = None) -> None:
    """An ID token already handed out cannot be recalled: what revoking means is that the access
    token issued with it (and that token's refresh token) stops working, and the ID token is no
    longer accepted as ``id_token_hint`` for logout."""
    _revoke_credential(id_token, _revoke_id_token, "id_token", via, request)
