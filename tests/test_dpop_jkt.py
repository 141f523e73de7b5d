"""DPoP at the authorization endpoint (RFC 9449 10): ``dpop_jkt`` and a DPoP proof at the PAR endpoint
bind the authorization code to a key, and only a proof by that key redeems it."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.test import Client as BrowserClient
from jwcrypto import jwk, jwt

from oauth_server.models import AccessToken, AuditEvent, Grant, PushedAuthorizationRequest
from tests import dpop_proofs as proofs
from tests.factories import ClientFactory, PublicClientFactory, UserFactory, pkce_pair
from tests.helpers import AUTHORIZE_URL, TOKEN_URL, authorize_params, basic_auth, consent_form_data, query

TOKEN_HTU = "http://testserver/oauth/token/"
PAR_HTU = "http://testserver/oauth/par/"
PAR_URL = "/oauth/par/"


@pytest.fixture
def app(db):
    return ClientFactory(scopes=["openid", "profile"], grant_types=["authorization_code", "refresh_token"])


@pytest.fixture
def browser(db):
    browser = BrowserClient()
    browser.force_login(UserFactory(username="alice"))
    return browser


def jkt(name: str = "A") -> str:
    return proofs.thumbprint(proofs.key(name))


def code_for(browser, app, **extra) -> tuple[str, str]:
    """Consent and approve a plain authorization request; (code, verifier)."""
    verifier, challenge = pkce_pair()
    page = browser.get(AUTHORIZE_URL, authorize_params(app, challenge=challenge, scope="openid", **extra))
    assert page.status_code == 200, page
    data = consent_form_data(page)
    response = browser.post(AUTHORIZE_URL, {**data, "allow": "true"})
    assert response.status_code == 302, response.content
    return query(response["Location"])["code"], verifier


def code_by_request_uri(browser, app, request_uri: str) -> str:
    page = browser.get(AUTHORIZE_URL, {"client_id": app.client_id, "request_uri": request_uri})
    assert page.status_code == 200, page
    response = browser.post(AUTHORIZE_URL, {**consent_form_data(page), "allow": "true"})
    assert response.status_code == 302, response.content
    return query(response["Location"])["code"]


def exchange(app, code: str, verifier: str, proof: str | None = None):
    headers = {"HTTP_AUTHORIZATION": basic_auth(app.client_id, app.raw_secret)}
    if proof is not None:
        headers["HTTP_DPOP"] = proof
    return BrowserClient().post(
        TOKEN_URL,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": app.redirect_uri_list[0],
            "code_verifier": verifier,
        },
        **headers,
    )


def push(app, *, proof: str | None = None, **extra):
    verifier, challenge = pkce_pair()
    params = authorize_params(app, challenge=challenge, scope="openid", **extra)
    headers = {"HTTP_AUTHORIZATION": basic_auth(app.client_id, app.raw_secret)}
    if proof is not None:
        headers["HTTP_DPOP"] = proof
    return BrowserClient().post(PAR_URL, params, **headers), verifier


# --- dpop_jkt on a plain authorization request ---------------------------------------------------
def test_the_code_is_bound_and_only_a_proof_by_that_key_redeems_it(app, browser):
    code, verifier = code_for(browser, app, dpop_jkt=jkt("A"))
    assert Grant.objects.get().dpop_jkt == jkt("A")

    missing = exchange(app, code, verifier)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_grant", missing.content
    other = exchange(app, code, verifier, proofs.proof("POST", TOKEN_HTU, signer=proofs.key("B")))
    assert other.status_code == 400 and other.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()

    # The refusals left the code redeemable by its owner.
    good = exchange(app, code, verifier, proofs.proof("POST", TOKEN_HTU))
    assert good.status_code == 200, good.content
    assert good.json()["token_type"] == "DPoP"
    assert AccessToken.objects.get().dpop_jkt == jkt("A")


def test_an_unbound_code_still_takes_any_proof_or_none(app, browser):
    code, verifier = code_for(browser, app)
    assert Grant.objects.get().dpop_jkt == ""
    assert exchange(app, code, verifier).status_code == 200


def test_the_audit_trail_records_the_binding(app, browser, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        code_for(browser, app, dpop_jkt=jkt("A"))
    event = AuditEvent.objects.get(event=AuditEvent.Event.AUTHORIZATION_CODE_ISSUED)
    assert event.details["dpop_jkt"] == jkt("A")


@pytest.mark.parametrize("bad", ["short", "A" * 44, "A" * 42 + "=", "A" * 42 + "+", "é" * 43])
def test_a_malformed_dpop_jkt_is_invalid_request(app, browser, bad):
    _verifier, challenge = pkce_pair()
    response = browser.get(
        AUTHORIZE_URL, authorize_params(app, challenge=challenge, scope="openid", dpop_jkt=bad)
    )
    assert response.status_code == 302
    assert query(response["Location"])["error"] == "invalid_request"
    assert query(response["Location"])["state"] == "xyz-state"


def test_two_dpop_jkt_values_are_invalid_request(app, browser):
    _verifier, challenge = pkce_pair()
    params = authorize_params(app, challenge=challenge, scope="openid")
    url = AUTHORIZE_URL + "?" + "&".join(f"{k}={v}" for k, v in params.items())
    response = browser.get(f"{url}&dpop_jkt={jkt('A')}&dpop_jkt={jkt('B')}")
    assert response.status_code == 302
    assert query(response["Location"])["error"] == "invalid_request"


def test_a_tampered_consent_form_dpop_jkt_is_refused(app, browser):
    _verifier, challenge = pkce_pair()
    page = browser.get(
        AUTHORIZE_URL, authorize_params(app, challenge=challenge, scope="openid", dpop_jkt=jkt("A"))
    )
    data = consent_form_data(page)
    assert data["dpop_jkt"] == jkt("A")
    response = browser.post(AUTHORIZE_URL, {**data, "dpop_jkt": "not a thumbprint", "allow": "true"})
    assert response.status_code == 400
    assert not Grant.objects.exists()


def test_a_public_client_binds_its_code_too(db, browser):
    spa = PublicClientFactory(scopes=["openid"], grant_types=["authorization_code"])
    code, verifier = code_for(browser, spa, dpop_jkt=jkt("A"))
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": spa.redirect_uri_list[0],
        "code_verifier": verifier,
        "client_id": spa.client_id,
    }
    assert BrowserClient().post(TOKEN_URL, data).json()["error"] == "invalid_grant"
    response = BrowserClient().post(TOKEN_URL, data, HTTP_DPOP=proofs.proof("POST", TOKEN_HTU))
    assert response.status_code == 200, response.content


# --- the PAR endpoint ----------------------------------------------------------------------------
def test_a_pushed_dpop_jkt_binds_the_code(app, browser):
    response, verifier = push(app, dpop_jkt=jkt("A"))
    assert response.status_code == 201, response.content
    code = code_by_request_uri(browser, app, response.json()["request_uri"])
    assert Grant.objects.get().dpop_jkt == jkt("A")
    assert exchange(app, code, verifier).json()["error"] == "invalid_grant"
    assert exchange(app, code, verifier, proofs.proof("POST", TOKEN_HTU)).status_code == 200


def test_a_dpop_proof_at_par_binds_the_code_to_its_key(app, browser):
    response, verifier = push(app, proof=proofs.proof("POST", PAR_HTU, signer=proofs.key("B")))
    assert response.status_code == 201, response.content
    assert PushedAuthorizationRequest.objects.get().parameters["dpop_jkt"] == [jkt("B")]
    code = code_by_request_uri(browser, app, response.json()["request_uri"])
    assert Grant.objects.get().dpop_jkt == jkt("B")
    wrong = exchange(app, code, verifier, proofs.proof("POST", TOKEN_HTU, signer=proofs.key("A")))
    assert wrong.json()["error"] == "invalid_grant"
    right = exchange(app, code, verifier, proofs.proof("POST", TOKEN_HTU, signer=proofs.key("B")))
    assert right.status_code == 200, right.content


def test_proof_and_dpop_jkt_at_par_must_agree(app):
    response, _ = push(app, proof=proofs.proof("POST", PAR_HTU), dpop_jkt=jkt("A"))
    assert response.status_code == 201, response.content
    response, _ = push(app, proof=proofs.proof("POST", PAR_HTU), dpop_jkt=jkt("B"))
    assert response.status_code == 400 and response.json()["error"] == "invalid_dpop_proof"
    assert PushedAuthorizationRequest.objects.count() == 1


@pytest.mark.parametrize(
    "proof",
    [
        lambda: proofs.proof("POST", TOKEN_HTU),  # made for another endpoint
        lambda: proofs.proof("GET", PAR_HTU),
        lambda: proofs.proof("POST", PAR_HTU, iat=int(time.time()) - 3600),
        lambda: "not-a-proof",
    ],
)
def test_a_bad_proof_at_par_is_invalid_dpop_proof(app, proof):
    response, _ = push(app, proof=proof())
    assert response.status_code == 400 and response.json()["error"] == "invalid_dpop_proof"
    assert not PushedAuthorizationRequest.objects.exists()


def test_a_replayed_proof_at_par_is_refused(app):
    proof = proofs.proof("POST", PAR_HTU)
    assert push(app, proof=proof)[0].status_code == 201
    assert push(app, proof=proof)[0].json()["error"] == "invalid_dpop_proof"


def test_par_asks_for_a_nonce_when_nonces_are_on(app, settings):
    settings.OAUTH_SERVER = {**getattr(settings, "OAUTH_SERVER", {}), "DPOP_NONCES": True}
    response, _ = push(app, proof=proofs.proof("POST", PAR_HTU))
    assert response.status_code == 400 and response.json()["error"] == "use_dpop_nonce"
    nonce = response["DPoP-Nonce"]
    response, _ = push(app, proof=proofs.proof("POST", PAR_HTU, nonce=nonce))
    assert response.status_code == 201, response.content
    assert response["DPoP-Nonce"]


# --- inside a signed request object ----------------------------------------------------------------
def signed_request(app, challenge: str, **extra) -> str:
    """A request object of ``app`` (given a registered key here), with a jti, for ``challenge``."""
    key = jwk.JWK(**{**json.loads(jwk.JWK.generate(kty="EC", crv="P-256").export_private()), "kid": "k1"})
    app.jwks = {"keys": [json.loads(key.export_public())]}
    app.save()
    now = int(time.time())
    claims = {
        "iss": app.client_id,
        "aud": "http://testserver/oauth",
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
        "response_type": "code",
        "redirect_uri": app.redirect_uri_list[0],
        "scope": "openid",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    token = jwt.JWT(header={"alg": "ES256", "kid": "k1", "typ": "oauth-authz-req+jwt"}, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


def test_dpop_jkt_inside_a_request_object(app, browser):
    verifier, challenge = pkce_pair()
    token = signed_request(app, challenge, dpop_jkt=jkt("A"))
    # By value, with an outer dpop_jkt of another key: the object's wins.
    response = browser.get(
        AUTHORIZE_URL, {"client_id": app.client_id, "request": token, "dpop_jkt": jkt("B")}
    )
    assert response.status_code == 302, response.content
    code = code_by_request_uri(browser, app, query(response["Location"])["request_uri"])
    assert Grant.objects.get().dpop_jkt == jkt("A")
    assert exchange(app, code, verifier, proofs.proof("POST", TOKEN_HTU)).status_code == 200


def test_use_dpop_nonce_at_par_does_not_spend_the_request_object(app, browser, settings):
    """RFC 9449 8: the client answered use_dpop_nonce sends the same request again with a new proof.
    The refused push must not have spent the request object's jti (openid-client resends the object
    it signed; tests/e2e/test_openid_client_jar.py)."""
    settings.OAUTH_SERVER = {**getattr(settings, "OAUTH_SERVER", {}), "DPOP_NONCES": True}
    verifier, challenge = pkce_pair()
    body = {"client_id": app.client_id, "request": signed_request(app, challenge)}
    auth = {"HTTP_AUTHORIZATION": basic_auth(app.client_id, app.raw_secret)}
    first = BrowserClient().post(PAR_URL, body, HTTP_DPOP=proofs.proof("POST", PAR_HTU), **auth)
    assert first.status_code == 400 and first.json()["error"] == "use_dpop_nonce"
    proof = proofs.proof("POST", PAR_HTU, signer=proofs.key("B"), nonce=first["DPoP-Nonce"])
    again = BrowserClient().post(PAR_URL, body, HTTP_DPOP=proof, **auth)
    assert again.status_code == 201, again.content
    code = code_by_request_uri(browser, app, again.json()["request_uri"])
    assert Grant.objects.get().dpop_jkt == jkt("B")
    # Spent now: the same object pushed a third time is a replay.
    proof = proofs.proof("POST", PAR_HTU, signer=proofs.key("B"), nonce=again["DPoP-Nonce"])
    third = BrowserClient().post(PAR_URL, body, HTTP_DPOP=proof, **auth)
    assert third.status_code == 400 and third.json()["error"] == "invalid_request_object"
    nonce = again["DPoP-Nonce"]  # the token endpoint's too
    wrong = exchange(
        app, code, verifier, proofs.proof("POST", TOKEN_HTU, signer=proofs.key("A"), nonce=nonce)
    )
    assert wrong.json()["error"] == "invalid_grant"
    right = exchange(
        app, code, verifier, proofs.proof("POST", TOKEN_HTU, signer=proofs.key("B"), nonce=nonce)
    )
    assert right.status_code == 200, right.content
