"""The management REST API (oauth_server.api): every endpoint, its auth, its errors, its OpenAPI document.

Requests go through Django's test client with JSON bodies, as an operator's script would send them.
Most tests authenticate as the session of a staff user holding every oauth_server permission; the
auth matrix also uses real bearer tokens, one of them obtained from /oauth/token/, and the
permission matrix checks each action against Django's model permissions.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client as BrowserClient
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from freezegun import freeze_time

from oauth_server import hashers, signals
from oauth_server.models import AccessToken, AuditEvent, Client, Grant, GrantType, RefreshToken, Scope
from tests.factories import (
    AccessTokenFactory,
    ClientFactory,
    ConsentFactory,
    MachineClientFactory,
    PublicClientFactory,
    RefreshTokenFactory,
    ScopeFactory,
    UserFactory,
)
from tests.helpers import (
    API,
    CLIENTS,
    SCHEMA,
    SCOPES,
    assert_error,
    basic_auth,
    bearer,
    grant_permissions,
    send,
    service_account,
    signal_sent,
    signed_in,
    token_request,
)


def client_url(client_id: str) -> str:
    return f"{CLIENTS}{client_id}/"


@pytest.fixture
def staff(db):
    """An operator: a staff user holding every oauth_server permission."""
    return grant_permissions(UserFactory(is_staff=True))


@pytest.fixture
def api(staff):
    """The operator's browser session (the test client skips CSRF unless asked; see the CSRF test)."""
    return signed_in(staff)


@pytest.fixture
def admin_client(db):
    """The operator's machine client, allowed the admin scope, owned by a service account."""
    return MachineClientFactory(scopes=["oauth:admin"], user=service_account())


@pytest.fixture
def admin_token(admin_client):
    return AccessTokenFactory(user=None, application=admin_client, scope="oauth:admin")


def client_payload(**overrides) -> dict:
    ScopeFactory(name="files:read")
    data = {
        "name": "Reporting app",
        "client_type": "confidential",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["https://app.example.com/callback"],
        "scopes": ["files:read"],
    }
    data.update(overrides)
    return data


