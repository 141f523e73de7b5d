"""Authlib's RFC 7523 client authentication (``private_key_jwt``, ``client_secret_jwt``) against the
running demo (``demo_site``): what the two end-to-end files share, so that both drive the server
the same way and read its refusals the same way.

* ``register``: a client-credentials service for the reports API, made with ``create_oauth_client``.
* ``ShortLivedPrivateKeyJWT`` / ``ShortLivedClientSecretJWT``: Authlib's methods with assertions
  valid for a minute instead of Authlib's hour (over ``CLIENT_ASSERTION_MAX_LIFETIME``, 300 s).
* ``assertion_session``: an Authlib ``OAuth2Session`` that authenticates with such a method at the
  token, introspection and revocation endpoints.
* ``token_introspect_revoke``: the whole life of a token, each request authenticated.
* the refusals: ``assert_token_refused``, ``assert_refused``, ``assert_replay_refused``, each
  ``invalid_client`` to the client, and ``last_refusal``, what the audit trail says of it.

Every session connects from a loopback address of the caller's choosing (``FromAddress``): the
server throttles failed client authentications per client IP (``client_auth_failures``: 10 a
minute per address, 5 per client and address), and ``demo_site`` serves the whole run, so each
module, and the attacker within one, counts as a host of its own.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc7523 import ClientSecretJWT, PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import client_secret_jwt_sign, private_key_jwt_sign
from joserfc.jwk import OctKey
from requests.adapters import HTTPAdapter

from tests.e2e.conftest import DemoSite

SCOPE = "reports:read"
ASSERTION_LIFETIME = 60  # seconds
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LOOPBACK = "127.0.0.1"


class FromAddress(HTTPAdapter):
    """Connections from ``address`` (any of 127.0.0.0/8 reaches the demo on 127.0.0.1)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


def from_address(session: requests.Session, address: str) -> requests.Session:
    """``session`` connecting from ``address``, never through a proxy (the demo is on the loopback)."""
    session.trust_env = False
    session.mount("http://", FromAddress(address))
    return session


def http(address: str = LOOPBACK) -> requests.Session:
    """A plain HTTP client, from ``address``."""
    return from_address(requests.Session(), address)


def register(site: DemoSite, client_id: str, name: str, *auth: str) -> dict[str, Any]:
    """A confidential client-credentials service for the reports API, authenticating with ``auth``
    (``--auth-method ...`` and its options); what ``create_oauth_client --json`` printed."""
    created = site.manage(
        "create_oauth_client", "--json", "--name", name, "--client-id", client_id,
        "--type", "confidential", "--grant-type", "client_credentials",
        "--scope", SCOPE, "--audience", site.data["apis"]["reports_api"], *auth,
    )  # fmt: skip
    return json.loads(created.stdout)


class ShortLived:
    """Mixed in before Authlib's ``PrivateKeyJWT`` or ``ClientSecretJWT``: the same assertion, valid
    for ``ASSERTION_LIFETIME`` seconds. Authlib signs ``exp = iat + 3600`` with no option to change
    it, which this server refuses (``lifetime_too_long``): the few lines docs/interop.md shows."""

    claims: dict[str, Any] | None
    headers: dict[str, Any] | None
    alg: str

    def sign(self, auth: Any, token_endpoint: str) -> str:
        if isinstance(self, PrivateKeyJWT):
            key, sign = auth.client_secret, private_key_jwt_sign  # a joserfc key already
        else:  # a secret given as text, turned into a key as ClientSecretJWT.sign does
            key, sign = OctKey.import_key(auth.client_secret), client_secret_jwt_sign
        return sign(
            key,
            client_id=auth.client_id,
            token_endpoint=token_endpoint,
            claims=self.claims,
            header=self.headers,
            alg=self.alg,
            expires_in=ASSERTION_LIFETIME,
        )


class ShortLivedPrivateKeyJWT(ShortLived, PrivateKeyJWT):
    """Authlib's PrivateKeyJWT with assertions valid for a minute instead of an hour."""


class ShortLivedClientSecretJWT(ShortLived, ClientSecretJWT):
    """Authlib's ClientSecretJWT with assertions valid for a minute instead of an hour."""


