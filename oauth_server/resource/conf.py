"""Settings of the resource-server kit, read from ``settings.OAUTH_RESOURCE_SERVER``.

The same settings-object pattern as ``oauth_server.conf`` (attribute access, documented defaults,
reload on ``setting_changed``) but deliberately independent of it: an API project may install only
this kit, without the provider app, its models or its settings. Every key is described in
``docs/resource-server-kit.md``::

    OAUTH_RESOURCE_SERVER = {
        "ISSUER": "https://id.example.com/oauth",
        "AUDIENCE": "https://api.example.com/",
    }
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

SETTINGS_NAME = "OAUTH_RESOURCE_SERVER"

# Asymmetric JWS algorithms only: a resource server holds public keys, and an HMAC "verified" with a
# public key is the algorithm-confusion attack. "none" is never accepted.
SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

DEFAULTS: dict[str, Any] = {
    # The authorization server's issuer, compared to ``iss`` exactly (no trailing-slash games).
    "ISSUER": None,
    # This API's identifier (a string or a list of them): ``aud`` must contain one of them.
    "AUDIENCE": None,
    # Where the public keys are; None: ``{ISSUER}/.well-known/jwks.json``.
    "JWKS_URL": None,
    # "url": fetch JWKS_URL over HTTP. "local": read the provider's keys in-process
    # (``oauth_server.keys.published_keys()``), for an API served by the authorization server itself.
    "JWKS_SOURCE": "url",
    # The token's ``alg`` must be one of these (and equal to its key's ``alg``).
    "ALGORITHMS": ["RS256", "ES256", "EdDSA"],
    # Seconds of clock skew tolerated on exp, nbf and iat.
    "LEEWAY": 30,
    # How long a fetched key set is used before it is fetched again.
    "JWKS_CACHE_SECONDS": 300,
    # A token signed with an unknown kid triggers a refetch at most once per this many seconds.
    "JWKS_MIN_REFETCH_INTERVAL": 10,
    # Timeout in seconds of every HTTP call (JWKS and introspection).
    "HTTP_TIMEOUT": 5,
    # RFC 7662 introspection: for opaque tokens, and for REVOCATION_CHECK = "introspection".
    # None: ``{ISSUER}/introspect/`` when a client id is set, else introspection is off.
    "INTROSPECTION_URL": None,
    "INTROSPECTION_CLIENT_ID": None,
    "INTROSPECTION_CLIENT_SECRET": None,
    # How long an introspection answer is reused (never beyond the token's exp).
    "INTROSPECTION_CACHE_SECONDS": 60,
    # None: JWTs are trusted until exp. "database": look the jti up in the provider's tables (same
    # site only). "introspection": ask the introspection endpoint.
    "REVOCATION_CHECK": None,
    # How long a "not revoked" answer is reused: the longest a revoked JWT may still be accepted.
    "REVOCATION_CACHE_SECONDS": 30,
    # The Django cache (alias) for introspection and revocation answers.
    "CACHE": "default",
    # realm of the WWW-Authenticate challenge.
    "REALM": "api",
    # RFC 9728 protected-resource metadata, keyed by resource identifier (each also an audience of
    # the views that serve it): {"https://api.example.com/files/": {"scopes_supported": [...], ...}}.
    # Each configured resource gets /.well-known/oauth-protected-resource/<path> (resource/metadata.py)
    # and its refusals carry resource_metadata="<that URL>" (RFC 9728 5.1).
    "PROTECTED_RESOURCES": {},
    # The default ``authorization_servers`` of every resource; None: [ISSUER].
    "AUTHORIZATION_SERVERS": None,
    # max-age of the metadata documents (Cache-Control: public).
    "RESOURCE_METADATA_MAX_AGE": 3600,
    # --- DPoP (RFC 9449, docs/dpop.md) ---------------------------------------------------------
    # Accept "Authorization: DPoP <token>" with a DPoP proof (DPoP-bound tokens are refused as Bearer).
    "DPOP": True,
    # True: only DPoP is accepted; a bearer token (bound or not) is refused.
    "DPOP_REQUIRED": False,
    # Algorithms a proof may use (asymmetric only), advertised in the challenge's algs.
    "DPOP_ALGORITHMS": ["ES256", "RS256", "PS256", "EdDSA"],
    # Seconds a proof's iat may lie in the past (LEEWAY is added either way).
    "DPOP_PROOF_MAX_AGE": 60,
    # True: proofs must carry this API's nonce (use_dpop_nonce + DPoP-Nonce header).
    "DPOP_NONCES": False,
    "DPOP_NONCE_LIFETIME": 300,
    # The nonce HMAC key; None: derived from SECRET_KEY. Set the same value on every API process.
    "DPOP_NONCE_SECRET": None,
    # The public origin of this API ("https://api.example.com") that proofs' htu name; None: the
    # request's own (behind a proxy: USE_X_FORWARDED_HOST / SECURE_PROXY_SSL_HEADER must be right).
    "DPOP_ORIGIN": None,
    # The cache alias remembering proofs' jti (shared by every API process in production: Redis).
    "DPOP_REPLAY_CACHE": "default",
}

JWKS_SOURCES = ("url", "local")
REVOCATION_CHECKS = (None, "database", "introspection")


class ResourceServerSettings:
    """Attribute access to ``OAUTH_RESOURCE_SERVER`` with defaults; unknown keys are an error."""

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
        self._cached.add(attr)
        setattr(self, attr, value)
        return value

    def reload(self) -> None:
        for attr in self._cached:
            self.__dict__.pop(attr, None)
        self._cached.clear()

    # --- derived values, validated: a misconfigured API must fail loudly, not accept everything ----
    def _required(self, name: str) -> Any:
        value = getattr(self, name)
        if not value:
            raise ImproperlyConfigured(f"{SETTINGS_NAME}[{name!r}] is required.")
        return value

    @property
    def issuer(self) -> str:
        return str(self._required("ISSUER"))

    @property
    def audiences(self) -> frozenset[str]:
        return audience_set(self._required("AUDIENCE"), f"{SETTINGS_NAME}['AUDIENCE']")

    def audiences_for(self, override: Any = None) -> frozenset[str]:
        """A view's own audience when it sets one (docs: "One site, several APIs"), else ``AUDIENCE``."""
        if override is None:
            return self.audiences
        return audience_set(override, "The view's audience")

    @property
    def algorithms(self) -> frozenset[str]:
        values = self.ALGORITHMS
        if isinstance(values, str) or not values:
            raise ImproperlyConfigured(f"{SETTINGS_NAME}['ALGORITHMS'] must be a non-empty list.")
        refused = sorted(set(values) - SUPPORTED_ALGORITHMS)
        if refused:
            raise ImproperlyConfigured(
                f"{SETTINGS_NAME}['ALGORITHMS'] may only list asymmetric JWS algorithms "
                f"({', '.join(sorted(SUPPORTED_ALGORITHMS))}); refused: {', '.join(refused)}."
            )
        return frozenset(values)

    @property
    def jwks_source(self) -> str:
        if self.JWKS_SOURCE not in JWKS_SOURCES:
            raise ImproperlyConfigured(f"{SETTINGS_NAME}['JWKS_SOURCE'] must be one of {JWKS_SOURCES}.")
        return self.JWKS_SOURCE

    @property
    def jwks_url(self) -> str:
        return self.JWKS_URL or f"{self.issuer.rstrip('/')}/.well-known/jwks.json"

    @property
    def introspection_url(self) -> str | None:
        if self.INTROSPECTION_URL:
            return self.INTROSPECTION_URL
        if self.INTROSPECTION_CLIENT_ID:
            return f"{self.issuer.rstrip('/')}/introspect/"
        return None

    @property
    def revocation_check(self) -> str | None:
        if self.REVOCATION_CHECK not in REVOCATION_CHECKS:
            raise ImproperlyConfigured(
                f"{SETTINGS_NAME}['REVOCATION_CHECK'] must be one of {REVOCATION_CHECKS}."
            )
        return self.REVOCATION_CHECK


def audience_set(value: Any, what: str) -> frozenset[str]:
    """One identifier or a list of them, as a set; anything else (empty, not strings) is an error."""
    if isinstance(value, str):
        values = [value]
    elif isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        values = list(value)
    else:
        values = []
    if values and all(isinstance(v, str) and v for v in values):
        return frozenset(values)
    raise ImproperlyConfigured(f"{what} must be a string or a list of strings.")


settings = ResourceServerSettings()

_reload_hooks: list = []


def on_reload(hook) -> None:
    """Run ``hook()`` whenever the settings change (caches that depend on them register here)."""
    _reload_hooks.append(hook)


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME:
        settings.reload()
        for hook in _reload_hooks:
            hook()


setting_changed.connect(_reload)
