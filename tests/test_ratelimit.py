"""Rate limits (oauth_server.ratelimit): per IP, per authenticated client, failed client authentications."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import caches
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from freezegun import freeze_time

from oauth_server import ratelimit
from oauth_server.conf import DEFAULTS
from oauth_server.models import AccessToken
from tests.factories import MachineClientFactory, PublicClientFactory
from tests.helpers import AUTHORIZE_URL, TOKEN_URL, authorize_params, basic_auth, get_authorize

ATTACKER = "198.51.100.1"
VICTIM = "203.0.113.9"
INTROSPECT_URL = "/oauth/introspect/"
REVOKE_URL = "/oauth/revoke/"
CC = {"grant_type": "client_credentials", "scope": "reports:read"}
# Ten seconds into a minute: the current one-minute window ends in 50 s.
START = datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)


def limits(**values) -> dict:
    """OAUTH_SERVER with these RATE_LIMITS (others keep their defaults)."""
    return {"OAUTH_SERVER": {"RATE_LIMITS": values}}


@pytest.fixture(autouse=True)
def _clean_cache():
    caches["default"].clear()


@pytest.fixture
def machine(db):
    return MachineClientFactory(scopes=["reports:read"])


@pytest.fixture
def other_machine(db):
    return MachineClientFactory(scopes=["reports:read"])


def cc(browser, client, secret: str | None = None, ip: str = "127.0.0.1"):
    secret = client.raw_secret if secret is None else secret
    return browser.post(
        TOKEN_URL, CC, HTTP_AUTHORIZATION=basic_auth(client.client_id, secret), REMOTE_ADDR=ip
    )


def assert_throttled(response, retry_after: int | None = None) -> dict:
    assert response.status_code == 429, (response.status_code, response.content)
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    body = response.json()
    assert body["error"] == "too_many_requests"
    assert body["error_description"]
    assert int(response["Retry-After"]) >= 1
    if retry_after is not None:
        assert response["Retry-After"] == str(retry_after)
    return body


# --- defaults -----------------------------------------------------------------------------------
def test_defaults_are_on():
    assert DEFAULTS["RATE_LIMITS"] == {
        "token": "1200/m",
        "authorize": "60/m",
        "introspect": "6000/m",
        "revoke": "600/m",
        "par": "60/m",
        "register": "20/h",
        "device_authorization": "30/m",
        "client_auth_failures": {"ip": "10/m", "client_ip": "5/m", "client": "30/m"},
        "login_failures": {"ip": "30/m", "account_ip": "5/m", "account": "30/m"},
        "user_code_failures": {"ip": "20/m", "user_ip": "5/m", "user": "20/m"},
    }
    configured = ratelimit.configured_limits()
    assert configured["token"] == {"ip": ratelimit.Rate(1200, 60), "client": ratelimit.Rate(1200, 60)}
    # A client_id in a URL is no identity: the authorization endpoint counts per IP by default.
    assert configured["authorize"] == {"ip": ratelimit.Rate(60, 60), "client": None}
    # No client exists yet at the registration endpoint: per IP only.
    assert configured["register"] == {"ip": ratelimit.Rate(20, 3600), "client": None}


def test_default_failure_limit_throttles_the_sixth_bad_secret_from_one_address(client, machine):
    with freeze_time(START):
        for _ in range(5):
            assert cc(client, machine, secret="wrong", ip=ATTACKER).status_code == 401
        assert_throttled(cc(client, machine, ip=ATTACKER), retry_after=50)
    assert not AccessToken.objects.exists()


def test_default_authorize_limit_shows_a_page_after_sixty_requests(client, db):
    params = {"response_type": "code", "client_id": "unknown", "redirect_uri": "https://evil.example/cb"}
    with freeze_time(START):
        for _ in range(60):
            assert get_authorize(client, params).status_code == 400
        response = get_authorize(client, params)
    assert response.status_code == 429


# --- per client, per IP, windows --------------------------------------------------------------
@override_settings(**limits(token={"client": "3/m", "ip": None}))
def test_client_limit_is_per_client(client, machine, other_machine):
    with freeze_time(START):
        for _ in range(3):
            assert cc(client, machine).status_code == 200
        assert_throttled(cc(client, machine), retry_after=50)
        # Same IP, other client: its own budget.
        assert cc(client, other_machine).status_code == 200
    assert AccessToken.objects.filter(application=machine).count() == 3


def test_the_defaults_never_throttle_a_service_asking_ten_tokens_a_second(rf, machine):
    """600 authenticated token requests in one minute from one address, through the limiter with
    the shipped defaults: none refused."""
    cache = caches[ratelimit.settings.RATE_LIMIT_CACHE]
    window_start = 1_900_000_020.0  # a minute boundary
    auth = basic_auth(machine.client_id, machine.raw_secret)
    for i in range(600):
        request = rf.post(TOKEN_URL, CC, HTTP_AUTHORIZATION=auth, REMOTE_ADDR="203.0.113.5")
        limiter = ratelimit.Limiter("token", request, ratelimit.configured_limits())
        now = window_start + i * 0.1
        assert limiter.check(cache, now) is None, f"request {i + 1} refused"
        limiter.record(cache, now, HttpResponse(status=200))


def busy(client, rates) -> dict:
    return {
        "OAUTH_SERVER": {"RATE_LIMITS": {"token": "3/m"}, "CLIENT_RATE_LIMITS": {client.client_id: rates}}
    }


def test_a_client_override_raises_one_clients_limit_only(client, machine, other_machine):
    with override_settings(**busy(machine, {"token": {"ip": "10/m", "client": "10/m"}})), freeze_time(START):
        for _ in range(6):
            assert cc(client, machine).status_code == 200
        for _ in range(3):
            assert cc(client, other_machine, ip="198.51.100.7").status_code == 200
        assert_throttled(cc(client, other_machine, ip="198.51.100.7"))


def test_a_client_override_can_lower_a_limit(client, machine, other_machine):
    with override_settings(**busy(machine, {"token": {"ip": None, "client": "1/m"}})), freeze_time(START):
        assert cc(client, machine).status_code == 200
        assert_throttled(cc(client, machine, ip="198.51.100.8"))
        assert cc(client, other_machine).status_code == 200


def test_an_override_is_not_had_by_naming_the_client_without_credentials(client, machine):
    with override_settings(**busy(machine, {"token": "100/m"})), freeze_time(START):
        for _ in range(3):
            response = client.post(TOKEN_URL, {**CC, "client_id": machine.client_id})
            assert response.status_code == 401
        assert_throttled(client.post(TOKEN_URL, {**CC, "client_id": machine.client_id}))


@override_settings(**limits(token={"client": "3/m", "ip": None}))
def test_window_end_lifts_the_limit(client, machine):
    with freeze_time(START) as frozen:
        for _ in range(3):
            assert cc(client, machine).status_code == 200
        assert_throttled(cc(client, machine), retry_after=50)
        frozen.tick(timedelta(seconds=49))
        assert_throttled(cc(client, machine), retry_after=1)
        frozen.tick(timedelta(seconds=1))
        assert cc(client, machine).status_code == 200


@override_settings(**limits(token={"ip": "3/m", "client": None}))
def test_ip_limit_is_per_ip(client, machine):
    with freeze_time(START):
        for _ in range(3):
            assert cc(client, machine, ip="198.51.100.1").status_code == 200
        assert_throttled(cc(client, machine, ip="198.51.100.1"))
        assert cc(client, machine, ip="198.51.100.2").status_code == 200


@override_settings(**limits(token="3/m"))
def test_ip_limit_counts_every_client_and_every_answer(client, machine, other_machine):
    with freeze_time(START):
        assert cc(client, machine).status_code == 200
        assert cc(client, other_machine).status_code == 200
        assert client.post(TOKEN_URL, {"grant_type": "nonsense"}).status_code in (400, 401)
        assert_throttled(cc(client, machine))


@override_settings(**limits(token={"client": "2/m", "ip": None}, client_auth_failures=None))
def test_nobody_can_spend_a_client_budget_without_its_secret(client, machine):
    """Requests that name a client without (the right) secret do not count against it."""
    with freeze_time(START):
        for _ in range(5):
            assert cc(client, machine, secret="wrong").status_code == 401
            no_secret = client.post(TOKEN_URL, {**CC, "client_id": machine.client_id})
            assert no_secret.status_code == 401
        assert cc(client, machine).status_code == 200


@override_settings(**limits(token={"client": "2/m", "ip": None}))
def test_public_clients_are_limited_per_ip_only(client, db):
    """A public client_id is no identity: counting it would let anyone lock its users out."""
    spa = PublicClientFactory()
    with freeze_time(START):
        for _ in range(5):
            response = client.post(
                TOKEN_URL, {"grant_type": "authorization_code", "code": "x", "client_id": spa.client_id}
            )
            assert response.status_code == 400
            assert response.json()["error"] == "invalid_grant"


@override_settings(**limits(token="2/m"))
def test_options_requests_are_not_counted(client, machine):
    for _ in range(5):
        assert client.options(TOKEN_URL).status_code == 200
    assert cc(client, machine).status_code == 200


# --- failed client authentications -------------------------------------------------------------
def introspect(browser, client, secret: str | None = None, ip: str = "127.0.0.1"):
    secret = client.raw_secret if secret is None else secret
    auth = basic_auth(client.client_id, secret)
    return browser.post(INTROSPECT_URL, {"token": "t"}, HTTP_AUTHORIZATION=auth, REMOTE_ADDR=ip)


def revoke(browser, client, secret: str | None = None, ip: str = "127.0.0.1"):
    secret = client.raw_secret if secret is None else secret
    auth = basic_auth(client.client_id, secret)
    return browser.post(REVOKE_URL, {"token": "t"}, HTTP_AUTHORIZATION=auth, REMOTE_ADDR=ip)


ENDPOINT_CALLS = {"token": cc, "introspect": introspect, "revoke": revoke}


def attack_then_victim(browser, machine) -> None:
    """Issue 9 item 3: bad secrets for a client from one address, with the default limits; the
    attacker is throttled, the client's right secret from another address keeps working."""
    for attempt in range(12):
        call = list(ENDPOINT_CALLS.values())[attempt % 3]
        response = call(browser, machine, secret="wrong", ip=ATTACKER)
        assert response.status_code == (401 if attempt < 5 else 429), (attempt, response.content)
    # The attacker's address is throttled, right secret or not, at every endpoint.
    for call in ENDPOINT_CALLS.values():
        assert_throttled(call(browser, machine, ip=ATTACKER), retry_after=50)
    # The client, from its own address, is not.
    assert cc(browser, machine, ip=VICTIM).status_code == 200
    assert introspect(browser, machine, ip=VICTIM).json() == {"active": False}
    assert revoke(browser, machine, ip=VICTIM).status_code == 200


