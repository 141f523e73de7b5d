"""The kit's JWKS cache over real HTTP (a tiny server on 127.0.0.1 whose fetches we count), and key
rotation picked up through the unknown-kid refetch. Time is a fake clock: nothing sleeps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from django.core.cache import cache
from jwcrypto import jwk, jws

from oauth_server import keys
from oauth_server.resource import InvalidToken, ServiceUnavailable, jwks, validate_access_token
from oauth_server.resource import http as rs_http
from oauth_server.resource.jwks import JWKSCache, JWKSUnavailable, parse_jwks
from tests.factories import MachineClientFactory
from tests.resource_urls import API, ISSUER, RS_SETTINGS, JWKSServer, client_credentials_token

pytestmark = pytest.mark.urls("tests.resource_urls")


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def new_key(kid: str, **kwargs) -> jwk.JWK:
    key = jwk.JWK.generate(kty="EC", crv="P-256", **kwargs)
    return jwk.JWK(**{**key.export_private(as_dict=True), "kid": kid})


def public(key: jwk.JWK, alg: str = "ES256") -> dict:
    return {**key.export_public(as_dict=True), "alg": alg, "use": "sig"}


def sign(key: jwk.JWK, payload: dict, alg: str = "ES256") -> str:
    token = jws.JWS(json.dumps(payload).encode())
    token.add_signature(key, alg=alg, protected=json.dumps({"alg": alg, "kid": key["kid"], "typ": "at+jwt"}))
    return token.serialize(compact=True)


def payload(**extra) -> dict:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": API,
        "sub": "s",
        "client_id": "c",
        "iat": now,
        "exp": now + 300,
        "scope": "files:read",
        **extra,
    }


@pytest.fixture
def server():
    with JWKSServer() as running:
        yield running


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def cache_for(server, clock):
    def build(**kwargs) -> JWKSCache:
        options = {"cache_seconds": 300, "min_refetch_interval": 10, **kwargs}
        return JWKSCache(lambda: rs_http.get_json(server.url), clock=clock, **options)

    return build


@pytest.fixture(autouse=True)
def _fresh_kit_caches():
    jwks.reset()
    cache.clear()
    yield
    jwks.reset()
    cache.clear()


# --- the cache, over HTTP ---------------------------------------------------------------------------------
def test_keys_are_fetched_once_and_cached(server, clock, cache_for):
    one = new_key("one")
    server.document = {"keys": [public(one)]}
    keys_cache = cache_for()
    assert keys_cache.get("one").kid == "one"
    clock.advance(299)
    assert keys_cache.get("one").alg == "ES256"
    assert server.fetches == 1
    clock.advance(1)  # JWKS_CACHE_SECONDS passed: fetched again
    assert keys_cache.get("one") is not None
    assert server.fetches == 2


def test_unknown_kid_refetches_once_then_is_rate_limited(server, clock, cache_for):
    server.document = {"keys": [public(new_key("one"))]}
    keys_cache = cache_for()
    assert keys_cache.get("one") is not None
    clock.advance(10)
    assert keys_cache.get("random-1") is None
    assert server.fetches == 2  # one refetch for the unknown kid
    for n in range(50):  # an attacker's random kids
        assert keys_cache.get(f"random-{n}") is None
    assert server.fetches == 2
    clock.advance(9.9)
    assert keys_cache.get("random-x") is None
    assert server.fetches == 2
    clock.advance(0.1)
    assert keys_cache.get("random-y") is None
    assert server.fetches == 3


def test_rotation_is_picked_up_by_the_unknown_kid_refetch(server, clock, cache_for):
    server.document = {"keys": [public(new_key("old"))]}
    keys_cache = cache_for()
    assert keys_cache.get("old") is not None
    clock.advance(60)
    server.document = {"keys": [public(new_key("new")), *server.document["keys"]]}
    assert keys_cache.get("new").kid == "new"
    assert keys_cache.get("old") is not None
    assert server.fetches == 2


def test_a_failed_refetch_keeps_the_last_good_keys(server, clock, cache_for, caplog):
    server.document = {"keys": [public(new_key("one"))]}
    keys_cache = cache_for()
    assert keys_cache.get("one") is not None
    server.status = 500
    clock.advance(301)  # expired: a refetch is due, and fails
    assert keys_cache.get("one").kid == "one"
    assert server.fetches == 2
    assert "keeping the last good key set" in caplog.text
    assert keys_cache.get("one") is not None and keys_cache.get("unknown") is None
    assert server.fetches == 2  # failures are rate-limited too: no hammering a server that is down
    clock.advance(10)
    server.status = 200
    server.document = {"keys": [public(new_key("two"))]}
    assert keys_cache.get("two") is not None
    assert keys_cache.get("one") is None  # the new set replaced the old one
    assert server.fetches == 3


@pytest.mark.parametrize("document", [{"no": "keys"}, {"keys": "nope"}])
def test_a_bad_document_counts_as_a_failure(server, clock, cache_for, document):
    server.document = {"keys": [public(new_key("one"))]}
    keys_cache = cache_for()
    assert keys_cache.get("one") is not None
    server.document = document
    clock.advance(301)
    assert keys_cache.get("one") is not None
    assert server.fetches == 2


def test_no_keys_ever_is_unavailable_and_rate_limited(server, clock, cache_for):
    server.status = 503
    keys_cache = cache_for()
    with pytest.raises(JWKSUnavailable):
        keys_cache.get("one")
    with pytest.raises(JWKSUnavailable):
        keys_cache.get("one")
    assert server.fetches == 1
    clock.advance(10)
    server.status = 200
    server.document = {"keys": [public(new_key("one"))]}
    assert keys_cache.get("one") is not None
    assert server.fetches == 2


class CountingLock:
    """The cache's lock, counting the threads that reached it (so the test knows they all wait)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.arrived = 0
        self.condition = threading.Condition()

    def __enter__(self):
        with self.condition:
            self.arrived += 1
            self.condition.notify_all()
        self.lock.acquire()

    def __exit__(self, *exc):
        self.lock.release()


