"""The HTTP benchmark's own parts (benchmarks/http_bench.py): parsing, the generated plain-DOT site,
the wrk script, the prepared codes and refresh tokens. No server, no network (the wrk test talks to
a local server in this process, and is skipped where wrk is not installed)."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import threading
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings

from benchmarks import bench_prep, http_bench

SAMPLE = {
    "duration_us": 2_000_000,
    "requests": 500,
    "bytes": 123456,
    "errors": {"connect": 1, "read": 2, "write": 0, "status": 7, "timeout": 3},
    "latency_us": {"min": 900, "mean": 4200.5, "max": 90000, "p50": 3500, "p90": 8000, "p99": 41000},
    "s2xx": 490,
    "s3xx": 0,
    "s4xx": 3,
    "s5xx": 4,
    "exhausted": 0,
}


def test_parse_wrk_output_reads_the_json_line_among_wrk_text():
    stdout = "Running 2s test @ http://127.0.0.1:1\n  1 threads\nBENCH_JSON " + json.dumps(SAMPLE) + "\n"
    data = http_bench.parse_wrk_output(stdout)
    assert data["rps"] == 250.0
    assert data["p50_ms"] == 3.5
    assert data["p99_ms"] == 41.0
    assert data["non_2xx"] == 7
    assert data["socket_errors"] == 6


def test_parse_wrk_output_without_summary_is_an_error():
    with pytest.raises(ValueError, match="no BENCH_JSON"):
        http_bench.parse_wrk_output("Running 2s test\nunable to connect\n")


def test_wrk_command_passes_the_scripts_arguments_in_order_and_caps_threads():
    command = http_bench.wrk_command(
        "http://127.0.0.1:18510",
        method="POST",
        path="/oauth/token/",
        auth="Basic eA==",
        body="code={item}",
        list_file="/tmp/codes.txt",
        duration=2.6,
        connections=2,
        threads=4,
        timeout=10,
    )
    assert command[:5] == ["wrk", "-t2", "-c2", "-d3s", "--timeout=10s"]
    assert command[command.index("--") + 1 :] == [
        "POST",
        "/oauth/token/",
        "Basic eA==",
        "code={item}",
        "/tmp/codes.txt",
        "2",
    ]


def test_scenario_body_keeps_the_item_placeholder_for_the_lua_script():
    scenarios = http_bench.scenarios_for("app", "http://127.0.0.1:18510")
    body = scenarios["code_exchange"].body()
    form = urllib.parse.parse_qs(body)
    assert "code={item}" in body
    assert form["redirect_uri"] == ["http://127.0.0.1:18510/demo/callback"]
    assert form["code_verifier"] == [bench_prep.CODE_VERIFIER]
    assert scenarios["refresh"].body(item="abc").endswith("refresh_token=abc")
    assert scenarios["introspection"].body(token="t0k") == "token=t0k"
    assert scenarios["api_protected"].bearer == "cc"


def test_pkce_pair_is_s256():
    import base64
    import hashlib

    digest = hashlib.sha256(bench_prep.CODE_VERIFIER.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == bench_prep.CODE_CHALLENGE
    assert 43 <= len(bench_prep.CODE_VERIFIER) <= 128


def test_generated_dot_project_is_plain_dot(tmp_path):
    site = http_bench.write_dot_project(tmp_path)
    package = site / "dotsite"
    assert sorted(p.name for p in package.iterdir()) == ["__init__.py", "settings.py", "urls.py", "wsgi.py"]
    settings_text = (package / "settings.py").read_text()
    tree = ast.parse(settings_text)
    names = {target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets}
    # DOT's defaults untouched: no OAUTH2_PROVIDER, no password hashers (PBKDF2 for secrets).
    assert "OAUTH2_PROVIDER" not in names
    assert "PASSWORD_HASHERS" not in names
    assert {"DATABASES", "INSTALLED_APPS", "ROOT_URLCONF", "LOGGING"} <= names
    assert "oauth2_provider.urls" in (package / "urls.py").read_text()
    compile((package / "wsgi.py").read_text(), "wsgi.py", "exec")


def test_count_exceptions_counts_a_chain_once():
    log = "\n".join(
        [
            "Internal Server Error: /o/token/",
            "Traceback (most recent call last):",
            '  File "x.py", line 1, in f',
            "sqlite3.OperationalError: database is locked",
            "",
            "The above exception was the direct cause of the following exception:",
            "",
            "Traceback (most recent call last):",
            '  File "y.py", line 2, in g',
            "django.db.utils.OperationalError: database is locked",
            "Traceback (most recent call last):",
            '  File "z.py", line 3, in h',
            "KeyError: 'x'",
        ]
    )
    assert http_bench.count_exceptions(log) == {"OperationalError: database is locked": 1, "KeyError: 'x'": 1}


def test_parse_vmrss():
    assert http_bench.parse_vmrss_kib("Name:\tgunicorn\nVmRSS:\t  118272 kB\nThreads:\t1\n") == 118272


def test_statement_count_leaves_out_transaction_control_only():
    statements = [
        "BEGIN IMMEDIATE",
        "SELECT 1",
        'SAVEPOINT "s1"',
        'RELEASE SAVEPOINT "s1"',
        "INSERT",
        "COMMIT",
    ]
    assert bench_prep.statement_count(statements) == 4


def test_summary_puts_this_app_beside_plain_dot():
    results = [
        http_bench.Result("app-pg-0", "client_credentials", rps=101.4, p50_ms=70.2, requests=300),
        http_bench.Result("dot-pg-0", "client_credentials_pbkdf2", rps=6.5, p50_ms=1200, requests=60),
        http_bench.Result("dot-pg-0", "client_credentials", rps=280, p50_ms=28, requests=800, non_2xx=5),
        http_bench.Result("app-pg-0", "introspection", error="preflight answered 500"),
    ]
    rows = http_bench.summary_rows(results)
    assert rows[1] == [
        "client_credentials, PostgreSQL, CONN_MAX_AGE=0",
        "101 (70 ms)",
        "6 (1200 ms)",
        "280 (28 ms), 5 errors",
    ]
    assert ["introspection, PostgreSQL, CONN_MAX_AGE=0", "failed", "–", "–"] in rows
    table = http_bench.format_table(rows)
    assert table.splitlines()[1].startswith("|---")


class _EchoCodes(BaseHTTPRequestHandler):
    received: list[str] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.received.append(urllib.parse.parse_qs(body)["code"][0])
        self.send_response(200 if self.headers.get("Authorization") == "Basic eA==" else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_lua_script_sends_each_item_once_then_counts_exhaustion(tmp_path):
    items = [f"code{i}" for i in range(40)]
    (tmp_path / "codes.txt").write_text("\n".join(items) + "\n")
    _EchoCodes.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoCodes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        command = http_bench.wrk_command(
            f"http://127.0.0.1:{server.server_address[1]}",
            method="POST",
            path="/token",
            auth="Basic eA==",
            body="grant_type=x&code={item}",
            list_file=str(tmp_path / "codes.txt"),
            duration=1,
            connections=2,
            threads=2,
            timeout=5,
        )
        output = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
    finally:
        server.shutdown()
    data = http_bench.parse_wrk_output(output)
    sent = Counter(_EchoCodes.received)
    # Thread 0 takes code0, code2, ..., code38; thread 1 the odd ones. Each sends its items once and,
    # once out of them, repeats its last one (a local server answers far more than 40 in a second).
    # wrk calls request() once on thread 0 before the run to check the script: code0 is never sent.
    assert set(sent) == set(items) - {"code0"}
    assert {item: n for item, n in sent.items() if n != 1 and item not in ("code38", "code39")} == {}
    assert data["exhausted"] > 0
    assert data["s2xx"] == data["requests"]


@pytest.mark.urls("benchmarks.bench_site.urls")
def test_bench_site_endpoints(client):
    assert client.get("/bench/api/open/").json() == {"ok": True, "client_id": None}
    response = client.get("/bench/api/protected/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_prepared_codes_and_refresh_tokens_are_accepted_by_the_token_endpoint(client):
    """What bench_prep inserts in bulk is what the app issues: the token endpoint takes each once."""
    from example_project.demo import seed

    base_url = settings.DEMO_BASE_URL
    seed.seed(base_url)
    (code,) = bench_prep.make_codes("app", base_url, 1)
    (refresh,) = bench_prep.make_refresh_tokens("app", base_url, 1)
    specs = bench_prep.requests_for("app", base_url)
    auth = {"HTTP_AUTHORIZATION": bench_prep.basic(specs["code_exchange"]["auth"])}
    exchange = {**specs["code_exchange"]["data"], "code": code}
    first = client.post(specs["code_exchange"]["path"], exchange, **auth)
    assert first.status_code == 200, first.content
    assert client.post(specs["code_exchange"]["path"], exchange, **auth).status_code == 400
    body = {**specs["refresh"]["data"], "refresh_token": refresh}
    response = client.post(specs["refresh"]["path"], body, **auth)
    assert response.status_code == 200, response.content
    assert response.json()["refresh_token"] != refresh


def test_cpu_seconds_counts_this_process_and_ignores_gone_ones():
    import os

    busy = sum(i * i for i in range(200_000))  # some CPU, so the reading cannot be zero
    assert busy > 0
    assert http_bench.cpu_seconds([os.getpid()]) > 0
    assert http_bench.cpu_seconds([2**22 + 12345]) == 0  # no such process: counted as nothing


def test_cpu_cell_shows_the_database_share_only_when_measured():
    result = http_bench.Result("app-pg-60", "introspection", worker_cpu_ms=1.234)
    assert http_bench.cpu_cell(result) == "1.23"
    result.db_cpu_ms = 0.5
    assert http_bench.cpu_cell(result) == "1.23 + 0.50"
    assert http_bench.cpu_cell(http_bench.Result("x", "y")) == ""


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql", reason="PostgreSQL"
)
def test_the_lookups_benchmark_runs_and_prepared_lookups_cost_postgresql_less():
    import os
    import sys
    from pathlib import Path

    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/postgres"
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")} | {"DATABASE_URL": url}
    command = [sys.executable, str(root / "benchmarks" / "lookups.py"), "--pairs", "300", "--rounds", "1"]
    output = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=root)
    assert output.returncode == 0, output.stderr[-2000:]
    rows = {line[:32].strip(): line[32:].split() for line in output.stdout.splitlines()[2:]}
    assert set(rows) == {
        "ORM (compiled on every call)",
        "compiled once, not prepared",
        "compiled once, prepared",
    }
    # Per pair, PostgreSQL's CPU: parsing and planning skipped once prepared.
    assert int(rows["compiled once, prepared"][1]) < int(rows["compiled once, not prepared"][1])


def test_cpu_used_leaves_out_processes_that_exited_between_the_readings():
    assert http_bench.cpu_used({1: 2.0, 2: 5.0}, {1: 2.5}) == 0.5  # 2 exited: not -5
    assert http_bench.cpu_used({1: 2.0}, {1: 2.5, 3: 9.0}) == 0.5  # 3 started after: not counted