# --- authentication and permissions ---------------------------------------------------------------------
ENDPOINTS = [
    ("get", CLIENTS),
    ("post", CLIENTS),
    ("get", SCOPES),
    ("get", API + "users/1/tokens/"),
    ("delete", API + "users/1/tokens/"),
    ("get", SCHEMA),
    ("get", API + "no-such-thing/"),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_anonymous_gets_401_with_a_bearer_challenge(client, db, method, url):
    body = assert_error(send(client, method, url, {}), 401, "unauthorized")
    response = send(client, method, url, {})
    assert response["WWW-Authenticate"].startswith("Bearer ")
    assert 'realm="oauth_server_admin"' in response["WWW-Authenticate"]
    assert "credentials" in body["error_description"]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_a_non_staff_session_gets_403(client, db, method, url):
    client.force_login(UserFactory(is_staff=False))
    assert_error(send(client, method, url, {}), 403, "forbidden")


def test_an_inactive_staff_user_is_not_authenticated(client, db):
    client.force_login(UserFactory(is_staff=True, is_active=False))
    assert_error(client.get(CLIENTS), 401)


def test_a_staff_session_must_send_the_csrf_token_for_writes(db, staff):
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(staff)
    assert browser.get(CLIENTS).status_code == 200  # safe methods need no token
    body = assert_error(send(browser, "post", SCOPES, {"name": "a:b", "description": "A"}), 403, "forbidden")
    assert "CSRF" in body["error_description"]
    assert not Scope.objects.filter(name="a:b").exists()

    browser.get("/accounts/login/")  # any page that renders a form sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    response = send(browser, "post", SCOPES, {"name": "a:b", "description": "A"}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content
    assert Scope.objects.filter(name="a:b").exists()


def test_a_bearer_token_with_the_admin_scope_is_accepted(client, admin_token):
    response = client.get(CLIENTS, **bearer(admin_token.raw_token))
    assert response.status_code == 200
    assert response.json()["count"] == 1  # the admin client itself
    response = send(
        client, "post", SCOPES, {"name": "x:y", "description": "X"}, **bearer(admin_token.raw_token)
    )
    assert response.status_code == 201  # no CSRF for bearer tokens


def test_a_token_from_the_token_endpoint_works(client, db):
    """End to end: client_credentials at /oauth/token/ (a JWT by default), then the API."""
    machine = MachineClientFactory(scopes=["oauth:admin"], user=service_account())
    response = token_request(
        client,
        {"grant_type": "client_credentials", "scope": "oauth:admin"},
        client=machine,
        secret=machine.raw_secret,
    )
    assert response.status_code == 200, response.content
    token = response.json()["access_token"]
    assert client.get(SCOPES, **bearer(token)).status_code == 200


def test_a_bearer_token_without_the_admin_scope_gets_403(client, db):
    machine = MachineClientFactory(scopes=["reports:read"])
    token = AccessTokenFactory(user=None, application=machine, scope="reports:read")
    body = assert_error(client.get(CLIENTS, **bearer(token.raw_token)), 403, "insufficient_scope")
    assert "oauth:admin" in body["error_description"]


def test_a_user_token_is_refused_even_with_the_admin_scope(client, db, staff):
    web = ClientFactory(scopes=["oauth:admin"])
    token = AccessTokenFactory(user=staff, application=web, scope="oauth:admin")
    assert_error(client.get(CLIENTS, **bearer(token.raw_token)), 403, "forbidden")


def test_a_token_of_a_disabled_client_gets_401(client, admin_client, admin_token):
    Client.objects.filter(pk=admin_client.pk).update(is_enabled=False)
    response = client.get(CLIENTS, **bearer(admin_token.raw_token))
    assert_error(response, 401, "invalid_token")
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


@pytest.mark.parametrize("value", ["not-a-known-token", ""])
def test_unknown_or_empty_bearer_tokens_get_401(client, db, value):
    response = client.get(CLIENTS, HTTP_AUTHORIZATION=f"Bearer {value}")
    assert_error(response, 401, "invalid_token")
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_an_expired_token_gets_401(client, admin_client):
    token = AccessTokenFactory(
        user=None,
        application=admin_client,
        scope="oauth:admin",
        expires=timezone.now() - timedelta(seconds=1),
    )
    response = client.get(CLIENTS, **bearer(token.raw_token))
    assert_error(response, 401)
    assert "expired" in response["WWW-Authenticate"]


def test_an_invalid_bearer_token_is_not_rescued_by_a_staff_session(api):
    assert_error(api.get(CLIENTS, HTTP_AUTHORIZATION="Bearer forged"), 401)


def test_tokens_in_the_query_string_are_not_accepted(client, admin_token):
    assert_error(client.get(CLIENTS, {"access_token": admin_token.raw_token}), 401)


def test_the_admin_scope_is_a_setting(client, db):
    machine = MachineClientFactory(scopes=["ops"], user=service_account())
    token = AccessTokenFactory(user=None, application=machine, scope="ops")
    assert client.get(CLIENTS, **bearer(token.raw_token)).status_code == 403
    with override_settings(OAUTH_SERVER={"ADMIN_API_SCOPE": "ops"}):
        assert client.get(CLIENTS, **bearer(token.raw_token)).status_code == 200


@override_settings(
    REST_FRAMEWORK={
        "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.BasicAuthentication"],
        "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
        "DEFAULT_SCHEMA_CLASS": "rest_framework.schemas.openapi.AutoSchema",
        "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.BrowsableAPIRenderer"],
    }
)
def test_site_wide_drf_defaults_cannot_open_the_api(client, db):
    from tests.factories import DEFAULT_PASSWORD

    user = UserFactory()
    assert_error(client.get(CLIENTS), 401)
    assert_error(client.get(SCHEMA), 401)
    assert_error(client.get(CLIENTS, HTTP_AUTHORIZATION=basic_auth(user.username, DEFAULT_PASSWORD)), 401)


def test_responses_are_never_cached(api):
    assert api.get(CLIENTS)["Cache-Control"] == "no-store"
    assert api.get(SCHEMA)["Cache-Control"] == "no-store"


# --- clients: create, and the secret shown once ---------------------------------------------------------
def test_create_returns_the_secret_once_and_stores_only_its_hash(api, django_capture_on_commit_callbacks):
    response = send(api, "post", CLIENTS, client_payload())
    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    secret = body["client_secret"]
    assert len(secret) >= 32
    client = Client.objects.get(client_id=body["client_id"])
    assert response["Location"] == "http://testserver" + client_url(client.client_id)
    assert client.client_secret != secret
    assert hashers.is_hashed(client.client_secret)
    assert client.check_secret(secret)
    assert body["name"] == "Reporting app"
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["redirect_uris"] == ["https://app.example.com/callback"]
    assert body["scopes"] == ["files:read"]
    assert body["is_enabled"] is True
    assert list(client.allowed_scopes.values_list("name", flat=True)) == ["files:read"]

    for response in (api.get(client_url(client.client_id)), api.get(CLIENTS)):
        assert response.status_code == 200
        assert secret.encode() not in response.content
        assert client.client_secret.encode() not in response.content
        assert b'"client_secret":' not in response.content


def test_a_created_machine_client_can_get_tokens_with_its_secret(api, client):
    payload = client_payload(
        grant_types=["client_credentials"], redirect_uris=[], access_token_format="opaque"
    )
    body = send(api, "post", CLIENTS, payload).json()
    created = Client.objects.get(client_id=body["client_id"])
    response = token_request(
        client,
        {"grant_type": "client_credentials", "scope": "files:read"},
        client=created,
        secret=body["client_secret"],
    )
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "files:read"


def test_a_public_client_has_no_secret(api):
    payload = client_payload(client_type="public", grant_types=["authorization_code"])
    response = send(api, "post", CLIENTS, payload)
    assert response.status_code == 201, response.content
    assert response.json()["client_secret"] is None
    assert Client.objects.get(client_id=response.json()["client_id"]).client_secret == ""


