"""The resource-server kit: validate this server's access tokens in an API (docs/resource-server-kit.md).

Importable without the provider: nothing here imports ``oauth_server.models``, ``oauth_server.keys``
or ``oauth_server.conf`` at import time (only the opt-in "local" JWKS source, the "database"
revocation check and ``user_for_token`` do, when used). Settings: ``OAUTH_RESOURCE_SERVER``.

The public API (stable; DRF classes are in ``oauth_server.resource.drf``):

- ``validate_access_token(token, audience=None) -> AccessTokenClaims``, raising ``InvalidToken``
  (or ``ServiceUnavailable`` when the token cannot be checked)
- ``authenticate(request, audience=None)``, ``get_bearer_token(request)``,
  ``check_scopes(claims, scopes, any=)``
- ``require_scopes(*scopes, any=False, audience=None)``, ``RequireScopesMixin`` (``audience``,
  ``get_audience()``) for plain Django views; ``audience`` overrides the ``AUDIENCE`` setting
- ``BearerError`` and its subclasses ``MissingToken``, ``InvalidRequest``, ``InvalidToken``,
  ``InsufficientScope``, ``ServiceUnavailable``; ``error_response(exc)``, ``challenge(...)``
- ``schemes.ResourceProtector`` / ``schemes.TokenScheme`` / ``schemes.BearerScheme`` (the token-type
  registry; ``schemes.protector`` is the kit's), ``transport.TokenTransport`` (where a token may be),
  ``errors.ErrorFormat`` (how refusals are written)
- ``user_for_token(claims)`` (needs ``oauth_server`` installed)
- ``revocation.remember(jti, revoked=, exp=)``: a same-site API's revocation cache, told directly
- ``drf.BearerTokenAuthentication`` (``audience``, ``get_audience()``, ``with_audience()``),
  ``drf.TokenUser``, ``drf.HasScope``, ``drf.HasAllScopes``, ``drf.HasAnyScope``,
  ``drf.ReadWriteScopes``, ``drf.BearerAPIException``
"""

from .claims import AccessTokenClaims
from .decorators import RequireScopesMixin, require_scopes
from .errors import (
    BearerError,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingToken,
    ServiceUnavailable,
    challenge,
    error_response,
)
from .request import authenticate, check_scopes, get_bearer_token
from .tokens import validate_access_token
from .users import user_for_token

__all__ = [
    "AccessTokenClaims",
    "BearerError",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "MissingToken",
    "RequireScopesMixin",
    "ServiceUnavailable",
    "authenticate",
    "challenge",
    "check_scopes",
    "error_response",
    "get_bearer_token",
    "require_scopes",
    "user_for_token",
    "validate_access_token",
]
