"""System checks: a misconfiguration is reported by ``manage.py check``, not found in production."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connections, router

from .conf import SWAPPED_MODELS, settings
from .validators import invalid_resource_uris


@register(Tags.compatibility)
def check_installation(app_configs=None, **kwargs):
    errors = []
    if "oauth2_provider" not in django_settings.INSTALLED_APPS:
        errors.append(
            Error(
                "oauth_server runs on django-oauth-toolkit, which is not installed.",
                hint='Add "oauth2_provider" to INSTALLED_APPS (next to "oauth_server").',
                id="oauth_server.E001",
            )
        )
    for name, expected in SWAPPED_MODELS.items():
        value = getattr(django_settings, name, expected)
        if value != expected:
            errors.append(
                Error(
                    f"{name} is {value!r}; oauth_server needs {expected!r}.",
                    hint=f"Remove {name} from your settings: oauth_server sets it.",
                    id="oauth_server.E002",
                )
            )
    return errors


@register(Tags.security, deploy=True)
def check_security(app_configs=None, **kwargs):
    warnings = []
    if not settings.REQUIRE_PKCE:
        warnings.append(
            Warning(
                "OAUTH_SERVER['REQUIRE_PKCE'] is off: confidential clients may skip PKCE.",
                hint="RFC 9700 2.1.1 recommends PKCE for every client.",
                id="oauth_server.W001",
            )
        )
    secret = settings.SIGNING_KEY_ENCRYPTION_SECRET
    if not secret or secret == django_settings.SECRET_KEY:
        # keys.py falls back to SECRET_KEY, and SECRET_KEY_FALLBACKS does not decrypt signing keys:
        # a routine SECRET_KEY rotation would leave every stored private key undecryptable.
        warnings.append(
            Warning(
                "OAUTH_SERVER['SIGNING_KEY_ENCRYPTION_SECRET'] is not set (or equals SECRET_KEY): "
                "the signing keys in the database are encrypted under SECRET_KEY.",
                hint=(
                    "Set a separate, long random SIGNING_KEY_ENCRYPTION_SECRET and put the current "
                    "SECRET_KEY in SIGNING_KEY_ENCRYPTION_SECRET_FALLBACKS until the keys have been "
                    "rotated (manage.py rotate_signing_keys). Otherwise changing SECRET_KEY makes the "
                    "stored keys undecryptable."
                ),
                id="oauth_server.W003",
            )
        )
    return warnings


@register(Tags.database)
def check_signing_key(app_configs=None, databases=None, **kwargs):
    """Warn when no key is active yet: the first token request would then pay for key generation
    (an RSA key takes a noticeable moment) and the JWKS changes under clients that already fetched it.

    Database-tagged, so Django runs it only for ``check --database`` and ``migrate``. A fresh database
    (table not created yet) or an unreachable one is not this check's business: it stays silent.
    """
    if not databases:
        return []
    if app_configs is not None and not any(config.label == "oauth_server" for config in app_configs):
        return []
    from .models import SigningKey

    warnings = []
    for alias in databases:
        if not router.allow_migrate_model(alias, SigningKey):
            continue
        try:
            connection = connections[alias]
            if SigningKey._meta.db_table not in connection.introspection.table_names():
                continue
            has_active = SigningKey.objects.using(alias).filter(state=SigningKey.State.ACTIVE).exists()
        except DatabaseError:
            continue
        if not has_active:
            warnings.append(
                Warning(
                    f"No active signing key in database {alias!r}: a key will be generated on first use.",
                    hint="Run `manage.py rotate_signing_keys` to create one now.",
                    obj=SigningKey,
                    id="oauth_server.W002",
                )
            )
    return warnings


# --- SQLite under concurrent requests (docs/hardening.md) ------------------------------------------
@register(Tags.database, Tags.compatibility)
def check_sqlite_options(app_configs=None, **kwargs):
    """A SQLite database without ``BEGIN IMMEDIATE``, a busy timeout and WAL answers concurrent token
    requests with 500 ``database is locked``, and a refresh-token race then never reaches reuse
    detection. Read from the settings alone (no query), so a plain ``check`` and runserver report it."""
    from .models import AccessToken
    from .sqlite import SQLITE_OPTIONS, is_sqlite, missing_options

    warnings = []
    for alias, database in django_settings.DATABASES.items():
        if not is_sqlite(database) or not router.allow_migrate_model(alias, AccessToken):
            continue
        missing = missing_options(database.get("OPTIONS") or {})
        if missing:
            warnings.append(
                Warning(
                    f"SQLite database {alias!r} is not set up for concurrent requests (missing: "
                    f"{', '.join(missing)}): concurrent token requests fail with 'database is locked'.",
                    hint=(
                        f"Set DATABASES[{alias!r}]['OPTIONS'] = {SQLITE_OPTIONS!r}, e.g. with "
                        "oauth_server.sqlite.configure_sqlite(DATABASES); or use PostgreSQL."
                    ),
                    id="oauth_server.W009",
                )
            )
    return warnings


# --- PostgreSQL connections per request (docs/deployment.md, docs/performance.md) ---------------
@register(Tags.security, deploy=True)
def check_persistent_connections(app_configs=None, database_settings=None, **kwargs):
    """With ``CONN_MAX_AGE = 0`` (Django's default) every request opens a PostgreSQL connection, and
    a new server process reads the catalog for each table it touches: the token endpoint measured
    about five times slower than with persistent connections (docs/performance.md). Settings only
    (``database_settings``: another DATABASES to judge, for tests)."""
    from .models import AccessToken

    warnings = []
    for alias, database in (database_settings or django_settings.DATABASES).items():
        engine = database.get("ENGINE", "")
        if "postgresql" not in engine and "postgis" not in engine:
            continue
        if not router.allow_migrate_model(alias, AccessToken):
            continue
        max_age = database.get("CONN_MAX_AGE", 0)
        if max_age is None or max_age > 0 or (database.get("OPTIONS") or {}).get("pool"):
            continue  # None: connections are kept for good
        warnings.append(
            Warning(
                f"PostgreSQL database {alias!r} opens a new connection for every request "
                "(CONN_MAX_AGE = 0): the token endpoint is several times slower.",
                hint=(
                    f"Set DATABASES[{alias!r}]['CONN_MAX_AGE'] = 60 with 'CONN_HEALTH_CHECKS': True, or "
                    "psycopg's pool (OPTIONS = {'pool': True}); see docs/deployment.md."
                ),
                id="oauth_server.W014",
            )
        )
    return warnings


# --- abuse protection and deployment (docs/abuse.md) ------------------------------------------------
LOCAL_CACHE_BACKENDS = {
    "django.core.cache.backends.locmem.LocMemCache": "local-memory",
    "django.core.cache.backends.dummy.DummyCache": "dummy",
}
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


@register(Tags.security)
def check_abuse_settings(app_configs=None, **kwargs):
    """Malformed rate-limit or CORS settings would otherwise surface as a limiter that silently
    fails open (it logs and serves) on the first request."""
    from . import network, ratelimit

    errors = []

    def error(message: str, hint: str) -> None:
        errors.append(Error(message, hint=hint, id="oauth_server.E003"))

    try:
        ratelimit.configured_limits()
    except ValueError as exc:
        error(f"OAUTH_SERVER['RATE_LIMITS'] is invalid: {exc}.", 'Use rates like "120/m", or None.')
    try:
        ratelimit.client_overrides()
    except ValueError as exc:
        error(
            f"OAUTH_SERVER['CLIENT_RATE_LIMITS'] is invalid: {exc}.",
            'Use {"<client_id>": {"token": "6000/m"}}.',
        )
    try:
        network.trusted_proxies()
    except (TypeError, ValueError) as exc:
        error(
            f"OAUTH_SERVER['TRUSTED_PROXIES'] is invalid: {exc}.",
            'List addresses or networks: ["10.0.0.0/8", "192.0.2.1"].',
        )
    alias = settings.RATE_LIMIT_CACHE
    if alias not in django_settings.CACHES:
        error(
            f"OAUTH_SERVER['RATE_LIMIT_CACHE'] is {alias!r}, which is not in CACHES.",
            "Name a cache alias from CACHES (a Redis cache in production).",
        )
    max_age = settings.CORS_MAX_AGE
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        error(f"OAUTH_SERVER['CORS_MAX_AGE'] is {max_age!r}.", "Use a number of seconds (0 or more).")
    return errors


@register(Tags.security)
def check_registration_settings(app_configs=None, **kwargs):
    """Dynamic client registration (docs/client-registration.md): a typo in the policy would
    silently close registration (``registration.policy()`` treats unknown values as closed), and a
    grant type outside the registry could never be registered."""
    from . import grants, registration

    errors = []

    def error(message: str, hint: str) -> None:
        errors.append(Error(message, hint=hint, id="oauth_server.E005"))

    if settings.REGISTRATION_POLICY not in registration.POLICIES:
        error(
            f"OAUTH_SERVER['REGISTRATION_POLICY'] is {settings.REGISTRATION_POLICY!r}.",
            "Use " + ", ".join(repr(p) for p in registration.POLICIES) + ".",
        )
    grant_types = settings.SELF_REGISTERED_GRANT_TYPES
    if not isinstance(grant_types, list | tuple) or any(g not in grants.registry for g in grant_types):
        error(
            f"OAUTH_SERVER['SELF_REGISTERED_GRANT_TYPES'] is {grant_types!r}.",
            "List grant types of the grant registry: " + ", ".join(grants.registry.names()) + ".",
        )
    scopes = settings.SELF_REGISTERED_SCOPES
    if scopes is not None and (
        not isinstance(scopes, list | tuple) or not all(isinstance(s, str) for s in scopes)
    ):
        error(f"OAUTH_SERVER['SELF_REGISTERED_SCOPES'] is {scopes!r}.", "List scope names, or None (all).")
    audiences = settings.SELF_REGISTERED_AUDIENCES
    if not isinstance(audiences, list | tuple) or invalid_resource_uris(audiences):
        error(
            f"OAUTH_SERVER['SELF_REGISTERED_AUDIENCES'] is {audiences!r}.",
            'List absolute resource URIs (RFC 8707), e.g. ["https://example.com/mcp"].',
        )
    return errors


@register(Tags.security)
def check_secret_encryption_settings(app_configs=None, **kwargs):
    """client_secret_jwt's settings (docs/client-authentication.md): a malformed encryption key would
    be skipped (secrets under it undecryptable, new ones under the next key), an algorithm list
    with no HMAC algorithm would refuse every assertion."""
    from .client_auth.private_key_jwt import HMAC_ALGORITHMS
    from .secret_encryption import key_problem

    errors = []
    keys = settings.CLIENT_SECRET_ENCRYPTION_KEYS
    hint = (
        "List Fernet keys (url-safe base64 of 32 random bytes, `manage.py rotate_secret_encryption_key "
        "--generate`), the encrypting key first; or [] to derive one from SECRET_KEY."
    )
    if not isinstance(keys, list | tuple):
        errors.append(
            Error(
                f"OAUTH_SERVER['CLIENT_SECRET_ENCRYPTION_KEYS'] is {type(keys).__name__}, not a list.",
                hint=hint,
                id="oauth_server.E007",
            )
        )
    else:
        for index, key in enumerate(keys):
            problem = key_problem(key)
            if problem:  # the key itself is never printed
                errors.append(
                    Error(
                        f"OAUTH_SERVER['CLIENT_SECRET_ENCRYPTION_KEYS'][{index}] {problem}.",
                        hint=hint,
                        id="oauth_server.E007",
                    )
                )
    algorithms = settings.CLIENT_SECRET_ASSERTION_ALGORITHMS
    if (
        not isinstance(algorithms, list | tuple)
        or not algorithms
        or any(alg not in HMAC_ALGORITHMS for alg in algorithms)
    ):
        errors.append(
            Error(
                f"OAUTH_SERVER['CLIENT_SECRET_ASSERTION_ALGORITHMS'] is {algorithms!r}.",
                hint="List some of HS256, HS384, HS512 (client_secret_jwt uses HMAC only).",
                id="oauth_server.E007",
            )
        )
    return errors


@register(Tags.security, deploy=True)
def check_secret_encryption_key(app_configs=None, **kwargs):
    """The client_secret_jwt secrets are encrypted under a key derived from SECRET_KEY by default."""
    from .secret_encryption import uses_derived_key

    if not uses_derived_key():
        return []
    return [
        Warning(
            "OAUTH_SERVER['CLIENT_SECRET_ENCRYPTION_KEYS'] is not set: the secrets of client_secret_jwt "
            "clients are encrypted under a key derived from SECRET_KEY.",
            hint=(
                "Set a dedicated key (`manage.py rotate_secret_encryption_key --generate` prints one), "
                "then run `manage.py rotate_secret_encryption_key` to re-encrypt the stored secrets. "
                "Otherwise whoever reads SECRET_KEY can decrypt them, and removing the old SECRET_KEY "
                "from SECRET_KEY_FALLBACKS makes them undecryptable."
            ),
            id="oauth_server.W013",
        )
    ]


def _limits_disabled() -> list[str]:
    from . import ratelimit

    try:
        limits = ratelimit.configured_limits()
    except ValueError:
        return []  # E003 says so
    return sorted(name for name, scopes in limits.items() if not any(scopes.values()))


@register(Tags.security, deploy=True)
def check_deployment(app_configs=None, **kwargs):
    from oauth2_provider.settings import oauth2_settings

    warnings = []
    issuer = oauth2_settings.OIDC_ISS_ENDPOINT
    if not django_settings.DEBUG:
        if issuer and not issuer.lower().startswith("https://"):
            warnings.append(
                Warning(
                    f"OAUTH2_PROVIDER['OIDC_ISS_ENDPOINT'] is {issuer!r}: the issuer and every endpoint "
                    "URL in the metadata is not https.",
                    hint="Serve the site over https and pin the issuer to its https URL (RFC 9700 4.13).",
                    id="oauth_server.W004",
                )
            )
        elif not issuer and not (
            django_settings.SECURE_SSL_REDIRECT or django_settings.SECURE_PROXY_SSL_HEADER
        ):
            warnings.append(
                Warning(
                    "The issuer is built from each request, and neither SECURE_SSL_REDIRECT nor "
                    "SECURE_PROXY_SSL_HEADER is set: behind a TLS-terminating proxy, the issuer, the "
                    "metadata and the JWT iss claim would say http://.",
                    hint=(
                        "Pin OAUTH2_PROVIDER['OIDC_ISS_ENDPOINT'] to the https URL of the oauth mount "
                        "point, and set SECURE_PROXY_SSL_HEADER if a proxy terminates TLS."
                    ),
                    id="oauth_server.W004",
                )
            )
    if oauth2_settings.ALLOW_URI_WILDCARDS:
        warnings.append(
            Warning(
                "OAUTH2_PROVIDER['ALLOW_URI_WILDCARDS'] is on: wildcard redirect URIs and origins pass "
                "DOT's validation.",
                hint="Remove it: RFC 9700 4.1.1 requires exact redirect URI matching.",
                id="oauth_server.W005",
            )
        )
    disabled = _limits_disabled()
    if disabled:
        warnings.append(
            Warning(
                "Rate limiting is off for: " + ", ".join(disabled) + ".",
                hint=(
                    "Keep OAUTH_SERVER['RATE_LIMITS'] on (the defaults), or make sure a proxy limits "
                    "these endpoints; client_auth_failures and login_failures are what stop secret and "
                    "password guessing."
                ),
                id="oauth_server.W006",
            )
        )
    alias = settings.RATE_LIMIT_CACHE
    backend = django_settings.CACHES.get(alias, {}).get("BACKEND", "")
    if backend in LOCAL_CACHE_BACKENDS and len(disabled) < len(_known_limits()):
        kind = LOCAL_CACHE_BACKENDS[backend]
        warnings.append(
            Warning(
                f"Rate-limit counters are kept in the {kind} cache {alias!r}: "
                + (
                    "nothing is counted, so no limit ever applies."
                    if kind == "dummy"
                    else "each process counts alone, so N worker processes allow N times the limits."
                ),
                hint=(
                    "Point OAUTH_SERVER['RATE_LIMIT_CACHE'] at a cache all processes share "
                    "(django.core.cache.backends.redis.RedisCache)."
                ),
                id="oauth_server.W007",
            )
        )
    return warnings


def _known_limits() -> frozenset[str]:
    from .ratelimit import KNOWN_LIMITS

    return KNOWN_LIMITS


def _insecure_uri(uri: str) -> bool:
    """A wildcard, or plain http to anything but the loopback interface (RFC 8252 7.3)."""
    if "*" in uri:
        return True
    try:
        parts = urlsplit(uri)
    except ValueError:
        return True
    return parts.scheme.lower() == "http" and (parts.hostname or "") not in LOOPBACK_HOSTS


@register(Tags.security, Tags.database, deploy=True)
def check_client_uris(app_configs=None, databases=None, **kwargs):
    """Registered URIs a production client should not have: wildcards, or http to a real host
    (codes and tokens then cross the network in clear). Reads the clients, so it runs only for
    ``check --deploy --database <alias>``."""
    if not databases:
        return []
    if app_configs is not None and not any(config.label == "oauth_server" for config in app_configs):
        return []
    from .models import Client

    warnings = []
    for alias in databases:
        if not router.allow_migrate_model(alias, Client):
            continue
        try:
            if Client._meta.db_table not in connections[alias].introspection.table_names():
                continue
            rows = list(
                Client.objects.using(alias)
                .order_by("pk")
                .values_list(
                    "client_id", "name", "redirect_uris", "post_logout_redirect_uris", "allowed_origins"
                )
            )
        except DatabaseError:
            continue
        for client_id, name, *uri_fields in rows:
            bad = [uri for field in uri_fields for uri in (field or "").split() if _insecure_uri(uri)]
            if bad:
                warnings.append(
                    Warning(
                        f"Client {name!r} ({client_id}) in database {alias!r} has wildcard or plain-http "
                        f"URIs: {', '.join(bad)}.",
                        hint="Use exact https URIs; plain http only for loopback (127.0.0.1, [::1]).",
                        obj=Client,
                        id="oauth_server.W008",
                    )
                )
    return warnings


# --- sign-in (docs/integration.md, step 3) ------------------------------------------------------------
@register(Tags.urls)
def check_login_url(app_configs=None, **kwargs):
    """The authorization endpoint sends anonymous users to ``LOGIN_URL``: a URL that leads nowhere,
    or to Django's LoginView without its ``registration/login.html``, breaks every first sign-in
    (a 404 or a 500) while everything else looks fine.

    A ``LOGIN_URL`` on another host (SSO) cannot be checked and is left alone.
    """
    from django.contrib.auth import views as auth_views
    from django.shortcuts import resolve_url
    from django.template import TemplateDoesNotExist
    from django.template.loader import get_template
    from django.urls import NoReverseMatch, Resolver404, get_script_prefix, resolve

    from .views.login import LoginView

    login_url = django_settings.LOGIN_URL
    hint = (
        'Add path("accounts/", include("oauth_server.accounts_urls")) to your URLconf for the app\'s '
        "sign-in page at Django's default LOGIN_URL, or point LOGIN_URL at your own login view."
    )
    try:
        url = str(resolve_url(login_url))  # a URL name is reversed; anything else is taken as a URL
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            return []
        path = parts.path
        prefix = get_script_prefix()
        if prefix != "/" and path.startswith(prefix):
            path = "/" + path[len(prefix) :]
        match = resolve(path)
    except (NoReverseMatch, Resolver404):
        return [
            Warning(
                f"LOGIN_URL is {login_url!r}, which is not a URL of this site: the authorization endpoint "
                "sends users who are not signed in there, and they get a 404.",
                hint=hint,
                id="oauth_server.W010",
            )
        ]
    view_class = getattr(match.func, "view_class", None)
    if not (isinstance(view_class, type) and issubclass(view_class, auth_views.LoginView)):
        return []  # a login view of the site's own: trusted to render
    if issubclass(view_class, LoginView):
        return []  # the app's: falls back to oauth_server/login.html
    template_name = getattr(match.func, "view_initkwargs", {}).get("template_name", view_class.template_name)
    try:
        get_template(template_name)
    except TemplateDoesNotExist:
        return [
            Warning(
                f"LOGIN_URL ({login_url!r}) is Django's LoginView, and its template {template_name!r} "
                "does not exist: the first sign-in answers 500 (TemplateDoesNotExist).",
                hint=(
                    f"Create {template_name}, or route the login URL to oauth_server.views.login.LoginView "
                    "(it falls back to the app's page): "
                    'path("accounts/", include("oauth_server.accounts_urls")) before '
                    'include("django.contrib.auth.urls").'
                ),
                id="oauth_server.W010",
            )
        ]
    return []


# --- client ID metadata documents (docs/client-registration.md) -------------------------------------------
@register(Tags.security, deploy=True)
def check_cimd_development_settings(app_configs=None, **kwargs):
    """The loopback and extra-CA settings exist for a developer's machine and the tests: in production
    the first lets any client_id URL reach services on the server itself (SSRF), the second trusts a
    certificate nobody vetted."""
    on = [name for name in ("CIMD_ALLOW_HTTP_LOOPBACK", "CIMD_CA_FILE") if getattr(settings, name)]
    if not on:
        return []
    return [
        Error(
            f"OAUTH_SERVER[{on[0]!r}] is set"
            + (f" (and {', '.join(repr(name) for name in on[1:])})" if len(on) > 1 else "")
            + ": client ID metadata documents may be fetched from this machine's loopback interface or "
            "under a certificate the system does not trust. These settings are for development only.",
            hint="Remove CIMD_ALLOW_HTTP_LOOPBACK and CIMD_CA_FILE (the demo: unset DEMO_CIMD_ALLOW_LOOPBACK "
            "and DEMO_CIMD_CA_FILE).",
            id="oauth_server.E004",
        )
    ]


@register(Tags.urls)
def check_root_metadata_url(app_configs=None, **kwargs):
    """An issuer with a path (``/oauth``) publishes its RFC 8414 metadata at the site root
    (``/.well-known/oauth-authorization-server/oauth``), where MCP clients look first: without
    ``oauth_server.wellknown_urls`` in the URLconf they get a 404 there."""
    from django.urls import Resolver404, resolve

    from .views.discovery import RootMetadataView, issuer_path

    mounted = issuer_path()
    if not mounted:
        return []  # not included, or at the root: the app's own URLs are the well-known ones
    url = "/.well-known/oauth-authorization-server" + mounted
    try:
        match = resolve(url)
    except Resolver404:
        match = None
    if match is not None and getattr(match.func, "view_class", None) is RootMetadataView:
        return []
    return [
        Warning(
            f"The issuer's metadata is not served at {url} (RFC 8414 3.1): MCP clients look for it there "
            "first.",
            hint='Add path("", include("oauth_server.wellknown_urls")) to the root URLconf.',
            id="oauth_server.W011",
        )
    ]


# --- security profiles (docs/fapi.md) ---------------------------------------------------------------
@register(Tags.security)
def check_security_profile(app_configs=None, **kwargs):
    """``SECURITY_PROFILE`` must name a registered profile (an unknown one is applied as FAPI 2.0
    meanwhile: fail closed); the site's signing algorithm should be one the profile allows."""
    from . import profiles

    messages = []
    name = settings.SECURITY_PROFILE
    if name is not None and name not in profiles.registry:
        messages.append(
            Error(
                f"OAUTH_SERVER['SECURITY_PROFILE'] is {name!r}.",
                hint="Use None or one of: " + ", ".join(repr(n) for n in profiles.registry.names()) + ".",
                id="oauth_server.E006",
            )
        )
    profile = profiles.site_profile()
    if profile is not None and not profile.allows_algorithm(settings.SIGNING_KEY_ALGORITHM):
        messages.append(_algorithm_warning(profile, settings.SIGNING_KEY_ALGORITHM, "SIGNING_KEY_ALGORITHM"))
    return messages


def _algorithm_warning(profile, algorithm: str, where: str) -> Warning:
    allowed = ", ".join(sorted(profile.signing_algorithms or []))
    return Warning(
        f"The {profile.title} security profile is in use but {where} signs with {algorithm}, "
        f"which it forbids (allowed: {allowed}).",
        hint=(
            "Set OAUTH_SERVER['SIGNING_KEY_ALGORITHM'] to 'ES256' or 'EdDSA' and run "
            "`manage.py rotate_signing_keys --algorithm ES256` (twice: the next key is published first)."
        ),
        id="oauth_server.W012",
    )


@register(Tags.security, Tags.database)
def check_profile_signing_key(app_configs=None, databases=None, **kwargs):
    """With ``--database``: a client (or the site) under a profile while the active key's algorithm is
    one the profile forbids (RS256 under FAPI 2.0). ID tokens and JWT access tokens are signed with
    the one active key of the site, so the profile cannot pick another algorithm per client."""
    if not databases:
        return []
    from . import profiles
    from .models import Client, SigningKey

    warnings = []
    for alias in databases:
        if not router.allow_migrate_model(alias, SigningKey):
            continue
        try:
            tables = connections[alias].introspection.table_names()
            if SigningKey._meta.db_table not in tables or Client._meta.db_table not in tables:
                continue
            active = SigningKey.objects.using(alias).filter(state=SigningKey.State.ACTIVE).first()
            in_use = {profiles.site_profile()} | {
                profiles.registry.get(name)
                for name in Client.objects.using(alias)
                .exclude(security_profile="")
                .values_list("security_profile", flat=True)
                .distinct()
            }
        except DatabaseError:
            continue
        for profile in in_use - {None}:
            if active is not None and not profile.allows_algorithm(active.algorithm):
                warnings.append(_algorithm_warning(profile, active.algorithm, f"the active key of {alias!r}"))
    return warnings
