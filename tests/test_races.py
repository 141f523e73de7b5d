"""Races at the token endpoint, over real HTTP against a live threaded server: many requests with the
same code, or the same refresh token, released at once by a barrier. Exactly one wins; the losers get
invalid_grant and leave no token behind. See docs/hardening.md.

On PostgreSQL, and on SQLite when both the database and the test database are files (the live
server's threads then have their own connections), with the options the demo ships
(oauth_server.sqlite: WAL, BEGIN IMMEDIATE, a busy timeout)::

    DATABASE_URL=sqlite:////tmp/oauth.sqlite3 SQLITE_TEST_NAME=/tmp/test.sqlite3 pytest tests/test_races.py

With the default in-memory SQLite they are skipped: the live server then shares one connection
between its threads, so concurrent transactions would interleave on it, which proves nothing.
tests/e2e/test_sqlite_races.py runs the same races on SQLite against the demo site's own processes.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.conf import settings
from django.db import connection
from django.test import Client as BrowserClient

from oauth_server import keys
from oauth_server.models import AccessToken, Grant, IDToken, RefreshToken
from oauth_server.tokens import token_checksum
from tests.factories import ClientFactory, UserFactory
from tests.helpers import get_code


def in_memory_sqlite() -> bool:
    """Whether the live server would share one in-memory SQLite connection between its threads.

    pytest-django starts the live server before the test database exists, so it looks at NAME;
    Django's SQLite test database is in memory unless TEST NAME (SQLITE_TEST_NAME) names a file.
    """
    if connection.vendor != "sqlite":
        return False
    database = settings.DATABASES["default"]
    names = (database["NAME"], database.get("TEST", {}).get("NAME") or ":memory:")
    return any(connection.creation.is_in_memory_db(str(name)) for name in names)


pytestmark = [
    pytest.mark.skipif(
        in_memory_sqlite(), reason="needs real connections: PostgreSQL or a SQLite file (module docstring)"
    ),
    pytest.mark.django_db(transaction=True),
]

RACERS = 12
ROUNDS = 3


def race(url: str, data: dict[str, str], auth: tuple[str, str]) -> list[tuple[int, dict]]:
    """POST the same request from RACERS threads released together; (status, body) of each."""
    barrier = threading.Barrier(RACERS)

    def one(_: int) -> tuple[int, dict]:
        with requests.Session() as session:
            session.get(url.replace("/token/", "/.well-known/jwks.json"), timeout=10)  # connect first
            barrier.wait(timeout=10)
            response = session.post(url, data=data, auth=auth, timeout=30)
        return response.status_code, response.json()

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(one, range(RACERS)))


def assert_one_winner(results: list[tuple[int, dict]]) -> dict:
    winners = [body for status, body in results if status == 200]
    losers = [(status, body.get("error")) for status, body in results if status != 200]
    assert len(winners) == 1, results
    assert losers == [(400, "invalid_grant")] * (RACERS - 1), losers
    return winners[0]


@pytest.fixture
def setup(live_server):
    keys.ensure_keys()  # not part of the race: the first token would otherwise create the key
    user = UserFactory()
    web = ClientFactory(scopes=["openid", "files:read"], skip_consent=True)
    browser = BrowserClient()
    browser.force_login(user)
    return live_server.url + "/oauth/token/", web, browser


def test_concurrent_exchanges_of_one_code_have_one_winner_and_the_losers_commit_nothing(setup):
    url, web, browser = setup
    for round_ in range(1, ROUNDS + 1):
        code, verifier = get_code(browser, web, scope="openid files:read")
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": web.redirect_uri_list[0],
            "code_verifier": verifier,
        }
        winner = assert_one_winner(race(url, data, (web.client_id, web.raw_secret)))
        grant = Grant.objects.get(code=token_checksum(code))
        assert grant.redeemed_at is not None
        # The losers minted nothing: one refresh token and one ID token per round, the winner's.
        rt = RefreshToken.objects.get(grant=grant)
        assert rt.token_checksum == token_checksum(winner["refresh_token"])
        assert RefreshToken.objects.filter(application=web).count() == round_
        assert IDToken.objects.filter(application=web).count() == round_
        # Every loser presented a redeemed code: a replay, so the winner's tokens are revoked too.
        assert rt.revoked is not None
        assert not AccessToken.objects.filter(application=web).exists()


def test_concurrent_refreshes_with_one_token_have_at_most_one_winner_and_revoke_the_family(setup):
    url, web, browser = setup
    for _ in range(ROUNDS):
        code, verifier = get_code(browser, web, scope="files:read")
        response = requests.post(
            url,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": web.redirect_uri_list[0],
                "code_verifier": verifier,
            },
            auth=(web.client_id, web.raw_secret),
            timeout=10,
        )
        first = response.json()
        family = RefreshToken.objects.get(token_checksum=token_checksum(first["refresh_token"])).token_family

        data = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
        winner = assert_one_winner(race(url, data, (web.client_id, web.raw_secret)))
        # Two rows in the family (the presented token and the winner's), none live: the losers'
        # attempts were reuse of a rotated token, which revokes the family (no grace period).
        members = RefreshToken.objects.filter(token_family=family)
        assert members.count() == 2
        assert members.filter(token_checksum=token_checksum(winner["refresh_token"])).exists()
        assert not members.filter(revoked__isnull=True).exists()
        assert not AccessToken.objects.filter(source_refresh_token__token_family=family).exists()
    assert not AccessToken.objects.filter(application=web).exists()
