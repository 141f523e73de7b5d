"""DPoP at the token endpoint (RFC 9449 4, 5, 6, 8): proofs bind the issued tokens to the client's key,
and every malformed, replayed or foreign proof is refused."""

from __future__ import annotations

import base64
import json
import time

import pytest
from django.core.management import call_command
from django.test import Client as BrowserClient
from django.test import override_settings
from jwcrypto import jwk, jws

from oauth_server import dpop
from oauth_server.models import AccessToken, AuditEvent, RefreshToken
from oauth_server.resource import dpop as core
from tests import dpop_proofs as proofs
from tests.factories import MachineClientFactory, PublicClientFactory, UserFactory
from tests.helpers import TOKEN_URL, basic_auth, get_code

HTU = "http://testserver/oauth/token/"


@pytest.fixture
def machine(db):
    return MachineClientFactory(scopes=["reports:read"])


def cc_request(client, proof: str | None = None, **headers):
    if proof is not None:
        headers["HTTP_DPOP"] = proof
    return BrowserClient().post(
        TOKEN_URL,
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(client.client_id, client.raw_secret),
        **headers,
    )


def payload_of(jwt: str) -> dict:
    segment = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def assert_dpop_error(response, error: str = "invalid_dpop_proof", status: int = 400) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == error, body
    assert response["Cache-Control"] == "no-store"
    return body


# --- binding ------------------------------------------------------------------------------------------
def test_a_proof_binds_the_access_token_to_the_key(machine):
    response = cc_request(machine, proofs.proof("POST", HTU))
    assert response.status_code == 200, response.content
    body = response.json()
    jkt = proofs.thumbprint(proofs.key("A"))
    assert body["token_type"] == "DPoP"
    assert payload_of(body["access_token"])["cnf"] == {"jkt": jkt}
    assert AccessToken.objects.get().dpop_jkt == jkt


def test_without_a_proof_the_token_stays_a_bearer_token(machine):
    response = cc_request(machine)
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"
    assert "cnf" not in payload_of(response.json()["access_token"])
    assert AccessToken.objects.get().dpop_jkt == ""


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
def test_every_advertised_algorithm_is_accepted(machine, alg):
    signer = proofs.key("A", alg)
    response = cc_request(machine, proofs.proof("POST", HTU, signer=signer, alg=alg))
    assert response.status_code == 200, response.content
    assert payload_of(response.json()["access_token"])["cnf"]["jkt"] == signer.thumbprint()


def test_opaque_tokens_are_bound_and_introspection_shows_cnf(db):
    client = MachineClientFactory(scopes=["reports:read"], access_token_format="opaque")
    response = cc_request(client, proofs.proof("POST", HTU))
    assert response.status_code == 200, response.content
    token = response.json()["access_token"]
    answer = (
        BrowserClient()
        .post(
            "/oauth/introspect/",
            {"token": token},
            HTTP_AUTHORIZATION=basic_auth(client.client_id, client.raw_secret),
        )
        .json()
    )
    assert answer["active"] is True
    assert answer["token_type"] == "DPoP"
    assert answer["cnf"] == {"jkt": proofs.thumbprint(proofs.key("A"))}


