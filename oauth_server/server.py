"""The oauthlib server DOT drives: only the grants we support, PKCE with S256 only, OpenID Connect.

Rather than switching implicit and password off with flags, they are simply not registered, so a
request for them gets oauthlib's ``unsupported_response_type`` / ``unsupported_grant_type``. The
OpenID Connect grants wrap the very same OAuth 2 grant objects (they only add the ID token when
``openid`` is in scope), so every code and refresh request runs one code path.
"""

from __future__ import annotations

from oauth2_provider.models import get_grant_model
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.endpoints import (
    AuthorizationEndpoint,
    IntrospectEndpoint,
    ResourceEndpoint,
    RevocationEndpoint,
    TokenEndpoint,
)
from oauthlib.oauth2.rfc6749.grant_types import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from oauthlib.oauth2.rfc6749.grant_types.authorization_code import code_challenge_method_s256
from oauthlib.oauth2.rfc6749.tokens import BearerToken
from oauthlib.openid.connect.core.endpoints.userinfo import UserInfoEndpoint
from oauthlib.openid.connect.core.grant_types import AuthorizationCodeGrant as OIDCAuthorizationCodeGrant
from oauthlib.openid.connect.core.grant_types import RefreshTokenGrant as OIDCRefreshTokenGrant

from . import parameters, tokens


def validate_claims_parameter(request) -> dict:
    """OIDC Core 5.5: a malformed ``claims`` parameter is invalid_request, redirected with state.

    oauthlib raises this error without the request, so it would lose the redirect URI and state.
    Length and nesting are bounded before parsing: deep nesting made ``json.loads`` raise
    RecursionError (a 500), and the parsed document is stored with the code.
    """
    if request.claims and not isinstance(request.claims, dict):
        parsed = parameters.parse_claims(request.claims)
        if parsed is None:
            raise errors.InvalidRequestError(
                description=(
                    "Malformed claims parameter: a JSON object of at most "
                    f"{parameters.MAX_CLAIMS_LENGTH} characters and {parameters.MAX_CLAIMS_DEPTH} levels."
                ),
                request=request,
            )
        request.claims = parsed
    return {}


def validate_stored_parameters(request) -> dict:
    """The values saved with the code must be storable, and the PKCE challenge well formed.

    RFC 7636 4.2 / 4.4.1: the S256 challenge is 43 base64url characters, anything else is
    invalid_request (as oauthlib answers other PKCE errors). The nonce must fit the Grant's column
    without a NUL byte: PostgreSQL refused those when the code was saved (a 500).
    """
    if request.code_challenge is not None and not parameters.valid_s256_challenge(request.code_challenge):
        raise errors.InvalidRequestError(
            description="code_challenge must be 43 base64url characters (S256, RFC 7636 4.2).",
            request=request,
        )
    nonce_length = get_grant_model()._meta.get_field("nonce").max_length
    if request.nonce is not None and not parameters.storable_text(request.nonce, nonce_length):
        raise errors.InvalidRequestError(
            description=f"nonce must be at most {nonce_length} characters, without NUL.", request=request
        )
    return {}


def carry_auth_time(request) -> dict:
    """Refresh: the new tokens keep the original authentication time (OIDC Core 12.2), which the
    refresh token carries from the authorization code; ``user.last_login`` would be another session's.
    """
    rt = getattr(request, "refresh_token_instance", None)
    request.auth_time = getattr(rt, "auth_time", None)
    return {}


class S256AuthorizationCodeGrant(AuthorizationCodeGrant):
    """RFC 9700 2.1.1: ``plain`` is refused (a missing method means plain, so it is refused too)."""

    _code_challenge_methods = {"S256": code_challenge_method_s256}

    def validate_code_challenge(self, challenge, challenge_method, verifier) -> bool:
        """RFC 7636 4.1: a verifier is 43-128 characters of ``[A-Za-z0-9-._~]``; any other fails
        verification, which RFC 7636 4.6 answers with invalid_grant (even when its hash matches)."""
        if not parameters.valid_code_verifier(verifier):
            raise errors.InvalidGrantError(
                description="code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 4.1)."
            )
        return super().validate_code_challenge(challenge, challenge_method, verifier)


class OpenIDCodeGrant(OIDCAuthorizationCodeGrant):
    """The OIDC code grant around a given OAuth 2 code grant (oauthlib builds its own otherwise)."""

    def __init__(self, proxy_target: AuthorizationCodeGrant):
        self.proxy_target = proxy_target
        self.custom_validators.post_auth.append(self.openid_authorization_validator)
        self.register_token_modifier(self.add_id_token)


class OpenIDRefreshGrant(OIDCRefreshTokenGrant):
    def __init__(self, proxy_target: RefreshTokenGrant):
        self.proxy_target = proxy_target
        self.register_token_modifier(self.add_id_token)


def client_token_lifetime(request) -> int:
    """expires_in per request: the client's own access-token lifetime, else the site default.

    The site default is read on every request, not when DOT builds (and caches) the server, so a
    changed setting (``override_settings`` in tests) takes effect.
    """
    client = getattr(request, "client", None)
    lifetime = getattr(client, "access_token_lifetime", None)
    return lifetime or oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS


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
        self.auth_grant = S256AuthorizationCodeGrant(request_validator)
        self.credentials_grant = ClientCredentialsGrant(request_validator)
        self.refresh_grant = RefreshTokenGrant(request_validator)
        for grant in (self.auth_grant, self.credentials_grant, self.refresh_grant):
            grant.custom_validators.post_token.append(tokens.resolve_audience)
        self.refresh_grant.custom_validators.post_token.insert(0, carry_auth_time)
        self.auth_grant.custom_validators.pre_auth.append(validate_claims_parameter)
        # After oauthlib's own PKCE checks (missing challenge, method), before the OIDC validator.
        self.auth_grant.custom_validators.post_auth.append(validate_stored_parameters)
        self.openid_auth_grant = OpenIDCodeGrant(self.auth_grant)
        self.openid_refresh_grant = OpenIDRefreshGrant(self.refresh_grant)

        if isinstance(token_expires_in, int):
            token_expires_in = client_token_lifetime
        self.bearer = BearerToken(
            request_validator, token_generator, token_expires_in, refresh_token_generator
        )
        AuthorizationEndpoint.__init__(
            self,
            default_response_type="code",
            response_types={"code": self.openid_auth_grant},
            default_token_type=self.bearer,
        )
        TokenEndpoint.__init__(
            self,
            default_grant_type="authorization_code",
            grant_types={
                "authorization_code": self.openid_auth_grant,
                "client_credentials": self.credentials_grant,
                "refresh_token": self.openid_refresh_grant,
            },
            default_token_type=self.bearer,
        )
        ResourceEndpoint.__init__(self, default_token="Bearer", token_types={"Bearer": self.bearer})
        RevocationEndpoint.__init__(self, request_validator)
        IntrospectEndpoint.__init__(self, request_validator)
        UserInfoEndpoint.__init__(self, request_validator)
