"""The FAPI 2.0 security profile (oauth_server/profiles.py, docs/fapi.md): every rule accepted and
refused, for a client's own ``security_profile`` and for the site-wide ``SECURITY_PROFILE``; the
command, the admin, the management API, dynamic registration, the consent line, the audit trail,
discovery, the system checks, and a whole flow to the demo files API."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client as BrowserClient
from django.urls import reverse

from example_project.demo import site
from oauth_server import checks, keys, profiles
from oauth_server.models import AuditEvent, Client, Grant, GrantType, SigningKey
from oauth_server.resource import jwks as resource_jwks
from tests import dpop_proofs as proofs
from tests.factories import (
    ClientFactory,
    DemoFileFactory,
    PublicClientFactory,
    ScopeFactory,
    UserFactory,
    pkce_pair,
)
from tests.helpers import basic_auth, query
from tests.test_private_key_jwt import ASSERTION_TYPE, assertion, key_for, public_jwks

BASE = "http://testserver"
PAR_URL = "/oauth/par/"
AUTHORIZE_URL = "/oauth/authorize/"
TOKEN_URL = "/oauth/token/"
TOKEN_HTU = f"{BASE}/oauth/token/"
FILES = site.files_api_url(BASE)
CALLBACK = "https://bank-app.example.com/callback"
CONSENT_LINE = "This app uses the FAPI 2.0 security profile."


# --- fixtures and helpers ---------------------------------------------------------------------------
@pytest.fixture(params=["client", "site"])
def mode(request, settings, db):
    """Each rule runs twice: the client's own profile, and the site's profile over a plain client."""
    if request.param == "site":
        settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "SECURITY_PROFILE": "fapi2"}
    return request.param


def site_wide(settings, **extra):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "SECURITY_PROFILE": "fapi2", **extra}


def unsaved(**fields) -> Client:
    """A confidential client, not saved (a secret when its method uses one)."""
    fields = {
        "name": "Bank app",
        "client_type": Client.CLIENT_CONFIDENTIAL,
        "grant_types": [GrantType.AUTHORIZATION_CODE],
        "redirect_uris": CALLBACK,
        **fields,
    }
    client = Client(**fields)
    if client.uses_secret:
        client.set_secret()
    return client


def make_fapi_client(mode: str = "client", alg: str = "ES256", **extra) -> Client:
    """A confidential private_key_jwt client, under the profile by its own field or the site's."""
    client = unsaved(
        redirect_uris=CALLBACK,
        grant_types=[GrantType.AUTHORIZATION_CODE, GrantType.REFRESH_TOKEN],
        audiences=[FILES],
    )
    client.token_endpoint_auth_method = "private_key_jwt"
    client.jwks = public_jwks(key_for(alg))
    client.security_profile = "fapi2" if mode == "client" else ""
    for name, value in extra.items():
        setattr(client, name, value)
    client.full_clean()
    client.save()
    client.allowed_scopes.set([ScopeFactory(name=n) for n in ("openid", "profile", "files:read")])
    return client


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


def client_auth(client: Client, alg: str = "ES256", **claims) -> dict[str, str]:
    return {
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(client.client_id, alg, **claims),
    }


def auth_params(client: Client, challenge: str | None = None, **extra) -> dict[str, str]:
    if challenge is None:
        _verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid files:read",
        "state": "s-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return {k: v for k, v in params.items() if v is not None}


def push(client: Client, alg: str = "ES256", **extra):
    return BrowserClient().post(PAR_URL, {**auth_params(client, **extra), **client_auth(client, alg)})


def authorize_with_par(browser, client: Client, challenge: str, **extra):
    """PAR, then the browser with the request_uri only; returns the redirect back to the client."""
    pushed = push(client, challenge=challenge, **extra)
    assert pushed.status_code == 201, pushed.content
    page = browser.get(
        AUTHORIZE_URL, {"client_id": client.client_id, "request_uri": pushed.json()["request_uri"]}
    )
    assert page.status_code == 200, page.content
    form = {name: value for name, value in page.context["form"].initial.items() if value is not None}
    return page, browser.post(AUTHORIZE_URL, {**form, "allow": "true"})


