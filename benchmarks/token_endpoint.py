"""Token endpoint throughput and query count: client_credentials with our secret hasher vs PBKDF2.

Runs in-process through Django's test client against a throw-away SQLite file (no network, no
server), so it measures the server's own work per request: client authentication, scope checks,
token generation and the database writes.

    .venv/bin/python benchmarks/token_endpoint.py [--requests 300]

Prints one line per scenario; docs/performance.md records the numbers and this command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def setup_django(db_path: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{db_path}"
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import override_settings

    # One client from one IP sends hundreds of requests a second: keep the rate limiter running (its
    # cost is part of what is measured) but with limits this benchmark cannot reach.
    unreachable = "1000000/m"
    override_settings(
        OAUTH_SERVER={
            "RATE_LIMITS": {
                "token": unreachable,
                "authorize": unreachable,
                "introspect": unreachable,
                "revoke": unreachable,
                "client_auth_failures": unreachable,
            }
        }
    ).enable()

    call_command("migrate", verbosity=0)


def run(requests: int, show_sql: bool = False) -> None:
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.test import Client as HttpClient

    from oauth_server.models import Client, Scope

    Scope.objects.get_or_create(name="reports:read", defaults={"description": "Read reports"})
    secret = "s" * 64
    fast, _ = Client.objects.create_client(
        name="fast",
        client_type="confidential",
        grant_types=["client_credentials"],
        scopes=["reports:read"],
        client_secret=secret,
    )
    slow, _ = Client.objects.create_client(
        name="pbkdf2",
        client_type="confidential",
        grant_types=["client_credentials"],
        scopes=["reports:read"],
        client_secret=secret,
    )
    # What plain DOT stores by default: Django's PBKDF2 (1,000,000 iterations on Django 5.2).
    Client.objects.filter(pk=slow.pk).update(client_secret=make_password(secret, hasher="pbkdf2_sha256"))

    http = HttpClient()
    scenarios = (("sha256 (oauth_server)", fast, requests), ("pbkdf2_sha256 (DOT default)", slow, 20))
    for label, client, n in scenarios:
        body = {
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": secret,
            "scope": "reports:read",
        }
        assert http.post("/oauth/token/", body).status_code == 200  # warm-up
        # request_started resets connection.queries, so count with an execute wrapper instead.
        queries: list[str] = []

        def count(execute, sql, *args, _queries=queries):
            _queries.append(sql)
            return execute(sql, *args)

        with connection.execute_wrapper(count):
            http.post("/oauth/token/", body)
        timings = []
        for _ in range(n):
            start = time.perf_counter()
            response = http.post("/oauth/token/", body)
            timings.append(time.perf_counter() - start)
            assert response.status_code == 200, response.content
        total = sum(timings)
        print(
            f"{label:30s} {n:5d} requests  {n / total:8.1f} req/s  "
            f"median {statistics.median(timings) * 1000:7.2f} ms  "
            f"p95 {sorted(timings)[int(n * 0.95) - 1] * 1000:7.2f} ms  "
            f"{len(queries)} SQL queries/request"
        )
        if show_sql and client is fast:
            for number, sql in enumerate(queries, 1):
                print(f"  {number}. {sql[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--show-sql", action="store_true", help="print the SQL of one fast-hash request")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        setup_django(str(Path(tmp) / "bench.sqlite3"))
        run(args.requests, show_sql=args.show_sql)


if __name__ == "__main__":
    main()