def test_concurrent_requests_share_one_fetch(server, clock):
    """20 threads miss the same kid at once: one fetches, the 19 that waited use its result, even
    with no refetch interval at all (no thundering herd)."""
    server.document = {"keys": [public(new_key("one"))]}
    fetching, release = threading.Event(), threading.Event()

    def slow_fetch():
        fetching.set()
        assert release.wait(5)
        return rs_http.get_json(server.url)

    keys_cache = JWKSCache(slow_fetch, cache_seconds=300, min_refetch_interval=0, clock=clock)
    keys_cache._lock = lock = CountingLock()
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(keys_cache.get("one"))) for _ in range(20)]
    threads[0].start()
    assert fetching.wait(5)
    for thread in threads[1:]:
        thread.start()
    with lock.condition:
        assert lock.condition.wait_for(lambda: lock.arrived == 20, timeout=5)
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(results) == 20 and all(r is not None and r.kid == "one" for r in results)
    assert server.fetches == 1


def test_parse_jwks_keeps_only_usable_signature_keys(caplog):
    good = new_key("good")
    document = {
        "keys": [
            public(good),
            {**public(new_key("enc")), "use": "enc"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {k: v for k, v in public(new_key("x")).items() if k != "kid"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            "not a key",
            {**good.export_private(as_dict=True), "kid": "leaked", "alg": "ES256"},
        ]
    }
    parsed = parse_jwks(document)
    assert set(parsed) == {"good", "leaked"}
    assert not parsed["leaked"].jwk.has_private
    assert "private part of key leaked" in caplog.text


# --- through the settings ("url" source) -----------------------------------------------------------------
@pytest.fixture
def url_source(settings, server):
    settings.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "JWKS_SOURCE": "url", "JWKS_URL": server.url}
    return settings


def test_validation_fetches_keys_over_http_once(url_source, server):
    key = new_key("k1")
    server.document = {"keys": [public(key)]}
    token = sign(key, payload())
    for _ in range(3):
        assert validate_access_token(token).sub == "s"
    assert server.fetches == 1


def test_jwks_url_defaults_to_the_issuers(settings):
    settings.OAUTH_RESOURCE_SERVER = {"ISSUER": "https://id.example.com/oauth", "AUDIENCE": API}
    from oauth_server.resource.conf import settings as rs_settings

    assert rs_settings.jwks_url == "https://id.example.com/oauth/.well-known/jwks.json"
    assert rs_settings.introspection_url is None
    settings.OAUTH_RESOURCE_SERVER = {**settings.OAUTH_RESOURCE_SERVER, "INTROSPECTION_CLIENT_ID": "api"}
    assert rs_settings.introspection_url == "https://id.example.com/oauth/introspect/"


def test_new_kid_within_the_refetch_interval_is_rejected_then_accepted(url_source, server):
    old, new = new_key("old"), new_key("new")
    server.document = {"keys": [public(old)]}
    assert validate_access_token(sign(old, payload()))
    server.document = {"keys": [public(new), public(old)]}
    # Fetched a moment ago: the refetch is rate-limited (JWKS_MIN_REFETCH_INTERVAL = 10 s).
    with pytest.raises(InvalidToken, match="unknown key"):
        validate_access_token(sign(new, payload()))
    assert server.fetches == 1
    url_source.OAUTH_RESOURCE_SERVER = {**url_source.OAUTH_RESOURCE_SERVER, "JWKS_MIN_REFETCH_INTERVAL": 0}
    assert validate_access_token(sign(old, payload()))  # a settings change starts a new cache: fetch
    assert server.fetches == 2
    server.document = {"keys": [public(newer := new_key("newer")), public(new)]}
    assert validate_access_token(sign(new, payload())).sub == "s"
    assert server.fetches == 2
    assert validate_access_token(sign(newer, payload())).sub == "s"  # unknown kid, no interval: refetch
    assert server.fetches == 3


def test_key_alg_and_token_alg_must_agree(url_source, server):
    key = new_key("k1")
    server.document = {"keys": [public(key, alg="ES384")]}
    url_source.OAUTH_RESOURCE_SERVER = {**url_source.OAUTH_RESOURCE_SERVER, "ALGORITHMS": ["ES256", "ES384"]}
    with pytest.raises(InvalidToken, match="does not match its key"):
        validate_access_token(sign(key, payload()))


def test_unreachable_jwks_is_service_unavailable(settings):
    settings.OAUTH_RESOURCE_SERVER = {
        **RS_SETTINGS,
        "JWKS_SOURCE": "url",
        "JWKS_URL": "http://127.0.0.1:9/jwks.json",
        "HTTP_TIMEOUT": 2,
    }
    key = new_key("k1")
    with pytest.raises(ServiceUnavailable):
        validate_access_token(sign(key, payload()))


def test_only_http_urls_are_fetched(settings):
    settings.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "JWKS_SOURCE": "url", "JWKS_URL": "file:///etc/passwd"}
    with pytest.raises(ServiceUnavailable):
        validate_access_token(sign(new_key("k1"), payload()))