def redeem(client: Client, code: str, verifier: str, dpop: str | None = None, **extra):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
        **client_auth(client),
        **extra,
    }
    headers = {"HTTP_DPOP": dpop} if dpop else {}
    return BrowserClient().post(TOKEN_URL, data, **headers)


def assert_error(response, error: str, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == error, body
    return body


# --- the whole flow ------------------------------------------------------------------------------------
@pytest.fixture
def demo_site(settings):
    derived = site.settings_for(BASE)
    settings.DEMO_BASE_URL = BASE
    settings.OAUTH_RESOURCE_SERVER = derived["OAUTH_RESOURCE_SERVER"]
    cache.clear()
    yield settings
    resource_jwks.reset()
    cache.clear()


def test_happy_path_par_private_key_jwt_pkce_dpop_to_the_files_api(
    mode, demo_site, alice, django_capture_on_commit_callbacks
):
    app = make_fapi_client(mode)
    DemoFileFactory(owner=alice, name="statement.pdf")
    browser = BrowserClient()
    browser.force_login(alice)
    verifier, challenge = pkce_pair()
    with django_capture_on_commit_callbacks(execute=True):  # audit events are saved on commit
        page, response = authorize_with_par(browser, app, challenge)
    assert CONSENT_LINE in page.content.decode()
    assert response.status_code == 302, response.content
    back = query(response["Location"])
    assert response["Location"].startswith(CALLBACK + "?")
    assert back["iss"] == f"{BASE}/oauth" and back["state"] == "s-1"  # RFC 9207
    grant = Grant.objects.get()
    assert grant.expires - grant.created <= timedelta(seconds=61)
    with django_capture_on_commit_callbacks(execute=True):
        tokens = redeem(app, back["code"], verifier, proofs.proof("POST", TOKEN_HTU))
    assert tokens.status_code == 200, tokens.content
    body = tokens.json()
    assert body["token_type"] == "DPoP" and "refresh_token" in body and "id_token" in body
    token = body["access_token"]
    url = f"{BASE}/api/files/"
    answer = BrowserClient().get(
        "/api/files/",
        HTTP_AUTHORIZATION=f"DPoP {token}",
        HTTP_DPOP=proofs.proof("GET", url, access_token=token),
    )
    assert answer.status_code == 200, answer.content
    assert [f["name"] for f in answer.json()["files"]] == ["statement.pdf"]
    # The audit trail names the profile on the authorization and on the token issuance.
    issued = AuditEvent.objects.get(event=AuditEvent.Event.AUTHORIZATION_CODE_ISSUED)
    assert issued.details["security_profile"] == "fapi2"
    token_event = AuditEvent.objects.get(event=AuditEvent.Event.TOKEN_ISSUED)
    assert token_event.details["security_profile"] == "fapi2"
    assert token_event.details["dpop_jkt"] == proofs.thumbprint(proofs.key("A"))


def test_a_plain_client_shows_no_profile_line_and_no_audit_detail(
    alice, db, django_capture_on_commit_callbacks
):
    app = ClientFactory(scopes=["openid"], grant_types=[GrantType.AUTHORIZATION_CODE])
    browser = BrowserClient()
    browser.force_login(alice)
    _verifier, challenge = pkce_pair()
    page = browser.get(
        AUTHORIZE_URL,
        auth_params(app, challenge=challenge, redirect_uri=app.redirect_uri_list[0], scope="openid"),
    )
    assert page.status_code == 200
    assert CONSENT_LINE not in page.content.decode()
    form = {name: value for name, value in page.context["form"].initial.items() if value is not None}
    with django_capture_on_commit_callbacks(execute=True):
        assert browser.post(AUTHORIZE_URL, {**form, "allow": "true"}).status_code == 302
    assert (
        "security_profile"
        not in AuditEvent.objects.get(event=AuditEvent.Event.AUTHORIZATION_CODE_ISSUED).details
    )


# --- PAR -------------------------------------------------------------------------------------------------
def test_par_is_required(mode, alice):
    app = make_fapi_client(mode)
    browser = BrowserClient()
    browser.force_login(alice)
    response = browser.get(AUTHORIZE_URL, auth_params(app))
    assert response.status_code == 302
    back = query(response["Location"])
    assert back["error"] == "invalid_request" and "push" in back["error_description"]
    assert "iss" in back  # error responses carry iss too
    assert not Grant.objects.exists()
    assert profiles.requires_par(app)


def test_a_consent_form_posted_without_a_request_uri_is_refused(mode, alice):
    app = make_fapi_client(mode)
    browser = BrowserClient()
    browser.force_login(alice)
    form = {**auth_params(app), "allow": "true"}
    response = browser.post(AUTHORIZE_URL, form)
    assert response.status_code == 400
    assert not Grant.objects.exists()


def test_par_is_not_required_without_a_profile(db):
    assert not profiles.requires_par(ClientFactory())


# --- PKCE -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra",
    [
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},
    ],
)
def test_pkce_s256_is_required_even_when_the_site_relaxes_pkce(mode, settings, extra):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "REQUIRE_PKCE": False}
    app = make_fapi_client(mode)
    response = push(app, **extra)
    assert_error(response, "invalid_request")


