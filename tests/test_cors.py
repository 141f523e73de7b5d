"""CORS (oauth_server.cors): only public clients' registered origins, never credentials, never ``*``."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from oauth_server.cors import normalize_origin, origin_listed
from oauth_server.forms import ClientAdminForm
from oauth_server.models import Client
from tests.factories import ClientFactory, PublicClientFactory
from tests.helpers import TOKEN_URL, basic_auth, get_code, token_request

SPA_ORIGIN = "https://spa.example.com"
USERINFO_URL = "/oauth/userinfo/"
REVOKE_URL = "/oauth/revoke/"
INTROSPECT_URL = "/oauth/introspect/"


@pytest.fixture
def spa(db):
    return PublicClientFactory(
        scopes=["openid", "files:read"],
        redirect_uris="https://spa.example.com/callback",
        allowed_origins=f"{SPA_ORIGIN} https://spa-staging.example.com:8443",
    )


def preflight(browser, url: str, origin: str, method: str = "POST"):
    return browser.options(
        url,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )


def vary(response) -> set[str]:
    return {v.strip().lower() for v in response.get("Vary", "").split(",") if v.strip()}


def assert_cors(response, origin: str) -> None:
    assert response["Access-Control-Allow-Origin"] == origin
    assert "origin" in vary(response)
    assert "Access-Control-Allow-Credentials" not in response


def assert_no_cors(response) -> None:
    assert not [name for name, _value in response.items() if name.lower().startswith("access-control-")]


def spa_tokens(browser, spa, **headers) -> tuple[dict, object]:
    code, verifier = get_code(browser, spa, scope="openid files:read")
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": spa.redirect_uri_list[0],
        "code_verifier": verifier,
    }
    response = token_request(browser, data, client=spa, **headers)
    return response.json(), response


# --- preflight ------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", [TOKEN_URL, REVOKE_URL, USERINFO_URL])
def test_preflight_from_a_registered_origin(client, spa, url):
    response = preflight(client, url, SPA_ORIGIN)
    assert response.status_code == 200
    assert_cors(response, SPA_ORIGIN)
    methods = {m.strip() for m in response["Access-Control-Allow-Methods"].split(",")}
    assert "POST" in methods
    assert ("GET" in methods) == (url == USERINFO_URL)
    headers = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert headers == {"authorization", "content-type", "dpop"}  # RFC 9449: a browser's DPoP proof
    assert response["Access-Control-Max-Age"] == "3600"
    assert response["Cache-Control"] == "no-store"


@override_settings(OAUTH_SERVER={"CORS_MAX_AGE": 600})
def test_preflight_max_age_setting(client, spa):
    assert preflight(client, TOKEN_URL, SPA_ORIGIN)["Access-Control-Max-Age"] == "600"


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "https://spa.example.com.evil.com",
        "http://spa.example.com",  # scheme differs
        "https://spa.example.com:444",  # port differs
        "https://spa-staging.example.com",  # registered with :8443 only
        "null",
        "https://*.example.com",
    ],
)
def test_preflight_from_an_unknown_origin_gets_no_cors_headers(client, spa, origin):
    response = preflight(client, TOKEN_URL, origin)
    assert_no_cors(response)
    assert "origin" in vary(response)


def test_equivalent_spellings_of_an_origin_match(client, spa):
    for origin in (
        "https://SPA.example.com",
        "https://spa.example.com:443",
        "https://spa-staging.example.com:8443",
    ):
        echoed = preflight(client, TOKEN_URL, origin)["Access-Control-Allow-Origin"]
        assert echoed == normalize_origin(origin)
        assert echoed in ("https://spa.example.com", "https://spa-staging.example.com:8443")


def test_confidential_and_disabled_clients_origins_are_not_honoured(client, db):
    # The form and the command refuse this; a row written some other way is still not honoured.
    ClientFactory(allowed_origins="https://web.example.com")
    PublicClientFactory(allowed_origins="https://off.example.com", is_enabled=False)
    assert_no_cors(preflight(client, TOKEN_URL, "https://web.example.com"))
    assert_no_cors(preflight(client, TOKEN_URL, "https://off.example.com"))


def test_introspection_has_no_cors(client, spa):
    assert_no_cors(preflight(client, INTROSPECT_URL, SPA_ORIGIN))


# --- actual requests ----------------------------------------------------------------------------
def test_spa_code_exchange_and_refresh_are_readable_by_its_origin(client, user, spa):
    client.force_login(user)
    tokens, response = spa_tokens(client, spa, HTTP_ORIGIN=SPA_ORIGIN)
    assert response.status_code == 200
    assert_cors(response, SPA_ORIGIN)
    assert "Retry-After" in response["Access-Control-Expose-Headers"]
    refreshed = token_request(
        client,
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        client=spa,
        HTTP_ORIGIN=SPA_ORIGIN,
    )
    assert refreshed.status_code == 200
    assert_cors(refreshed, SPA_ORIGIN)


def test_errors_are_readable_by_the_clients_origin(client, spa):
    response = client.post(
        TOKEN_URL,
        {"grant_type": "authorization_code", "code": "bad", "client_id": spa.client_id},
        HTTP_ORIGIN=SPA_ORIGIN,
    )
    assert response.status_code == 400
    assert_cors(response, SPA_ORIGIN)


def test_the_origin_must_be_the_requesting_clients(client, spa):
    """Client B's origin cannot read answers given to client A, even though it passes preflight."""
    other = PublicClientFactory(allowed_origins="https://other.example.com")
    data = {"grant_type": "authorization_code", "code": "bad", "client_id": spa.client_id}
    assert preflight(client, TOKEN_URL, "https://other.example.com").status_code == 200
    response = client.post(TOKEN_URL, data, HTTP_ORIGIN="https://other.example.com")
    assert_no_cors(response)
    assert "origin" in vary(response)
    assert other.allowed_origins


