"""The management API checks Django's permissions for every action (security review, issue 9).

Being staff only lets a person call the API, as it only lets them into the admin; what they may do
there is what their Django permissions say, action by action (the table in docs/management-api.md,
mirrored by ``ACTIONS`` below). A machine token acts with the permissions of its client's owner,
the service account. Setting ``skip_consent`` and giving an existing client a new secret need
dedicated permissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client as BrowserClient

from oauth_server import hashers
from oauth_server.models import AccessToken, Client, Consent, RefreshToken, Scope
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
    bearer,
    grant_permissions,
    send,
    service_account,
    signed_in,
    token_request,
)

VIEW_CLIENT = "oauth_server.view_client"
ADD_CLIENT = "oauth_server.add_client"
CHANGE_CLIENT = "oauth_server.change_client"
DELETE_CLIENT = "oauth_server.delete_client"
TRUSTED = "oauth_server.manage_trusted_client"
SECRET = "oauth_server.issue_client_secret"
TOKEN_REVOKE = [
    ("oauth_server.change_accesstoken", "oauth_server.delete_accesstoken"),
    ("oauth_server.change_refreshtoken", "oauth_server.delete_refreshtoken"),
]


@dataclass
class World:
    user: Any
    web: Client
    scope: Scope
    consent: Consent
    refresh: RefreshToken
    access: AccessToken


@pytest.fixture
def world(db) -> World:
    user = UserFactory()
    web = ClientFactory(scopes=["files:read"])
    refresh = RefreshTokenFactory(user=user, application=web)
    return World(
        user=user,
        web=web,
        scope=ScopeFactory(name="files:read"),
        consent=ConsentFactory(user=user, client=web, scope="files:read"),
        refresh=refresh,
        access=AccessTokenFactory(user=user, application=web, scope="files:read"),
    )


def new_client_body() -> dict[str, Any]:
    return {
        "name": "Reporting app",
        "client_type": "confidential",
        "grant_types": ["authorization_code"],
        "redirect_uris": ["https://app.example.com/callback"],
    }


@dataclass(frozen=True)
class Action:
    """One API action, how to call it, the permissions it needs, and its success status."""

    name: str
    method: str
    url: Any  # World -> str
    required: list[tuple[str, ...]]  # each: any one of these
    status: int
    body: Any = None  # World -> JSON

    def send(self, browser: BrowserClient, world: World, **extra: Any):
        body = self.body(world) if self.body else None
        return send(browser, self.method, self.url(world), body, **extra)


def client_url(world: World) -> str:
    return f"{CLIENTS}{world.web.client_id}/"


def consent_url(world: World) -> str:
    return f"{API}users/{world.user.pk}/consents/{world.web.client_id}/"


def tokens_url(world: World) -> str:
    return f"{API}users/{world.user.pk}/tokens/"


# The table of docs/management-api.md, "Permissions".
ACTIONS = [
    Action("clients-list", "get", lambda w: CLIENTS, [(VIEW_CLIENT,)], 200),
    Action("clients-retrieve", "get", client_url, [(VIEW_CLIENT,)], 200),
    Action("clients-create", "post", lambda w: CLIENTS, [(ADD_CLIENT,)], 201, lambda w: new_client_body()),
    Action("clients-update", "put", client_url, [(CHANGE_CLIENT,)], 200, lambda w: new_client_body()),
    Action("clients-partial-update", "patch", client_url, [(CHANGE_CLIENT,)], 200, lambda w: {"name": "X"}),
    Action("clients-destroy", "delete", client_url, [(DELETE_CLIENT,)], 204),
    Action(
        "clients-rotate-secret",
        "post",
        lambda w: client_url(w) + "rotate-secret/",
        [(CHANGE_CLIENT,), (SECRET,)],
        200,
    ),
    Action("scopes-list", "get", lambda w: SCOPES, [("oauth_server.view_scope",)], 200),
    Action("scopes-retrieve", "get", lambda w: SCOPES + "files:read/", [("oauth_server.view_scope",)], 200),
    Action(
        "scopes-create",
        "post",
        lambda w: SCOPES,
        [("oauth_server.add_scope",)],
        201,
        lambda w: {"name": "a:b", "description": "A"},
    ),
    Action(
        "scopes-update",
        "put",
        lambda w: SCOPES + "files:read/",
        [("oauth_server.change_scope",)],
        200,
        lambda w: {"name": "files:read", "description": "Read"},
    ),
    Action(
        "scopes-partial-update",
        "patch",
        lambda w: SCOPES + "files:read/",
        [("oauth_server.change_scope",)],
        200,
        lambda w: {"description": "Read"},
    ),
    Action(
        "scopes-destroy", "delete", lambda w: SCOPES + "files:read/", [("oauth_server.delete_scope",)], 204
    ),
    Action(
        "consents-list",
        "get",
        lambda w: f"{API}users/{w.user.pk}/consents/",
        [("oauth_server.view_consent",)],
        200,
    ),
    Action("consents-retrieve", "get", consent_url, [("oauth_server.view_consent",)], 200),
    Action(
        "consents-revoke",
        "delete",
        consent_url,
        [("oauth_server.change_consent", "oauth_server.delete_consent")],
        204,
    ),
    Action(
        "tokens-list",
        "get",
        tokens_url,
        [("oauth_server.view_accesstoken",), ("oauth_server.view_refreshtoken",)],
        200,
    ),
    Action(
        "tokens-retrieve",
        "get",
        lambda w: f"{tokens_url(w)}refresh_token/{w.refresh.pk}/",
        [("oauth_server.view_accesstoken",), ("oauth_server.view_refreshtoken",)],
        200,
    ),
    Action(
        "tokens-revoke", "delete", lambda w: f"{tokens_url(w)}access_token/{w.access.pk}/", TOKEN_REVOKE, 204
    ),
    Action("tokens-revoke-all", "delete", tokens_url, TOKEN_REVOKE, 204),
]
READS = [action for action in ACTIONS if action.method == "get"]
WRITES = [action for action in ACTIONS if action.method != "get"]


def ids(actions: list[Action]) -> list[str]:
    return [action.name for action in actions]


def all_permissions() -> set[str]:
    return {
        f"oauth_server.{codename}"
        for codename in Permission.objects.filter(content_type__app_label="oauth_server").values_list(
            "codename", flat=True
        )
    }


def state() -> tuple:
    """Everything an API write can change."""
    return (
        sorted(
            Client.objects.values_list("client_id", "name", "client_secret", "skip_consent", "redirect_uris")
        ),
        sorted(Scope.objects.values_list("name", "description")),
        sorted(Consent.objects.values_list("pk", "revoked_at")),
        sorted(AccessToken.objects.values_list("pk", flat=True)),
        sorted(RefreshToken.objects.values_list("pk", "revoked")),
    )


def session(*permissions: str, **user_fields: Any) -> BrowserClient:
    """A staff session holding exactly these permissions."""
    user = UserFactory(is_staff=True, **user_fields)
    if permissions:
        grant_permissions(user, *permissions)
    return signed_in(user)


# --- staff sessions -----------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ACTIONS, ids=ids(ACTIONS))
def test_a_staff_user_without_permissions_gets_403_and_changes_nothing(world, action):
    browser = session()
    before = state()
    body = assert_error(action.send(browser, world), 403, "forbidden")
    assert "permission" in body["error_description"]
    assert state() == before


@pytest.mark.parametrize("pick", [0, -1], ids=["first-alternative", "last-alternative"])
@pytest.mark.parametrize("action", ACTIONS, ids=ids(ACTIONS))
def test_the_listed_permissions_are_enough(world, action, pick):
    browser = session(*[alternatives[pick] for alternatives in action.required])
    response = action.send(browser, world)
    assert response.status_code == action.status, response.content


@pytest.mark.parametrize("action", ACTIONS, ids=ids(ACTIONS))
def test_each_listed_permission_is_needed(world, action):
    """Every other oauth_server permission, but not one requirement: 403, nothing changed."""
    for alternatives in action.required:
        browser = session(*(all_permissions() - set(alternatives)))
        before = state()
        body = assert_error(action.send(browser, world), 403, "forbidden")
        assert alternatives[0] in body["error_description"]
        assert state() == before


def test_a_user_with_only_view_permissions_reads_but_cannot_write(world):
    views = {name for name in all_permissions() if ".view_" in name}
    browser = session(*views)
    for action in READS:
        assert action.send(browser, world).status_code == 200, action.name
    before = state()
    for action in WRITES:
        assert_error(action.send(browser, world), 403, "forbidden")
    assert state() == before


@pytest.mark.parametrize("action", ACTIONS, ids=ids(ACTIONS))
def test_a_superuser_may_do_everything(world, action):
    browser = session(is_superuser=True)
    assert action.send(browser, world).status_code == action.status


def test_a_non_staff_user_with_every_permission_is_refused(world):
    user = grant_permissions(UserFactory(is_staff=False))
    browser = BrowserClient()
    browser.force_login(user)
    assert_error(browser.get(CLIENTS), 403, "forbidden")


def test_any_staff_user_may_read_the_openapi_document(db):
    """It holds no data: the caller check alone guards it (and unknown URLs, a 404 after it)."""
    browser = session()
    assert browser.get(SCHEMA).status_code == 200
    assert_error(browser.get(API + "no-such-thing/"), 404, "not_found")


# --- skip_consent and secrets ---------------------------------------------------------------------------
def test_creating_a_client_that_skips_consent_needs_the_trusted_permission(db):
    """The attack of the review: a client with an attacker's redirect URI that needs no consent."""
    body = {**new_client_body(), "skip_consent": True, "redirect_uris": ["https://evil.example/cb"]}
    before = state()
    error = assert_error(send(session(ADD_CLIENT), "post", CLIENTS, body), 403, "forbidden")
    assert TRUSTED in error["error_description"]
    assert state() == before

    response = send(session(ADD_CLIENT, TRUSTED), "post", CLIENTS, body)
    assert response.status_code == 201, response.content
    assert Client.objects.get(client_id=response.json()["client_id"]).skip_consent


