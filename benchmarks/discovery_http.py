"""Discovery and JWKS over HTTP: gunicorn (2 sync workers) on PostgreSQL and Redis, load from wrk.

Serves the demo site from this checkout (and, with ``--compare DIR``, from another checkout, e.g.
``git archive <commit> | tar -x -C DIR``) one after the other on the same database, and prints
requests per second for the OIDC discovery document, the JWKS and a 404 page of the same site (the
framework's ceiling: no database, no cache). SQL per request is counted separately by the tests
(tests/test_published.py pins 0 once warm).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/scale_bench REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python benchmarks/discovery_http.py [--compare /tmp/base] [--port 18620] [--seconds 10]

The database must exist and be migrated (``manage.py migrate``); ``wrk`` must be installed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
PATHS = {
    "discovery": "/oauth/.well-known/openid-configuration",
    "jwks": "/oauth/.well-known/jwks.json",
    "404 page (ceiling)": "/no-such-page/",
}


def serve(checkout: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    import socket

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(f"port {port} is already in use: something else would be measured")
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "gunicorn",
            "example_project.wsgi",
            "--chdir",
            str(checkout),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        env={**env, "PYTHONPATH": str(checkout)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            # The first JWKS request may generate the first signing keys: give it time.
            requests.get(f"http://127.0.0.1:{port}{PATHS['jwks']}", timeout=30)
            if process.poll() is not None:
                raise SystemExit(f"gunicorn from {checkout} exited ({process.returncode})")
            return process
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"gunicorn from {checkout} did not answer on port {port}")


def wrk(url: str, seconds: int, connections: int) -> float:
    out = subprocess.run(  # noqa: S603
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", url],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    if errors and "no-such-page" not in url:
        print(f"  ! {errors[1]} non-2xx responses at {url}")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", type=Path, help="another checkout to measure the same way")
    parser.add_argument("--port", type=int, default=18620)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEMO_BASE_URL": f"http://127.0.0.1:{args.port}",
        "NO_PROXY": "*",
    }
    if not env.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("set DATABASE_URL=postgres://... (a migrated database)")
    checkouts = [("this checkout", REPO)] + ([("compared", args.compare)] if args.compare else [])
    rows = []
    for label, checkout in checkouts:
        process = serve(checkout, args.port, env)
        try:
            for name, path in PATHS.items():
                url = f"http://127.0.0.1:{args.port}{path}"
                wrk(url, 2, args.connections)  # warm-up
                rows.append((label, name, wrk(url, args.seconds, args.connections)))
        finally:
            process.terminate()
            process.wait(timeout=40)
    print(f"\ngunicorn 2 sync workers, wrk -t2 -c{args.connections} -d{args.seconds}s, CONN_MAX_AGE as set")
    ceiling = {label: rate for label, name, rate in rows if name.startswith("404")}
    for label, name, rate in rows:
        print(f"{label:<14} {name:<20} {rate:9.1f} req/s  {rate / ceiling[label]:6.0%} of the ceiling")


if __name__ == "__main__":
    main()
