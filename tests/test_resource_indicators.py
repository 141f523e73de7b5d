"""RFC 8707 resource indicators at the authorization endpoint: the code is bound to the resources
the user approved, and only resources the client lists in ``audiences`` may be requested."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from oauth_server.models import Grant
from oauth_server.tokens import token_checksum
from tests.factories import ClientFactory, ConsentFactory, pkce_pair
from tests.helpers import (
    AUTHORIZE_URL,
    authorize_params,
    consent_form_data,
    exchange_code,
    get_authorize,
    query,
)

API = "https://api.example.com/"
OTHER_API = "https://other.example.com/"


@pytest.fixture
def api_client(db):
    return ClientFactory(scopes=["openid", "files:read"], audiences=[API, OTHER_API])


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


def _access_token_aud(browser, token: str):
    key_set = KeySet.import_key_set(browser.get("/oauth/.well-known/jwks.json").json())
    return jwt.decode(token, key_set).claims["aud"]


def _approve(browser, params):
    page = get_authorize(browser, params)
    assert page.status_code == 200, page
    data = consent_form_data(page)
    data["allow"] = "true"
    return page, browser.post(AUTHORIZE_URL, data)


def test_resource_on_the_consent_page_binds_the_code_and_becomes_the_aud(browser, api_client):
    verifier, challenge = pkce_pair()
    params = authorize_params(api_client, challenge=challenge, scope="files:read", resource=API)
    page, response = _approve(browser, params)
    assert page.context["form"].initial["resource"] == API
    code = query(response["Location"])["code"]
    assert Grant.objects.get(code=token_checksum(code)).resource == [API]

    body = exchange_code(browser, api_client, code, verifier).json()
    assert _access_token_aud(browser, body["access_token"]) == API


def test_remembered_consent_path_binds_the_code_too(browser, api_client, user):
    ConsentFactory(user=user, client=api_client, scope="files:read")
    params = authorize_params(api_client, challenge=pkce_pair()[1], scope="files:read", resource=API)
    response = get_authorize(browser, params)
    assert response.status_code == 302
    assert Grant.objects.get(code=token_checksum(query(response["Location"])["code"])).resource == [API]


def test_several_resources_are_all_bound(browser, api_client, user):
    ConsentFactory(user=user, client=api_client, scope="files:read")
    params = authorize_params(api_client, challenge=pkce_pair()[1], scope="files:read")
    url = (
        AUTHORIZE_URL
        + "?"
        + "&".join([f"{k}={v}" for k, v in params.items()] + [f"resource={API}", f"resource={OTHER_API}"])
    )
    response = browser.get(url)
    code = token_checksum(query(response["Location"])["code"])
    assert Grant.objects.get(code=code).resource == [API, OTHER_API]


@pytest.mark.parametrize(
    "resource",
    ["https://evil.example.com/", "https://api.example.com/#frag", "not a uri", "https://api.example.com"],
)
def test_resource_the_client_may_not_use_is_invalid_target_redirect(browser, api_client, resource):
    params = authorize_params(api_client, challenge=pkce_pair()[1], scope="files:read", resource=resource)
    response = get_authorize(browser, params)
    assert response.status_code == 302
    back = query(response["Location"])
    assert response["Location"].startswith(api_client.redirect_uri_list[0])
    assert back["error"] == "invalid_target"
    assert back["state"] == "xyz-state"
    assert not Grant.objects.exists()


def test_tampered_resource_in_the_consent_post_is_refused(browser, api_client):
    params = authorize_params(api_client, challenge=pkce_pair()[1], scope="files:read", resource=API)
    page = get_authorize(browser, params)
    data = consent_form_data(page)
    data.update(allow="true", resource="https://evil.example.com/")
    response = browser.post(AUTHORIZE_URL, data)
    assert response.status_code == 400
    assert not Grant.objects.exists()


def test_token_request_may_narrow_but_not_widen_the_bound_resources(browser, api_client, user):
    ConsentFactory(user=user, client=api_client, scope="files:read")
    verifier, challenge = pkce_pair()
    params = authorize_params(api_client, challenge=challenge, scope="files:read", resource=API)
    code = query(get_authorize(browser, params)["Location"])["code"]
    widened = exchange_code(browser, api_client, code, verifier, resource=OTHER_API)
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_target"
    narrowed = exchange_code(browser, api_client, code, verifier, resource=API)
    assert narrowed.status_code == 200
    assert _access_token_aud(browser, narrowed.json()["access_token"]) == API


def test_the_code_exchange_inherits_the_bound_resources_and_refuses_a_malformed_stored_one(
    browser, api_client, user
):
    """Without ``resource`` the token inherits the code's; a stored value that is no absolute URI
    (a row from before the authorization endpoint validated them) is refused, not issued."""
    ConsentFactory(user=user, client=api_client, scope="files:read")
    verifier, challenge = pkce_pair()
    params = authorize_params(api_client, challenge=challenge, scope="files:read", resource=OTHER_API)
    code = query(get_authorize(browser, params)["Location"])["code"]
    inherited = exchange_code(browser, api_client, code, verifier)
    assert inherited.status_code == 200
    assert _access_token_aud(browser, inherited.json()["access_token"]) == OTHER_API

    verifier, challenge = pkce_pair()
    params = authorize_params(api_client, challenge=challenge, scope="files:read", resource=API)
    code = query(get_authorize(browser, params)["Location"])["code"]
    Grant.objects.filter(code=token_checksum(code)).update(resource=["not-a-uri"])
    refused = exchange_code(browser, api_client, code, verifier)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_target"