def test_failures_from_one_address_do_not_lock_the_client_out_elsewhere(client, machine):
    with freeze_time(START):
        attack_then_victim(client, machine)
    assert AccessToken.objects.filter(application=machine).count() == 1


@pytest.mark.parametrize("endpoint", sorted(ENDPOINT_CALLS))
@override_settings(**limits(client_auth_failures="3/m"))
def test_a_full_failure_limit_refuses_the_attacker_only(client, machine, endpoint):
    """The issue-9 lockout: before, the right secret from anywhere got 429 for the window."""
    call = ENDPOINT_CALLS[endpoint]
    with freeze_time(START):
        for _ in range(3):
            assert call(client, machine, secret="wrong", ip=ATTACKER).status_code == 401
        assert_throttled(call(client, machine, ip=ATTACKER), retry_after=50)
        for victim_call in ENDPOINT_CALLS.values():
            assert victim_call(client, machine, ip=VICTIM).status_code == 200


@pytest.mark.parametrize("endpoint", sorted(ENDPOINT_CALLS))
@override_settings(**limits(client_auth_failures={"client_ip": "3/m"}))
def test_per_client_and_address_limit(client, machine, other_machine, endpoint):
    call = ENDPOINT_CALLS[endpoint]
    with freeze_time(START) as frozen:
        for _ in range(3):
            assert call(client, machine, secret="wrong", ip=ATTACKER).status_code == 401
        assert_throttled(call(client, machine, ip=ATTACKER), retry_after=50)
        assert_throttled(cc(client, machine, ip=ATTACKER), retry_after=50)
        # Other clients from that address, and this client from elsewhere, are served.
        assert call(client, other_machine, ip=ATTACKER).status_code == 200
        assert call(client, machine, ip=VICTIM).status_code == 200
        frozen.tick(timedelta(seconds=50))
        assert call(client, machine, ip=ATTACKER).status_code == 200


