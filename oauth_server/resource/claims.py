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

    @property
    def act(self) -> Mapping[str, Any] | None:
        """RFC 8693 4.1: the ``act`` claim of a token obtained by token exchange (delegation): who
        acts for ``sub``; None for a token the user's client holds itself (or an impersonation)."""
        value = self.claims.get("act")
        return value if isinstance(value, Mapping) else None

    @property
    def actor(self) -> str | None:
        """The current actor's ``sub`` (for a client, its ``client_id``): who is calling for ``sub``."""
        act = self.act
        sub = act.get("sub") if act is not None else None
        return sub if isinstance(sub, str) else None

    @property
    def actor_chain(self) -> tuple[str, ...]:
        """Every actor, the current one first, then whoever it acted for (nested ``act``): RFC 8693
        4.1 says only the current actor is for access decisions; the rest is for audit and display."""
        chain: list[str] = []
        act = self.act
        while isinstance(act, Mapping) and isinstance(act.get("sub"), str) and len(chain) < 16:
            chain.append(act["sub"])
            act = act.get("act")
        return tuple(chain)

    @property
    def is_delegated(self) -> bool:
        return self.act is not None

    def has_scopes(self, *scopes: str) -> bool:
        """True when every one of ``scopes`` was granted."""
        return set(scopes) <= self.scopes

    def has_any_scope(self, *scopes: str) -> bool:
        return bool(set(scopes) & self.scopes)
