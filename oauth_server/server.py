"""The oauthlib server DOT drives: the registered grants only (``oauth_server.grants``), OpenID Connect.

Rather than switching implicit and password off with flags, they are simply not registered, so a
request for them gets oauthlib's ``unsupported_response_type`` / ``unsupported_grant_type``. The
token and authorization endpoints are built from the grant registry: each grant's module builds its
oauthlib handler (PKCE S256 only and the OIDC wrappers live in ``grants/authorization_code.py`` and
``grants/refresh_token.py``); what applies to every grant (the audience of issued tokens, the
per-client lifetime) is added here.
"""

from __future__ import annotations

from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749.endpoints import (
    AuthorizationEndpoint,
    IntrospectEndpoint,
    ResourceEndpoint,
    RevocationEndpoint,
    TokenEndpoint,
)
from oauthlib.oauth2.rfc6749.tokens import BearerToken
from oauthlib.openid.connect.core.endpoints.userinfo import UserInfoEndpoint

from . import dpop, grants, tokens
from .grants.authorization_code import NAME as DEFAULT_GRANT_TYPE
from .request_state import state_of


def client_token_lifetime(request) -> int:
    """expires_in per request: the client's own access-token lifetime, else the site default.

    The site default is read on every request, not when DOT builds (and caches) the server, so a
    changed setting (``override_settings`` in tests) takes effect.
    """
    client = getattr(request, "client", None)
    lifetime = getattr(client, "access_token_lifetime", None) or oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS
    exchange = state_of(request).exchange  # RFC 8693: never beyond the subject token's remaining lifetime
    return min(lifetime, exchange.lifetime_cap) if exchange is not None else lifetime


class OAuth2Server(
    AuthorizationEndpoint,
    IntrospectEndpoint,
    TokenEndpoint,
    ResourceEndpoint,
    RevocationEndpoint,
    UserInfoEndpoint,
):
    def __init__(
        self,
        request_validator,
        token_expires_in=None,
        token_generator=None,
        refresh_token_generator=None,
        *args,
        **kwargs,
    ):
        # One handler per grant, shared by its grant_type and its response types.
        self.grant_handlers = grants.registry.handlers(request_validator)
        for handler in self.grant_handlers.values():
            handler.custom_validators.post_token.append(dpop.validate_token_request)
            handler.custom_validators.post_token.append(tokens.resolve_audience)

        if isinstance(token_expires_in, int):
            token_expires_in = client_token_lifetime
        self.bearer = BearerToken(
            request_validator, token_generator, token_expires_in, refresh_token_generator
        )
        response_types = {
            response_type: self.grant_handlers[spec.name]
            for spec in grants.registry
            if spec.build is not None
            for response_type in spec.response_types
        }
        AuthorizationEndpoint.__init__(
            self,
            default_response_type="code",
            response_types=response_types,
            default_token_type=self.bearer,
        )
        TokenEndpoint.__init__(
            self,
            default_grant_type=DEFAULT_GRANT_TYPE,
            grant_types={name: self.grant_handlers[name] for name in grants.registry.token_grant_types()},
            default_token_type=self.bearer,
        )
        ResourceEndpoint.__init__(self, default_token="Bearer", token_types={"Bearer": self.bearer})
        RevocationEndpoint.__init__(self, request_validator)
        IntrospectEndpoint.__init__(self, request_validator)
        UserInfoEndpoint.__init__(self, request_validator)
