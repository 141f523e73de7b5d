"""RFC 9728 protected-resource metadata (oauth_server/resource/metadata.py) and the ``resource_metadata``
parameter of every refusal (RFC 9728 5.1), with the 403 ``scope`` (RFC 6750 3.1), on plain Django
views and DRF (tests/resource_urls.py). Tokens come from the real token endpoint."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import Client as BrowserClient

from oauth_server.resource import jwks, metadata
from oauth_server.resource.metadata import metadata_url
from tests.factories import MachineClientFactory
from tests.resource_urls import API, ISSUER, REPORTS_API, RS_SETTINGS, client_credentials_token

pytestmark = pytest.mark.urls("tests.resource_urls")

API_METADATA = "https://api.example.com/.well-known/oauth-protected-resource"
REPORTS_METADATA = "https://api.example.com/.well-known/oauth-protected-resource/reports"
RESOURCES = {
    API: {"scopes_supported": ["files:read", "files:write"], "resource_name": "Files"},
    REPORTS_API: {
        "scopes_supported": ["reports:read"],
        "resource_documentation": "https://docs.example.com/",
    },
    "https://api.example.com/tools/mcp/": {},
}


@pytest.fixture(autouse=True)
def rs(settings):
    settings.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "PROTECTED_RESOURCES": RESOURCES}
    cache.clear()
    yield settings
    jwks.reset()
    cache.clear()


@pytest.fixture
def token_for(client, db):
    machine = MachineClientFactory(scopes=["files:read", "reports:read", "a"], audiences=[API, REPORTS_API])
    return lambda scope: client_credentials_token(client, machine, scope)


def get(url: str, token: str | None = None, method: str = "get", **extra):
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return getattr(BrowserClient(enforce_csrf_checks=True), method)(url, **extra)


# --- the URL: path insertion (RFC 9728 3.1) -------------------------------------------------------------
@pytest.mark.parametrize(
    ("resource", "url"),
    [
        ("https://host/api/files", "https://host/.well-known/oauth-protected-resource/api/files"),
        ("https://host/api/files/", "https://host/.well-known/oauth-protected-resource/api/files/"),
        ("http://127.0.0.1:8000/mcp/", "http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp/"),
        ("https://host", "https://host/.well-known/oauth-protected-resource"),
        ("https://host/", "https://host/.well-known/oauth-protected-resource"),
    ],
)
def test_path_insertion(resource, url):
    assert metadata_url(resource) == url


# --- the document --------------------------------------------------------------------------------------
@pytest.mark.parametrize("resource", list(RESOURCES))
def test_each_resource_is_served_at_its_inserted_url_with_its_own_identifier(resource):
    """RFC 9728 3.3: the document's resource is the identifier the URL was built from, exactly."""
    url = metadata_url(resource)
    response = get(url.removeprefix("https://api.example.com"))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    document = response.json()
    assert document["resource"] == resource
    assert metadata_url(document["resource"]) == url
    assert document["authorization_servers"] == [ISSUER]
    assert document["bearer_methods_supported"] == ["header"]
    for name, value in RESOURCES[resource].items():
        assert document[name] == value


def test_no_scopes_listed_unless_configured():
    """The authorization server's whole catalogue is not this API's: MCP clients ask for every scope
    listed, so nothing is listed that the resource did not name."""
    assert "scopes_supported" not in get("/.well-known/oauth-protected-resource/tools/mcp/").json()


def test_cache_and_cors_headers():
    response = get("/.well-known/oauth-protected-resource/reports")
    assert response["Cache-Control"] == "public, max-age=3600"
    assert response["Access-Control-Allow-Origin"] == "*"
    head = get("/.well-known/oauth-protected-resource/reports", method="head")
    assert head.status_code == 200


