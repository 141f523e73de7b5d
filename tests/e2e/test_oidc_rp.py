"""A certified OpenID Connect relying-party library (pyoidc, ``oic``) against the running demo site.

pyoidc checks what strict RPs check: the discovery document's issuer, the ID token's signature
against the JWKS, iss, aud, nonce, at_hash and expiry. It is the seeded "Demo Web App" here, on the
demo site started as a new user starts it (``demo_site`` in conftest.py), so the demo's own
configuration is what a certified RP accepts: code + PKCE with the ID token checks, userinfo,
refresh, client credentials, introspection and revocation, each through pyoidc's own requests.
The browser part (login and consent) is ``tests/e2e/browser.py``, posting the real forms.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from oic import rndstr
from oic.oic import Client as RelyingParty
from oic.oic.message import AuthorizationResponse, OpenIDSchema, RegistrationResponse
from oic.utils.authn.client import CLIENT_AUTHN_METHOD

from tests.e2e.browser import Browser

pytestmark = [pytest.mark.live]

WEB_APP = "demo-web-app"


@pytest.fixture
def site(demo_site):
    return demo_site


def make_rp(site, client_id: str = WEB_APP) -> RelyingParty:
    client = site.client(client_id)
    rp = RelyingParty(client_authn_method=CLIENT_AUTHN_METHOD)
    rp.provider_config(site.issuer)  # fetches discovery; pyoidc checks the issuer matches
    rp.store_registration_info(
        RegistrationResponse(
            client_id=client["client_id"],
            client_secret=client["client_secret"],
            redirect_uris=client["redirect_uris"],
            token_endpoint_auth_method="client_secret_basic",
        )
    )
    rp.redirect_uris = client["redirect_uris"]
    return rp


def run_code_flow(site, rp, username: str, *, scope="openid profile email") -> tuple[str, dict]:
    state, nonce = rndstr(), rndstr()
    pkce_args, verifier = rp.add_code_challenge()
    request_args = {
        "response_type": "code",
        "scope": scope,
        "nonce": nonce,
        "redirect_uri": rp.redirect_uris[0],
        "state": state,
        **pkce_args,
    }
    auth_req = rp.construct_AuthorizationRequest(request_args=request_args)
    location = Browser(site.base_url).authorize(
        auth_req.request(rp.authorization_endpoint), username, password=site.password
    )
    aresp = rp.parse_response(AuthorizationResponse, info=urlsplit(location).query, sformat="urlencoded")
    assert aresp["state"] == state
    assert aresp["iss"] == rp.provider_info["issuer"]
    token_resp = rp.do_access_token_request(
        state=state,
        request_args={"code": aresp["code"], "code_verifier": verifier, "redirect_uri": rp.redirect_uris[0]},
        authn_method="client_secret_basic",
    )
    assert "error" not in token_resp, token_resp.to_dict()
    return state, token_resp


def test_discovery_is_accepted_by_a_strict_rp(site):
    rp = make_rp(site)
    info = rp.provider_info
    assert info["issuer"] == f"{site.base_url}/oauth"
    assert info["code_challenge_methods_supported"] == ["S256"]
    assert info["response_types_supported"] == ["code"]
    assert rp.keyjar.get_issuer_keys(info["issuer"]) or rp.keyjar.issuer_keys


def test_code_flow_with_pkce_id_token_and_userinfo(site):
    alice = site.account("alice")
    rp = make_rp(site)
    state, token_resp = run_code_flow(site, rp, "alice")

    # pyoidc verified the signature, iss, aud, nonce and at_hash while parsing the response.
    id_token = token_resp["id_token"]
    assert id_token["iss"] == f"{site.base_url}/oauth"
    assert id_token["aud"] == [WEB_APP]
    assert id_token["name"] == alice["name"]
    assert id_token["sub"] and id_token["sub"] != "alice"

    for method in ("GET", "POST"):
        info = rp.do_user_info_request(state=state, method=method)
        assert isinstance(info, OpenIDSchema)
        assert info["sub"] == id_token["sub"]
        assert info["email"] == alice["email"]

    refreshed = rp.do_access_token_refresh(state=state, authn_method="client_secret_basic")
    assert "error" not in refreshed, refreshed.to_dict()
    assert refreshed["access_token"] != token_resp["access_token"]
    assert refreshed["refresh_token"] != token_resp["refresh_token"]


def test_introspection_and_revocation_over_the_wire(site):
    client = site.client(WEB_APP)
    rp = make_rp(site)
    _, token_resp = run_code_flow(site, rp, "bob", scope="openid")
    auth = (client["client_id"], client["client_secret"])
    http = requests.Session()
    http.trust_env = False
    introspect, revoke = site.endpoints["introspection"], site.endpoints["revocation"]

    active = http.post(introspect, data={"token": token_resp["access_token"]}, auth=auth)
    assert active.status_code == 200 and active.json()["active"] is True

    revoked = http.post(revoke, data={"token": token_resp["access_token"]}, auth=auth)
    assert revoked.status_code == 200

    after = http.post(introspect, data={"token": token_resp["access_token"]}, auth=auth)
    assert after.json() == {"active": False}


def test_client_credentials_with_the_rp_library(site):
    """pyoidc's own client-credentials request (RFC 6749 4.4) for the machine-to-machine client."""
    from oic.oauth2 import Client as OAuthClient
    from oic.oauth2.message import (
        AccessTokenResponse,
        CCAccessTokenRequest,
        MessageTuple,
        OauthMessageFactory,
    )

    class ClientCredentialsMessages(OauthMessageFactory):
        token_endpoint = MessageTuple(CCAccessTokenRequest, AccessTokenResponse)

    client = site.client("reports-service")
    rp = OAuthClient(client_authn_method=CLIENT_AUTHN_METHOD, message_factory=ClientCredentialsMessages)
    rp.provider_config(site.issuer)
    rp.client_id, rp.client_secret = client["client_id"], client["client_secret"]
    response = rp.do_access_token_request(
        request_args={"grant_type": "client_credentials", "scope": "reports:read"},
        authn_method="client_secret_basic",
    )
    assert "error" not in response, response.to_dict()
    assert response["token_type"] == "Bearer"
    assert response["scope"] == ["reports:read"]
    assert "refresh_token" not in response


def test_introspection_and_revocation_with_the_rp_library(site):
    """pyoidc's RFC 7662 and RFC 7009 requests (its ``oic.extension`` client), from discovery."""
    from oic.extension.client import Client as ExtensionClient

    client = site.client(WEB_APP)
    _, token_resp = run_code_flow(site, make_rp(site), "alice", scope="openid")
    rp = ExtensionClient(client_authn_method=CLIENT_AUTHN_METHOD)
    rp.provider_config(site.issuer)
    rp.client_id, rp.client_secret = client["client_id"], client["client_secret"]

    def introspect() -> dict:
        return rp.do_token_introspection(
            request_args={"token": token_resp["access_token"]}, authn_method="client_secret_basic"
        ).to_dict()

    active = introspect()
    assert active["active"] is True and active["client_id"] == WEB_APP
    status = rp.do_token_revocation(
        request_args={"token": token_resp["access_token"], "token_type_hint": "access_token"},
        authn_method="client_secret_basic",
    )
    assert status == 200
    assert introspect() == {"active": False}
