"""Failed sign-ins at the app's LoginView are throttled per address and per account+address
(RATE_LIMITS["login_failures"], docs/abuse.md): the guesser gets 429, the user still signs in
from elsewhere, and each throttle is audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import caches
from django.test import Client as BrowserClient
from django.test import override_settings
from freezegun import freeze_time

from oauth_server.models import AuditEvent
from tests.factories import UserFactory
from tests.helpers import login_url
from tests.test_ratelimit import redis_cache  # noqa: F401 (the fixture used below)

ATTACKER = "198.51.100.1"
USER_IP = "203.0.113.9"
PASSWORD = "right-password-123"
# Ten seconds into a minute: the current one-minute window ends in 50 s.
START = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)
Event = AuditEvent.Event


def limits(**values) -> dict:
    return {"OAUTH_SERVER": {"RATE_LIMITS": values}}


@pytest.fixture
def alice(db):
    user = UserFactory(username="alice")
    user.set_password(PASSWORD)
    user.save()
    return user


def sign_in(ip: str, password: str, username: str = "alice"):
    """One sign-in attempt from a fresh browser at ``ip``; (response, whether it signed in)."""
    browser = BrowserClient(REMOTE_ADDR=ip, HTTP_USER_AGENT="LoginThrottleTest/1.0")
    response = browser.post(login_url(), {"username": username, "password": password})
    return response, "_auth_user_id" in browser.session


def assert_refused(response, retry_after: int | None = 50) -> None:
    assert response.status_code == 429, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("text/html")
    assert "Too many attempts" in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert response["X-Frame-Options"] == "DENY"
    if retry_after is not None:
        assert response["Retry-After"] == str(retry_after)


def guess(ip: str, times: int, username: str = "alice") -> list[int]:
    return [sign_in(ip, f"guess-{n}", username)[0].status_code for n in range(times)]


# --- the attack ----------------------------------------------------------------------------------
def test_password_guessing_is_throttled_and_the_user_signs_in_from_elsewhere(alice):
    with freeze_time(START) as frozen:
        # Default: 5 failures per account and address, then 429.
        assert guess(ATTACKER, 8) == [200] * 5 + [429] * 3
        # The right password from the throttled address is refused too: else the limit would
        # only tell the guesser when it has won.
        response, signed_in = sign_in(ATTACKER, PASSWORD)
        assert_refused(response)
        assert not signed_in
        # The user, from their own address, is not locked out.
        response, signed_in = sign_in(USER_IP, PASSWORD)
        assert response.status_code == 302 and signed_in
        # The window ends: the address may try again.
        frozen.tick(timedelta(seconds=50))
        response, signed_in = sign_in(ATTACKER, PASSWORD)
        assert response.status_code == 302 and signed_in


def test_failed_and_throttled_sign_ins_are_audited(alice, django_capture_on_commit_callbacks):
    with freeze_time(START), django_capture_on_commit_callbacks(execute=True):
        guess(ATTACKER, 5)
        assert_refused(sign_in(ATTACKER, "guess-6")[0])
        assert_refused(sign_in(ATTACKER, PASSWORD)[0])
        assert sign_in(USER_IP, PASSWORD)[0].status_code == 302
    failed = AuditEvent.objects.filter(event=Event.LOGIN_FAILED)
    assert failed.count() == 5  # refused attempts check no password, so they are no login_failed
    assert {(e.username, e.ip, e.outcome) for e in failed} == {("alice", ATTACKER, "failure")}
    # One event per throttled counter, address and window: the guesser cannot flood the trail.
    throttled = AuditEvent.objects.get(event=Event.LOGIN_THROTTLED)
    assert (throttled.outcome, throttled.username, throttled.ip, throttled.user) == (
        "failure",
        "alice",
        ATTACKER,
        None,
    )
    assert throttled.details == {"scope": "account_ip", "limit": 5, "period": 60, "retry_after": 50}
    assert AuditEvent.objects.get(event=Event.LOGIN).ip == USER_IP
    for event in AuditEvent.objects.all():
        assert PASSWORD not in str(event.details) and "guess-" not in str(event.details)


def test_successful_sign_ins_are_not_failures(alice):
    with freeze_time(START):
        for _ in range(8):
            response, signed_in = sign_in(ATTACKER, PASSWORD)
            assert response.status_code == 302 and signed_in
        # Four failures after eight successes: still under the account+address limit.
        assert guess(ATTACKER, 4) == [200] * 4
        assert sign_in(ATTACKER, PASSWORD)[1]


@override_settings(**limits(login_failures={"account_ip": "3/m"}))
def test_the_account_is_normalized_in_the_key(alice):
    with freeze_time(START):
        assert sign_in(ATTACKER, "x", "alice")[0].status_code == 200
        assert sign_in(ATTACKER, "x", "ALICE")[0].status_code == 200
        assert sign_in(ATTACKER, "x", " Alice ")[0].status_code == 200
        assert_refused(sign_in(ATTACKER, PASSWORD, "alice")[0])
        # Another account from that address has its own budget.
        assert sign_in(ATTACKER, "x", "bob")[0].status_code == 200
    # Counter keys hold a hash of the account, never the name.
    keys = [key for key in caches["default"]._cache if "login_failures" in key]
    assert keys and not any("alice" in key.lower() for key in keys)


@override_settings(**limits(login_failures={"ip": "3/m"}))
def test_per_address_limit_covers_every_account(alice):
    with freeze_time(START):
        for name in ("bob", "carol", "dave"):
            assert sign_in(ATTACKER, "x", name)[0].status_code == 200
        response, signed_in = sign_in(ATTACKER, PASSWORD)
        assert_refused(response)
        assert not signed_in
        assert sign_in(USER_IP, PASSWORD)[1]


@override_settings(**limits(login_failures={"account": "3/m"}))
def test_distributed_guessing_meets_a_ceiling_that_locks_nobody_out(alice):
    """Past the account's ceiling, an address that already failed for it gets no further guess;
    the user, from an address that did not fail, still signs in."""
    with freeze_time(START):
        guessers = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        for ip in guessers:
            assert sign_in(ip, "x")[0].status_code == 200
        for ip in guessers:
            assert_refused(sign_in(ip, PASSWORD)[0])
        response, signed_in = sign_in(USER_IP, PASSWORD)
        assert response.status_code == 302 and signed_in


# --- settings -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "oauth_server",
    [{"RATE_LIMITS": None}, {"RATE_LIMITS": {"login_failures": None}}],
    ids=["all-limits-off", "login-limit-off"],
)
def test_limits_can_be_switched_off(alice, oauth_server):
    with override_settings(OAUTH_SERVER=oauth_server), freeze_time(START):
        assert guess(ATTACKER, 12) == [200] * 12
        assert sign_in(ATTACKER, PASSWORD)[1]


@override_settings(**limits(login_failures="2/m"))
def test_a_string_sets_every_scope(alice):
    with freeze_time(START):
        assert guess(ATTACKER, 3) == [200, 200, 429]


@override_settings(OAUTH_SERVER={"RATE_LIMITS": {"login_failures": "1/m"}, "RATE_LIMIT_CACHE": "missing"})
def test_a_broken_cache_fails_open(alice, caplog):
    assert guess(ATTACKER, 3) == [200] * 3
    assert sign_in(ATTACKER, PASSWORD)[1]
    assert "Sign-in throttling skipped" in caplog.text


def test_a_malformed_body_is_still_the_view_s_answer(db):
    browser = BrowserClient(REMOTE_ADDR=ATTACKER)
    response = browser.post(login_url(), b"--x\r\ngarbage", content_type="multipart/form-data; boundary=")
    assert response.status_code == 400


def test_get_is_not_counted(db):
    browser = BrowserClient(REMOTE_ADDR=ATTACKER)
    with freeze_time(START):
        for _ in range(40):
            assert browser.get(login_url()).status_code == 200


# --- against a real Redis -------------------------------------------------------------------------
@pytest.mark.usefixtures("redis_cache")
def test_guessing_is_throttled_with_redis_counters(alice):
    with override_settings(OAUTH_SERVER={"RATE_LIMIT_CACHE": "ratelimit"}), freeze_time(START):
        assert guess(ATTACKER, 6) == [200] * 5 + [429]
        assert_refused(sign_in(ATTACKER, PASSWORD)[0])
        assert sign_in(USER_IP, PASSWORD)[1]
        # A success gives its reservation back (DECR): it does not count as a failure.
        for _ in range(3):
            assert sign_in(USER_IP, PASSWORD)[1]
        assert guess(USER_IP, 5) == [200] * 5
        raw = caches["ratelimit"]._cache.get_client()
        keys = list(raw.scan_iter())
    assert any(b":oauth_server:ratelimit:login_failures:account_ip:" in key for key in keys)