def test_create_stores_every_field(api):
    ScopeFactory(name="openid")
    payload = client_payload(
        scopes=["files:read", "openid"],
        post_logout_redirect_uris=["https://app.example.com/bye"],
        skip_consent=True,
        is_enabled=False,
        logo_uri="https://app.example.com/logo.png",
        client_uri="https://app.example.com/",
        policy_uri="https://app.example.com/privacy",
        tos_uri="https://app.example.com/tos",
        access_token_lifetime=600,
        refresh_token_lifetime=86400,
        audiences=["https://api.example.com"],
        resource_identifiers=["urn:example:api"],
        access_token_format="jwt",
    )
    body = send(api, "post", CLIENTS, payload).json()
    del body["client_secret"]
    fetched = api.get(client_url(body["client_id"])).json()
    assert fetched == body
    for key, value in payload.items():
        assert fetched[key] == (sorted(value) if key == "scopes" else value), key
    client = Client.objects.get(client_id=body["client_id"])
    assert client.post_logout_redirect_uris == "https://app.example.com/bye"
    assert client.skip_consent and not client.is_enabled
    assert client.audiences == ["https://api.example.com"]
    assert {"created", "updated"} <= set(fetched)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"grant_types": ["password"]}, "grant_types"),
        ({"grant_types": ["implicit", "authorization_code"]}, "grant_types"),
        ({"grant_types": []}, "grant_types"),
        ({"client_type": "public", "grant_types": ["client_credentials"]}, "grant_types"),
        ({"grant_types": ["refresh_token"]}, "grant_types"),
        ({"scopes": ["files:read", "no:such:scope"]}, "scopes"),
        ({"redirect_uris": ["https://app.example.com/cb#frag"]}, "redirect_uris"),
        ({"redirect_uris": ["https://*.example.com/cb"]}, "redirect_uris"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "redirect_uris"),
        ({"redirect_uris": ["https://a.example.com/cb https://b.example.com/cb"]}, "redirect_uris"),
        ({"redirect_uris": []}, "redirect_uris"),
        ({"client_type": "secret-ish"}, "client_type"),
        ({"name": ""}, "name"),
        ({"name": "x" * 300}, "name"),
        ({"logo_uri": "not a url"}, "logo_uri"),
        ({"access_token_lifetime": 0}, "access_token_lifetime"),
        ({"access_token_lifetime": 2**40}, "access_token_lifetime"),
        ({"audiences": ["not-absolute"]}, "audiences"),
        ({"resource_identifiers": ["https://api.example.com/#x"]}, "resource_identifiers"),
        ({"access_token_format": "paseto"}, "access_token_format"),
        # wrong JSON types: no coercion
        ({"is_enabled": "yes"}, "is_enabled"),
        ({"skip_consent": 1}, "skip_consent"),
        ({"access_token_lifetime": "3600"}, "access_token_lifetime"),
        ({"access_token_lifetime": 3600.5}, "access_token_lifetime"),
        ({"name": 123}, "name"),
        ({"name": ["a"]}, "name"),
        ({"redirect_uris": "https://app.example.com/callback"}, "redirect_uris"),
        ({"redirect_uris": [["https://app.example.com/callback"]]}, "redirect_uris"),
        ({"scopes": {"files:read": True}}, "scopes"),
        ({"grant_types": None}, "grant_types"),
        ({"name": "nul\x00byte"}, "name"),
        # huge lists are refused before any item is looked at
        ({"redirect_uris": [f"https://app.example.com/{i}" for i in range(10_000)]}, "redirect_uris"),
        ({"scopes": [f"s{i}" for i in range(10_000)]}, "scopes"),
        # fields the API does not take
        ({"client_secret": "x" * 40}, "client_secret"),
        ({"redirect_uri": "https://app.example.com/callback"}, "redirect_uri"),
    ],
)
def test_invalid_clients_get_field_errors_and_nothing_is_saved(api, overrides, field):
    before = Client.objects.count()
    body = assert_error(send(api, "post", CLIENTS, client_payload(**overrides)), 400, "invalid_request")
    assert field in body["errors"], body
    assert Client.objects.count() == before


@pytest.mark.parametrize("missing", ["name", "client_type", "grant_types"])
def test_required_fields(api, missing):
    payload = client_payload()
    del payload[missing]
    assert missing in assert_error(send(api, "post", CLIENTS, payload), 400)["errors"]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ('["a", "b"]', "application/json", 400),
        ('"just a string"', "application/json", 400),
        ("null", "application/json", 400),
        ("name=x&client_type=public", "application/x-www-form-urlencoded", 415),
        (b"\xff\xfe", "application/json", 400),
    ],
)
def test_garbage_bodies_are_4xx_json(api, body, content_type, status):
    response = api.generic("POST", CLIENTS, body, content_type=content_type)
    assert_error(response, status)
    assert not Client.objects.exists()


