"""Signed request objects (RFC 9101, JAR): by value at the authorization endpoint and pushed (PAR),
and every way a request object is refused."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client as BrowserClient
from jwcrypto import jwk, jws, jwt

from oauth_server import client_keys
from oauth_server.models import AuditEvent, Grant, PushedAuthorizationRequest
from tests.factories import ClientFactory, ConsentFactory, UserFactory, pkce_pair
from tests.helpers import AUTHORIZE_URL, basic_auth, consent_form_data, query

ISSUER = "http://testserver/oauth"
PAR_URL = "/oauth/par/"
CALLBACK = "https://client.example.com/callback"
_KEYS: dict[str, jwk.JWK] = {}


def signing_key(alg: str = "ES256", kid: str | None = None) -> jwk.JWK:
    kid = kid or f"ro-{alg}"
    if kid not in _KEYS:
        generated = {
            "ES256": lambda: jwk.JWK.generate(kty="EC", crv="P-256"),
            "RS256": lambda: jwk.JWK.generate(kty="RSA", size=2048),
            "PS256": lambda: jwk.JWK.generate(kty="RSA", size=2048),
            "EdDSA": lambda: jwk.JWK.generate(kty="OKP", crv="Ed25519"),
        }[alg]()
        _KEYS[kid] = jwk.JWK(**{**json.loads(generated.export_private()), "kid": kid})
    return _KEYS[kid]


def public_jwks(*keys: jwk.JWK) -> dict:
    return {"keys": [json.loads(k.export_public()) for k in keys]}


@pytest.fixture
def app(db):
    """A confidential web client with a secret and public keys for its request objects."""
    client = ClientFactory(scopes=["openid", "profile"], grant_types=["authorization_code"])
    client.redirect_uris = f"{CALLBACK} https://client.example.com/other"
    client.jwks = public_jwks(signing_key())
    client.full_clean()
    client.save()
    return client


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


def auth_claims(client, **overrides: Any) -> dict[str, Any]:
    _verifier, challenge = pkce_pair()
    now = int(time.time())
    claims = {
        "iss": client.client_id,
        "aud": ISSUER,
        "exp": now + 300,
        "nbf": now,
        "iat": now,
        "jti": uuid.uuid4().hex,
        "client_id": client.client_id,
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "scope": "openid profile",
        "state": "signed-state",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def request_object(
    client, *, key: jwk.JWK | None = None, alg: str = "ES256", header: dict | None = None, **overrides
) -> str:
    key = key or signing_key(alg)
    protected = {"alg": alg, "kid": key.get("kid"), "typ": "oauth-authz-req+jwt", **(header or {})}
    protected = {k: v for k, v in protected.items() if v is not None}
    token = jwt.JWT(header=protected, claims=auth_claims(client, **overrides))
    token.make_signed_token(key)
    return token.serialize()


def authorize(browser, client, signed: str, **outer: str):
    return browser.get(AUTHORIZE_URL, {"client_id": client.client_id, "request": signed, **outer})


def refused_page(response, reason: str, error: str = "invalid_request_object") -> None:
    """An error page, never a redirect to the client, and the refusal in the audit trail."""
    assert response.status_code == 400, response.content
    assert "Location" not in response
    assert response.context["error"] == error
    event = AuditEvent.objects.filter(event=AuditEvent.Event.REQUEST_OBJECT_REFUSED).latest("id")
    assert event.details["reason"] == reason, event.details
    assert event.outcome == AuditEvent.Outcome.FAILURE
    assert not PushedAuthorizationRequest.objects.exists()


def follow_to_code(browser, response) -> dict[str, str]:
    """From the 302 to the stored request's request_uri: consent page, approve, the redirect's query."""
    assert response.status_code == 302, response.content
    page = browser.get(response["Location"])
    if page.status_code == 200:
        data = consent_form_data(page)
        data["allow"] = "true"
        page = browser.post(AUTHORIZE_URL, data)
    assert page.status_code == 302, page.content
    return query(page["Location"])


# --- by value at the authorization endpoint ------------------------------------------------------
def test_a_signed_request_is_stored_and_continued_by_request_uri(client, app, alice):
    client.force_login(alice)
    response = authorize(client, app, request_object(app))
    assert response.status_code == 302
    location = query(response["Location"])
    assert set(location) == {"client_id", "request_uri"}  # the browser carries only a reference
    row = PushedAuthorizationRequest.objects.get()
    assert row.signed and not row.pushed
    back = follow_to_code(client, response)
    assert back["state"] == "signed-state" and "code" in back
    assert back["iss"] == ISSUER
    assert not PushedAuthorizationRequest.objects.exists()  # consumed


def test_the_request_object_wins_over_outer_parameters(client, app, alice):
    """RFC 9101 6.3: only client_id is read outside the object."""
    client.force_login(alice)
    ConsentFactory(user=alice, client=app, scope="openid profile")
    response = authorize(
        client,
        app,
        request_object(app),
        redirect_uri="https://client.example.com/other",
        state="outer-state",
        scope="openid",
        prompt="none",
    )
    back = client.get(response["Location"])
    assert back.status_code == 302
    assert back["Location"].startswith(CALLBACK + "?")
    assert query(back["Location"])["state"] == "signed-state"
    assert Grant.objects.get().scope == "openid profile"


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
def test_each_allowed_algorithm(client, app, alice, alg):
    app.jwks = public_jwks(signing_key(alg))
    app.save()
    client.force_login(alice)
    assert "code" in follow_to_code(client, authorize(client, app, request_object(app, alg=alg)))


def test_typ_may_be_absent_for_interoperability(client, app, alice):
    client.force_login(alice)
    signed = request_object(app, header={"typ": None})
    assert "code" in follow_to_code(client, authorize(client, app, signed))


def test_a_tampered_request_object_fails_its_signature(client, app, alice):
    signed = request_object(app)
    header, payload, signature = signed.split(".")
    claims = json.loads(jws.base64url_decode(payload))
    claims["redirect_uri"] = "https://client.example.com/other"
    forged = ".".join([header, jws.base64url_encode(json.dumps(claims)), signature])
    client.force_login(alice)
    refused_page(authorize(client, app, forged), "invalid_signature")
    event = AuditEvent.objects.get(event=AuditEvent.Event.REQUEST_OBJECT_REFUSED)
    assert (event.username, event.client_id, event.details["endpoint"]) == (
        "alice",
        app.client_id,
        "authorize",
    )


def test_a_request_object_signed_by_another_key_is_refused(client, app, alice):
    stranger = jwk.JWK.generate(kty="EC", crv="P-256", kid="ro-ES256")
    client.force_login(alice)
    refused_page(authorize(client, app, request_object(app, key=stranger)), "invalid_signature")


def test_alg_none_and_hmac_with_the_public_key_are_refused(client, app, alice):
    """Algorithm confusion: no signature, or HS256 keyed with the client's public key."""
    app.jwks = public_jwks(signing_key("RS256"))
    app.save()
    client.force_login(alice)
    claims = auth_claims(app)
    unsigned = (
        f"{jws.base64url_encode(json.dumps({'alg': 'none'}))}.{jws.base64url_encode(json.dumps(claims))}."
    )
    refused_page(authorize(client, app, unsigned), "algorithm_not_allowed")
    public_pem = signing_key("RS256").export_to_pem()
    forged = jwt.JWT(header={"alg": "HS256", "kid": "ro-RS256"}, claims=auth_claims(app))
    forged.make_signed_token(jwk.JWK(kty="oct", k=jws.base64url_encode(public_pem)))
    refused_page(authorize(client, app, forged.serialize()), "algorithm_not_allowed")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"iss": "someone-else"}, "wrong_issuer"),
        ({"iss": None}, "wrong_issuer"),
        ({"aud": "https://other-server.example/oauth"}, "wrong_audience"),
        ({"aud": None}, "wrong_audience"),
        ({"client_id": "another-client"}, "client_id_mismatch"),
        ({"exp": int(time.time()) - 3600, "nbf": int(time.time()) - 3700}, "expired"),
        ({"exp": None}, "missing_exp"),
        ({"exp": int(time.time()) + 2 * 3600}, "lifetime_too_long"),
        ({"nbf": int(time.time()) + 600}, "bad_nbf"),
        ({"iat": int(time.time()) + 600}, "bad_iat"),
        ({"request_uri": "urn:ietf:params:oauth:request_uri:x"}, "nested_request"),
        ({"state": {"not": "a string"}}, "bad_parameter"),
        ({"jti": ""}, "bad_jti"),
    ],
)
def test_bad_claims_are_refused_with_a_page(client, app, alice, overrides, reason):
    client.force_login(alice)
    refused_page(authorize(client, app, request_object(app, **overrides)), reason)