def test_without_a_profile_the_relaxed_site_lets_a_confidential_client_skip_pkce(settings, db):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "REQUIRE_PKCE": False}
    app = ClientFactory(scopes=["openid"], grant_types=[GrantType.AUTHORIZATION_CODE])
    response = BrowserClient().post(
        PAR_URL,
        auth_params(
            app,
            redirect_uri=app.redirect_uri_list[0],
            scope="openid",
            code_challenge=None,
            code_challenge_method=None,
        ),
        HTTP_AUTHORIZATION=basic_auth(app.client_id, app.raw_secret),
    )
    assert response.status_code == 201, response.content


# --- client authentication ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_secret_method_cannot_be_registered_with_the_profile(db, method):
    app = unsaved(security_profile="fapi2", token_endpoint_auth_method=method)
    with pytest.raises(ValidationError) as raised:
        app.full_clean()
    assert "private_key_jwt" in str(raised.value.message_dict["token_endpoint_auth_method"])


def test_a_public_client_cannot_be_registered_with_the_profile(db):
    app = unsaved(client_type=Client.CLIENT_PUBLIC, security_profile="fapi2")
    with pytest.raises(ValidationError) as raised:
        app.full_clean()
    assert "confidential clients only" in str(raised.value.message_dict["client_type"])


def test_an_unknown_profile_name_is_refused(db):
    client = unsaved(security_profile="fapi3")
    with pytest.raises(ValidationError) as raised:
        client.full_clean()
    assert "security_profile" in raised.value.message_dict


def test_site_wide_a_secret_client_from_before_is_refused_at_par_and_token_endpoints(settings, db):
    app = ClientFactory(
        scopes=["openid"], grant_types=[GrantType.AUTHORIZATION_CODE, GrantType.CLIENT_CREDENTIALS]
    )
    site_wide(settings)
    response = BrowserClient().post(
        PAR_URL,
        auth_params(app, redirect_uri=app.redirect_uri_list[0], scope="openid"),
        HTTP_AUTHORIZATION=basic_auth(app.client_id, app.raw_secret),
    )
    assert_error(response, "invalid_client", 401)
    event = AuditEvent.objects.filter(event=AuditEvent.Event.CLIENT_AUTH_FAILED).latest("id")
    assert event.details["reason"] == "auth_method_not_allowed_by_profile"
    token = BrowserClient().post(
        TOKEN_URL,
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, app.raw_secret),
        HTTP_DPOP=proofs.proof("POST", TOKEN_HTU),
    )
    assert_error(token, "invalid_client", 401)