def test_an_oversized_body_is_413(api):
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
        response = send(api, "post", CLIENTS, client_payload(name="x" * 2000))
    assert_error(response, 413, "request_too_large")


# --- clients: read, update, delete ----------------------------------------------------------------------
def test_read_a_client(api, web_client):
    body = api.get(client_url(web_client.client_id)).json()
    assert body["client_id"] == web_client.client_id
    assert body["scopes"] == ["files:read", "files:write"]
    assert body["client_type"] == "confidential"
    assert "client_secret" not in body


def test_unknown_client_is_404_json(api):
    assert_error(api.get(client_url("nope")), 404, "not_found")
    assert_error(send(api, "delete", client_url("nope")), 404)
    assert_error(send(api, "post", client_url("nope") + "rotate-secret/"), 404)


def test_client_ids_with_dots_are_found(api):
    client = ClientFactory(client_id="my.app-1")
    assert api.get(client_url("my.app-1")).json()["client_id"] == client.client_id


def test_patch_changes_only_what_is_sent(api, web_client):
    ScopeFactory(name="openid")
    response = send(api, "patch", client_url(web_client.client_id), {"name": "Renamed", "scopes": ["openid"]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "Renamed"
    assert body["scopes"] == ["openid"]
    assert "client_secret" not in body
    web_client.refresh_from_db()
    assert web_client.name == "Renamed"
    assert list(web_client.allowed_scopes.values_list("name", flat=True)) == ["openid"]
    assert web_client.check_secret(web_client.raw_secret)  # the secret is untouched
    assert web_client.grant_types == [GrantType.AUTHORIZATION_CODE, GrantType.REFRESH_TOKEN]


def test_put_replaces_the_client(api, web_client):
    payload = client_payload(name="Replaced", redirect_uris=["https://new.example.com/cb"])
    response = send(api, "put", client_url(web_client.client_id), payload)
    assert response.status_code == 200, response.content
    web_client.refresh_from_db()
    assert web_client.name == "Replaced"
    assert web_client.redirect_uri_list == ["https://new.example.com/cb"]
    assert list(web_client.allowed_scopes.values_list("name", flat=True)) == ["files:read"]


def test_put_needs_the_required_fields(api, web_client):
    assert_error(send(api, "put", client_url(web_client.client_id), {"name": "x"}), 400)


def test_an_invalid_update_changes_nothing(api, web_client):
    response = send(
        api, "patch", client_url(web_client.client_id), {"name": "New", "grant_types": ["refresh_token"]}
    )
    assert "grant_types" in assert_error(response, 400)["errors"]
    web_client.refresh_from_db()
    assert web_client.name != "New"


def test_read_only_fields_sent_back_are_ignored(api, web_client):
    """A GET body can be edited and PUT back: client_id, created and updated are not writable."""
    body = api.get(client_url(web_client.client_id)).json()
    body.update(client_id="hijack", created="2000-01-01T00:00:00Z", name="Round trip")
    response = send(api, "put", client_url(web_client.client_id), body)
    assert response.status_code == 200, response.content
    assert response.json()["client_id"] == web_client.client_id
    assert not Client.objects.filter(client_id="hijack").exists()


def test_turning_a_public_client_confidential_returns_a_secret_once(api, public_client):
    url = client_url(public_client.client_id)
    response = send(api, "patch", url, {"client_type": "confidential"})
    assert response.status_code == 200, response.content
    secret = response.json()["client_secret"]
    public_client.refresh_from_db()
    assert public_client.check_secret(secret)
    assert b'"client_secret":' not in api.get(url).content


def test_turning_a_confidential_client_public_drops_its_secret(api, web_client):
    response = send(api, "patch", client_url(web_client.client_id), {"client_type": "public"})
    assert response.status_code == 200, response.content
    assert "client_secret" not in response.json()
    web_client.refresh_from_db()
    assert web_client.client_secret == ""


def test_disable_a_client(api, web_client):
    send(api, "patch", client_url(web_client.client_id), {"is_enabled": False})
    web_client.refresh_from_db()
    assert not web_client.is_enabled


def test_delete_a_client_deletes_its_tokens(api, web_client, user):
    token = AccessTokenFactory(user=user, application=web_client)
    response = send(api, "delete", client_url(web_client.client_id))
    assert response.status_code == 204
    assert not Client.objects.filter(pk=web_client.pk).exists()
    assert not AccessToken.objects.filter(pk=token.pk).exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_methods_not_allowed_on_the_collection(api, method):
    response = send(api, method, CLIENTS, {})
    assert_error(response, 405, "method_not_allowed")


# --- clients: rotate the secret -------------------------------------------------------------------------
def test_rotate_secret(api, client):
    machine = MachineClientFactory(scopes=["reports:read"], access_token_format="opaque")
    with signal_sent(signals.client_secret_rotated) as received:
        response = send(api, "post", client_url(machine.client_id) + "rotate-secret/")
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["client_id"] == machine.client_id
    new = body["client_secret"]
    assert new != machine.raw_secret
    assert [sent["client"].client_id for sent in received] == [machine.client_id]

    machine.refresh_from_db()
    assert hashers.is_hashed(machine.client_secret) and machine.check_secret(new)
    data = {"grant_type": "client_credentials", "scope": "reports:read"}
    old = token_request(client, data, client=machine, secret=machine.raw_secret)
    assert old.status_code == 401
    assert old.json()["error"] == "invalid_client"
    assert token_request(client, data, client=machine, secret=new).status_code == 200

    detail = api.get(client_url(machine.client_id))
    assert new.encode() not in detail.content and b'"client_secret":' not in detail.content


def test_rotate_secret_of_a_public_client_is_400(api, public_client):
    body = assert_error(send(api, "post", client_url(public_client.client_id) + "rotate-secret/"), 400)
    assert "client_type" in body["errors"]


def test_rotate_secret_needs_post(api, web_client):
    assert_error(api.get(client_url(web_client.client_id) + "rotate-secret/"), 405)


# --- clients: list, pagination, filters -----------------------------------------------------------------
@pytest.fixture
def many_clients(db):
    ClientFactory(name="Alpha web")
    ClientFactory(name="Beta web", is_enabled=False)
    PublicClientFactory(name="Gamma spa", grant_types=[GrantType.AUTHORIZATION_CODE])
    MachineClientFactory(name="Delta worker")
    MachineClientFactory(name="Epsilon WORKER")


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [c["name"] for c in response.json()["results"]]


def test_list_is_paginated(api, many_clients):
    first = api.get(CLIENTS, {"page_size": 2}).json()
    assert first["count"] == 5
    assert [c["name"] for c in first["results"]] == ["Alpha web", "Beta web"]
    assert first["previous"] is None
    second = api.get(first["next"]).json()
    assert [c["name"] for c in second["results"]] == ["Delta worker", "Epsilon WORKER"]
    third = api.get(second["next"]).json()
    assert [c["name"] for c in third["results"]] == ["Gamma spa"]
    assert third["next"] is None
    assert_error(api.get(CLIENTS, {"page": 99}), 404)
    assert_error(api.get(CLIENTS, {"page": "x"}), 404)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"name": "WEB"}, ["Alpha web", "Beta web"]),
        ({"name": "worker"}, ["Delta worker", "Epsilon WORKER"]),
        ({"grant_type": "client_credentials"}, ["Delta worker", "Epsilon WORKER"]),
        ({"grant_type": "refresh_token"}, ["Alpha web", "Beta web"]),
        ({"grant_type": "authorization_code"}, ["Alpha web", "Beta web", "Gamma spa"]),
        ({"client_type": "public"}, ["Gamma spa"]),
        ({"enabled": "false"}, ["Beta web"]),
        ({"enabled": "true", "grant_type": "refresh_token"}, ["Alpha web"]),
        ({"name": "nothing like it"}, []),
    ],
)
def test_list_filters(api, many_clients, params, expected):
    assert names(api.get(CLIENTS, params)) == expected


