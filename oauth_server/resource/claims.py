"""``AccessTokenClaims``: what the kit hands an API once a token is validated.

Its own module so that the validators (``tokens``) and the checks they call (``revocation``) both
import it without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, eq=False)
class AccessTokenClaims(Mapping):
    """A validated access token: the fields an API needs, and every claim by ``claims["name"]``.

    ``source`` is ``"jwt"`` (validated offline) or ``"introspection"`` (the authorization server's
    answer for an opaque token).
    """

    sub: str
    client_id: str
    scopes: frozenset[str]
    aud: tuple[str, ...]
    exp: int
    iss: str
    jti: str | None
    claims: Mapping[str, Any]
    source: str = "jwt"

    def __getitem__(self, name: str) -> Any:
        return self.claims[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.claims)

    def __len__(self) -> int:
        return len(self.claims)

    def __repr__(self) -> str:
        return (
            f"AccessTokenClaims(sub={self.sub!r}, client_id={self.client_id!r}, scopes={sorted(self.scopes)})"
        )

    def has_scopes(self, *scopes: str) -> bool:
        """True when every one of ``scopes`` was granted."""
        return set(scopes) <= self.scopes

    def has_any_scope(self, *scopes: str) -> bool:
        return bool(set(scopes) & self.scopes)
