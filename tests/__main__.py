"""Run the whole suite on SQLite, then on PostgreSQL: ``python -m tests [pytest args]``.

PostgreSQL is ``postgres://postgres@127.0.0.1:5432/postgres`` unless ``TEST_POSTGRES_URL`` says
otherwise. When no server answers, the PostgreSQL run is reported as SKIPPED in a banner that
cannot be missed; with ``CI`` set (``.ci/run`` sets it) an unreachable server is a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from urllib.parse import urlsplit

DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=3):
            return True
    except OSError:
        return False


def _banner(text: str) -> None:
    line = "=" * 78
    print(f"\n{line}\n{text}\n{line}\n", flush=True)


def _run(label: str, env_extra: dict[str, str], args: list[str]) -> int:
    _banner(f"Test suite on {label}")
    env = {**os.environ, **env_extra}
    cmd = [sys.executable, "-m", "pytest", *args]
    return subprocess.call(cmd, env=env)  # noqa: S603


def main(argv: list[str]) -> int:
    args = argv or []
    # Two cores: run in parallel unless the caller chose otherwise.
    if not any(a.startswith("-n") or a == "-p" for a in args):
        args = ["-n", os.environ.get("TEST_WORKERS", "2"), *args]
    results: dict[str, str] = {}

    sqlite_env = {"DATABASE_URL": "sqlite://:memory:"}
    rc_sqlite = _run("SQLite", sqlite_env, args)
    results["SQLite"] = "passed" if rc_sqlite == 0 else f"FAILED (exit {rc_sqlite})"

    pg_url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG)
    rc_pg = 0
    if _reachable(pg_url):
        # Tests marked ``once`` (database-independent, e.g. building and installing the wheel) ran
        # on the SQLite pass: tests/conftest.py skips them when TESTS_REPEAT_PASS is set.
        rc_pg = _run("PostgreSQL", {"DATABASE_URL": pg_url, "TESTS_REPEAT_PASS": "1"}, args)
        results["PostgreSQL"] = "passed" if rc_pg == 0 else f"FAILED (exit {rc_pg})"
    elif os.environ.get("CI"):
        results["PostgreSQL"] = f"FAILED: no server at {pg_url} (required when CI is set)"
        rc_pg = 1
    else:
        results["PostgreSQL"] = f"SKIPPED: no server at {pg_url} -- the suite did NOT run on PostgreSQL"

    _banner("\n".join(f"{db:<11} {outcome}" for db, outcome in results.items()))
    return 1 if (rc_sqlite or rc_pg) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