@override_settings(**limits(client_auth_failures={"client": "5/m"}))
def test_distributed_guessing_meets_a_ceiling_that_locks_nobody_out(client, machine):
    """Past the client's ceiling, an address that already failed for it gets no further guess;
    an address that did not fail (the real client) is still served."""
    with freeze_time(START):
        guessers = [f"198.51.100.{n}" for n in range(1, 6)]
        for ip in guessers:
            assert cc(client, machine, secret="wrong", ip=ip).status_code == 401
        for ip in guessers:
            assert_throttled(cc(client, machine, secret="wrong", ip=ip), retry_after=50)
        # A fresh guesser still gets a guess, and only one.
        assert cc(client, machine, secret="wrong", ip="198.51.100.99").status_code == 401
        assert_throttled(cc(client, machine, secret="wrong", ip="198.51.100.99"))
        assert cc(client, machine, ip=VICTIM).status_code == 200
        assert introspect(client, machine, ip=VICTIM).status_code == 200
        assert revoke(client, machine, ip=VICTIM).status_code == 200


@override_settings(**limits(client_auth_failures="3/m"))
def test_failures_lock_the_ip_out_for_every_client(client, machine, other_machine):
    with freeze_time(START):
        for n in range(3):
            response = client.post(
                TOKEN_URL, CC, HTTP_AUTHORIZATION=basic_auth(f"guess-{n}", "x"), REMOTE_ADDR="198.51.100.1"
            )
            assert response.status_code == 401
        assert_throttled(cc(client, other_machine, ip="198.51.100.1"))
        assert cc(client, other_machine, ip="203.0.113.9").status_code == 200