def test_site_wide_a_public_client_from_before_cannot_push_or_redeem(settings, db):
    app = PublicClientFactory(scopes=["openid"], grant_types=[GrantType.AUTHORIZATION_CODE])
    site_wide(settings)
    response = BrowserClient().post(
        PAR_URL, auth_params(app, redirect_uri=app.redirect_uri_list[0], scope="openid")
    )
    assert_error(response, "invalid_client", 401)
    event = AuditEvent.objects.filter(event=AuditEvent.Event.CLIENT_AUTH_FAILED).latest("id")
    assert event.details["reason"] == "auth_method_not_allowed_by_profile"


def test_without_the_profile_the_same_secret_client_pushes(db):
    app = ClientFactory(scopes=["openid"], grant_types=[GrantType.AUTHORIZATION_CODE])
    response = BrowserClient().post(
        PAR_URL,
        auth_params(app, redirect_uri=app.redirect_uri_list[0], scope="openid"),
        HTTP_AUTHORIZATION=basic_auth(app.client_id, app.raw_secret),
    )
    assert response.status_code == 201, response.content


def test_asymmetric_methods_come_from_the_registry():
    assert profiles.asymmetric_methods() == ["private_key_jwt"]


# --- algorithms --------------------------------------------------------------------------------------
def test_an_rs256_client_assertion_is_refused_ps256_accepted(mode, db):
    rsa = key_for("RS256")
    app = make_fapi_client(mode, alg="RS256")
    refused = push(app, alg="RS256")
    assert_error(refused, "invalid_client", 401)
    event = AuditEvent.objects.filter(event=AuditEvent.Event.CLIENT_AUTH_FAILED).latest("id")
    assert event.details["reason"] == "algorithm_not_allowed"
    # The same key signing with PS256 (RSASSA-PSS) is accepted.
    ps = assertion(app.client_id, "PS256", key=rsa)
    accepted = BrowserClient().post(
        PAR_URL, {**auth_params(app), "client_assertion_type": ASSERTION_TYPE, "client_assertion": ps}
    )
    assert accepted.status_code == 201, accepted.content


def test_an_rs256_client_assertion_is_accepted_without_a_profile(db):
    app = make_fapi_client("none", alg="RS256")
    assert push(app, alg="RS256").status_code == 201


# --- DPoP -------------------------------------------------------------------------------------------------
def _code(app: Client, alice) -> tuple[str, str]:
    browser = BrowserClient()
    browser.force_login(alice)
    verifier, challenge = pkce_pair()
    _page, response = authorize_with_par(browser, app, challenge)
    return query(response["Location"])["code"], verifier


def test_dpop_is_required_at_the_token_endpoint(mode, alice):
    app = make_fapi_client(mode)
    code, verifier = _code(app, alice)
    body = assert_error(redeem(app, code, verifier), "invalid_dpop_proof")
    assert "DPoP" in body["error_description"]
    # The code is still redeemable with a proof (nothing was consumed).
    assert redeem(app, code, verifier, proofs.proof("POST", TOKEN_HTU)).json()["token_type"] == "DPoP"


def test_an_rs256_dpop_proof_is_refused_ps256_and_eddsa_accepted(mode, alice):
    app = make_fapi_client(mode)
    code, verifier = _code(app, alice)
    rs256 = proofs.proof("POST", TOKEN_HTU, alg="RS256", signer=proofs.key("R", "RS256"))
    assert_error(redeem(app, code, verifier, rs256), "invalid_dpop_proof")
    ps256 = proofs.proof("POST", TOKEN_HTU, alg="PS256", signer=proofs.key("R", "PS256"))
    assert redeem(app, code, verifier, ps256).status_code == 200


def test_without_a_profile_dpop_stays_optional(db):
    assert not profiles.requires_dpop(ClientFactory())


