"""Our OAuth2Validator: fast client authentication, per-client grants, PKCE and token policy.

DOT's validator does the protocol work; this subclass answers the questions where the product's
policy differs from DOT's defaults. Each override says which policy it enforces.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors

from . import hashers
from .conf import settings
from .models import GrantType


class OAuthServerValidator(OAuth2Validator):
    def _check_secret(self, provided_secret, stored_secret) -> bool:
        """Fast hash for high-entropy secrets (hashers.py) instead of PBKDF2 on every request."""
        return hashers.check_secret(provided_secret, stored_secret)

    def is_pkce_required(self, client_id, request) -> bool:
        """Public clients always; confidential clients unless the site turned REQUIRE_PKCE off."""
        if settings.REQUIRE_PKCE:
            return True
        client = request.client or self._load_application(client_id, request)
        return client is None or not client.is_confidential

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs) -> bool:
        """The client's own list of grant types decides (DOT allows one per application)."""
        return client.has_grant_type(grant_type)

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs) -> bool:
        """Only ``code``: hybrid types ("code token", ...) are not supported rather than unauthorized."""
        if response_type != "code":
            raise oauth2_errors.UnsupportedResponseTypeError(request=request)
        return client.has_grant_type(GrantType.AUTHORIZATION_CODE)

    def save_bearer_token(self, token, request, *args, **kwargs):
        """Issue a refresh token only to clients that hold the refresh_token grant."""
        if "refresh_token" in token and not request.client.has_grant_type(GrantType.REFRESH_TOKEN):
            del token["refresh_token"]
        return super().save_bearer_token(token, request, *args, **kwargs)

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        """DOT's checks (rotation, reuse detection), then the client's or site's refresh lifetime.

        The lifetime counts from the refresh token's issue: since every use rotates it, this is
        an idle timeout for the whole session.
        """
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        lifetime = client.refresh_token_lifetime or settings.REFRESH_TOKEN_LIFETIME
        rt = request.refresh_token_instance
        if lifetime and rt.created + timedelta(seconds=lifetime) <= timezone.now():
            return False
        return rt.user.is_active