@override_settings(**limits(client_auth_failures="2/m"))
def test_successful_requests_are_not_failures(client, machine):
    with freeze_time(START):
        for _ in range(5):
            assert cc(client, machine).status_code == 200


@override_settings(**limits(client_auth_failures="2/m"))
def test_failures_count_at_introspection_and_revocation(client, machine):
    auth = {"HTTP_AUTHORIZATION": basic_auth(machine.client_id, "wrong")}
    with freeze_time(START):
        assert client.post(INTROSPECT_URL, {"token": "t"}, **auth).status_code == 401
        assert client.post(REVOKE_URL, {"token": "t"}, **auth).status_code == 401
        good = {"HTTP_AUTHORIZATION": basic_auth(machine.client_id, machine.raw_secret)}
        assert_throttled(client.post(INTROSPECT_URL, {"token": "t"}, **good))
        assert_throttled(client.post(REVOKE_URL, {"token": "t"}, **good))
        assert_throttled(cc(client, machine))


# --- introspection, revocation and authorization endpoints -----------------------------------
@override_settings(**limits(introspect="2/m"))
def test_introspection_limit(client, machine):
    auth = {"HTTP_AUTHORIZATION": basic_auth(machine.client_id, machine.raw_secret)}
    with freeze_time(START):
        for _ in range(2):
            assert client.post(INTROSPECT_URL, {"token": "t"}, **auth).json() == {"active": False}
        assert_throttled(client.post(INTROSPECT_URL, {"token": "t"}, **auth))


