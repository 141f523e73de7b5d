"""CPU cost of the hot-path lookups (oauth_server/lookups.py) three ways: the ORM as before,
compiled once per connection (compiled.CompiledLookup), and compiled plus prepared on PostgreSQL.

CPU time, not wall time: this process's (``time.process_time``) and the PostgreSQL backend's that
serves its connection (``/proc/<pid>/stat``), so a busy machine changes the numbers little. One
"pair" is what an introspection request looks up: the caller by client_id and the token by checksum.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/lookups.py --pairs 3000

It creates and drops a database named ``bench_lookups`` on that server.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    admin = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    import psycopg

    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS bench_lookups WITH (FORCE)")
        connection.execute("CREATE DATABASE bench_lookups")
    parts = urllib.parse.urlsplit(admin)
    os.environ["DATABASE_URL"] = urllib.parse.urlunsplit(parts._replace(path="/bench_lookups"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only")
    try:
        run(args)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute("DROP DATABASE IF EXISTS bench_lookups WITH (FORCE)")


def run(args) -> None:
    import django

    django.setup()
    from django.conf import settings as django_settings
    from django.core.management import call_command
    from django.db import connections
    from django.test.utils import override_settings

    call_command("migrate", verbosity=0)
    from oauth_server.lookups import ACCESS_TOKEN_BY_CHECKSUM, CLIENT_BY_ID
    from oauth_server.models import AccessToken, Client
    from oauth_server.tokens import token_checksum
    from tests.factories import AccessTokenFactory, ClientFactory

    client = ClientFactory(scopes=["openid", "files:read"])
    token = AccessTokenFactory(application=client)
    checksum = token_checksum(token.raw_token)

    def orm() -> None:
        next(iter(Client.objects.with_scopes().filter(client_id=client.client_id).order_by()[:1]))
        next(
            iter(
                AccessToken.objects.select_related("application", "user", "user__oauth_subject").filter(
                    token_checksum=checksum
                )[:1]
            )
        )

    def compiled() -> None:
        CLIENT_BY_ID.first(client_id=client.client_id)
        ACCESS_TOKEN_BY_CHECKSUM.first(checksum=checksum)

    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    modes = [
        ("ORM (compiled on every call)", orm, True),
        ("compiled once, not prepared", compiled, False),
        ("compiled once, prepared", compiled, True),
    ]
    print(f"{args.pairs} pairs per round; microseconds of CPU per pair (client + token lookup)")
    print(f"{'mode':32} {'python':>8} {'postgres':>9} {'total':>8}")
    for _round in range(args.rounds):
        for name, lookup, prepared in modes:
            with override_settings(
                OAUTH_SERVER={**django_settings.OAUTH_SERVER, "PREPARED_LOOKUPS": prepared}
            ):
                for _ in range(20):
                    lookup()
                python0, postgres0 = time.process_time(), backend_cpu(pid)
                for _ in range(args.pairs):
                    lookup()
                python = (time.process_time() - python0) / args.pairs * 1e6
                postgres = (backend_cpu(pid) - postgres0) / args.pairs * 1e6
            print(f"{name:32} {python:8.0f} {postgres:9.0f} {python + postgres:8.0f}")


if __name__ == "__main__":
    main()