@pytest.mark.parametrize(
    "params",
    [{"grant_type": "password"}, {"client_type": "x"}, {"enabled": "maybe"}, {"name": "a\x00b"}],
)
def test_invalid_filter_values_are_400(api, many_clients, params):
    assert_error(api.get(CLIENTS, params), 400, "invalid_request")


def _list_queries(api, count: int) -> int:
    for i in range(count):
        ClientFactory(scopes=[f"s{i}:a", f"s{i}:b"])
    with CaptureQueriesContext(connection) as queries:
        response = api.get(CLIENTS, {"page_size": 500})
    assert len(response.json()["results"]) == Client.objects.count()
    assert all(len(c["scopes"]) == 2 for c in response.json()["results"])
    return len(queries)


def test_list_queries_do_not_grow_with_the_page(api, django_assert_max_num_queries):
    few = _list_queries(api, 2)
    many = _list_queries(api, 30)
    assert few == many
    # session, user, the user's and their groups' permissions, count, page, scopes
    with django_assert_max_num_queries(7):
        api.get(CLIENTS, {"page_size": 500})


# --- scopes ---------------------------------------------------------------------------------------------
def test_scope_crud(api):
    response = send(api, "post", SCOPES, {"name": "files:read", "description": "Read files"})
    assert response.status_code == 201, response.content
    assert response.json()["is_default"] is False
    assert Scope.objects.get(name="files:read").description == "Read files"

    assert api.get(SCOPES + "files:read/").json()["description"] == "Read files"
    assert "files:read" in [s["name"] for s in api.get(SCOPES).json()["results"]]

    response = send(
        api, "patch", SCOPES + "files:read/", {"description": "Read your files", "is_default": True}
    )
    assert response.status_code == 200, response.content
    scope = Scope.objects.get(name="files:read")
    assert scope.description == "Read your files" and scope.is_default

    response = send(api, "put", SCOPES + "files:read/", {"name": "files:read", "description": "Files"})
    assert response.status_code == 200, response.content

    assert send(api, "delete", SCOPES + "files:read/").status_code == 204
    assert not Scope.objects.filter(name="files:read").exists()
    assert_error(api.get(SCOPES + "files:read/"), 404)


