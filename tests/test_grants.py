"""The grant registry (oauth_server/grants) is the one list of grants every consumer reads."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from oauth2_provider.models import AbstractApplication
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749.grant_types.base import GrantTypeBase

from oauth_server import grants
from oauth_server.grants import GrantRegistry, GrantSpec
from oauth_server.models import Client, GrantType
from oauth_server.server import OAuth2Server
from oauth_server.validator import OAuthServerValidator
from tests.factories import ClientFactory

EXAMPLE = "urn:example:params:oauth:grant-type:example"


def test_grant_type_choices_are_the_registry():
    assert (
        GrantType.values
        == grants.registry.names()
        == [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ]
    )
    assert [str(label) for label in GrantType.labels] == [str(s.label) for s in grants.registry]
    assert GrantType.AUTHORIZATION_CODE == "authorization_code"


def test_dot_constants_are_dots_own():
    dot = {value for value, _label in AbstractApplication.GRANT_TYPES}
    assert {s.dot_grant for s in grants.registry if s.dot_grant} <= dot
    assert (
        grants.registry.from_dot_grant(AbstractApplication.GRANT_AUTHORIZATION_CODE) == "authorization_code"
    )
    assert (
        grants.registry.from_dot_grant(AbstractApplication.GRANT_CLIENT_CREDENTIALS) == "client_credentials"
    )
    assert (
        grants.registry.from_dot_grant(AbstractApplication.GRANT_PASSWORD)
        == AbstractApplication.GRANT_PASSWORD
    )


def test_dot_settings_advertise_the_registry():
    assert grants.registry.token_grant_types() == oauth2_settings.OAUTH2_GRANT_TYPES_SUPPORTED
    assert oauth2_settings.OAUTH2_RESPONSE_TYPES_SUPPORTED == ["code"]
    assert oauth2_settings.OIDC_RESPONSE_TYPES_SUPPORTED == ["code"]


def test_server_endpoints_are_built_from_the_registry():
    server = OAuth2Server(OAuthServerValidator())
    assert list(server.grant_types) == grants.registry.token_grant_types()
    assert list(server.response_types) == grants.registry.response_types() == ["code"]
    # One handler per grant: the code response type and the code grant_type share it.
    assert server.response_types["code"] is server.grant_types["authorization_code"]


def test_registering_twice_is_refused():
    registry = GrantRegistry()
    registry.register(GrantSpec(name="x", member="X", label="x", response_types=("code",)))
    for spec in (
        GrantSpec(name="x", member="Y", label="x"),
        GrantSpec(name="y", member="X", label="y"),
        GrantSpec(name="y", member="Y", label="y", build=lambda v: None, response_types=("code",)),
    ):
        with pytest.raises(ValueError):
            registry.register(spec)


def test_client_rules_come_from_the_specs():
    """A new grant brings its own rules: confidential-only, and refresh tokens only if it issues them."""
    registry = GrantRegistry()
    for spec in grants.registry:
        registry.register(spec)
    registry.register(
        GrantSpec(
            name=EXAMPLE, member="EXAMPLE", label="Device", public_clients=False, issues_refresh_token=True
        )
    )
    assert registry.client_errors([EXAMPLE, "refresh_token"], confidential=True) == []
    assert [str(m) for m in registry.client_errors([EXAMPLE, "refresh_token"], confidential=False)] == [
        "Only confidential clients may use this grant type."
    ]
    assert [
        str(m) for m in registry.client_errors(["client_credentials", "refresh_token"], confidential=False)
    ] == [
        "Only confidential clients may use client_credentials.",
        "refresh_token only makes sense together with authorization_code or the device authorization grant.",
    ]


class _EchoGrant(GrantTypeBase):
    """A hypothetical token-endpoint grant: answers with its own body, to see the dispatch."""

    def create_token_response(self, request, token_handler):
        return {"Content-Type": "application/json"}, json.dumps({"grant_type": request.grant_type}), 200


@pytest.fixture
def with_example_grant(monkeypatch):
    """The built-in grants plus a URN grant with a discovery member, as a new module would add."""
    registry = GrantRegistry()
    for spec in grants.registry:
        registry.register(spec)
    registry.register(
        GrantSpec(
            name=EXAMPLE,
            member="EXAMPLE",
            label="Example",
            build=_EchoGrant,
            metadata=lambda request: {"example_endpoint": "https://as.example/oauth/example/"},
        )
    )
    monkeypatch.setattr(grants, "registry", registry)
    return registry


def test_a_registered_urn_grant_is_served_and_advertised(with_example_grant, client, db):
    server = OAuth2Server(OAuthServerValidator())
    _headers, body, status = server.create_token_response(
        "https://as.example/oauth/token/", "POST", f"grant_type={EXAMPLE}", {}
    )
    assert status == 200 and json.loads(body) == {"grant_type": EXAMPLE}

    doc = client.get("/oauth/.well-known/openid-configuration").json()
    assert EXAMPLE in doc["grant_types_supported"]
    assert doc["example_endpoint"] == "https://as.example/oauth/example/"

    web = ClientFactory(grant_types=["authorization_code", EXAMPLE])
    web.full_clean()


def test_an_unregistered_urn_grant_is_unsupported(db):
    _headers, body, status = OAuth2Server(OAuthServerValidator()).create_token_response(
        "https://as.example/oauth/token/", "POST", f"grant_type={EXAMPLE}", {}
    )
    assert status == 400 and json.loads(body)["error"] == "unsupported_grant_type"
    client = Client(
        name="x", client_type=Client.CLIENT_CONFIDENTIAL, client_secret="s" * 40, grant_types=[EXAMPLE]
    )
    with pytest.raises(ValidationError, match="Unsupported grant types"):
        client.clean()


def test_grant_urls_hook():
    registry = GrantRegistry()
    registry.register(GrantSpec(name="x", member="X", label="x", urls=lambda: ["pattern"]))
    assert registry.urlpatterns() == ["pattern"]
