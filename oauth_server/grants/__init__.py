"""Grants: one module per grant, one registration line here (docs/architecture.md, "Where to add a grant").

The registration order is the order of discovery's lists and of the admin's choices.
"""

from __future__ import annotations

from . import authorization_code, client_credentials, refresh_token
from .registry import GrantRegistry, GrantSpec
from .token_exchange import GRANT as TOKEN_EXCHANGE

registry = GrantRegistry()
registry.register(authorization_code.GRANT)
registry.register(refresh_token.GRANT)
registry.register(client_credentials.GRANT)
registry.register(TOKEN_EXCHANGE)

__all__ = ["GrantRegistry", "GrantSpec", "registry"]
