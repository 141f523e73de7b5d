"""Single-use identifiers across server processes (docs/interop.md, docs/deployment.md): two demo
servers (two ``runserver`` processes, as two workers behind one load balancer) on the same database
and the same Redis (``DEMO_REDIS_URL``: the default cache, so the ``REPLAY_CACHE`` and the APIs'
``DPOP_REPLAY_CACHE``), with one public address: both pin the issuer to server A's URL, and requests
to server B carry A's ``Host``, as a load balancer forwards them.

* a ``private_key_jwt`` client assertion used at A is refused at B (``replayed_jti``);
* a DPoP proof used at A's token endpoint is refused at B's, and one used at A's reports API is
  refused at B's;
* a DPoP nonce handed out by A is accepted by B (stateless nonces, ``DEMO_DPOP_NONCES=1``);
* the control: two processes each with their own memory cache (no Redis) let the replay through,
  which is why production needs a shared cache.

Redis on 127.0.0.1:6379 (``REDIS_URL``) is required under ``CI``; elsewhere the tests skip without it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from jwcrypto import jwk, jwt

from tests import dpop_proofs as proofs
from tests.e2e.client_assertions import last_refusal
from tests.e2e.conftest import (
    MANAGE,
    DemoSite,
    _free_port,
    _run,
    _running,
    copy_database,
    demo_env,
    runservers,
)

pytestmark = [pytest.mark.live, pytest.mark.once]

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CLIENT_ID = "replay-service"
SCOPE = "reports:read"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_KEY = jwk.JWK.generate(kty="EC", crv="P-256", kid="replay-1", alg="ES256", use="sig")


def _redis():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no Redis here
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {REDIS_URL}, and CI is set: Redis must be running.")
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({exc}); start Redis or set REDIS_URL.")
    return client


@dataclass
class Pair:
    """Two server processes serving one site: ``a`` and ``b`` are their own URLs; clients know one
    address, A's (``public_url``); ``cwd`` holds the shared database."""

    a: str
    b: str
    cwd: Path
    log_paths: list[Path]

    @property
    def issuer(self) -> str:
        return self.a + "/oauth"

    def public_url(self, path: str) -> str:
        return self.a + path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(
            f"--- {path.name} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            for path in self.log_paths
        )

    def post(self, server: str, path: str, **kwargs) -> requests.Response:
        return self._send("post", server, path, **kwargs)

    def get(self, server: str, path: str, **kwargs) -> requests.Response:
        return self._send("get", server, path, **kwargs)

    def _send(self, method: str, server: str, path: str, headers=None, **kwargs) -> requests.Response:
        """To ``server``'s socket, with the public Host header (a load balancer's forwarding)."""
        session = requests.Session()
        session.trust_env = False
        headers = {"Host": urlsplit(self.a).netloc, **(headers or {})}
        return getattr(session, method)(server + path, headers=headers, timeout=30, **kwargs)

    def last_refusal(self) -> str:
        """The ``reason`` of the client's last ``client_auth_failed`` audit event (shared database)."""
        return last_refusal(self.cwd, CLIENT_ID).get("reason", "")


@contextmanager
def serving_pair(demo_site: DemoSite, cwd: Path, redis_prefix: str | None) -> Iterator[Pair]:
    """Two runserver processes on a copy of ``demo_site``'s database, DPoP nonces on, sharing Redis
    under ``redis_prefix`` (None: each process keeps its own memory cache); the client registered."""
    copy_database(demo_site, cwd)
    a, b = (f"http://127.0.0.1:{_free_port()}" for _ in range(2))
    env = {**demo_env(cwd, a), "DEMO_DPOP_NONCES": "1"}
    if redis_prefix:
        env.update(DEMO_REDIS_URL=REDIS_URL, DEMO_CACHE_KEY_PREFIX=redis_prefix)
    public = cwd / "public.jwks.json"
    public.write_text(json.dumps({"keys": [json.loads(CLIENT_KEY.export_public())]}))
    _run(
        [
            *MANAGE, "create_oauth_client", "--name", "Replay service", "--client-id", CLIENT_ID,
            "--type", "confidential", "--grant-type", "client_credentials", "--scope", SCOPE,
            "--audience", a + "/api/reports/", "--auth-method", "private_key_jwt", "--jwks-file", str(public),
        ],
        cwd=cwd,
        env=env,
    )  # fmt: skip
    with runservers(cwd, env, [int(urlsplit(a).port), int(urlsplit(b).port)]) as log_paths:
        yield Pair(a=a, b=b, cwd=cwd, log_paths=log_paths)