def test_authorization_servers_and_max_age_settings(settings):
    settings.OAUTH_RESOURCE_SERVER = {
        **RS_SETTINGS,
        "AUTHORIZATION_SERVERS": ["https://as1.example.com", "https://as2.example.com"],
        "RESOURCE_METADATA_MAX_AGE": 60,
        "PROTECTED_RESOURCES": {API: {}, REPORTS_API: {"authorization_servers": ["https://as3.example.com"]}},
    }
    response = get("/.well-known/oauth-protected-resource")
    assert response.json()["authorization_servers"] == ["https://as1.example.com", "https://as2.example.com"]
    assert response["Cache-Control"] == "public, max-age=60"
    reports = get("/.well-known/oauth-protected-resource/reports").json()
    assert reports["authorization_servers"] == ["https://as3.example.com"]


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/oauth-protected-resource/",  # API is "https://api.example.com/": no trailing slash here
        "/.well-known/oauth-protected-resource/reports/",
        "/.well-known/oauth-protected-resource/Reports",
        "/.well-known/oauth-protected-resource/tools/mcp",
        "/.well-known/oauth-protected-resource/nope",
        "/.well-known/oauth-protected-resource//reports",
        "/.well-known/oauth-protected-resource/../reports",
        "/.well-known/oauth-protected-resource/reports%00",
        "/.well-known/oauth-protected-resource/reports%0A",
        "/.well-known/oauth-protected-resource/re%0Aports",
        "/.well-known/oauth-protected-resource/%2e%2e/%ff",
        "/.well-known/oauth-protected-resource/" + "a" * 5000,
        "/.well-known/oauth-protected-resource/reports?resource=https://evil.example/",
    ],
)
def test_other_paths_are_json_404s(path):
    response = get(path)
    assert response.status_code == 404, path
    assert response.json()["error"] == "not_found"
    assert "evil" not in response.content.decode()


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_other_methods_are_json_405s(method):
    response = get("/.well-known/oauth-protected-resource/reports", method=method)
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json()["error"] == "method_not_allowed"


def test_the_host_header_does_not_change_the_document():
    response = get("/.well-known/oauth-protected-resource/reports", HTTP_HOST="evil.example")
    # Django refuses a host outside ALLOWED_HOSTS; an allowed one still gets the configured identifier.
    assert response.status_code == 400 or response.json()["resource"] == REPORTS_API
    assert get("/.well-known/oauth-protected-resource/reports", HTTP_HOST="localhost").json()["resource"] == (
        REPORTS_API
    )


def test_nothing_configured_serves_nothing(settings):
    settings.OAUTH_RESOURCE_SERVER = dict(RS_SETTINGS)
    assert get("/.well-known/oauth-protected-resource").status_code == 404


@pytest.mark.parametrize(
    "resources",
    [
        {"api.example.com/x": {}},  # not absolute
        {"ftp://api.example.com/x": {}},
        {"https://api.example.com/x#frag": {}},
        {"https://api.example.com/x?tenant=1": {}},
        {"https://api.example.com/x": {"scopes_supported": "files:read"}},  # a string, not a list
        {"https://api.example.com/x": {"scopes_supported": [""]}},
        {"https://api.example.com/x": {"resource_name": 3}},
        {"https://api.example.com/x": {"dpop_bound_access_tokens_required": "yes"}},
        {"https://api.example.com/x": {"resource": "https://other.example.com/"}},  # unknown / not settable
        {"https://api.example.com/x": ["scopes"]},
        {"https://api.example.com": {}, "https://api.example.com/": {}},  # one metadata URL for two
        ["https://api.example.com/x"],
    ],
)
def test_misconfiguration_is_loud(settings, resources):
    settings.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "PROTECTED_RESOURCES": resources}
    with pytest.raises(ImproperlyConfigured):
        metadata.resources()


