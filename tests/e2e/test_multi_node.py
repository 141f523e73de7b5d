"""Two app nodes, one PostgreSQL database and one Redis: what one node does, the other sees.

Two demo servers (``runserver --noreload``, one process each) on different ports share a fresh
PostgreSQL database and a Redis cache (``REDIS_URL``, with a key prefix of this run's own). The
issuer is pinned to the first node's URL, as behind a load balancer both nodes answer for one public
URL. The tests show, over HTTP:

- a token issued by node A is accepted by the files API of node B, introspected and revoked through
  node B, and then refused by node A's files API and introspection at once (the revocation answer is
  in the shared cache);
- the rate limits are shared: failed client authentications spread over both nodes reach the limit
  that one node alone would not have reached;
- a key rotation (``manage.py rotate_signing_keys``, as cron runs it, a third process) is in both
  nodes' JWKS on their next request: the cached JWKS is invalidated through the shared cache's
  version token (docs/performance.md), with no wait.

Skipped when no PostgreSQL or Redis server answers (``TEST_POSTGRES_URL``, ``TEST_REDIS_URL``); ports
from ``MULTI_NODE_PORTS`` ("18610,18611") or free ones.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.e2e.conftest import DemoSite, _free_port, _running, demo_env, runservers, seed_demo

POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WEB_APP, FILES_API = "demo-web-app", "files-api"

# Its own database and servers: the same on both passes of `python -m tests`, so it runs on the first.
pytestmark = [pytest.mark.live, pytest.mark.once]


def _answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=3):
            return True
    except OSError:
        return False


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def _on(site: DemoSite, base_url: str, log_path: Path) -> DemoSite:
    """The same site reached through another node: every endpoint on that node's address."""
    endpoints = {
        name: value if name == "issuer" else value.replace(site.base_url, base_url, 1)
        for name, value in site.data["endpoints"].items()
    }
    apis = {name: value.replace(site.base_url, base_url, 1) for name, value in site.data["apis"].items()}
    return replace(
        site, base_url=base_url, data={**site.data, "endpoints": endpoints, "apis": apis}, log_path=log_path
    )


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoSite, DemoSite]]:
    if not _answers(POSTGRES, 5432) or not _answers(REDIS, 6379):
        pytest.skip(f"needs PostgreSQL ({POSTGRES}) and Redis ({REDIS})")
    import psycopg
    import redis

    name = f"scale_multinode_{os.getpid()}_{secrets.token_hex(3)}"
    prefix = f"multinode-{secrets.token_hex(4)}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(POSTGRES)
    database_url = urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))
    ports = [int(p) for p in os.environ.get("MULTI_NODE_PORTS", "").split(",") if p] or [
        _free_port(),
        _free_port(),
    ]
    base_a, base_b = (f"http://127.0.0.1:{port}" for port in ports)
    cwd = tmp_path_factory.mktemp("multi-node")
    env = {
        **demo_env(cwd, base_a),  # both nodes serve the issuer pinned to A's URL (one public URL)
        "DATABASE_URL": database_url,
        "DATABASE_CONN_MAX_AGE": "60",
        "REDIS_URL": REDIS,
        "DJANGO_CACHE_KEY_PREFIX": prefix,
    }
    try:
        data = seed_demo(cwd, env, base_a)
        with runservers(cwd, env, ports) as (log_a, log_b):
            site_a = DemoSite(base_url=base_a, data=data, env=env, cwd=cwd, log_path=log_a)
            site_b = _on(site_a, base_b, log_b)
            _running["nodes"] = site_a
            try:
                yield site_a, site_b
            finally:
                _running.pop("nodes", None)
    finally:
        cache = redis.Redis.from_url(REDIS)
        for key in cache.scan_iter(f"{prefix}:*"):
            cache.delete(key)
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_token_issued_by_one_node_is_validated_introspected_and_revoked_through_the_other(nodes):
    from tests.e2e.test_demo_site import code_flow, introspect, oauth_session

    a, b = nodes
    _, first, _ = code_flow(a, "alice", scope="openid offline_access files:read")
    # Node A's refresh token is rotated through node B; node A refuses the old access token.
    token = oauth_session(b, WEB_APP).refresh_token(
        b.endpoints["token"], refresh_token=first["refresh_token"]
    )
    assert introspect(a, WEB_APP, first["access_token"]) == {"active": False}
    access = token["access_token"]
    bearer = {"Authorization": f"Bearer {access}"}

    # Node B's files API accepts node A's token, and so does node A's.
    for site in (b, a):
        response = http().get(site.data["apis"]["files_api"], headers=bearer)
        assert response.status_code == 200, (site.base_url, response.text)
        alice_files = {f["name"] for f in site.data["files"] if f["owner"] == "alice"}
        assert {f["name"] for f in response.json()["files"]} == alice_files
    # Introspected through node B, by the client and by the API the token is for.
    assert introspect(b, WEB_APP, access)["active"] is True
    assert introspect(b, FILES_API, access)["active"] is True

    # Revoked through node B: node A refuses it at once, at its API and its introspection endpoint.
    revoked = oauth_session(b, WEB_APP).revoke_token(
        b.endpoints["revocation"], token=access, token_type_hint="access_token"
    )
    assert revoked.status_code == 200
    assert http().get(a.data["apis"]["files_api"], headers=bearer).status_code == 401
    assert http().get(b.data["apis"]["files_api"], headers=bearer).status_code == 401
    assert introspect(a, WEB_APP, access) == {"active": False}