# --- authorization code lifetime ---------------------------------------------------------------------
def test_the_profile_caps_the_code_lifetime(mode, settings, alice):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "AUTHORIZATION_CODE_LIFETIME": 600}
    app = make_fapi_client(mode)
    _code(app, alice)
    grant = Grant.objects.get()
    assert grant.expires - grant.created <= timedelta(seconds=61)


def test_without_a_profile_the_sites_code_lifetime_applies(settings, alice):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "AUTHORIZATION_CODE_LIFETIME": 600}
    app = make_fapi_client("none")
    _code(app, alice)
    grant = Grant.objects.get()
    assert grant.expires - grant.created >= timedelta(seconds=590)


# --- redirect URIs, response types, grants -------------------------------------------------------
def test_redirect_uri_is_required_in_the_pushed_request(mode, db):
    app = make_fapi_client(mode)
    assert_error(push(app, redirect_uri=None), "invalid_request")
    assert push(app).status_code == 201


def test_without_a_profile_the_single_redirect_uri_may_be_left_out(db):
    app = make_fapi_client("none")
    assert push(app, redirect_uri=None).status_code == 201


def test_http_redirect_uris_cannot_be_registered(db):
    for uri in ("http://bank-app.example.com/cb", "http://127.0.0.1:8765/cb"):
        app = unsaved(
            redirect_uris=uri,
            security_profile="fapi2",
            token_endpoint_auth_method="private_key_jwt",
            jwks=public_jwks(key_for("ES256")),
        )
        with pytest.raises(ValidationError) as raised:
            app.full_clean()
        assert "https" in str(raised.value.message_dict["redirect_uris"])


def test_site_wide_an_http_redirect_uri_from_before_is_refused_at_request_time(settings, db):
    app = make_fapi_client("none", redirect_uris="http://127.0.0.1:8765/cb")
    assert push(app, redirect_uri="http://127.0.0.1:8765/cb").status_code == 201
    site_wide(settings)
    assert_error(push(app, redirect_uri="http://127.0.0.1:8765/cb"), "invalid_request")


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "code token"])
def test_only_response_type_code(mode, db, response_type):
    app = make_fapi_client(mode)
    assert_error(push(app, response_type=response_type), "unsupported_response_type")


def test_the_password_grant_does_not_exist(mode, db):
    app = make_fapi_client(mode)
    response = BrowserClient().post(
        TOKEN_URL,
        {"grant_type": "password", "username": "alice", "password": "x", **client_auth(app)},
        HTTP_DPOP=proofs.proof("POST", TOKEN_HTU),
    )
    assert_error(response, "unsupported_grant_type")


def test_the_device_grant_cannot_be_registered_with_the_profile(db):
    with pytest.raises(ValidationError) as raised:
        make_fapi_client(
            "client",
            grant_types=[GrantType.AUTHORIZATION_CODE, "urn:ietf:params:oauth:grant-type:device_code"],
        )
    assert "device_code" in str(raised.value.message_dict["grant_types"])


def test_site_wide_a_client_from_before_loses_the_grants_the_profile_forbids(settings, db):
    device = "urn:ietf:params:oauth:grant-type:device_code"
    app = ClientFactory(grant_types=[GrantType.AUTHORIZATION_CODE, device])
    assert app.has_grant_type(device)
    site_wide(settings)
    assert not app.has_grant_type(device) and app.has_grant_type(GrantType.AUTHORIZATION_CODE)


def test_client_credentials_under_the_profile(mode, db):
    app = make_fapi_client(mode, grant_types=[GrantType.CLIENT_CREDENTIALS], redirect_uris="")
    data = {"grant_type": "client_credentials", **client_auth(app)}
    assert_error(BrowserClient().post(TOKEN_URL, data), "invalid_dpop_proof")
    ok = BrowserClient().post(
        TOKEN_URL, {**data, **client_auth(app)}, HTTP_DPOP=proofs.proof("POST", TOKEN_HTU)
    )
    assert ok.status_code == 200 and ok.json()["token_type"] == "DPoP"