def test_turning_skip_consent_on_needs_the_trusted_permission(world):
    url = client_url(world)
    assert_error(send(session(CHANGE_CLIENT), "patch", url, {"skip_consent": True}), 403, "forbidden")
    world.web.refresh_from_db()
    assert not world.web.skip_consent
    assert send(session(CHANGE_CLIENT, TRUSTED), "patch", url, {"skip_consent": True}).status_code == 200
    world.web.refresh_from_db()
    assert world.web.skip_consent


def test_turning_token_exchange_impersonation_on_needs_the_trusted_permission(world):
    """RFC 8693 impersonation tokens are indistinguishable from the user's own: a trust power."""
    url = client_url(world)
    change = {"token_exchange_impersonation": True}
    assert_error(send(session(CHANGE_CLIENT), "patch", url, change), 403, "forbidden")
    world.web.refresh_from_db()
    assert not world.web.token_exchange_impersonation
    assert send(session(CHANGE_CLIENT, TRUSTED), "patch", url, change).status_code == 200
    world.web.refresh_from_db()
    assert world.web.token_exchange_impersonation


@pytest.mark.parametrize(
    "change",
    [
        {"redirect_uris": ["https://evil.example/cb"]},
        {"skip_consent": False},
        {"name": "Renamed"},
    ],
)
def test_changing_a_client_that_skips_consent_needs_the_trusted_permission(world, change):
    Client.objects.filter(pk=world.web.pk).update(skip_consent=True)
    url = client_url(world)
    before = state()
    assert_error(send(session(CHANGE_CLIENT), "patch", url, change), 403, "forbidden")
    assert_error(send(session(CHANGE_CLIENT, SECRET), "post", url + "rotate-secret/"), 403, "forbidden")
    assert state() == before
    assert send(session(CHANGE_CLIENT, TRUSTED), "patch", url, change).status_code == 200
    response = send(session(CHANGE_CLIENT, SECRET, TRUSTED), "post", url + "rotate-secret/")
    assert response.status_code == 200


