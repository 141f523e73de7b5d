"""The SQLite options the demo ships (oauth_server.sqlite), the check that asks for them (W009), and
docs/hardening.md showing exactly those. The races they prevent: tests/e2e/test_sqlite_races.py."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.checks import run_checks

from oauth_server.checks import check_sqlite_options
from oauth_server.sqlite import SQLITE_OPTIONS, configure_sqlite, missing_options

REPO = Path(__file__).resolve().parents[1]
SQLITE = "django.db.backends.sqlite3"


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_configure_sqlite_adds_the_options_to_sqlite_entries_only():
    databases = configure_sqlite(
        {
            "default": {"ENGINE": SQLITE, "NAME": "db.sqlite3"},
            "spatial": {"ENGINE": "django.contrib.gis.db.backends.spatialite", "NAME": "geo.sqlite3"},
            "pg": {"ENGINE": "django.db.backends.postgresql", "NAME": "app", "OPTIONS": {}},
        }
    )
    assert databases["default"]["OPTIONS"] == SQLITE_OPTIONS
    assert databases["spatial"]["OPTIONS"] == SQLITE_OPTIONS
    assert databases["pg"]["OPTIONS"] == {}
    assert databases["default"]["OPTIONS"] is not SQLITE_OPTIONS  # a copy: the constant stays as shipped


def test_configure_sqlite_keeps_the_sites_own_options():
    databases = configure_sqlite({"default": {"ENGINE": SQLITE, "OPTIONS": {"timeout": 60}}})
    assert databases["default"]["OPTIONS"] == {**SQLITE_OPTIONS, "timeout": 60}


def test_the_shipped_options_satisfy_the_check():
    assert missing_options(SQLITE_OPTIONS) == []


@pytest.mark.parametrize(
    ("options", "missing"),
    [
        ({}, ['"transaction_mode": "IMMEDIATE"', '"timeout"', "PRAGMA journal_mode=WAL in init_command"]),
        ({**SQLITE_OPTIONS, "transaction_mode": "DEFERRED"}, ['"transaction_mode": "IMMEDIATE"']),
        ({**SQLITE_OPTIONS, "transaction_mode": None}, ['"transaction_mode": "IMMEDIATE"']),
        ({k: v for k, v in SQLITE_OPTIONS.items() if k != "timeout"}, ['"timeout"']),
        (
            {**SQLITE_OPTIONS, "init_command": "PRAGMA synchronous=NORMAL"},
            ["PRAGMA journal_mode=WAL in init_command"],
        ),
        (
            {**SQLITE_OPTIONS, "transaction_mode": "exclusive", "init_command": "pragma JOURNAL_MODE = wal"},
            [],
        ),
    ],
)
def test_missing_options(options, missing):
    assert missing_options(options) == missing


def test_sqlite_without_the_options_is_w009(monkeypatch):
    monkeypatch.setitem(settings.DATABASES, "plain", {"ENGINE": SQLITE, "NAME": "plain.sqlite3"})
    monkeypatch.setitem(
        settings.DATABASES, "tuned", {"ENGINE": SQLITE, "NAME": "tuned.sqlite3", "OPTIONS": SQLITE_OPTIONS}
    )
    monkeypatch.setitem(settings.DATABASES, "pg", {"ENGINE": "django.db.backends.postgresql", "NAME": "x"})
    messages = check_sqlite_options()
    assert ids(messages) == ["oauth_server.W009"]
    assert "'plain'" in messages[0].msg and "database is locked" in messages[0].msg
    assert "configure_sqlite" in messages[0].hint
    assert "oauth_server.W009" in ids(run_checks())  # a plain `manage.py check` (and runserver) says so


def test_the_test_settings_use_the_shipped_options():
    database = settings.DATABASES["default"]
    if database["ENGINE"] == SQLITE:
        assert database["OPTIONS"] == SQLITE_OPTIONS
    assert check_sqlite_options() == []


def demo_database_options() -> dict:
    """DATABASES["default"]["OPTIONS"] of example_project.settings as a new user gets it (no
    DATABASE_URL: the SQLite file), read in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    code = (
        "import json, example_project.settings as s; "
        "print(json.dumps([s.DATABASES['default']['ENGINE'], s.DATABASES['default']['OPTIONS']]))"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    engine, options = json.loads(result.stdout)
    assert engine == SQLITE
    return options


def documented_options() -> dict:
    """The OPTIONS dict docs/hardening.md tells a site owner to set."""
    text = (REPO / "docs" / "hardening.md").read_text()
    found = re.findall(r'DATABASES\["default"\]\["OPTIONS"\] = (\{.*?\n\})', text, re.S)
    assert len(found) == 1, found
    return ast.literal_eval(found[0])


def test_docs_show_the_options_the_demo_ships():
    assert documented_options() == SQLITE_OPTIONS
    assert demo_database_options() == SQLITE_OPTIONS