def test_the_audit_trail_records_the_binding(machine, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        cc_request(machine, proofs.proof("POST", HTU))
    event = AuditEvent.objects.get(event=AuditEvent.Event.TOKEN_ISSUED)
    assert event.details["dpop_jkt"] == proofs.thumbprint(proofs.key("A"))


def test_metadata_advertises_the_algorithms(db):
    metadata = BrowserClient().get("/oauth/.well-known/oauth-authorization-server").json()
    assert metadata["dpop_signing_alg_values_supported"] == ["ES256", "RS256", "PS256", "EdDSA"]


# --- attacks on the proof -----------------------------------------------------------------------------
def test_a_replayed_proof_is_refused(machine):
    proof = proofs.proof("POST", HTU)
    assert cc_request(machine, proof).status_code == 200
    body = assert_dpop_error(cc_request(machine, proof))
    assert "already been used" in body["error_description"]
    assert AccessToken.objects.count() == 1


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"htm": "GET"}, "htm"),
        ({"htu": "http://testserver/oauth/other/"}, "htu"),
        ({"htu": "https://testserver/oauth/token/"}, "htu"),
        ({"htu": "http://evil.example/oauth/token/"}, "htu"),
        ({"iat": -600}, "iat"),  # seconds from now, computed when the test runs (not at collection)
        ({"iat": +600}, "iat"),
        ({"iat": "now"}, "iat"),
        ({"jti": None}, "jti"),
    ],
)
def test_wrong_claims_are_refused(machine, claims, words):
    fields = {"htm": "POST", "htu": HTU, **claims}
    if isinstance(fields.get("iat"), int):
        fields["iat"] += int(time.time())
    proof = proofs.proof(fields.pop("htm"), fields.pop("htu"), **fields)
    body = assert_dpop_error(cc_request(machine, proof))
    assert words in body["error_description"]
    assert not AccessToken.objects.exists()


def test_behind_a_proxy_the_fixed_issuers_origin_is_accepted(machine, monkeypatch):
    """With OIDC_ISS_ENDPOINT, a proof naming the public URL passes though Django sees another host."""
    from oauth2_provider.settings import oauth2_settings

    public = "https://id.example.com/oauth/token/"
    assert_dpop_error(cc_request(machine, proofs.proof("POST", public)))
    monkeypatch.setattr(oauth2_settings, "OIDC_ISS_ENDPOINT", "https://id.example.com/oauth")
    assert cc_request(machine, proofs.proof("POST", public)).status_code == 200
    assert_dpop_error(cc_request(machine, proofs.proof("POST", "https://evil.example/oauth/token/")))


def test_htu_is_compared_normalised_without_query(machine):
    proof = proofs.proof("POST", "HTTP://TestServer:80/oauth/token/?x=1#frag")
    assert cc_request(machine, proof).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        {"typ": "JWT"},
        {"typ": None},
        {"jwk": None},
        {"jwk": {"kty": "EC"}},
    ],
)
def test_wrong_headers_are_refused(machine, header):
    assert_dpop_error(cc_request(machine, proofs.proof("POST", HTU, header=header)))


def test_critical_header_parameters_are_refused(machine):
    valid = proofs.proof("POST", HTU).split(".")
    header = json.loads(base64.urlsafe_b64decode(valid[0] + "=" * (-len(valid[0]) % 4)))
    header["crit"] = ["urn:example"]
    forged = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    body = assert_dpop_error(cc_request(machine, ".".join([forged, valid[1], valid[2]])))
    assert "critical" in body["error_description"]


def test_a_private_key_in_the_jwk_header_is_refused(machine):
    signer = proofs.key("A")
    private = json.loads(signer.export_private())
    body = assert_dpop_error(cc_request(machine, proofs.proof("POST", HTU, header={"jwk": private})))
    assert "public key" in body["error_description"]


def test_a_signature_by_another_key_is_refused(machine):
    other = json.loads(proofs.key("B").export_public())
    assert_dpop_error(cc_request(machine, proofs.proof("POST", HTU, header={"jwk": other})))


def _unsigned(alg: str, secret: bytes | None = None) -> str:
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": json.loads(proofs.key("A").export_public())}
    payload = {"jti": "x1", "htm": "POST", "htu": HTU, "iat": int(time.time())}
    if secret is None:
        enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
        return f"{enc(header)}.{enc(payload)}."
    token = jws.JWS(json.dumps(payload))
    token.add_signature(
        jwk.JWK(kty="oct", k=base64.urlsafe_b64encode(secret).decode().rstrip("=")),
        alg=alg,
        protected=json.dumps(header),
    )
    return token.serialize(compact=True)