@override_settings(**limits(revoke="2/m"))
def test_revocation_limit(client, machine):
    auth = {"HTTP_AUTHORIZATION": basic_auth(machine.client_id, machine.raw_secret)}
    with freeze_time(START):
        for _ in range(2):
            assert client.post(REVOKE_URL, {"token": "t"}, **auth).status_code == 200
        assert_throttled(client.post(REVOKE_URL, {"token": "t"}, **auth))


@override_settings(**limits(authorize="2/m"))
def test_authorize_limit_is_a_page_never_a_redirect(client, user, web_client):
    params = authorize_params(
        web_client, challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", scope="files:read"
    )
    with freeze_time(START):
        client.force_login(user)
        for _ in range(2):
            assert get_authorize(client, params).status_code == 200
        response = get_authorize(client, params)
    assert response.status_code == 429
    assert "Location" not in response
    assert response["Retry-After"] == "50"
    assert response["Content-Type"].startswith("text/html")
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert "no-store" in response["Cache-Control"]
    assert "Too many attempts" in response.content.decode()
    assert "too_many_requests" in response.content.decode()


@override_settings(**limits(authorize={"ip": None, "client": "2/m"}))
def test_authorize_per_client_limit_when_configured(client, db):
    with freeze_time(START):
        for _ in range(2):
            assert client.get(AUTHORIZE_URL, {"client_id": "a", "response_type": "code"}).status_code == 400
        assert client.get(AUTHORIZE_URL, {"client_id": "a", "response_type": "code"}).status_code == 429
        assert client.get(AUTHORIZE_URL, {"client_id": "b", "response_type": "code"}).status_code == 400


# --- switching limits off ----------------------------------------------------------------------
@override_settings(OAUTH_SERVER={"RATE_LIMITS": None})
def test_none_disables_rate_limiting(client, machine):
    for _ in range(12):
        assert cc(client, machine, secret="wrong").status_code == 401
    assert cc(client, machine).status_code == 200


@override_settings(**limits(client_auth_failures=None, token="2/m"))
def test_none_disables_one_limit(client, machine):
    for _ in range(12):
        assert cc(client, machine, secret="wrong", ip=f"198.51.100.{_}").status_code == 401
    assert cc(client, machine, ip="203.0.113.1").status_code == 200
    assert cc(client, machine, ip="203.0.113.1").status_code == 200
    assert_throttled(cc(client, machine, ip="203.0.113.1"))


@override_settings(OAUTH_SERVER={"RATE_LIMITS": {"token": "1/m"}, "RATE_LIMIT_CACHE": "missing"})
def test_a_broken_limiter_fails_open(client, machine, caplog):
    assert cc(client, machine).status_code == 200
    assert cc(client, machine).status_code == 200
    assert "Rate limiting of 'token' skipped" in caplog.text


# --- client IP and X-Forwarded-For ---------------------------------------------------------------
def ip_of(remote: str, forwarded: str | None = None) -> str:
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return ratelimit.client_ip(RequestFactory().get("/", **extra))


def test_x_forwarded_for_is_ignored_by_default():
    assert ip_of("198.51.100.7", "203.0.113.1") == "198.51.100.7"


@override_settings(OAUTH_SERVER={"TRUSTED_PROXIES": ["10.0.0.0/8", "192.0.2.1"]})
def test_x_forwarded_for_from_trusted_proxies():
    # The proxy appended the address it saw; what the client wrote further left is not believed.
    assert ip_of("10.0.0.5", "1.1.1.1, 203.0.113.7") == "203.0.113.7"
    assert ip_of("10.0.0.5", "9.9.9.9, 203.0.113.7") == "203.0.113.7"
    # Two trusted hops.
    assert ip_of("10.0.0.5", "203.0.113.7, 192.0.2.1") == "203.0.113.7"
    # A request that did not come through a trusted proxy: its header means nothing.
    assert ip_of("198.51.100.7", "203.0.113.7") == "198.51.100.7"
    # Garbage where the proxy's entry should be: the proxy is blamed, not an address of our choosing.
    assert ip_of("10.0.0.5", "203.0.113.7, nonsense") == "10.0.0.5"
    assert ip_of("10.0.0.5") == "10.0.0.5"