def assertion_session(client_id: str, key: Any, auth: ClientSecretJWT, address: str) -> OAuth2Session:
    """An Authlib client on ``address`` whose every request to the server (token, introspection,
    revocation) is authenticated by ``auth`` with ``key`` (a private key, or the client secret); the
    assertion's ``aud`` is the URL of each endpoint called unless ``auth`` names one (Authlib's
    default)."""
    oauth = OAuth2Session(
        client_id,
        key,
        scope=SCOPE,
        token_endpoint_auth_method=auth,
        revocation_endpoint_auth_method=auth,
    )
    return from_address(oauth, address)


def token_introspect_revoke(site: DemoSite, oauth: OAuth2Session) -> None:
    """A client-credentials token that works at the reports API, introspects as active, is revoked,
    and is then inactive and refused by the API."""
    token = oauth.fetch_token(site.endpoints["token"], grant_type="client_credentials")
    assert token["token_type"].lower() == "bearer" and token["scope"] == SCOPE
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    reports = http().get(site.data["apis"]["reports_api"], headers=bearer)
    assert reports.status_code == 200, reports.text

    introspected = oauth.introspect_token(site.endpoints["introspection"], token=token["access_token"])
    assert introspected.status_code == 200, introspected.text
    assert introspected.json()["active"] is True
    assert introspected.json()["client_id"] == oauth.client_id

    revoked = oauth.revoke_token(site.endpoints["revocation"], token=token["access_token"])
    assert revoked.status_code == 200, revoked.text
    after = oauth.introspect_token(site.endpoints["introspection"], token=token["access_token"])
    assert after.json() == {"active": False}
    assert http().get(site.data["apis"]["reports_api"], headers=bearer).status_code == 401


def last_refusal(database_dir: Path, client_id: str) -> dict[str, Any]:
    """The details of the client's last ``client_auth_failed`` audit event (docs/audit.md: its
    ``reason`` and ``method``), read from the demo's database (``demo.sqlite3`` in
    ``database_dir``): the client itself is only told invalid_client. Empty when there is none."""
    with sqlite3.connect(database_dir / "demo.sqlite3") as db:
        row = db.execute(
            "SELECT details FROM oauth_server_auditevent WHERE event = 'client_auth_failed' "
            "AND client_id = ? ORDER BY id DESC LIMIT 1",
            (client_id,),
        ).fetchone()
    return json.loads(row[0]) if row else {}


def assert_audited(site: DemoSite, client_id: str, reason: str, method: str | None = None) -> None:
    """The client's last refusal was for ``reason`` (and by ``method``, the one the assertion's
    ``alg`` named, when given)."""
    details = last_refusal(site.cwd, client_id)
    assert details.get("reason") == reason, details
    assert method is None or details["method"] == method, details


def assert_refused(
    site: DemoSite, response: requests.Response, client_id: str, reason: str, method: str | None = None
) -> None:
    """An HTTP 401 ``invalid_client`` answer, audited with ``reason``."""
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert_audited(site, client_id, reason, method)


def assert_token_refused(
    site: DemoSite, oauth: OAuth2Session, reason: str, method: str | None = None
) -> None:
    """Authlib's ``fetch_token`` (client credentials) fails with ``invalid_client``, audited with
    ``reason``."""
    with pytest.raises(OAuthError) as refused:
        oauth.fetch_token(site.endpoints["token"], grant_type="client_credentials")
    assert refused.value.error == "invalid_client"
    assert_audited(site, oauth.client_id, reason, method)


def assert_replay_refused(site: DemoSite, oauth: OAuth2Session, auth: ClientSecretJWT) -> None:
    """One assertion Authlib signed, sent twice by hand: accepted once, then ``invalid_client``
    (``replayed_jti``). Authlib itself signs a new assertion (a new ``jti``) for every request."""
    assertion = auth.sign(oauth.client_auth(None), site.endpoints["token"])
    form = {
        "grant_type": "client_credentials",
        "scope": SCOPE,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    first = oauth.post(site.endpoints["token"], data=form, withhold_token=True)  # as is, from oauth's host
    assert first.status_code == 200, first.text
    again = oauth.post(site.endpoints["token"], data=form, withhold_token=True)
    assert_refused(site, again, oauth.client_id, "replayed_jti")
