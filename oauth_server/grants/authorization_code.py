"""The authorization code grant (RFC 6749 4.1) with PKCE S256 only (RFC 7636, RFC 9700 2.1.1).

Serves ``response_type=code`` at the authorization endpoint and ``grant_type=authorization_code`` at
the token endpoint with one handler: the OpenID Connect grant wraps the very same OAuth 2 grant
object (it only adds the ID token when ``openid`` is in scope), so every code request runs one path.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from oauthlib.oauth2.rfc6749 import errors
from oauthlib.oauth2.rfc6749.grant_types import AuthorizationCodeGrant
from oauthlib.oauth2.rfc6749.grant_types.authorization_code import code_challenge_method_s256
from oauthlib.openid.connect.core.grant_types import AuthorizationCodeGrant as OIDCAuthorizationCodeGrant

from .. import parameters
from .registry import GrantSpec

NAME = "authorization_code"


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
    # Imported here: the registry is read while the app registry loads (conf.dot_defaults).
    from oauth2_provider.models import get_grant_model

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


def validate_dpop_jkt(request) -> dict:
    """RFC 9449 10: ``dpop_jkt`` binds the code to a DPoP key; it must be one well-formed thumbprint.

    Returned into the request's credentials, so the consent page carries it and the code keeps it
    (codes.record_issued); the code exchange must then carry a proof by that key.
    """
    value = getattr(request, "dpop_jkt", None)
    if value is None:
        return {}
    if "dpop_jkt" in request.duplicate_params or not parameters.valid_dpop_jkt(value):
        raise errors.InvalidRequestError(
            description="dpop_jkt must be one JWK SHA-256 thumbprint: 43 base64url characters (RFC 9449 10).",
            request=request,
        )
    return {"dpop_jkt": value}


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


def build(request_validator: Any) -> OpenIDCodeGrant:
    grant = S256AuthorizationCodeGrant(request_validator)
    grant.custom_validators.pre_auth.append(validate_claims_parameter)
    # After oauthlib's own PKCE checks (missing challenge, method), before the OIDC validator.
    grant.custom_validators.post_auth.append(validate_stored_parameters)
    grant.custom_validators.post_auth.append(validate_dpop_jkt)
    return OpenIDCodeGrant(grant)


GRANT = GrantSpec(
    name=NAME,
    member="AUTHORIZATION_CODE",
    label=_("Authorization code (+ PKCE)"),
    build=build,
    response_types=("code",),
    issues_refresh_token=True,
    dot_grant="authorization-code",  # AbstractApplication.GRANT_AUTHORIZATION_CODE
)