def test_a_scope_cannot_be_renamed(api):
    ScopeFactory(name="files:read")
    for method in ("patch", "put"):
        body = assert_error(
            send(api, method, SCOPES + "files:read/", {"name": "files:get", "description": "x"}), 400
        )
        assert "name" in body["errors"]
    assert Scope.objects.filter(name="files:read").exists()
    assert not Scope.objects.filter(name="files:get").exists()


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "has space", "description": "x"},
        {"name": 'quote"', "description": "x"},
        {"name": "", "description": "x"},
        {"name": "x" * 101, "description": "x"},
        {"name": "ok"},
        {"name": "ok", "description": "x", "is_default": "true"},
        {"name": "ok", "description": 5},
        {"name": "ok", "description": "x", "extra": 1},
    ],
)
def test_invalid_scopes_are_400(api, payload):
    assert_error(send(api, "post", SCOPES, payload), 400, "invalid_request")
    assert not Scope.objects.filter(name="ok").exists()


def test_duplicate_scope_is_400(api):
    ScopeFactory(name="files:read")
    body = assert_error(send(api, "post", SCOPES, {"name": "files:read", "description": "again"}), 400)
    assert "name" in body["errors"]


def test_scope_names_with_slashes_and_dots_are_addressable(api):
    ScopeFactory(name="https://api.example.com/files.read")
    body = api.get(SCOPES + "https://api.example.com/files.read/").json()
    assert body["name"] == "https://api.example.com/files.read"


def test_deleting_a_scope_removes_it_from_clients(api, web_client):
    assert send(api, "delete", SCOPES + "files:write/").status_code == 204
    assert api.get(client_url(web_client.client_id)).json()["scopes"] == ["files:read"]


# --- users: consents ------------------------------------------------------------------------------------
def consents_url(user, client_id: str | None = None) -> str:
    url = f"{API}users/{user.pk}/consents/"
    return f"{url}{client_id}/" if client_id else url


def test_list_a_users_consents(api, user, web_client):
    other = ClientFactory(name="Other")
    ConsentFactory(user=user, client=web_client, scope="files:read files:write")
    ConsentFactory(user=user, client=other, scope="files:read", revoked_at=timezone.now())
    ConsentFactory(client=web_client)  # someone else's
    body = api.get(consents_url(user)).json()
    assert body["count"] == 2
    by_client = {c["client_id"]: c for c in body["results"]}
    assert by_client[web_client.client_id]["scope"] == "files:read files:write"
    assert by_client[web_client.client_id]["active"] is True
    assert by_client[web_client.client_id]["client_name"] == web_client.name
    assert by_client[other.client_id]["active"] is False
    assert by_client[other.client_id]["revoked_at"]

    active = api.get(consents_url(user), {"active": "true"}).json()["results"]
    assert [c["client_id"] for c in active] == [web_client.client_id]
    assert api.get(consents_url(user, web_client.client_id)).json()["scope"] == "files:read files:write"


def test_revoking_a_consent_revokes_the_clients_tokens(api, user, web_client):
    other_client = ClientFactory()
    consent = ConsentFactory(user=user, client=web_client, scope="files:read")
    refresh = RefreshTokenFactory(user=user, application=web_client)
    kept = RefreshTokenFactory(user=user, application=other_client)
    someone_else = AccessTokenFactory(application=web_client)
    with signal_sent(signals.consent_revoked) as received:
        response = send(api, "delete", consents_url(user, web_client.client_id))
    assert response.status_code == 204, response.content
    consent.refresh_from_db()
    assert consent.revoked_at is not None
    assert [sent["consent"].pk for sent in received] == [consent.pk]
    refresh.refresh_from_db()
    assert refresh.revoked is not None
    assert not AccessToken.objects.filter(pk=refresh.access_token_id).exists()
    kept.refresh_from_db()
    assert kept.revoked is None and AccessToken.objects.filter(pk=kept.access_token_id).exists()
    assert AccessToken.objects.filter(pk=someone_else.pk).exists()

    # Revoking again changes nothing.
    revoked_at = consent.revoked_at
    assert send(api, "delete", consents_url(user, web_client.client_id)).status_code == 204
    consent.refresh_from_db()
    assert consent.revoked_at == revoked_at


def test_consent_404s(api, user, web_client):
    assert_error(send(api, "delete", consents_url(user, web_client.client_id)), 404)
    assert_error(send(api, "delete", consents_url(user, "no-such-client")), 404)


@pytest.mark.parametrize("user_id", ["999999", "abc", "1.5", "-1", str(10**30), "%00"])
def test_unknown_or_malformed_users_are_404(api, db, user_id):
    assert_error(api.get(f"{API}users/{user_id}/consents/"), 404)
    assert_error(api.get(f"{API}users/{user_id}/tokens/"), 404)
    assert_error(send(api, "delete", f"{API}users/{user_id}/tokens/"), 404)