def test_a_client_that_skips_consent_can_still_be_deleted_with_delete(world):
    Client.objects.filter(pk=world.web.pk).update(skip_consent=True)
    assert send(session(DELETE_CLIENT), "delete", client_url(world)).status_code == 204


def test_rotating_a_secret_needs_the_secret_permission(world):
    url = client_url(world) + "rotate-secret/"
    old = Client.objects.get(pk=world.web.pk).client_secret
    body = assert_error(send(session(CHANGE_CLIENT), "post", url), 403, "forbidden")
    assert SECRET in body["error_description"]
    assert Client.objects.get(pk=world.web.pk).client_secret == old


def test_giving_a_public_client_a_secret_needs_the_secret_permission(db):
    public = PublicClientFactory(scopes=[])
    url = f"{CLIENTS}{public.client_id}/"
    before = state()
    body = assert_error(
        send(session(CHANGE_CLIENT), "patch", url, {"client_type": "confidential"}), 403, "forbidden"
    )
    assert SECRET in body["error_description"]
    assert state() == before
    response = send(session(CHANGE_CLIENT, SECRET), "patch", url, {"client_type": "confidential"})
    assert response.status_code == 200, response.content
    secret = response.json()["client_secret"]
    assert hashers.check_secret(secret, Client.objects.get(pk=public.pk).client_secret)