def test_aud_may_be_a_list_holding_the_issuer(client, app, alice):
    client.force_login(alice)
    signed = request_object(app, aud=["https://elsewhere.example", ISSUER])
    assert "code" in follow_to_code(client, authorize(client, app, signed))


@pytest.mark.parametrize("typ", ["JWT", "dpop+jwt", "at+jwt"])
def test_other_typ_values_are_refused(client, app, alice, typ):
    client.force_login(alice)
    refused_page(authorize(client, app, request_object(app, header={"typ": typ})), "wrong_typ")


def test_a_jti_is_single_use(client, app, alice):
    client.force_login(alice)
    signed = request_object(app)
    assert authorize(client, app, signed).status_code == 302
    PushedAuthorizationRequest.objects.all().delete()
    refused_page(authorize(client, app, signed), "replayed_jti")


def test_without_jti_the_object_may_be_presented_again(client, app, alice):
    client.force_login(alice)
    signed = request_object(app, jti=None)
    assert authorize(client, app, signed).status_code == 302
    assert authorize(client, app, signed).status_code == 302


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "a.b.c.d.e", "x" * 40000])
def test_garbage_request_objects_get_a_page(client, app, alice, garbage):
    client.force_login(alice)
    response = authorize(client, app, garbage)
    assert response.status_code == 400 and "Location" not in response
    assert response.context["error"] == "invalid_request_object"


