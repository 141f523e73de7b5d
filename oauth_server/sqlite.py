"""SQLite options for concurrent token requests: WAL, ``BEGIN IMMEDIATE`` and a busy timeout.

SQLite has no row locks: it lets one writer at a time hold the database. With Django's default
``DEFERRED`` transactions a token request starts as a reader and becomes a writer at its first
INSERT or UPDATE; when another connection wrote in between, SQLite cannot wait (the reader's
snapshot is stale) and raises ``database is locked`` at once, whatever the timeout: a 500, and a
refresh-token race whose losers fail that way never trigger reuse detection. ``IMMEDIATE`` takes
the write lock when the transaction begins, so concurrent token requests queue (up to ``timeout``
seconds) and each one sees the previous one's result, as the row locks do on PostgreSQL. WAL lets
readers (discovery, JWKS, introspection) go on while a writer holds the lock.

Import-safe from a settings module: nothing here touches Django. The system check
``oauth_server.W009`` (checks.py) reports a SQLite database configured without these options.
See docs/hardening.md.
"""

from __future__ import annotations

from typing import Any

# The options example_project/settings.py ships; docs/hardening.md shows them (tests/test_sqlite.py).
SQLITE_OPTIONS: dict[str, Any] = {
    # Django 5.1+: BEGIN IMMEDIATE for every transaction (atomic blocks), so writers queue.
    "transaction_mode": "IMMEDIATE",
    # Seconds a connection waits for the write lock before "database is locked" (Python's default: 5).
    "timeout": 20,
    # Run on every new connection. WAL is stored in the file (no-op on an in-memory database);
    # synchronous=FULL (SQLite's default, written out): a committed revocation survives a power loss.
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL",
}

SQLITE_ENGINES = ("django.db.backends.sqlite3", "django.contrib.gis.db.backends.spatialite")


def is_sqlite(database: dict[str, Any]) -> bool:
    """Whether a DATABASES entry uses Django's SQLite backend (or SpatiaLite, built on it)."""
    return database.get("ENGINE", "") in SQLITE_ENGINES


def configure_sqlite(databases: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Give every SQLite entry of ``databases`` the options of SQLITE_OPTIONS it does not set
    itself (a site's own OPTIONS win); other engines are left alone. Returns ``databases``::

        DATABASES = configure_sqlite({"default": dj_database_url.config(...)})
    """
    for database in databases.values():
        if is_sqlite(database):
            database["OPTIONS"] = {**SQLITE_OPTIONS, **(database.get("OPTIONS") or {})}
    return databases


def missing_options(options: dict[str, Any]) -> list[str]:
    """What a SQLite entry's OPTIONS lack of SQLITE_OPTIONS' protection, as short descriptions."""
    missing = []
    if str(options.get("transaction_mode") or "").upper() not in ("IMMEDIATE", "EXCLUSIVE"):
        missing.append('"transaction_mode": "IMMEDIATE"')
    if "timeout" not in options:
        missing.append('"timeout"')
    init = "".join(str(options.get("init_command") or "").split()).lower()
    if "journal_mode=wal" not in init:
        missing.append("PRAGMA journal_mode=WAL in init_command")
    return missing
