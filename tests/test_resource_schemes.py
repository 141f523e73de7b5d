"""The token-scheme registry (resource/schemes.py) and the exact challenges of each protected endpoint."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from oauth_server.resource.errors import ErrorFormat, InvalidRequest, InvalidToken, MissingToken
from oauth_server.resource.schemes import BearerScheme, ResourceProtector, TokenScheme, protector
from tests.factories import AccessTokenFactory, ClientFactory, MachineClientFactory

rf = RequestFactory()


class ProofScheme(TokenScheme):
    """A made-up second scheme: accepts the token "good", refuses anything else."""

    name = "Proof"

    def validate(self, request, token, **options):
        if token != "good":
            raise InvalidToken("The proof is invalid.")
        return ("proof", token, options)

    def challenge_params(self, error):
        return [("algs", "ES256")]


@pytest.fixture
def both():
    return ResourceProtector([BearerScheme(), ProofScheme()], fmt=ErrorFormat(realm="r"))


def test_a_registered_scheme_receives_the_request_the_token_and_the_options(both):
    request = rf.get("/", HTTP_AUTHORIZATION="proof good")
    assert both.authenticate(request, audience="a") == ("proof", "good", {"audience": "a"})


def test_a_scheme_refusal_is_challenged_by_that_scheme(both):
    with pytest.raises(InvalidToken) as caught:
        both.authenticate(rf.get("/", HTTP_AUTHORIZATION="Proof bad"))
    assert both.challenge(caught.value) == (
        'Proof realm="r", error="invalid_token", error_description="The proof is invalid.", algs="ES256"'
    )


def test_the_transport_rules_apply_to_every_scheme(both):
    with pytest.raises(InvalidRequest):
        both.authenticate(rf.get("/?access_token=x", HTTP_AUTHORIZATION="Proof good"))
    with pytest.raises(InvalidRequest):
        both.authenticate(rf.get("/", HTTP_AUTHORIZATION="Proof a b"))


def test_unregistered_schemes_are_no_token(both):
    assert both.authenticate(rf.get("/", HTTP_AUTHORIZATION="DPoP abc"), optional=True) is None
    with pytest.raises(MissingToken):
        both.authenticate(rf.get("/", HTTP_AUTHORIZATION="DPoP abc"))
    assert both.challenge() == 'Bearer realm="r", Proof realm="r", algs="ES256"'  # every scheme's


def test_a_scheme_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        ResourceProtector([BearerScheme(), BearerScheme()])
    with pytest.raises(ValueError):
        protector.register(type("Shout", (BearerScheme,), {"name": "BEARER"})())


# --- the three formats, byte for byte --------------------------------------------------------------------
def test_the_kit_challenge(settings):
    settings.OAUTH_RESOURCE_SERVER = {"ISSUER": "https://id.example.com", "AUDIENCE": "x", "REALM": "api"}
    with pytest.raises(InvalidRequest) as caught:
        protector.authenticate(rf.get("/", HTTP_AUTHORIZATION="Bearer a b"))
    assert protector.challenge(caught.value) == (
        'Bearer realm="api", error="invalid_request", '
        "error_description=\"The Authorization header is malformed: expected 'Bearer <token>'.\""
    )
    assert protector.challenge() == 'Bearer realm="api", DPoP realm="api", algs="ES256 RS256 PS256 EdDSA"'


def test_the_userinfo_challenges(client, db):
    response = client.get("/oauth/userinfo/")
    assert response["WWW-Authenticate"] == 'Bearer, DPoP algs="ES256 RS256 PS256 EdDSA"'
    assert response.content == b'{"error_description": "This endpoint requires an access token."}'
    token = AccessTokenFactory(application=ClientFactory(scopes=["files:read"]), scope="files:read")
    response = client.get("/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {token.raw_token}")
    assert response["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", '
        'error_description="The access token does not carry the openid scope.", scope="openid"'
    )
    assert response["Pragma"] == "no-cache"


def test_the_management_api_challenges(client, db):
    assert client.get("/oauth/api/clients/")["WWW-Authenticate"] == 'Bearer realm="oauth_server_admin"'
    response = client.get("/oauth/api/clients/", HTTP_AUTHORIZATION="Bearer a b")
    assert response["WWW-Authenticate"] == (
        'Bearer realm="oauth_server_admin",error="invalid_token",'
        'error_description="The access token is invalid."'
    )
    machine = MachineClientFactory(scopes=["oauth:admin"], is_enabled=False)
    token = AccessTokenFactory(user=None, application=machine, scope="oauth:admin")
    response = client.get("/oauth/api/clients/", HTTP_AUTHORIZATION=f"Bearer {token.raw_token}")
    assert response["WWW-Authenticate"] == 'Bearer realm="oauth_server_admin",error="invalid_token"'
    assert response.json() == {"error": "invalid_token", "error_description": "The access token is invalid."}