# --- users: tokens --------------------------------------------------------------------------------------
def tokens_url(user, kind: str | None = None, pk=None) -> str:
    url = f"{API}users/{user.pk}/tokens/"
    return f"{url}{kind}/{pk}/" if kind else url


@pytest.fixture
def user_tokens(user, web_client):
    """A user's tokens: two grants at web_client (one refreshed once), one access-only at another client."""
    other = ClientFactory(name="Other", refresh_token_lifetime=3600)
    with freeze_time("2030-01-01 10:00:00"):
        first = RefreshTokenFactory(user=user, application=web_client)
    with freeze_time("2030-01-01 11:00:00"):
        second = RefreshTokenFactory(user=user, application=other)
    with freeze_time("2030-01-01 12:00:00"):
        lone = AccessTokenFactory(user=user, application=web_client, scope="files:read")
    AccessTokenFactory(application=web_client)  # someone else's
    return first, second, lone


def test_list_a_users_tokens(api, user, web_client, user_tokens):
    first, second, lone = user_tokens
    response = api.get(tokens_url(user))
    body = response.json()
    assert body["count"] == 5
    rows = [(t["type"], t["id"]) for t in body["results"]]
    assert rows == [
        ("access_token", lone.pk),
        ("access_token", second.access_token_id),
        ("refresh_token", second.pk),
        ("access_token", first.access_token_id),
        ("refresh_token", first.pk),
    ]
    assert set(body["results"][0]) == {"type", "id", "client_id", "scope", "created", "expires", "revoked"}
    assert body["results"][0]["client_id"] == web_client.client_id
    assert body["results"][0]["scope"] == "files:read"
    refresh_row = body["results"][2]
    assert refresh_row["scope"] == "files:read"  # its access token's
    assert refresh_row["created"] == "2030-01-01T11:00:00Z"
    assert refresh_row["expires"] == "2030-01-01T12:00:00Z"  # the Other client's 1 h lifetime
    assert refresh_row["revoked"] is None
    for token in (first, second, lone):
        assert token.raw_token.encode() not in response.content
        assert token.token_checksum.encode() not in response.content
    assert b"checksum" not in response.content


def test_token_list_filters_and_pages(api, user, web_client, user_tokens):
    assert api.get(tokens_url(user), {"type": "refresh_token"}).json()["count"] == 2
    assert api.get(tokens_url(user), {"type": "access_token"}).json()["count"] == 3
    assert api.get(tokens_url(user), {"client_id": web_client.client_id}).json()["count"] == 3
    page = api.get(tokens_url(user), {"page_size": 2, "page": 3}).json()
    assert page["count"] == 5 and len(page["results"]) == 1
    assert page["results"][0]["type"] == "refresh_token"
    assert_error(api.get(tokens_url(user), {"type": "id_token"}), 400)


def test_revoke_all_of_a_users_tokens(api, user, web_client, user_tokens):
    someone_else = AccessTokenFactory(application=web_client)
    Grant.objects.create(
        user=user,
        application=web_client,
        code="c0de",
        expires=timezone.now() + timedelta(minutes=1),
        redirect_uri="https://client.example.com/callback",
        code_challenge="x" * 43,
        code_challenge_method="S256",
    )
    consent = ConsentFactory(user=user, client=web_client, scope="files:read")
    assert send(api, "delete", tokens_url(user)).status_code == 204
    assert not AccessToken.objects.filter(user=user).exists()
    assert not RefreshToken.objects.filter(user=user, revoked__isnull=True).exists()
    assert RefreshToken.objects.filter(user=user).count() == 2
    assert not Grant.objects.filter(user=user).exists()
    assert AccessToken.objects.filter(pk=someone_else.pk).exists()
    consent.refresh_from_db()
    assert consent.is_active  # log out everywhere is not "forget my consents"
    revoked = [t for t in api.get(tokens_url(user)).json()["results"] if t["revoked"]]
    assert len(revoked) == 2


def test_revoke_a_refresh_token_revokes_its_grant(api, user, user_tokens):
    first, second, lone = user_tokens
    assert send(api, "delete", tokens_url(user, "refresh_token", first.pk)).status_code == 204
    first.refresh_from_db()
    assert first.revoked is not None
    assert not AccessToken.objects.filter(pk=first.access_token_id).exists()
    second.refresh_from_db()
    assert second.revoked is None
    assert AccessToken.objects.filter(pk=lone.pk).exists()


def test_revoke_an_access_token(api, user, user_tokens):
    first, second, lone = user_tokens
    assert send(api, "delete", tokens_url(user, "access_token", lone.pk)).status_code == 204
    assert not AccessToken.objects.filter(pk=lone.pk).exists()
    # An access token with a refresh token: the whole grant goes, or the refresh token would mint another.
    assert send(api, "delete", tokens_url(user, "access_token", second.access_token_id)).status_code == 204
    second.refresh_from_db()
    assert second.revoked is not None
    first.refresh_from_db()
    assert first.revoked is None


