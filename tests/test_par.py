"""Pushed authorization requests (RFC 9126): the endpoint, the authorization endpoint's use of a
request_uri, and the attacks (tampering, another client's request_uri, expiry, reuse)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from oauth_server.models import Client, Grant, PushedAuthorizationRequest
from tests.factories import ClientFactory, ConsentFactory, PublicClientFactory, UserFactory, pkce_pair
from tests.helpers import basic_auth, query

PAR_URL = "/oauth/par/"
AUTHORIZE_URL = "/oauth/authorize/"


@pytest.fixture
def web_client(db):
    return ClientFactory(scopes=["openid", "profile"], grant_types=["authorization_code"])


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


def auth_params(client, **extra) -> dict[str, str]:
    _verifier, challenge = pkce_pair()
    return {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri_list[0],
        "scope": "openid profile",
        "state": "s-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


def push(browser, client, **extra):
    return browser.post(
        PAR_URL,
        auth_params(client, **extra),
        HTTP_AUTHORIZATION=basic_auth(client.client_id, client.raw_secret),
    )


def test_push_returns_a_request_uri_and_stores_only_its_hash(client, web_client):
    response = push(client, web_client)
    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:") and body["expires_in"] == 60
    row = PushedAuthorizationRequest.objects.get()
    reference = body["request_uri"].rsplit(":", 1)[1]
    assert reference not in row.reference_checksum and row.client == web_client
    assert "client_secret" not in row.parameters


def test_full_flow_with_request_uri_only(client, web_client, alice):
    request_uri = push(client, web_client).json()["request_uri"]
    client.force_login(alice)
    page = client.get(AUTHORIZE_URL, {"client_id": web_client.client_id, "request_uri": request_uri})
    assert page.status_code == 200
    assert page.context["form"].initial["request_uri"] == request_uri
    form = {name: value for name, value in page.context["form"].initial.items() if value is not None}
    response = client.post(AUTHORIZE_URL, {**form, "allow": "true"})
    assert response.status_code == 302, response.content
    location = query(response["Location"])
    assert location["state"] == "s-123" and "code" in location
    assert not PushedAuthorizationRequest.objects.exists()  # consumed
    again = client.get(AUTHORIZE_URL, {"client_id": web_client.client_id, "request_uri": request_uri})
    assert again.status_code == 400  # used


def test_tampered_consent_form_gets_the_pushed_parameters(client, web_client, alice):
    """What the browser posts back is ignored: the code goes with the pushed redirect URI and state."""
    web_client.redirect_uris = "https://client.example.com/callback https://client.example.com/other"
    web_client.save()
    request_uri = push(client, web_client).json()["request_uri"]
    client.force_login(alice)
    page = client.get(AUTHORIZE_URL, {"client_id": web_client.client_id, "request_uri": request_uri})
    form = {name: value for name, value in page.context["form"].initial.items() if value is not None}
    form.update(redirect_uri="https://client.example.com/other", state="evil", code_challenge="A" * 43)
    response = client.post(AUTHORIZE_URL, {**form, "allow": "true"})
    assert response["Location"].startswith("https://client.example.com/callback?")
    assert query(response["Location"])["state"] == "s-123"
    assert Grant.objects.get().code_challenge != "A" * 43
    widened = {**form, "scope": "openid profile email", "allow": "true"}
    request_uri = push(client, web_client).json()["request_uri"]
    widened["request_uri"] = request_uri
    assert client.post(AUTHORIZE_URL, widened).status_code == 400


def test_browser_parameters_beside_request_uri_are_ignored(client, web_client, alice):
    request_uri = push(client, web_client).json()["request_uri"]
    client.force_login(alice)
    ConsentFactory(user=alice, client=web_client, scope="openid profile")
    response = client.get(
        AUTHORIZE_URL,
        {
            "client_id": web_client.client_id,
            "request_uri": request_uri,
            "redirect_uri": "https://evil.example/cb",
            "state": "evil",
        },
    )
    assert response.status_code == 302
    assert response["Location"].startswith("https://client.example.com/callback?")
    assert query(response["Location"])["state"] == "s-123"


def test_request_uri_of_another_client_expired_or_garbage_is_an_error_page(client, web_client, alice):
    request_uri = push(client, web_client).json()["request_uri"]
    other = ClientFactory(scopes=["openid"])
    client.force_login(alice)
    for params in (
        {"client_id": other.client_id, "request_uri": request_uri},
        {"client_id": web_client.client_id, "request_uri": "urn:ietf:params:oauth:request_uri:nope"},
        {"client_id": web_client.client_id, "request_uri": "https://evil.example/req"},
        {"client_id": "\x00", "request_uri": request_uri},
    ):
        response = client.get(AUTHORIZE_URL, params)
        assert response.status_code == 400 and "Location" not in response
    PushedAuthorizationRequest.objects.update(expires=timezone.now() - timedelta(seconds=1))
    response = client.get(AUTHORIZE_URL, {"client_id": web_client.client_id, "request_uri": request_uri})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_request"),
        ({"scope": "openid admin-everything"}, "invalid_scope"),
        ({"code_challenge": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"request_uri": "urn:ietf:params:oauth:request_uri:x"}, "invalid_request"),
        ({"resource": "https://not-registered.example"}, "invalid_target"),
    ],
)
def test_bad_pushed_requests_are_answered_to_the_client(client, web_client, extra, error):
    params = {k: v for k, v in auth_params(web_client, **extra).items() if v is not None}
    response = client.post(
        PAR_URL, params, HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.raw_secret)
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"] == error
    assert not PushedAuthorizationRequest.objects.exists()


def test_push_needs_client_authentication(client, web_client):
    response = client.post(PAR_URL, auth_params(web_client))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    response = client.post(
        PAR_URL, auth_params(web_client), HTTP_AUTHORIZATION=basic_auth(web_client.client_id, "wrong" * 10)
    )
    assert response.status_code == 401
    other = ClientFactory()
    response = client.post(
        PAR_URL,
        auth_params(web_client),
        HTTP_AUTHORIZATION=basic_auth(other.client_id, other.raw_secret),
    )
    assert response.status_code == 400  # client_id names another client
    assert not PushedAuthorizationRequest.objects.exists()


def test_public_client_pushes_with_its_client_id(client, db):
    spa = PublicClientFactory(scopes=["openid"], grant_types=["authorization_code"])
    response = client.post(PAR_URL, auth_params(spa, scope="openid"))
    assert response.status_code == 201, response.content


def test_get_and_query_parameters_are_refused(client, web_client):
    assert client.get(PAR_URL).status_code == 405
    response = client.post(
        PAR_URL + "?scope=openid",
        auth_params(web_client),
        HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.raw_secret),
    )
    assert response.status_code == 400


def test_client_that_requires_par_cannot_skip_it(client, web_client, alice):
    web_client.require_pushed_authorization_requests = True
    web_client.save()
    client.force_login(alice)
    response = client.get(AUTHORIZE_URL, auth_params(web_client))
    assert response.status_code == 302
    assert query(response["Location"])["error"] == "invalid_request"
    request_uri = push(client, web_client).json()["request_uri"]
    page = client.get(AUTHORIZE_URL, {"client_id": web_client.client_id, "request_uri": request_uri})
    assert page.status_code == 200
    form = {name: value for name, value in page.context["form"].initial.items() if value is not None}
    form.pop("request_uri")
    assert client.post(AUTHORIZE_URL, {**form, "allow": "true"}).status_code == 400


def test_site_wide_requirement_is_advertised(client, db, settings):
    settings.OAUTH_SERVER = {
        **getattr(settings, "OAUTH_SERVER", {}),
        "REQUIRE_PUSHED_AUTHORIZATION_REQUESTS": True,
    }
    metadata = client.get("/oauth/.well-known/oauth-authorization-server").json()
    assert metadata["require_pushed_authorization_requests"] is True
    assert metadata["pushed_authorization_request_endpoint"] == "http://testserver/oauth/par/"


def test_prompt_login_with_a_pushed_request_signs_in_again_without_looping(client, web_client, alice):
    request_uri = push(client, web_client, prompt="login").json()["request_uri"]
    client.force_login(alice)
    response = client.get(AUTHORIZE_URL, {"client_id": web_client.client_id, "request_uri": request_uri})
    assert response.status_code == 302 and "/login" in response["Location"]
    next_url = query(response["Location"])["next"]
    assert "request_uri" in next_url and "redirect_uri" not in next_url


def test_expired_rows_are_purged(db, web_client):
    from oauth_server import par

    par.push(web_client, {"client_id": [web_client.client_id]})
    PushedAuthorizationRequest.objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert par.purge_expired() == 1
    assert Client.objects.filter(pk=web_client.pk).exists()


def test_anonymous_user_is_sent_to_sign_in_with_the_request_uri_only(client, web_client):
    request_uri = push(client, web_client).json()["request_uri"]
    response = client.get(AUTHORIZE_URL, {"client_id": web_client.client_id, "request_uri": request_uri})
    assert response.status_code == 302
    next_url = query(response["Location"])["next"]
    assert "request_uri" in next_url and "code_challenge" not in next_url and "redirect_uri" not in next_url
