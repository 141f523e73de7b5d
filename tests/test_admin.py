"""The Django admin: clients (secret shown once, rotation), scopes, consents, tokens, signing keys.

Everything goes through Django's test client as a superuser, on data minted by real OAuth flows, and
every page is checked for credentials that must never be displayed.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.test import Client as BrowserClient
from django.urls import reverse
from django.utils import timezone
from freezegun import freeze_time

from oauth_server import admin as oauth_admin
from oauth_server import device, keys, registration, signals
from oauth_server.models import (
    AccessToken,
    BlockedClientHost,
    Client,
    Consent,
    DeviceAuthorization,
    Grant,
    GrantType,
    IDToken,
    InitialAccessToken,
    RefreshToken,
    Scope,
    SigningKey,
    Subject,
)
from oauth_server.tokens import token_checksum
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
from tests.helpers import exchange_code, get_code, signal_sent, token_request

USERINFO_URL = "/oauth/userinfo/"


def url(model: str, view: str = "changelist", *args) -> str:
    return reverse(f"admin:oauth_server_{model}_{view}", args=args)


def results(response) -> list:
    assert response.status_code == 200, response
    return list(response.context["cl"].result_list)


def action(staff, model: str, name: str, objects, *, follow: bool = False):
    data = {"action": name, "_selected_action": [o.pk for o in objects], "index": 0}
    return staff.post(url(model), data, follow=follow)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def action_names(response) -> set[str]:
    form = response.context["action_form"]
    return set(dict(form.fields["action"].choices)) if form is not None else set()


def client_credentials(browser, client, secret: str):
    return token_request(browser, {"grant_type": "client_credentials"}, client=client, secret=secret)


def userinfo(browser, access_token: str):
    return browser.get(USERINFO_URL, HTTP_AUTHORIZATION=f"Bearer {access_token}")


@pytest.fixture
def staff(admin_client):
    return admin_client


@pytest.fixture
def browser(client, user):
    """The end user's browser, logged in on the site (not in the admin)."""
    client.force_login(user)
    return client


@pytest.fixture
def oidc_client(db):
    return ClientFactory(name="Photo Printer", scopes=["openid", "profile", "files:read"])


@pytest.fixture
def minted(browser, user, oidc_client):
    """A real flow: consent, code exchange (access + refresh + ID token), one unexchanged code."""
    code, verifier = get_code(browser, oidc_client, scope="openid profile files:read")
    response = exchange_code(browser, oidc_client, code, verifier)
    assert response.status_code == 200, response.content
    body = response.json()
    pending_code, pending_verifier = get_code(browser, oidc_client, scope="files:read")
    grant = Grant.objects.get(code=token_checksum(pending_code))
    return {
        "body": body,
        "code": code,
        "verifier": verifier,
        "pending_code": pending_code,
        "pending_verifier": pending_verifier,
        "code_challenge": grant.code_challenge,
    }


@pytest.fixture
def dataset(minted, user, oidc_client, machine_client, browser):
    """The minted flow plus a machine token, a revoked consent, other users, a retired key."""
    response = client_credentials(browser, machine_client, machine_client.raw_secret)
    assert response.status_code == 200, response.content
    other = UserFactory(username="grace")
    ConsentFactory(user=other, client=oidc_client, scope="files:read", revoked_at=timezone.now())
    AccessTokenFactory(user=other, application=oidc_client, expires=timezone.now() - timedelta(hours=1))
    keys.rotate()
    keys.clear_cache()
    device_client = PublicClientFactory(
        grant_types=["urn:ietf:params:oauth:grant-type:device_code"], redirect_uris="", scopes=["files:read"]
    )
    codes = device.start(device_client, ["files:read"])
    initial_token, _row = registration.create_initial_access_token(expires_in=600, description="for CI")
    return {
        **minted,
        "machine_token": response.json()["access_token"],
        "device_code": codes.device_code,
        "user_code": codes.user_code,
        "initial_token": initial_token,
    }


def secrets_in_db(dataset, *clients) -> list[str]:
    """Every value no admin page may ever show."""
    body = dataset["body"]
    values = [
        body["access_token"],
        body["refresh_token"],
        body["id_token"],
        dataset["code"],
        dataset["verifier"],
        dataset["pending_code"],
        dataset["pending_verifier"],
        dataset["code_challenge"],
        dataset["machine_token"],
        dataset["initial_token"],
        *InitialAccessToken.objects.values_list("token_checksum", flat=True),
        dataset["device_code"],
        dataset["user_code"],
        dataset["user_code"].replace("-", ""),
        *DeviceAuthorization.objects.values_list("device_code", flat=True),
        *DeviceAuthorization.objects.values_list("user_code", flat=True),
        *AccessToken.objects.values_list("token_checksum", flat=True),
        *RefreshToken.objects.values_list("token_checksum", flat=True),
        *Grant.objects.values_list("code", flat=True),
        *Grant.objects.exclude(code_challenge="").values_list("code_challenge", flat=True),
        *SigningKey.objects.values_list("private_key", flat=True),
    ]
    for client in Client.objects.exclude(client_secret=""):
        values.append(client.client_secret.rsplit("$", 1)[-1])  # the digest of the hash
    values += [c.raw_secret for c in clients if getattr(c, "raw_secret", None)]
    return [v for v in values if v]


