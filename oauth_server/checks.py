"""System checks: a misconfiguration is reported by ``manage.py check``, not found in production."""

from __future__ import annotations

from django.conf import settings as django_settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connections, router

from .conf import SWAPPED_MODELS, settings


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