def test_an_unknown_or_missing_client_id_gets_a_page(client, app, alice):
    client.force_login(alice)
    signed = request_object(app)
    for outer in ({"client_id": "nobody"}, {"client_id": "\x00"}):
        response = client.get(AUTHORIZE_URL, {"request": signed, **outer})
        assert response.status_code == 400 and "Location" not in response
    response = client.get(AUTHORIZE_URL, {"request": signed})
    assert response.status_code == 400 and "Location" not in response


def test_another_clients_object_does_not_pass_as_this_client(client, app, alice):
    other = ClientFactory(scopes=["openid"])
    other.jwks = public_jwks(jwk.JWK.generate(kty="EC", crv="P-256", kid="ro-ES256"))
    other.save()
    client.force_login(alice)
    # Signed by app's key, naming other as iss and client_id: verified with other's keys.
    signed = request_object(app, iss=other.client_id, client_id=other.client_id)
    refused_page(
        client.get(AUTHORIZE_URL, {"client_id": other.client_id, "request": signed}), "invalid_signature"
    )


def test_request_and_request_uri_together_or_two_requests_are_refused(client, app, alice):
    client.force_login(alice)
    response = authorize(client, app, request_object(app), request_uri="urn:ietf:params:oauth:request_uri:x")
    assert response.status_code == 400 and response.context["error"] == "invalid_request"
    response = client.get(
        AUTHORIZE_URL, {"client_id": app.client_id, "request": [request_object(app), request_object(app)]}
    )
    assert response.status_code == 400 and response.context["error"] == "invalid_request"
    assert not PushedAuthorizationRequest.objects.exists()