@override_settings(**limits(token={"ip": "2/m", "client": None}))
def test_spoofed_x_forwarded_for_does_not_escape_the_ip_limit(client, machine):
    with freeze_time(START):
        for n in range(2):
            assert client.post(TOKEN_URL, CC, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code == 401
        assert_throttled(client.post(TOKEN_URL, CC, HTTP_X_FORWARDED_FOR="203.0.113.99"))


def test_ipv6_clients_are_counted_per_64():
    assert ip_of("2001:db8:1:2:aaaa::1") == ip_of("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert ip_of("2001:db8:1:3::1") != ip_of("2001:db8:1:2::1")
    assert ip_of("::ffff:198.51.100.7") == "198.51.100.7"


# --- parsing ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "rate"),
    [
        ("120/m", (120, 60)),
        ("10/s", (10, 1)),
        ("1000/h", (1000, 3600)),
        ("5/d", (5, 86400)),
        ("100/5m", (100, 300)),
    ],
)
def test_parse_rate(value, rate):
    assert ratelimit.parse_rate(value) == ratelimit.Rate(*rate)


@pytest.mark.parametrize("value", ["120", "120/minute", "/m", "-1/m", "1/0m", 120, None])
def test_parse_rate_refuses_nonsense(value):
    with pytest.raises(ValueError):
        ratelimit.parse_rate(value)


@pytest.mark.parametrize(
    "value",
    [
        {"tokens": "1/m"},
        {"token": "fast"},
        {"token": {"user": "1/m"}},
        {"token": 5},
        "120/m",
        {"token": {"client_ip": "1/m"}},
        {"client_auth_failures": {"account": "1/m"}},
        {"login_failures": {"client": "1/m"}},
        {"login_failures": {"account_ip": "often"}},
    ],
)
def test_invalid_rate_limits_setting(value):
    with override_settings(OAUTH_SERVER={"RATE_LIMITS": value}), pytest.raises(ValueError):
        ratelimit.configured_limits()


# --- against a real Redis ------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_reachable() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception:
        return False
    return True


@pytest.fixture
def redis_cache():
    """A RedisCache under a per-test key prefix (deleted afterwards) holding the counters."""
    if not _redis_reachable():
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {REDIS_URL}, and CI is set: Redis must be running.")
        pytest.skip(
            f"Redis is not reachable at {REDIS_URL} (set REDIS_URL, or start Redis on 127.0.0.1:6379)."
        )
    prefix = f"oauth-server-test-{uuid.uuid4().hex}"
    caches_setting = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "ratelimit": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": prefix,
        },
    }
    with override_settings(CACHES=caches_setting):
        cache = caches["ratelimit"]
        yield cache
        raw = cache._cache.get_client(write=True)
        keys = list(raw.scan_iter(match=f"{prefix}:*"))
        if keys:
            raw.delete(*keys)


