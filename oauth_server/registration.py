"""Policy for clients that registered themselves (client ID metadata documents, dynamic registration).

One place answers what such a client may be given (scopes, grant types, audiences) and where it
comes from (``client_origin``, for the consent page), so every way of self-registering follows the
same site policy (docs/client-registration.md).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.db.models import Q, QuerySet

from .conf import settings

#: OpenID Connect's standard scopes, which SELF_REGISTERED_SCOPES = None allows.
STANDARD_SCOPES = ("openid", "profile", "email", "offline_access")


def self_registered_scopes() -> QuerySet:
    """The scopes a self-registered client may be allowed: SELF_REGISTERED_SCOPES (None: the
    standard OIDC scopes and the scopes marked default), never the management API's scope."""
    from .models import Scope

    names = settings.SELF_REGISTERED_SCOPES
    if names is None:
        scopes = Scope.objects.filter(Q(name__in=STANDARD_SCOPES) | Q(is_default=True))
    else:
        scopes = Scope.objects.filter(name__in=list(names))
    return scopes.exclude(name=settings.ADMIN_API_SCOPE).order_by("name")


def self_registered_grant_types(requested: list[str]) -> list[str]:
    """The grant types granted for ``requested``: those the policy allows, in the policy's order."""
    allowed = list(settings.SELF_REGISTERED_GRANT_TYPES)
    return [grant for grant in allowed if grant in requested]


def self_registered_audiences() -> list[str]:
    """RFC 8707 resources every self-registered client may ask tokens for."""
    return list(settings.SELF_REGISTERED_AUDIENCES or [])


def is_self_registered(client) -> bool:
    """Registered by a metadata document or dynamic registration, not by the site's staff."""
    source = getattr(client, "registration_source", "manual")
    return source in (client.RegistrationSource.CIMD, client.RegistrationSource.DCR)


def client_origin(client) -> str | None:
    """Where a metadata-document client comes from: the host (with a port other than the
    default) of its client_id URL, shown on the consent page; None for other clients."""
    if getattr(client, "registration_source", None) != client.RegistrationSource.CIMD:
        return None
    try:
        parts = urlsplit(client.client_id)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return f"{host}:{port}" if port and port != default else host