@pytest.mark.parametrize(
    "request_uri", ["https://client.example.com/request.jwt", "http://127.0.0.1/r", "data:,x", "/r"]
)
def test_request_uri_by_reference_is_not_supported(client, app, alice, request_uri):
    client.force_login(alice)
    response = client.get(AUTHORIZE_URL, {"client_id": app.client_id, "request_uri": request_uri})
    assert response.status_code == 400 and "Location" not in response
    assert response.context["error"] == "request_uri_not_supported"


def test_a_client_without_keys_cannot_send_request_objects(client, db, alice):
    keyless = ClientFactory(scopes=["openid"])
    client.force_login(alice)
    response = client.get(AUTHORIZE_URL, {"client_id": keyless.client_id, "request": request_object(keyless)})
    refused_page(response, "keys_unavailable")


def test_anonymous_user_signs_in_and_comes_back_with_the_request_uri(client, app):
    response = authorize(client, app, request_object(app))
    assert response.status_code == 302 and "request_uri" in response["Location"]
    login = client.get(response["Location"])
    assert login.status_code == 302 and "/login" in login["Location"]
    next_url = query(login["Location"])["next"]
    assert "request_uri" in next_url and "request=" not in next_url and "code_challenge" not in next_url


def test_unknown_kid_refetches_the_jwks_uri(client, db, alice, monkeypatch):
    from django.core.cache import cache

    url = "https://client.example.com/jwks.json"
    documents = {url: public_jwks(signing_key(kid="first"))}
    calls: list[str] = []

    class Fetcher:
        def fetch(self, uri):
            calls.append(uri)
            return documents[uri], 300

    cache.clear()
    monkeypatch.setattr(client_keys, "fetcher_class", Fetcher)
    app = ClientFactory(scopes=["openid", "profile"], grant_types=["authorization_code"])
    app.jwks_uri = url
    app.full_clean()
    app.save()
    client.force_login(alice)
    assert authorize(client, app, request_object(app, key=signing_key(kid="first"))).status_code == 302
    documents[url] = public_jwks(signing_key(kid="second"))  # the client rotated its key
    cache.delete(client_keys._key(url, "refresh"))  # a minute later: a refetch is allowed
    response = authorize(client, app, request_object(app, key=signing_key(kid="second")))
    assert response.status_code == 302, response.content
    assert calls == [url, url]
    cache.clear()