def test_alg_none_and_hmac_are_refused(machine):
    body = assert_dpop_error(cc_request(machine, _unsigned("none")))
    assert "algorithm" in body["error_description"]
    body = assert_dpop_error(cc_request(machine, _unsigned("HS256", b"k" * 32)))
    assert "algorithm" in body["error_description"]


def test_two_dpop_headers_are_refused(machine):
    # A WSGI server joins repeated headers with a comma.
    joined = proofs.proof("POST", HTU) + "," + proofs.proof("POST", HTU)
    body = assert_dpop_error(cc_request(machine, joined))
    assert "one DPoP header" in body["error_description"]


@pytest.mark.parametrize("value", ["", "not-a-jwt", "a.b.c", "x" * 9000, "e30.e30.e30"])
def test_garbage_is_refused_not_a_500(machine, value):
    assert_dpop_error(cc_request(machine, value))  # an empty header is a broken proof, not none


# --- requiring DPoP -----------------------------------------------------------------------------------
def test_a_client_that_requires_dpop_is_refused_without_a_proof(db):
    client = MachineClientFactory(scopes=["reports:read"], require_dpop=True)
    body = assert_dpop_error(cc_request(client))
    assert "must send a DPoP proof" in body["error_description"]
    assert cc_request(client, proofs.proof("POST", HTU)).status_code == 200


def test_the_site_can_require_dpop(machine):
    with override_settings(OAUTH_SERVER={"REQUIRE_DPOP": True}):
        assert_dpop_error(cc_request(machine))


def test_create_oauth_client_dpop_option(db, capsys):
    args = ["--name", "Bank", "--type", "confidential", "--grant-type", "client_credentials", "--json"]
    call_command("create_oauth_client", *args, "--dpop")
    assert json.loads(capsys.readouterr().out)["require_dpop"] is True
    call_command("create_oauth_client", *args)
    assert json.loads(capsys.readouterr().out)["require_dpop"] is False


# --- nonces -------------------------------------------------------------------------------------------
@override_settings(OAUTH_SERVER={"DPOP_NONCES": True})
def test_server_nonces(machine):
    first = cc_request(machine, proofs.proof("POST", HTU))
    body = assert_dpop_error(first, "use_dpop_nonce")
    assert "nonce" in body["error_description"]
    nonce = first["DPoP-Nonce"]
    assert nonce
    stale = assert_dpop_error(
        cc_request(machine, proofs.proof("POST", HTU, nonce="0.AAAA")), "use_dpop_nonce"
    )
    assert stale
    response = cc_request(machine, proofs.proof("POST", HTU, nonce=nonce))
    assert response.status_code == 200, response.content
    assert response["DPoP-Nonce"] == nonce


def test_nonces_rotate_accepting_the_previous_window():
    secret, window = b"s" * 32, 300
    now = 1_000_000.0
    nonce = core.make_nonce(secret, window, now=now)
    assert core.nonce_is_fresh(nonce, secret, window, now=now)
    assert core.nonce_is_fresh(nonce, secret, window, now=now + window)
    assert not core.nonce_is_fresh(nonce, secret, window, now=now + 2 * window)
    assert not core.nonce_is_fresh(nonce, b"t" * 32, window, now=now)


def test_the_nonce_secret_comes_from_secret_key(settings):
    first = dpop.nonce_secret()
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert dpop.nonce_secret() != first


# --- refresh tokens -----------------------------------------------------------------------------------
@pytest.fixture
def public_app(db):
    return PublicClientFactory(scopes=["files:read"])


def code_tokens(client, proof: str | None):
    browser = BrowserClient()
    browser.force_login(UserFactory())
    code, verifier = get_code(browser, client)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri_list[0],
        "code_verifier": verifier,
        "client_id": client.client_id,
    }
    headers = {"HTTP_DPOP": proof} if proof else {}
    return browser.post(TOKEN_URL, data, **headers)