@pytest.mark.parametrize("client_id", ["spa\x00", "\x00"])
def test_a_nul_in_the_client_id_is_no_client_and_no_500(client, spa, client_id):
    """PostgreSQL refuses NUL in a query parameter: the CORS lookup must not send it (fuzz finding)."""
    data = {"grant_type": "authorization_code", "code": "bad", "client_id": client_id}
    response = client.post(TOKEN_URL, data, HTTP_ORIGIN=SPA_ORIGIN)
    assert response.status_code in (400, 401)
    assert_no_cors(response)


def test_oauthlibs_own_cors_header_for_a_confidential_client_is_removed(client, user, db):
    """oauthlib adds Access-Control-Allow-Origin when the validator allows the origin, confidential
    clients included; our rule (public clients only) replaces its answer."""
    web = ClientFactory(allowed_origins="https://web.example.com", scopes=["files:read"])
    client.force_login(user)
    code, verifier = get_code(client, web, scope="files:read")
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": web.redirect_uri_list[0],
        "code_verifier": verifier,
    }
    response = token_request(
        client, data, client=web, secret=web.raw_secret, HTTP_ORIGIN="https://web.example.com"
    )
    assert response.status_code == 200
    assert_no_cors(response)


def test_unknown_origin_gets_the_answer_without_cors_headers(client, spa):
    response = client.post(
        TOKEN_URL,
        {"grant_type": "authorization_code", "code": "bad", "client_id": spa.client_id},
        HTTP_ORIGIN="https://evil.example",
    )
    assert response.status_code == 400  # the server answers; the browser hides it from the page
    assert_no_cors(response)


@override_settings(OAUTH_SERVER={"RATE_LIMITS": {"token": "1/m"}})
def test_a_throttled_spa_can_read_the_429_and_retry_after(client, spa):
    data = {"grant_type": "authorization_code", "code": "bad", "client_id": spa.client_id}
    client.post(TOKEN_URL, data, HTTP_ORIGIN=SPA_ORIGIN)
    response = client.post(TOKEN_URL, data, HTTP_ORIGIN=SPA_ORIGIN)
    assert response.status_code == 429
    assert_cors(response, SPA_ORIGIN)
    assert "Retry-After" in response["Access-Control-Expose-Headers"]


def test_userinfo_and_revocation(client, user, spa):
    client.force_login(user)
    tokens, _response = spa_tokens(client, spa)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {tokens['access_token']}"}
    info = client.get(USERINFO_URL, HTTP_ORIGIN=SPA_ORIGIN, **bearer)
    assert info.status_code == 200
    assert_cors(info, SPA_ORIGIN)
    assert "WWW-Authenticate" in info["Access-Control-Expose-Headers"]
    assert "DPoP-Nonce" in info["Access-Control-Expose-Headers"]  # RFC 9449 8: a browser reads it
    assert_no_cors(client.get(USERINFO_URL, HTTP_ORIGIN="https://evil.example", **bearer))
    revoked = client.post(
        REVOKE_URL, {"token": tokens["refresh_token"], "client_id": spa.client_id}, HTTP_ORIGIN=SPA_ORIGIN
    )
    assert revoked.status_code == 200
    assert_cors(revoked, SPA_ORIGIN)


def test_requests_without_origin_get_no_cors_headers(client, spa):
    response = client.post(
        TOKEN_URL, {"grant_type": "authorization_code", "code": "x", "client_id": spa.client_id}
    )
    assert_no_cors(response)


