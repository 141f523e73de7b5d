"""Flat cost as data grows: lookups, cleartokens and audit purging on a large PostgreSQL database.

Loads ``--rows`` expired access tokens and as many audit events older than the retention period
(plus a tenth as many live tokens and recent events that must survive) with ``generate_series``
SQL, then measures, each in its own section:

- token lookups by checksum and by jti (what introspection and revocation do), on the empty
  database and at full size: the indexes must keep them flat;
- ``manage.py cleartokens`` (DOT's ``clear_expired``, batched by ``CLEAR_EXPIRED_TOKENS_BATCH_SIZE``)
  and ``manage.py purge_audit_events --batch-size``: wall time, statements, and the longest single
  statement (in autocommit each statement is its own transaction, so that is the longest time any
  row lock is held);
- meanwhile, a second connection inserts an audit event and an access token every 20 ms and looks a
  token up: its worst latency shows whether the purge blocks the hot path.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/data_growth.py [--rows 1000000] [--database scale_growth]

The database named by ``--database`` is dropped and created on the server of DATABASE_URL.
docs/performance.md records the results and the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"


def recreate_database(server_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def setup_django(database_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
    os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


class StatementTimer:
    """A connection execute_wrapper: every statement's duration and text."""

    def __init__(self) -> None:
        self.durations: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.durations.append((time.perf_counter() - start, sql))

    @property
    def longest(self) -> tuple[float, str]:
        return max(self.durations, default=(0.0, ""))