# --- resource_metadata in every refusal (RFC 9728 5.1), scope in the 403 (RFC 6750 3.1) ---------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/rs/plain/files/", API_METADATA),
        ("/rs/plain/rw/", API_METADATA),
        ("/rs/drf/files/", API_METADATA),
        ("/rs/drf/authenticated/", API_METADATA),  # DRF's own NotAuthenticated: authenticate_header
        ("/rs/plain/reports/", REPORTS_METADATA),
        ("/rs/plain/reports-mixin/", REPORTS_METADATA),
        ("/rs/drf/reports/", REPORTS_METADATA),
    ],
)
def test_no_token_401_names_the_views_metadata(db, url, expected):
    response = get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == (
        f'Bearer realm="api", resource_metadata="{expected}", '
        f'DPoP realm="api", algs="ES256 RS256 PS256 EdDSA", resource_metadata="{expected}"'
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/rs/plain/files/", API_METADATA),
        ("/rs/drf/files/", API_METADATA),
        ("/rs/plain/reports/", REPORTS_METADATA),
        ("/rs/drf/reports/", REPORTS_METADATA),
    ],
)
def test_invalid_token_401_names_the_views_metadata(db, url, expected):
    response = get(url, "not.a.jwt")
    assert response.status_code == 401
    header = response["WWW-Authenticate"]
    assert header.startswith('Bearer realm="api", error="invalid_token", error_description="')
    assert header.endswith(f', resource_metadata="{expected}"')


@pytest.mark.parametrize(
    ("url", "scope", "expected"),
    [
        ("/rs/plain/files/", "files:read", API_METADATA),
        ("/rs/drf/files/", "files:read", API_METADATA),
        ("/rs/plain/reports/", "reports:read", REPORTS_METADATA),
        ("/rs/plain/reports-mixin/", "reports:read", REPORTS_METADATA),
        ("/rs/drf/reports/", "reports:read", REPORTS_METADATA),
    ],
)
def test_insufficient_scope_403_names_the_scope_and_the_metadata(token_for, url, scope, expected):
    response = get(url, token_for("a"))
    assert response.status_code == 403
    header = response["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in header
    assert f'scope="{scope}"' in header
    assert header.endswith(f'resource_metadata="{expected}"')
    assert get(url, token_for(scope)).status_code == 200


def test_malformed_request_400_names_the_metadata_too(db):
    response = get("/rs/plain/files/?access_token=abc")
    assert response.status_code == 400
    assert response["WWW-Authenticate"].endswith(f'resource_metadata="{API_METADATA}"')


def test_a_view_whose_resource_has_no_metadata_sends_none(settings, db):
    settings.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "PROTECTED_RESOURCES": {REPORTS_API: {}}}
    assert (
        get("/rs/plain/files/")["WWW-Authenticate"]
        == 'Bearer realm="api", DPoP realm="api", algs="ES256 RS256 PS256 EdDSA"'
    )
    assert get("/rs/drf/reports/")["WWW-Authenticate"].endswith(f'resource_metadata="{REPORTS_METADATA}"')


def test_a_list_audience_names_its_first_configured_resource(settings, db):
    settings.OAUTH_RESOURCE_SERVER = {
        **RS_SETTINGS,
        "AUDIENCE": ["https://old.example.com/", REPORTS_API, API],
        "PROTECTED_RESOURCES": RESOURCES,
    }
    assert get("/rs/plain/files/")["WWW-Authenticate"].endswith(f'resource_metadata="{REPORTS_METADATA}"')


def test_a_missing_token_error_with_scopes_names_them():
    """Opt-in (the demo MCP server uses it): the bare challenge stays without an error code."""
    from oauth_server.resource import MissingToken
    from oauth_server.resource.schemes import protector

    exc = metadata.attach(MissingToken(scopes=["mcp:tools"]), REPORTS_API)
    expected = f'Bearer realm="api", scope="mcp:tools", resource_metadata="{REPORTS_METADATA}"'
    assert exc.www_authenticate() == expected
    dpop = (
        f'DPoP realm="api", scope="mcp:tools", algs="ES256 RS256 PS256 EdDSA", '
        f'resource_metadata="{REPORTS_METADATA}"'
    )
    assert protector.challenge(exc) == f"{expected}, {dpop}"
    assert (
        protector.challenge(MissingToken())
        == 'Bearer realm="api", DPoP realm="api", algs="ES256 RS256 PS256 EdDSA"'
    )