# --- the command, the admin, the API, dynamic registration --------------------------------------------
def test_create_oauth_client_profile_flag(db, tmp_path, capsys):
    jwks_file = tmp_path / "bank.jwks.json"
    jwks_file.write_text(json.dumps(public_jwks(key_for("ES256"))))
    call_command(
        "create_oauth_client",
        "--name", "Bank app",
        "--type", "confidential",
        "--grant-type", "authorization_code",
        "--redirect-uri", CALLBACK,
        "--auth-method", "private_key_jwt",
        "--jwks-file", str(jwks_file),
        "--profile", "fapi2",
        "--json",
    )  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert data["security_profile"] == "fapi2" and data["client_secret"] is None
    assert Client.objects.get(client_id=data["client_id"]).security_profile == "fapi2"


def test_create_oauth_client_profile_with_a_secret_is_refused(db):
    with pytest.raises(CommandError) as raised:
        call_command(
            "create_oauth_client",
            "--name", "Bank app",
            "--type", "confidential",
            "--grant-type", "authorization_code",
            "--redirect-uri", CALLBACK,
            "--profile", "fapi2",
        )  # fmt: skip
    assert "--auth-method" in str(raised.value) and "private_key_jwt" in str(raised.value)
    assert not Client.objects.exists()


def _admin_form(**overrides) -> dict:
    data = {
        "name": "Bank app",
        "client_type": "confidential",
        "is_enabled": "on",
        "user": "",
        "grant_types": [GrantType.AUTHORIZATION_CODE],
        "redirect_uris": CALLBACK,
        "post_logout_redirect_uris": "",
        "allowed_scopes": [ScopeFactory(name="files:read").pk],
        "access_token_lifetime": "",
        "refresh_token_lifetime": "",
        "access_token_format": "",
        "audiences": "",
        "resource_identifiers": "",
        "logo_uri": "",
        "client_uri": "",
        "policy_uri": "",
        "tos_uri": "",
        "security_profile": "fapi2",
    }
    data.update(overrides)
    return data


def test_admin_refuses_the_profile_on_a_secret_client(admin_client, db):
    response = admin_client.post(reverse("admin:oauth_server_client_add"), _admin_form())
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "private_key_jwt" in str(form.errors), form.errors
    assert not Client.objects.filter(name="Bank app").exists()