class TestRedis:
    @pytest.fixture(autouse=True)
    def _use_redis(self, redis_cache):
        self.cache = redis_cache

    def test_counters_live_in_redis(self, client, machine, other_machine):
        with override_settings(
            OAUTH_SERVER={
                "RATE_LIMITS": {"token": {"client": "2/m", "ip": None}},
                "RATE_LIMIT_CACHE": "ratelimit",
            }
        ):
            with freeze_time(START) as frozen:
                assert cc(client, machine).status_code == 200
                assert cc(client, machine).status_code == 200
                assert_throttled(cc(client, machine), retry_after=50)
                assert cc(client, other_machine).status_code == 200
                frozen.tick(timedelta(seconds=50))
                assert cc(client, machine).status_code == 200
            raw = self.cache._cache.get_client()
            assert any(b":oauth_server:ratelimit:token:client:" in key for key in raw.scan_iter())
        # Nothing went to the default (LocMem) cache.
        assert not any("ratelimit" in key for key in caches["default"]._cache)

    def test_failure_lockout(self, client, machine):
        with (
            override_settings(
                OAUTH_SERVER={"RATE_LIMITS": {"client_auth_failures": "2/m"}, "RATE_LIMIT_CACHE": "ratelimit"}
            ),
            freeze_time(START),
        ):
            assert cc(client, machine, secret="wrong").status_code == 401
            assert cc(client, machine, secret="wrong").status_code == 401
            assert_throttled(cc(client, machine))

    def test_failures_throttle_the_attacker_not_the_client(self, client, machine):
        with override_settings(OAUTH_SERVER={"RATE_LIMIT_CACHE": "ratelimit"}), freeze_time(START):
            attack_then_victim(client, machine)
        raw = self.cache._cache.get_client()
        assert any(b":oauth_server:ratelimit:client_auth_failures:client_ip:" in k for k in raw.scan_iter())

    @pytest.mark.parametrize("limit", [{"client_ip": "3/m"}, {"client": "3/m"}])
    def test_a_throttled_address_does_not_stop_the_client_elsewhere(self, client, machine, limit):
        settings_ = {"RATE_LIMITS": {"client_auth_failures": limit}, "RATE_LIMIT_CACHE": "ratelimit"}
        with override_settings(OAUTH_SERVER=settings_), freeze_time(START):
            for _ in range(3):
                assert cc(client, machine, secret="wrong", ip=ATTACKER).status_code == 401
            assert_throttled(cc(client, machine, ip=ATTACKER))
            assert cc(client, machine, ip=VICTIM).status_code == 200

    def test_increments_are_atomic(self):
        counter = ratelimit.Counter("token", "ip", "198.51.100.1", ratelimit.Rate(1000, 60))
        now = START.timestamp()
        results: list[int] = []
        lock = threading.Lock()

        def hit():
            for _ in range(10):
                value = counter.hit(self.cache, now)
                with lock:
                    results.append(value)

        threads = [threading.Thread(target=hit) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Every request got its own count: no two saw the same value, none was lost.
        assert sorted(results) == list(range(1, 81))
        assert self.cache.get(counter.key(now)) == 80
        # The key expires with its window (here 50 s + 1 s of leeway), so Redis cleans up itself.
        ttl = self.cache._cache.get_client().ttl(self.cache.make_key(counter.key(now)))
        assert 0 < ttl <= 51


@pytest.mark.parametrize("url", [INTROSPECT_URL, REVOKE_URL, TOKEN_URL])
def test_the_limiter_reading_the_body_leaves_body_errors_to_the_view(client, db, url):
    """The limiter looks for client_id in the body first; a body that cannot be parsed must still
    reach the view as one, not as an empty form."""
    response = client.post(
        url,
        b"--x\r\ngarbage",
        content_type="multipart/form-data; boundary=",
    )
    assert response.status_code == 400
    if url != TOKEN_URL:
        assert response.json()["error_description"] == "The request body could not be read."


def test_a_hit_in_a_busy_window_costs_one_cache_operation_and_counts_from_one():
    """``incr`` first: after the window's first request, counting is one cache operation (with a
    shared Redis cache, a round trip saved per counter and request)."""
    from django.core.cache import caches

    from oauth_server import ratelimit as rl

    real = caches["default"]
    real.clear()
    calls: list[str] = []

    class Recording:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(real, name)

    counter = rl.Counter("token", "ip", "192.0.2.7", rl.Rate(10, 60))
    now = 1_000_000.0
    assert counter.hit(Recording(), now) == 1  # the window's first: incr misses, add creates
    calls.clear()
    assert counter.hit(Recording(), now + 1) == 2
    assert counter.hit(Recording(), now + 2) == 3
    assert calls == ["incr", "incr"]
    assert counter.hit(Recording(), now + 60) == 1  # the next window starts from one again
