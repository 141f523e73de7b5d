"""Scopes at the token endpoint and the database scopes backend (RFC 6749 3.3, 6)."""

from __future__ import annotations

import pytest
from oauth2_provider.scopes import get_scopes_backend

from oauth_server.models import AccessToken, Scope
from oauth_server.scopes import DatabaseScopes
from tests.factories import ClientFactory, MachineClientFactory, ScopeFactory
from tests.helpers import exchange_code, get_code, token_request

CC = {"grant_type": "client_credentials"}


def cc(browser, client, scope: str | None = None):
    data = dict(CC) if scope is None else {**CC, "scope": scope}
    return token_request(browser, data, client=client, secret=client.raw_secret)


def assert_invalid_scope(response) -> None:
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_scope"
    assert not AccessToken.objects.exists()


@pytest.fixture
def scoped_machine(db):
    """Allowed: reports:read (default), reports:write; global:default is a default it is not allowed."""
    read = ScopeFactory(name="reports:read", is_default=True)
    write = ScopeFactory(name="reports:write")
    ScopeFactory(name="global:default", is_default=True)
    ScopeFactory(name="admin:all")
    return MachineClientFactory(scopes=[read, write])


# --- client_credentials -------------------------------------------------------------------------
def test_no_scope_requested_gives_the_clients_default_scopes(client, scoped_machine):
    response = cc(client, scoped_machine)
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "reports:read"
    assert AccessToken.objects.get().scope == "reports:read"


def test_requested_allowed_scopes_are_granted(client, scoped_machine):
    response = cc(client, scoped_machine, "reports:read reports:write")
    assert response.status_code == 200, response.content
    assert set(response.json()["scope"].split()) == {"reports:read", "reports:write"}


def test_non_default_allowed_scope_alone(client, scoped_machine):
    response = cc(client, scoped_machine, "reports:write")
    assert response.json()["scope"] == "reports:write"


def test_existing_scope_not_allowed_for_the_client_is_invalid_scope(client, scoped_machine):
    assert_invalid_scope(cc(client, scoped_machine, "admin:all"))


def test_default_scope_not_allowed_for_the_client_is_invalid_scope(client, scoped_machine):
    assert_invalid_scope(cc(client, scoped_machine, "global:default"))


def test_unknown_scope_is_invalid_scope(client, scoped_machine):
    assert_invalid_scope(cc(client, scoped_machine, "does-not-exist"))


def test_one_bad_scope_spoils_the_request(client, scoped_machine):
    assert_invalid_scope(cc(client, scoped_machine, "reports:read admin:all"))


def test_scope_names_are_case_sensitive(client, scoped_machine):
    assert_invalid_scope(cc(client, scoped_machine, "REPORTS:READ"))


def test_client_with_no_default_scopes_gets_an_empty_scope(client, db):
    """RFC 6749 3.3 lets the server use a pre-defined default; ours is the (empty) default set."""
    machine = MachineClientFactory(scopes=[ScopeFactory(name="reports:read")])
    response = cc(client, machine)
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == ""


def test_removing_a_scope_from_the_client_takes_effect_on_the_next_request(client, scoped_machine):
    assert cc(client, scoped_machine, "reports:write").status_code == 200
    scoped_machine.allowed_scopes.remove(Scope.objects.get(name="reports:write"))
    AccessToken.objects.all().delete()
    assert_invalid_scope(cc(client, scoped_machine, "reports:write"))


# --- refresh: the client's allowed set still applies ----------------------------------------------
@pytest.fixture
def refreshable(client, user, web_client):
    client.force_login(user)
    code, verifier = get_code(client, web_client, scope="files:read files:write")
    return exchange_code(client, web_client, code, verifier).json()


def refresh(browser, client, refresh_token: str, **extra: str):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return token_request(browser, data, client=client, secret=client.raw_secret)


def test_refresh_without_scope_keeps_the_original_scopes(client, web_client, refreshable):
    response = refresh(client, web_client, refreshable["refresh_token"])
    assert set(response.json()["scope"].split()) == {"files:read", "files:write"}


def test_refresh_drops_scopes_removed_from_the_client(client, web_client, refreshable):
    web_client.allowed_scopes.remove(Scope.objects.get(name="files:write"))
    response = refresh(client, web_client, refreshable["refresh_token"])
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "files:read"


def test_refresh_asking_for_a_scope_removed_from_the_client_is_invalid_scope(client, web_client, refreshable):
    web_client.allowed_scopes.remove(Scope.objects.get(name="files:write"))
    response = refresh(client, web_client, refreshable["refresh_token"], scope="files:write")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_refresh_drops_deleted_scopes(client, web_client, refreshable):
    Scope.objects.filter(name="files:write").delete()
    response = refresh(client, web_client, refreshable["refresh_token"])
    assert response.json()["scope"] == "files:read"


def test_refresh_cannot_add_an_allowed_scope_that_was_not_granted(client, user, db):
    web = ClientFactory(scopes=["files:read", "files:write"])
    client.force_login(user)
    code, verifier = get_code(client, web, scope="files:read")
    first = exchange_code(client, web, code, verifier).json()
    response = refresh(client, web, first["refresh_token"], scope="files:write")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


# --- the backend ---------------------------------------------------------------------------------
def test_dot_uses_the_database_backend():
    assert isinstance(get_scopes_backend(), DatabaseScopes)


def test_backend_reads_the_database(scoped_machine):
    backend = DatabaseScopes()
    everything = backend.get_all_scopes()
    # The migrations seed the OpenID Connect scopes (openid, profile, email, offline_access).
    assert everything == dict(Scope.objects.values_list("name", "description"))
    assert everything["reports:read"] == "Use reports:read"
    assert {"admin:all", "global:default", "reports:read", "reports:write"} <= set(everything)
    assert sorted(backend.get_available_scopes()) == sorted(everything)
    assert sorted(backend.get_default_scopes()) == sorted(
        Scope.objects.filter(is_default=True).values_list("name", flat=True)
    )
    assert {"global:default", "reports:read"} <= set(backend.get_default_scopes())
    assert "reports:write" not in backend.get_default_scopes()
    assert sorted(backend.get_available_scopes(application=scoped_machine)) == [
        "reports:read",
        "reports:write",
    ]
    assert backend.get_default_scopes(application=scoped_machine) == ["reports:read"]


def test_backend_queries_a_clients_scopes_once_per_instance(scoped_machine, django_assert_num_queries):
    backend = DatabaseScopes()
    with django_assert_num_queries(1):
        backend.get_available_scopes(application=scoped_machine)
        backend.get_default_scopes(application=scoped_machine)
        backend.get_available_scopes(application=scoped_machine)


def test_new_scope_is_available_without_a_restart(client, db):
    machine = MachineClientFactory()
    assert_invalid_scope(cc(client, machine, "fresh:scope"))
    machine.allowed_scopes.add(ScopeFactory(name="fresh:scope"))
    assert cc(client, machine, "fresh:scope").json()["scope"] == "fresh:scope"


def test_metadata_lists_the_database_scopes(client, scoped_machine):
    meta = client.get("/oauth/.well-known/oauth-authorization-server").json()
    assert meta["scopes_supported"] == sorted(Scope.objects.values_list("name", flat=True))
    assert {"admin:all", "global:default", "reports:read", "reports:write"} <= set(meta["scopes_supported"])
