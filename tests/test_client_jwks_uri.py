"""A private_key_jwt client's ``jwks_uri`` is fetched like a client ID metadata document: by the
SSRF-hardened fetcher of fetcher.py, against a real HTTPS server (tests/cimd_server.py)."""

from __future__ import annotations

import socket

import pytest
from django.core.cache import cache
from jwcrypto import jwk

from oauth_server import fetcher
from tests.cimd_server import DocumentServer
from tests.helpers import TOKEN_URL
from tests.test_private_key_jwt import assertion, cc, make_client, public_jwks, refused

KEY = jwk.JWK.generate(kty="EC", crv="P-256", kid="served")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = DocumentServer(tmp_path_factory.mktemp("jwks"))
    yield server
    server.close()


@pytest.fixture
def keys(server, settings):
    """The server trusted, loopback allowed (development settings), small bounds, empty caches."""
    server.reset()
    cache.clear()
    settings.OAUTH_SERVER = {
        **settings.OAUTH_SERVER,
        "CIMD_ALLOW_HTTP_LOOPBACK": True,
        "CIMD_CA_FILE": str(server.cert),
        "CIMD_FETCH_TIMEOUT": 0.5,
        "CIMD_MAX_DOCUMENT_SIZE": 2048,
    }
    yield server
    cache.clear()


def token_for(client, url: str):
    app = make_client(jwks=None, jwks_uri=url)
    return client.post(TOKEN_URL, cc(app.client_id, assertion(app.client_id, key=KEY)))


def test_keys_served_over_https_authenticate(client, db, keys):
    url = keys.serve("/jwks.json", public_jwks(KEY))
    response = token_for(client, url)
    assert response.status_code == 200, response.content
    assert keys.hits["/jwks.json"] == 1


@pytest.mark.parametrize(
    "route",
    [
        {"status": 302, "headers": {"Location": "https://127.0.0.1/elsewhere"}},
        {"status": 404},
        {"headers": {"Content-Encoding": "gzip"}},
        {"content_type": "text/html"},
        {"delay": 1.5},
        {"drip": 0.05},
    ],
    ids=["redirect", "not-found", "compressed", "not-json", "slow", "dripping"],
)
def test_a_misbehaving_key_server_is_refused(client, db, keys, route):
    url = keys.serve("/jwks.json", public_jwks(KEY), **route)
    refused(token_for(client, url), "keys_unavailable")


def test_a_key_set_larger_than_the_cap_is_refused(client, db, keys):
    big = public_jwks(KEY, *[jwk.JWK.generate(kty="EC", crv="P-256") for _ in range(30)])
    url = keys.serve("/jwks.json", big)
    refused(token_for(client, url), "keys_unavailable")


def _answer(ip: str):
    def getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    return getaddrinfo


@pytest.mark.parametrize(
    "ip", ["10.0.0.5", "169.254.169.254", "127.0.0.1", "::ffff:192.168.1.1", "224.0.0.1"]
)
def test_a_jwks_uri_host_resolving_inside_is_never_contacted(client, db, ip, monkeypatch):
    """Without the development setting, loopback is refused like any internal address."""
    monkeypatch.setattr(fetcher, "getaddrinfo", _answer(ip))
    cache.clear()
    refused(token_for(client, "https://keys.client.example/jwks.json"), "keys_unavailable")


def test_the_refusal_reason_is_logged_for_staff(client, db, monkeypatch, caplog):
    monkeypatch.setattr(fetcher, "getaddrinfo", _answer("10.0.0.5"))
    cache.clear()
    token_for(client, "https://keys.client.example/jwks.json")
    assert "address_refused" in caplog.text
