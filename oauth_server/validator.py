"""Our OAuth2Validator: the adapter between oauthlib's questions and the product's policy.

DOT's validator does the protocol work; this subclass answers the questions where the product's
policy differs from DOT's defaults. Each override says which policy it enforces, and delegates the
work to the module that owns it: ``codes.py`` (authorization codes at rest, single use, replay),
``flows/tokens.py`` (RFC 7009), ``introspection.py`` (RFC 7662 claims), ``tokens.py`` (access tokens,
``token_checksum``, ``at_hash``), ``claims.py`` (OIDC claims), ``client_auth/`` (client
authentication methods and the request's parsed credentials).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import router, transaction
from django.utils import timezone
from jwcrypto.common import JWException
from oauth2_provider.exceptions import FatalClientError
from oauth2_provider.models import refresh_token_expire_timedelta
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import get_scopes_backend
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors
from oauthlib.oauth2.rfc6749.utils import scope_to_list

from . import (
    audit,
    cimd,
    claims,
    client_auth,
    codes,
    compiled,
    grants,
    hashers,
    introspection,
    keys,
    profiles,
    revocation,
    tokens,
)
from .conf import settings
from .flows import tokens as token_flows
from .lookups import CLIENT_BY_ID, REFRESH_TOKEN_TO_ROTATE
from .models import AccessToken, Client, GrantType, IDToken, RefreshToken, plausible_client_id
from .request_state import credentials_of, state_of
from .scopes import describe_refused_scopes
from .tokens import token_checksum

# A grant type no DOT branch matches: its RFC 8707 check then only normalizes and validates the
# request's own resource values (``_check_and_set_request_resource``).
NORMALIZE_RESOURCE_ONLY = "urn:oauth-server:resource-normalization"


class TokenNotRecorded(oauth2_errors.ServerError):
    """The token's audit event could not be written: the token is rolled back (a server error, 500)."""

    status_code = 500


