"""Discovery documents list exactly what the server supports (OIDC Discovery 1.0, RFC 8414)."""

from __future__ import annotations

import pytest

from tests.factories import ScopeFactory

OIDC = "/oauth/.well-known/openid-configuration"
RFC8414 = "/oauth/.well-known/oauth-authorization-server"


@pytest.fixture
def doc(client, db):
    ScopeFactory(name="files:read")
    return client.get(OIDC).json()


def test_both_documents_are_identical_and_public(client, db):
    oidc, oauth = client.get(OIDC), client.get(RFC8414)
    assert oidc.status_code == oauth.status_code == 200
    assert oidc.json() == oauth.json()
    assert oidc["Access-Control-Allow-Origin"] == "*"
    assert "max-age" in oidc["Cache-Control"]


def test_issuer_and_endpoints_are_absolute_urls_under_the_issuer(doc):
    assert doc["issuer"] == "http://testserver/oauth"
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "introspection_endpoint",
        "revocation_endpoint",
        "end_session_endpoint",
    ):
        assert doc[name].startswith(doc["issuer"] + "/"), name


def test_only_supported_flows_are_advertised(doc):
    assert doc["response_types_supported"] == ["code"]
    assert doc["response_modes_supported"] == ["query"]
    assert sorted(doc["grant_types_supported"]) == [
        "authorization_code",
        "client_credentials",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["request_uri_parameter_supported"] is False
    assert doc["request_parameter_supported"] is True  # RFC 9101 by value (docs/jar.md)
    assert "none" not in doc["request_object_signing_alg_values_supported"]
    assert "implicit" not in str(doc) and "password" not in doc["grant_types_supported"]


def test_scopes_and_claims_come_from_the_database_and_the_claim_map(doc):
    assert {"openid", "profile", "email", "offline_access", "files:read"} <= set(doc["scopes_supported"])
    assert {"sub", "name", "email", "email_verified", "auth_time", "nonce"} <= set(doc["claims_supported"])
    assert doc["subject_types_supported"] == ["public"]


def test_signing_algorithms_follow_the_published_keys(client, db):
    from oauth_server import keys

    keys.new_key("ES256", state="active")
    keys.new_key("EdDSA", state="next")
    assert client.get(OIDC).json()["id_token_signing_alg_values_supported"] == ["ES256", "EdDSA"]


def test_jwks_matches_the_advertised_algorithms(client, db):
    doc = client.get(OIDC).json()
    jwks = client.get("/oauth/.well-known/jwks.json").json()
    assert {k["alg"] for k in jwks["keys"]} <= set(doc["id_token_signing_alg_values_supported"]) | {"RS256"}
    assert all(k["kid"] and k["use"] == "sig" for k in jwks["keys"])


@pytest.mark.parametrize("url", [OIDC, RFC8414])
def test_a_pinned_issuer_fixes_every_endpoint_whatever_the_host_header(
    client, db, monkeypatch, settings, url
):
    """The document is publicly cacheable: with the issuer pinned, a forged Host header must not put
    another origin in it (security review, issue 9)."""
    from oauth2_provider.settings import oauth2_settings

    settings.ALLOWED_HOSTS = ["*"]
    monkeypatch.setattr(oauth2_settings, "OIDC_ISS_ENDPOINT", "https://id.example.com/oauth")
    doc = client.get(url, HTTP_HOST="attacker.example:8443").json()
    assert doc["issuer"] == "https://id.example.com/oauth"
    endpoints = {name: value for name, value in doc.items() if name.endswith(("_endpoint", "_uri"))}
    assert len(endpoints) >= 7
    for name, value in endpoints.items():
        assert value.startswith("https://id.example.com/oauth/"), (name, value)
