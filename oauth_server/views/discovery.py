"""Discovery documents (OIDC Discovery 1.0, RFC 8414) and the JWKS, listing exactly what is supported.

Both metadata documents come from one function, so they can never disagree.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.urls import get_script_prefix, reverse
from django.utils.decorators import method_decorator
from django.views import View
from oauth2_provider.settings import oauth2_settings

from .. import claims, client_auth, dpop, grants, keys, profiles, published, registration, request_objects
from ..conf import settings
from ..models import Scope, SigningKey


def endpoint_url(request: HttpRequest, name: str) -> str:
    """An endpoint's absolute URL: on the pinned issuer's origin when the issuer is pinned.

    The documents are cacheable (``Cache-Control: public``), and a pinned issuer says where the
    server is: endpoints taken from the request's Host header would let a forged Host put another
    origin next to the real issuer in a document that caches and clients keep.
    """
    path = reverse(f"oauth2_provider:{name}")
    if oauth2_settings.OIDC_ISS_ENDPOINT:
        issuer = urlsplit(oauth2_settings.OIDC_ISS_ENDPOINT)
        return urlunsplit((issuer.scheme, issuer.netloc, path, "", ""))
    return request.build_absolute_uri(path)


def metadata(request: HttpRequest) -> dict[str, Any]:
    """The document, as true under the site-wide security profile if there is one (``profiles``)."""
    return profiles.metadata(_metadata(request))


def _metadata(request: HttpRequest) -> dict[str, Any]:
    published = SigningKey.objects.filter(state__in=[SigningKey.State.ACTIVE, SigningKey.State.NEXT])
    algorithms = sorted(set(published.values_list("algorithm", flat=True))) or [
        settings.SIGNING_KEY_ALGORITHM
    ]
    return {
        "issuer": oauth2_settings.oidc_issuer(request),
        "authorization_endpoint": endpoint_url(request, "authorize"),
        "token_endpoint": endpoint_url(request, "token"),
        "userinfo_endpoint": endpoint_url(request, "user-info"),
        "jwks_uri": endpoint_url(request, "jwks-info"),
        "introspection_endpoint": endpoint_url(request, "introspect"),
        "revocation_endpoint": endpoint_url(request, "revoke-token"),
        "end_session_endpoint": endpoint_url(request, "rp-initiated-logout"),
        "pushed_authorization_request_endpoint": endpoint_url(request, "pushed-authorization-request"),
        "require_pushed_authorization_requests": settings.REQUIRE_PUSHED_AUTHORIZATION_REQUESTS,
        "dpop_signing_alg_values_supported": dpop.algorithms(),
        "scopes_supported": list(Scope.objects.order_by("name").values_list("name", flat=True)),
        "response_types_supported": grants.registry.response_types(),
        "response_modes_supported": ["query"],
        "grant_types_supported": grants.registry.token_grant_types(),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algorithms,
        # The client_auth registry, per endpoint (introspection callers must authenticate), and
        # what its methods add (the signing algorithms private_key_jwt accepts).
        **client_auth.registry.metadata(),
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "azp", "at_hash"]
        + sorted({name for names in claims.SCOPE_CLAIMS.values() for name in names}),
        "claims_parameter_supported": False,
        # RFC 9101: signed request objects by value (request), or pushed; no request_uri to fetch.
        "request_parameter_supported": True,
        "request_uri_parameter_supported": False,
        "request_object_signing_alg_values_supported": request_objects.algorithms(),
        **({"require_signed_request_object": True} if request_objects.required_for(None) else {}),
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": True,
        # draft-ietf-oauth-client-id-metadata-document: an https client_id URL is fetched (cimd.py).
        **({"client_id_metadata_document_supported": True} if settings.CIMD_ENABLED else {}),
        # RFC 7591: only while someone may register (REGISTRATION_POLICY is not "closed").
        **(
            {"registration_endpoint": endpoint_url(request, "register")}
            if registration.policy() != registration.CLOSED
            else {}
        ),
        # Members of grants with endpoints of their own (none of the built-in grants has one).
        **grants.registry.metadata(request),
    }


def metadata_document(request: HttpRequest) -> published.Document:
    """The metadata document from the cache (``published.py``): no query once warm.

    Its URLs follow the pinned issuer, or, unpinned, the request's scheme and host; the script
    prefix shapes every path. Those are the cache variant, so each origin gets its own copy; so are
    the grant and client-authentication registries, which code may extend at run time.
    """
    origin = oauth2_settings.OIDC_ISS_ENDPOINT or f"{request.scheme}://{request.get_host()}"
    registries = " ".join(
        [*grants.registry.token_grant_types(), *(name for name, _label in client_auth.registry.choices())]
    )
    variant = published.variant_of(origin, get_script_prefix(), registries)
    return published.document("metadata", variant, lambda: (metadata(request), None))


@method_decorator(login_not_required, name="dispatch")
class OpenIDConfigurationView(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        cache_control = f"public, max-age={settings.DISCOVERY_MAX_AGE}"
        return published.respond(request, metadata_document(request), cache_control)


@method_decorator(login_not_required, name="dispatch")
class AuthorizationServerMetadataView(OpenIDConfigurationView):
    """RFC 8414: the same document (OIDC-specific members are allowed extensions)."""


def issuer_path() -> str | None:
    """The path of the URL our metadata is mounted under ("/oauth"), "" at the root, None if the
    URLconf does not include ``oauth_server.urls``."""
    from django.urls import NoReverseMatch

    try:
        path = reverse("oauth2_provider:oauth-server-metadata")
    except NoReverseMatch:
        return None
    return path.removesuffix("/.well-known/oauth-authorization-server").rstrip("/")


@method_decorator(login_not_required, name="dispatch")
class RootMetadataView(OpenIDConfigurationView):
    """RFC 8414 3.1: the metadata of an issuer with a path at ``/.well-known/<name><issuer path>``
    at the site root (``oauth_server.wellknown_urls``). MCP clients try it first; OIDC clients that
    insert rather than append (``/.well-known/openid-configuration/oauth``) get the same document.
    Any other path is not an issuer of this site: 404."""

    def get(self, request: HttpRequest, path: str = "") -> HttpResponse:
        from django.http import Http404

        mounted = issuer_path()
        prefix = get_script_prefix().rstrip("/")
        if not mounted or "/" + path.strip("/") != mounted.removeprefix(prefix):
            raise Http404("No issuer at this path.")
        return super().get(request)


@method_decorator(login_not_required, name="dispatch")
class JwksView(View):
    """Active, next and still-needed retired public keys, from the cache (no query once warm).

    Caches may keep it JWKS_MAX_AGE seconds: a key is published as ``next`` one rotation before it
    signs, so rotating less often than that keeps every cached copy ahead (docs/key-rotation.md).
    """

    def get(self, request: HttpRequest) -> HttpResponse:
        document = published.document("jwks", "", keys.jwks_with_lifetime)
        return published.respond(request, document, f"public, max-age={settings.JWKS_MAX_AGE}")