def assert_shows_none(response, values: list[str]) -> None:
    content = response.content.decode()
    for value in values:
        assert value not in content, f"{response.request['PATH_INFO']} shows a credential"


# --- registration -----------------------------------------------------------------------------------
MODELS = [
    "auditevent",
    "blockedclienthost",
    "client",
    "scope",
    "consent",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "grant",
    "deviceauthorization",
    "signingkey",
    "subject",
    "initialaccesstoken",
]


def test_each_model_is_registered_once_with_our_admin_class():
    registry = admin.site._registry
    assert isinstance(registry[Client], oauth_admin.ClientAdmin)
    assert isinstance(registry[AccessToken], oauth_admin.AccessTokenAdmin)
    assert isinstance(registry[RefreshToken], oauth_admin.RefreshTokenAdmin)
    assert isinstance(registry[IDToken], oauth_admin.IDTokenAdmin)
    assert isinstance(registry[Grant], oauth_admin.GrantAdmin)
    assert isinstance(registry[SigningKey], oauth_admin.SigningKeyAdmin)
    assert isinstance(registry[Subject], oauth_admin.SubjectAdmin)
    # DOT's own (swapped-out) models are not in the admin.
    assert not [m for m in registry if m._meta.app_label == "oauth2_provider"]


def test_index_has_one_oauth_server_section_listing_every_model(staff):
    response = staff.get(reverse("admin:index"))
    assert response.status_code == 200
    apps = {app["app_label"]: app for app in response.context["app_list"]}
    assert "oauth2_provider" not in apps
    section = apps["oauth_server"]
    assert section["name"] == "OAuth server"
    assert sorted(m["object_name"].lower() for m in section["models"]) == sorted(MODELS)
    assert response.content.decode().count(">OAuth server<") == 1


# --- every page renders, none shows a credential -------------------------------------------------------
def test_every_changelist_change_and_history_page_renders_without_credentials(staff, dataset, machine_client):
    secrets = secrets_in_db(dataset, machine_client)
    BlockedClientHost.objects.create(host="spam.example", reason="abuse")
    pending = Grant.objects.filter(redeemed_at=None).count()  # the exchanged code stays as a tombstone
    assert AccessToken.objects.count() >= 3 and pending == 1 and IDToken.objects.count() == 1
    pages = [reverse("admin:index"), reverse("admin:app_list", args=["oauth_server"])]
    for model in MODELS:
        pages.append(url(model))
        admin_class = admin.site._registry[
            next(
                m
                for m in admin.site._registry
                if m._meta.model_name == model and m._meta.app_label == "oauth_server"
            )
        ]
        objects = list(admin_class.model.objects.all())
        # Success audit events are saved on commit, which this test's transaction never does
        # (tests/test_audit.py renders the audit pages).
        assert objects or model == "auditevent", model
        for obj in objects:
            pages += [url(model, "change", obj.pk), url(model, "history", obj.pk)]
    pages.append(url("client", "delete", Client.objects.get(name="Photo Printer").pk))
    pages.append(url("client", "add"))
    for page in pages:
        response = staff.get(page)
        assert response.status_code == 200, page
        assert_shows_none(response, secrets)


def test_no_page_shows_credentials_after_every_action(staff, dataset, machine_client, oidc_client):
    action(staff, "client", "rotate_secrets", [machine_client])
    action(staff, "refreshtoken", "revoke_selected", RefreshToken.objects.all())
    action(staff, "grant", "revoke_selected", Grant.objects.all())
    action(staff, "consent", "revoke_selected", Consent.objects.all())
    staff.post(url("signingkey", "rotate"))
    machine_client.refresh_from_db()
    secrets = secrets_in_db(dataset, machine_client)
    entries = LogEntry.objects.all()
    assert entries.count() >= 5
    for entry in entries:
        text = f"{entry.object_repr} {entry.get_change_message()} {entry.change_message}"
        assert not [s for s in secrets if s in text]
    for model in MODELS:
        assert_shows_none(staff.get(url(model)), secrets)
    assert_shows_none(staff.get(url("client", "history", machine_client.pk)), secrets)


def test_credential_admins_search_nothing_secret():
    for model_admin in [admin.site._registry[m] for m in (AccessToken, RefreshToken, IDToken, Grant)]:
        for field in model_admin.search_fields:
            assert not {"token", "token_checksum", "code", "code_challenge"} & {field.lstrip("=^@")}
        assert not {"token", "token_checksum", "code", "code_challenge"} & set(model_admin.fields)


# --- access control ----------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["anonymous", "non_staff"])
def test_non_staff_are_sent_to_the_admin_login(db, who, machine_client):
    browser = BrowserClient()
    if who == "non_staff":
        browser.force_login(UserFactory())
    for page in [url(m) for m in MODELS] + [url("client", "change", machine_client.pk)]:
        response = browser.get(page)
        assert response.status_code == 302, page
        assert response["Location"].startswith(reverse("admin:login") + "?next=")
    stored = Client.objects.get(pk=machine_client.pk).client_secret
    response = browser.post(url("client", "rotate_secret", machine_client.pk))
    assert response.status_code == 302
    assert Client.objects.get(pk=machine_client.pk).client_secret == stored


