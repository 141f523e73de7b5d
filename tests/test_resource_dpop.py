"""DPoP at protected resources (RFC 9449 7): the kit's ``DPoPScheme`` (plain Django and DRF views, the
demo files API) and the UserInfo endpoint; a DPoP-bound token never works as a Bearer token."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client as BrowserClient

from oauth_server.resource import jwks
from oauth_server.resource.schemes import protector
from tests import dpop_proofs as proofs
from tests.factories import MachineClientFactory, PublicClientFactory, UserFactory
from tests.helpers import TOKEN_URL, basic_auth, get_code
from tests.resource_urls import API, RS_SETTINGS

pytestmark = pytest.mark.urls("tests.resource_urls")
TOKEN_HTU = "http://testserver/oauth/token/"
PLAIN = "/rs/plain/files/"
PLAIN_HTU = "http://testserver/rs/plain/files/"
DRF = "/rs/drf/files/"
DRF_HTU = "http://testserver/rs/drf/files/"
ALGS = 'algs="ES256 RS256 PS256 EdDSA"'


@pytest.fixture(autouse=True)
def rs(settings):
    settings.OAUTH_RESOURCE_SERVER = dict(RS_SETTINGS)
    cache.clear()
    yield settings
    jwks.reset()
    cache.clear()


@pytest.fixture
def machine(db):
    return MachineClientFactory(scopes=["files:read"], audiences=[API])


def issue(client, signer=None, scope: str = "files:read") -> str:
    """A token from the real token endpoint, DPoP-bound to ``signer`` (None: a bearer token)."""
    headers = {"HTTP_AUTHORIZATION": basic_auth(client.client_id, client.raw_secret)}
    if signer is not None:
        headers["HTTP_DPOP"] = proofs.proof("POST", TOKEN_HTU, signer=signer)
    response = BrowserClient().post(
        TOKEN_URL, {"grant_type": "client_credentials", "scope": scope}, **headers
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def call(url: str, token: str, proof: str | None = None, scheme: str = "DPoP", method: str = "get"):
    headers = {"HTTP_AUTHORIZATION": f"{scheme} {token}"}
    if proof is not None:
        headers["HTTP_DPOP"] = proof
    return getattr(BrowserClient(), method)(url, **headers)


def assert_refused(response, error: str, scheme: str = "DPoP", status: int = 401) -> str:
    assert response.status_code == status, response.content
    assert response.json()["error"] == error
    header = response["WWW-Authenticate"]
    assert header.startswith(f'{scheme} realm="api", error="{error}"'), header
    return header


# --- the happy path -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "htu"), [(PLAIN, PLAIN_HTU), (DRF, DRF_HTU)])
def test_a_bound_token_with_its_proof_is_accepted(machine, url, htu):
    token = issue(machine, proofs.key("A"))
    response = call(url, token, proofs.proof("GET", htu, access_token=token))
    assert response.status_code == 200, response.content


def test_the_scheme_name_is_case_insensitive(machine):
    token = issue(machine, proofs.key("A"))
    response = call(PLAIN, token, proofs.proof("GET", PLAIN_HTU, access_token=token), scheme="dpop")
    assert response.status_code == 200, response.content


def test_a_bearer_token_still_works_as_bearer(machine):
    assert call(PLAIN, issue(machine), scheme="Bearer").status_code == 200


# --- attacks ------------------------------------------------------------------------------------------
def test_a_bound_token_as_bearer_is_refused(machine):
    token = issue(machine, proofs.key("A"))
    header = assert_refused(call(PLAIN, token, scheme="Bearer"), "invalid_token", scheme="Bearer")
    assert "DPoP" in header
    assert_refused(call(DRF, token, scheme="Bearer"), "invalid_token", scheme="Bearer")


def test_a_proof_by_another_key_is_refused(machine):
    token = issue(machine, proofs.key("A"))
    other = proofs.proof("GET", PLAIN_HTU, signer=proofs.key("B"), access_token=token)
    header = assert_refused(call(PLAIN, token, other), "invalid_token")
    assert "key binding" in header and ALGS in header


def test_a_bearer_token_with_the_dpop_scheme_is_refused(machine):
    token = issue(machine)
    assert_refused(call(PLAIN, token, proofs.proof("GET", PLAIN_HTU, access_token=token)), "invalid_token")


@pytest.mark.parametrize(
    "make",
    [
        lambda t: None,  # no proof
        lambda t: proofs.proof("GET", PLAIN_HTU),  # no ath
        lambda t: proofs.proof("GET", PLAIN_HTU, access_token=t + "x"),  # ath of another token
        lambda t: proofs.proof("POST", PLAIN_HTU, access_token=t),  # wrong htm
        lambda t: proofs.proof("GET", "http://testserver/rs/other/", access_token=t),  # wrong htu
        lambda t: proofs.proof("GET", PLAIN_HTU, access_token=t, iat=1),  # stale
        lambda t: proofs.proof("GET", PLAIN_HTU, access_token=t, header={"typ": "jwt"}),
    ],
)
def test_bad_proofs_are_refused(machine, make):
    token = issue(machine, proofs.key("A"))
    header = assert_refused(call(PLAIN, token, make(token)), "invalid_dpop_proof")
    assert ALGS in header


def test_a_replayed_proof_is_refused(machine):
    token = issue(machine, proofs.key("A"))
    proof = proofs.proof("GET", PLAIN_HTU, access_token=token)
    assert call(PLAIN, token, proof).status_code == 200
    assert_refused(call(PLAIN, token, proof), "invalid_dpop_proof")


def test_two_proofs_are_refused(machine):
    token = issue(machine, proofs.key("A"))
    proof = proofs.proof("GET", PLAIN_HTU, access_token=token)
    assert_refused(call(PLAIN, token, f"{proof}, {proof}"), "invalid_dpop_proof")


# --- challenges and settings --------------------------------------------------------------------------
def test_a_missing_token_is_challenged_with_both_schemes(db):
    response = BrowserClient().get(PLAIN)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == f'Bearer realm="api", DPoP realm="api", {ALGS}'
    assert BrowserClient().get(DRF)["WWW-Authenticate"] == f'Bearer realm="api", DPoP realm="api", {ALGS}'


def test_dpop_can_be_turned_off(machine, rs):
    rs.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "DPOP": False}
    assert BrowserClient().get(PLAIN)["WWW-Authenticate"] == 'Bearer realm="api"'
    token = issue(machine, proofs.key("A"))
    response = call(PLAIN, token, proofs.proof("GET", PLAIN_HTU, access_token=token))
    assert response.status_code == 401  # "DPoP" is then no scheme of ours: no token at all


def test_dpop_can_be_required(machine, rs):
    rs.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "DPOP_REQUIRED": True}
    assert BrowserClient().get(PLAIN)["WWW-Authenticate"] == f'DPoP realm="api", {ALGS}'
    assert_refused(call(PLAIN, issue(machine), scheme="Bearer"), "invalid_token", scheme="Bearer")
    token = issue(machine, proofs.key("A"))
    assert call(PLAIN, token, proofs.proof("GET", PLAIN_HTU, access_token=token)).status_code == 200


def test_the_public_origin_setting_names_the_htu(machine, rs):
    rs.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "DPOP_ORIGIN": "https://api.example.com"}
    token = issue(machine, proofs.key("A"))
    assert_refused(
        call(PLAIN, token, proofs.proof("GET", PLAIN_HTU, access_token=token)), "invalid_dpop_proof"
    )
    good = proofs.proof("GET", "https://api.example.com/rs/plain/files/", access_token=token)
    assert call(PLAIN, token, good).status_code == 200


def test_resource_nonces(machine, rs):
    rs.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "DPOP_NONCES": True, "DPOP_NONCE_SECRET": "s" * 32}
    token = issue(machine, proofs.key("A"))
    first = call(PLAIN, token, proofs.proof("GET", PLAIN_HTU, access_token=token))
    assert_refused(first, "use_dpop_nonce")
    nonce = first["DPoP-Nonce"]
    stale = call(PLAIN, token, proofs.proof("GET", PLAIN_HTU, access_token=token, nonce="1.AAAA"))
    assert_refused(stale, "use_dpop_nonce")
    response = call(PLAIN, token, proofs.proof("GET", PLAIN_HTU, access_token=token, nonce=nonce))
    assert response.status_code == 200, response.content


def test_drf_nonces_need_the_kits_exception_handler(machine, rs):
    """DRF's own handler sends only WWW-Authenticate: the client would be told use_dpop_nonce without
    the nonce. The kit's handler adds DPoP-Nonce (and no-store); the demo files API uses it."""
    rs.OAUTH_RESOURCE_SERVER = {**RS_SETTINGS, "DPOP_NONCES": True, "DPOP_NONCE_SECRET": "s" * 32}
    token = issue(machine, proofs.key("A"))
    without = call(DRF, token, proofs.proof("GET", DRF_HTU, access_token=token))
    assert_refused(without, "use_dpop_nonce")
    assert "DPoP-Nonce" not in without
    rs.REST_FRAMEWORK = {"EXCEPTION_HANDLER": "oauth_server.resource.drf.exception_handler"}
    first = call(DRF, token, proofs.proof("GET", DRF_HTU, access_token=token))
    assert_refused(first, "use_dpop_nonce")
    assert first["Cache-Control"] == "no-store"
    response = call(DRF, token, proofs.proof("GET", DRF_HTU, access_token=token, nonce=first["DPoP-Nonce"]))
    assert response.status_code == 200, response.content


