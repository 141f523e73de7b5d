"""OAuth 2.0 Token Exchange (RFC 8693): a confidential client trades a user's access token for a
narrower one for another API, acting for the user (delegation, an ``act`` claim naming it).

oauthlib has no such grant; ``TokenExchangeGrant`` validates the request here, authenticates the
client through the validator (every registered method, private_key_jwt included) and then lets the
server's token handler make the token, so the JWT generator, the audit trail, the row's storage and
TokenView's transaction apply as to every other grant. What this module decides lives in the
request's state (``request_state.TokenExchange``): ``tokens.access_token_claims`` adds ``act``,
``server.client_token_lifetime`` caps the lifetime, the validator links the row to the subject
token (revoking that one revokes this one) and ``audit.token_issued`` records ``token_exchanged``.

Policy (docs/token-exchange.md):

- ``subject_token``: an access token this server issued (JWT or opaque, found by its checksum), for
  a user, active (not expired or revoked, user active, client enabled), and issued to the acting
  client or for an API the acting client serves (its ``resource_identifiers``): a client cannot
  exchange a token that was never meant for it. ID tokens and other types are refused.
- ``actor_token`` (optional): an active access token issued to the acting client; its subject
  becomes ``act.sub``. Without one, ``act.sub`` is the acting client's ``client_id``.
- target: ``resource`` / ``audience`` values, each one of the acting client's ``audiences``
  (``invalid_target`` otherwise); none: all of them.
- scopes only shrink: requested (default: all) within the subject token's scopes and the acting
  client's allowed scopes (``invalid_scope`` otherwise).
- lifetime: the acting client's, never beyond the subject token's remaining lifetime.
- chains: exchanging an exchanged token nests its ``act`` (RFC 8693 4.1).
- impersonation (no ``act``) only for a client with ``token_exchange_impersonation``.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .registry import GrantSpec

NAME = "urn:ietf:params:oauth:grant-type:token-exchange"

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"

# What this server accepts as subject_token_type / actor_token_type, and issues (RFC 8693 3).
SUPPORTED_SUBJECT_TOKEN_TYPES = (ACCESS_TOKEN_TYPE,)
SUPPORTED_REQUESTED_TOKEN_TYPES = (ACCESS_TOKEN_TYPE,)

# Parameters that may appear once (RFC 8693 2.1; resource and audience may repeat).
SINGLE_PARAMETERS = (
    "grant_type",
    "scope",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
)
MAX_TOKEN_LENGTH = 8192
# One answer for every refused subject token, whichever check refused it (the audit event's reason
# says which): a client must not learn whether a token it may not exchange is live (an oracle).
SUBJECT_REFUSED = "subject_token is not an active access token that this client may exchange."
# Longest delegation chain (nested act): each exchange of an exchanged token adds one level; a client
# exchanging its own tokens in a loop must not grow a token (and the APIs' JSON parsers) without end.
MAX_ACT_DEPTH = 8


GRANT = GrantSpec(
    name=NAME,
    member="TOKEN_EXCHANGE",
    label=_("Token exchange (RFC 8693)"),
    build="oauth_server.grants.handlers.token_exchange.build",
    public_clients=False,
    confidential_only_message=_("Only confidential clients may use token exchange."),
)