def test_a_new_clients_first_secret_needs_only_add(db):
    response = send(session(ADD_CLIENT), "post", CLIENTS, new_client_body())
    assert response.status_code == 201
    assert response.json()["client_secret"]


# --- machine tokens: the service account's permissions ---------------------------------------------------
def admin_token(owner) -> str:
    machine = MachineClientFactory(scopes=["oauth:admin"], user=owner)
    return AccessTokenFactory(user=None, application=machine, scope="oauth:admin").raw_token


def test_a_token_whose_client_has_no_owner_gets_a_clear_403(client, db):
    body = assert_error(client.get(CLIENTS, **bearer(admin_token(None))), 403, "forbidden")
    assert "service account" in body["error_description"]


def test_a_token_whose_service_account_is_inactive_gets_403(client, db):
    owner = service_account()
    owner.is_active = False
    owner.save()
    body = assert_error(client.get(CLIENTS, **bearer(admin_token(owner))), 403, "forbidden")
    assert "service account" in body["error_description"]


@pytest.mark.parametrize("action", ACTIONS, ids=ids(ACTIONS))
def test_a_token_whose_service_account_lacks_permissions_gets_403(client, world, action):
    token = admin_token(service_account(*(all_permissions() - set(action.required[0]))))
    before = state()
    body = assert_error(action.send(client, world, **bearer(token)), 403, "forbidden")
    assert action.required[0][0] in body["error_description"]
    assert state() == before


@pytest.mark.parametrize("action", ACTIONS, ids=ids(ACTIONS))
def test_a_token_whose_service_account_has_the_permissions_works(client, world, action):
    token = admin_token(service_account(*[alternatives[0] for alternatives in action.required]))
    assert action.send(client, world, **bearer(token)).status_code == action.status


def test_a_superuser_service_account_may_do_everything(client, world):
    owner = UserFactory(is_superuser=True)
    token = admin_token(owner)
    assert client.get(CLIENTS, **bearer(token)).status_code == 200
    assert (
        send(client, "patch", client_url(world), {"skip_consent": True}, **bearer(token)).status_code == 200
    )


def test_a_token_from_the_token_endpoint_acts_with_its_service_account(client, db):
    """End to end: the documented setup (an owner holding view_client only), a real token."""
    machine = MachineClientFactory(scopes=["oauth:admin"], user=service_account(VIEW_CLIENT))
    response = token_request(
        client,
        {"grant_type": "client_credentials", "scope": "oauth:admin"},
        client=machine,
        secret=machine.raw_secret,
    )
    token = response.json()["access_token"]
    assert client.get(CLIENTS, **bearer(token)).status_code == 200
    assert_error(send(client, "post", SCOPES, {"name": "a:b", "description": "A"}, **bearer(token)), 403)


def test_permissions_are_read_at_each_request(client, db):
    """Taking a permission from the service account takes it from its live tokens at once."""
    owner = service_account(VIEW_CLIENT)
    token = admin_token(owner)
    assert client.get(CLIENTS, **bearer(token)).status_code == 200
    owner.user_permissions.clear()
    assert_error(client.get(CLIENTS, **bearer(token)), 403, "forbidden")
