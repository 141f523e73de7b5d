"""System checks: a misconfiguration is reported by ``manage.py check``, not found in production."""

from __future__ import annotations

from django.conf import settings as django_settings
from django.core.checks import Error, Tags, Warning, register

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
    return warnings
