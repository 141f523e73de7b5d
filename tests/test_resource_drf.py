"""The kit's DRF classes: BearerTokenAuthentication and the scope permissions, on real API views
(tests/resource_urls.py) with tokens from the real token endpoint."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.test import Client as BrowserClient
from rest_framework.test import APIRequestFactory

from oauth_server import keys
from oauth_server.resource import jwks
from oauth_server.resource.drf import (
    BearerAPIException,
    HasAllScopes,
    HasAnyScope,
    HasScope,
    ReadWriteScopes,
    TokenUser,
)
from tests.factories import MachineClientFactory, UserFactory
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


def call(browser, url: str, token: str | None = None, method: str = "get", **extra):
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return getattr(browser, method)(url, **extra)


def assert_error(response, status: int, error: str, *, scope: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert set(body) == {"error", "error_description"} and body["error"] == error, body
    assert body["error_description"]
    header = response["WWW-Authenticate"]
    assert header.startswith(f'Bearer realm="api", error="{error}", error_description="'), header
    if scope is not None:
        assert header.endswith(f', scope="{scope}"'), header
    else:
        assert "scope=" not in header
    return body


# --- authentication ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/rs/drf/files/", "/rs/drf/files-class/"])
def test_valid_token_instance_and_class_permissions(client, machine, token_for, url):
    response = call(client, url, token_for("files:read"))
    assert response.status_code == 200, response.content
    assert response.json() == {"user": machine.client_id, "client_id": machine.client_id, "method": "GET"}


@pytest.mark.parametrize("url", ["/rs/drf/files/", "/rs/drf/files-class/"])
def test_insufficient_scope_is_403_naming_the_scope(client, token_for, url):
    body = assert_error(
        call(client, url, token_for("files:write")), 403, "insufficient_scope", scope="files:read"
    )
    assert "files:read" in body["error_description"]


def test_no_token_is_a_bare_challenge(client, db):
    response = client.get("/rs/drf/files/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == BARE_CHALLENGE
    assert response.json()["error"] == "unauthorized"


def test_another_scheme_is_not_ours(client, db):
    response = client.get("/rs/drf/files/", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == BARE_CHALLENGE


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 9000])
def test_invalid_token_is_401_invalid_token(client, db, token):
    assert_error(call(client, "/rs/drf/files/", token), 401, "invalid_token")


def test_forged_scope_is_401(client, token_for):
    header, _payload, signature = token_for("files:write").split(".")
    _h, payload, _s = token_for("files:read").split(".")
    body = assert_error(
        call(client, "/rs/drf/files/", f"{header}.{payload}.{signature}"), 401, "invalid_token"
    )
    assert "signature" in body["error_description"]


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer two tokens", "bearer tok\u00e9n"])
def test_malformed_authorization_header_is_400(client, db, header):
    assert_error(client.get("/rs/drf/files/", HTTP_AUTHORIZATION=header), 400, "invalid_request")


def test_token_in_query_or_body_is_400(client, token_for):
    token = token_for("files:read")
    body = assert_error(client.get(f"/rs/drf/files/?access_token={token}"), 400, "invalid_request")
    assert "URL" in body["error_description"]
    body = assert_error(call(client, f"/rs/drf/files/?access_token={token}", token), 400, "invalid_request")
    assert "more than one" in body["error_description"]
    form = urlencode({"access_token": token})
    response = call(client, "/rs/drf/rw/", token, method="post", data=form, content_type=FORM)
    body = assert_error(response, 400, "invalid_request")
    assert "more than one" in body["error_description"]
    body = assert_error(client.post("/rs/drf/rw/", data=form, content_type=FORM), 400, "invalid_request")
    assert "body" in body["error_description"]


def test_token_user(client, machine, token_for):
    response = call(client, "/rs/drf/files/", token_for("files:read"))
    user = response.wsgi_request.user  # DRF copies request.user onto the HttpRequest
    assert response.status_code == 200
    assert user.is_authenticated
    assert isinstance(user, TokenUser)
    assert (user.pk, user.username, user.client_id) == (machine.client_id,) * 3
    assert user.scopes == {"files:read"}
    assert not user.is_staff and not user.has_perm("auth.view_user")
    assert str(user) == machine.client_id


def test_service_unavailable_is_503(client, token_for, settings):
    token = token_for("files:read")
    settings.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "JWKS_SOURCE": "url", "JWKS_URL": "http://127.0.0.1:9/j"}
    response = call(client, "/rs/drf/files/", token)
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response["Retry-After"] == "10"
    assert "WWW-Authenticate" not in response


# --- permissions --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("scope", "status"), [("a", 200), ("b", 200), ("a b", 200), ("files:read", 403)])
def test_has_any_scope(client, token_for, scope, status):
    response = call(client, "/rs/drf/any/", token_for(scope))
    if status == 403:
        body = assert_error(response, 403, "insufficient_scope", scope="a b")
        assert "one of" in body["error_description"]
    else:
        assert response.status_code == 200, response.content


@pytest.mark.parametrize(("scope", "status"), [("a", 403), ("b", 403), ("a b", 200), ("a b files:read", 200)])
def test_has_all_scopes(client, token_for, scope, status):
    response = call(client, "/rs/drf/all/", token_for(scope))
    if status == 403:
        assert_error(response, 403, "insufficient_scope", scope="a b")
    else:
        assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("scope", "method", "status", "needed"),
    [
        ("files:read", "get", 200, None),
        ("files:read", "head", 200, None),
        ("files:read", "options", 200, None),
        ("files:read", "post", 403, "files:write"),
        ("files:read", "put", 403, "files:write"),
        ("files:read", "delete", 403, "files:write"),
        ("files:write", "get", 403, "files:read"),
        ("files:write", "post", 200, None),
        ("files:write", "put", 200, None),
        ("files:write", "delete", 200, None),
    ],
)
def test_read_write_scopes_per_method(token_for, scope, method, status, needed):
    browser = BrowserClient(enforce_csrf_checks=True)  # bearer requests need no CSRF token
    response = call(browser, "/rs/drf/rw/", token_for(scope), method=method)
    if status == 403:
        if method == "head":
            assert response.status_code == 403
        else:
            assert_error(response, 403, "insufficient_scope", scope=needed)
    else:
        assert response.status_code == status, response.content


def test_form_post_body_still_reaches_the_view(token_for):
    browser = BrowserClient(enforce_csrf_checks=True)
    data = urlencode({"name": "report.pdf"})  # the kit reads a form body to look for a token...
    response = call(
        browser, "/rs/drf/rw/", token_for("files:write"), method="post", data=data, content_type=FORM
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"method": "POST", "data": {"name": ["report.pdf"]}}  # ...DRF still can


@pytest.mark.parametrize(("scope", "status"), [("files:read", 200), ("files:write", 403)])
def test_composed_with_drf_permissions(client, token_for, scope, status):
    assert call(client, "/rs/drf/composed/", token_for(scope)).status_code == status


def test_permission_instances_and_classes():
    instance = HasScope("files:read")
    assert instance() is instance  # what DRF does with each entry of permission_classes
    cls = HasScope.of("files:read")
    assert isinstance(cls(), HasScope) and cls().scopes == ("files:read",)
    assert ReadWriteScopes.of(read="r", write=["w1", "w2"])().write == ("w1", "w2")
    assert repr(HasAnyScope("a", "b")) == "HasAnyScope('a', 'b')"
    assert HasAllScopes("a", "b").scopes == ("a", "b")
    for bad in (
        lambda: HasScope(),
        lambda: HasScope(""),
        lambda: HasScope.of(),
        lambda: ReadWriteScopes("r", []),
    ):
        with pytest.raises(ValueError):
            bad()


def test_permission_on_a_request_authenticated_otherwise(db):
    """A session user (no token) is refused with DRF's 403, not asked for a token; an anonymous one is."""
    request = APIRequestFactory().get("/")
    request.user, request.auth = UserFactory(), None
    assert HasScope("files:read").has_permission(request, None) is False
    request.user = AnonymousUser()
    with pytest.raises(BearerAPIException) as info:
        HasScope("files:read").has_permission(request, None)
    assert info.value.status_code == 401 and info.value.auth_header == BARE_CHALLENGE


# --- zero queries once the keys are cached -----------------------------------------------------------------
def test_zero_queries_local_source(client, token_for, django_assert_num_queries):
    token = token_for("files:read")
    assert call(client, "/rs/drf/files/", token).status_code == 200  # fetches the keys (one query)
    with django_assert_num_queries(0):
        assert call(client, "/rs/drf/files/", token).status_code == 200
        assert call(client, "/rs/drf/rw/", token, method="post").status_code == 403


def test_zero_queries_url_source(client, token_for, settings, django_assert_num_queries):
    token = token_for("files:read")
    with JWKSServer(keys.jwks()) as server:
        settings.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "JWKS_SOURCE": "url", "JWKS_URL": server.url}
        assert call(client, "/rs/drf/files/", token).status_code == 200
        with django_assert_num_queries(0):
            assert call(client, "/rs/drf/files/", token).status_code == 200
            assert call(client, "/rs/drf/files-class/", token).status_code == 200
        assert server.fetches == 1