def test_view_only_staff_cannot_run_actions_or_rotate(db, machine_client):
    from django.contrib.auth.models import Permission

    staffer = UserFactory(is_staff=True)
    staffer.user_permissions.set(
        Permission.objects.filter(codename__in=["view_client", "view_accesstoken", "view_signingkey"])
    )
    browser = BrowserClient()
    browser.force_login(staffer)
    response = browser.get(url("client"))
    assert response.status_code == 200
    assert action_names(response) == set()
    assert browser.post(url("client", "rotate_secret", machine_client.pk)).status_code == 403
    assert browser.post(url("signingkey", "rotate")).status_code == 403
    assert not SigningKey.objects.exists()


def test_only_superusers_set_a_clients_owner(db, machine_client):
    """The owner is the service account an admin-scope token acts as in the management API: setting it
    hands that user's permissions to whoever holds the client's secret."""
    from django.contrib.auth.models import Permission

    staffer = UserFactory(is_staff=True)
    staffer.user_permissions.set(Permission.objects.filter(codename__in=["view_client", "change_client"]))
    superuser = UserFactory(is_staff=True, is_superuser=True)
    browser = BrowserClient()
    browser.force_login(staffer)
    form = browser.get(url("client", "change", machine_client.pk)).context["adminform"].form
    assert "user" not in form.fields
    browser.force_login(superuser)
    form = browser.get(url("client", "change", machine_client.pk)).context["adminform"].form
    assert "user" in form.fields


# --- clients: list, search, filters --------------------------------------------------------------------
@pytest.fixture
def clients(db):
    return {
        "web": ClientFactory(name="Web App", skip_consent=True),
        "spa": PublicClientFactory(name="Single Page"),
        "m2m": MachineClientFactory(name="Reports Service", is_enabled=False),
    }


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", {"web", "spa", "m2m"}),
        ("?q=page", {"spa"}),
        ("?client_type__exact=public", {"spa"}),
        ("?client_type__exact=confidential", {"web", "m2m"}),
        ("?is_enabled__exact=0", {"m2m"}),
        ("?is_enabled__exact=1", {"web", "spa"}),
        ("?skip_consent__exact=1", {"web"}),
        ("?grant_type=authorization_code", {"web", "spa"}),
        ("?grant_type=refresh_token", {"web", "spa"}),
        ("?grant_type=client_credentials", {"m2m"}),
        ("?grant_type=password", set()),
        ("?grant_type=client_credentials&is_enabled__exact=1", set()),
    ],
)
def test_client_list_search_and_filters(staff, clients, query, expected):
    response = staff.get(url("client") + query)
    names = {key for key, c in clients.items() if c in results(response)}
    assert names == expected
    assert len(results(response)) == len(expected)


def test_client_search_by_exact_client_id_and_list_columns(staff, clients):
    response = staff.get(url("client") + f"?q={clients['m2m'].client_id}")
    assert results(response) == [clients["m2m"]]
    content = response.content.decode()
    assert "client_credentials" in content and "Reports Service" in content


# --- clients: creation shows the secret once --------------------------------------------------------------
def client_form(**overrides) -> dict:
    data = {
        "name": "Nightly Export",
        "client_type": "confidential",
        "is_enabled": "on",
        "user": "",
        "grant_types": [GrantType.CLIENT_CREDENTIALS],
        "redirect_uris": "",
        "post_logout_redirect_uris": "",
        "allowed_scopes": [ScopeFactory(name="reports:read").pk],
        "access_token_lifetime": "",
        "refresh_token_lifetime": "",
        "access_token_format": "",
        "audiences": "",
        "resource_identifiers": "",
        "logo_uri": "",
        "client_uri": "",
        "policy_uri": "",
        "tos_uri": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_adding_a_confidential_client_shows_its_secret_once(staff, db, client):
    response = staff.post(url("client", "add"), client_form())
    assert response.status_code == 200, response.content
    created = Client.objects.get(name="Nightly Export")
    [(shown_client, secret)] = response.context["secrets"]
    assert shown_client == created
    assert secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    # Not parked in a cookie (messages) or the session for a later page either.
    assert not [c for c in response.cookies.values() if secret in c.value]
    assert secret not in str(dict(staff.session))
    # Stored hashed, and the hash accepts the secret shown.
    assert created.client_secret != secret and secret not in created.client_secret
    assert created.check_secret(secret)
    assert created.client_id and created.client_id in response.content.decode()
    # The secret really works at the token endpoint.
    token = client_credentials(client, created, secret)
    assert token.status_code == 200, token.content
    # ...and never appears again.
    for page in [url("client", "change", created.pk), url("client"), url("client", "history", created.pk)]:
        again = staff.get(page)
        assert again.status_code == 200
        assert secret not in again.content.decode()
        assert created.client_secret not in again.content.decode()
    entry = LogEntry.objects.get(object_id=str(created.pk))
    assert secret not in entry.change_message and secret not in entry.get_change_message()


def test_adding_a_public_client_redirects_without_a_secret_page(staff, db):
    data = client_form(
        name="Mobile",
        client_type="public",
        grant_types=[GrantType.AUTHORIZATION_CODE, GrantType.REFRESH_TOKEN],
        redirect_uris="http://127.0.0.1:8080/cb\nhttps://app.example.com/cb",
    )
    response = staff.post(url("client", "add"), data)
    assert response.status_code == 302, response.content
    created = Client.objects.get(name="Mobile")
    assert created.client_secret == ""
    assert created.redirect_uri_list == ["http://127.0.0.1:8080/cb", "https://app.example.com/cb"]
    assert created.grant_types == [GrantType.AUTHORIZATION_CODE, GrantType.REFRESH_TOKEN]


def test_turning_a_public_client_confidential_shows_the_new_secret_once(staff, db):
    spa = PublicClientFactory(name="Was Public", grant_types=[GrantType.AUTHORIZATION_CODE])
    data = client_form(
        name="Was Public",
        grant_types=[GrantType.AUTHORIZATION_CODE],
        redirect_uris=spa.redirect_uris,
        allowed_scopes=[],
    )
    with signal_sent(signals.client_secret_rotated) as received:
        response = staff.post(url("client", "change", spa.pk), data)
    assert response.status_code == 200, response.content
    [(_, secret)] = response.context["secrets"]
    spa.refresh_from_db()
    assert spa.client_type == Client.CLIENT_CONFIDENTIAL and spa.check_secret(secret)
    assert [sent["client"] for sent in received] == [spa]


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"grant_types": [GrantType.REFRESH_TOKEN]}, None, "refresh_token only makes sense"),
        (
            {
                "grant_types": [GrantType.AUTHORIZATION_CODE],
                "redirect_uris": "https://*.example.com/cb",
            },
            "redirect_uris",
            "wildcards",
        ),
        (
            {"grant_types": [GrantType.AUTHORIZATION_CODE], "redirect_uris": "https://app.example.com/cb#x"},
            "redirect_uris",
            "fragments",
        ),
        ({"grant_types": []}, "grant_types", "Choose at least one grant type"),
        ({"client_type": "public"}, "grant_types", "Only confidential clients may use client_credentials"),
        ({"audiences": "https://api.example.com\nnot-a-uri"}, "audiences", "not-a-uri"),
        ({"resource_identifiers": "https://api.example.com/#frag"}, "resource_identifiers", "fragments"),
        ({"access_token_format": "paseto"}, "access_token_format", "valid choice"),
        ({"access_token_lifetime": "-5"}, "access_token_lifetime", "greater than or equal"),
        ({"client_type": "secret-agent"}, "client_type", "valid choice"),
    ],
)
def test_invalid_client_forms_show_errors_and_save_nothing(staff, db, overrides, field, message):
    response = staff.post(url("client", "add"), client_form(**overrides))
    assert response.status_code == 200
    form = response.context["adminform"].form
    errors = form.errors.get(field or "__all__", []) or [e for v in form.errors.values() for e in v]
    assert any(message in str(e) for e in errors), form.errors
    assert not Client.objects.filter(name="Nightly Export").exists()
    assert "secrets" not in response.context


