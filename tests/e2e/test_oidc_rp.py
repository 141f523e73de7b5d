"""A certified OpenID Connect relying-party library (pyoidc, ``oic``) against the running site.

pyoidc checks what strict RPs check: the discovery document's issuer, the ID token's signature
against the JWKS, iss, aud, nonce, at_hash and expiry. The browser part (login and consent) is a
plain ``requests`` session posting the real forms.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlsplit

import pytest
import requests
from oic import rndstr
from oic.oic import Client as RelyingParty
from oic.oic.message import AuthorizationResponse, OpenIDSchema, RegistrationResponse
from oic.utils.authn.client import CLIENT_AUTHN_METHOD

from tests.factories import DEFAULT_PASSWORD, ClientFactory, UserFactory

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

INPUT_RE = re.compile(r"<input\b[^>]*>", re.I)
ATTR_RE = re.compile(r'(\w+)="([^"]*)"')


def form_fields(html: str) -> dict[str, str]:
    """Every named input of the page's POST form (hidden fields and CSRF token included)."""
    form = re.search(r'<form[^>]*method="post"[^>]*>(.*?)</form>', html, re.S | re.I).group(1)
    fields = {}
    for tag in INPUT_RE.findall(form):
        attrs = {k.lower(): unescape(v) for k, v in ATTR_RE.findall(tag)}
        if "name" in attrs and attrs.get("type", "text").lower() not in ("submit", "button", "checkbox"):
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


class Browser:
    """A user agent: follows the login page and approves the consent page."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.trust_env = False

    def authorize(self, url: str, username: str) -> str:
        response = self.session.get(url, allow_redirects=False)
        if response.status_code == 302 and "/accounts/login/" in response.headers["Location"]:
            login_url = self.base_url + response.headers["Location"]
            page = self.session.get(login_url)
            data = form_fields(page.text)
            data.update(username=username, password=DEFAULT_PASSWORD)
            response = self.session.post(
                login_url, data=data, allow_redirects=False, headers={"Referer": login_url}
            )
            assert response.status_code == 302, response.text[:500]
            response = self.session.get(self.base_url + response.headers["Location"], allow_redirects=False)
        if response.status_code == 200:  # the consent page
            data = form_fields(response.text)
            data["allow"] = "true"
            response = self.session.post(
                self.base_url + "/oauth/authorize/",
                data=data,
                allow_redirects=False,
                headers={"Referer": response.url},
            )
        assert response.status_code == 302, response.text[:500]
        return response.headers["Location"]


@pytest.fixture
def site(live_server, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "*")
    return live_server.url


@pytest.fixture
def rp_client(site):
    return ClientFactory(
        name="Certified RP",
        redirect_uris=f"{site}/rp/callback",
        post_logout_redirect_uris=f"{site}/rp/logged-out",
        scopes=["openid", "profile", "email", "offline_access"],
    )


def make_rp(site: str, client) -> RelyingParty:
    rp = RelyingParty(client_authn_method=CLIENT_AUTHN_METHOD)
    rp.provider_config(f"{site}/oauth")  # fetches discovery; pyoidc checks the issuer matches
    rp.store_registration_info(
        RegistrationResponse(
            client_id=client.client_id,
            client_secret=client.raw_secret,
            redirect_uris=client.redirect_uri_list,
            token_endpoint_auth_method="client_secret_basic",
        )
    )
    rp.redirect_uris = client.redirect_uri_list
    return rp


def run_code_flow(site, rp, user, *, scope="openid profile email") -> tuple[str, dict]:
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
    location = Browser(site).authorize(auth_req.request(rp.authorization_endpoint), user.username)
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


def test_discovery_is_accepted_by_a_strict_rp(site, rp_client):
    rp = make_rp(site, rp_client)
    info = rp.provider_info
    assert info["issuer"] == f"{site}/oauth"
    assert info["code_challenge_methods_supported"] == ["S256"]
    assert info["response_types_supported"] == ["code"]
    assert rp.keyjar.get_issuer_keys(info["issuer"]) or rp.keyjar.issuer_keys


def test_code_flow_with_pkce_id_token_and_userinfo(site, rp_client):
    user = UserFactory(first_name="Grace", last_name="Hopper")
    rp = make_rp(site, rp_client)
    state, token_resp = run_code_flow(site, rp, user)

    # pyoidc verified the signature, iss, aud, nonce and at_hash while parsing the response.
    id_token = token_resp["id_token"]
    assert id_token["iss"] == f"{site}/oauth"
    assert id_token["aud"] == [rp_client.client_id]
    assert id_token["name"] == "Grace Hopper"
    assert id_token["sub"] != str(user.pk)

    for method in ("GET", "POST"):
        info = rp.do_user_info_request(state=state, method=method)
        assert isinstance(info, OpenIDSchema)
        assert info["sub"] == id_token["sub"]
        assert info["email"] == user.email

    refreshed = rp.do_access_token_refresh(state=state, authn_method="client_secret_basic")
    assert "error" not in refreshed, refreshed.to_dict()
    assert refreshed["access_token"] != token_resp["access_token"]
    assert refreshed["refresh_token"] != token_resp["refresh_token"]


def test_introspection_and_revocation_over_the_wire(site, rp_client):
    user = UserFactory()
    rp = make_rp(site, rp_client)
    _, token_resp = run_code_flow(site, rp, user, scope="openid")
    auth = (rp_client.client_id, rp_client.raw_secret)
    http = requests.Session()
    http.trust_env = False

    active = http.post(f"{site}/oauth/introspect/", data={"token": token_resp["access_token"]}, auth=auth)
    assert active.status_code == 200 and active.json()["active"] is True

    revoked = http.post(f"{site}/oauth/revoke/", data={"token": token_resp["access_token"]}, auth=auth)
    assert revoked.status_code == 200

    after = http.post(f"{site}/oauth/introspect/", data={"token": token_resp["access_token"]}, auth=auth)
    assert after.json()["active"] is False
