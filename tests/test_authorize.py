"""The authorization endpoint: validation, error pages vs redirects, PKCE, scopes, headers (RFC 6749 4.1,
RFC 7636, RFC 9207, RFC 9700)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import Client as BrowserClient
from django.test import override_settings

from oauth_server.models import Grant
from tests.factories import ClientFactory, PublicClientFactory, ScopeFactory, pkce_pair
from tests.helpers import AUTHORIZE_URL, approve, authorize_params, consent_form_data, get_authorize, query

ISSUER = "http://testserver/oauth"


def _challenge() -> str:
    return pkce_pair()[1]


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def assert_error_page(response, error: str, description: str = "") -> None:
    """A fatal error is shown to the user, never redirected to an unverified URI."""
    assert response.status_code == 400
    assert "Location" not in response
    assert response.context["error"] == error
    assert description in response.context["description"]


def assert_error_redirect(response, client, error: str) -> dict[str, str]:
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(client.redirect_uri_list[0] + "?")
    params = query(location)
    assert params["error"] == error, params
    assert params["state"] == "xyz-state"
    assert params["iss"] == ISSUER
    return params


# --- anonymous users -----------------------------------------------------------------------------
def test_anonymous_user_is_sent_to_login_with_the_request_preserved(client, web_client):
    params = authorize_params(web_client, challenge=_challenge(), scope="files:read")
    response = get_authorize(client, params)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/accounts/login/"
    assert "next=" in location.query and "client_id" in query(response["Location"])["next"]


def test_anonymous_user_with_unknown_client_gets_error_page_not_login(client, db):
    params = {"response_type": "code", "client_id": "nope", "redirect_uri": "https://evil.example/cb"}
    assert_error_page(get_authorize(client, params), "invalid_request", "client_id")


def test_anonymous_prompt_none_redirects_login_required(client, web_client):
    params = authorize_params(web_client, challenge=_challenge(), prompt="none")
    assert_error_redirect(get_authorize(client, params), web_client, "login_required")


def test_anonymous_prompt_none_with_unregistered_redirect_is_not_an_open_redirect(client, web_client):
    params = authorize_params(
        web_client, challenge=_challenge(), prompt="none", redirect_uri="https://evil.example/"
    )
    response = get_authorize(client, params)
    assert response.status_code == 400
    assert "evil.example" not in response.get("Location", "")


# --- fatal errors: shown as a page ---------------------------------------------------------------
def test_unknown_client_gets_error_page(logged_in, db):
    params = {
        "response_type": "code",
        "client_id": "unknown",
        "redirect_uri": "https://client.example.com/callback",
    }
    assert_error_page(get_authorize(logged_in, params), "invalid_request", "client_id")


def test_missing_client_id_gets_error_page(logged_in, db):
    assert_error_page(get_authorize(logged_in, {"response_type": "code"}), "invalid_request", "client_id")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "https://client.example.com/callback/",  # trailing slash: not an exact match
        "https://client.example.com/callback?x=1",
        "https://client.example.com/callback#frag",
        "https://CLIENT.example.com/callback",
        "http://client.example.com/callback",
    ],
)
def test_redirect_uri_must_match_exactly(logged_in, web_client, redirect_uri):
    params = authorize_params(web_client, challenge=_challenge(), redirect_uri=redirect_uri)
    response = get_authorize(logged_in, params)
    assert_error_page(response, "invalid_request", "redirect URI")


def test_disabled_client_gets_error_page(logged_in, web_client):
    web_client.is_enabled = False
    web_client.save()
    response = get_authorize(logged_in, authorize_params(web_client, challenge=_challenge()))
    assert response.status_code in (400, 401)
    assert "Location" not in response


def test_missing_redirect_uri_uses_the_single_registered_one(logged_in, web_client):
    params = authorize_params(web_client, challenge=_challenge(), scope="files:read")
    del params["redirect_uri"]
    response = get_authorize(logged_in, params)
    assert response.status_code == 200
    assert response.context["form"].initial["redirect_uri"] == web_client.redirect_uri_list[0]


def test_missing_redirect_uri_with_several_registered_is_an_error_page(logged_in, db):
    multi = ClientFactory(redirect_uris="https://a.example/cb https://b.example/cb", scopes=["files:read"])
    params = authorize_params(multi, challenge=_challenge())
    del params["redirect_uri"]
    response = get_authorize(logged_in, params)
    assert response.status_code == 400
    assert "Location" not in response


def test_duplicate_client_id_parameter_is_an_error_page(logged_in, web_client):
    url = AUTHORIZE_URL + f"?response_type=code&client_id={web_client.client_id}&client_id=other"
    response = logged_in.get(url)
    assert response.status_code == 400
    assert "Location" not in response


# --- errors redirected to the (verified) client ---------------------------------------------------
@pytest.mark.parametrize("response_type", ["token", "id_token", "code token", "password", "nonsense"])
def test_unsupported_response_types_are_refused(logged_in, web_client, response_type):
    params = authorize_params(web_client, challenge=_challenge(), response_type=response_type)
    assert_error_redirect(get_authorize(logged_in, params), web_client, "unsupported_response_type")


def test_missing_response_type_is_refused(logged_in, web_client):
    params = authorize_params(web_client, challenge=_challenge())
    del params["response_type"]
    response = get_authorize(logged_in, params)
    params_back = assert_error_redirect(response, web_client, response.url and query(response.url)["error"])
    assert params_back["error"] in {"invalid_request", "unsupported_response_type"}


def test_pkce_is_required_for_confidential_clients_by_default(logged_in, web_client):
    params = authorize_params(web_client)
    params_back = assert_error_redirect(get_authorize(logged_in, params), web_client, "invalid_request")
    assert "code challenge" in params_back["error_description"].lower()


@override_settings(OAUTH_SERVER={"REQUIRE_PKCE": False})
def test_pkce_can_be_relaxed_for_confidential_clients(logged_in, web_client):
    response = get_authorize(logged_in, authorize_params(web_client, scope="files:read"))
    assert response.status_code == 200


@override_settings(OAUTH_SERVER={"REQUIRE_PKCE": False})
def test_pkce_stays_required_for_public_clients(logged_in, public_client):
    params = authorize_params(public_client)
    assert_error_redirect(get_authorize(logged_in, params), public_client, "invalid_request")


def test_plain_pkce_is_refused(logged_in, web_client):
    params = authorize_params(web_client, code_challenge="a" * 43, code_challenge_method="plain")
    assert_error_redirect(get_authorize(logged_in, params), web_client, "invalid_request")


def test_challenge_without_method_means_plain_and_is_refused(logged_in, web_client):
    params = authorize_params(web_client, code_challenge="a" * 43)
    assert_error_redirect(get_authorize(logged_in, params), web_client, "invalid_request")


def test_scope_outside_the_clients_allowed_set_is_invalid_scope(logged_in, web_client):
    ScopeFactory(name="admin:all")  # exists, but not allowed for this client
    params = authorize_params(web_client, challenge=_challenge(), scope="files:read admin:all")
    assert_error_redirect(get_authorize(logged_in, params), web_client, "invalid_scope")


def test_unknown_scope_is_invalid_scope(logged_in, web_client):
    params = authorize_params(web_client, challenge=_challenge(), scope="does-not-exist")
    assert_error_redirect(get_authorize(logged_in, params), web_client, "invalid_scope")


def test_no_scope_means_the_clients_default_scopes(logged_in, db):
    default = ScopeFactory(name="files:list", is_default=True)
    other = ScopeFactory(name="files:delete")
    ScopeFactory(name="global:default", is_default=True)  # default, but not allowed for the client
    c = ClientFactory(scopes=[default, other])
    response = get_authorize(logged_in, authorize_params(c, challenge=_challenge()))
    assert response.status_code == 200
    assert response.context["scopes"] == ["files:list"]


def test_grant_type_not_held_by_client_is_unauthorized(logged_in, db):
    machine = ClientFactory(grant_types=["client_credentials"], redirect_uris="https://m.example/cb")
    response = get_authorize(logged_in, authorize_params(machine, challenge=_challenge()))
    assert_error_redirect(response, machine, "unauthorized_client")


def test_state_is_echoed_and_iss_added_on_success(logged_in, web_client):
    params = authorize_params(web_client, challenge=_challenge(), scope="files:read", state="s t&ate=1")
    response = approve(logged_in, params)
    assert response.status_code == 302
    back = query(response["Location"])
    assert back["state"] == "s t&ate=1"
    assert back["iss"] == ISSUER
    assert back["code"]
    # The response carrying the code leaks nothing onward through Referer (RFC 9700 4.2.4).
    assert response["Referrer-Policy"] == "no-referrer"


def test_error_redirects_carry_no_referrer_too(logged_in, web_client):
    params = authorize_params(web_client, challenge=_challenge(), scope="files:read")
    response = approve(logged_in, params, allow=False)
    assert query(response["Location"])["error"] == "access_denied"
    assert response["Referrer-Policy"] == "no-referrer"


# --- the consent page ----------------------------------------------------------------------------
def test_consent_page_lists_requested_scopes_and_creates_nothing(logged_in, web_client):
    params = authorize_params(web_client, challenge=_challenge(), scope="files:read files:write")
    response = get_authorize(logged_in, params)
    assert response.status_code == 200
    assert response.context["client"] == web_client
    assert [name for name, _ in response.context["new_scopes"]] == ["files:read", "files:write"]
    assert not Grant.objects.exists()  # nothing approved by a GET


def test_consent_page_headers(logged_in, web_client):
    response = get_authorize(
        logged_in, authorize_params(web_client, challenge=_challenge(), scope="files:read")
    )
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["Referrer-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]


def test_allow_issues_a_single_use_code_bound_to_pkce(logged_in, web_client, user):
    verifier, challenge = pkce_pair()
    params = authorize_params(web_client, challenge=challenge, scope="files:read")
    response = approve(logged_in, params)
    code = query(response["Location"])["code"]
    grant = Grant.objects.get()
    assert grant.user == user and grant.application == web_client
    assert grant.code_challenge == challenge and grant.code_challenge_method == "S256"
    assert grant.code != code or len(code) > 20  # opaque, unguessable


def test_deny_redirects_access_denied_and_issues_nothing(logged_in, web_client):
    params = authorize_params(web_client, challenge=_challenge(), scope="files:read")
    response = approve(logged_in, params, allow=False)
    back = assert_error_redirect(response, web_client, "access_denied")
    assert "code" not in back
    assert not Grant.objects.exists()


def test_consent_post_requires_csrf(user, web_client):
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(user)
    page = get_authorize(browser, authorize_params(web_client, challenge=_challenge(), scope="files:read"))
    data = consent_form_data(page)
    data["allow"] = "true"
    response = browser.post(AUTHORIZE_URL, data)
    assert response.status_code == 403
    assert not Grant.objects.exists()


def test_consent_post_with_the_csrf_token_works(user, web_client):
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(user)
    page = get_authorize(browser, authorize_params(web_client, challenge=_challenge(), scope="files:read"))
    data = consent_form_data(page)
    data.update(allow="true", csrfmiddlewaretoken=browser.cookies["csrftoken"].value)
    response = browser.post(AUTHORIZE_URL, data)
    assert response.status_code == 302 and "code" in query(response["Location"])


def test_tampered_redirect_uri_in_consent_post_is_not_followed(logged_in, web_client):
    page = get_authorize(logged_in, authorize_params(web_client, challenge=_challenge(), scope="files:read"))
    data = consent_form_data(page)
    data.update(allow="true", redirect_uri="https://evil.example/steal")
    response = logged_in.post(AUTHORIZE_URL, data)
    assert "evil.example" not in response.get("Location", "")
    assert not Grant.objects.exists()


def test_tampered_scope_in_consent_post_cannot_escalate(logged_in, web_client):
    ScopeFactory(name="admin:all")
    page = get_authorize(logged_in, authorize_params(web_client, challenge=_challenge(), scope="files:read"))
    data = consent_form_data(page)
    data.update(allow="true", scope="files:read admin:all")
    response = logged_in.post(AUTHORIZE_URL, data)
    assert "code" not in query(response.get("Location", "http://x/?"))
    assert not Grant.objects.exists()


@pytest.mark.parametrize("field", ["client_id", "redirect_uri", "response_type"])
def test_incomplete_consent_post_is_a_400_page(logged_in, web_client, field):
    page = get_authorize(logged_in, authorize_params(web_client, challenge=_challenge(), scope="files:read"))
    data = consent_form_data(page)
    data["allow"] = "true"
    data.pop(field)
    response = logged_in.post(AUTHORIZE_URL, data)
    assert response.status_code == 400
    assert "Location" not in response
    assert not Grant.objects.exists()


def test_consent_post_for_unknown_client_is_a_400_page(logged_in, web_client):
    page = get_authorize(logged_in, authorize_params(web_client, challenge=_challenge(), scope="files:read"))
    data = consent_form_data(page)
    data.update(allow="true", client_id="forged")
    response = logged_in.post(AUTHORIZE_URL, data)
    assert response.status_code == 400
    assert not Grant.objects.exists()


def test_public_client_code_flow(logged_in, public_client):
    params = authorize_params(public_client, challenge=_challenge(), scope="files:read")
    response = approve(logged_in, params)
    assert "code" in query(response["Location"])


def test_inactive_user_session_cannot_authorize(client, web_client):
    from tests.factories import UserFactory

    user = UserFactory(is_active=False)
    client.force_login(user)
    response = get_authorize(client, authorize_params(web_client, challenge=_challenge(), scope="files:read"))
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == "/accounts/login/"


def test_head_and_other_methods_do_not_500(logged_in, web_client):
    params = authorize_params(web_client, challenge=_challenge(), scope="files:read")
    assert logged_in.put(AUTHORIZE_URL, params).status_code == 405
    assert logged_in.delete(AUTHORIZE_URL).status_code == 405


def test_public_client_factory_has_no_secret(db):
    assert PublicClientFactory().client_secret == ""