def test_read_one_token(api, user, user_tokens):
    first, second, lone = user_tokens
    body = api.get(tokens_url(user, "access_token", lone.pk)).json()
    assert body["id"] == lone.pk and body["type"] == "access_token"
    assert body["expires"] == "2030-01-01T13:00:00Z"
    assert api.get(tokens_url(user, "refresh_token", first.pk)).json()["id"] == first.pk


def test_token_404s(api, user, user_tokens):
    first, second, lone = user_tokens
    stranger = UserFactory()
    assert_error(send(api, "delete", tokens_url(stranger, "access_token", lone.pk)), 404)
    assert AccessToken.objects.filter(pk=lone.pk).exists()
    assert_error(send(api, "delete", tokens_url(user, "id_token", lone.pk)), 404)
    assert_error(send(api, "delete", tokens_url(user, "access_token", 999999)), 404)
    assert_error(send(api, "delete", tokens_url(user, "access_token", "abc")), 404)
    assert_error(api.get(tokens_url(user, "refresh_token", 10**30)), 404)


# --- unknown URLs ---------------------------------------------------------------------------------------
def test_unknown_urls_are_json_404(api):
    assert_error(api.get(API + "nothing/here/"), 404, "not_found")
    body = assert_error(api.get(API + "clients"), 404)
    assert "/oauth/api/clients/" in body["error_description"]  # the hint about the slash


# --- the OpenAPI document -------------------------------------------------------------------------------
EXPECTED_OPERATIONS = {
    ("/clients/", "get"),
    ("/clients/", "post"),
    ("/clients/{client_id}/", "get"),
    ("/clients/{client_id}/", "put"),
    ("/clients/{client_id}/", "patch"),
    ("/clients/{client_id}/", "delete"),
    ("/clients/{client_id}/rotate-secret/", "post"),
    ("/scopes/", "get"),
    ("/scopes/", "post"),
    ("/scopes/{name}/", "get"),
    ("/scopes/{name}/", "put"),
    ("/scopes/{name}/", "patch"),
    ("/scopes/{name}/", "delete"),
    ("/users/{user_id}/consents/", "get"),
    ("/users/{user_id}/consents/{client_id}/", "get"),
    ("/users/{user_id}/consents/{client_id}/", "delete"),
    ("/users/{user_id}/tokens/", "get"),
    ("/users/{user_id}/tokens/", "delete"),
    ("/users/{user_id}/tokens/{token_type}/{token_id}/", "get"),
    ("/users/{user_id}/tokens/{token_type}/{token_id}/", "delete"),
}


def test_the_openapi_document_is_valid_and_complete(api):
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.validation import validate_schema

    response = api.get(SCHEMA, {"format": "json"})
    assert response.status_code == 200, response.content
    assert "json" in response["Content-Type"]
    doc = json.loads(response.content)
    validate_schema(doc)
    assert not GENERATOR_STATS._warn_cache and not GENERATOR_STATS._error_cache
    assert doc["openapi"].startswith("3.")
    assert doc["servers"] == [{"url": "http://testserver/oauth/api"}]
    operations = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert operations == EXPECTED_OPERATIONS
    # Only this API: the site's other views never leak into the document.
    assert not any("schema" in path or "oauth" in path for path in doc["paths"])

    schemes = doc["components"]["securitySchemes"]
    assert schemes["adminToken"]["flows"]["clientCredentials"]["tokenUrl"] == "http://testserver/oauth/token/"
    assert "oauth:admin" in schemes["adminToken"]["flows"]["clientCredentials"]["scopes"]
    assert {"cookieAuth", "adminToken"} <= set(schemes)

    client_read = doc["components"]["schemas"]["Client"]["properties"]
    assert "client_secret" not in client_read
    assert "client_secret" in doc["components"]["schemas"]["ClientWithSecret"]["properties"]
    create = doc["paths"]["/clients/"]["post"]["responses"]
    assert create["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/ClientWithSecret")


def test_the_openapi_document_as_yaml(api):
    response = api.get(SCHEMA, {"format": "yaml"})
    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


def test_the_openapi_document_needs_the_api_auth(client, admin_token, db):
    assert_error(client.get(SCHEMA), 401)
    client.force_login(UserFactory())
    assert_error(client.get(SCHEMA), 403)
    assert client.get(SCHEMA, **bearer(admin_token.raw_token)).status_code == 200


def test_token_revocations_through_the_api_are_audited(
    api, user, user_tokens, django_capture_on_commit_callbacks
):
    first, second, lone = user_tokens
    with django_capture_on_commit_callbacks(execute=True):
        assert send(api, "delete", tokens_url(user, "refresh_token", first.pk)).status_code == 204
        assert send(api, "delete", tokens_url(user)).status_code == 204
    events = AuditEvent.objects.filter(event="token_revoked").order_by("pk")
    assert [(e.user_id, e.details.get("via"), e.details.get("token_type")) for e in events] == [
        (user.pk, "api", "refresh_token"),
        (user.pk, "api", None),
    ]
    assert events[0].client_id == first.application.client_id
    assert events[1].details["scope"] == "all"
