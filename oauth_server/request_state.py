"""One token request's state, typed: what the validator, ``tokens.py`` and ``audit.py`` learn while
oauthlib handles the request, and what TokenView reads once oauthlib has answered.

There are two request objects: TokenView gets Django's ``HttpRequest``; DOT's ``OAuthLibCore``
hands oauthlib the URI, method, body and headers, and oauthlib builds its own ``Request`` from
them, which is all the validator, the token generator and the token-request validators ever see.
The state crosses in the headers: ``state_of(django_request)`` (TokenView, before DOT runs) puts the
object in ``request.META`` under ``ENVIRON_KEY``, DOT copies ``META`` into the oauthlib request's
headers, and ``state_of(oauthlib_request)`` finds the same object there. ``ENVIRON_KEY`` is a
dotted environ key like ``wsgi.input``: a client's header always arrives as ``HTTP_...``, so it
cannot set or replace the state. A request no TokenView began (the authorization endpoint, a test
calling the validator) gets a fresh state on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .client_auth.credentials import ClientCredentials, request_source
from .client_auth.registry import parse

if TYPE_CHECKING:
    from .models import AccessToken, Grant, RefreshToken

ENVIRON_KEY = "oauth_server.token_request_state"
_ATTRIBUTE = "oauth_server_state"


@dataclass(eq=False)
class AccessTokenMeta:
    """What ``tokens.access_token_generator`` decided for the token it made, for the row and the audit."""

    jti: str
    audience: list[str]
    exp: int | None = None  # the JWT's exp (None for an opaque token): the row's expiry matches it
    format: str = "jwt"  # "jwt" or "opaque" (an opaque token has a jti too: the row's identifier)


@dataclass(eq=False)
class TokenExchange:
    """What ``grants/token_exchange.py`` decided for a token-exchange request (RFC 8693): the token
    generator (``act``, the lifetime cap), the validator (the row's link and ``act``) and the audit
    trail read it."""

    subject: AccessToken  # the subject token's row: the new token is deleted with it
    act: dict[str, Any] | None  # the new token's act claim; None for impersonation
    lifetime_cap: int  # seconds the subject token has left: the new token's expires_in never exceeds it
    actor: AccessToken | None = None  # the actor token's row, if one was presented
    requested_token_type: str = ""


@dataclass(eq=False, repr=False)
class TokenRequestState:
    """Per token request; every field starts empty and is written by one place."""

    # credentials_of (below): what the request presented to authenticate its client, parsed once
    # (by the rate limiter or CORS on Django's request, else by the validator on oauthlib's).
    credentials: ClientCredentials | None = None
    grant: Grant | None = None  # validator.validate_code: the locked Grant of the code being redeemed
    audience: list[str] | None = None  # tokens.resolve_audience: the token's aud (RFC 8707)
    token_meta: AccessTokenMeta | None = None  # tokens.access_token_generator
    refreshed: RefreshToken | None = None  # validate_refresh_token: the token being rotated (DOT clears it)
    # validate_refresh_token: the live refresh token it read and locked with its access token, which
    # save_bearer_token rotates without re-reading them (None: DOT's rotation, DOT's reads).
    rotating: RefreshToken | None = None
    # An ID token or tokens were saved (finalize_id_token, save_bearer_token): an error answered
    # after that point must leave nothing behind, so TokenView rolls back; errors before it
    # (replay and reuse revocations, audit records of failures) are committed.
    issued: bool = False
    url: str | None = None  # TokenView: the endpoint's absolute URL (a DPoP proof's htu names it)
    dpop_jkt: str | None = None  # dpop.validate_token_request: the proof's key thumbprint (RFC 9449)
    access_token: AccessToken | None = None  # the row saved, for TokenView's app_authorized (no re-read)
    exchange: TokenExchange | None = None  # grants/token_exchange.py: a validated RFC 8693 exchange

    @property
    def grant_resource(self) -> list[str]:
        """The resources (RFC 8707) the code being redeemed was bound to."""
        return list(self.grant.resource or []) if self.grant is not None else []

    def __repr__(self) -> str:  # row ids only: never a token value in a log or an error page
        return (
            f"<TokenRequestState grant={getattr(self.grant, 'pk', None)} issued={self.issued} "
            f"access_token={getattr(self.access_token, 'pk', None)}>"
        )


def state_of(request: Any) -> TokenRequestState:
    """The state of this token request, from the Django request or oauthlib's; created on first use.

    On a Django request it is also put in ``META``, for DOT to carry to the oauthlib request: call
    it before DOT builds that request (TokenView does).
    """
    state = vars(request).get(_ATTRIBUTE)
    if state is None:
        state = _carried(request) or TokenRequestState()
        setattr(request, _ATTRIBUTE, state)
        meta = vars(request).get("META")
        if isinstance(meta, dict):
            meta[ENVIRON_KEY] = state
    return state


def _carried(request: Any) -> TokenRequestState | None:
    """The state a Django request's ``META`` carried into this oauthlib request's headers."""
    headers = vars(request).get("headers")
    value = headers.get(ENVIRON_KEY) if isinstance(headers, Mapping) else None
    return value if isinstance(value, TokenRequestState) else None


def credentials_of(request: Any) -> ClientCredentials:
    """What the request (Django's or oauthlib's) presented to authenticate its client, parsed once
    by the client-authentication registry and then kept in the request's state: the validator,
    ``audit.client_auth_failed``, the rate limiter and CORS all read this one object."""
    state = state_of(request)
    if state.credentials is None:
        state.credentials = parse(*request_source(request))
    return state.credentials