def test_audiences_and_resource_identifiers_are_edited_one_per_line(staff, machine_client):
    data = client_form(
        name=machine_client.name,
        audiences="https://api.example.com\nurn:example:reports\nhttps://api.example.com",
        resource_identifiers="https://reports.example.com",
        access_token_format="opaque",
        allowed_scopes=[],
    )
    response = staff.post(url("client", "change", machine_client.pk), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    machine_client.refresh_from_db()
    assert machine_client.audiences == ["https://api.example.com", "urn:example:reports"]
    assert machine_client.resource_identifiers == ["https://reports.example.com"]
    assert machine_client.access_token_format == "opaque"
    page = staff.get(url("client", "change", machine_client.pk))
    assert (
        page.context["adminform"].form["audiences"].value() == "https://api.example.com\nurn:example:reports"
    )
    # Saving the same text again is not a change (and does not create a secret).
    stored = machine_client.client_secret
    staff.post(url("client", "change", machine_client.pk), data)
    machine_client.refresh_from_db()
    assert machine_client.client_secret == stored


# --- clients: rotation ------------------------------------------------------------------------------------
def test_rotate_secret_action_replaces_the_secret(staff, client, machine_client):
    old = machine_client.raw_secret
    assert client_credentials(client, machine_client, old).status_code == 200
    with signal_sent(signals.client_secret_rotated) as received:
        response = action(staff, "client", "rotate_secrets", [machine_client])
    assert response.status_code == 200
    [(_, new)] = response.context["secrets"]
    assert new in response.content.decode() and new != old
    assert "no-store" in response["Cache-Control"]
    assert [sent["client"].pk for sent in received] == [machine_client.pk]
    assert not [c for c in response.cookies.values() if new in c.value]
    refused = client_credentials(client, machine_client, old)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert client_credentials(client, machine_client, new).status_code == 200
    stored = Client.objects.get(pk=machine_client.pk).client_secret
    assert new not in stored
    assert (
        LogEntry.objects.get(object_id=str(machine_client.pk)).change_message == "Rotated the client secret."
    )


def test_rotate_secret_action_skips_public_clients(staff, public_client):
    response = action(staff, "client", "rotate_secrets", [public_client], follow=True)
    assert response.status_code == 200
    assert any("Skipped 1 public client" in m for m in messages_of(response))
    assert Client.objects.get(pk=public_client.pk).client_secret == ""


def test_rotate_secret_button_is_post_only(staff, client, machine_client):
    change_page = staff.get(url("client", "change", machine_client.pk))
    rotate_url = url("client", "rotate_secret", machine_client.pk)
    assert rotate_url in change_page.content.decode()
    assert not change_page.context["has_absolute_url"]  # DOT's detail view is not mounted
    assert staff.get(rotate_url).status_code == 405
    assert Client.objects.get(pk=machine_client.pk).check_secret(machine_client.raw_secret)
    response = staff.post(rotate_url)
    assert response.status_code == 200
    [(_, new)] = response.context["secrets"]
    assert Client.objects.get(pk=machine_client.pk).check_secret(new)
    assert client_credentials(client, machine_client, machine_client.raw_secret).status_code == 401


def test_rotate_secret_button_needs_a_csrf_token(db, machine_client):
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert browser.post(url("client", "rotate_secret", machine_client.pk)).status_code == 403
    assert Client.objects.get(pk=machine_client.pk).check_secret(machine_client.raw_secret)


def test_public_clients_have_no_rotate_button(staff, public_client):
    page = staff.get(url("client", "change", public_client.pk))
    assert url("client", "rotate_secret", public_client.pk) not in page.content.decode()
    response = staff.post(url("client", "rotate_secret", public_client.pk), follow=True)
    assert any("Public clients have no secret" in m for m in messages_of(response))
    assert staff.post(url("client", "rotate_secret", 999999)).status_code == 302


# --- clients: enable / disable / revoke all ---------------------------------------------------------------
def test_disabling_a_client_revokes_its_tokens_for_good(staff, browser, minted, oidc_client, client):
    access = minted["body"]["access_token"]
    assert userinfo(client, access).status_code == 200
    response = action(staff, "client", "disable_clients", [oidc_client], follow=True)
    assert any("Disabled 1 client" in m for m in messages_of(response))
    oidc_client.refresh_from_db()
    assert not oidc_client.is_enabled
    assert userinfo(client, access).status_code == 401
    refreshed = token_request(
        client,
        {"grant_type": "refresh_token", "refresh_token": minted["body"]["refresh_token"]},
        client=oidc_client,
        secret=oidc_client.raw_secret,
    )
    assert refreshed.status_code == 401 and refreshed.json()["error"] == "invalid_client"
    # Disabling revokes (docs/hardening.md): enabling again does not bring the tokens back.
    response = action(staff, "client", "enable_clients", [oidc_client], follow=True)
    assert any("Enabled 1 client" in m for m in messages_of(response))
    assert userinfo(client, access).status_code == 401
    assert not AccessToken.objects.filter(application=oidc_client).exists()


def test_revoke_all_tokens_action(staff, minted, oidc_client, client):
    response = action(staff, "client", "revoke_tokens", [oidc_client], follow=True)
    assert any("Revoked" in m for m in messages_of(response))
    assert not AccessToken.objects.filter(application=oidc_client).exists()
    assert not Grant.objects.filter(application=oidc_client).exists()
    assert not RefreshToken.objects.filter(application=oidc_client, revoked__isnull=True).exists()
    assert userinfo(client, minted["body"]["access_token"]).status_code == 401
    assert Client.objects.get(pk=oidc_client.pk).is_enabled


# --- tokens ------------------------------------------------------------------------------------------------
def test_access_token_revoke_action_also_revokes_its_refresh_token(staff, minted, oidc_client, client):
    token = AccessToken.objects.get(application=oidc_client, id_token__isnull=False)
    response = action(staff, "accesstoken", "revoke_selected", [token], follow=True)
    assert "Revoked 1 access token." in messages_of(response)
    assert not AccessToken.objects.filter(pk=token.pk).exists()
    assert userinfo(client, minted["body"]["access_token"]).status_code == 401
    assert RefreshToken.objects.get(application=oidc_client).revoked is not None


def test_refresh_token_revoke_action(staff, minted, oidc_client, client):
    refresh = RefreshToken.objects.get(application=oidc_client)
    response = action(staff, "refreshtoken", "revoke_selected", [refresh], follow=True)
    assert "Revoked 1 refresh token." in messages_of(response)
    refresh.refresh_from_db()
    assert refresh.revoked is not None and refresh.access_token_id is None
    refused = token_request(
        client,
        {"grant_type": "refresh_token", "refresh_token": minted["body"]["refresh_token"]},
        client=oidc_client,
        secret=oidc_client.raw_secret,
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert userinfo(client, minted["body"]["access_token"]).status_code == 401
    again = action(staff, "refreshtoken", "revoke_selected", [refresh], follow=True)
    assert any("already revoked" in m for m in messages_of(again))


def test_grant_revoke_action_kills_the_pending_code(staff, minted, oidc_client, client):
    grant = Grant.objects.get(redeemed_at=None)
    response = action(staff, "grant", "revoke_selected", [grant], follow=True)
    assert "Revoked 1 authorization code." in messages_of(response)
    refused = exchange_code(client, oidc_client, minted["pending_code"], minted["pending_verifier"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_id_token_revoke_action_revokes_the_tokens_issued_with_it(staff, minted, oidc_client, client):
    id_token = IDToken.objects.get()
    response = action(staff, "idtoken", "revoke_selected", [id_token], follow=True)
    assert "Revoked 1 ID token." in messages_of(response)
    assert not IDToken.objects.exists()
    assert userinfo(client, minted["body"]["access_token"]).status_code == 401
    assert RefreshToken.objects.get(application=oidc_client).revoked is not None


@pytest.mark.parametrize(
    "model", ["accesstoken", "refreshtoken", "idtoken", "grant", "consent", "signingkey", "subject"]
)
def test_issued_records_cannot_be_added_edited_or_deleted_by_hand(staff, dataset, model):
    obj = admin.site._registry[
        next(
            m
            for m in admin.site._registry
            if m._meta.model_name == model and m._meta.app_label == "oauth_server"
        )
    ].model.objects.first()
    assert staff.get(url(model, "add")).status_code == 403
    assert staff.post(url(model, "change", obj.pk), {}).status_code == 403
    assert staff.get(url(model, "delete", obj.pk)).status_code == 403
    changelist = staff.get(url(model))
    assert "delete_selected" not in action_names(changelist)


def test_token_lists_filter_by_client_user_expiry_and_state(staff, db):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    web, other = ClientFactory(name="Web"), ClientFactory(name="Other")
    a_live = AccessTokenFactory(user=alice, application=web)
    a_old = AccessTokenFactory(user=alice, application=other, expires=timezone.now() - timedelta(minutes=1))
    b_live = AccessTokenFactory(user=bob, application=other)
    cases = {
        "": {a_live, a_old, b_live},
        f"?application__id__exact={web.pk}": {a_live},
        f"?user={alice.pk}": {a_live, a_old},
        "?user=nonsense": set(),
        # str.isdigit() accepts these, int() or the database does not: never a 500 (issue 9).
        "?user=%C2%B2": set(),
        "?user=" + "9" * 30: set(),
        "?user=1%00": set(),
        "?expired=yes": {a_old},
        "?expired=no": {a_live, b_live},
        "?q=bob": {b_live},
        "?q=Other": {a_old, b_live},
        f"?q={a_live.jti}": {a_live},
    }
    for query, expected in cases.items():
        assert set(results(staff.get(url("accesstoken") + query))) == expected, query
    # The user column links to the list filtered on that user, and the filter shows who it is.
    page = staff.get(url("accesstoken") + f"?user={alice.pk}")
    assert f"?user={alice.pk}" in page.content.decode() and "alice" in page.content.decode()

    r_live = RefreshTokenFactory(user=alice, application=web)
    r_dead = RefreshTokenFactory(user=bob, application=web)
    r_dead.revoke()
    assert set(results(staff.get(url("refreshtoken") + "?state=revoked"))) == {r_dead}
    assert set(results(staff.get(url("refreshtoken") + "?state=active"))) == {r_live}
    assert set(results(staff.get(url("refreshtoken") + f"?user={bob.pk}"))) == {r_dead}
    assert set(results(staff.get(url("refreshtoken") + "?q=alice"))) == {r_live}


def test_grant_and_id_token_lists_filter(staff, dataset, user, oidc_client):
    for model in ("grant", "idtoken"):
        everything = results(staff.get(url(model)))
        assert everything
        assert results(staff.get(url(model) + f"?application__id__exact={oidc_client.pk}")) == everything
        assert results(staff.get(url(model) + f"?user={user.pk}")) == everything
        assert results(staff.get(url(model) + "?q=grace")) == []
        assert results(staff.get(url(model) + f"?q={user.username}")) == everything
        assert results(staff.get(url(model) + "?expired=no")) == everything
        assert results(staff.get(url(model) + "?expired=yes")) == []


def test_access_token_page_shows_jti_audience_and_validity(staff, dataset, oidc_client):
    token = AccessToken.objects.get(application=oidc_client, id_token__isnull=False)
    assert token.jti and token.audience
    page = staff.get(url("accesstoken", "change", token.pk)).content.decode()
    assert token.jti in page and token.audience in page
    listing = staff.get(url("accesstoken")).content.decode()
    assert token.jti in listing


# --- consents -----------------------------------------------------------------------------------------------
def test_consent_revoke_action_revokes_the_clients_tokens_for_that_user(
    staff, minted, user, oidc_client, client, django_capture_on_commit_callbacks
):
    consent = Consent.objects.get(user=user, client=oidc_client)
    bystander = AccessTokenFactory(application=oidc_client)  # another user's token survives
    with django_capture_on_commit_callbacks(execute=True):
        response = action(staff, "consent", "revoke_selected", [consent], follow=True)
    assert any("Revoked 1 consent" in m for m in messages_of(response))
    consent.refresh_from_db()
    assert consent.revoked_at is not None
    assert list(AccessToken.objects.filter(application=oidc_client)) == [bystander]
    assert not Grant.objects.filter(user=user).exists()
    assert RefreshToken.objects.get(user=user).revoked is not None
    assert userinfo(client, minted["body"]["access_token"]).status_code == 401


def test_consent_list_filters_and_search(staff, dataset, user, oidc_client):
    other_client = ClientFactory(name="Elsewhere")
    elsewhere = ConsentFactory(user=user, client=other_client, scope="files:read")
    mine = Consent.objects.get(user=user, client=oidc_client)
    revoked = Consent.objects.get(user__username="grace")
    cases = {
        "?active=yes": {mine, elsewhere},
        "?active=no": {revoked},
        f"?client__id__exact={other_client.pk}": {elsewhere},
        "?q=grace": {revoked},
        "?q=Elsewhere": {elsewhere},
        f"?q={user.username}": {mine, elsewhere},
    }
    for query, expected in cases.items():
        assert set(results(staff.get(url("consent") + query))) == expected, query


# --- scopes -------------------------------------------------------------------------------------------------
def test_scope_list_counts_clients_and_filters(staff, db):
    ScopeFactory(name="files:read", is_default=True)
    ClientFactory(scopes=["files:read"])
    ClientFactory(scopes=["files:read", "files:write"])
    response = staff.get(url("scope") + "?is_default__exact=1")
    [scope] = results(response)
    assert scope.name == "files:read" and scope.client_count == 2
    assert [s.name for s in results(staff.get(url("scope") + "?q=files:w"))] == ["files:write"]
    assert "openid" in [s.name for s in results(staff.get(url("scope") + "?is_default__exact=0"))]


@pytest.mark.parametrize("name", ["files read", 'say"hi"', "back\\slash", "émoji"])
def test_scope_name_syntax_errors_are_form_errors(staff, db, name):
    response = staff.post(url("scope", "add"), {"name": name, "description": "x"})
    assert response.status_code == 200
    assert "RFC 6749 3.3" in str(response.context["adminform"].form.errors["name"])
    assert not Scope.objects.filter(name=name).exists()


def test_scope_names_are_fixed_after_creation(staff, db):
    response = staff.post(url("scope", "add"), {"name": "files:read", "description": "Read files"})
    assert response.status_code == 302
    scope = Scope.objects.get(name="files:read")
    staff.post(url("scope", "change", scope.pk), {"name": "renamed", "description": "Read all files"})
    scope.refresh_from_db()
    assert scope.name == "files:read" and scope.description == "Read all files"


# --- signing keys -------------------------------------------------------------------------------------------
def test_rotate_signing_keys_button_moves_every_key_one_step(staff, db):
    keys.ensure_keys()
    active = SigningKey.objects.get(state="active")
    upcoming = SigningKey.objects.get(state="next")
    page = staff.get(url("signingkey"))
    assert url("signingkey", "rotate") in page.content.decode()
    assert staff.get(url("signingkey", "rotate")).status_code == 405
    response = staff.post(url("signingkey", "rotate"), {"algorithm": "ES256"}, follow=True)
    assert any("Signing keys rotated" in m for m in messages_of(response))
    active.refresh_from_db()
    upcoming.refresh_from_db()
    assert active.state == "retired" and active.retire_after > timezone.now()
    assert upcoming.state == "active"
    newest = SigningKey.objects.get(state="next")
    assert newest.algorithm == "ES256"
    assert LogEntry.objects.filter(object_id=str(active.pk), change_message="Rotated: retired.").exists()


def test_rotate_with_no_keys_creates_them_and_rejects_unknown_algorithms(staff, db):
    response = staff.post(url("signingkey", "rotate"), {"algorithm": "none"}, follow=True)
    assert any("Unknown signing algorithm" in m for m in messages_of(response))
    assert not SigningKey.objects.exists()
    staff.post(url("signingkey", "rotate"))
    assert sorted(SigningKey.objects.values_list("state", flat=True)) == ["active", "next"]


def test_purge_deletes_only_retired_keys_past_publication(staff, db):
    keys.ensure_keys()
    keys.rotate()
    retired = SigningKey.objects.get(state="retired")
    response = staff.post(url("signingkey", "purge"), follow=True)
    assert any("Deleted 0" in m for m in messages_of(response))
    assert SigningKey.objects.filter(pk=retired.pk).exists()
    with freeze_time(retired.retire_after + timedelta(seconds=1)):
        response = staff.post(url("signingkey", "purge"), follow=True)
    assert any("Deleted 1 retired key" in m for m in messages_of(response))
    assert sorted(SigningKey.objects.values_list("state", flat=True)) == ["active", "next"]


def test_signing_key_page_shows_the_public_jwk_only(staff, db):
    key = keys.ensure_keys()
    page = staff.get(url("signingkey", "change", key.pk)).content.decode()
    assert key.kid in page and key.public_jwk["n"][:40] in page
    assert key.private_key not in page
    private = json.loads(keys.decrypt_private_key(key.private_key).export_private())
    assert private["d"] not in page
    assert set(results(staff.get(url("signingkey") + "?published=yes"))) == set(SigningKey.objects.all())
    assert results(staff.get(url("signingkey") + "?state=retired")) == []


# --- powers beyond change_client: trusted clients and new secrets (security review, issue 9 item 2) ------
def _staffer(*codenames: str):
    from django.contrib.auth.models import Permission

    staffer = UserFactory(is_staff=True)
    staffer.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    browser = BrowserClient()
    browser.force_login(staffer)
    return browser


CLIENT_PERMS = ("view_client", "add_client", "change_client")


def test_skip_consent_is_read_only_without_manage_trusted_client(db, web_client):
    browser = _staffer(*CLIENT_PERMS)
    for page in (url("client", "add"), url("client", "change", web_client.pk)):
        assert "skip_consent" not in browser.get(page).context["adminform"].form.fields, page
    browser = _staffer(*CLIENT_PERMS, "manage_trusted_client")
    assert (
        "skip_consent" in browser.get(url("client", "change", web_client.pk)).context["adminform"].form.fields
    )


def test_token_exchange_impersonation_is_read_only_without_manage_trusted_client(db, web_client):
    field = "token_exchange_impersonation"
    browser = _staffer(*CLIENT_PERMS)
    for page in (url("client", "add"), url("client", "change", web_client.pk)):
        assert field not in browser.get(page).context["adminform"].form.fields, page
    browser = _staffer(*CLIENT_PERMS, "manage_trusted_client")
    assert field in browser.get(url("client", "change", web_client.pk)).context["adminform"].form.fields


def test_a_trusted_client_cannot_be_changed_without_manage_trusted_client(db):
    trusted = ClientFactory(name="Trusted", skip_consent=True, redirect_uris="https://good.example/cb")
    browser = _staffer(*CLIENT_PERMS)
    page = browser.get(url("client", "change", trusted.pk))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    response = browser.post(url("client", "change", trusted.pk), {"redirect_uris": "https://evil.example/cb"})
    assert response.status_code == 403
    trusted.refresh_from_db()
    assert trusted.redirect_uris == "https://good.example/cb"
    # The enable action leaves it out too; disabling (a protective change) is allowed.
    trusted.is_enabled = False
    trusted.save()
    browser.post(url("client"), {"action": "enable_clients", "_selected_action": [trusted.pk]})
    trusted.refresh_from_db()
    assert not trusted.is_enabled
    browser = _staffer(*CLIENT_PERMS, "manage_trusted_client")
    assert browser.get(url("client", "change", trusted.pk)).context["has_change_permission"]


def test_rotating_a_secret_needs_issue_client_secret(db, machine_client):
    old_hash = machine_client.client_secret
    browser = _staffer(*CLIENT_PERMS)
    page = browser.get(url("client", "change", machine_client.pk))
    assert not page.context["can_rotate_secret"]
    assert browser.post(url("client", "rotate_secret", machine_client.pk)).status_code == 403
    assert "rotate_secrets" not in action_names(browser.get(url("client")))
    response = browser.post(
        url("client"), {"action": "rotate_secrets", "_selected_action": [machine_client.pk]}
    )
    assert response.status_code in (200, 302)
    machine_client.refresh_from_db()
    assert machine_client.client_secret == old_hash
    browser = _staffer(*CLIENT_PERMS, "issue_client_secret")
    assert browser.get(url("client", "change", machine_client.pk)).context["can_rotate_secret"]
    assert browser.post(url("client", "rotate_secret", machine_client.pk)).status_code == 200
    machine_client.refresh_from_db()
    assert machine_client.client_secret != old_hash


def test_rotating_a_trusted_clients_secret_needs_both_permissions(db):
    trusted = MachineClientFactory(skip_consent=True)
    browser = _staffer(*CLIENT_PERMS, "issue_client_secret")
    assert browser.post(url("client", "rotate_secret", trusted.pk)).status_code == 403
    browser = _staffer(*CLIENT_PERMS, "issue_client_secret", "manage_trusted_client")
    assert browser.post(url("client", "rotate_secret", trusted.pk)).status_code == 200


def test_a_public_client_turns_confidential_only_with_issue_client_secret(db, public_client):
    browser = _staffer(*CLIENT_PERMS)
    assert (
        "client_type"
        not in browser.get(url("client", "change", public_client.pk)).context["adminform"].form.fields
    )
    browser = _staffer(*CLIENT_PERMS, "issue_client_secret")
    assert (
        "client_type"
        in browser.get(url("client", "change", public_client.pk)).context["adminform"].form.fields
    )


def test_superusers_hold_every_client_power(db, admin_client):
    trusted = MachineClientFactory(skip_consent=True)
    page = admin_client.get(url("client", "change", trusted.pk))
    assert page.context["has_change_permission"] and page.context["can_rotate_secret"]
    assert "skip_consent" in page.context["adminform"].form.fields


# --- clients nobody vetted ---------------------------------------------------------------------------
def test_self_registered_filter(staff, db):
    from tests.factories import PublicClientFactory

    PublicClientFactory(name="Dyn", registration_source="dcr")
    PublicClientFactory(name="Doc", registration_source="cimd", client_id="https://doc.example/c.json")
    ClientFactory(name="Ops")
    changelist = reverse("admin:oauth_server_client_changelist")

    def listed(value):
        response = staff.get(changelist, {"registered_by": value})
        assert response.status_code == 200
        return sorted(c.name for c in response.context["cl"].queryset)

    assert listed("self") == ["Doc", "Dyn"]
    assert listed("dcr") == ["Dyn"]
    assert listed("cimd") == ["Doc"]
    assert "Ops" in listed("manual") and "Dyn" not in listed("manual")
    assert listed("bogus") == []


def test_a_dcr_clients_page_shows_its_registration_and_it_can_be_blocked(
    staff, db, django_capture_on_commit_callbacks
):
    from oauth_server.models import ClientRegistration
    from tests.factories import PublicClientFactory

    dyn = PublicClientFactory(name="Dyn", registration_source="dcr")
    ClientRegistration.objects.create(
        client=dyn,
        access_token_checksum="0" * 64,
        metadata={"contacts": ["ops@agent.example"], "software_id": "agent"},
    )
    token = AccessTokenFactory(application=dyn)
    page = staff.get(url("client", "change", dyn.pk)).content.decode()
    assert "ops@agent.example" in page and "agent" in page
    with django_capture_on_commit_callbacks(execute=True):
        action(staff, "client", "disable_clients", [dyn])
    dyn.refresh_from_db()
    assert dyn.is_enabled is False
    assert not AccessToken.objects.filter(pk=token.pk).exists()


def test_initial_access_tokens_are_listed_not_added(staff, db):
    registration.create_initial_access_token(expires_in=60, description="for Bob")
    assert "for Bob" in staff.get(url("initialaccesstoken")).content.decode()
    assert staff.get(url("initialaccesstoken", "add")).status_code == 403
