import os

import pytest
from django.core.cache import caches

from oauth_server import keys
from oauth_server.conf import settings as server_settings
from tests.factories import ClientFactory, MachineClientFactory, PublicClientFactory, UserFactory


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def web_client(db):
    return ClientFactory(scopes=["files:read", "files:write"])


@pytest.fixture
def public_client(db):
    return PublicClientFactory(scopes=["files:read"])


@pytest.fixture
def machine_client(db):
    return MachineClientFactory(scopes=["reports:read"])


# Generated signing keys, reused across tests: RSA generation (~50-150 ms a key, two keys on a test's
# first token) would otherwise dominate the suite's time.
_KEY_POOL: dict[tuple[str, int], list] = {}


@pytest.fixture(autouse=True)
def _pooled_signing_keys(monkeypatch):
    """The n-th key a test generates is the n-th of a per-process pool: keys within one test are
    still distinct (kids differ, rotation works), and every test still starts with no key rows."""
    generate = keys._generate_jwk
    used: dict[tuple[str, int], int] = {}

    def pooled(algorithm: str):
        bucket = (algorithm, server_settings.RSA_KEY_SIZE if algorithm == "RS256" else 0)
        pool = _KEY_POOL.setdefault(bucket, [])
        index = used.get(bucket, 0)
        used[bucket] = index + 1
        while len(pool) <= index:
            pool.append(generate(algorithm))
        return pool[index]

    monkeypatch.setattr(keys, "_generate_jwk", pooled)


@pytest.fixture(autouse=True)
def _fresh_signing_key_cache():
    """The active signing key is cached per process; each test's database starts without keys."""
    keys.clear_cache()
    yield
    keys.clear_cache()


@pytest.fixture(autouse=True)
def _fresh_rate_limit_counters():
    """Rate limits are on in tests (their defaults must hold for real traffic); each test starts with
    empty counters, so the suite's many requests from 127.0.0.1 never add up across tests."""
    caches["default"].clear()
    yield


def pytest_collection_modifyitems(config, items):
    """``python -m tests`` runs the suite twice (SQLite, PostgreSQL); tests marked ``once`` do not
    touch the test database, so the second pass (``TESTS_REPEAT_PASS``) skips them."""
    if not os.environ.get("TESTS_REPEAT_PASS"):
        return
    skip = pytest.mark.skip(reason="database-independent: ran on the first pass of python -m tests")
    for item in items:
        if item.get_closest_marker("once"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _default_language():
    """A request with Accept-Language leaves its language active in the thread: each test starts
    in the site's default language, whatever ran before it on this worker."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()
