"""SQL statements per request on each token-related endpoint, pinned (issue 15): a change that adds a
query to a hot path fails here and says which endpoint. Counted warm (signing keys and the user's
subject identifier exist), in a real transaction (``transaction=True``: BEGIN and COMMIT are counted
where the backend logs them). docs/performance.md explains each count."""

from __future__ import annotations

import pytest
from django.test import Client as BrowserClient

from tests.factories import ClientFactory
from tests.helpers import REVOKE_URL, basic_auth, exchange_code, get_code, token_request

INTROSPECT_URL = "/oauth/introspect/"
USERINFO_URL = "/oauth/userinfo/"

# Each: BEGIN ... COMMIT included (both backends log the same here). The code exchange reads the
# Grant once, locked, with the user and their sub (codes.redeemable; RFC 8707's check uses that row:
# validator._check_and_set_request_resource). The refresh reads the refresh token
# once, locked, with its access token, user and sub, and rotates it without DOT's re-reads or
# Django's collector queries (validator._save_bearer_token, revocation.retire_rotated).
# client_credentials is pinned in tests/test_audit.py (TOKEN_QUERIES) and token exchange in
# tests/test_token_exchange.py (EXCHANGE_QUERIES).
CODE_EXCHANGE_QUERIES = 9
REFRESH_QUERIES = 10
INTROSPECTION_QUERIES = 2
REVOCATION_QUERIES = 14
USERINFO_QUERIES = 1


@pytest.fixture
def web_client(db):
    return ClientFactory(scopes=["openid", "files:read"])


@pytest.fixture
def warm(client, user, web_client):
    """A signed-in user whose first code exchange created the keys and the subject identifier."""
    client.force_login(user)
    code, verifier = get_code(client, web_client, scope="openid files:read")
    assert exchange_code(client, web_client, code, verifier).status_code == 200
    return client


def tokens(browser, web_client) -> dict:
    code, verifier = get_code(browser, web_client, scope="openid files:read")
    response = exchange_code(browser, web_client, code, verifier)
    assert response.status_code == 200, response.content
    return response.json()


def sql(context) -> str:
    return "\n".join(q["sql"][:160] for q in context.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_code_exchange(warm, web_client, django_assert_num_queries):
    code, verifier = get_code(warm, web_client, scope="openid files:read")
    with django_assert_num_queries(CODE_EXCHANGE_QUERIES):
        assert exchange_code(warm, web_client, code, verifier).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_refresh(warm, web_client, django_assert_num_queries):
    issued = tokens(warm, web_client)
    data = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
    with django_assert_num_queries(REFRESH_QUERIES):
        response = token_request(warm, data, client=web_client, secret=web_client.raw_secret)
    assert response.status_code == 200, response.content


@pytest.mark.django_db(transaction=True)
def test_introspection(warm, web_client, django_assert_num_queries):
    issued = tokens(warm, web_client)
    auth = basic_auth(web_client.client_id, web_client.raw_secret)
    browser = BrowserClient()
    with django_assert_num_queries(INTROSPECTION_QUERIES):
        response = browser.post(INTROSPECT_URL, {"token": issued["access_token"]}, HTTP_AUTHORIZATION=auth)
    assert response.json()["active"] is True


@pytest.mark.django_db(transaction=True)
def test_revocation(warm, web_client, django_assert_num_queries):
    issued = tokens(warm, web_client)
    auth = basic_auth(web_client.client_id, web_client.raw_secret)
    browser = BrowserClient()
    with django_assert_num_queries(REVOCATION_QUERIES):
        response = browser.post(REVOKE_URL, {"token": issued["refresh_token"]}, HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_userinfo(warm, web_client, django_assert_num_queries):
    issued = tokens(warm, web_client)
    browser = BrowserClient()
    with django_assert_num_queries(USERINFO_QUERIES):
        response = browser.get(USERINFO_URL, HTTP_AUTHORIZATION=f"Bearer {issued['access_token']}")
    assert response.status_code == 200, response.content
