"""The audit trail: every event comes from a real flow, with who, which client, from where, and no secret.

Success events are saved when the transaction commits, so flows run inside
``django_capture_on_commit_callbacks(execute=True)`` (the test itself is one transaction).
"""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.test import Client as BrowserClient
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from oauth_server import audit, compiled, keys, signals
from oauth_server.flows.clients import rotate_secret
from oauth_server.models import AccessToken, AuditEvent, Client, RefreshToken
from tests.factories import ClientFactory, ConsentFactory, MachineClientFactory, UserFactory
from tests.helpers import (
    REVOKE_URL,
    approve,
    authorize_params,
    basic_auth,
    exchange_code,
    get_code,
    login_url,
    token_request,
)

IP = "203.0.113.7"
UA = "AuditTest/1.0 (+https://example.com)"
Event = AuditEvent.Event
NO_PROMPT = override_settings(OAUTH2_PROVIDER={"OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False})


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (success events are saved then) at the end of the block."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def browser(db, user):
    """The user's browser, signed in, with a known address and user agent."""
    browser = BrowserClient(REMOTE_ADDR=IP, HTTP_USER_AGENT=UA)
    browser.force_login(user)
    return browser


@pytest.fixture
def machine(db):
    return MachineClientFactory(scopes=["reports:read"])


def only(event: str) -> AuditEvent:
    found = list(AuditEvent.objects.filter(event=event))
    assert len(found) == 1, [str(e) for e in AuditEvent.objects.all()]
    return found[0]


def assert_from_browser(event: AuditEvent) -> None:
    assert (event.ip, event.user_agent) == (IP, UA)


def assert_no_secret_in_trail(*values: str) -> None:
    """No event (any column, details included) contains any of these values."""
    for event in AuditEvent.objects.all():
        text = json.dumps([event.details, event.username, event.client_id, event.user_agent])
        for value in values:
            assert value and value not in text, (event.event, value)


# --- sign-in and sign-out --------------------------------------------------------------------------
def test_login_and_failed_login(db, commit):
    user = UserFactory(username="alice")
    user.set_password("right-password-123")
    user.save()
    browser = BrowserClient(REMOTE_ADDR=IP, HTTP_USER_AGENT=UA)
    with commit():
        failed = browser.post(login_url(), {"username": "alice", "password": "wrong-password-456"})
        ok = browser.post(login_url(), {"username": "alice", "password": "right-password-123"})
    assert failed.status_code == 200 and ok.status_code == 302
    login_failed = only(Event.LOGIN_FAILED)
    assert (login_failed.outcome, login_failed.username, login_failed.user) == ("failure", "alice", None)
    assert_from_browser(login_failed)
    login = only(Event.LOGIN)
    assert (login.outcome, login.user, login.username) == ("success", user, "alice")
    assert_from_browser(login)
    assert_no_secret_in_trail("wrong-password-456", "right-password-123")


@NO_PROMPT
def test_rp_initiated_logout_names_the_client_and_the_tokens_it_revoked(browser, user, commit):
    rp = ClientFactory(scopes=["openid"], post_logout_redirect_uris="https://client.example.com/bye")
    code, verifier = get_code(browser, rp, scope="openid")
    id_token = exchange_code(browser, rp, code, verifier).json()["id_token"]
    with commit():
        response = browser.get(
            "/oauth/logout/?"
            + urlencode(
                {"id_token_hint": id_token, "post_logout_redirect_uri": "https://client.example.com/bye"}
            )
        )
    assert response.status_code == 302
    logout = only(Event.LOGOUT)
    assert (logout.user, logout.application, logout.client_id) == (user, rp, rp.client_id)
    # the access and refresh tokens, and the exchanged code's record
    assert logout.details["rp_initiated"] is True and logout.details["tokens_revoked"] >= 2
    assert_from_browser(logout)
    assert_no_secret_in_trail(id_token, code, verifier, rp.raw_secret)


def test_plain_site_logout_is_recorded_too(browser, user, commit):
    with commit():
        browser.logout()
    event = only(Event.LOGOUT)
    assert (event.user, event.application, event.details) == (user, None, {})


# --- the authorization code flow -------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)  # consent_granted is sent on commit, inside the request
def test_code_flow_records_consent_code_and_token(browser, user, web_client, commit):
    with commit():
        code, verifier = get_code(browser, web_client, scope="files:read")
        response = exchange_code(browser, web_client, code, verifier)
    assert response.status_code == 200
    body = response.json()

    granted = only(Event.CONSENT_GRANTED)
    assert (granted.user, granted.application, granted.details["scopes"]) == (
        user,
        web_client,
        ["files:read"],
    )
    assert_from_browser(granted)

    issued_code = only(Event.AUTHORIZATION_CODE_ISSUED)
    assert (issued_code.user, issued_code.application) == (user, web_client)
    assert issued_code.details["scopes"] == ["files:read"]
    assert issued_code.details["redirect_uri"] == web_client.redirect_uri_list[0]
    assert_from_browser(issued_code)

    token = only(Event.TOKEN_ISSUED)
    assert (token.user, token.username, token.application, token.client_id, token.outcome) == (
        user,
        user.username,
        web_client,
        web_client.client_id,
        "success",
    )
    assert token.details["grant_type"] == "authorization_code"
    assert token.details["scopes"] == ["files:read"]
    assert token.details["refresh_token_issued"] is True
    assert_from_browser(token)
    assert_no_secret_in_trail(
        code,
        verifier,
        web_client.raw_secret,
        body["access_token"],
        body["refresh_token"],
        web_client.client_secret,
    )


def test_consent_denied(browser, user, web_client, commit):
    params = authorize_params(
        web_client, challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", scope="files:read"
    )
    with commit():
        response = approve(browser, params, allow=False)
    assert response.status_code == 302 and "error=access_denied" in response["Location"]
    denied = only(Event.CONSENT_DENIED)
    assert (denied.user, denied.application, denied.outcome) == (user, web_client, "failure")
    assert denied.details == {"scopes": ["files:read"]}
    assert_from_browser(denied)
    assert not AuditEvent.objects.filter(event__in=[Event.CONSENT_GRANTED, Event.AUTHORIZATION_CODE_ISSUED])


def test_code_replay_is_recorded(browser, user, web_client, commit):
    code, verifier = get_code(browser, web_client, scope="files:read")
    assert exchange_code(browser, web_client, code, verifier).status_code == 200
    with commit():
        assert exchange_code(browser, web_client, code, verifier).status_code == 400
    replay = only(Event.CODE_REPLAY_DETECTED)
    assert (replay.user, replay.application, replay.outcome) == (user, web_client, "failure")
    assert_from_browser(replay)
    assert_no_secret_in_trail(code, verifier)


# --- other grants, refresh, reuse, revocation --------------------------------------------------------
def test_client_credentials_token(machine, commit):
    browser = BrowserClient(REMOTE_ADDR=IP, HTTP_USER_AGENT=UA)
    with commit():
        response = token_request(
            browser,
            {"grant_type": "client_credentials", "scope": "reports:read"},
            client=machine,
            secret=machine.raw_secret,
        )
    assert response.status_code == 200
    event = only(Event.TOKEN_ISSUED)
    assert (event.user, event.application, event.details["grant_type"]) == (
        None,
        machine,
        "client_credentials",
    )
    assert event.details["scopes"] == ["reports:read"] and event.details["refresh_token_issued"] is False
    assert event.details["token_format"] == "jwt"
    assert_from_browser(event)
    assert_no_secret_in_trail(machine.raw_secret, response.json()["access_token"])


def test_an_opaque_token_is_audited_as_opaque(machine, commit):
    """An opaque token has a jti too (the row's identifier): the format is what was issued."""
    machine.access_token_format = "opaque"
    machine.save()
    with commit():
        response = token_request(
            BrowserClient(),
            {"grant_type": "client_credentials", "scope": "reports:read"},
            client=machine,
            secret=machine.raw_secret,
        )
    assert response.status_code == 200
    assert only(Event.TOKEN_ISSUED).details["token_format"] == "opaque"


def _tokens(browser, client):
    code, verifier = get_code(browser, client, scope="files:read")
    return exchange_code(browser, client, code, verifier).json()


def _refresh(browser, client, refresh_token):
    return token_request(
        browser,
        {"grant_type": "refresh_token", "refresh_token": refresh_token},
        client=client,
        secret=client.raw_secret,
    )


def test_refresh_then_reuse(browser, user, web_client, commit):
    first = _tokens(browser, web_client)
    AuditEvent.objects.all().delete()
    with commit():
        second = _refresh(browser, web_client, first["refresh_token"])
    assert second.status_code == 200
    refreshed = only(Event.TOKEN_REFRESHED)
    assert (refreshed.user, refreshed.application, refreshed.details["grant_type"]) == (
        user,
        web_client,
        "refresh_token",
    )
    assert refreshed.details["token_family"]
    assert not AuditEvent.objects.filter(event=Event.TOKEN_ISSUED)  # one event per token response

    with commit():
        reuse = _refresh(browser, web_client, first["refresh_token"])
    assert reuse.status_code == 400
    event = only(Event.REFRESH_TOKEN_REUSE_DETECTED)
    assert (event.user, event.application, event.outcome) == (user, web_client, "failure")
    assert event.details["family_revoked"] is True
    assert event.details["token_family"] == refreshed.details["token_family"]
    assert_from_browser(event)
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert_no_secret_in_trail(first["refresh_token"], second.json()["refresh_token"], first["access_token"])


def test_revocation_endpoint(browser, user, web_client, commit):
    tokens = _tokens(browser, web_client)
    with commit():
        response = browser.post(
            REVOKE_URL,
            {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
            HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.raw_secret),
        )
    assert response.status_code == 200
    event = only(Event.TOKEN_REVOKED)
    assert (event.user, event.application) == (user, web_client)
    assert event.details["via"] == "revocation_endpoint" and event.details["token_type"] == "refresh_token"
    assert_from_browser(event)
    assert_no_secret_in_trail(tokens["refresh_token"], web_client.raw_secret)


def test_client_authentication_failures(machine, commit):
    browser = BrowserClient(REMOTE_ADDR=IP, HTTP_USER_AGENT=UA)
    wrong = "wrong-secret-" + "x" * 40
    data = {"grant_type": "client_credentials"}
    with commit():
        bad_secret = token_request(browser, data, client=machine, secret=wrong)
        unknown = browser.post(
            "/oauth/token/", data, HTTP_AUTHORIZATION=basic_auth("no-such-client", "whatever-secret-value")
        )
    assert bad_secret.status_code == 401 and unknown.status_code == 401
    events = list(AuditEvent.objects.filter(event=Event.CLIENT_AUTH_FAILED).order_by("id"))
    assert [(e.application, e.client_id, e.outcome, e.details["reason"]) for e in events] == [
        (machine, machine.client_id, "failure", "invalid_secret"),
        (None, "no-such-client", "failure", "unknown_client"),
    ]
    assert events[0].details["method"] == "client_secret_basic"
    assert events[0].details["endpoint"] == "/oauth/token/"
    assert_from_browser(events[0])
    assert_no_secret_in_trail(wrong, "whatever-secret-value", machine.raw_secret)
    assert not AuditEvent.objects.filter(event=Event.TOKEN_ISSUED)


# --- administration ------------------------------------------------------------------------------------
def test_client_created_updated_deleted(db, commit):
    with commit():
        client, secret = Client.objects.create_client(
            name="Reports", client_type="confidential", grant_types=["client_credentials"]
        )
    created = only(Event.CLIENT_CREATED)
    assert (created.application, created.client_id) == (client, client.client_id)
    assert created.details == {
        "name": "Reports",
        "client_type": "confidential",
        "grant_types": ["client_credentials"],
    }

    with commit():
        client.name = "Reports v2"
        client.is_enabled = False
        client.save()
        client.save()  # nothing changed: no event
    updated = only(Event.CLIENT_UPDATED)
    assert updated.details == {"changed": ["is_enabled", "name"]}

    with commit():
        rotated = rotate_secret(client)
    event = only(Event.CLIENT_SECRET_ROTATED)
    assert event.application == client
    assert AuditEvent.objects.filter(event=Event.CLIENT_UPDATED).count() == 1  # the rotation is its own event

    client_id = client.client_id
    with commit():
        client.delete()
    deleted = only(Event.CLIENT_DELETED)
    assert (deleted.application, deleted.client_id, deleted.details) == (
        None,
        client_id,
        {"name": "Reports v2"},
    )
    # Earlier events keep the client's id once the client is gone.
    assert set(AuditEvent.objects.values_list("client_id", flat=True)) == {client_id}
    assert not AuditEvent.objects.exclude(application=None).exists()
    assert_no_secret_in_trail(secret, rotated)


@pytest.mark.django_db(transaction=True)  # the rotation signal is sent on commit, inside the request
@override_settings(MIDDLEWARE=[*django_settings.MIDDLEWARE, "oauth_server.audit.AuditContextMiddleware"])
def test_admin_secret_rotation_names_the_staff_user(admin_user, machine, commit):
    staff = BrowserClient(REMOTE_ADDR=IP, HTTP_USER_AGENT=UA)
    staff.force_login(admin_user)
    with commit():
        response = staff.post(reverse("admin:oauth_server_client_rotate_secret", args=[machine.pk]))
    assert response.status_code == 200
    event = only(Event.CLIENT_SECRET_ROTATED)
    assert (event.application, event.user) == (machine, admin_user)
    assert_from_browser(event)
    new_secret = response.context["secrets"][0][1]
    assert_no_secret_in_trail(new_secret, machine.raw_secret)


@pytest.mark.django_db(transaction=True)  # consent_revoked is sent on commit, inside the request
def test_consent_revoked_on_the_connected_apps_page(browser, user, web_client, commit):
    ConsentFactory(user=user, client=web_client, scope="files:read")
    with commit():
        response = browser.post(reverse("oauth2_provider:connected-app-revoke", args=[web_client.client_id]))
    assert response.status_code == 303
    event = only(Event.CONSENT_REVOKED)
    assert (event.user, event.application, event.details) == (user, web_client, {"scopes": ["files:read"]})
    assert_from_browser(event)


def test_signing_key_rotation(db, commit):
    keys.ensure_keys()
    with commit():
        rotation = keys.rotate()
    event = only(Event.SIGNING_KEY_ROTATED)
    assert event.details["kid"] == rotation.activated.kid
    assert event.details["retired_kid"] == rotation.retired.kid
    assert event.details["next_kid"] == rotation.next.kid
    assert (event.user, event.application, event.ip) == (None, None, None)


# --- signal, log, failures, modes ---------------------------------------------------------------------
def test_signal_and_structured_log_record(machine, commit, caplog):
    received = []

    def receiver(sender, event, **kwargs):
        received.append(event)

    signals.audit_event.connect(receiver)
    try:
        with caplog.at_level(logging.INFO, logger="oauth_server.audit"), commit():
            token_request(
                BrowserClient(REMOTE_ADDR=IP),
                {"grant_type": "client_credentials"},
                client=machine,
                secret=machine.raw_secret,
            )
    finally:
        signals.audit_event.disconnect(receiver)
    saved = only(Event.TOKEN_ISSUED)
    assert [e.pk for e in received] == [saved.pk]
    records = [r for r in caplog.records if r.name == "oauth_server.audit"]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    assert records[0].audit["event"] == "token_issued"
    assert records[0].audit["client_id"] == machine.client_id and records[0].audit["ip"] == IP
    assert records[0].audit["id"] == saved.pk
    assert "token_issued" in records[0].getMessage() and machine.client_id in records[0].getMessage()
    json.dumps(records[0].audit)  # a JSON log formatter can serialize it


def test_failure_events_are_logged_as_warnings_at_once(machine, caplog):
    with caplog.at_level(logging.INFO, logger="oauth_server.audit"):
        token_request(BrowserClient(), {"grant_type": "client_credentials"}, client=machine, secret="x" * 40)
    [record] = [r for r in caplog.records if r.name == "oauth_server.audit"]
    assert record.levelno == logging.WARNING and record.audit["event"] == "client_auth_failed"


@pytest.mark.django_db(transaction=True)  # the request's transaction really commits or rolls back
def test_a_failing_token_event_write_issues_no_token(machine, monkeypatch, caplog):
    """The token event is written in the token's own transaction: if it cannot be, the token is
    rolled back and the client gets a JSON server_error, never a token nobody can account for."""
    real_insert = compiled.insert

    def broken(obj):
        real_insert(obj)  # the INSERT reaches the database, then the event's write "fails"
        if isinstance(obj, AuditEvent):
            raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(compiled, "insert", broken)
    with caplog.at_level(logging.INFO, logger="oauth_server.audit"):
        response = token_request(
            BrowserClient(), {"grant_type": "client_credentials"}, client=machine, secret=machine.raw_secret
        )
    monkeypatch.undo()
    assert response.status_code == 500, response.content
    assert response.json()["error"] == "server_error"
    assert response["Cache-Control"] == "no-store"
    assert not AccessToken.objects.exists()
    assert not AuditEvent.objects.filter(event=Event.TOKEN_ISSUED).exists()
    messages = [r.getMessage() for r in caplog.records if r.name == "oauth_server.audit"]
    assert any("could not be saved" in m for m in messages)
    assert not any(m.startswith("token_issued success") for m in messages)  # nothing was issued


def test_a_failing_write_of_another_success_event_does_not_undo_what_it_records(
    user, monkeypatch, caplog, commit
):
    """Events outside IN_TRANSACTION are written after the commit: a failed write is only logged."""

    def broken(**fields):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(AuditEvent.objects, "create", broken)
    with caplog.at_level(logging.INFO, logger="oauth_server.audit"), commit():
        assert audit.record(Event.LOGIN, user=user) is not None
    monkeypatch.undo()
    assert not AuditEvent.objects.exists()
    messages = [r.getMessage() for r in caplog.records if r.name == "oauth_server.audit"]
    assert any("could not be saved" in m for m in messages)
    assert any(m.startswith("login success") for m in messages)  # still logged


@override_settings(OAUTH_SERVER={"AUDIT_LOG": "log-only"})
def test_log_only_mode_writes_no_row_but_signals_and_logs(machine, commit, caplog):
    received = []
    signals.audit_event.connect(
        lambda sender, event, **kw: received.append(event), weak=False, dispatch_uid="t"
    )
    try:
        with caplog.at_level(logging.INFO, logger="oauth_server.audit"), commit():
            token_request(
                BrowserClient(),
                {"grant_type": "client_credentials"},
                client=machine,
                secret=machine.raw_secret,
            )
    finally:
        signals.audit_event.disconnect(dispatch_uid="t")
    assert not AuditEvent.objects.exists()
    assert [e.event for e in received] == ["token_issued"] and received[0].pk is None
    assert any(getattr(r, "audit", {}).get("event") == "token_issued" for r in caplog.records)


@override_settings(OAUTH_SERVER={"AUDIT_LOG": False})
def test_audit_can_be_switched_off(machine, commit):
    with commit():
        token_request(
            BrowserClient(), {"grant_type": "client_credentials"}, client=machine, secret=machine.raw_secret
        )
    assert audit.record(Event.LOGIN) is None
    assert not AuditEvent.objects.exists()


def _token_queries(browser, machine, data, django_assert_num_queries, expected: int) -> list[str]:
    with django_assert_num_queries(expected) as context:
        response = token_request(browser, data, client=machine, secret=machine.raw_secret)
    assert response.status_code == 200
    return [q["sql"] for q in context.captured_queries]


@pytest.mark.django_db(transaction=True)  # as in production: the request's transaction really commits
def test_token_endpoint_costs_exactly_one_insert(machine, django_assert_num_queries, settings):
    data = {"grant_type": "client_credentials", "scope": "reports:read"}
    browser = BrowserClient()
    token_request(browser, data, client=machine, secret=machine.raw_secret)  # creates the signing keys
    settings.OAUTH_SERVER = {"AUDIT_LOG": False}
    without = _token_queries(browser, machine, data, django_assert_num_queries, TOKEN_QUERIES)
    settings.OAUTH_SERVER = {}
    with_audit = _token_queries(browser, machine, data, django_assert_num_queries, len(without) + 1)
    # One statement more, in the request's transaction after the token's INSERT, no savepoint.
    inserts = [q for q in with_audit if q.startswith("INSERT")]
    assert [q.split()[2] for q in inserts] == ['"oauth_server_accesstoken"', '"oauth_server_auditevent"']
    assert not any("SAVEPOINT" in q for q in with_audit)
    rest = [q.split()[0] for q in with_audit if not q.startswith('INSERT INTO "oauth_server_auditevent"')]
    assert rest == [q.split()[0] for q in without]
    assert AuditEvent.objects.filter(event=Event.TOKEN_ISSUED).count() == 2


# A client_credentials token request without auditing, in TokenView's transaction: BEGIN, the client
# with its allowed scopes (one SELECT: Client.objects.with_scopes), the access token's INSERT (no
# savepoint: the view's transaction is the unit), COMMIT; app_authorized gets the saved row rather
# than a re-read. Issue 15's budget: at most 3 statements besides BEGIN/COMMIT with the audit row.
# This catches the audit trail (or anything else) silently adding queries to the hottest endpoint.
TOKEN_QUERIES = 4


# --- where from, and what is kept out -------------------------------------------------------------------
def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(machine, commit):
    data = {"grant_type": "client_credentials"}
    browser = BrowserClient(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.9, 192.0.2.1")
    with commit():
        token_request(browser, data, client=machine, secret=machine.raw_secret)
    assert only(Event.TOKEN_ISSUED).ip == "10.0.0.2"
    AuditEvent.objects.all().delete()
    with override_settings(OAUTH_SERVER={"TRUSTED_PROXIES": ["10.0.0.0/8", "192.0.2.1"]}), commit():
        token_request(browser, data, client=machine, secret=machine.raw_secret)
    assert only(Event.TOKEN_ISSUED).ip == "198.51.100.9"  # the right-most hop that is not a proxy


def test_details_never_keep_credentials_and_fields_are_bounded(db, commit):
    class Request:
        META = {"REMOTE_ADDR": "not-an-ip", "HTTP_USER_AGENT": "U" * 2000}

    with commit():
        event = audit.record(
            "custom_event",
            request=Request(),
            code="the-code",
            access_token="the-token",
            client_secret="the-secret",
            scopes={"b", "a"},
            note="nul\x00byte",
            when=timezone.now(),
        )
    event.refresh_from_db()
    assert set(event.details) == {"scopes", "note", "when"}
    assert event.details["scopes"] == ["a", "b"] and event.details["note"] == "nulbyte"
    assert event.ip is None and len(event.user_agent) == 512
    assert_no_secret_in_trail("the-code", "the-token", "the-secret")


# --- admin and retention ------------------------------------------------------------------------------
def test_admin_lists_filters_searches_and_is_read_only(admin_client, machine, commit):
    with commit():
        audit.record(
            Event.TOKEN_ISSUED, client=machine, request=BrowserClient().request().wsgi_request, scopes=["a"]
        )
    event = AuditEvent.objects.get(event=Event.TOKEN_ISSUED)
    AuditEvent.objects.filter(pk=event.pk).update(
        ip="198.51.100.20", details={"scopes": ["a"], "grant_type": "x"}
    )
    other = audit.record(Event.CLIENT_AUTH_FAILED, outcome="failure", client_id="someone-else")

    changelist = reverse("admin:oauth_server_auditevent_changelist")
    response = admin_client.get(changelist)
    assert response.status_code == 200
    shown = {e.pk for e in response.context["cl"].result_list}
    assert {event.pk, other.pk} <= shown
    for query, expected in [
        ("?q=198.51.100.20", {event.pk}),
        ("?q=someone-else", {other.pk}),
        ("?outcome__exact=failure", {other.pk}),
        (f"?event__exact={Event.TOKEN_ISSUED}", {event.pk}),
        (f"?application__id__exact={machine.pk}", {event.pk}),
    ]:
        page = admin_client.get(changelist + query)
        assert page.status_code == 200, query
        assert {e.pk for e in page.context["cl"].result_list} & {event.pk, other.pk} == expected, query
    assert admin_client.get(changelist + "?q=alice%25").status_code == 200  # not an IP: no inet error

    change = admin_client.get(reverse("admin:oauth_server_auditevent_change", args=[event.pk]))
    assert change.status_code == 200
    assert "&quot;grant_type&quot;: &quot;x&quot;" in change.content.decode()  # pretty-printed JSON
    assert b'name="_save"' not in change.content
    assert admin_client.get(reverse("admin:oauth_server_auditevent_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:oauth_server_auditevent_delete", args=[event.pk])).status_code == 403
    )
    assert (
        admin_client.post(
            reverse("admin:oauth_server_auditevent_change", args=[event.pk]), {"event": "login"}
        ).status_code
        == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk, event=Event.TOKEN_ISSUED).exists()


def test_purge_command(db, settings):
    now = timezone.now()
    old = AuditEvent.objects.create(event=Event.LOGIN, created=now - timedelta(days=100))
    middle = AuditEvent.objects.create(event=Event.LOGIN, created=now - timedelta(days=40))
    recent = AuditEvent.objects.create(event=Event.LOGIN, created=now - timedelta(days=1))

    call_command("purge_audit_events", "--older-than", "30", "--dry-run", stdout=(out := io.StringIO()))
    assert "2 audit event(s)" in out.getvalue() and AuditEvent.objects.count() == 3

    call_command("purge_audit_events", stdout=out)  # default AUDIT_RETENTION_DAYS: 90
    assert set(AuditEvent.objects.values_list("pk", flat=True)) == {middle.pk, recent.pk}
    call_command("purge_audit_events", "--older-than", "30", stdout=out)
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [recent.pk]
    assert old.pk not in AuditEvent.objects.values_list("pk", flat=True)

    settings.OAUTH_SERVER = {"AUDIT_RETENTION_DAYS": None}
    with pytest.raises(CommandError):
        call_command("purge_audit_events", stdout=out)
    with pytest.raises(CommandError):
        call_command("purge_audit_events", "--older-than", "-1", stdout=out)


def _admin_action(admin_client, model: str, name: str, objects) -> None:
    response = admin_client.post(
        reverse(f"admin:oauth_server_{model}_changelist"),
        {"action": name, "_selected_action": [str(o.pk) for o in objects]},
    )
    assert response.status_code in (200, 302), response


def test_admin_token_revocation_and_client_disabling(
    admin_client, admin_user, browser, user, web_client, commit
):
    _tokens(browser, web_client)
    refresh = RefreshToken.objects.get(revoked__isnull=True)
    with commit():
        _admin_action(admin_client, "refreshtoken", "revoke_selected", [refresh])
    event = only(Event.TOKEN_REVOKED)
    assert (event.user, event.application, event.details["via"]) == (user, web_client, "admin")
    assert event.details["token_type"] == "refresh_token"

    with commit():
        _admin_action(admin_client, "client", "disable_clients", [web_client])
    updated = only(Event.CLIENT_UPDATED)
    assert (updated.application, updated.details["changed"]) == (web_client, ["is_enabled"])


def test_first_party_app_cut_off_on_the_connected_apps_page(browser, user, commit):
    first_party = ClientFactory(scopes=["files:read"], skip_consent=True)
    _tokens(browser, first_party)
    with commit():
        response = browser.post(reverse("oauth2_provider:connected-app-revoke", args=[first_party.client_id]))
    assert response.status_code == 303
    event = only(Event.TOKEN_REVOKED)
    assert (event.user, event.application, event.details["via"]) == (user, first_party, "connected_apps")
    assert_from_browser(event)
