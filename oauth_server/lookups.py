"""The lookups on every token, introspection, revocation and userinfo request, compiled once per
connection (``compiled.CompiledLookup``; why: docs/performance.md, "Compiled lookups").

Each looks up a unique column, so a ``[:1]`` slice rather than ``.first()``: no ``ORDER BY`` to
compile or run.
"""

from __future__ import annotations

from .compiled import CompiledLookup
from .models import AccessToken, Client, RefreshToken

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
