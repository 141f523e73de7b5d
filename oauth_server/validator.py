"""Our OAuth2Validator: fast client authentication, per-client grants, PKCE and token policy.

DOT's validator does the protocol work; this subclass answers the questions where the product's
policy differs from DOT's defaults. Each override says which policy it enforces.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import router, transaction
from django.utils import timezone
from jwcrypto.common import JWException
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import get_scopes_backend
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors
from oauthlib.oauth2.rfc6749.utils import scope_to_list

from . import audit, claims, hashers, keys, signals, tokens
from .conf import settings
from .models import AccessToken, Grant, GrantType, IDToken, RefreshToken, plausible_client_id
from .scopes import describe_refused_scopes

logger = logging.getLogger(__name__)


class OAuthServerValidator(OAuth2Validator):
    def _check_secret(self, provided_secret, stored_secret) -> bool:
        """Fast hash for high-entropy secrets (hashers.py) instead of PBKDF2 on every request."""
        return hashers.check_secret(provided_secret, stored_secret)

    def _load_application(self, client_id, request):
        """DOT's lookup, but hostile client_ids never reach the database (``by_client_id``):
        PostgreSQL refuses a NUL byte with a DataError, which DOT's ValueError guard misses."""
        return super()._load_application(client_id, request) if plausible_client_id(client_id) else None

    def _authenticate_basic_auth(self, request) -> bool:
        """DOT lets base64's ValueError (a non-ASCII ``Authorization: Basic`` value) escape as a 500;
        undecodable credentials are a failed authentication (tests/fuzz/test_fuzz_token.py)."""
        try:
            return super()._authenticate_basic_auth(request)
        except ValueError:
            return False

    def authenticate_client(self, request, *args, **kwargs) -> bool:
        """One client authentication method per request (RFC 6749 2.3, 5.2 ``invalid_request``).

        DOT tries HTTP Basic and, when that fails, the body: a wrong Basic secret would otherwise
        pass with a right ``client_secret`` in the body.
        """
        basic = self._extract_basic_auth(request)
        if basic and getattr(request, "client_secret", None):
            audit.client_auth_failed(request, basic, "multiple_methods")
            raise oauth2_errors.InvalidRequestError(
                description="Use one client authentication method: HTTP Basic or the request body.",
                request=request,
            )
        if super().authenticate_client(request, *args, **kwargs):
            _bind_client_id(request, basic)
            return True
        audit.client_auth_failed(request, basic)
        return False

    def authenticate_client_id(self, client_id, request, *args, **kwargs) -> bool:
        """DOT's check of a public client's id; a failure is audited like a failed authentication."""
        if super().authenticate_client_id(client_id, request, *args, **kwargs):
            return True
        audit.client_auth_failed(request, None, "confidential_client" if request.client else None)
        return False

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
        _note_issuing()
        if "refresh_token" in token and not request.client.has_grant_type(GrantType.REFRESH_TOKEN):
            del token["refresh_token"]
        saved = super().save_bearer_token(token, request, *args, **kwargs)
        audit.token_issued(token, request)
        return saved

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        """DOT's checks (rotation, reuse detection), then the client's or site's refresh lifetime.

        The lifetime counts from the refresh token's issue: since every use rotates it, this is
        an idle timeout for the whole session.

        The token's rows are locked first (inside TokenView's transaction), so of two concurrent
        refreshes with one token the second waits, then finds it rotated: DOT treats that as reuse
        (no grace period with hashed storage) and revokes the family. Without the lock both pass
        DOT's unlocked read and the second is answered from DOT's grace-period branch.
        """
        list(_lock(RefreshToken.objects.filter(token_checksum=token_checksum(refresh_token))).values("pk"))
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            audit.refresh_token_reused(token_checksum(refresh_token), client, request)
            return False
        lifetime = client.refresh_token_lifetime or settings.REFRESH_TOKEN_LIFETIME
        rt = request.refresh_token_instance
        request.oauth_server_refreshed = rt  # DOT clears refresh_token_instance; the audit trail reads it
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
        """Revoke the caller's own token, and with it every token of the same grant.

        RFC 7009 2.1: revoking a refresh token SHOULD invalidate the access tokens of the same
        grant; revoking an access token MAY revoke its refresh token. A rotated refresh-token
        family is one grant, so any of its tokens (even an already rotated refresh token) ends
        it: otherwise a refresh token would mint a replacement for a revoked access token. A
        token of another client is left alone and the answer is the same 200 (no oracle).
        """
        client_pk = getattr(request.client, "pk", None)
        if client_pk is None or not token:
            return
        lookup = {"token_checksum": token_checksum(token), "application_id": client_pk}
        models = (
            (RefreshToken, AccessToken) if token_type_hint == "refresh_token" else (AccessToken, RefreshToken)
        )
        with transaction.atomic(using=router.db_for_write(AccessToken)):
            for model in models:
                found = list(model.objects.filter(**lookup).select_related("user"))
                if found:
                    break
            for item in found:
                kind = "access_token" if isinstance(item, AccessToken) else "refresh_token"
                holder = item.user
                if isinstance(item, AccessToken):
                    refresh = RefreshToken.objects.filter(access_token=item).first()
                    if refresh is None:
                        item.revoke()
                        audit.record(
                            audit.Event.TOKEN_REVOKED,
                            request=request,
                            user=holder,
                            client=request.client,
                            via="revocation_endpoint",
                            token_type=kind,
                        )
                        continue
                    item = refresh
                revoke_grant(item)
                audit.record(
                    audit.Event.TOKEN_REVOKED,
                    request=request,
                    user=holder,
                    client=request.client,
                    via="revocation_endpoint",
                    token_type=kind,
                    token_family=item.token_family,
                )

    def introspect_token(self, token, token_type_hint, request, *args, **kwargs) -> dict[str, Any] | None:
        """RFC 7662 claims of an active token the caller may see, or None (``{"active": false}``).

        The caller sees tokens issued to itself, and access tokens whose audience is one of its
        ``resource_identifiers`` (a resource server registered as a client). Refresh tokens are
        visible only to their own client. One query per token type tried (one with a right hint).
        """
        caller = request.client
        checksum = token_checksum(token)
        kinds = (
            ("refresh_token", "access_token")
            if token_type_hint == "refresh_token"
            else ("access_token", "refresh_token")
        )
        for kind in kinds:
            if kind == "access_token":
                found = (
                    AccessToken.objects.select_related("application", "user", "user__oauth_subject")
                    .filter(token_checksum=checksum)
                    .first()
                )
                if found is not None:
                    return _access_token_claims(found, caller, request)
            else:
                found = (
                    RefreshToken.objects.select_related(
                        "application", "user", "user__oauth_subject", "access_token"
                    )
                    .filter(token_checksum=checksum, revoked__isnull=True)
                    .first()
                )
                if found is not None:
                    return _refresh_token_claims(found, caller, request)
        return None

    # --- access tokens (tokens.py generates them; the row keeps jti and audience, never the value) ---
    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        meta = getattr(request, "oauth_server_token_meta", None) or {}
        if meta.get("exp"):
            # The JWT's own exp, so the row (introspection, admin) never differs from it by a second.
            expires = datetime.fromtimestamp(meta["exp"], tz=UTC)
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
            grant=_redeemed_grant(request) if source_refresh_token is None else None,
        )
        self._set_token_value(access_token, token["access_token"])
        access_token.save()
        state = _issuing.get()
        if state is not None:
            state["access_token"] = access_token  # for TokenView's app_authorized, without a re-read
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

    # --- authorization codes: stored as SHA-256, single use under concurrency, replay revokes ------
    # Every lookup hashes the presented code (token_checksum), as DOT does for tokens. The exchange
    # runs in TokenView's transaction: validate_code locks the Grant row, so a concurrent exchange
    # of the same code waits, then finds it redeemed.
    def _create_authorization_code(self, request, code, expires=None):
        """DOT's Grant with the code's checksum instead of the code, and the session's auth_time."""
        grant = super()._create_authorization_code(
            request, {**code, "code": token_checksum(code["code"])}, expires
        )
        auth_time = getattr(request, "auth_time", None)
        if auth_time is not None:
            Grant.objects.filter(pk=grant.pk).update(auth_time=auth_time)
            grant.auth_time = auth_time
        audit.record(
            audit.Event.AUTHORIZATION_CODE_ISSUED,
            request=request,
            user=request.user,
            client=request.client,
            scopes=list(request.scopes or []),
            redirect_uri=request.redirect_uri,
            grant_id=grant.pk,
            resource=list(grant.resource or []),
        )
        return grant

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
        """DOT's refresh token, carrying the authentication time on to the next refresh (OIDC Core 12.2)
        and, for the first of a family, the code it came from (replay revokes the family)."""
        refresh_token = super()._create_refresh_token(
            request, refresh_token_code, access_token, previous_refresh_token
        )
        extra: dict[str, Any] = {}
        auth_time = getattr(request, "auth_time", None)
        if auth_time is not None:
            extra["auth_time"] = auth_time
        grant = _redeemed_grant(request) if previous_refresh_token is None else None
        if grant is not None:
            extra["grant"] = grant
        if extra:
            RefreshToken.objects.filter(pk=refresh_token.pk).update(**extra)
            for name, value in extra.items():
                setattr(refresh_token, name, value)
        return refresh_token

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        """DOT's check on the locked Grant row; a redeemed code is a replay (RFC 6749 4.1.2).

        A replay is refused and revokes every token the code issued, including those refreshed
        from them since, whoever presents it: the server cannot tell the client's retry from an
        attacker's use of a leaked code. A code of another client is simply not found.
        """
        queryset = Grant.objects.filter(code=token_checksum(code or ""), application=client)
        grant = _lock(queryset.select_related("user"), of=("self",)).first()
        if grant is None:
            return False
        if grant.redeemed_at is not None:
            revoke_code_tokens(grant)
            logger.warning(
                "Authorization code %s of client %s presented again: tokens issued from it revoked.",
                grant.pk,
                client.client_id,
            )
            signals.authorization_code_replayed.send(
                sender=Grant, grant=grant, client=client, user=grant.user, request=request
            )
            return False
        if grant.is_expired():
            return False
        request.oauth_server_grant = grant
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
        request.oauth_server_grant_resource = list(grant.resource or [])
        return True

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs) -> None:
        """Mark the code redeemed (a tombstone, not a delete), only if nobody else did.

        The conditional update is the single-use guarantee even where rows cannot be locked: a
        request that loses it raises ``invalid_grant`` and TokenView rolls its tokens back.
        """
        redeemed = Grant.objects.filter(
            code=token_checksum(code or ""), application=request.client, redeemed_at__isnull=True
        ).update(redeemed_at=timezone.now())
        if not redeemed:
            raise oauth2_errors.InvalidGrantError(request=request)

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs) -> bool:
        """RFC 6749 5.2: a redirect_uri other than the authorization request's is ``invalid_grant``.

        oauthlib answers ``invalid_request`` (MismatchingRedirectURIError) when this returns False.
        """
        grant = _grant_for(code, request, client)
        if grant is None or not grant.redirect_uri_allowed(redirect_uri):
            raise oauth2_errors.InvalidGrantError(
                description="redirect_uri does not match the authorization request.", request=request
            )
        return True

    def get_code_challenge(self, code, request):
        grant = _grant_for(code, request, request.client)
        return (grant.code_challenge or None) if grant is not None else None

    def get_code_challenge_method(self, code, request):
        grant = _grant_for(code, request, request.client)
        return (grant.code_challenge_method or None) if grant is not None else None

    def get_authorization_code_scopes(self, client_id, code, redirect_uri, request):
        # Called by oauthlib's OIDC dispatcher before the client is authenticated; scopes only.
        return super().get_authorization_code_scopes(client_id, token_checksum(code), redirect_uri, request)

    def get_authorization_code_nonce(self, client_id, code, redirect_uri, request):
        grant = _grant_for(code, request, request.client)
        return (grant.nonce or None) if grant is not None else None

    def _check_and_set_request_resource(self, request):
        """DOT's RFC 8707 handling, which reads the Grant by ``request.code``: give it the checksum."""
        if request.grant_type != "authorization_code" or not request.code:
            return super()._check_and_set_request_resource(request)
        presented = request.code
        request.code = token_checksum(presented)
        try:
            return super()._check_and_set_request_resource(request)
        finally:
            request.code = presented

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
        _note_issuing()
        key = tokens.signing_key(request)
        id_claims, expiration = self.get_id_token_dictionary(token, token_handler, request)
        id_token.update(**id_claims)
        if "nonce" not in id_token and request.nonce:
            id_token["nonce"] = request.nonce
        if "access_token" in token:
            id_token["at_hash"] = at_hash(token["access_token"], key.algorithm)
        id_token = claims.apply_hook("ID_TOKEN_CLAIMS", request, id_token, claims.PROTECTED_ID_TOKEN_CLAIMS)
        signed = keys.sign(id_token, typ="JWT", key=key)
        with transaction.atomic(using=router.db_for_write(IDToken)):
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