class HotPath(threading.Thread):
    """What the site keeps doing during a purge: insert an audit event and a token, look one up."""

    def __init__(self, user_id: int, client_id: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.user_id, self.client_id, self.interval = user_id, client_id, interval
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        from django.db import connection

        n = 0
        with connection.cursor() as cursor:
            while not self.stop.is_set():
                n += 1
                start = time.perf_counter()
                cursor.execute(
                    "INSERT INTO oauth_server_auditevent (created, event, outcome, client_id, username, "
                    "user_agent, details) VALUES (now(), 'token_issued', 'success', 'bench', '', '', '{}')"
                )
                cursor.execute(
                    "INSERT INTO oauth_server_accesstoken (token, token_checksum, expires, scope, resource, "
                    "created, updated, user_id, application_id, audience, jti, dpop_jkt) VALUES ('', "
                    "md5(random()::text) || md5(random()::text), now() + interval '1 hour', 'read', '[]', "
                    "now(), now(), %s, %s, '', md5(random()::text), '')",
                    [self.user_id, self.client_id],
                )
                cursor.execute(
                    "SELECT id FROM oauth_server_accesstoken WHERE token_checksum = %s", [f"live{n % 1000}"]
                )
                cursor.fetchall()
                self.latencies.append(time.perf_counter() - start)
                time.sleep(self.interval)
        connection.close()


@contextmanager
def measured(label: str, results: list[dict], user_id: int, client_id: int):
    from django.db import connection

    timer = StatementTimer()
    hot = HotPath(user_id, client_id)
    hot.start()
    start = time.perf_counter()
    with connection.execute_wrapper(timer):
        yield
    wall = time.perf_counter() - start
    hot.stop.set()
    hot.join()
    longest, sql = timer.longest
    lat = sorted(hot.latencies) or [0.0]
    results.append(
        {
            "what": label,
            "wall_s": wall,
            "statements": len(timer.durations),
            "longest_statement_ms": longest * 1000,
            "longest_statement": " ".join(sql.split())[:110],
            "hot_path_p50_ms": statistics.median(lat) * 1000,
            "hot_path_max_ms": lat[-1] * 1000,
            "hot_path_n": len(hot.latencies),
        }
    )


def load(rows: int) -> None:
    """``rows`` expired tokens and old events, and rows // 10 live tokens and recent events."""
    from django.db import connection

    live = max(rows // 10, 1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM auth_user WHERE username = 'bench'")
        user_id = cursor.fetchone()[0]
        cursor.execute("SELECT id FROM oauth_server_client WHERE name = 'bench'")
        client_id = cursor.fetchone()[0]
        token_sql = (
            "INSERT INTO oauth_server_accesstoken (token, token_checksum, expires, scope, resource, created, "
            "updated, user_id, application_id, audience, jti, dpop_jkt) "
            "SELECT '', {checksum}, {expires}, 'read', '[]', now(), now(), %s, %s, '', "
            "{jti}, '' FROM generate_series(1, %s) AS i"
        )
        cursor.execute(
            token_sql.format(
                checksum="md5('x' || i) || md5('y' || i)",
                expires="now() - interval '2 days' + i * interval '1 ms'",
                jti="md5('x' || i)",
            ),
            [user_id, client_id, rows],
        )
        cursor.execute(
            token_sql.format(checksum="'live' || i", expires="now() + interval '1 hour'", jti="'live' || i"),
            [user_id, client_id, live],
        )
        event_sql = (
            "INSERT INTO oauth_server_auditevent (created, event, outcome, client_id, username, user_agent, "
            "details, user_id, application_id) SELECT {created}, 'token_issued', 'success', 'bench', "
            "'bench', 'bench/1.0', '{{\"scopes\": [\"read\"]}}', %s, %s FROM generate_series(1, %s) AS i"
        )
        cursor.execute(
            event_sql.format(created="now() - interval '120 days' + i * interval '1 ms'"),
            [user_id, client_id, rows],
        )
        cursor.execute(
            event_sql.format(created="now() - interval '1 day' + i * interval '1 ms'"),
            [user_id, client_id, live],
        )
        cursor.execute("ANALYZE")


def lookups(label: str, results: list[dict], samples: int = 300) -> None:
    """The lookups introspection and revocation make, by checksum and by jti: round-trip time from
    this process (p50, p99; it includes this loaded machine's scheduling noise) and the server's own
    execution time from EXPLAIN ANALYZE (p50), with the index the plan used."""
    import json
    import random

    from oauth_server.models import AccessToken

    rng = random.Random(1)
    queries = {
        "token by checksum": lambda: AccessToken.objects.filter(token_checksum=f"live{rng.randint(1, 1000)}"),
        "token by jti": lambda: AccessToken.objects.filter(jti=f"live{rng.randint(1, 1000)}"),
    }
    count = AccessToken.objects.count()
    for what, make in queries.items():
        wall = []
        for _ in range(samples):
            start = time.perf_counter()
            make().first()
            wall.append((time.perf_counter() - start) * 1000)
        wall.sort()
        server, index = [], set()
        for _ in range(50):
            plan = json.loads(make().order_by("pk")[:1].explain(format="json", analyze=True))[0]
            server.append(plan["Execution Time"])
            node = plan["Plan"]
            while "Plans" in node and "Index Name" not in node:
                node = node["Plans"][0]
            index.add(node.get("Index Name", node["Node Type"]))
        results.append(
            {
                "what": f"{what} ({label}, {count:,} tokens)",
                "p50_ms": statistics.median(wall),
                "p99_ms": wall[int(len(wall) * 0.99) - 1],
                "server_p50_ms": statistics.median(server),
                "index": ", ".join(sorted(index)),
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", default="scale_growth", help="dropped and created")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between batches")
    args = parser.parse_args()

    server = os.environ.get("DATABASE_URL", DEFAULT_SERVER)
    if not server.startswith("postgres"):
        sys.exit("data_growth.py measures PostgreSQL: set DATABASE_URL=postgres://...")
    url = recreate_database(server, args.database)
    setup_django(url)

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test.utils import override_settings

    from oauth_server.models import AccessToken, AuditEvent, Client

    user = get_user_model().objects.create_user("bench", password="bench-password")
    client, _ = Client.objects.create_client(
        name="bench", client_type="confidential", grant_types=["client_credentials"]
    )
    results: list[dict] = []
    lookups("empty", results)

    start = time.perf_counter()
    load(args.rows)
    print(
        f"loaded {args.rows:,} expired tokens and old events in {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    lookups("loaded", results)

    # The hot path's own latency on this machine, with nothing being purged: the baseline.
    with measured("nothing (baseline, 20 s)", results, user.pk, client.pk):
        time.sleep(20)
    dot = {
        "CLEAR_EXPIRED_TOKENS_BATCH_SIZE": args.batch_size,
        "CLEAR_EXPIRED_TOKENS_BATCH_INTERVAL": args.pause,
    }
    from django.conf import settings

    with (
        override_settings(OAUTH2_PROVIDER={**getattr(settings, "OAUTH2_PROVIDER", {}), **dot}),
        measured(f"cleartokens (batch {args.batch_size:,})", results, user.pk, client.pk),
    ):
        call_command("cleartokens")
    with measured(f"purge_audit_events --batch-size {args.batch_size:,}", results, user.pk, client.pk):
        call_command(
            "purge_audit_events",
            "--batch-size",
            str(args.batch_size),
            "--pause",
            str(args.pause),
            stdout=open(os.devnull, "w"),  # noqa: SIM115
        )
    remaining_tokens = AccessToken.objects.count()
    remaining_events = AuditEvent.objects.count()
    lookups("after purge", results)

    print(
        f"\nrows: {args.rows:,}; left after purging: {remaining_tokens:,} tokens, {remaining_events:,} events"
    )
    for row in results:
        if "p50_ms" in row:
            print(
                f"{row['what']:<50} p50 {row['p50_ms']:7.3f} ms  p99 {row['p99_ms']:7.3f} ms  "
                f"server p50 {row['server_p50_ms']:6.3f} ms  ({row['index']})"
            )
    for row in results:
        if "wall_s" in row:
            print(
                f"{row['what']:<40} {row['wall_s']:7.1f} s  {row['statements']:5d} statements  longest "
                f"{row['longest_statement_ms']:8.1f} ms  hot path p50 {row['hot_path_p50_ms']:.1f} ms "
                f"max {row['hot_path_max_ms']:.1f} ms (n={row['hot_path_n']})"
            )
            print(f"    longest: {row['longest_statement']}")


if __name__ == "__main__":
    main()
