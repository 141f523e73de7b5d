"""System checks: a broken installation is reported by ``manage.py check``, not found in production."""

from __future__ import annotations

from unittest import mock

import pytest
from django.conf import settings
from django.core.checks import Error, Tags, Warning, run_checks
from django.db import connection
from django.test import override_settings

from oauth_server.checks import (
    check_abuse_settings,
    check_client_uris,
    check_deployment,
    check_installation,
    check_security,
)
from tests.factories import ClientFactory, PublicClientFactory


def ids(messages) -> list[str]:
    return [m.id for m in messages if m.id and m.id.startswith("oauth_server.")]


# What check --deploy asks of a production site (oauth_server.W003, W013); the test site leaves them unset.
KEY_SECRET = {
    "SIGNING_KEY_ENCRYPTION_SECRET": "a-separate-signing-key-encryption-secret",
    "CLIENT_SECRET_ENCRYPTION_KEYS": ["q6wzk-CGu4d8zCK9kBf4fM6JOEEzcJ6hQ3QyI0c8Hzo="],
}
# And what else a production site sets (W004, W007): TLS behind a proxy, counters in a shared cache.
PRODUCTION = {
    "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
    "CACHES": {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379",
        },
    },
}


def test_the_test_site_is_clean():
    assert ids(run_checks()) == []
    # A production site keeps its PostgreSQL connections (W014); the test database need not.
    with (
        override_settings(OAUTH_SERVER={**KEY_SECRET, "RATE_LIMIT_CACHE": "shared"}, **PRODUCTION),
        mock.patch.dict(settings.DATABASES["default"], {"CONN_MAX_AGE": 60}),
    ):
        assert ids(run_checks(include_deployment_checks=True)) == []


def test_missing_oauth2_provider_is_e001():
    apps = [app for app in settings.INSTALLED_APPS if app != "oauth2_provider"]
    with override_settings(INSTALLED_APPS=apps):
        messages = check_installation()
    assert ids(messages) == ["oauth_server.E001"]
    assert isinstance(messages[0], Error)
    assert "oauth2_provider" in messages[0].hint


def test_e001_is_found_by_run_checks():
    apps = [app for app in settings.INSTALLED_APPS if app != "oauth2_provider"]
    with override_settings(INSTALLED_APPS=apps):
        assert "oauth_server.E001" in ids(run_checks(tags=[Tags.compatibility]))


def test_conflicting_swap_setting_is_e002():
    with override_settings(OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL="myapp.MyToken"):
        messages = check_installation()
    assert ids(messages) == ["oauth_server.E002"]
    assert "OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL" in messages[0].msg
    assert "myapp.MyToken" in messages[0].msg


def test_each_conflicting_swap_is_reported():
    with override_settings(
        OAUTH2_PROVIDER_APPLICATION_MODEL="myapp.App", OAUTH2_PROVIDER_GRANT_MODEL="myapp.Grant"
    ):
        assert ids(check_installation()) == ["oauth_server.E002", "oauth_server.E002"]


def test_swap_setting_equal_to_ours_is_fine():
    with override_settings(OAUTH2_PROVIDER_APPLICATION_MODEL="oauth_server.Client"):
        assert ids(check_installation()) == []


@override_settings(OAUTH_SERVER={"REQUIRE_PKCE": False, **KEY_SECRET})
def test_pkce_off_is_w001_on_deploy():
    messages = check_security()
    assert ids(messages) == ["oauth_server.W001"]
    assert isinstance(messages[0], Warning)
    assert "oauth_server.W001" in ids(run_checks(include_deployment_checks=True, tags=[Tags.security]))
    # A deploy check: plain `manage.py check` does not show it.
    assert "oauth_server.W001" not in ids(run_checks())


@override_settings(OAUTH_SERVER=KEY_SECRET)
def test_pkce_on_has_no_warning():
    assert ids(check_security()) == []


# --- oauth_server.W003: signing keys encrypted under SECRET_KEY ------------------------------------------
def test_no_separate_key_encryption_secret_is_w003_on_deploy():
    messages = check_security()
    assert ids(messages) == ["oauth_server.W003"]
    assert isinstance(messages[0], Warning)
    assert "SIGNING_KEY_ENCRYPTION_SECRET_FALLBACKS" in messages[0].hint
    assert "oauth_server.W003" in ids(run_checks(include_deployment_checks=True, tags=[Tags.security]))
    assert "oauth_server.W003" not in ids(run_checks())


def test_key_encryption_secret_equal_to_secret_key_is_w003():
    with override_settings(OAUTH_SERVER={"SIGNING_KEY_ENCRYPTION_SECRET": settings.SECRET_KEY}):
        assert ids(check_security()) == ["oauth_server.W003"]
    with override_settings(OAUTH_SERVER={"SIGNING_KEY_ENCRYPTION_SECRET": ""}):
        assert ids(check_security()) == ["oauth_server.W003"]