def refresh(client, refresh_token: str, proof: str | None):
    headers = {"HTTP_DPOP": proof} if proof else {}
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client.client_id}
    if client.raw_secret:
        headers["HTTP_AUTHORIZATION"] = basic_auth(client.client_id, client.raw_secret)
        del data["client_id"]
    return BrowserClient().post(TOKEN_URL, data, **headers)


def test_a_public_clients_refresh_token_is_bound_to_its_key(public_app):
    response = code_tokens(public_app, proofs.proof("POST", HTU))
    assert response.status_code == 200, response.content
    tokens = response.json()
    jkt = proofs.thumbprint(proofs.key("A"))
    assert RefreshToken.objects.get().dpop_jkt == jkt
    # without a proof, or with another key: invalid_grant, and the refresh token still works after
    assert_dpop_error(refresh(public_app, tokens["refresh_token"], None), "invalid_grant")
    other = proofs.proof("POST", HTU, signer=proofs.key("B"))
    body = assert_dpop_error(refresh(public_app, tokens["refresh_token"], other), "invalid_grant")
    assert "bound" in body["error_description"]
    renewed = refresh(public_app, tokens["refresh_token"], proofs.proof("POST", HTU))
    assert renewed.status_code == 200, renewed.content
    assert renewed.json()["token_type"] == "DPoP"
    assert payload_of(renewed.json()["access_token"])["cnf"]["jkt"] == jkt
    assert RefreshToken.objects.get(revoked__isnull=True).dpop_jkt == jkt


def test_a_confidential_clients_refresh_token_is_not_bound(db):
    from tests.factories import ClientFactory

    client = ClientFactory(scopes=["files:read"])
    browser = BrowserClient()
    browser.force_login(UserFactory())
    code, verifier = get_code(browser, client)
    response = browser.post(
        TOKEN_URL,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client.redirect_uri_list[0],
            "code_verifier": verifier,
        },
        HTTP_AUTHORIZATION=basic_auth(client.client_id, client.raw_secret),
        HTTP_DPOP=proofs.proof("POST", HTU),
    )
    assert response.status_code == 200, response.content
    assert RefreshToken.objects.get().dpop_jkt == ""
    # RFC 9449 5: a confidential client may refresh with a new key (its authentication binds it).
    renewed = refresh(
        client, response.json()["refresh_token"], proofs.proof("POST", HTU, signer=proofs.key("B"))
    )
    assert renewed.status_code == 200, renewed.content
    assert payload_of(renewed.json()["access_token"])["cnf"]["jkt"] == proofs.thumbprint(proofs.key("B"))


def test_a_bad_proof_at_code_exchange_leaves_the_code_usable(public_app):
    browser = BrowserClient()
    browser.force_login(UserFactory())
    code, verifier = get_code(browser, public_app)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": public_app.redirect_uri_list[0],
        "code_verifier": verifier,
        "client_id": public_app.client_id,
    }
    assert_dpop_error(browser.post(TOKEN_URL, data, HTTP_DPOP=proofs.proof("GET", HTU)))
    assert not AccessToken.objects.exists()
    response = browser.post(TOKEN_URL, data, HTTP_DPOP=proofs.proof("POST", HTU))
    assert response.status_code == 200, response.content


# --- cost ---------------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_dpop_token_request_costs_no_extra_statement(machine, django_assert_num_queries, settings):
    """The binding rides on the rows already written (tests/test_audit.py pins the Bearer count)."""
    from tests.test_audit import TOKEN_QUERIES

    cc_request(machine)  # creates the signing keys
    settings.OAUTH_SERVER = {"AUDIT_LOG": False}
    with django_assert_num_queries(TOKEN_QUERIES):
        assert cc_request(machine).status_code == 200
    with django_assert_num_queries(TOKEN_QUERIES):
        assert cc_request(machine, proofs.proof("POST", HTU)).status_code == 200
