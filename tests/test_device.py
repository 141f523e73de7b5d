"""The device authorization grant (RFC 8628): the endpoint, the verification page, polling, tokens.

Time moves by editing the row (``expires``, ``last_polled``), never by sleeping.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client as BrowserClient
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from freezegun import freeze_time

from oauth_server import device
from oauth_server.models import (
    AccessToken,
    AuditEvent,
    Client,
    Consent,
    DeviceAuthorization,
    GrantType,
    RefreshToken,
)
from oauth_server.tokens import token_checksum
from tests.factories import ClientFactory, PublicClientFactory, UserFactory
from tests.helpers import assert_error, basic_auth, signed_in

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# Ten seconds into a minute: the one-minute rate-limit windows cannot roll over during a test.
IN_A_WINDOW = "2030-01-01 12:00:10"
DEVICE_URL = "/oauth/device_authorization/"
TOKEN_URL = "/oauth/token/"
VERIFY_URL = "/oauth/device/"
CONFIRM_URL = "/oauth/device/confirm/"
Event = AuditEvent.Event


@pytest.fixture
def cli(db) -> Client:
    return PublicClientFactory(
        name="Files CLI",
        grant_types=[GRANT, GrantType.REFRESH_TOKEN],
        redirect_uris="",
        scopes=["files:read", "files:write"],
    )


@pytest.fixture
def tv(db) -> Client:
    """A confidential device client (a TV app with a provisioned secret)."""
    return ClientFactory(name="TV", grant_types=[GRANT], redirect_uris="", scopes=["files:read"])


def start(browser: BrowserClient, client: Client, **data) -> dict:
    if client.is_confidential:
        response = browser.post(
            DEVICE_URL, data, HTTP_AUTHORIZATION=basic_auth(client.client_id, client.raw_secret)
        )
    else:
        response = browser.post(DEVICE_URL, {"client_id": client.client_id, **data})
    assert response.status_code == 200, response.content
    return response.json()


def poll(browser: BrowserClient, client: Client, device_code: str, **extra):
    data = {"grant_type": GRANT, "device_code": device_code}
    if client.is_confidential:
        return browser.post(
            TOKEN_URL, data, HTTP_AUTHORIZATION=basic_auth(client.client_id, client.raw_secret)
        )
    return browser.post(TOKEN_URL, {"client_id": client.client_id, **data, **extra})


def row(device_code: str) -> DeviceAuthorization:
    return DeviceAuthorization.objects.get(device_code=token_checksum(device_code))


def allow_poll_now(device_code: str) -> None:
    """The interval has passed since the last poll."""
    DeviceAuthorization.objects.filter(device_code=token_checksum(device_code)).update(last_polled=None)


def approve(user, user_code: str, *, allow: bool = True) -> BrowserClient:
    browser = signed_in(user)
    response = browser.post(VERIFY_URL, {"user_code": user_code})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == CONFIRM_URL
    page = browser.get(CONFIRM_URL)
    assert page.status_code == 200
    done = browser.post(CONFIRM_URL, {"allow": "true"} if allow else {})
    assert done.status_code == 200, done.content
    return browser


# --- the device authorization endpoint ---------------------------------------------------------------
def test_discovery_advertises_the_endpoint_and_grant(db):
    for url in ("/oauth/.well-known/openid-configuration", "/oauth/.well-known/oauth-authorization-server"):
        doc = BrowserClient().get(url).json()
        assert doc["device_authorization_endpoint"] == "http://testserver" + DEVICE_URL
        assert GRANT in doc["grant_types_supported"]


def test_endpoint_answers_codes_stored_hashed(cli, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        body = start(BrowserClient(), cli, scope="files:read")
    assert set(body) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert body["verification_uri"] == "http://testserver" + VERIFY_URL
    assert body["verification_uri_complete"] == f"http://testserver{VERIFY_URL}?user_code={body['user_code']}"
    assert body["expires_in"] == 600 and body["interval"] == 5
    assert len(body["device_code"]) >= 43
    code = body["user_code"]
    assert len(code) == 9 and code[4] == "-"
    assert set(code.replace("-", "")) <= set(device.USER_CODE_ALPHABET)
    authorization = DeviceAuthorization.objects.get()
    # Only hashes at rest.
    assert authorization.device_code == token_checksum(body["device_code"])
    assert authorization.user_code == token_checksum(code.replace("-", ""))
    assert body["device_code"] not in str(vars(authorization))
    assert authorization.scopes == ["files:read"]
    assert AuditEvent.objects.filter(
        event=Event.DEVICE_AUTHORIZATION_REQUESTED, client_id=cli.client_id
    ).exists()


def test_per_client_lifetime_and_interval(cli):
    cli.device_code_lifetime = 120
    cli.device_poll_interval = 10
    cli.save()
    body = start(BrowserClient(), cli)
    assert (body["expires_in"], body["interval"]) == (120, 10)


@override_settings(OAUTH_SERVER={"DEVICE_CODE_LIFETIME": 300, "DEVICE_POLL_INTERVAL": 7})
def test_site_lifetime_and_interval(cli):
    body = start(BrowserClient(), cli)
    assert (body["expires_in"], body["interval"]) == (300, 7)


def test_user_codes_have_no_ambiguous_characters():
    assert not set("0O1I AEIOUY") & set(device.USER_CODE_ALPHABET)
    codes = {device.generate_user_code() for _ in range(200)}
    assert len(codes) == 200


@pytest.mark.parametrize("typed", ["bcdf-ghjk", "BCDFGHJK", " bcdf ghjk ", "BcDf-GhJk", "BCDF\u2010GHJK"])
def test_user_code_normalisation(typed):
    assert device.normalize_user_code(typed) == "BCDFGHJK"


@pytest.mark.parametrize("typed", ["", "----", "BCDF-GHJ0", "BCDF-GHJI", "é", "X" * 65, None, 7])
def test_user_code_normalisation_refuses(typed):
    assert device.normalize_user_code(typed) is None


@pytest.mark.parametrize(
    "data,status,error",
    [
        ({}, 400, "invalid_request"),
        ({"client_id": "nobody"}, 401, "invalid_client"),
        ({"client_id": "x\x00"}, 401, "invalid_client"),
    ],
)
def test_endpoint_errors(db, data, status, error):
    response = BrowserClient().post(DEVICE_URL, data)
    assert_error(response, status, error)
    assert response["Cache-Control"] == "no-store"


def test_endpoint_refuses_clients_without_the_grant(public_client):
    assert_error(
        BrowserClient().post(DEVICE_URL, {"client_id": public_client.client_id}), 400, "unauthorized_client"
    )


def test_endpoint_refuses_scopes_the_client_may_not_have(cli):
    body = assert_error(
        BrowserClient().post(DEVICE_URL, {"client_id": cli.client_id, "scope": "admin"}), 400, "invalid_scope"
    )
    assert "admin" in body["error_description"]


def test_endpoint_get_is_json_405(db):
    response = BrowserClient().get(DEVICE_URL)
    assert_error(response, 405, "invalid_request")


def test_confidential_client_must_authenticate(tv):
    assert_error(BrowserClient().post(DEVICE_URL, {"client_id": tv.client_id}), 401, "invalid_client")
    wrong = BrowserClient().post(DEVICE_URL, {}, HTTP_AUTHORIZATION=basic_auth(tv.client_id, "wrong" * 10))
    assert_error(wrong, 401, "invalid_client")
    assert "Basic" in wrong["WWW-Authenticate"]
    assert start(BrowserClient(), tv)["device_code"]


@freeze_time(IN_A_WINDOW)
@override_settings(OAUTH_SERVER={"RATE_LIMITS": {"device_authorization": "3/m"}})
def test_endpoint_is_rate_limited(cli):
    browser = BrowserClient()
    statuses = [browser.post(DEVICE_URL, {"client_id": cli.client_id}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


# --- polling ------------------------------------------------------------------------------------------
def test_full_flow_with_refresh(cli, user):
    browser = BrowserClient()
    body = start(browser, cli, scope="files:read")
    assert_error(poll(browser, cli, body["device_code"]), 400, "authorization_pending")
    approve(user, body["user_code"].lower())
    allow_poll_now(body["device_code"])
    response = poll(browser, cli, body["device_code"])
    assert response.status_code == 200, response.content
    tokens = response.json()
    assert tokens["scope"] == "files:read"
    assert "refresh_token" in tokens
    assert response["Cache-Control"] == "no-store"
    access = AccessToken.objects.get()
    assert access.user == user and access.application == cli
    assert row(body["device_code"]).status == DeviceAuthorization.Status.REDEEMED
    assert Consent.objects.get(user=user, client=cli).scopes == ["files:read"]
    # The refresh token works as for the code flow.
    refreshed = browser.post(
        TOKEN_URL,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": cli.client_id},
    )
    assert refreshed.status_code == 200, refreshed.content
    # Once only.
    issued = AccessToken.objects.count()
    allow_poll_now(body["device_code"])
    assert_error(poll(browser, cli, body["device_code"]), 400, "invalid_grant")
    assert AuditEvent.objects.filter(event=Event.DEVICE_CODE_REPLAYED).exists()
    assert AccessToken.objects.count() == issued


def test_no_refresh_token_without_the_refresh_grant(cli, user):
    cli.grant_types = [GRANT]
    cli.save()
    browser = BrowserClient()
    body = start(browser, cli)
    approve(user, body["user_code"])
    tokens = poll(browser, cli, body["device_code"]).json()
    assert "access_token" in tokens and "refresh_token" not in tokens


def test_slow_down_grows_the_interval(cli):
    browser = BrowserClient()
    body = start(browser, cli)
    code = body["device_code"]
    assert_error(poll(browser, cli, code), 400, "authorization_pending")
    assert_error(poll(browser, cli, code), 400, "slow_down")
    assert row(code).interval == 10
    assert_error(poll(browser, cli, code), 400, "slow_down")
    assert row(code).interval == 15
    # Waiting the grown interval is enough: pending again, and the interval stays grown.
    DeviceAuthorization.objects.filter(pk=row(code).pk).update(
        last_polled=timezone.now() - timedelta(seconds=16)
    )
    assert_error(poll(browser, cli, code), 400, "authorization_pending")
    assert row(code).interval == 15
    # Less than the grown interval (but more than the original 5 s) is still too fast.
    DeviceAuthorization.objects.filter(pk=row(code).pk).update(
        last_polled=timezone.now() - timedelta(seconds=8)
    )
    assert_error(poll(browser, cli, code), 400, "slow_down")


def test_denial_is_access_denied(cli, user):
    browser = BrowserClient()
    body = start(browser, cli)
    approve(user, body["user_code"], allow=False)
    assert_error(poll(browser, cli, body["device_code"]), 400, "access_denied")
    assert not AccessToken.objects.exists()
    assert AuditEvent.objects.filter(event=Event.CONSENT_DENIED, client_id=cli.client_id).exists()


def test_expiry_is_expired_token(cli, user):
    browser = BrowserClient()
    body = start(browser, cli)
    DeviceAuthorization.objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert_error(poll(browser, cli, body["device_code"]), 400, "expired_token")
    # And the user can no longer enter the code.
    response = signed_in(user).post(VERIFY_URL, {"user_code": body["user_code"]})
    assert response.status_code == 400


def test_approved_then_expired_is_expired_token(cli, user):
    browser = BrowserClient()
    body = start(browser, cli)
    approve(user, body["user_code"])
    DeviceAuthorization.objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert_error(poll(browser, cli, body["device_code"]), 400, "expired_token")


def test_another_client_cannot_poll_the_code(cli, user):
    other = PublicClientFactory(grant_types=[GRANT], redirect_uris="", scopes=["files:read"])
    browser = BrowserClient()
    body = start(browser, cli)
    approve(user, body["user_code"])
    assert_error(poll(browser, other, body["device_code"]), 400, "invalid_grant")
    # The rightful client still gets its tokens.
    assert poll(browser, cli, body["device_code"]).status_code == 200


def test_confidential_device_client(tv, user):
    browser = BrowserClient()
    body = start(browser, tv)
    approve(user, body["user_code"])
    # Without its secret it is refused.
    unauthenticated = browser.post(
        TOKEN_URL, {"grant_type": GRANT, "device_code": body["device_code"], "client_id": tv.client_id}
    )
    assert_error(unauthenticated, 401, "invalid_client")
    assert poll(browser, tv, body["device_code"]).status_code == 200


@pytest.mark.parametrize(
    "data,error",
    [
        ({"grant_type": GRANT}, "invalid_request"),
        ({"grant_type": GRANT, "device_code": "nope"}, "invalid_grant"),
        ({"grant_type": GRANT, "device_code": "x\x00y"}, "invalid_grant"),
    ],
)
def test_token_endpoint_errors(cli, data, error):
    response = BrowserClient().post(TOKEN_URL, {"client_id": cli.client_id, **data})
    assert_error(response, 400, error)


def test_client_without_the_grant_cannot_poll(cli, public_client):
    body = start(BrowserClient(), cli)
    response = poll(BrowserClient(), public_client, body["device_code"])
    assert_error(response, 400, "unauthorized_client")


def test_a_disabled_client_gets_nothing(cli, user):
    browser = BrowserClient()
    body = start(browser, cli)
    approve(user, body["user_code"])
    Client.objects.filter(pk=cli.pk).update(is_enabled=False)
    assert_error(poll(browser, cli, body["device_code"]), 401, "invalid_client")


def test_redeem_loses_a_race_cleanly(cli, user):
    """The conditional update is the single-use guarantee: a request that loses it gets invalid_grant
    and leaves no token behind."""
    browser = BrowserClient()
    body = start(browser, cli)
    approve(user, body["user_code"])
    authorization = row(body["device_code"])
    real_redeem = device.redeem

    def concurrent_winner(auth, request):
        DeviceAuthorization.objects.filter(pk=auth.pk).update(status=DeviceAuthorization.Status.REDEEMED)
        return real_redeem(auth, request)

    from unittest import mock

    with mock.patch.object(device, "redeem", concurrent_winner):
        assert_error(poll(browser, cli, body["device_code"]), 400, "invalid_grant")
    assert not AccessToken.objects.exists() and not RefreshToken.objects.exists()
    assert authorization.pk


# --- the verification page ------------------------------------------------------------------------------
def test_verification_page_requires_sign_in(cli):
    body = start(BrowserClient(), cli)
    response = BrowserClient().get(body["verification_uri_complete"])
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "user_code" in response["Location"]


def test_complete_uri_prefills_but_does_not_submit(cli, user):
    body = start(BrowserClient(), cli)
    browser = signed_in(user)
    page = browser.get(VERIFY_URL, {"user_code": body["user_code"].lower().replace("-", "")})
    html = page.content.decode()
    assert page.status_code == 200
    assert f'value="{body["user_code"]}"' in html
    assert '<label for="id_user_code">' in html
    assert page["X-Frame-Options"] == "DENY"
    assert row(body["device_code"]).status == DeviceAuthorization.Status.PENDING


def test_consent_page_shows_client_scopes_and_warning(cli, user):
    body = start(BrowserClient(), cli, scope="files:read files:write")
    browser = signed_in(user)
    browser.post(VERIFY_URL, {"user_code": body["user_code"]})
    html = browser.get(CONFIRM_URL).content.decode()
    assert "Files CLI" in html
    assert 'data-scope="files:read"' in html and 'data-scope="files:write"' in html
    assert "your own device" in html
    assert f'action="{CONFIRM_URL}"' in html
    assert 'name="allow"' in html


def test_consent_is_asked_even_when_remembered(cli, user):
    Consent.objects.create(user=user, client=cli, scope="files:read")
    body = start(BrowserClient(), cli, scope="files:read")
    browser = signed_in(user)
    assert browser.post(VERIFY_URL, {"user_code": body["user_code"]}).status_code == 302
    assert browser.get(CONFIRM_URL).status_code == 200
    assert row(body["device_code"]).status == DeviceAuthorization.Status.PENDING


def test_user_code_is_single_use(cli, user):
    body = start(BrowserClient(), cli)
    approve(user, body["user_code"])
    again = signed_in(UserFactory()).post(VERIFY_URL, {"user_code": body["user_code"]})
    assert again.status_code == 400
    assert 'role="alert"' in again.content.decode()
    assert 'aria-invalid="true"' in again.content.decode()


def test_confirm_without_a_code_in_session(db, user):
    browser = signed_in(user)
    assert browser.get(CONFIRM_URL).status_code == 400
    assert browser.post(CONFIRM_URL, {"allow": "true"}).status_code == 400


def test_a_decision_is_made_once(cli, user):
    body = start(BrowserClient(), cli)
    browser = signed_in(user)
    browser.post(VERIFY_URL, {"user_code": body["user_code"]})
    DeviceAuthorization.objects.update(status=DeviceAuthorization.Status.DENIED)
    assert browser.post(CONFIRM_URL, {"allow": "true"}).status_code == 400
    assert row(body["device_code"]).status == DeviceAuthorization.Status.DENIED


@freeze_time(IN_A_WINDOW)
def test_wrong_codes_are_throttled_and_audited(cli, user):
    browser = signed_in(user)
    statuses = [browser.post(VERIFY_URL, {"user_code": f"BBBB-BBB{c}"}).status_code for c in "CDFGHJ"]
    assert statuses == [400] * 5 + [429]
    assert AuditEvent.objects.filter(event=Event.USER_CODE_FAILED, username=user.username).count() == 5
    assert AuditEvent.objects.filter(event=Event.USER_CODE_THROTTLED).count() == 1
    # Even the right code is refused from there until the window ends.
    body = start(BrowserClient(), cli)
    assert browser.post(VERIFY_URL, {"user_code": body["user_code"]}).status_code == 429
    # Another user from another address is not affected.
    other = signed_in(UserFactory())
    assert (
        other.post(VERIFY_URL, {"user_code": body["user_code"]}, REMOTE_ADDR="203.0.113.5").status_code == 302
    )


@freeze_time(IN_A_WINDOW)
def test_wrong_codes_per_address(db):
    statuses = [
        signed_in(UserFactory()).post(VERIFY_URL, {"user_code": "BBBB-BBBB"}).status_code for _ in range(21)
    ]
    assert statuses == [400] * 20 + [429]


@freeze_time(IN_A_WINDOW)
def test_right_code_does_not_count(cli, user):
    browser = signed_in(user)
    for _ in range(8):
        body = start(BrowserClient(), cli)
        assert browser.post(VERIFY_URL, {"user_code": body["user_code"]}).status_code == 302


# --- around ---------------------------------------------------------------------------------------------
def test_connected_apps_lists_device_clients(cli, user):
    browser = BrowserClient()
    body = start(browser, cli)
    approve(user, body["user_code"])
    poll(browser, cli, body["device_code"])
    html = signed_in(user).get("/oauth/connected-apps/").content.decode()
    assert "Files CLI" in html


def test_admin_lists_pending_authorizations_read_only(cli):
    start(BrowserClient(), cli)
    admin = UserFactory(is_staff=True, is_superuser=True)
    browser = signed_in(admin)
    page = browser.get("/admin/oauth_server/deviceauthorization/?waiting=yes")
    assert page.status_code == 200
    assert "Files CLI" in page.content.decode()
    assert browser.get("/admin/oauth_server/deviceauthorization/add/").status_code == 403


@pytest.mark.parametrize("client_type", ["public", "confidential"])
def test_create_oauth_client_device_only(db, client_type, capsys):
    call_command(
        "create_oauth_client",
        "--name",
        f"Device {client_type}",
        "--type",
        client_type,
        "--grant-type",
        GRANT,
    )
    client = Client.objects.get(name=f"Device {client_type}")
    assert client.grant_types == [GRANT]
    assert client.redirect_uris == ""


def test_refresh_grant_accepts_the_device_grant_as_issuer(db):
    client = Client(name="x", client_type="public", grant_types=[GRANT, "refresh_token"])
    client.clean()


def test_verification_uri_ignores_a_forged_host_when_the_issuer_is_pinned(cli, monkeypatch, settings):
    """A forged Host header must not send the user to type their code on another site."""
    from oauth2_provider.settings import oauth2_settings

    settings.ALLOWED_HOSTS = ["*"]
    monkeypatch.setattr(oauth2_settings, "OIDC_ISS_ENDPOINT", "https://id.example.com/oauth")
    response = BrowserClient().post(DEVICE_URL, {"client_id": cli.client_id}, HTTP_HOST="attacker.example")
    body = response.json()
    assert body["verification_uri"] == "https://id.example.com/oauth/device/"
    assert body["verification_uri_complete"].startswith("https://id.example.com/oauth/device/?user_code=")


@override_settings(OAUTH_SERVER={"DEVICE_VERIFICATION_URI": "https://id.example/go"})
def test_verification_uri_setting(cli):
    body = start(BrowserClient(), cli)
    assert body["verification_uri"] == "https://id.example/go"
    assert body["verification_uri_complete"] == f"https://id.example/go?user_code={body['user_code']}"