def test_separate_key_encryption_secret_has_no_w003():
    with override_settings(OAUTH_SERVER=KEY_SECRET):
        assert ids(check_security()) == []


# --- abuse protection and deployment (W004-W008, E003) ---------------------------------------------
SHARED_CACHE = {**KEY_SECRET, "RATE_LIMIT_CACHE": "shared"}


def deploy_ids(**oauth_server) -> list[str]:
    with override_settings(OAUTH_SERVER={**SHARED_CACHE, **oauth_server}, **PRODUCTION):
        return ids(check_deployment())


def test_deploy_checks_are_found_by_check_deploy_only():
    with override_settings(OAUTH_SERVER={"RATE_LIMITS": None}):
        assert "oauth_server.W006" in ids(run_checks(include_deployment_checks=True, tags=[Tags.security]))
        assert "oauth_server.W006" not in ids(run_checks())


def test_existing_deploy_warnings_still_fire():
    """W001 (PKCE off) and W003 (signing keys under SECRET_KEY) sit next to the new checks."""
    with override_settings(OAUTH_SERVER={"REQUIRE_PKCE": False}):
        found = ids(run_checks(include_deployment_checks=True, tags=[Tags.security]))
    assert {"oauth_server.W001", "oauth_server.W003"} <= set(found)


@override_settings(DEBUG=False, SECURE_PROXY_SSL_HEADER=None, SECURE_SSL_REDIRECT=False)
def test_http_issuer_is_w004():
    with override_settings(OAUTH2_PROVIDER={"OIDC_ISS_ENDPOINT": "http://id.example.com/oauth"}):
        messages = check_deployment()
        assert "oauth_server.W004" in ids(messages)
        assert "http://id.example.com/oauth" in next(m.msg for m in messages if m.id == "oauth_server.W004")
    with override_settings(OAUTH2_PROVIDER={"OIDC_ISS_ENDPOINT": "https://id.example.com/oauth"}):
        assert "oauth_server.W004" not in ids(check_deployment())
    # Not pinned, and nothing tells Django requests are https: the issuer may come out as http.
    assert "oauth_server.W004" in ids(check_deployment())
    with override_settings(SECURE_SSL_REDIRECT=True):
        assert "oauth_server.W004" not in ids(check_deployment())
    with override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        assert "oauth_server.W004" not in ids(check_deployment())
    with override_settings(DEBUG=True):
        assert "oauth_server.W004" not in ids(check_deployment())


def test_uri_wildcards_are_w005():
    with override_settings(OAUTH2_PROVIDER={"ALLOW_URI_WILDCARDS": True}):
        assert "oauth_server.W005" in deploy_ids()
    assert "oauth_server.W005" not in deploy_ids()


def test_rate_limits_off_is_w006():
    assert deploy_ids() == []
    assert deploy_ids(RATE_LIMITS=None) == ["oauth_server.W006"]
    with override_settings(
        OAUTH_SERVER={**SHARED_CACHE, "RATE_LIMITS": {"client_auth_failures": None}}, **PRODUCTION
    ):
        messages = check_deployment()
    assert ids(messages) == ["oauth_server.W006"]
    assert "client_auth_failures" in messages[0].msg
    # Half a limit (per IP only) is still a limit.
    assert deploy_ids(RATE_LIMITS={"token": {"ip": "10/m", "client": None}}) == []