# --- the provider's own keys ("local" source) across rotations ----------------------------------------------
def test_local_source_follows_provider_rotations(db, client, settings, django_assert_num_queries):
    settings.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "JWKS_MIN_REFETCH_INTERVAL": 0}
    machine = MachineClientFactory(scopes=["files:read"], audiences=[API])
    first = client_credentials_token(client, machine, "files:read")
    with django_assert_num_queries(1):
        assert validate_access_token(first)  # the published keys: active and next
    keys.rotate()  # next -> active: already published, already cached
    second = client_credentials_token(client, machine, "files:read")
    with django_assert_num_queries(0):
        assert validate_access_token(second)
    keys.rotate()  # the key made by the first rotation, unknown to our cache, now signs
    third = client_credentials_token(client, machine, "files:read")
    with django_assert_num_queries(1):
        assert validate_access_token(third)  # one refetch on the unknown kid
    with django_assert_num_queries(0):
        for token in (first, second, third):  # retired keys stay published until their tokens expire
            assert validate_access_token(token).client_id == machine.client_id


# --- an API project without the provider app -------------------------------------------------------------
STANDALONE_API = """
import json, os, sys
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
    DATABASES={},
    OAUTH_RESOURCE_SERVER={
        "ISSUER": os.environ["RS_ISSUER"], "AUDIENCE": os.environ["RS_AUDIENCE"],
        "JWKS_URL": os.environ["RS_JWKS_URL"], "ALGORITHMS": ["ES256"],
    },
)
django.setup()
from oauth_server.resource import validate_access_token
from oauth_server.resource.drf import BearerTokenAuthentication, HasScope
claims = validate_access_token(os.environ["RS_TOKEN"])
provider = sorted(
    m for m in sys.modules if m.startswith("oauth_server.") and not m.startswith("oauth_server.resource")
)
print(json.dumps({"sub": claims.sub, "scopes": sorted(claims.scopes), "provider_modules": provider}))
"""


def test_the_kit_runs_in_an_api_project_without_the_provider(server):
    """No oauth_server in INSTALLED_APPS, no database: the kit validates tokens and never imports the
    provider's models, keys or settings."""
    key = new_key("standalone")
    server.document = {"keys": [public(key)]}
    env = {
        **os.environ,
        "RS_ISSUER": ISSUER,
        "RS_AUDIENCE": API,
        "RS_JWKS_URL": server.url,
        "RS_TOKEN": sign(key, payload(scope="files:read files:write")),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-c", STANDALONE_API],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "sub": "s",
        "scopes": ["files:read", "files:write"],
        "provider_modules": [],
    }
    assert server.fetches == 1
