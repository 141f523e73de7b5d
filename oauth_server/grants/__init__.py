"""Grants: one module per grant, one registration line here (docs/architecture.md, "Where to add a grant").

The registration order is the order of discovery's lists and of the admin's choices.
"""

from __future__ import annotations

from . import authorization_code, client_credentials, device_code, refresh_token, token_exchange
from .registry import GrantRegistry, GrantSpec

registry = GrantRegistry()
registry.register(authorization_code.GRANT)
registry.register(refresh_token.GRANT)
registry.register(client_credentials.GRANT)
registry.register(device_code.GRANT)
registry.register(token_exchange.GRANT)

__all__ = ["GrantRegistry", "GrantSpec", "registry"]