# --- requiring signed request objects --------------------------------------------------------------
def plain_params(client, **extra) -> dict[str, str]:
    _verifier, challenge = pkce_pair()
    return {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile",
        "state": "plain",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


def test_a_client_that_requires_signing_cannot_send_plain_parameters(client, app, alice):
    app.require_signed_request_object = True
    app.save()
    client.force_login(alice)
    response = client.get(AUTHORIZE_URL, plain_params(app))
    assert response.status_code == 302
    assert query(response["Location"])["error"] == "invalid_request"  # the redirect URI is registered
    assert not Grant.objects.exists()
    pushed = client.post(
        PAR_URL, plain_params(app), HTTP_AUTHORIZATION=basic_auth(app.client_id, app.raw_secret)
    )
    assert pushed.status_code == 400 and pushed.json()["error"] == "invalid_request"
    # A consent form posted without a signed request behind it is refused too.
    page = follow_to_code_page(client, authorize(client, app, request_object(app)))
    data = consent_form_data(page)
    data.pop("request_uri")
    assert client.post(AUTHORIZE_URL, {**data, "allow": "true"}).status_code == 400
    # Signed: accepted, by value and pushed.
    assert "code" in follow_to_code(client, authorize(client, app, request_object(app)))
    request_uri = push_signed(client, app).json()["request_uri"]
    assert "code" in follow_to_code(client, redirect_to(app, request_uri))


def follow_to_code_page(browser, response):
    assert response.status_code == 302
    page = browser.get(response["Location"])
    assert page.status_code == 200, page.content
    return page


class _Redirect:
    def __init__(self, location: str):
        self.status_code = 302
        self._location = location

    def __getitem__(self, name: str) -> str:
        return self._location


def redirect_to(client, request_uri: str) -> _Redirect:
    from urllib.parse import urlencode

    return _Redirect(
        AUTHORIZE_URL + "?" + urlencode({"client_id": client.client_id, "request_uri": request_uri})
    )


def test_site_wide_requirement_is_advertised_and_enforced(client, app, alice, settings):
    settings.OAUTH_SERVER = {**getattr(settings, "OAUTH_SERVER", {}), "REQUIRE_SIGNED_REQUEST_OBJECT": True}
    metadata = client.get("/oauth/.well-known/oauth-authorization-server").json()
    assert metadata["require_signed_request_object"] is True
    client.force_login(alice)
    assert query(client.get(AUTHORIZE_URL, plain_params(app))["Location"])["error"] == "invalid_request"


def test_metadata(client, db):
    metadata = client.get("/oauth/.well-known/openid-configuration").json()
    assert metadata["request_parameter_supported"] is True
    assert metadata["request_uri_parameter_supported"] is False
    assert metadata["request_object_signing_alg_values_supported"] == ["RS256", "PS256", "ES256", "EdDSA"]
    assert "require_signed_request_object" not in metadata


def test_the_algorithm_setting_never_admits_none_or_hmac(client, app, alice, settings):
    settings.OAUTH_SERVER = {
        **getattr(settings, "OAUTH_SERVER", {}),
        "REQUEST_OBJECT_ALGORITHMS": ["none", "HS256", "PS256"],
    }
    metadata = client.get("/oauth/.well-known/openid-configuration").json()
    assert metadata["request_object_signing_alg_values_supported"] == ["PS256"]
    client.force_login(alice)
    refused_page(authorize(client, app, request_object(app)), "algorithm_not_allowed")  # ES256: not listed


def test_a_front_channel_request_object_does_not_satisfy_a_par_requirement(client, app, alice):
    app.require_pushed_authorization_requests = True
    app.save()
    client.force_login(alice)
    response = authorize(client, app, request_object(app))
    back = client.get(response["Location"])
    assert back.status_code == 302
    assert query(back["Location"])["error"] == "invalid_request"


def test_the_flag_needs_keys(db):
    app = ClientFactory()
    app.require_signed_request_object = True
    with pytest.raises(ValidationError) as info:
        app.full_clean()
    assert "jwks" in info.value.message_dict


def test_create_oauth_client_sets_the_flag(db, tmp_path, capsys):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(public_jwks(signing_key())))
    call_command(
        "create_oauth_client",
        "--name=signed requests",
        "--type=confidential",
        "--grant-type=authorization_code",
        "--redirect-uri=https://client.example.com/callback",
        f"--jwks-file={path}",
        "--require-signed-request-object",
        "--json",
    )
    out = json.loads(capsys.readouterr().out)
    assert out["require_signed_request_object"] is True


def test_the_admin_edits_the_flag(db):
    from oauth_server.forms import ClientAdminForm

    assert "require_signed_request_object" in ClientAdminForm.Meta.fields


# --- pushed (PAR) ------------------------------------------------------------------------------------
def push_signed(browser, client, signed: str | None = None, **outer: str):
    return browser.post(
        PAR_URL,
        {"client_id": client.client_id, "request": signed or request_object(client), **outer},
        HTTP_AUTHORIZATION=basic_auth(client.client_id, client.raw_secret),
    )


def test_a_pushed_request_object_then_the_request_uri(client, app, alice):
    response = push_signed(client, app, state="outer-state", redirect_uri="https://client.example.com/other")
    assert response.status_code == 201, response.content
    row = PushedAuthorizationRequest.objects.get()
    assert row.signed and row.pushed
    assert row.parameters["state"] == ["signed-state"] and "request" not in row.parameters
    assert row.parameters["redirect_uri"] == [CALLBACK]
    client.force_login(alice)
    back = follow_to_code(client, redirect_to(app, response.json()["request_uri"]))
    assert back["state"] == "signed-state" and "code" in back


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "https://other-server.example/oauth"}, "wrong_audience"),
        ({"iss": "x"}, "wrong_issuer"),
        ({"exp": int(time.time()) - 600, "nbf": int(time.time()) - 700}, "expired"),
    ],
)
def test_a_bad_pushed_request_object_is_answered_as_json(client, app, overrides, reason):
    response = push_signed(client, app, request_object(app, **overrides))
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_request_object"
    assert not PushedAuthorizationRequest.objects.exists()
    event = AuditEvent.objects.filter(event=AuditEvent.Event.REQUEST_OBJECT_REFUSED).latest("id")
    assert event.details == {"reason": reason, "endpoint": "par"}
    assert event.client_id == app.client_id