@pytest.fixture(scope="module")
def pair(demo_site: DemoSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    redis = _redis()
    prefix = f"oauth-server-e2e-{uuid.uuid4().hex}"
    try:
        with serving_pair(demo_site, tmp_path_factory.mktemp("replay-pair"), prefix) as served:
            _running["pair"] = served
            try:
                yield served
            finally:
                _running.pop("pair", None)
    finally:
        keys = list(redis.scan_iter(match=f"{prefix}:*"))
        if keys:
            redis.delete(*keys)


# --- what the client sends -----------------------------------------------------------------------------
def assertion(pair: Pair) -> str:
    """A fresh client assertion (new jti), for the issuer (RFC 7523bis), valid for a minute."""
    now = int(time.time())
    claims = {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": pair.issuer, "iat": now, "exp": now + 60}
    token = jwt.JWT(header={"alg": "ES256", "kid": "replay-1"}, claims={**claims, "jti": uuid.uuid4().hex})
    token.make_signed_token(CLIENT_KEY)
    return token.serialize()


def token_request(pair: Pair, server: str, client_assertion: str, proof: str | None = None):
    form = {
        "grant_type": "client_credentials",
        "scope": SCOPE,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion,
    }
    return pair.post(server, "/oauth/token/", data=form, headers={"DPoP": proof} if proof else {})


def token_nonce(pair: Pair) -> str:
    """The token endpoint's current DPoP nonce, asked of server A."""
    key = proofs.key("replay-nonce")
    refused = token_request(
        pair, pair.a, assertion(pair), proofs.proof("POST", pair.public_url("/oauth/token/"), signer=key)
    )
    assert refused.status_code == 400 and refused.json()["error"] == "use_dpop_nonce", refused.text
    return refused.headers["DPoP-Nonce"]


# --- the tests -----------------------------------------------------------------------------------------
def test_a_client_assertion_used_at_one_process_is_refused_at_the_other(pair):
    used = assertion(pair)
    first = token_request(pair, pair.a, used)
    assert first.status_code == 200, first.text
    replayed = token_request(pair, pair.b, used)
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["error"] == "invalid_client"
    assert pair.last_refusal() == "replayed_jti"
    # B itself is fine: a fresh assertion works there.
    assert token_request(pair, pair.b, assertion(pair)).status_code == 200


def test_a_dpop_proof_used_at_one_token_endpoint_is_refused_at_the_other(pair):
    nonce = token_nonce(pair)  # A's nonce, accepted by B as well (stateless, same SECRET_KEY)
    key = proofs.key("replay-token")
    htu = pair.public_url("/oauth/token/")
    proof = proofs.proof("POST", htu, signer=key, nonce=nonce)
    first = token_request(pair, pair.a, assertion(pair), proof)
    assert first.status_code == 200, first.text
    assert first.json()["token_type"] == "DPoP"
    replayed = token_request(pair, pair.b, assertion(pair), proof)
    assert replayed.status_code == 400, replayed.text
    assert replayed.json()["error"] == "invalid_dpop_proof"
    fresh = token_request(pair, pair.b, assertion(pair), proofs.proof("POST", htu, signer=key, nonce=nonce))
    assert fresh.status_code == 200, fresh.text


def test_a_dpop_proof_used_at_one_api_process_is_refused_at_the_other(pair):
    key = proofs.key("replay-api")
    htu = pair.public_url("/oauth/token/")
    issued = token_request(
        pair, pair.a, assertion(pair), proofs.proof("POST", htu, signer=key, nonce=token_nonce(pair))
    )
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    api = pair.public_url("/api/reports/")

    def call(server: str, proof: str) -> requests.Response:
        return pair.get(server, "/api/reports/", headers={"Authorization": f"DPoP {token}", "DPoP": proof})

    asked = call(pair.a, proofs.proof("GET", api, signer=key, access_token=token))
    assert asked.status_code == 401 and 'error="use_dpop_nonce"' in asked.headers["WWW-Authenticate"]
    nonce = asked.headers["DPoP-Nonce"]  # the API's nonce, from A
    proof = proofs.proof("GET", api, signer=key, access_token=token, nonce=nonce)
    assert call(pair.a, proof).status_code == 200
    replayed = call(pair.b, proof)
    assert replayed.status_code == 401
    assert 'error="invalid_dpop_proof"' in replayed.headers["WWW-Authenticate"]
    fresh = call(pair.b, proofs.proof("GET", api, signer=key, access_token=token, nonce=nonce))
    assert fresh.status_code == 200, fresh.text


def test_without_a_shared_cache_the_other_process_lets_the_replay_through(demo_site, tmp_path):
    """The control: what REPLAY_CACHE on a per-process cache (Django's default) would allow."""
    with serving_pair(demo_site, tmp_path, redis_prefix=None) as alone:
        used = assertion(alone)
        assert token_request(alone, alone.a, used).status_code == 200
        assert token_request(alone, alone.a, used).status_code == 401  # A remembers its own
        assert token_request(alone, alone.b, used).status_code == 200  # B never saw it
