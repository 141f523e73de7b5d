"""The lookups on every token, introspection, revocation and userinfo request, compiled once per
connection (``compiled.CompiledLookup``; why: docs/performance.md, "Compiled lookups").

Each looks up a unique column, so a ``[:1]`` slice rather than ``.first()``: no ``ORDER BY`` to
compile or run.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef

from .compiled import CompiledLookup, LockingLookup
from .models import AccessToken, Client, Grant, RefreshToken

# The client with its allowed scopes (``Client.scope_rows``) in one statement.
CLIENT_BY_ID: CompiledLookup[Client] = CompiledLookup(
    lambda client_id: Client.objects.with_scopes().filter(client_id=client_id).order_by()[:1], "client_id"
)

# An access token with what introspection and UserInfo answer from: its client, user and subject.
ACCESS_TOKEN_BY_CHECKSUM: CompiledLookup[AccessToken] = CompiledLookup(
    lambda checksum: AccessToken.objects.select_related("application", "user", "user__oauth_subject").filter(
        token_checksum=checksum
    )[:1],
    "checksum",
)

# A refresh token that can still refresh, with its access token (introspection).
REFRESH_TOKEN_BY_CHECKSUM: CompiledLookup[RefreshToken] = CompiledLookup(
    lambda checksum: RefreshToken.objects.select_related(
        "application", "user", "user__oauth_subject", "access_token"
    ).filter(token_checksum=checksum, revoked__isnull=True)[:1],
    "checksum",
)

# A JWT access token's row by ``jti`` (the resource kit's "database" revocation check).
ACCESS_TOKEN_BY_JTI: CompiledLookup[AccessToken] = CompiledLookup(
    lambda jti: AccessToken.objects.select_related("application", "user").filter(jti=jti)[:1], "jti"
)


def _to_rotate(checksum: str):
    """A refresh token with what its rotation needs (validator.validate_refresh_token): its access
    token, user and ``sub``, and whether a token was exchanged from that access token."""
    return (
        RefreshToken.objects.filter(token_checksum=checksum)
        .select_related("access_token", "user__oauth_subject")
        .annotate(
            access_token_exchanged=Exists(
                AccessToken.objects.filter(exchanged_from=OuterRef("access_token_id"))
            )
        )
        .order_by("pk")
    )


# Only the refresh token's row is locked inside TokenView's transaction: a lock on the user's row
# would queue every refresh of that user.
REFRESH_TOKEN_TO_ROTATE: LockingLookup[RefreshToken] = LockingLookup(_to_rotate, "checksum")

# The code a code exchange redeems (codes.redeemable), by its checksum (``code`` is unique), with
# the user and their ``sub`` for the ID token; the client is compared in Python. Only the Grant's
# row is locked.
GRANT_TO_REDEEM: LockingLookup[Grant] = LockingLookup(
    lambda checksum: Grant.objects.filter(code=checksum).select_related("user__oauth_subject").order_by()[:1],
    "checksum",
)