# --- public documents ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "/oauth/.well-known/openid-configuration",
        "/oauth/.well-known/oauth-authorization-server",
        "/oauth/.well-known/jwks.json",
    ],
)
def test_public_documents_are_readable_by_any_origin_without_credentials(client, db, url):
    response = client.get(url, HTTP_ORIGIN="https://anyone.example")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response
    pre = preflight(client, url, "https://anyone.example", method="GET")
    assert pre["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in pre


# --- origin matching ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("https://App.Example.com", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("https://app.example.com/", "https://app.example.com"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("null", None),
        ("https://app.example.com/path", None),
        ("https://user@app.example.com", None),
        ("ftp://app.example.com", None),
        ("https://app.example.com:99999", None),
        ("", None),
        ("https://spa.example.com\n", None),
        ("https://spa.example.com\r\nSet-Cookie: x=1", None),
        ("https://spä.example.com", None),
        (" https://spa.example.com", None),
    ],
)
def test_normalize_origin(value, normalized):
    assert normalize_origin(value) == normalized


def test_http_origins_need_dots_allowed_schemes():
    assert not origin_listed("http://localhost:3000", "http://localhost:3000")
    with override_settings(OAUTH2_PROVIDER={"ALLOWED_SCHEMES": ["https", "http"]}):
        assert origin_listed("http://localhost:3000", "http://localhost:3000")


# --- registration: admin form and create_oauth_client ---------------------------------------------
def form_data(**overrides) -> dict:
    data = {
        "name": "SPA",
        "client_type": Client.CLIENT_PUBLIC,
        "is_enabled": "on",
        "grant_types": ["authorization_code"],
        "redirect_uris": "https://spa.example.com/callback",
        "allowed_origins": "https://spa.example.com/\nhttps://spa.example.com",
        "access_token_format": "",
    }
    data.update(overrides)
    return data


def test_admin_form_stores_origins_of_a_public_client(db):
    form = ClientAdminForm(data=form_data())
    assert form.is_valid(), form.errors
    assert form.save().allowed_origins == "https://spa.example.com"


def test_admin_form_refuses_origins_for_a_confidential_client(db):
    form = ClientAdminForm(data=form_data(client_type=Client.CLIENT_CONFIDENTIAL))
    assert not form.is_valid()
    assert "allowed_origins" in form.errors
    assert "public clients" in str(form.errors["allowed_origins"])


def test_admin_form_refuses_an_origin_with_a_path(db):
    form = ClientAdminForm(data=form_data(allowed_origins="https://spa.example.com/app"))
    assert not form.is_valid()
    assert "allowed_origins" in form.errors


def test_create_oauth_client_allowed_origin(db):
    out = StringIO()
    call_command(
        "create_oauth_client",
        "--name=SPA",
        "--type=public",
        "--grant-type=authorization_code",
        "--redirect-uri=https://spa.example.com/cb",
        "--allowed-origin=https://spa.example.com/",
        "--allowed-origin=https://spa2.example.com",
        "--json",
        stdout=out,
    )
    data = json.loads(out.getvalue())
    assert data["allowed_origins"] == ["https://spa.example.com", "https://spa2.example.com"]
    assert Client.objects.get(client_id=data["client_id"]).allowed_origins == (
        "https://spa.example.com https://spa2.example.com"
    )


def test_create_oauth_client_refuses_origins_for_confidential_clients(db):
    with pytest.raises(CommandError, match="--allowed-origin"):
        call_command(
            "create_oauth_client",
            "--name=Web",
            "--type=confidential",
            "--grant-type=authorization_code",
            "--redirect-uri=https://web.example.com/cb",
            "--allowed-origin=https://web.example.com",
            stdout=StringIO(),
        )
    with pytest.raises(CommandError, match="--allowed-origin"):
        call_command(
            "create_oauth_client",
            "--name=SPA",
            "--type=public",
            "--grant-type=authorization_code",
            "--redirect-uri=https://spa.example.com/cb",
            "--allowed-origin=http://spa.example.com",
            stdout=StringIO(),
        )
    assert not Client.objects.exists()


def test_basic_auth_client_is_the_one_checked(client, spa):
    """A Basic header names the client as much as a body client_id does."""
    response = client.post(
        TOKEN_URL,
        {"grant_type": "authorization_code", "code": "bad"},
        HTTP_AUTHORIZATION=basic_auth(spa.client_id, "x"),
        HTTP_ORIGIN=SPA_ORIGIN,
    )
    assert response.status_code in (400, 401)
    assert_cors(response, SPA_ORIGIN)


def test_an_origin_with_control_characters_is_not_echoed(client, spa):
    """urlsplit drops newlines and tabs: an origin that matches only after that is no origin."""
    for origin in ("https://spa.example.com\t", "https://spa.\nexample.com"):
        response = preflight(client, TOKEN_URL, origin)
        assert response.status_code == 200
        assert_no_cors(response)
