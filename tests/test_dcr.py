"""Dynamic client registration (RFC 7591) and management (RFC 7592): policies, metadata rules,
errors, the registration access token, and what a registered client can then do."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from oauth_server import registration
from oauth_server.conf import DEFAULTS
from oauth_server.models import (
    AccessToken,
    AuditEvent,
    Client,
    ClientRegistration,
    InitialAccessToken,
    RefreshToken,
)
from tests.factories import ScopeFactory
from tests.helpers import exchange_code, get_code

REGISTER = "/oauth/register/"
CALLBACK = "https://agent.example.com/callback"


def settings_with(**values):
    return override_settings(OAUTH_SERVER={**DEFAULTS, **values})


def open_policy():
    return settings_with(REGISTRATION_POLICY="open")


def post(client, body, *, token=None, content_type="application/json", raw=None):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    data = raw if raw is not None else json.dumps(body)
    return client.generic("POST", REGISTER, data, content_type=content_type, **extra)


def manage(client, method, uri, token, body=None):
    data = json.dumps(body) if body is not None else ""
    return client.generic(
        method, uri, data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )


def public_metadata(**extra):
    return {
        "client_name": "Agent",
        "redirect_uris": [CALLBACK],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        **extra,
    }


@pytest.fixture
def scopes(db):
    return [ScopeFactory(name=n) for n in ("files:read", "files:write", "oauth:admin")]


def assert_error(response, error, status=400):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == error
    assert isinstance(body["error_description"], str) and body["error_description"]
    assert response["Cache-Control"] == "no-store"
    return body


def assert_nothing_saved():
    assert not Client.objects.filter(registration_source="dcr").exists()
    assert not ClientRegistration.objects.exists()


# --- policies -------------------------------------------------------------------------------------
def test_default_policy_is_initial_access_token():
    assert DEFAULTS["REGISTRATION_POLICY"] == "initial_access_token"


def test_closed_policy_answers_404_and_is_not_advertised(client, db):
    with settings_with(REGISTRATION_POLICY="closed"):
        response = post(client, public_metadata())
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        metadata = client.get("/oauth/.well-known/oauth-authorization-server").json()
        assert "registration_endpoint" not in metadata
    assert_nothing_saved()


@pytest.mark.parametrize("policy", ["open", "initial_access_token"])
def test_registration_endpoint_is_advertised_unless_closed(client, db, policy):
    with settings_with(REGISTRATION_POLICY=policy):
        for url in (
            "/oauth/.well-known/oauth-authorization-server",
            "/oauth/.well-known/openid-configuration",
        ):
            metadata = client.get(url).json()
            assert metadata["registration_endpoint"] == "http://testserver/oauth/register/"


def test_initial_access_token_policy_refuses_without_a_token(client, scopes):
    response = post(client, public_metadata())
    assert_error(response, "invalid_token", 401)
    assert response["WWW-Authenticate"] == "Bearer"
    assert_nothing_saved()


def test_initial_access_token_policy_refuses_a_wrong_token(client, scopes):
    registration.create_initial_access_token(expires_in=60)
    response = post(client, public_metadata(), token="not-the-token")
    assert_error(response, "invalid_token", 401)
    assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert_nothing_saved()


def test_initial_access_token_registers_once_by_default(client, scopes):
    raw, row = registration.create_initial_access_token(expires_in=60)
    assert post(client, public_metadata(), token=raw).status_code == 201
    row.refresh_from_db()
    assert row.use_count == 1
    assert ClientRegistration.objects.get().initial_access_token == row
    assert_error(post(client, public_metadata(), token=raw), "invalid_token", 401)
    assert Client.objects.filter(registration_source="dcr").count() == 1


def test_multi_use_initial_access_token(client, scopes):
    raw, _row = registration.create_initial_access_token(expires_in=60, max_uses=None)
    for _ in range(3):
        assert post(client, public_metadata(), token=raw).status_code == 201
    assert Client.objects.filter(registration_source="dcr").count() == 3


def test_expired_initial_access_token_is_refused(client, scopes):
    raw, row = registration.create_initial_access_token(expires_in=60)
    InitialAccessToken.objects.filter(pk=row.pk).update(expires_at=row.created.replace(year=2000))
    assert_error(post(client, public_metadata(), token=raw), "invalid_token", 401)
    assert_nothing_saved()


def test_a_refused_registration_does_not_spend_the_initial_access_token(client, scopes):
    raw, row = registration.create_initial_access_token(expires_in=60)
    assert_error(
        post(client, public_metadata(redirect_uris=["http://evil.example/cb"]), token=raw),
        "invalid_redirect_uri",
    )
    row.refresh_from_db()
    assert row.use_count == 0
    assert post(client, public_metadata(), token=raw).status_code == 201


def test_initial_access_token_is_stored_hashed(db):
    raw, row = registration.create_initial_access_token(expires_in=60)
    assert raw not in json.dumps(list(InitialAccessToken.objects.values()), default=str)
    assert row.token_checksum == registration.checksum(raw)


# --- a successful registration --------------------------------------------------------------------
@open_policy()
def test_open_registration_of_a_public_client(client, scopes):
    response = post(client, public_metadata(scope="files:read"))
    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    stored = Client.objects.get(client_id=body["client_id"])
    assert stored.registration_source == "dcr"
    assert stored.client_type == Client.CLIENT_PUBLIC
    assert stored.token_endpoint_auth_method == "none"
    assert stored.skip_consent is False
    assert stored.grant_types == ["authorization_code", "refresh_token"]
    assert stored.redirect_uri_list == [CALLBACK]
    assert [s.name for s in stored.allowed_scopes.all()] == ["files:read"]
    assert body["redirect_uris"] == [CALLBACK]
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["response_types"] == ["code"]
    assert body["token_endpoint_auth_method"] == "none"
    assert body["client_name"] == "Agent"
    assert body["scope"] == "files:read"
    assert isinstance(body["client_id_issued_at"], int)
    assert "client_secret" not in body
    assert body["registration_client_uri"] == f"http://testserver/oauth/register/{stored.client_id}/"
    token = body["registration_access_token"]
    assert ClientRegistration.objects.get(client=stored).access_token_checksum == registration.checksum(token)
    assert token not in json.dumps(list(ClientRegistration.objects.values()), default=str)


@open_policy()
def test_confidential_registration_returns_a_secret_once_stored_hashed(client, scopes):
    response = post(client, public_metadata(token_endpoint_auth_method="client_secret_post"))
    assert response.status_code == 201, response.content
    body = response.json()
    stored = Client.objects.get(client_id=body["client_id"])
    assert stored.client_type == Client.CLIENT_CONFIDENTIAL
    assert stored.token_endpoint_auth_method == "client_secret_post"
    assert stored.check_secret(body["client_secret"])
    assert body["client_secret"] not in stored.client_secret
    assert body["client_secret_expires_at"] == 0


@open_policy()
def test_defaults_follow_rfc_7591(client, scopes):
    """No grant_types: authorization_code; no auth method: client_secret_basic; no scope: the
    self-registered set (never the admin scope)."""
    response = post(client, {"redirect_uris": [CALLBACK]})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["grant_types"] == ["authorization_code"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["scope"] == "email files:read files:write offline_access openid profile"  # 0002's too
    assert "oauth:admin" not in body["scope"].split()
    assert "client_secret" in body


@open_policy()
def test_unknown_members_are_ignored_and_not_returned(client, scopes):
    response = post(client, public_metadata(color="blue", jwks_uri="https://x.example/jwks"))
    assert response.status_code == 201
    assert "color" not in response.json() and "jwks_uri" not in response.json()


@open_policy()
def test_contacts_and_software_fields_are_kept_and_returned(client, scopes):
    response = post(
        client, public_metadata(contacts=["ops@agent.example"], software_id="agent", software_version="1.2")
    )
    body = response.json()
    assert body["contacts"] == ["ops@agent.example"]
    assert body["software_id"] == "agent" and body["software_version"] == "1.2"


@open_policy()
def test_self_registered_audiences_are_given(client, scopes):
    with settings_with(REGISTRATION_POLICY="open", SELF_REGISTERED_AUDIENCES=["https://mcp.example/mcp"]):
        body = post(client, public_metadata()).json()
    assert Client.objects.get(client_id=body["client_id"]).audiences == ["https://mcp.example/mcp"]


@open_policy()
def test_loopback_http_redirect_uris_are_allowed(client, scopes):
    uris = ["http://127.0.0.1:33418/callback", "http://[::1]:8080/cb", "http://localhost:3000/callback"]
    response = post(client, public_metadata(redirect_uris=uris))
    assert response.status_code == 201, response.content
    assert response.json()["redirect_uris"] == uris


@open_policy()
def test_registration_is_audited(client, scopes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        body = post(client, public_metadata()).json()
    event = AuditEvent.objects.get(event="client_registered")
    assert event.client_id == body["client_id"]
    assert event.details["redirect_uris"] == [CALLBACK]


# --- the registered client works ------------------------------------------------------------------
@open_policy()
def test_a_registered_public_client_gets_tokens_after_consent(client, scopes, user):
    body = post(client, public_metadata(scope="files:read")).json()
    registered = Client.objects.get(client_id=body["client_id"])
    client.force_login(user)
    code, verifier = get_code(client, registered, scope="files:read")
    tokens = exchange_code(client, registered, code, verifier)
    assert tokens.status_code == 200, tokens.content
    assert tokens.json()["scope"] == "files:read"


# --- metadata errors: RFC 7591 3.2.2, nothing saved ------------------------------------------------
HOSTILE = [
    ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://*.example.com/cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://agent.example.com/cb#frag"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["http://agent.example.com/cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://good.example@evil.example/cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://agent.example.com/c\x00b"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["com.example.app:/cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["/relative"]}, "invalid_redirect_uri"),
    ({"redirect_uris": [CALLBACK + "/" + "a" * 3000]}, "invalid_redirect_uri"),
    ({"redirect_uris": [f"https://a.example/{i}" for i in range(1000)]}, "invalid_redirect_uri"),
    ({"redirect_uris": CALLBACK}, "invalid_redirect_uri"),
    ({"redirect_uris": [1]}, "invalid_redirect_uri"),
    ({"redirect_uris": []}, "invalid_redirect_uri"),
    ({"grant_types": ["implicit"]}, "invalid_client_metadata"),
    ({"grant_types": ["password"]}, "invalid_client_metadata"),
    ({"grant_types": ["client_credentials"]}, "invalid_client_metadata"),
    ({"grant_types": "authorization_code"}, "invalid_client_metadata"),
    ({"grant_types": []}, "invalid_client_metadata"),
    ({"grant_types": ["refresh_token"], "response_types": []}, "invalid_client_metadata"),
    ({"response_types": ["token"]}, "invalid_client_metadata"),
    ({"response_types": []}, "invalid_client_metadata"),
    ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
    ({"token_endpoint_auth_method": ["none"]}, "invalid_client_metadata"),
    ({"scope": "oauth:admin"}, "invalid_client_metadata"),
    ({"scope": "files:read oauth:admin"}, "invalid_client_metadata"),
    ({"scope": "unknown:scope"}, "invalid_client_metadata"),
    ({"scope": ["files:read"]}, "invalid_client_metadata"),
    ({"scope": "files:read\x00"}, "invalid_client_metadata"),
    ({"skip_consent": True}, "invalid_client_metadata"),
    ({"is_enabled": True}, "invalid_client_metadata"),
    ({"audiences": ["https://api.example.com"]}, "invalid_client_metadata"),
    ({"client_id": "chosen"}, "invalid_client_metadata"),
    ({"client_secret": "x" * 40}, "invalid_client_metadata"),
    ({"client_name": "Evil\x00"}, "invalid_client_metadata"),
    ({"client_name": "x" * 256}, "invalid_client_metadata"),
    ({"client_name": {"en": "Agent"}}, "invalid_client_metadata"),
    ({"logo_uri": "javascript:alert(1)"}, "invalid_client_metadata"),
    ({"client_uri": "http://agent.example.com"}, "invalid_client_metadata"),
    ({"policy_uri": "data:text/html,hi"}, "invalid_client_metadata"),
    ({"tos_uri": 42}, "invalid_client_metadata"),
    ({"contacts": ["not an email"]}, "invalid_client_metadata"),
    ({"contacts": ["a@example.com"] * 11}, "invalid_client_metadata"),
    ({"software_statement": "eyJhbGciOiJub25lIn0.e30."}, "invalid_software_statement"),
]


@open_policy()
@pytest.mark.parametrize(("override", "error"), HOSTILE, ids=[repr(o)[:60] for o, _ in HOSTILE])
def test_hostile_metadata_is_refused_and_nothing_saved(client, scopes, override, error):
    response = post(client, public_metadata(**override))
    assert_error(response, error)
    assert_nothing_saved()


@open_policy()
def test_client_credentials_for_a_public_client_is_refused_even_when_allowed(client, scopes):
    with settings_with(
        REGISTRATION_POLICY="open",
        SELF_REGISTERED_GRANT_TYPES=["authorization_code", "refresh_token", "client_credentials"],
    ):
        refused = post(client, public_metadata(grant_types=["client_credentials"], response_types=[]))
        assert_error(refused, "invalid_client_metadata")
        allowed = post(
            client,
            {"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_basic"},
        )
    assert allowed.status_code == 201, allowed.content
    assert Client.objects.get(client_id=allowed.json()["client_id"]).grant_types == ["client_credentials"]


@open_policy()
def test_self_registered_scopes_setting_limits_scopes(client, scopes):
    with settings_with(REGISTRATION_POLICY="open", SELF_REGISTERED_SCOPES=["files:read", "oauth:admin"]):
        assert registration.self_registered_scopes() == ["files:read"]
        assert_error(post(client, public_metadata(scope="files:write")), "invalid_client_metadata")
        assert post(client, public_metadata()).json()["scope"] == "files:read"


@open_policy()
@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        ("not json", "application/json"),
        ("[1, 2]", "application/json"),
        ('"a string"', "application/json"),
        ("null", "application/json"),
        ("[" * 100000, "application/json"),
        ('{"client_name": "\\ud800"}', "application/json"),
        (b'{"client_name": "\xff"}', "application/json"),
        ("{" + '"a": 1,' * 10 + '"redirect_uris": ["' + "x" * 40000 + '"]}', "application/json"),
        ("redirect_uris=https://a.example/cb", "application/x-www-form-urlencoded"),
        ("", "text/plain"),
    ],
)
def test_unreadable_bodies_are_invalid_client_metadata(client, scopes, raw, content_type):
    response = post(client, None, raw=raw, content_type=content_type)
    assert_error(response, "invalid_client_metadata")
    assert_nothing_saved()


@open_policy()
def test_refusals_are_audited(client, scopes):
    post(client, public_metadata(skip_consent=True))
    event = AuditEvent.objects.get(event="client_registration_refused")
    assert event.outcome == "failure"
    assert event.details["error"] == "invalid_client_metadata"


@open_policy()
def test_wrong_method_is_a_json_405(client, db):
    response = client.get(REGISTER)
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"
    assert "POST" in response["Allow"]


# --- rate limit -----------------------------------------------------------------------------------
def test_open_registration_is_rate_limited_per_ip(client, scopes):
    limits = {**DEFAULTS["RATE_LIMITS"], "register": "2/h"}
    with settings_with(REGISTRATION_POLICY="open", RATE_LIMITS=limits):
        assert post(client, public_metadata()).status_code == 201
        assert post(client, public_metadata()).status_code == 201
        third = post(client, public_metadata())
    assert third.status_code == 429
    assert third.json()["error"] == "too_many_requests"
    assert int(third["Retry-After"]) > 0
    assert Client.objects.filter(registration_source="dcr").count() == 2


# --- CORS: browser-based clients register themselves ----------------------------------------------
@open_policy()
def test_any_origin_may_register_without_credentials(client, scopes):
    preflight = client.options(
        REGISTER,
        HTTP_ORIGIN="https://inspector.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, authorization",
    )
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in preflight["Access-Control-Allow-Headers"].lower()
    response = client.generic(
        "POST",
        REGISTER,
        json.dumps(public_metadata()),
        content_type="application/json",
        HTTP_ORIGIN="https://inspector.example",
    )
    assert response.status_code == 201
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response


# --- RFC 7592: read, update, delete ---------------------------------------------------------------
@pytest.fixture
def registered(client, scopes):
    with open_policy():
        body = post(client, public_metadata(scope="files:read")).json()
    return body


@open_policy()
def test_read_returns_the_registration(client, registered):
    response = manage(
        client, "GET", registered["registration_client_uri"], registered["registration_access_token"]
    )
    assert response.status_code == 200
    body = response.json()
    assert body["client_id"] == registered["client_id"]
    assert body["registration_access_token"] == registered["registration_access_token"]
    assert body["redirect_uris"] == [CALLBACK]
    assert response["Cache-Control"] == "no-store"


@open_policy()
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_management_needs_the_right_token(client, registered, method, scopes):
    uri = registered["registration_client_uri"]
    body = {**public_metadata(), "client_id": registered["client_id"]}
    assert_error(
        client.generic(method, uri, json.dumps(body), content_type="application/json"), "invalid_token", 401
    )
    assert_error(manage(client, method, uri, "wrong", body), "invalid_token", 401)
    # Another client's token, and an unknown client, are the same 401 (RFC 7592 2: no probing).
    other = post(client, public_metadata()).json()
    assert_error(manage(client, method, uri, other["registration_access_token"], body), "invalid_token", 401)
    unknown = reverse("oauth2_provider:register-client", kwargs={"client_id": "nope"})
    assert_error(
        manage(client, method, unknown, registered["registration_access_token"], body), "invalid_token", 401
    )
    assert Client.objects.filter(client_id=registered["client_id"]).exists()


@open_policy()
def test_management_is_for_dcr_clients_only(client, registered):
    Client.objects.filter(client_id=registered["client_id"]).update(registration_source="manual")
    response = manage(
        client, "GET", registered["registration_client_uri"], registered["registration_access_token"]
    )
    assert_error(response, "invalid_token", 401)


@open_policy()
def test_update_replaces_metadata_and_rotates_the_token(
    client, registered, django_capture_on_commit_callbacks
):
    uri, old = registered["registration_client_uri"], registered["registration_access_token"]
    new_uri = "https://agent.example.com/other"
    body = public_metadata(client_id=registered["client_id"], redirect_uris=[new_uri], client_name="Renamed")
    with django_capture_on_commit_callbacks(execute=True):
        response = manage(client, "PUT", uri, old, body)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["redirect_uris"] == [new_uri] and data["client_name"] == "Renamed"
    stored = Client.objects.get(client_id=registered["client_id"])
    assert stored.redirect_uri_list == [new_uri] and stored.name == "Renamed"
    # RFC 7592 2.2: an omitted member is removed; here scope goes back to the default set.
    assert data["scope"] == " ".join(registration.self_registered_scopes())
    new = data["registration_access_token"]
    assert new != old
    assert_error(manage(client, "GET", uri, old), "invalid_token", 401)
    assert manage(client, "GET", uri, new).status_code == 200
    event = AuditEvent.objects.get(event="client_registration_updated")
    assert "redirect_uris" in event.details["changed"] and "name" in event.details["changed"]


@open_policy()
@pytest.mark.parametrize(
    "change",
    [
        {"client_id": "another"},
        {"client_id": None},
        {"client_secret": "guess"},
        {"redirect_uris": ["https://*.example/cb"]},
        {"skip_consent": True},
        {"token_endpoint_auth_method": "client_secret_basic"},  # public -> confidential
        {"scope": "oauth:admin"},
    ],
)
def test_a_refused_update_changes_nothing(client, registered, change):
    uri, token = registered["registration_client_uri"], registered["registration_access_token"]
    before = list(Client.objects.filter(client_id=registered["client_id"]).values())
    checksum = ClientRegistration.objects.get().access_token_checksum
    body = {**public_metadata(client_id=registered["client_id"]), **change}
    if change.get("client_id", "") is None:
        del body["client_id"]
    response = manage(client, "PUT", uri, token, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"] in ("invalid_client_metadata", "invalid_redirect_uri")
    assert list(Client.objects.filter(client_id=registered["client_id"]).values()) == before
    assert ClientRegistration.objects.get().access_token_checksum == checksum


@open_policy()
def test_delete_removes_the_client_and_its_tokens_stop_working(
    client, registered, user, django_capture_on_commit_callbacks
):
    stored = Client.objects.get(client_id=registered["client_id"])
    client.force_login(user)
    code, verifier = get_code(client, stored, scope="files:read")
    tokens = exchange_code(client, stored, code, verifier).json()
    uri, token = registered["registration_client_uri"], registered["registration_access_token"]
    with django_capture_on_commit_callbacks(execute=True):
        response = manage(client, "DELETE", uri, token)
    assert response.status_code == 204
    assert not Client.objects.filter(pk=stored.pk).exists()
    assert not ClientRegistration.objects.exists()
    assert not AccessToken.objects.filter(application_id=stored.pk).exists()
    assert not RefreshToken.objects.filter(application_id=stored.pk).exists()
    # The refresh token is refused, UserInfo refuses the access token, and the token is gone.
    refreshed = client.post(
        "/oauth/token/",
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": stored.client_id,
        },
    )
    assert refreshed.status_code in (400, 401)
    userinfo = client.get("/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert userinfo.status_code == 401
    assert_error(manage(client, "GET", uri, token), "invalid_token", 401)
    assert AuditEvent.objects.filter(event="client_registration_deleted", client_id=stored.client_id).exists()


def test_closed_policy_closes_management_too(client, registered):
    with settings_with(REGISTRATION_POLICY="closed"):
        response = manage(
            client, "GET", registered["registration_client_uri"], registered["registration_access_token"]
        )
    assert response.status_code == 404


# --- create_registration_token ------------------------------------------------------------------------
def test_create_registration_token_json(db, capsys, client, scopes):
    call_command("create_registration_token", "--expires-in", "600", "--json")
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"token", "expires_at"}
    row = InitialAccessToken.objects.get()
    assert row.token_checksum == registration.checksum(printed["token"])
    assert row.expires_at.isoformat() == printed["expires_at"]
    assert row.max_uses == 1
    assert post(client, public_metadata(), token=printed["token"]).status_code == 201


def test_create_registration_token_options(db, capsys):
    call_command("create_registration_token", "--expires-in", "0", "--uses", "0", "--description", "ci")
    out = capsys.readouterr()
    row = InitialAccessToken.objects.get()
    assert out.out.strip() and registration.checksum(out.out.strip()) == row.token_checksum
    assert row.expires_at is None and row.max_uses is None and row.description == "ci"


@pytest.mark.parametrize("args", [["--expires-in", "-1"], ["--uses", "-2"]])
def test_create_registration_token_refuses_bad_values(db, args):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_registration_token", *args)
    assert not InitialAccessToken.objects.exists()


# --- purge_registrations ----------------------------------------------------------------------------
def _aged(client, days):
    from datetime import timedelta

    from django.utils import timezone

    Client.objects.filter(pk=client.pk).update(created=timezone.now() - timedelta(days=days))
    return client


@pytest.fixture
def population(db):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import AccessTokenFactory, ClientFactory, PublicClientFactory, RefreshTokenFactory

    old_unused = _aged(PublicClientFactory(name="old-unused", registration_source="dcr"), 40)
    old_cimd = _aged(
        PublicClientFactory(
            name="old-cimd", registration_source="cimd", client_id="https://d.example/c.json"
        ),
        40,
    )
    old_used = _aged(PublicClientFactory(name="old-used", registration_source="dcr"), 40)
    token = AccessTokenFactory(application=old_used)
    AccessToken.objects.filter(pk=token.pk).update(created=timezone.now() - timedelta(days=5))
    old_refreshed = _aged(PublicClientFactory(name="old-refreshed", registration_source="dcr"), 40)
    RefreshTokenFactory(application=old_refreshed)
    old_stale_token = _aged(PublicClientFactory(name="old-stale-token", registration_source="dcr"), 40)
    stale = AccessTokenFactory(application=old_stale_token)
    AccessToken.objects.filter(pk=stale.pk).update(created=timezone.now() - timedelta(days=35))
    young = _aged(PublicClientFactory(name="young", registration_source="dcr"), 5)
    manual = _aged(ClientFactory(name="manual"), 400)
    return {
        "purged": {old_unused.pk, old_cimd.pk, old_stale_token.pk},
        "kept": {old_used.pk, old_refreshed.pk, young.pk, manual.pk},
    }


def test_purge_registrations_dry_run_deletes_nothing(population, capsys):
    call_command("purge_registrations", "--unused-days", "30", "--dry-run")
    out = capsys.readouterr().out
    assert "3 unused self-registered client(s) would be deleted" in out
    assert Client.objects.filter(pk__in=population["purged"]).count() == 3


def test_purge_registrations_deletes_only_unused_self_registered_clients(
    population, capsys, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_registrations", "--unused-days", "30")
    assert "Deleted 3" in capsys.readouterr().out
    assert not Client.objects.filter(pk__in=population["purged"]).exists()
    assert Client.objects.filter(pk__in=population["kept"]).count() == len(population["kept"])
    events = AuditEvent.objects.filter(event="client_registration_deleted")
    assert events.count() == 3 and all(e.details["via"] == "purge" for e in events)
    assert not AccessToken.objects.filter(application_id__in=population["purged"]).exists()


def test_purge_registrations_refuses_bad_days(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("purge_registrations", "--unused-days", "0")


# --- system check ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values",
    [
        {"REGISTRATION_POLICY": "opne"},
        {"SELF_REGISTERED_GRANT_TYPES": ["implicit"]},
        {"SELF_REGISTERED_GRANT_TYPES": "authorization_code"},
        {"SELF_REGISTERED_SCOPES": "files:read"},
        {"SELF_REGISTERED_AUDIENCES": ["not a uri"]},
    ],
)
def test_invalid_registration_settings_are_e004(values):
    from oauth_server.checks import check_registration_settings

    with settings_with(**values):
        assert [e.id for e in check_registration_settings()] == ["oauth_server.E005"]


def test_default_registration_settings_pass_the_check():
    from oauth_server.checks import check_registration_settings

    assert check_registration_settings() == []


def test_an_unknown_policy_is_treated_as_closed(client, db):
    with settings_with(REGISTRATION_POLICY="opne"):
        assert registration.policy() == "closed"
        assert post(client, public_metadata()).status_code == 404


# --- RFC 8707: a registered client may ask for the self-registered audiences ---------------------------
def test_a_registered_client_may_request_a_self_registered_audience(client, scopes, user):
    mcp = "https://mcp.example/mcp/"
    with settings_with(REGISTRATION_POLICY="open", SELF_REGISTERED_AUDIENCES=[mcp]):
        body = post(client, public_metadata(scope="files:read")).json()
    registered = Client.objects.get(client_id=body["client_id"])
    client.force_login(user)
    code, verifier = get_code(client, registered, scope="files:read", resource=mcp)
    tokens = exchange_code(client, registered, code, verifier, resource=mcp)
    assert tokens.status_code == 200, tokens.content
    import base64

    payload = tokens.json()["access_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["aud"] in (mcp, [mcp])


def test_without_self_registered_audiences_a_resource_is_refused(client, scopes, user):
    with open_policy():
        body = post(client, public_metadata(scope="files:read")).json()
    registered = Client.objects.get(client_id=body["client_id"])
    client.force_login(user)
    from tests.factories import pkce_pair
    from tests.helpers import authorize_params, get_authorize, query

    _verifier, challenge = pkce_pair()
    response = get_authorize(
        client,
        authorize_params(
            registered, challenge=challenge, scope="files:read", resource="https://mcp.example/"
        ),
    )
    assert response.status_code == 302
    assert query(response["Location"])["error"] == "invalid_target"
