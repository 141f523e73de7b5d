"""The demo site, started the way a new user starts it, for end-to-end tests over real HTTP.

``demo_site`` (session-scoped) runs ``manage.py migrate``, ``seed_demo --json`` and ``runserver``
as subprocesses in a temporary directory, with the demo's own settings and a fresh SQLite file,
whatever database the test run itself uses. The server is always stopped at teardown; when a test
that used it fails, the server's log is attached to the failure report.

``production_site`` (session-scoped) serves a copy of that database the way docs/deployment.md
says a production site is served: ``DJANGO_DEBUG=0``, ``collectstatic``, gunicorn, static files
from WhiteNoise.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
MANAGE = [sys.executable, str(REPO / "manage.py")]
START_TIMEOUT = 90  # seconds for runserver to answer (a loaded 2-core machine running two servers at once)

_running: dict[str, DemoSite] = {}


@dataclass
class DemoSite:
    """A running demo site and what ``seed_demo --json`` printed for it."""

    base_url: str
    data: dict[str, Any]
    env: dict[str, str]
    cwd: Path
    log_path: Path

    @property
    def endpoints(self) -> dict[str, str]:
        return self.data["endpoints"]

    @property
    def issuer(self) -> str:
        return self.endpoints["issuer"]

    @property
    def password(self) -> str:
        return self.data["accounts"][0]["password"]

    def client(self, client_id: str) -> dict[str, Any]:
        return next(c for c in self.data["clients"] if c["client_id"] == client_id)

    def account(self, username: str) -> dict[str, Any]:
        return next(a for a in self.data["accounts"] if a["username"] == username)

    def manage(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a management command against the demo's database."""
        return _run([*MANAGE, *args], cwd=self.cwd, env=self.env, timeout=timeout)

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


def _run(
    cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd[1:])} exited with {result.returncode}\n"
            f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-5000:]}",
            pytrace=False,
        )
    return result


def _free_port() -> int:
    """A free port: the first one free in ``$E2E_PORT_RANGE`` (``18400-18499``) when set (machines
    shared by several runs give each its own range), else any the system chooses."""
    wanted = os.environ.get("E2E_PORT_RANGE", "")
    if wanted:
        low, _sep, high = wanted.partition("-")
        # pytest-xdist workers share the range: worker K of N takes every Nth port from low + K.
        worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
        for port in range(int(low) + worker, int(high or low) + 1, workers):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                if port not in _handed_out:
                    _handed_out.add(port)
                    return port
        raise RuntimeError(f"No free port in E2E_PORT_RANGE={wanted}.")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_handed_out: set[int] = set()  # free now, but promised to a server that is starting


def _log(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-5000:]


def _wait_until_serving(
    url: str, process: subprocess.Popen, log_path: Path, server: str = "runserver"
) -> None:
    http = requests.Session()
    http.trust_env = False
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"{server} exited with {process.returncode}:\n{_log(log_path)}",
                pytrace=False,
            )
        try:
            if http.get(url, timeout=5).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still loading
            pass
        time.sleep(0.2)
    pytest.fail(
        f"{server} did not answer {url} within {START_TIMEOUT}s:\n{_log(log_path)}",
        pytrace=False,
    )


