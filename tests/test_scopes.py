"""Scopes at the token endpoint and the database scopes backend (RFC 6749 3.3, 6)."""

from __future__ import annotations

import re

import pytest
from oauth2_provider.scopes import get_scopes_backend

from oauth_server.models import AccessToken, Scope
from oauth_server.scopes import DatabaseScopes
from tests.factories import ClientFactory, MachineClientFactory, ScopeFactory, pkce_pair
from tests.helpers import authorize_params, exchange_code, get_authorize, get_code, query, token_request

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


# --- invalid_scope says which scopes and why (error_description) ---------------------------------
# RFC 6749 5.2 / 4.1.2.1: error_description is ASCII %x20-21 / %x23-5B / %x5D-7E.
ERROR_DESCRIPTION_RE = re.compile(r"[\x20\x21\x23-\x5B\x5D-\x7E]+")


def description(response) -> str:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid_scope"
    assert ERROR_DESCRIPTION_RE.fullmatch(body["error_description"]), body
    return body["error_description"]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("does-not-exist", "Unknown scope: does-not-exist."),
        ("admin:all", "Scope not allowed for this client: admin:all."),
        ("global:default", "Scope not allowed for this client: global:default."),
        (
            "reports:read nope admin:all other admin:all",
            "Unknown scopes: nope other. Scope not allowed for this client: admin:all.",
        ),
        (
            "reports:read,reports:write",
            "Unknown scope: reports:read,reports:write. Separate scopes with spaces, not commas.",
        ),
    ],
)
def test_client_credentials_invalid_scope_names_the_scopes_and_why(client, scoped_machine, scope, expected):
    assert description(cc(client, scoped_machine, scope)) == expected
    assert not AccessToken.objects.exists()


def test_invalid_scope_description_never_echoes_what_is_not_a_scope_token(client, scoped_machine):
    """A value outside the scope-token grammar (non-ASCII, '"', '\\', over 100 characters) is
    counted, not shown: error_description must stay within RFC 6749's character set."""
    text = description(cc(client, scoped_machine, 'caf\u00e9 "quoted" back\\slash ' + "x" * 101 + " nope"))
    assert text == "Unknown scope: nope. 4 more refused (malformed or not shown)."


def test_invalid_scope_description_lists_at_most_ten_scopes(client, scoped_machine):
    names = [f"unknown:{i:02}" for i in range(30)]
    text = description(cc(client, scoped_machine, " ".join(names)))
    assert text == f"Unknown scopes: {' '.join(names[:10])}. 20 more refused (malformed or not shown)."


def test_refresh_invalid_scope_says_whether_the_scope_was_removed_or_never_granted(client, user, db):
    web = ClientFactory(scopes=["files:read", "files:write", "files:share"])
    client.force_login(user)
    code, verifier = get_code(client, web, scope="files:read files:write")
    tokens = exchange_code(client, web, code, verifier).json()
    web.allowed_scopes.remove(Scope.objects.get(name="files:write"))
    response = refresh(client, web, tokens["refresh_token"], scope="files:read files:write files:share nope")
    assert description(response) == (
        "Unknown scope: nope. Scope not allowed for this client: files:write. "
        "Scope not originally granted: files:share."
    )


def test_authorization_endpoint_invalid_scope_redirect_names_the_scopes(client, user, web_client):
    ScopeFactory(name="admin:all")
    client.force_login(user)
    params = authorize_params(web_client, challenge=pkce_pair()[1], scope="files:read admin:all nope")
    response = get_authorize(client, params)
    assert response.status_code == 302
    back = query(response["Location"])
    assert back["error"] == "invalid_scope"
    assert back["error_description"] == "Unknown scope: nope. Scope not allowed for this client: admin:all."


# --- the client and its scopes in one statement (Client.objects.with_scopes) -----------------------
def test_with_scopes_reads_names_and_default_flags_in_the_clients_own_select(db, django_assert_num_queries):
    from oauth_server.models import Client

    ScopeFactory(name="a:read", is_default=True)
    ScopeFactory(name='odd "name\\', is_default=False)
    ScopeFactory(name="other", is_default=True)  # not allowed for the client: never listed
    app = MachineClientFactory(scopes=["a:read", 'odd "name\\'])
    bare = MachineClientFactory(scopes=[])
    with django_assert_num_queries(1):
        loaded = {c.pk: c for c in Client.objects.with_scopes().filter(pk__in=[app.pk, bare.pk])}
        assert sorted(loaded[app.pk].scope_rows()) == [("a:read", True), ('odd "name\\', False)]
        assert loaded[bare.pk].scope_rows() == []


def test_a_client_loaded_without_the_annotation_reads_its_scopes_once(db, django_assert_num_queries):
    from oauth_server.models import Client

    ScopeFactory(name="b:read", is_default=False)
    app = Client.objects.get(pk=MachineClientFactory(scopes=["b:read"]).pk)
    with django_assert_num_queries(1):
        assert app.scope_rows() == [("b:read", False)]
        assert app.scope_rows() == [("b:read", False)]  # cached on the instance
