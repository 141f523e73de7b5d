"""RFC 9728 protected-resource metadata: how a client learns which authorization server to ask, and for what.

Each resource configured in ``OAUTH_RESOURCE_SERVER["PROTECTED_RESOURCES"]`` (keyed by its resource
identifier, which is also the audience its views accept) gets a JSON document at the URL RFC 9728
3.1 prescribes: the well-known string inserted between the host and the path of the identifier::

    https://api.example.com/files/  ->  https://api.example.com/.well-known/oauth-protected-resource/files/
    https://api.example.com/mcp     ->  https://api.example.com/.well-known/oauth-protected-resource/mcp
    https://api.example.com/        ->  https://api.example.com/.well-known/oauth-protected-resource

The document's ``resource`` is the configured identifier, character for character, and the view
finds it from the requested path alone (never from the ``Host`` header): a client that built the
URL from identifier X gets X's document, or 404 (RFC 9728 3.3). Every refusal of a view serving a
configured resource names its document in ``WWW-Authenticate: Bearer resource_metadata="..."``
(RFC 9728 5.1): ``resource_metadata_url_for(audience)`` decides which, ``attach()`` adds it.

DOT 3.4 ships an ``OAuthProtectedResourceMetadataView`` and ``www_authenticate.build_bearer_challenge``;
they are not used here: they read DOT's settings (one resource per site, its identifier derived
from the request's host, ``scopes_supported`` = the authorization server's whole catalogue) and
import DOT's models, while this kit serves several resources, runs without the provider, and
writes its challenges with ``errors.ErrorFormat`` (docs/resource-server-kit.md, "Protected-resource
metadata").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, re_path
from django.utils.translation import gettext as _

from .conf import SETTINGS_NAME, on_reload, settings
from .errors import BearerError

WELL_KNOWN = "/.well-known/oauth-protected-resource"

# RFC 9728 2 (and the registry's later additions): the members a document may carry, by JSON type.
LIST_FIELDS = frozenset(
    {
        "authorization_servers",
        "scopes_supported",
        "bearer_methods_supported",
        "resource_signing_alg_values_supported",
        "authorization_details_types_supported",
        "dpop_signing_alg_values_supported",
    }
)
STRING_FIELDS = frozenset(
    {"resource_name", "resource_documentation", "resource_policy_uri", "resource_tos_uri", "jwks_uri"}
)
BOOLEAN_FIELDS = frozenset(
    {"tls_client_certificate_bound_access_tokens", "dpop_bound_access_tokens_required"}
)
# The kit reads tokens from the Authorization header only (resource/transport.py): the default
# advertises exactly that, so a client is never told a body or query token would work.
DEFAULT_BEARER_METHODS = ["header"]


def metadata_url(resource: str) -> str:
    """The metadata URL of ``resource`` (RFC 9728 3.1 path insertion; a path of "/" alone is dropped,
    as the terminating slash after the host is)."""
    parts = urlsplit(resource)
    path = "" if parts.path == "/" else parts.path
    return f"{parts.scheme}://{parts.netloc}{WELL_KNOWN}{path}"


def _check_identifier(resource: Any) -> str:
    """An identifier RFC 9728 1.2 allows: an absolute http(s) URL without fragment (and, here, query)."""
    if not isinstance(resource, str):
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}['PROTECTED_RESOURCES'] keys must be URLs, not {resource!r}."
        )
    parts = urlsplit(resource)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment or "#" in resource:
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}['PROTECTED_RESOURCES']: {resource!r} is not an absolute https URL "
            "without fragment (RFC 9728 1.2)."
        )
    if parts.query or "?" in resource:
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}['PROTECTED_RESOURCES']: {resource!r} has a query; this kit serves "
            "metadata for identifiers without one."
        )
    return resource


def _check_fields(resource: str, fields: Any) -> dict[str, Any]:
    if not isinstance(fields, Mapping):
        raise ImproperlyConfigured(f"{SETTINGS_NAME}['PROTECTED_RESOURCES'][{resource!r}] must be a dict.")
    checked: dict[str, Any] = {}
    for name, value in fields.items():
        where = f"{SETTINGS_NAME}['PROTECTED_RESOURCES'][{resource!r}][{name!r}]"
        if name in LIST_FIELDS:
            if isinstance(value, str) or not isinstance(value, Iterable):
                raise ImproperlyConfigured(f"{where} must be a list of strings.")
            value = list(value)
            if not all(isinstance(v, str) and v for v in value):
                raise ImproperlyConfigured(f"{where} must be a list of non-empty strings.")
        elif name in STRING_FIELDS:
            if not isinstance(value, str) or not value:
                raise ImproperlyConfigured(f"{where} must be a non-empty string.")
        elif name in BOOLEAN_FIELDS:
            if not isinstance(value, bool):
                raise ImproperlyConfigured(f"{where} must be true or false.")
        else:
            raise ImproperlyConfigured(f"{where}: unknown RFC 9728 metadata member.")
        checked[name] = value
    return checked


class _Registry:
    """The configured resources, checked once per settings change: by identifier and by URL path."""

    def __init__(self) -> None:
        self._loaded: tuple[dict[str, dict[str, Any]], dict[str, str]] | None = None

    def reset(self) -> None:
        self._loaded = None

    def load(self) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
        if self._loaded is None:
            configured = settings.PROTECTED_RESOURCES or {}
            if not isinstance(configured, Mapping):
                raise ImproperlyConfigured(f"{SETTINGS_NAME}['PROTECTED_RESOURCES'] must be a dict.")
            documents: dict[str, dict[str, Any]] = {}
            by_path: dict[str, str] = {}
            for resource, fields in configured.items():
                resource = _check_identifier(resource)
                documents[resource] = _check_fields(resource, fields)
                path = urlsplit(metadata_url(resource)).path
                if path in by_path:
                    raise ImproperlyConfigured(
                        f"{SETTINGS_NAME}['PROTECTED_RESOURCES']: {by_path[path]!r} and {resource!r} "
                        "would share one metadata URL."
                    )
                by_path[path] = resource
            self._loaded = documents, by_path
        return self._loaded


_registry = _Registry()
on_reload(_registry.reset)


def resources() -> dict[str, dict[str, Any]]:
    """The configured resources (identifier -> its configured members), validated."""
    return _registry.load()[0]


def document(resource: str) -> dict[str, Any]:
    """The RFC 9728 document of a configured ``resource`` (KeyError otherwise), defaults filled in:
    ``authorization_servers`` from ``AUTHORIZATION_SERVERS`` (None: the kit's ``ISSUER``, the
    authorization server the kit validates tokens of), ``bearer_methods_supported`` ["header"]."""
    fields = resources()[resource]
    servers = settings.AUTHORIZATION_SERVERS
    data: dict[str, Any] = {
        "resource": resource,
        "authorization_servers": list(servers) if servers else [settings.issuer],
        "bearer_methods_supported": list(DEFAULT_BEARER_METHODS),
    }
    data.update(fields)
    return data


def resource_for_path(path: str) -> str | None:
    """The configured resource whose metadata URL has this path, None for any other path."""
    return _registry.load()[1].get(path)


def _raw_audiences(override: Any) -> list[str]:
    value = settings.AUDIENCE if override is None else override
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        return [v for v in value if isinstance(v, str)]
    return []


def resource_metadata_url_for(audience: Any = None) -> str | None:
    """The metadata URL to name in a view's challenges: that of the first of the view's audiences
    (its own, else ``AUDIENCE``) that is a configured resource; None when there is none."""
    if not settings.PROTECTED_RESOURCES:
        return None
    configured = resources()
    for candidate in _raw_audiences(audience):
        if candidate in configured:
            return metadata_url(candidate)
    return None


def attach(exc: BearerError, audience: Any = None) -> BearerError:
    """``exc`` with the ``resource_metadata`` of the view's resource (kept if already set)."""
    if getattr(exc, "resource_metadata", None) is None:
        exc.resource_metadata = resource_metadata_url_for(audience)
    return exc


