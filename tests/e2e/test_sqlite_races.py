"""Races at the token endpoint on SQLite, the demo's database, with real server processes.

The demo site runs as it ships (``example_project.settings``, a SQLite file in a temporary
directory, ``migrate`` + ``seed_demo``) in two ``runserver`` processes, each threaded: several
connections to one database file, as under gunicorn with several workers. 16 requests of each kind
are released together by a barrier and spread over both processes:

- ``client_credentials``: every one gets a token (no ``database is locked`` 500);
- one authorization code: exactly one winner, the others ``invalid_grant``, and the replay revokes
  what the winner got (as on PostgreSQL, tests/test_races.py);
- one refresh token: one winner, the others ``invalid_grant``, and reuse detection revokes the
  family, the winner's new refresh token included.

Without the shipped SQLite options (``oauth_server.sqlite``: WAL, ``BEGIN IMMEDIATE``, a busy
timeout) the same requests fail with 500 ``OperationalError: database is locked``. tests/test_races.py
runs the same races on PostgreSQL; see docs/hardening.md.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.e2e.browser import Browser
from tests.e2e.conftest import _free_port, demo_env, runservers, seed_demo
from tests.factories import pkce_pair

pytestmark = pytest.mark.live

RACERS = 16
SERVERS = 2
TIMEOUT = 60  # seconds for one request: generous, only there so that a hung server fails the test
WEB_APP, REPORTS = "demo-web-app", "reports-service"


@dataclass
class Site:
    base_urls: list[str]
    data: dict[str, Any]
    log_paths: list

    def client(self, client_id: str) -> dict[str, Any]:
        return next(c for c in self.data["clients"] if c["client_id"] == client_id)

    def auth(self, client_id: str) -> tuple[str, str]:
        client = self.client(client_id)
        return client["client_id"], client["client_secret"]

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in self.log_paths)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    cwd = tmp_path_factory.mktemp("sqlite-races")
    ports: list[int] = []
    while len(ports) < SERVERS:
        port = _free_port()
        if port not in ports:
            ports.append(port)
    base_urls = [f"http://127.0.0.1:{port}" for port in ports]
    env = demo_env(cwd, base_urls[0])
    data = seed_demo(cwd, env, base_urls[0])
    with runservers(cwd, env, ports) as log_paths:
        yield Site(base_urls=base_urls, data=data, log_paths=log_paths)


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def race(site: Site, data: dict[str, str], auth: tuple[str, str]) -> list[tuple[int, dict]]:
    """POST ``data`` to the token endpoint from RACERS threads released together, alternating
    between the server processes; (status, JSON body) of each."""
    barrier = threading.Barrier(RACERS)

    def one(index: int) -> tuple[int, dict]:
        base_url = site.base_urls[index % len(site.base_urls)]
        with http() as session:
            session.get(base_url + "/oauth/.well-known/jwks.json", timeout=TIMEOUT)  # connect first
            barrier.wait(timeout=TIMEOUT)
            response = session.post(base_url + "/oauth/token/", data=data, auth=auth, timeout=TIMEOUT)
        try:
            body = response.json()
        except ValueError:  # Django's 500 page
            title = re.search(r"<title>(.*?)</title>", response.text, re.S)
            body = {"error": " ".join((title[1] if title else response.text[:200]).split())}
        return response.status_code, body

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(one, range(RACERS)))


def assert_one_winner(results: list[tuple[int, dict]], site: Site) -> dict:
    server_errors = [(status, body["error"]) for status, body in results if status >= 500]
    assert not server_errors, f"{len(server_errors)} of {RACERS}: {server_errors}\n{site.logs()}"
    winners = [body for status, body in results if status == 200]
    losers = [(status, body.get("error")) for status, body in results if status != 200]
    assert len(winners) == 1, results
    assert losers == [(400, "invalid_grant")] * (RACERS - 1), losers
    return winners[0]


def authorization_code(site: Site, browser: Browser) -> tuple[str, str]:
    """Sign in and approve on the real pages; (code, PKCE verifier) for the demo web app."""
    client = site.client(WEB_APP)
    verifier, challenge = pkce_pair()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": WEB_APP,
            "redirect_uri": client["redirect_uris"][0],
            "scope": "openid offline_access files:read",
            "state": "race",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    location = browser.authorize(
        f"/oauth/authorize/?{query}", "alice", password=site.data["accounts"][0]["password"]
    )
    assert location.startswith(client["redirect_uris"][0] + "?"), location
    return parse_qs(urlsplit(location).query)["code"][0], verifier


def code_exchange(site: Site, code: str, verifier: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": site.client(WEB_APP)["redirect_uris"][0],
        "code_verifier": verifier,
    }


def refresh(site: Site, refresh_token: str) -> requests.Response:
    return http().post(
        site.base_urls[0] + "/oauth/token/",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=site.auth(WEB_APP),
        timeout=TIMEOUT,
    )


def is_active(site: Site, access_token: str) -> bool:
    response = http().post(
        site.base_urls[1] + "/oauth/introspect/",
        data={"token": access_token, "token_type_hint": "access_token"},
        auth=site.auth(WEB_APP),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return response.json()["active"]


def test_concurrent_client_credentials_requests_all_get_a_token(site):
    results = race(site, {"grant_type": "client_credentials", "scope": "reports:read"}, site.auth(REPORTS))
    failed = [(status, body.get("error")) for status, body in results if status != 200]
    assert not failed, f"{len(failed)} of {RACERS}: {failed}\n{site.logs()}"
    assert len({body["access_token"] for _, body in results}) == RACERS


def test_concurrent_redemptions_of_one_code_have_one_winner_whose_tokens_the_replay_revokes(site):
    code, verifier = authorization_code(site, Browser(site.base_urls[0]))
    winner = assert_one_winner(race(site, code_exchange(site, code, verifier), site.auth(WEB_APP)), site)
    assert {"access_token", "refresh_token", "id_token"} <= winner.keys()
    # The losers presented a redeemed code: a replay, which revokes what the code issued.
    assert not is_active(site, winner["access_token"])
    response = refresh(site, winner["refresh_token"])
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_concurrent_refreshes_of_one_token_have_one_winner_and_reuse_revokes_the_family(site):
    code, verifier = authorization_code(site, Browser(site.base_urls[0]))
    first = http().post(
        site.base_urls[0] + "/oauth/token/",
        data=code_exchange(site, code, verifier),
        auth=site.auth(WEB_APP),
        timeout=TIMEOUT,
    )
    assert first.status_code == 200, first.text
    data = {"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]}
    winner = assert_one_winner(race(site, data, site.auth(WEB_APP)), site)
    # The losers reused a rotated refresh token: the family is revoked, the winner's token included.
    assert not is_active(site, winner["access_token"])
    response = refresh(site, winner["refresh_token"])
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