def test_local_cache_for_counters_is_w007():
    with override_settings(OAUTH_SERVER=KEY_SECRET, SECURE_SSL_REDIRECT=True):
        messages = check_deployment()
        assert ids(messages) == ["oauth_server.W007"]
        assert "each process counts alone" in messages[0].msg
        with override_settings(
            CACHES={"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
        ):
            assert "nothing is counted" in check_deployment()[0].msg
        # No limits on: nothing to count, nothing to warn about (W006 says limits are off).
        with override_settings(OAUTH_SERVER={**KEY_SECRET, "RATE_LIMITS": None}):
            assert ids(check_deployment()) == ["oauth_server.W006"]


def test_invalid_abuse_settings_are_e003_on_plain_check():
    assert check_abuse_settings() == []
    bad = {
        "RATE_LIMITS": {"token": "lots"},
        "TRUSTED_PROXIES": ["not-an-ip"],
        "RATE_LIMIT_CACHE": "nope",
        "CORS_MAX_AGE": "1h",
    }
    with override_settings(OAUTH_SERVER=bad):
        messages = check_abuse_settings()
        assert ids(messages) == ["oauth_server.E003"] * 4
        assert all(isinstance(m, Error) for m in messages)
        assert "oauth_server.E003" in ids(run_checks())


@pytest.mark.parametrize(
    "value",
    [
        ["client-a"],
        {"client-a": "6000/m"},
        {"client-a": {"authorize": "600/m"}},  # nobody authenticates there: no per-client override
        {"client-a": {"token": "lots"}},
        {"client-a": {"token": {"ip": "1/m", "everyone": "2/m"}}},
    ],
)
def test_invalid_client_rate_limits_are_e003(value):
    with override_settings(OAUTH_SERVER={"CLIENT_RATE_LIMITS": value}):
        messages = check_abuse_settings()
    assert ids(messages) == ["oauth_server.E003"]
    assert "CLIENT_RATE_LIMITS" in messages[0].msg


def test_client_uris_are_w008_with_database(db):
    ClientFactory(name="Fine", redirect_uris="https://a.example/cb http://127.0.0.1:8000/cb http://[::1]/cb")
    ClientFactory(name="Clear", redirect_uris="http://app.example.com/cb", post_logout_redirect_uris="")
    PublicClientFactory(name="Origin", allowed_origins="http://spa.example.com")
    ClientFactory(
        name="Wild", redirect_uris="https://a.example/cb", post_logout_redirect_uris="https://*.a.example/"
    )
    assert check_client_uris() == []  # database checks only run for `check --database`
    messages = check_client_uris(databases=[connection.alias])
    assert ids(messages) == ["oauth_server.W008"] * 3
    text = " ".join(m.msg for m in messages)
    assert "'Clear'" in text and "http://app.example.com/cb" in text
    assert "http://spa.example.com" in text and "https://*.a.example/" in text
    assert "'Fine'" not in text
    assert "oauth_server.W008" in ids(
        run_checks(include_deployment_checks=True, databases=[connection.alias], tags=[Tags.database])
    )
    assert "oauth_server.W008" not in ids(run_checks(databases=[connection.alias]))


# --- W014: a PostgreSQL connection per request --------------------------------------------------------
def _databases(**entry) -> dict:
    return {"default": {"NAME": "oauth", "CONN_MAX_AGE": 0, "OPTIONS": {}, **entry}}


@pytest.mark.parametrize(
    ("entry", "warned"),
    [
        ({"ENGINE": "django.db.backends.postgresql"}, True),
        ({"ENGINE": "django.contrib.gis.db.backends.postgis"}, True),
        ({"ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": 60}, False),
        ({"ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": None}, False),  # unlimited
        ({"ENGINE": "django.db.backends.postgresql", "OPTIONS": {"pool": True}}, False),
        ({"ENGINE": "django.db.backends.sqlite3"}, False),
    ],
)
def test_w014_a_postgresql_connection_per_request(entry, warned):
    from oauth_server.checks import check_persistent_connections

    messages = check_persistent_connections(database_settings=_databases(**entry))
    assert ids(messages) == (["oauth_server.W014"] if warned else [])


def test_w014_is_a_deployment_check_and_the_demo_ships_persistent_connections(monkeypatch):
    import importlib

    from oauth_server.checks import check_persistent_connections

    assert getattr(check_persistent_connections, "tags", None) is not None
    assert check_persistent_connections not in [c for c in _plain_checks()]
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/example")
    monkeypatch.delenv("DATABASE_CONN_MAX_AGE", raising=False)
    import example_project.settings as demo_settings

    try:
        fresh = importlib.reload(demo_settings)
        assert fresh.DATABASES["default"]["CONN_MAX_AGE"] == 60
        assert fresh.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
    finally:
        monkeypatch.undo()
        importlib.reload(demo_settings)


def _plain_checks():
    from django.core.checks import registry

    return registry.registry.get_checks(include_deployment_checks=False)


def test_the_demo_can_use_psycopgs_pool_and_w014_accepts_it(monkeypatch):
    """DATABASE_POOL=1: Django's psycopg pool instead of persistent connections (measured the same
    in docs/deployment.md); CONN_MAX_AGE must be 0 with a pool, and W014 does not ask for more."""
    import importlib

    from oauth_server.checks import check_persistent_connections

    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/example")
    monkeypatch.setenv("DATABASE_POOL", "1")
    monkeypatch.setenv("DATABASE_POOL_MAX_SIZE", "3")
    import example_project.settings as demo_settings

    try:
        fresh = importlib.reload(demo_settings)
        database = fresh.DATABASES["default"]
        assert database["CONN_MAX_AGE"] == 0 and database["CONN_HEALTH_CHECKS"] is False
        assert database["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 3}
        assert check_persistent_connections(database_settings=fresh.DATABASES) == []
    finally:
        monkeypatch.undo()
        importlib.reload(demo_settings)


def test_the_pool_serves_queries_on_postgresql(settings):
    """A real query through Django's pool (psycopg-pool is a dependency of the postgres extra)."""
    import os
    import subprocess
    import sys

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("PostgreSQL")
    url = (
        f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/postgres"
    )
    code = (
        "import django; django.setup(); from django.db import connection; "
        "cursor = connection.cursor(); cursor.execute('SELECT 41 + 1'); print(cursor.fetchone()[0]); "
        "print(type(connection.pool).__name__)"
    )
    env = {"DATABASE_URL": url, "DATABASE_POOL": "1", "DJANGO_SETTINGS_MODULE": "example_project.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["42", "ConnectionPool"]