def test_the_kit_protector_has_both_schemes():
    assert [s.name for s in protector] == ["Bearer", "DPoP"]


# --- UserInfo -----------------------------------------------------------------------------------------
USERINFO = "/oauth/userinfo/"
USERINFO_HTU = "http://testserver/oauth/userinfo/"


@pytest.fixture
def user_token(db):
    """A public client's DPoP-bound token with openid, from the code flow."""
    client = PublicClientFactory(scopes=["openid"])
    browser = BrowserClient()
    browser.force_login(UserFactory())
    code, verifier = get_code(browser, client, scope="openid")
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri_list[0],
        "code_verifier": verifier,
        "client_id": client.client_id,
    }
    response = browser.post(TOKEN_URL, data, HTTP_DPOP=proofs.proof("POST", TOKEN_HTU))
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def test_userinfo_accepts_dpop(user_token):
    response = call(USERINFO, user_token, proofs.proof("GET", USERINFO_HTU, access_token=user_token))
    assert response.status_code == 200, response.content
    assert "sub" in response.json()


def test_userinfo_refuses_a_bound_token_as_bearer(user_token):
    response = call(USERINFO, user_token, scheme="Bearer")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    form = f"access_token={user_token}"  # RFC 6750 2.2, the form body
    response = BrowserClient().post(USERINFO, form, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_token"


def test_userinfo_refuses_wrong_proofs(user_token):
    other = proofs.proof("GET", USERINFO_HTU, signer=proofs.key("B"), access_token=user_token)
    assert call(USERINFO, user_token, other).json()["error"] == "invalid_token"
    no_ath = proofs.proof("GET", USERINFO_HTU)
    response = call(USERINFO, user_token, no_ath)
    assert response.json()["error"] == "invalid_dpop_proof"
    assert response["WWW-Authenticate"].startswith('DPoP error="invalid_dpop_proof"')


def test_userinfo_challenges_both_schemes(db):
    assert BrowserClient().get(USERINFO)["WWW-Authenticate"] == f"Bearer, DPoP {ALGS}"