def demo_env(cwd: Path, base_url: str) -> dict[str, str]:
    """The environment of the demo's commands: its own settings and a fresh SQLite file in ``cwd``."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DATABASE_URL": f"sqlite:///{cwd / 'demo.sqlite3'}",
        # As `manage.py demo` does for its address: pins the issuer, gives the APIs their audiences.
        "DEMO_BASE_URL": base_url,
        "PYTHONUNBUFFERED": "1",
        "NO_PROXY": "*",
        "no_proxy": "*",
    }


def seed_demo(cwd: Path, env: dict[str, str], base_url: str) -> dict[str, Any]:
    """``migrate`` and ``seed_demo --json``; what seed_demo printed."""
    _run([*MANAGE, "migrate", "--noinput", "-v", "0"], cwd=cwd, env=env, timeout=120)
    seeded = _run([*MANAGE, "seed_demo", "--json", "--base-url", base_url], cwd=cwd, env=env)
    return json.loads(seeded.stdout)


@contextmanager
def runservers(cwd: Path, env: dict[str, str], ports: list[int]) -> Iterator[list[Path]]:
    """``runserver --noreload`` on each port (one process each, threaded), all answering before
    this yields the log paths; every process is stopped on exit."""
    processes: list[tuple[subprocess.Popen, Path]] = []
    try:
        for port in ports:
            log_path = cwd / f"server-{port}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(  # noqa: S603
                    [*MANAGE, "runserver", f"127.0.0.1:{port}", "--noreload"],
                    cwd=cwd,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            processes.append((process, log_path))
        for port, (process, log_path) in zip(ports, processes, strict=True):
            _wait_until_serving(f"http://127.0.0.1:{port}/", process, log_path)
        yield [log_path for _, log_path in processes]
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    cwd = tmp_path_factory.mktemp("demo-site")
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = demo_env(cwd, base_url)
    data = seed_demo(cwd, env, base_url)
    with runservers(cwd, env, [port]) as (log_path,):
        site = DemoSite(base_url=base_url, data=data, env=env, cwd=cwd, log_path=log_path)
        _running["demo_site"] = site
        try:
            yield site
        finally:
            _running.pop("demo_site", None)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def copy_database(site: DemoSite, cwd: Path) -> None:
    """A copy of ``site``'s migrated and seeded SQLite database in ``cwd`` (``demo.sqlite3``), for a
    second server: far quicker than migrating and seeding again."""
    import sqlite3

    source = sqlite3.connect(site.cwd / "demo.sqlite3")
    target = sqlite3.connect(cwd / "demo.sqlite3")
    source.backup(target)
    source.close()
    target.close()


@pytest.fixture(scope="session")
def production_site(demo_site: DemoSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoSite]:
    """The demo as docs/deployment.md serves it: DEBUG off, collectstatic, gunicorn, WhiteNoise.

    It runs on a copy of ``demo_site``'s database (migrating and seeding again would double the
    set-up time); the seeded redirect URIs stay on ``demo_site``'s address, which is fine for
    reaching the sign-in and consent pages.
    """
    cwd = tmp_path_factory.mktemp("production-site")
    copy_database(demo_site, cwd)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **demo_site.env,
        "DATABASE_URL": f"sqlite:///{cwd / 'demo.sqlite3'}",
        "DEMO_BASE_URL": base_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_STATIC_ROOT": str(cwd / "static"),
    }
    _run([*MANAGE, "collectstatic", "--noinput", "-v", "0"], cwd=cwd, env=env, timeout=120)
    log_path = cwd / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "gunicorn",
                "example_project.wsgi",
                "--pythonpath",
                str(REPO),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--threads",
                "2",
            ],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_serving(base_url + "/", process, log_path, server="gunicorn")
            yield DemoSite(base_url=base_url, data=demo_site.data, env=env, cwd=cwd, log_path=log_path)
        finally:
            _stop(process)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failing test that used the demo site gets the server's log in its report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for name, site in list(_running.items()):
            if name in getattr(item, "fixturenames", ()):
                report.sections.append((f"{name} server log (last lines)", site.log_tail()))


# --- headless Chromium (tests/e2e/chromium.py), shared by the browser tests -------------------------
@pytest.fixture(scope="module")
def driver():
    """One Chromium per test module; skipped without Chromium, except under CI where it fails."""
    from tests.e2e.chromium import require_browser, start_driver

    require_browser()
    browser = start_driver()
    yield browser
    browser.quit()


@pytest.fixture
def browser(driver):
    """The module's Chromium as a new visitor sees it: no cookies, desktop size, no emulated media
    (light colour scheme), English. Modules that need another start define their own ``browser``."""
    from tests.e2e.chromium import DESKTOP, set_language

    driver.delete_all_cookies()
    driver.set_window_size(*DESKTOP)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    set_language(driver, "en")
    return driver


@pytest.fixture
def person(db):
    """The person at the browser (password: ``tests.factories.DEFAULT_PASSWORD``)."""
    from tests.factories import UserFactory

    return UserFactory(username="grace", email="grace@example.com", first_name="Grace", last_name="Hopper")


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where screenshots go: ``$OAUTH_SERVER_SCREENSHOTS`` when set, else the test's tmp_path."""
    directory = Path(os.environ.get("OAUTH_SERVER_SCREENSHOTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def site(live_server, monkeypatch):
    """pytest-django's live server, reached directly (no proxy from the environment)."""
    monkeypatch.setenv("NO_PROXY", "*")
    return live_server.url