def _not_found(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(
        {
            "error": "not_found",
            "error_description": _("No protected resource publishes metadata at this URL."),
        },
        status=404,
    )
    response["Cache-Control"] = "no-store"
    return response


def protected_resource_metadata(request: HttpRequest, suffix: str = "") -> HttpResponse:
    """The document of the resource whose identifier's path is the part after the well-known string.

    Public and cacheable (``RESOURCE_METADATA_MAX_AGE``), readable cross-origin: browser-based
    clients (MCP inspectors, single-page apps) discover through it before they hold any token.
    """
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse(
            {"error": "method_not_allowed", "error_description": _("Use GET to read this document.")},
            status=405,
        )
        response["Allow"] = "GET, HEAD"
        return response
    # A query belongs to the identifier the URL was built from (RFC 9728 3.1): configured ones have none.
    resource = None if request.META.get("QUERY_STRING") else resource_for_path(WELL_KNOWN + suffix)
    if resource is None:
        return _not_found(request)
    response = JsonResponse(document(resource))
    response["Cache-Control"] = f"public, max-age={int(settings.RESOURCE_METADATA_MAX_AGE)}"
    response["Access-Control-Allow-Origin"] = "*"
    return response


protected_resource_metadata.csrf_exempt = True
protected_resource_metadata.login_required = False  # LoginRequiredMiddleware: discovery is public


def protected_resource_metadata_urls() -> list[URLPattern]:
    """URL patterns serving every configured resource's metadata; include them at the site ROOT
    (``urlpatterns += protected_resource_metadata_urls()``): the well-known URL sits after the host."""
    return [
        re_path(
            r"^\.well-known/oauth-protected-resource(?P<suffix>/[\s\S]*)?$",
            _with_suffix,
            name="oauth-protected-resource-metadata",
        )
    ]


def _with_suffix(request: HttpRequest, suffix: str | None = None) -> HttpResponse:
    return protected_resource_metadata(request, suffix or "")


_with_suffix.csrf_exempt = True
_with_suffix.login_required = False