def test_rate_limits_are_shared_by_the_nodes(nodes):
    """client_auth_failures allows 5 failed authentications a minute per client and address: spread
    over both nodes, the sixth is refused (each node saw only three)."""
    a, b = nodes
    created = json.loads(
        a.manage(
            "create_oauth_client",
            "--name",
            "rate-limit-probe",
            "--type",
            "confidential",
            "--grant-type",
            "client_credentials",
            "--json",
        ).stdout
    )
    client_id = created["client_id"]
    # A fixed one-minute window: start with enough of it left for six requests.
    while time.time() % 60 > 40:
        time.sleep(1)
    statuses = []
    for i in range(6):
        site = (a, b)[i % 2]
        response = http().post(
            site.endpoints["token"],
            data={"grant_type": "client_credentials"},
            auth=(client_id, "not-the-secret-" * 3),
        )
        statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 401, 401, 429], statuses


def test_a_key_rotated_elsewhere_is_in_both_nodes_jwks_at_their_next_request(nodes):
    a, b = nodes

    def jwks(site: DemoSite) -> requests.Response:
        response = http().get(site.endpoints["jwks"])
        assert response.status_code == 200
        return response

    for site in (a, b):  # warm both nodes' cached JWKS
        jwks(site), jwks(site)
    before = jwks(a)
    assert jwks(b).json() == before.json()
    assert before.headers["ETag"] == jwks(b).headers["ETag"]

    rotation = json.loads(a.manage("rotate_signing_keys", "--json").stdout)
    for site in (a, b):
        after = jwks(site)
        kids = [key["kid"] for key in after.json()["keys"]]
        assert rotation["next"]["kid"] in kids, site.base_url
        assert kids[0] == rotation["active"]["kid"], site.base_url
        assert rotation["retired"]["kid"] in kids  # still published until its tokens expire
        assert after.headers["ETag"] != before.headers["ETag"]
        # A resource server revalidating its copy gets the new one, not a 304.
        assert (
            http().get(site.endpoints["jwks"], headers={"If-None-Match": before.headers["ETag"]}).status_code
            == 200
        )
    # Both nodes' discovery documents are the same document.
    discovery = [http().get(site.base_url + "/oauth/.well-known/openid-configuration") for site in (a, b)]
    assert discovery[0].json() == discovery[1].json()
    assert discovery[0].headers["ETag"] == discovery[1].headers["ETag"]
