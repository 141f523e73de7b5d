"""Our OAuth2Validator: fast client authentication, per-client grants, PKCE and token policy.

DOT's validator does the protocol work; this subclass answers the questions where the product's
policy differs from DOT's defaults. Each override says which policy it enforces.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.db import router, transaction
from django.utils import timezone
from jwcrypto.common import JWException
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import get_scopes_backend
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors
from oauthlib.oauth2.rfc6749.utils import scope_to_list

from . import claims, hashers, keys
from .conf import settings
from .models import AccessToken, Grant, GrantType, IDToken


class OAuthServerValidator(OAuth2Validator):
    def _check_secret(self, provided_secret, stored_secret) -> bool:
        """Fast hash for high-entropy secrets (hashers.py) instead of PBKDF2 on every request."""
        return hashers.check_secret(provided_secret, stored_secret)

    def authenticate_client(self, request, *args, **kwargs) -> bool:
        """One client authentication method per request (RFC 6749 2.3, 5.2 ``invalid_request``).

        DOT tries HTTP Basic and, when that fails, the body: a wrong Basic secret would otherwise
        pass with a right ``client_secret`` in the body.
        """
        if self._extract_basic_auth(request) and getattr(request, "client_secret", None):
            raise oauth2_errors.InvalidRequestError(
                description="Use one client authentication method: HTTP Basic or the request body.",
                request=request,
            )
        return super().authenticate_client(request, *args, **kwargs)

    def is_pkce_required(self, client_id, request) -> bool:
        """Public clients always; confidential clients unless the site turned REQUIRE_PKCE off."""
        if settings.REQUIRE_PKCE:
            return True
        client = request.client or self._load_application(client_id, request)
        return client is None or not client.is_confidential

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs) -> bool:
        """RFC 6749 5.2: a redirect_uri other than the authorization request's is ``invalid_grant``.

        oauthlib answers ``invalid_request`` (MismatchingRedirectURIError) when this returns False.
        """
        if not super().confirm_redirect_uri(client_id, code, redirect_uri, client, request, *args, **kwargs):
            raise oauth2_errors.InvalidGrantError(
                description="redirect_uri does not match the authorization request.", request=request
            )
        return True

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

    def get_original_scopes(self, refresh_token, request, *args, **kwargs) -> list[str]:
        """The refresh token's scopes that the client is still allowed.

        A scope removed from a client (or deleted) stops being minted by its existing refresh
        tokens, and asking for it is ``invalid_scope``: a client uses only its allowed scopes.
        """
        original = scope_to_list(super().get_original_scopes(refresh_token, request, *args, **kwargs)) or []
        allowed = set(get_scopes_backend().get_available_scopes(application=request.client, request=request))
        return [scope for scope in original if scope in allowed]

    # --- access tokens (tokens.py generates them; the row keeps jti and audience, never the value) ---
    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        meta = getattr(request, "oauth_server_token_meta", None) or {}
        id_token = getattr(request, "id_token", None)
        access_token = AccessToken(
            user=request.user,
            scope=token["scope"],
            expires=expires,
            id_token=id_token if isinstance(id_token, IDToken) else None,
            application=request.client,
            source_refresh_token=source_refresh_token,
            resource=getattr(request, "resource", []),
            jti=meta.get("jti", ""),
            audience=" ".join(meta.get("audience", [])),
        )
        self._set_token_value(access_token, token["access_token"])
        access_token.save()
        return access_token

    # --- OpenID Connect: claims and ID tokens signed with the database keys ----------------------
    def get_oidc_claims(self, token, token_handler, request):
        return claims.claims_for_scopes(request.user, request.scopes or [])

    def get_discovery_claims(self, request):
        return ["sub", *sorted({c for names in claims.SCOPE_CLAIMS.values() for c in names})]

    def get_userinfo_claims(self, request):
        access_token = getattr(request, "access_token", None)
        scopes = access_token.scope.split() if access_token is not None else (request.scopes or [])
        request.scopes = scopes
        return claims.apply_hook("USERINFO", request, claims.claims_for_scopes(request.user, scopes))

    # --- authorization codes carry the session's authentication time ------------------------------
    def _create_authorization_code(self, request, code, expires=None):
        grant = super()._create_authorization_code(request, code, expires)
        auth_time = getattr(request, "auth_time", None)
        if auth_time is not None:
            Grant.objects.filter(pk=grant.pk).update(auth_time=auth_time)
            grant.auth_time = auth_time
        return grant

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        """DOT's check, keeping the grant's auth_time for the ID token."""
        grant = Grant.objects.filter(code=code, application=client).select_related("user").first()
        if grant is None or grant.is_expired():
            return False
        request.scopes = grant.scope.split(" ")
        request.user = grant.user
        if grant.nonce:
            request.nonce = grant.nonce
        if grant.claims:
            try:
                request.claims = json.loads(grant.claims)
            except ValueError:
                request.claims = {}
        request.auth_time = grant.auth_time
        return True

    def validate_silent_login(self, request) -> bool:
        # The view sends anonymous prompt=none requests back with login_required before oauthlib runs.
        return True

    def validate_silent_authorization(self, request) -> bool:
        # Remembered consent is decided by the view (consent.decide), which answers consent_required.
        return True

    def get_id_token_dictionary(self, token, token_handler, request):
        id_claims, expiration = super().get_id_token_dictionary(token, token_handler, request)
        auth_time = getattr(request, "auth_time", None)
        if auth_time is not None:
            id_claims["auth_time"] = int(auth_time.timestamp())
        id_claims["exp"] = int((timezone.now() + timedelta(seconds=settings.ID_TOKEN_LIFETIME)).timestamp())
        id_claims["azp"] = request.client_id or request.client.client_id
        return id_claims, timezone.now() + timedelta(seconds=settings.ID_TOKEN_LIFETIME)

    def finalize_id_token(self, id_token, token, token_handler, request):
        """Sign with the active database key; ``typ`` is plain JWT, never at+jwt (RFC 9068 2.1)."""
        id_claims, expiration = self.get_id_token_dictionary(token, token_handler, request)
        id_token.update(**id_claims)
        if "nonce" not in id_token and request.nonce:
            id_token["nonce"] = request.nonce
        id_token = claims.apply_hook("ID_TOKEN_CLAIMS", request, id_token)
        signed = keys.sign(id_token, typ="JWT")
        with transaction.atomic(using=router.db_for_write(IDToken)):
            request.id_token = self._save_id_token(id_token["jti"], request, expiration)
        return signed

    def _load_id_token(self, token):
        """An ID token we issued and that verifies with a published key, or None."""
        try:
            payload = keys.verify(token, typ="JWT")
        except (JWException, ValueError, TypeError, KeyError):
            return None
        return IDToken.objects.filter(jti=payload.get("jti")).select_related("user", "application").first()