class OAuthServerValidator(OAuth2Validator):
    def _check_secret(self, provided_secret, stored_secret) -> bool:
        """Fast hash for high-entropy secrets (hashers.py) instead of PBKDF2 on every request."""
        return hashers.check_secret(provided_secret, stored_secret)

    def _load_application(self, client_id, request):
        """DOT's lookup, but hostile client_ids never reach the database (``by_client_id``):
        PostgreSQL refuses a NUL byte with a DataError, which DOT's ValueError guard misses.

        A client_id that is a metadata document URL is resolved by ``cimd.load_client`` (fetched on
        first use, refreshed when stale, refused when its host is blocked), once per request."""
        if not plausible_client_id(client_id):
            return None
        if not cimd.is_document_url(client_id):
            return self._load_registered_client(client_id, request)
        cached = request.client
        if (
            cached is not None
            and getattr(cached, "client_id", None) == client_id
            and cached.is_usable(request)
        ):
            return cached
        client = cimd.load_client(client_id, request)
        request.client = client if client is not None and client.is_usable(request) else None
        return request.client

    def _load_registered_client(self, client_id, request):
        """DOT's lookup (the request's client reused if it is this one and usable), with the
        client's allowed scopes read in the same statement (``Client.objects.with_scopes``): the
        token endpoint's scope checks then cost no query of their own."""
        cached = request.client
        if isinstance(cached, Client) and cached.client_id == client_id and cached.is_usable(request):
            return cached
        client = CLIENT_BY_ID.first(client_id=client_id)
        if client is None or not client.is_usable(request):
            request.client = None
            return None
        request.client = client
        return client

    def client_authentication_required(self, request, *args, **kwargs) -> bool:
        """A request that presents a credential (or several) is authenticated, whatever the client;
        otherwise only a confidential client must be (DOT's rule, read from the parsed credentials)."""
        credentials = credentials_of(request)
        if credentials.presents_credential or credentials.conflict:
            return True
        client = self._load_application(credentials.client_id or request.client_id, request)
        return client is not None and client.is_confidential

    def authenticate_client(self, request, *args, **kwargs) -> bool:
        """Authenticate with the one method the request used (client_auth registry).

        Several methods at once is ``invalid_request`` (RFC 6749 2.3, 5.2): a wrong Basic secret must
        not pass beside a right ``client_secret`` in the body. The method must be one the client is
        registered for (``Client.token_endpoint_auth_method``).
        """
        credentials = credentials_of(request)
        if credentials.conflict:
            audit.client_auth_failed(request, "multiple_methods")
            raise oauth2_errors.InvalidRequestError(
                description="Use one client authentication method: HTTP Basic or the request body.",
                request=request,
            )
        method = client_auth.registry.get(credentials.method)
        client = None
        if credentials.client_id and not credentials.malformed:
            client = self._load_application(credentials.client_id, request)
        if client is not None and method is not None and method.confidential:
            if not method.allowed_for(client):
                audit.client_auth_failed(request, "auth_method_not_allowed")
                return False
            if not profiles.auth_method_allowed(client, method.name):
                # A client registered before the site turned its profile on (FAPI 2.0: private keys only).
                audit.client_auth_failed(request, "auth_method_not_allowed_by_profile")
                return False
            try:
                authenticated = method.authenticate(client, credentials, request)
            except client_auth.ClientAuthFailed as exc:
                audit.client_auth_failed(request, exc.reason)
                return False
            if authenticated:
                request.client = client
                _bind_client_id(request)
                return True
        audit.client_auth_failed(request)
        return False

    def authenticate_client_id(self, client_id, request, *args, **kwargs) -> bool:
        """A public client names itself (RFC 6749 2.1, the ``none`` method); a failure is audited like a
        failed authentication."""
        client = self._load_application(client_id, request)
        none = client_auth.registry.get("none")
        credentials = credentials_of(request)
        allowed = client is not None and none is not None and none.allowed_for(client)
        if allowed and not profiles.auth_method_allowed(client, none.name):
            # FAPI 2.0: confidential clients only, so a public client is refused everywhere.
            audit.client_auth_failed(request, "auth_method_not_allowed_by_profile")
            return False
        if allowed and none.authenticate(client, credentials, request):
            return True
        audit.client_auth_failed(request, "confidential_client" if request.client else None)
        return False

    def is_pkce_required(self, client_id, request) -> bool:
        """Public clients always; confidential clients unless the site turned REQUIRE_PKCE off, except
        under a security profile that requires it (FAPI 2.0)."""
        if settings.REQUIRE_PKCE:
            return True
        client = request.client or self._load_application(client_id, request)
        return client is None or not client.is_confidential or profiles.requires_pkce(client)

    def get_default_redirect_uri(self, client_id, request, *args, **kwargs):
        """The single registered URI stands in for a missing ``redirect_uri``, except under a profile
        that requires the parameter (FAPI 2.0): oauthlib then answers invalid_request, on a page."""
        client = request.client or self._load_application(client_id, request)
        if profiles.requires_redirect_uri(client):
            return None
        return super().get_default_redirect_uri(client_id, request, *args, **kwargs)

    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs) -> bool:
        """DOT's exact match, and https only under a profile that says so (a client registered with an
        http URI before the site turned the profile on)."""
        if not super().validate_redirect_uri(client_id, redirect_uri, request, *args, **kwargs):
            return False
        return profiles.redirect_uri_allowed(request.client, redirect_uri)

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs) -> bool:
        """The client's own list of grant types decides (DOT allows one per application)."""
        return client.has_grant_type(grant_type)

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs) -> bool:
        """Only registered response types (``code``): hybrid types ("code token", ...) are not
        supported rather than unauthorized; the client must hold the grant that serves the type."""
        spec = grants.registry.for_response_type(response_type)
        if spec is None:
            raise oauth2_errors.UnsupportedResponseTypeError(request=request)
        return client.has_grant_type(spec.name)

    def save_bearer_token(self, token, request, *args, **kwargs):
        """Issue a refresh token only to clients that hold the refresh_token grant, and only from a
        grant that issues refresh tokens (``GrantSpec.issues_refresh_token``)."""
        state_of(request).issued = True
        spec = grants.registry.get(getattr(request, "grant_type", None))
        if "refresh_token" in token and (
            not request.client.has_grant_type(GrantType.REFRESH_TOKEN)
            or (spec is not None and not spec.issues_refresh_token)
        ):
            del token["refresh_token"]
        if state_of(request).dpop_jkt:
            token["token_type"] = "DPoP"  # RFC 9449 5: the access token is DPoP-bound
        # DOT wraps this in an atomic block; inside TokenView's transaction, which already makes the
        # answer all-or-nothing (``issued`` is set: a failed answer rolls it all back), its savepoint
        # only added two statements. Blocks nested in DOT's code (RefreshToken.revoke) keep theirs.
        with transaction.atomic(using=router.db_for_write(AccessToken), savepoint=False):
            saved = self._save_bearer_token(token, request, *args, **kwargs)
        try:
            audit.token_issued(token, request)
        except audit.AuditWriteFailed as exc:
            # TokenView rolls the token back with the failed answer: no token without its event.
            raise TokenNotRecorded(
                description="The token could not be recorded; try again.", request=request
            ) from exc
        return saved

    def _save_bearer_token(self, token, request, *args, **kwargs):
        """DOT's, except a rotation of the refresh token ``validate_refresh_token`` read and locked:
        DOT would read that token twice more, its access token twice, and delete the access token
        through Django's collector in a savepoint (``revocation.retire_rotated``)."""
        rt = state_of(request).rotating
        if (
            rt is None
            or request.refresh_token_instance is not rt
            or not token.get("refresh_token")
            or not self.rotate_refresh_token(request)
        ):
            return super()._save_bearer_token(token, request, *args, **kwargs)
        if "scope" not in token:
            raise FatalClientError("Failed to renew access token: missing scope")
        self._check_and_set_request_resource(request)  # RFC 8707: the refresh token's resources
        expires = timezone.now() + timedelta(
            seconds=token.get("expires_in", oauth2_settings.ACCESS_TOKEN_EXPIRE_SECONDS)
        )
        revocation.retire_rotated(rt, exchanged=rt.access_token_exchanged)
        request.refresh_token_instance = None  # as DOT leaves it after revoking
        access_token = self._create_access_token(expires, request, token, source_refresh_token=rt)
        self._create_refresh_token(request, token["refresh_token"], access_token, rt)

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        """DOT's checks (rotation, reuse detection), then the client's or site's refresh lifetime.

        The lifetime counts from the refresh token's issue: since every use rotates it, this is
        an idle timeout for the whole session.

        The token's rows are locked first (inside TokenView's transaction), so of two concurrent
        refreshes with one token the second waits, then finds it rotated: DOT treats that as reuse
        (no grace period with hashed storage) and revokes the family. Without the lock both pass
        DOT's unlocked read and the second is answered from DOT's grace-period branch.

        The locking read loads what the refresh needs (issue 15): the access token (its scope and
        expiry), the user and their ``sub``, and whether a token was exchanged from that access
        token (``retire_rotated``). A live token of this client is then checked here as DOT would
        (an orphan, or one past ``REFRESH_TOKEN_EXPIRE_SECONDS``, is refused) and rotated without
        DOT's re-reads (``_save_bearer_token``); anything else (unknown, rotated or revoked, another
        client's) is DOT's to answer, from its own read after the lock.
        """
        checksum = token_checksum(refresh_token)
        found = REFRESH_TOKEN_TO_ROTATE.all(checksum=checksum)  # locked; compiled once (lookups.py)
        rt = found[0] if len(found) == 1 else None
        if rt is None or rt.revoked is not None or rt.access_token is None or rt.application_id != client.pk:
            if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
                audit.refresh_token_reused(checksum, client, request)
                return False
            rt = request.refresh_token_instance
        else:
            expire_delta = refresh_token_expire_timedelta()  # DOT's age limit (#746), as DOT checks it
            if expire_delta and rt.access_token.expires + expire_delta <= timezone.now():
                return False
            rt.application = client  # the same row: DOT's comparison read it a second time
            claims.remember_loaded_subject(rt.user)
            request.user = rt.user
            request.refresh_token = refresh_token
            request.refresh_token_instance = rt
            state_of(request).rotating = rt
        lifetime = client.refresh_token_lifetime or settings.REFRESH_TOKEN_LIFETIME
        state_of(request).refreshed = rt  # DOT clears refresh_token_instance; the audit trail reads it
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

    def is_within_original_scope(self, request_scopes, refresh_token, request, *args, **kwargs) -> bool:
        """oauthlib asks this only when a refresh asks for a scope outside ``get_original_scopes``:
        refuse it with an ``invalid_scope`` that names the scopes and says why (unknown, no longer
        allowed for the client, or never granted), instead of oauthlib's bare error."""
        granted = scope_to_list(super().get_original_scopes(refresh_token, request, *args, **kwargs)) or []
        allowed = get_scopes_backend().get_available_scopes(application=request.client, request=request)
        description = describe_refused_scopes(request_scopes, allowed, granted)
        if description is None:
            return False
        raise oauth2_errors.InvalidScopeError(description=description, request=request)

    def validate_scopes(self, client_id, scopes_requested, client, request, *args, **kwargs) -> bool:
        """DOT's rule (only the client's allowed scopes), but a refusal names the scopes and says
        whether each is unknown or not allowed for this client (authorization endpoint, client
        credentials), so the developer can act on the error."""
        allowed = get_scopes_backend().get_available_scopes(application=client, request=request)
        description = describe_refused_scopes(scopes_requested, allowed)
        if description is None:
            return True
        raise oauth2_errors.InvalidScopeError(description=description, request=request)

    # --- revocation (RFC 7009) and introspection (RFC 7662) ----------------------------------------
    def revoke_token(self, token, token_type_hint, request, *args, **kwargs) -> None:
        """RFC 7009: the caller's own token, and with it its whole grant (flows/tokens.py)."""
        token_flows.revoke_presented_token(token, token_type_hint, request)

    def introspect_token(self, token, token_type_hint, request, *args, **kwargs) -> dict[str, Any] | None:
        """RFC 7662 claims of an active token the caller may see, or None (introspection.py)."""
        return introspection.introspect(token, token_type_hint, request.client, request)

    # --- access tokens (tokens.py generates them; the row keeps jti and audience, never the value) ---
    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        state = state_of(request)
        meta = state.token_meta
        if meta is not None and meta.exp:
            # The JWT's own exp, so the row (introspection, admin) never differs from it by a second.
            expires = datetime.fromtimestamp(meta.exp, tz=UTC)
        id_token = getattr(request, "id_token", None)
        exchange = state.exchange  # RFC 8693: linked to the subject token, revoked with it
        access_token = AccessToken(
            user=request.user,
            scope=token["scope"],
            expires=expires,
            id_token=id_token if isinstance(id_token, IDToken) else None,
            application=request.client,
            source_refresh_token=source_refresh_token,
            resource=getattr(request, "resource", []),
            jti=meta.jti if meta is not None else "",
            dpop_jkt=state.dpop_jkt or "",
            audience=" ".join(meta.audience) if meta is not None else "",
            grant=codes.redeemed_grant(request) if source_refresh_token is None else None,
            act=exchange.act if exchange is not None else None,
            exchanged_from=exchange.subject if exchange is not None else None,
        )
        self._set_token_value(access_token, token["access_token"])
        compiled.insert(access_token)  # access_token.save(), its INSERT built once per connection
        state.access_token = access_token  # for TokenView's app_authorized, without a re-read
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
        return claims.apply_hook(
            "USERINFO",
            request,
            claims.claims_for_scopes(request.user, scopes),
            claims.PROTECTED_USERINFO_CLAIMS,
        )

    # --- authorization codes: stored as SHA-256, single use under concurrency, replay revokes (codes.py)
    def _create_authorization_code(self, request, code, expires=None):
        """DOT's Grant with the code's checksum instead of the code, and the session's auth_time; its
        lifetime capped by the client's security profile (FAPI 2.0: 60 seconds at most)."""
        if expires is None:
            site = oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS
            lifetime = profiles.code_lifetime(request.client, site)
            expires = timezone.now() + timedelta(seconds=lifetime)
        grant = super()._create_authorization_code(request, codes.at_rest(code), expires)
        return codes.record_issued(grant, request)

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
        """DOT's refresh token (same family as the previous one, RFC 8707 resource), carrying the
        authentication time on to the next refresh (OIDC Core 12.2), for the first of a family the
        code it came from (replay revokes the family), and a public client's DPoP key: one INSERT."""
        jkt = state_of(request).dpop_jkt
        refresh_token = RefreshToken(
            user=request.user,
            application=request.client,
            access_token=access_token,
            token_family=previous_refresh_token.token_family if previous_refresh_token else uuid.uuid4(),
            resource=getattr(request, "resource", []),
            auth_time=getattr(request, "auth_time", None),
            grant=codes.redeemed_grant(request) if previous_refresh_token is None else None,
            # RFC 9449 5: a public client's refresh token is bound to its key too.
            dpop_jkt=jkt if jkt and request.client.client_type == Client.CLIENT_PUBLIC else "",
        )
        self._set_token_value(refresh_token, refresh_token_code)
        refresh_token.save()
        return refresh_token

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        """The locked, unredeemed Grant row (a redeemed code is a replay: codes.redeemable revokes what
        it issued); then what oauthlib reads from the request: scopes, user, nonce, claims."""
        grant = codes.redeemable(code, client, request)
        if grant is None:
            return False
        state_of(request).grant = grant  # codes.grant_for, the tokens' link to it, tokens.resolve_audience
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

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs) -> None:
        """Mark the code redeemed, only if nobody else did (else ``invalid_grant``: codes.redeem)."""
        codes.redeem(code, request)

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs) -> bool:
        """RFC 6749 5.2: a redirect_uri other than the authorization request's is ``invalid_grant``.

        oauthlib answers ``invalid_request`` (MismatchingRedirectURIError) when this returns False.
        """
        grant = codes.grant_for(code, request, client)
        if grant is None or not grant.redirect_uri_allowed(redirect_uri):
            raise oauth2_errors.InvalidGrantError(
                description="redirect_uri does not match the authorization request.", request=request
            )
        return True

    def get_code_challenge(self, code, request):
        grant = codes.grant_for(code, request, request.client)
        return (grant.code_challenge or None) if grant is not None else None

    def get_code_challenge_method(self, code, request):
        grant = codes.grant_for(code, request, request.client)
        return (grant.code_challenge_method or None) if grant is not None else None

    def get_authorization_code_scopes(self, client_id, code, redirect_uri, request):
        # Called by oauthlib's OIDC dispatcher before the client is authenticated; scopes only.
        return super().get_authorization_code_scopes(client_id, token_checksum(code), redirect_uri, request)

    def get_authorization_code_nonce(self, client_id, code, redirect_uri, request):
        grant = codes.grant_for(code, request, request.client)
        return (grant.nonce or None) if grant is not None else None

    def _check_and_set_request_resource(self, request):
        """DOT's RFC 8707 handling. For a code exchange DOT reads the Grant again by ``request.code``
        (the code itself, which is stored hashed here); the row ``validate_code`` locked and
        checked is already in hand (``codes.grant_for``), so DOT normalizes and validates the
        request's ``resource`` values and the grant's resources are applied here, as DOT does:
        the request may narrow them (``invalid_target`` otherwise), or inherits them."""
        if request.grant_type != "authorization_code" or not request.code:
            return super()._check_and_set_request_resource(request)
        grant = codes.grant_for(request.code, request, request.client)
        request.grant_type = NORMALIZE_RESOURCE_ONLY  # DOT's grant-independent part only
        try:
            super()._check_and_set_request_resource(request)
        finally:
            request.grant_type = "authorization_code"
        grant_resource = list(grant.resource or []) if grant is not None else []
        if request.resource and grant_resource:
            for resource in request.resource:
                if resource not in grant_resource:
                    raise oauth2_errors.CustomOAuth2Error(
                        error="invalid_target",
                        description=(
                            f"The requested resource '{resource}' is not allowed. Token request cannot "
                            "escalate resource permissions beyond the original authorization grant"
                        ),
                        request=request,
                    )
        elif grant_resource:
            # Rows written before the authorization endpoint validated resources: validate them too.
            self._validate_resource_uris(request, grant_resource)
            request.resource = grant_resource

    def validate_silent_login(self, request) -> bool:
        # The view sends anonymous prompt=none requests back with login_required before oauthlib runs.
        return True

    def validate_silent_authorization(self, request) -> bool:
        # Remembered consent is decided by the view (consent.decide), which answers consent_required.
        return True

    def get_id_token_dictionary(self, token, token_handler, request):
        """DOT's claims (iss, jti, scope claims) with our lifetime, azp, and the carried auth_time.

        auth_time is the code's (the approving session's), or on refresh the refresh token's copy of
        it (OIDC Core 12.2). A refresh token from before auth_time was recorded has none: the claim
        is then left out rather than replaced by ``user.last_login``, another session's time.
        """
        id_claims, _ = super().get_id_token_dictionary(token, token_handler, request)
        auth_time = tokens.auth_time(request)
        if auth_time is not None:
            id_claims["auth_time"] = auth_time
        elif request.grant_type == "refresh_token":
            id_claims.pop("auth_time", None)
        expiration = timezone.now() + timedelta(seconds=settings.ID_TOKEN_LIFETIME)
        id_claims["exp"] = int(expiration.timestamp())
        # The authenticated client object, never a request parameter (oauthlib uses request.client_id).
        id_claims["aud"] = id_claims["azp"] = request.client.client_id
        return id_claims, expiration

    def finalize_id_token(self, id_token, token, token_handler, request):
        """Sign with the active database key; ``typ`` is plain JWT, never at+jwt (RFC 9068 2.1).

        at_hash uses the hash of the key's alg (OIDC Core 3.1.3.6): oauthlib always uses SHA-256,
        which is wrong for EdDSA (Ed25519 signs with SHA-512, so at_hash is its left half).
        A hook may add claims but not change the protected ones (claims.PROTECTED_ID_TOKEN_CLAIMS).
        """
        state_of(request).issued = True
        key = tokens.signing_key(request)
        id_claims, expiration = self.get_id_token_dictionary(token, token_handler, request)
        id_token.update(**id_claims)
        if "nonce" not in id_token and request.nonce:
            id_token["nonce"] = request.nonce
        if "access_token" in token:
            id_token["at_hash"] = tokens.at_hash(token["access_token"], key.algorithm)
        id_token = claims.apply_hook("ID_TOKEN_CLAIMS", request, id_token, claims.PROTECTED_ID_TOKEN_CLAIMS)
        signed = keys.sign(id_token, typ="JWT", key=key)
        # In TokenView's transaction (``issued`` is set above): no savepoint, as for the tokens.
        with transaction.atomic(using=router.db_for_write(IDToken), savepoint=False):
            request.id_token = self._save_id_token(id_token["jti"], request, expiration)
        return signed

    def _save_id_token(self, jti, request, expires, *args, **kwargs):
        """DOT records ``request.scope``, the raw ``scope`` parameter a token request may carry (any
        text: ignored by a code exchange, a NUL byte a 500 on PostgreSQL), before the granted scopes:
        the row records what was granted."""
        presented = request.scope
        request.scope = " ".join(request.scopes or [])
        try:
            return super()._save_id_token(jti, request, expires, *args, **kwargs)
        finally:
            request.scope = presented

    def _load_id_token(self, token):
        """An ID token we issued and that verifies with a published key, or None."""
        try:
            payload = keys.verify(token, typ="JWT")
        except (JWException, ValueError, TypeError, KeyError):
            return None
        return IDToken.objects.filter(jti=payload.get("jti")).select_related("user", "application").first()


def _bind_client_id(request) -> None:
    """After authentication, ``request.client_id`` is the authenticated client's (RFC 6749 3.2.1).

    A ``client_id`` parameter naming another client than the one that authenticated is refused:
    oauthlib reads ``request.client_id`` from the body, and would put that other client in the ID
    token's ``aud`` while the access token names the authenticated one.
    """
    presented = request.client_id
    if presented is not None and presented != request.client.client_id:
        audit.client_auth_failed(request, "client_id_mismatch")
        raise oauth2_errors.InvalidRequestError(
            description="client_id does not match the authenticated client.", request=request
        )
    request.client_id = request.client.client_id
