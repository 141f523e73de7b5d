"""The kit on plain Django views: ``@require_scopes`` and ``RequireScopesMixin`` (tests/resource_urls.py),
with tokens from the real token endpoint."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import Client as BrowserClient
from django.views import View

from oauth_server import keys
from oauth_server.resource import (
    InvalidToken,
    MissingToken,
    RequireScopesMixin,
    challenge,
    error_response,
    jwks,
    require_scopes,
)
from tests.factories import MachineClientFactory
from tests.resource_urls import API, RS_SETTINGS, JWKSServer, client_credentials_token

pytestmark = pytest.mark.urls("tests.resource_urls")
# Both schemes the kit accepts (RFC 9449 7.1: DPoP alongside Bearer).
BARE_CHALLENGE = 'Bearer realm="api", DPoP realm="api", algs="ES256 RS256 PS256 EdDSA"'
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def rs(settings):
    settings.OAUTH_RESOURCE_SERVER = dict(RS_SETTINGS)
    cache.clear()
    yield settings
    jwks.reset()
    cache.clear()


@pytest.fixture
def machine(db):
    return MachineClientFactory(scopes=["files:read", "files:write", "a", "b"], audiences=[API])


@pytest.fixture
def token_for(client, machine):
    return lambda scope: client_credentials_token(client, machine, scope)


@pytest.fixture
def api():
    """An API client: no cookies, and CSRF enforced as for any non-test client."""
    return BrowserClient(enforce_csrf_checks=True)


def call(browser, url: str, token: str | None = None, method: str = "get", **extra):
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return getattr(browser, method)(url, **extra)


def assert_error(response, status: int, error: str, *, scope: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"error", "error_description"} and body["error"] == error, body
    header = response["WWW-Authenticate"]
    assert header.startswith(f'Bearer realm="api", error="{error}", error_description="'), header
    if scope is not None:
        assert header.endswith(f', scope="{scope}"'), header
    return body


# --- @require_scopes --------------------------------------------------------------------------------------
def test_decorator_valid_token_sets_request_oauth_token(api, machine, token_for):
    response = call(api, "/rs/plain/files/", token_for("files:read files:write"))
    assert response.status_code == 200, response.content
    assert response.json() == {
        "sub": machine.client_id,
        "client_id": machine.client_id,
        "scopes": ["files:read", "files:write"],
    }


def test_decorator_errors(api, token_for):
    response = api.get("/rs/plain/files/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == BARE_CHALLENGE
    assert response.json()["error"] == "unauthorized"
    assert_error(call(api, "/rs/plain/files/", "not-a-jwt"), 401, "invalid_token")
    body = assert_error(
        call(api, "/rs/plain/files/", token_for("a")), 403, "insufficient_scope", scope="files:read"
    )
    assert body["error_description"] == "This request needs the scopes: files:read."
    assert_error(api.get("/rs/plain/files/", HTTP_AUTHORIZATION="Bearer a b"), 400, "invalid_request")
    token = token_for("files:read")
    assert_error(api.get(f"/rs/plain/files/?access_token={token}"), 400, "invalid_request")


@pytest.mark.parametrize(("scope", "status"), [("a", 200), ("b", 200), ("files:read", 403)])
def test_decorator_any(api, token_for, scope, status):
    response = call(api, "/rs/plain/any/", token_for(scope))
    if status == 403:
        body = assert_error(response, 403, "insufficient_scope", scope="a b")
        assert "one of" in body["error_description"]
    else:
        assert response.status_code == 200, response.content


def test_bare_decorator_needs_only_a_valid_token_and_no_csrf_token(api, token_for):
    response = call(api, "/rs/plain/token/", token_for("a"), method="post")
    assert response.status_code == 200, response.content
    assert response.json()["method"] == "POST"
    assert api.post("/rs/plain/token/").status_code == 401


def test_login_required_middleware_does_not_redirect_api_calls(api, token_for, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.contrib.auth.middleware.LoginRequiredMiddleware"]
    assert api.get("/rs/plain/files/").status_code == 401
    assert api.get("/rs/plain/rw/").status_code == 401
    assert call(api, "/rs/plain/rw/", token_for("files:read")).status_code == 200


# --- RequireScopesMixin -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scope", "method", "status", "needed"),
    [
        ("files:read", "get", 200, None),
        ("files:read", "post", 403, "files:write"),
        ("files:write", "get", 403, "files:read"),
        ("files:write", "post", 200, None),
        ("files:read files:write", "post", 200, None),
    ],
)
def test_mixin_read_write(api, token_for, scope, method, status, needed):
    response = call(api, "/rs/plain/rw/", token_for(scope), method=method)
    if status == 403:
        assert_error(response, 403, "insufficient_scope", scope=needed)
    else:
        assert response.status_code == 200, response.content
        assert response.json()["method"] == method.upper()


def test_mixin_form_body_reaches_the_view(api, token_for):
    data = urlencode({"name": "report.pdf"})
    response = call(
        api, "/rs/plain/rw/", token_for("files:write"), method="post", data=data, content_type=FORM
    )
    assert response.status_code == 200, response.content
    assert response.json()["body"] == "report.pdf"


def test_mixin_unimplemented_method_is_405_after_authentication(api, token_for):
    assert api.put("/rs/plain/rw/").status_code == 401
    assert call(api, "/rs/plain/rw/", token_for("a"), method="put").status_code == 405


def test_mixin_method_without_scopes_is_a_configuration_error(api, token_for):
    token = token_for("files:read files:write")
    assert call(api, "/rs/plain/misconfigured/", token).status_code == 200
    with pytest.raises(ImproperlyConfigured, match="write_scopes"):
        call(api, "/rs/plain/misconfigured/", token, method="post")


@pytest.mark.parametrize(("scope", "status"), [("a", 403), ("a b", 200)])
def test_mixin_required_scopes(api, token_for, scope, status):
    response = call(api, "/rs/plain/all/", token_for(scope))
    if status == 403:
        assert_error(response, 403, "insufficient_scope", scope="a b")
    else:
        assert response.status_code == 200


def test_scope_names_are_checked_when_decorating():
    with pytest.raises(ImproperlyConfigured):
        require_scopes(["files:read"])
    with pytest.raises(ImproperlyConfigured):
        require_scopes("")


def test_a_single_string_is_one_scope_not_its_characters(rf, db):
    class OneString(RequireScopesMixin, View):
        required_scopes = "files:read"
        write_scopes = "files:write"

    view = OneString()
    assert view.get_required_scopes(rf.post("/")) == ("files:read", "files:write")


# --- responses ---------------------------------------------------------------------------------------------
def test_challenge_parameters_are_sanitised(settings):
    header = challenge("invalid_token", 'bad "quote" \\ caf\u00e9\nnext')
    assert header == 'Bearer realm="api", error="invalid_token", error_description="bad quote  cafenext"'
    settings.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "REALM": "files"}
    assert challenge() == 'Bearer realm="files"'
    response = error_response(MissingToken())
    assert response.status_code == 401 and response["WWW-Authenticate"] == 'Bearer realm="files"'
    assert InvalidToken("why").reason == "why"


# --- zero queries once the keys are cached -----------------------------------------------------------------
def test_zero_queries_local_source(api, token_for, django_assert_num_queries):
    token = token_for("files:read files:write")
    assert call(api, "/rs/plain/files/", token).status_code == 200
    with django_assert_num_queries(0):
        assert call(api, "/rs/plain/files/", token).status_code == 200
        assert call(api, "/rs/plain/rw/", token, method="post").status_code == 200


def test_zero_queries_url_source(api, token_for, settings, django_assert_num_queries):
    token = token_for("files:read")
    with JWKSServer(keys.jwks()) as server:
        settings.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "JWKS_SOURCE": "url", "JWKS_URL": server.url}
        assert call(api, "/rs/plain/files/", token).status_code == 200
        with django_assert_num_queries(0):
            assert call(api, "/rs/plain/files/", token).status_code == 200
            assert call(api, "/rs/plain/rw/", token).status_code == 200
        assert server.fetches == 1