def test_the_pushed_objects_parameters_are_validated_like_any_push(client, app):
    response = push_signed(client, app, request_object(app, redirect_uri="https://evil.example/cb"))
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    response = push_signed(client, app, request_object(app, scope="openid admin-everything"))
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_a_pushed_object_must_be_the_authenticated_clients(client, app):
    other = ClientFactory(scopes=["openid"])
    response = client.post(
        PAR_URL,
        {"request": request_object(app)},
        HTTP_AUTHORIZATION=basic_auth(other.client_id, other.raw_secret),
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request_object"


def test_a_pushed_request_object_replayed_is_refused(client, app):
    signed = request_object(app)
    assert push_signed(client, app, signed).status_code == 201
    response = push_signed(client, app, signed)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request_object"


def test_a_request_object_with_max_age_claims_and_resources(client, app, alice):
    app.audiences = ["https://api.example.com", "https://files.example.com"]
    app.save()
    signed = request_object(
        app,
        max_age=3600,
        claims={"id_token": {"auth_time": {"essential": True}}},
        resource=["https://api.example.com", "https://files.example.com"],
        nonce="n-1",
    )
    response = push_signed(client, app, signed)
    assert response.status_code == 201, response.content
    row = PushedAuthorizationRequest.objects.get()
    assert row.parameters["max_age"] == ["3600"]
    assert json.loads(row.parameters["claims"][0]) == {"id_token": {"auth_time": {"essential": True}}}
    assert row.parameters["resource"] == ["https://api.example.com", "https://files.example.com"]
    browser = BrowserClient()
    browser.force_login(alice)
    assert "code" in follow_to_code(browser, redirect_to(app, response.json()["request_uri"]))
    assert sorted(Grant.objects.get().resource) == ["https://api.example.com", "https://files.example.com"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"state": "a\x00b"},
        {"nonce": "\ud800"},
        {"claims": {"userinfo": {"email\x00": None}}},
        {"x\x00": "y"},
        {"resource": ["https://api.example.com", "\x00"]},
    ],
)
def test_values_no_database_can_store_are_refused_before_storing(client, app, alice, overrides):
    """The parameters are stored before they are validated: NUL and lone surrogates never reach it."""
    client.force_login(alice)
    try:
        signed = request_object(app, **overrides)
    except (UnicodeEncodeError, ValueError):
        pytest.skip("jwcrypto cannot serialize this value")
    refused_page(authorize(client, app, signed), "bad_parameter")


def test_the_management_api_sets_the_flag_and_needs_keys(app):
    from tests.helpers import CLIENTS, grant_permissions, send, signed_in

    api = signed_in(grant_permissions(UserFactory(is_staff=True)))
    url = f"{CLIENTS}{app.client_id}/"
    response = send(api, "PATCH", url, {"require_signed_request_object": True})
    assert response.status_code == 200, response.content
    assert response.json()["require_signed_request_object"] is True
    app.refresh_from_db()
    assert app.require_signed_request_object
    response = send(api, "PATCH", url, {"jwks": None})
    assert response.status_code == 400 and "jwks" in str(response.json()), response.json()


def test_the_admin_change_page_shows_the_flag(app):
    from tests.helpers import signed_in

    admin = signed_in(UserFactory(is_staff=True, is_superuser=True))
    page = admin.get(f"/admin/oauth_server/client/{app.pk}/change/")
    assert page.status_code == 200
    assert 'name="require_signed_request_object"' in page.content.decode()