def test_admin_saves_the_profile_on_a_private_key_jwt_client(admin_client, db):
    data = _admin_form(
        token_endpoint_auth_method="private_key_jwt", jwks=json.dumps(public_jwks(key_for("ES256")))
    )
    response = admin_client.post(reverse("admin:oauth_server_client_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    app = Client.objects.get(name="Bank app")
    assert app.security_profile == "fapi2" and not app.client_secret
    page = admin_client.get(reverse("admin:oauth_server_client_change", args=[app.pk]))
    assert 'name="security_profile"' in page.content.decode()


def test_management_api_sets_the_profile_and_refuses_it_on_a_secret_client(db):
    from tests.helpers import CLIENTS, grant_permissions, send, signed_in

    api = signed_in(grant_permissions(UserFactory(is_staff=True)))
    secret_client = ClientFactory()
    refused = send(api, "PATCH", f"{CLIENTS}{secret_client.client_id}/", {"security_profile": "fapi2"})
    assert refused.status_code == 400, refused.content
    assert "private_key_jwt" in json.dumps(refused.json())
    secret_client.refresh_from_db()
    assert secret_client.security_profile == ""
    unknown = send(api, "PATCH", f"{CLIENTS}{secret_client.client_id}/", {"security_profile": "fapi3"})
    assert unknown.status_code == 400
    app = make_fapi_client("none")
    ok = send(api, "PATCH", f"{CLIENTS}{app.client_id}/", {"security_profile": "fapi2"})
    assert ok.status_code == 200, ok.content
    assert ok.json()["security_profile"] == "fapi2"
    app.refresh_from_db()
    assert app.security_profile == "fapi2"


def test_dynamic_registration_cannot_choose_a_profile(client, settings, db):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "REGISTRATION_POLICY": "open"}
    body = {
        "client_name": "Agent",
        "redirect_uris": [CALLBACK],
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "none",
        "security_profile": "fapi2",
    }
    response = client.generic("POST", "/oauth/register/", json.dumps(body), content_type="application/json")
    assert_error(response, "invalid_client_metadata")
    assert "security_profile" in response.json()["error_description"]
    assert not Client.objects.exists()


def test_dynamic_registration_under_a_site_wide_profile_refuses_a_public_client(client, settings, db):
    settings.OAUTH_SERVER = {
        **settings.OAUTH_SERVER,
        "REGISTRATION_POLICY": "open",
        "SECURITY_PROFILE": "fapi2",
    }
    body = {
        "client_name": "Agent",
        "redirect_uris": [CALLBACK],
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "none",
    }
    response = client.generic("POST", "/oauth/register/", json.dumps(body), content_type="application/json")
    assert_error(response, "invalid_client_metadata")
    assert not Client.objects.exists()


# --- discovery -----------------------------------------------------------------------------------------
def test_discovery_is_truthful_under_the_site_wide_profile(client, settings, db):
    before = client.get("/oauth/.well-known/openid-configuration").json()
    assert "client_secret_basic" in before["token_endpoint_auth_methods_supported"]
    assert before["require_pushed_authorization_requests"] is False
    site_wide(settings)
    document = client.get("/oauth/.well-known/openid-configuration").json()
    for endpoint in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        assert document[f"{endpoint}_auth_methods_supported"] == ["private_key_jwt"]
        assert "RS256" not in document[f"{endpoint}_auth_signing_alg_values_supported"]
    assert document["require_pushed_authorization_requests"] is True
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["response_types_supported"] == ["code"]
    assert "RS256" not in document["dpop_signing_alg_values_supported"]
    assert "ES256" in document["dpop_signing_alg_values_supported"]
    assert set(document["grant_types_supported"]) <= {
        "authorization_code",
        "refresh_token",
        "client_credentials",
    }
    assert "password" not in document["grant_types_supported"]
    assert document["authorization_response_iss_parameter_supported"] is True
    rfc8414 = client.get("/oauth/.well-known/oauth-authorization-server").json()
    assert rfc8414 == document


# --- system checks -------------------------------------------------------------------------------------
def test_check_refuses_an_unknown_profile_name(settings):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "SECURITY_PROFILE": "fapi-2"}
    assert "oauth_server.E006" in [m.id for m in checks.check_security_profile()]
    # Fail closed meanwhile: the strictest profile applies.
    assert profiles.site_profile() is profiles.FAPI2


def test_check_accepts_none_and_fapi2_with_an_allowed_algorithm(settings):
    assert checks.check_security_profile() == []
    site_wide(settings, SIGNING_KEY_ALGORITHM="ES256")
    assert checks.check_security_profile() == []


def test_check_warns_about_an_rs256_signing_key_under_the_site_wide_profile(settings):
    site_wide(settings, SIGNING_KEY_ALGORITHM="RS256")
    [warning] = checks.check_security_profile()
    assert warning.id == "oauth_server.W012" and "RS256" in warning.msg


def test_database_check_warns_when_a_fapi2_client_meets_an_rs256_active_key(db):
    keys.clear_cache()
    SigningKey.objects.all().delete()
    keys.new_key("RS256", state=SigningKey.State.ACTIVE)
    assert checks.check_profile_signing_key(databases=["default"]) == []
    make_fapi_client("client")
    [warning] = checks.check_profile_signing_key(databases=["default"])
    assert warning.id == "oauth_server.W012"
    SigningKey.objects.all().delete()
    keys.new_key("ES256", state=SigningKey.State.ACTIVE)
    assert checks.check_profile_signing_key(databases=["default"]) == []
    keys.clear_cache()