def _bind_client_id(request, basic: str | None) -> None:
    """After authentication, ``request.client_id`` is the authenticated client's (RFC 6749 3.2.1).

    A ``client_id`` parameter naming another client than the one that authenticated is refused:
    oauthlib reads ``request.client_id`` from the body, and would put that other client in the ID
    token's ``aud`` while the access token names the authenticated one.
    """
    presented = request.client_id
    if presented is not None and presented != request.client.client_id:
        audit.client_auth_failed(request, basic, "client_id_mismatch")
        raise oauth2_errors.InvalidRequestError(
            description="client_id does not match the authenticated client.", request=request
        )
    request.client_id = request.client.client_id


# --- helpers of revocation and introspection ---------------------------------------------------------
def token_checksum(value: str) -> str:
    """The stored form of a token (DOT's COMPLIANT_BCP_RFC9700_TOKEN_STORAGE): its SHA-256."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


# --- one token request, one transaction (TokenView) ----------------------------------------------------
# Set while TokenView handles a request: whether anything was issued (an ID token or tokens saved).
# An error answered after that point (e.g. the code redeemed by a concurrent request) must leave
# nothing behind, so TokenView rolls back; errors before it (replay and reuse revocations, audit
# records of failures) are committed.
_issuing: ContextVar[dict[str, Any] | None] = ContextVar("oauth_server_issuing", default=None)


@contextmanager
def token_request() -> Iterator[dict[str, Any]]:
    """Track issuance during one token request; yields ``{"issued": bool}``, plus
    ``"access_token"``: the AccessToken row saved, once there is one."""
    state: dict[str, Any] = {"issued": False}
    reset = _issuing.set(state)
    try:
        yield state
    finally:
        _issuing.reset(reset)


def _note_issuing() -> None:
    state = _issuing.get()
    if state is not None:
        state["issued"] = True


def _lock(queryset, of=()):
    """``select_for_update`` inside a transaction (TokenView's), a plain read outside one.

    Outside a transaction Django refuses a locking read; SQLite ignores it (its writes are
    serialized, see docs/hardening.md).
    """
    if transaction.get_autocommit(using=router.db_for_write(queryset.model)):
        return queryset
    return queryset.select_for_update(of=of) if of else queryset.order_by("pk").select_for_update()


def _grant_for(code: str, request, client) -> Grant | None:
    """The Grant validate_code loaded (and locked) for this code, else looked up by the code's hash."""
    checksum = token_checksum(code or "")
    grant = getattr(request, "oauth_server_grant", None)
    if grant is not None and grant.code == checksum:
        return grant
    return Grant.objects.filter(code=checksum, application=client).first()


def _redeemed_grant(request) -> Grant | None:
    """The code being exchanged by this request, to link the tokens it issues."""
    if getattr(request, "grant_type", None) != "authorization_code":
        return None
    return getattr(request, "oauth_server_grant", None)


def revoke_code_tokens(grant: Grant) -> None:
    """Revoke what a code issued: its refresh-token families (every token refreshed from them
    included) and its access tokens."""
    families = set(
        RefreshToken.objects.filter(grant=grant)
        .exclude(token_family=None)
        .values_list("token_family", flat=True)
    )
    with transaction.atomic(using=router.db_for_write(AccessToken)):
        for family in families:
            RefreshToken.revoke_family(family)
        now = timezone.now()
        RefreshToken.objects.filter(grant=grant, revoked__isnull=True).update(revoked=now, updated=now)
        AccessToken.objects.filter(grant=grant).delete()
        if families:
            AccessToken.objects.filter(source_refresh_token__token_family__in=families).delete()


def revoke_grant(refresh_token: RefreshToken) -> None:
    """Revoke a refresh token's whole family and every access token minted from it."""
    if refresh_token.token_family:
        RefreshToken.revoke_family(refresh_token.token_family)
        AccessToken.objects.filter(source_refresh_token__token_family=refresh_token.token_family).delete()
    else:
        refresh_token.revoke()
        AccessToken.objects.filter(source_refresh_token=refresh_token).delete()


def loaded_subject(user) -> str:
    """The user's opaque sub, from the row a ``select_related("user__oauth_subject")`` loaded."""
    loaded = getattr(user, "oauth_subject", None)  # RelatedObjectDoesNotExist is an AttributeError
    if loaded is not None:
        user._oauth_server_sub = loaded.sub
    return claims.subject_for(user)


def _timestamp(value) -> int:
    return int(value.timestamp())


def _access_token_claims(token: AccessToken, caller, request) -> dict[str, Any] | None:
    audience = token.audience.split()
    own = token.application_id == caller.pk
    if not own and not set(audience) & set(caller.resource_identifiers or []):
        return None
    if token.application is None or not token.is_valid():
        return None
    data: dict[str, Any] = {
        "scope": token.scope,
        "client_id": token.application.client_id,
        "token_type": "Bearer",
        "exp": _timestamp(token.expires),
        "iat": _timestamp(token.created),
        # RFC 9068: the user's opaque sub, or the client itself for client_credentials tokens.
        "sub": loaded_subject(token.user) if token.user_id else token.application.client_id,
        "iss": tokens.issuer(request),
    }
    if audience:
        data["aud"] = audience[0] if len(audience) == 1 else audience
    if token.jti:
        data["jti"] = token.jti
    return data


def _refresh_token_claims(token: RefreshToken, caller, request) -> dict[str, Any] | None:
    client = token.application
    if client is None or token.application_id != caller.pk or not client.is_enabled:
        return None
    if token.access_token is None or (token.user_id and not token.user.is_active):
        return None  # an orphan (its access token was revoked) can no longer refresh
    lifetime = client.refresh_token_lifetime or settings.REFRESH_TOKEN_LIFETIME
    expires = token.created + timedelta(seconds=lifetime) if lifetime else None
    if expires is not None and expires <= timezone.now():
        return None
    data: dict[str, Any] = {
        "scope": token.access_token.scope,
        "client_id": client.client_id,
        "token_type": "refresh_token",
        "iat": _timestamp(token.created),
        "sub": loaded_subject(token.user) if token.user_id else client.client_id,
        "iss": tokens.issuer(request),
    }
    if expires is not None:
        data["exp"] = _timestamp(expires)
    return data


# --- helpers of ID tokens ------------------------------------------------------------------------------
# OIDC Core 3.1.3.6: the hash of the ID token's alg; Ed25519 (EdDSA) signs with SHA-512.
_AT_HASH_FUNCTIONS = {"RS256": hashlib.sha256, "ES256": hashlib.sha256, "EdDSA": hashlib.sha512}


def at_hash(access_token: str, algorithm: str) -> str:
    """The base64url left-most half of the hash of the access token, for an ID token signed with
    ``algorithm``."""
    digest = _AT_HASH_FUNCTIONS[algorithm](access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
