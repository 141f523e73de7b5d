"""Settings for oauth_server, read from ``settings.OAUTH_SERVER`` (the DRF/DOT settings-object pattern).

Every key has a documented default (see ``docs/settings.md``); a site overrides only what it needs::

    OAUTH_SERVER = {
        "REQUIRE_PKCE": True,
        "ACCESS_TOKEN_LIFETIME": 3600,
    }

``oauth_server.conf.settings`` is the only way the app reads its settings, so tests can use
``override_settings(OAUTH_SERVER=...)`` and the object reloads itself.

This module also holds the DOT configuration the app installs (``dot_defaults``): the swapped models,
validator, scopes backend, server class and RFC 9700 gates. They are applied as *defaults* of DOT's
own settings object, so a site's ``OAUTH2_PROVIDER`` dict still wins where it sets a key.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from . import grants

SETTINGS_NAME = "OAUTH_SERVER"

DEFAULTS: dict[str, Any] = {
    # --- protocol ---------------------------------------------------------------------------
    # PKCE (RFC 7636) with S256 for every client. Public clients always need PKCE, whatever
    # this says; turning it off only relaxes confidential clients.
    "REQUIRE_PKCE": True,
    # Lifetime of authorization codes in seconds (RFC 6749 4.1.2 recommends at most 10 minutes).
    "AUTHORIZATION_CODE_LIFETIME": 60,
    # Site-wide token lifetimes in seconds; a Client may override each.
    "ACCESS_TOKEN_LIFETIME": 3600,
    # None: refresh tokens do not age out (they still rotate on every use).
    "REFRESH_TOKEN_LIFETIME": 30 * 24 * 3600,
    # Seconds during which the *immediately previous* refresh token may be retried after a
    # rotation (a client that lost the response). 0 = strict.
    "REFRESH_TOKEN_GRACE_PERIOD": 0,
    # --- device authorization grant (RFC 8628, docs/device.md) ---------------------------------
    # Seconds a device code and its user code stay valid; a Client may override it.
    "DEVICE_CODE_LIFETIME": 600,
    # Minimum seconds between two polls of the token endpoint (RFC 8628 3.2 "interval"); a Client
    # may override it. Every slow_down adds 5 seconds for that device code (RFC 8628 3.5).
    "DEVICE_POLL_INTERVAL": 5,
    # Characters of a user code (from BCDFGHJKLMNPQRSTVWXZ, shown as XXXX-XXXX); 8 gives ~34 bits.
    "DEVICE_USER_CODE_LENGTH": 8,
    # The verification_uri devices show; None: this server's /oauth/device/ page.
    "DEVICE_VERIFICATION_URI": None,
    # --- client secrets -----------------------------------------------------------------------
    # Length in bytes of generated client secrets (before base64url encoding).
    "CLIENT_SECRET_BYTES": 48,
    # Secrets supplied by an operator (create_oauth_client --client-secret) must be at least
    # this long: the fast hasher is only safe for high-entropy secrets.
    "CLIENT_SECRET_MIN_LENGTH": 32,
    # Fernet keys (url-safe base64 of 32 bytes; `manage.py rotate_secret_encryption_key --generate`)
    # that encrypt the secrets of client_secret_jwt clients, which the server must read to check an
    # HMAC. The first encrypts, all decrypt (rotation). Empty: a key derived from SECRET_KEY (and its
    # fallbacks) with HKDF, which `check --deploy` reports.
    "CLIENT_SECRET_ENCRYPTION_KEYS": [],
    # --- consent ------------------------------------------------------------------------------
    # Template for the consent page (override per site, or override the template itself).
    "CONSENT_TEMPLATE": "oauth_server/consent.html",
    "ERROR_TEMPLATE": "oauth_server/error.html",
    # --- OpenID Connect and JWTs ----------------------------------------------------------------
    # "jwt" (RFC 9068) or "opaque": the site default; a Client may override it.
    "ACCESS_TOKEN_FORMAT": "jwt",
    # aud of access tokens when neither the request (RFC 8707 resource) nor the client names one.
    # None: the issuer URL.
    "DEFAULT_AUDIENCE": None,
    "ID_TOKEN_LIFETIME": 3600,
    # Dotted paths of callables, each returning a dict merged into the payload (docs/settings.md):
    # ACCESS_TOKEN_CLAIMS(request, claims) -> dict, ID_TOKEN_CLAIMS(request, claims) -> dict,
    # USERINFO(request, claims) -> dict (request.user, request.client, request.scopes are set).
    "ACCESS_TOKEN_CLAIMS": None,
    "ID_TOKEN_CLAIMS": None,
    "USERINFO": None,
    # --- signing keys ---------------------------------------------------------------------------
    "SIGNING_KEY_ALGORITHM": "RS256",
    "RSA_KEY_SIZE": 2048,
    # Secret the private keys are encrypted under (HKDF-derived); None falls back to SECRET_KEY,
    # which `check --deploy` reports. Old values go in the fallbacks list when changing it.
    "SIGNING_KEY_ENCRYPTION_SECRET": None,
    "SIGNING_KEY_ENCRYPTION_SECRET_FALLBACKS": [],
    # How long a process reuses the active key before looking again (rotation pick-up delay).
    "SIGNING_KEY_CACHE_SECONDS": 30,
    # Extra seconds a retired key stays published after the longest token lifetime.
    "SIGNING_KEY_RETIRE_LEEWAY": 300,
    # Cache-Control max-age of the JWKS document. Keep it well below the time between two
    # rotations: a next key must reach every resource server's cache before it signs.
    "JWKS_MAX_AGE": 300,
    # --- hot-path lookups (compiled.py, docs/performance.md) -------------------------------------
    # On PostgreSQL, let psycopg prepare the compiled lookups (client, token by checksum) on each
    # connection. Off behind PgBouncer older than 1.21 in transaction mode (no prepared statements).
    "PREPARED_LOOKUPS": True,
    # --- discovery and JWKS caching (docs/performance.md) ---------------------------------------
    # Cache-Control max-age of the discovery documents (OIDC Discovery, RFC 8414).
    "DISCOVERY_MAX_AGE": 3600,
    # The cache alias the discovery documents and the JWKS are kept in (no SQL per request once
    # warm); shared by every process (Redis) in production, so an invalidation reaches every node.
    "DISCOVERY_CACHE": "default",
    # The longest time a cached document is served (a per-process cache's pick-up delay of a key
    # rotated elsewhere; with a shared cache, changes are seen at once). 0: no caching.
    "DISCOVERY_CACHE_SECONDS": 60,
    # --- management API (oauth_server.api) ------------------------------------------------------
    # Scope a client_credentials access token must carry to use the management API
    # (docs/management-api.md). Allow it only to the operator's own machine client.
    "ADMIN_API_SCOPE": "oauth:admin",
    # --- clients nobody vetted: dynamic registration (docs/client-registration.md) ---------------
    # Who may register a client at the RFC 7591 endpoint: "closed" (nobody: the endpoint answers
    # 404 and is not advertised), "initial_access_token" (a bearer token from
    # `manage.py create_registration_token`), or "open" (anyone; rate-limited by RATE_LIMITS["register"]).
    "REGISTRATION_POLICY": "initial_access_token",
    # Scope names a self-registered client (DCR or client ID metadata document) may be allowed.
    # None: every scope in the database except ADMIN_API_SCOPE (never grantable to such a client).
    "SELF_REGISTERED_SCOPES": None,
    # Grant types a client may register for itself (a subset of the grant registry's). Adding
    # "client_credentials" lets confidential self-registered clients get tokens with no user.
    "SELF_REGISTERED_GRANT_TYPES": ["authorization_code", "refresh_token"],
    # RFC 8707 resource URIs every self-registered client (DCR or metadata document) gets as its
    # audiences (the APIs, an MCP server, it may request tokens for with `resource`). Empty: the
    # site default only.
    "SELF_REGISTERED_AUDIENCES": [],
    # --- abuse protection (docs/abuse.md) --------------------------------------------------------
    # Requests per window, per endpoint: "<count>/<period>" with period s, m, h or d (optionally
    # with a multiplier: "100/5m"). A string limits each client IP and each client that
    # authenticated with a secret; {"ip": ..., "client": ...} sets them apart (None: no limit).
    # Keys left out keep these defaults; None for a key disables that limit, None for the whole
    # setting disables rate limiting. client_auth_failures counts only failed client
    # authentications (401 invalid_client) at the token, introspection and revocation endpoints;
    # login_failures only refused passwords at views/login.py's LoginView; user_code_failures only
    # wrong user codes at the device verification page. Both count per address
    # ("ip") and per client/account *and* address ("client_ip", "account_ip"), so the guesser is
    # throttled and not the victim; "client"/"account" is a ceiling over all addresses that, once
    # reached, refuses only addresses that already failed for that client or account (no lockout).
    "RATE_LIMITS": {
        # 20/s per address and per client: a service asking for tokens at 10/s is never throttled.
        "token": "1200/m",
        "authorize": "60/m",
        # Resource servers introspect on every API call they do not cache.
        "introspect": "6000/m",
        "revoke": "600/m",
        "par": "60/m",
        # The RFC 7591/7592 endpoints, per client IP (every policy; open registration relies on it).
        "register": "20/h",
        "device_authorization": "30/m",
        "client_auth_failures": {"ip": "10/m", "client_ip": "5/m", "client": "30/m"},
        "login_failures": {"ip": "30/m", "account_ip": "5/m", "account": "30/m"},
        # Wrong user codes at the device verification page (RFC 8628 5.1), per address, per
        # signed-in user and address, and a per-user ceiling (counted per user: a new session of
        # the same user does not reset it).
        "user_code_failures": {"ip": "20/m", "user_ip": "5/m", "user": "20/m"},
    },
    # Per-client overrides of the endpoint limits, for a client that authenticated:
    # {client_id: {"token": "6000/m", "introspect": {"ip": None, "client": "30000/m"}}}. Same forms as
    # RATE_LIMITS; endpoints left out keep the site's limits. Read from settings, not the database,
    # so the limiter adds no query to the hot path.
    "CLIENT_RATE_LIMITS": {},
    # The cache alias holding the counters; shared by every process (Redis) in production.
    "RATE_LIMIT_CACHE": "default",
    # --- security profiles (docs/fapi.md) ---------------------------------------------------------
    # None, or a profile name ("fapi2": the FAPI 2.0 Security Profile) every client is held to: PAR,
    # S256 PKCE, private_key_jwt, DPoP, 60-second codes, https redirect URIs, confidential clients.
    # A client's own security_profile applies the same rules to that client alone.
    "SECURITY_PROFILE": None,
    # --- pushed authorization requests (RFC 9126, docs/par.md) ---------------------------------
    # Seconds a pushed request's request_uri stays valid.
    "PAR_LIFETIME": 60,
    # True: every client must push its authorization requests (a client's own flag also requires it).
    "REQUIRE_PUSHED_AUTHORIZATION_REQUESTS": False,
    # --- signed request objects (RFC 9101, JAR, docs/jar.md) ------------------------------------
    # True: every client must send its authorization requests as a signed request object (the
    # request parameter, directly or pushed); advertised as require_signed_request_object. A
    # client's own require_signed_request_object flag requires it for that client.
    "REQUIRE_SIGNED_REQUEST_OBJECT": False,
    # Algorithms a request object may be signed with (asymmetric only; never none or HS*, whatever
    # this says). None: CLIENT_ASSERTION_ALGORITHMS. Advertised as
    # request_object_signing_alg_values_supported.
    "REQUEST_OBJECT_ALGORITHMS": None,
    # The longest a request object may live: exp at most this many seconds ahead (and after nbf).
    # FAPI 2.0 Message Signing: 60 minutes.
    "REQUEST_OBJECT_MAX_LIFETIME": 3600,
    # --- DPoP sender-constrained tokens (RFC 9449, docs/dpop.md) ---------------------------------
    # True: every client must send a DPoP proof to the token endpoint (a client's own flag too).
    "REQUIRE_DPOP": False,
    # Algorithms a DPoP proof may use (asymmetric only); advertised as dpop_signing_alg_values_supported.
    "DPOP_SIGNING_ALGORITHMS": ["ES256", "RS256", "PS256", "EdDSA"],
    # Seconds a proof's iat may lie in the past (plus CLOCK_SKEW_SECONDS either way).
    "DPOP_PROOF_MAX_AGE": 60,
    # True: proofs must carry a server nonce (use_dpop_nonce, DPoP-Nonce header); stateless nonces.
    "DPOP_NONCES": False,
    # Seconds per nonce window; the current and previous windows' nonces are accepted.
    "DPOP_NONCE_LIFETIME": 300,
    # --- private_key_jwt client authentication (RFC 7523, docs/client-authentication.md) -------
    # Signature algorithms a client assertion may use: asymmetric only (never none or HS*).
    "CLIENT_ASSERTION_ALGORITHMS": ["RS256", "PS256", "ES256", "EdDSA"],
    # HMAC algorithms a client_secret_jwt assertion may use (any of HS256, HS384, HS512).
    "CLIENT_SECRET_ASSERTION_ALGORITHMS": ["HS256", "HS384", "HS512"],
    # The longest exp - now (or exp - iat) accepted for a client assertion, in seconds.
    "CLIENT_ASSERTION_MAX_LIFETIME": 300,
    # Allowed clock difference with clients, in seconds (exp, nbf, iat of client assertions).
    "CLOCK_SKEW_SECONDS": 30,
    # The cache alias remembering used assertion jti values until they expire (replay.py); it must
    # be shared by every process (Redis) in production.
    "REPLAY_CACHE": "default",
    # How long a client's jwks_uri document is cached (seconds); an unknown kid refetches it, at
    # most once per JWKS_URI_MIN_REFRESH seconds.
    "JWKS_URI_CACHE_SECONDS": 3600,
    "JWKS_URI_MIN_REFRESH": 60,
    # Addresses or networks (CIDR) of the site's reverse proxies, whose X-Forwarded-For is believed
    # by the rate limiter and the audit trail (network.py). Empty: the client IP is REMOTE_ADDR and
    # X-Forwarded-For is ignored.
    "TRUSTED_PROXIES": [],
    # Access-Control-Max-Age of CORS preflight answers, in seconds.
    "CORS_MAX_AGE": 3600,
    # --- audit trail (docs/audit.md) -------------------------------------------------------------
    # True: every audit event is saved (AuditEvent), sent as the audit_event signal and logged on
    # the "oauth_server.audit" logger. "log-only": signal and log record, no row. False: nothing.
    "AUDIT_LOG": True,
    # Days purge_audit_events keeps by default (its --older-than overrides); None: keep forever.
    "AUDIT_RETENTION_DAYS": 90,
    # --- OAuth Client ID Metadata Documents (docs/client-registration.md) ------------------------
    # A client_id that is an https URL names the client's metadata document, fetched on first use.
    "CIMD_ENABLED": True,
    # Development only (check --deploy refuses it): documents on loopback hosts (127.0.0.1, ::1,
    # localhost) may be fetched, over https or plain http.
    "CIMD_ALLOW_HTTP_LOOPBACK": False,
    # Development and tests only (check --deploy refuses it): a PEM file of extra certificates
    # trusted for document fetches (a self-signed test server), on top of the system's CAs.
    "CIMD_CA_FILE": None,
    # None: any host; a list (ALLOWED_HOSTS syntax: "mcp.example.com", ".example.com"): only these.
    "CIMD_ALLOWED_HOSTS": None,
    # Hosts whose documents are refused (ALLOWED_HOSTS syntax), besides the admin's blocked hosts.
    "CIMD_BLOCKED_HOSTS": [],
    # Fetch bounds: total seconds per fetch, bytes per document, in-flight fetches per process.
    "CIMD_FETCH_TIMEOUT": 5,
    "CIMD_MAX_DOCUMENT_SIZE": 16 * 1024,
    "CIMD_MAX_CONCURRENT_FETCHES": 10,
    # The document's Cache-Control max-age is honoured within these bounds (seconds).
    "CIMD_MIN_CACHE_SECONDS": 300,
    "CIMD_MAX_CACHE_SECONDS": 24 * 3600,
    # Seconds a URL whose fetch failed is not fetched again.
    "CIMD_FAILURE_BACKOFF": 60,
}

IMPORT_STRINGS: set[str] = {"ACCESS_TOKEN_CLAIMS", "ID_TOKEN_CLAIMS", "USERINFO"}


class OAuthServerSettings:
    """Attribute access to ``OAUTH_SERVER`` with defaults; unknown keys are an error, not a typo."""

    def __init__(self, defaults: dict[str, Any] | None = None):
        self.defaults = defaults or DEFAULTS
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        return getattr(django_settings, SETTINGS_NAME, None) or {}

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_") or attr not in self.defaults:
            raise AttributeError(f"Invalid {SETTINGS_NAME} setting: {attr!r}")
        value = self.user_settings.get(attr, self.defaults[attr])
        if attr in IMPORT_STRINGS and isinstance(value, str):
            value = import_string(value)
        self._cached.add(attr)
        setattr(self, attr, value)
        return value

    def reload(self) -> None:
        for attr in self._cached:
            self.__dict__.pop(attr, None)
        self._cached.clear()


settings = OAuthServerSettings()


# The models the app swaps into DOT. Django needs these as real settings (Meta.swappable reads
# them) before any models module is imported, so apps.py sets them while the app registry is
# still importing app modules.
SWAPPED_MODELS = {
    "OAUTH2_PROVIDER_APPLICATION_MODEL": "oauth_server.Client",
    "OAUTH2_PROVIDER_GRANT_MODEL": "oauth_server.Grant",
    "OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL": "oauth_server.AccessToken",
    "OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL": "oauth_server.RefreshToken",
    "OAUTH2_PROVIDER_ID_TOKEN_MODEL": "oauth_server.IDToken",
}


def dot_defaults() -> dict[str, Any]:
    """DOT settings this app installs as defaults: secure gates on, our classes plugged in."""
    return {
        "OAUTH2_VALIDATOR_CLASS": "oauth_server.validator.OAuthServerValidator",
        "OAUTH2_SERVER_CLASS": "oauth_server.server.OAuth2Server",
        # DOT switches to OIDC_SERVER_CLASS when OIDC is on: the same server, which handles both.
        "OIDC_SERVER_CLASS": "oauth_server.server.OAuth2Server",
        "SCOPES_BACKEND_CLASS": "oauth_server.scopes.DatabaseScopes",
        "APPLICATION_ADMIN_CLASS": "oauth_server.admin.ClientAdmin",
        "ACCESS_TOKEN_ADMIN_CLASS": "oauth_server.admin.AccessTokenAdmin",
        "REFRESH_TOKEN_ADMIN_CLASS": "oauth_server.admin.RefreshTokenAdmin",
        "GRANT_ADMIN_CLASS": "oauth_server.admin.GrantAdmin",
        "ID_TOKEN_ADMIN_CLASS": "oauth_server.admin.IDTokenAdmin",
        # Our validator decides per client (public clients always); see validator.is_pkce_required.
        "PKCE_REQUIRED": True,
        "AUTHORIZATION_CODE_EXPIRE_SECONDS": settings.AUTHORIZATION_CODE_LIFETIME,
        "ACCESS_TOKEN_EXPIRE_SECONDS": settings.ACCESS_TOKEN_LIFETIME,
        # Refresh lifetimes (site and per client) are enforced by our validator.
        "REFRESH_TOKEN_EXPIRE_SECONDS": None,
        "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": settings.REFRESH_TOKEN_GRACE_PERIOD,
        "ROTATE_REFRESH_TOKEN": True,
        "REFRESH_TOKEN_REUSE_PROTECTION": True,
        "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"],
        "ALLOW_URI_WILDCARDS": False,
        "REQUEST_APPROVAL_PROMPT": "force",
        # Advertised by DOT's own views (ours read the grant registry too).
        "OAUTH2_RESPONSE_TYPES_SUPPORTED": grants.registry.response_types(),
        "OAUTH2_GRANT_TYPES_SUPPORTED": grants.registry.token_grant_types(),
        "OIDC_RESPONSE_TYPES_SUPPORTED": grants.registry.response_types(),
        "OIDC_ENABLED": True,
        "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
        # Only registered post-logout redirect URIs, and only with a valid id_token_hint.
        "OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS": True,
        "ID_TOKEN_EXPIRE_SECONDS": settings.ID_TOKEN_LIFETIME,
        "ACCESS_TOKEN_GENERATOR": "oauth_server.tokens.access_token_generator",
        "REFRESH_TOKEN_GENERATOR": "oauth_server.tokens.refresh_token_generator",
        "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
        "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
        "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
        "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
        "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
        "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
        "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
        "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
        "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
        # Client ID metadata documents are resolved by oauth_server.cimd (our Client model, policy,
        # audit), called from our validator: DOT's own hook stays off. Its helpers we reuse read
        # these bounds, so they follow our settings.
        "CIMD_ENABLED": False,
        "CIMD_FETCH_TIMEOUT_SECONDS": settings.CIMD_FETCH_TIMEOUT,
        "CIMD_MAX_DOCUMENT_SIZE": settings.CIMD_MAX_DOCUMENT_SIZE,
        "CIMD_METADATA_MIN_AGE_SECONDS": settings.CIMD_MIN_CACHE_SECONDS,
        "CIMD_METADATA_MAX_AGE_SECONDS": settings.CIMD_MAX_CACHE_SECONDS,
        "CIMD_FAILURE_BACKOFF_SECONDS": settings.CIMD_FAILURE_BACKOFF,
        "CIMD_MAX_CONCURRENT_FETCHES": settings.CIMD_MAX_CONCURRENT_FETCHES,
    }


def install_dot_defaults() -> None:
    """Make our DOT configuration DOT's defaults; the site's OAUTH2_PROVIDER keys still win."""
    from oauth2_provider import settings as dot_settings

    dot_settings.DEFAULTS.update(dot_defaults())
    for name, model in SWAPPED_MODELS.items():
        key = name.removeprefix("OAUTH2_PROVIDER_")
        dot_settings.DEFAULTS[key] = getattr(django_settings, name, model)
    dot_settings.oauth2_settings.reload()


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTINGS_NAME, "SECRET_KEY"):
        settings.reload()
        install_dot_defaults()


setting_changed.connect(_reload)
