"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): hints, redirects, the session."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.test import Client as BrowserClient
from django.test import override_settings
from django.utils import timezone
from freezegun import freeze_time
from jwcrypto import jwk, jws

from oauth_server import keys
from oauth_server.models import AccessToken, RefreshToken
from tests.factories import ClientFactory, UserFactory
from tests.helpers import exchange_code, get_code, query

LOGOUT_URL = "/oauth/logout/"
BYE = "https://client.example.com/bye"
NO_PROMPT = override_settings(OAUTH2_PROVIDER={"OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False})


@pytest.fixture
def rp(db):
    return ClientFactory(scopes=["openid", "profile"], post_logout_redirect_uris=BYE)


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def id_token_for(browser, client) -> str:
    code, verifier = get_code(browser, client, scope="openid")
    response = exchange_code(browser, client, code, verifier)
    assert response.status_code == 200, response.content
    return response.json()["id_token"]


def logout(browser, **params: str):
    return browser.get(LOGOUT_URL + "?" + urlencode(params))


def signed_in(browser) -> bool:
    return "_auth_user_id" in browser.session


def assert_error_page(response, status: int = 400) -> None:
    """A page for the user, never a redirect."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert "Location" not in response
    assert response["Content-Type"].startswith("text/html")
    assert b"invalid_request" in response.content or status == 405


def confirm(browser, page, *, allow: bool = True):
    """Post the confirmation form back the way a browser would (hidden fields and CSRF token)."""
    data = {name: value for name, value in page.context["form"].initial.items() if value}
    data["csrfmiddlewaretoken"] = str(page.context["csrf_token"])
    if allow:
        data["allow"] = "true"
    return browser.post(LOGOUT_URL, data)


def tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


# --- the confirmation page (DOT's default OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT) ---------------------
def test_logged_in_user_is_asked_then_signed_out_and_sent_back_with_state(logged_in, rp):
    hint = id_token_for(logged_in, rp)
    page = logout(logged_in, id_token_hint=hint, post_logout_redirect_uri=BYE, state="s-1")
    assert page.status_code == 200
    assert page["X-Frame-Options"] == "DENY"
    assert signed_in(logged_in)  # not before the user says so
    assert page.context["application"] == rp
    response = confirm(logged_in, page)
    assert response.status_code == 302
    assert response["Location"] == f"{BYE}?state=s-1"
    assert not signed_in(logged_in)


def test_cancel_keeps_the_session_and_does_not_redirect(logged_in, rp):
    hint = id_token_for(logged_in, rp)
    page = logout(logged_in, id_token_hint=hint, post_logout_redirect_uri=BYE)
    response = confirm(logged_in, page, allow=False)
    assert response.status_code == 200 and "Location" not in response
    assert b"logout_denied" in response.content
    assert signed_in(logged_in)
    assert AccessToken.objects.filter(application=rp).exists()


def test_confirmation_without_a_valid_csrf_token_is_only_a_new_request(logged_in, user, rp):
    hint = id_token_for(logged_in, rp)
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(user)
    page = logout(browser, id_token_hint=hint, post_logout_redirect_uri=BYE)
    data = {
        "id_token_hint": hint,
        "post_logout_redirect_uri": BYE,
        "allow": "true",
        "csrfmiddlewaretoken": "forged",
    }
    response = browser.post(LOGOUT_URL, data)
    assert response.status_code == 200 and "form" in response.context  # asked again
    assert signed_in(browser)
    # The real form, with its CSRF token, does sign out.
    response = confirm(browser, page)
    assert response.status_code == 302 and response["Location"] == BYE
    assert not signed_in(browser)


def test_rp_can_send_the_logout_request_as_a_form_post(logged_in, user, rp):
    """Spec section 2: POST with form serialization; the RP has no CSRF token of ours."""
    hint = id_token_for(logged_in, rp)
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(user)
    page = browser.post(LOGOUT_URL, {"id_token_hint": hint, "post_logout_redirect_uri": BYE, "state": "p"})
    assert page.status_code == 200 and signed_in(browser)
    response = confirm(browser, page)
    assert response["Location"] == f"{BYE}?state=p"
    assert not signed_in(browser)


def test_hint_for_another_user_is_asked_even_without_always_prompt(logged_in, rp):
    hint = id_token_for(logged_in, rp)
    logged_in.force_login(UserFactory())
    with NO_PROMPT:
        page = logout(logged_in, id_token_hint=hint, post_logout_redirect_uri=BYE)
    assert page.status_code == 200 and signed_in(logged_in)


def test_without_hint_the_user_is_asked_even_without_always_prompt(logged_in, rp):
    with NO_PROMPT:
        page = logout(logged_in, client_id=rp.client_id, post_logout_redirect_uri=BYE)
    assert page.status_code == 200 and signed_in(logged_in)
    response = confirm(logged_in, page)
    assert response["Location"] == BYE and not signed_in(logged_in)


# --- no confirmation needed --------------------------------------------------------------------------
@NO_PROMPT
def test_hint_of_the_signed_in_user_signs_out_at_once(logged_in, rp):
    hint = id_token_for(logged_in, rp)
    response = logout(logged_in, id_token_hint=hint, post_logout_redirect_uri=BYE, state="a b&c")
    assert response.status_code == 302
    assert response["Location"].startswith(BYE + "?")
    assert query(response["Location"]) == {"state": "a b&c"}
    assert not signed_in(logged_in)


def test_anonymous_user_is_sent_back_at_once(client, user, rp):
    client.force_login(user)
    hint = id_token_for(client, rp)
    client.logout()
    response = logout(client, id_token_hint=hint, post_logout_redirect_uri=BYE, state="x")
    assert response.status_code == 302 and response["Location"] == f"{BYE}?state=x"


def test_without_redirect_uri_goes_to_the_sites_logout_redirect(client, user, rp):
    client.force_login(user)
    hint = id_token_for(client, rp)
    client.logout()
    with override_settings(LOGOUT_REDIRECT_URL="/signed-out/"):
        response = logout(client, id_token_hint=hint, state="ignored")
    assert response.status_code == 302 and response["Location"] == "/signed-out/"


@NO_PROMPT
def test_expired_hint_is_accepted(logged_in, rp):
    hint = id_token_for(logged_in, rp)
    with freeze_time(timezone.now() + timedelta(days=2)):
        response = logout(logged_in, id_token_hint=hint, post_logout_redirect_uri=BYE)
    assert response.status_code == 302 and response["Location"] == BYE
    assert not signed_in(logged_in)


@override_settings(OAUTH2_PROVIDER={"OIDC_RP_INITIATED_LOGOUT_ACCEPT_EXPIRED_TOKENS": False})
def test_expired_hint_is_refused_when_the_site_says_so(client, user, rp):
    client.force_login(user)
    hint = id_token_for(client, rp)
    with freeze_time(timezone.now() + timedelta(days=2)):
        assert_error_page(logout(client, id_token_hint=hint, post_logout_redirect_uri=BYE))


# --- tokens -------------------------------------------------------------------------------------------
@NO_PROMPT
def test_logout_revokes_the_requesting_clients_tokens_only(logged_in, user, rp):
    other = ClientFactory(scopes=["openid"])
    id_token_for(logged_in, other)
    hint = id_token_for(logged_in, rp)
    assert logout(logged_in, id_token_hint=hint).status_code == 302
    assert not AccessToken.objects.filter(user=user, application=rp).exists()
    assert not RefreshToken.objects.filter(user=user, application=rp, revoked__isnull=True).exists()
    assert AccessToken.objects.filter(user=user, application=other).exists()
    assert RefreshToken.objects.filter(user=user, application=other, revoked__isnull=True).exists()


@override_settings(
    OAUTH2_PROVIDER={
        "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
        "OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS": False,
    }
)
def test_tokens_survive_when_the_site_turns_deletion_off(logged_in, user, rp):
    hint = id_token_for(logged_in, rp)
    assert logout(logged_in, id_token_hint=hint).status_code == 302
    assert not signed_in(logged_in)
    assert AccessToken.objects.filter(user=user, application=rp).exists()


# --- refused: an error page, never a redirect ------------------------------------------------------------
def test_unregistered_redirect_uri_is_refused(logged_in, rp):
    hint = id_token_for(logged_in, rp)
    for uri in (
        "https://evil.example.com/",
        BYE + "/",
        BYE + "?x=1",
        "//evil.example.com",
        "javascript:alert(1)",
    ):
        assert_error_page(logout(logged_in, id_token_hint=hint, post_logout_redirect_uri=uri))
    assert signed_in(logged_in)


def test_hint_for_one_client_and_uri_of_another_is_refused(logged_in, rp):
    other = ClientFactory(scopes=["openid"], post_logout_redirect_uris="https://other.example.com/bye")
    hint = id_token_for(logged_in, rp)
    response = logout(logged_in, id_token_hint=hint, post_logout_redirect_uri="https://other.example.com/bye")
    assert_error_page(response)
    assert signed_in(logged_in)
    assert other.post_logout_redirect_uri_allowed("https://other.example.com/bye")


def test_client_id_not_matching_the_hint_is_refused(logged_in, rp):
    other = ClientFactory(scopes=["openid"], post_logout_redirect_uris="https://other.example.com/bye")
    hint = id_token_for(logged_in, rp)
    response = logout(
        logged_in,
        id_token_hint=hint,
        client_id=other.client_id,
        post_logout_redirect_uri="https://other.example.com/bye",
    )
    assert_error_page(response)
    assert signed_in(logged_in)


def test_redirect_uri_without_client_is_refused(logged_in):
    assert_error_page(logout(logged_in, post_logout_redirect_uri=BYE))


@pytest.mark.parametrize("client_id", ["no-such-client", "nul\x00byte"])
def test_unknown_client_id_is_an_error_page_not_a_500(logged_in, client_id, db):
    assert_error_page(logout(logged_in, client_id=client_id, post_logout_redirect_uri=BYE))


def test_tampered_hint_is_refused(logged_in, rp):
    hint = id_token_for(logged_in, rp)
    assert_error_page(logout(logged_in, id_token_hint=tamper(hint), post_logout_redirect_uri=BYE))
    assert signed_in(logged_in)


def test_hint_signed_by_a_foreign_key_is_refused(logged_in, rp):
    hint = id_token_for(logged_in, rp)
    payload = json.loads(base64.urlsafe_b64decode(hint.split(".")[1] + "=="))
    foreign = jwk.JWK.generate(kty="EC", crv="P-256")
    token = jws.JWS(json.dumps(payload))
    token.add_signature(
        foreign, alg="ES256", protected={"alg": "ES256", "typ": "JWT", "kid": keys.active_key().kid}
    )
    assert_error_page(
        logout(logged_in, id_token_hint=token.serialize(compact=True), post_logout_redirect_uri=BYE)
    )


def test_hint_issued_by_someone_else_is_refused(logged_in, rp):
    hint = id_token_for(logged_in, rp)
    payload = json.loads(base64.urlsafe_b64decode(hint.split(".")[1] + "=="))
    payload["iss"] = "https://evil.example.com"
    assert_error_page(logout(logged_in, id_token_hint=keys.sign(payload), post_logout_redirect_uri=BYE))


def test_access_token_is_not_an_id_token_hint(logged_in, rp):
    code, verifier = get_code(logged_in, rp, scope="openid")
    access_token = exchange_code(logged_in, rp, code, verifier).json()["access_token"]
    assert_error_page(logout(logged_in, id_token_hint=access_token, post_logout_redirect_uri=BYE))


@pytest.mark.parametrize("hint", ["garbage", "a.b.c", "e30.e30.", "", "x" * 10_000])
def test_malformed_hint_is_refused(logged_in, rp, hint):
    response = logout(logged_in, id_token_hint=hint, client_id=rp.client_id, post_logout_redirect_uri=BYE)
    if hint:
        assert_error_page(response)
    else:  # an empty parameter is an absent one: client_id alone, so the user is asked
        assert response.status_code == 200 and "form" in response.context


def test_hint_of_a_disabled_client_is_refused(logged_in, rp):
    hint = id_token_for(logged_in, rp)
    rp.is_enabled = False
    rp.save()
    assert_error_page(logout(logged_in, id_token_hint=hint, post_logout_redirect_uri=BYE))


def test_repeated_parameters_are_refused(logged_in, rp):
    hint = id_token_for(logged_in, rp)
    url = (
        LOGOUT_URL
        + "?"
        + urlencode(
            [
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", BYE),
                ("post_logout_redirect_uri", "https://e.com"),
            ]
        )
    )
    assert_error_page(logged_in.get(url))
    assert signed_in(logged_in)


@pytest.mark.parametrize("method", ["put", "patch", "delete", "head"])
def test_other_methods_are_405(logged_in, method):
    response = getattr(logged_in, method)(LOGOUT_URL)
    assert response.status_code == 405
    assert "GET" in response["Allow"]
    assert signed_in(logged_in)


def test_options_does_not_fail(client, db):
    assert client.options(LOGOUT_URL).status_code == 200


def test_unreadable_post_body_is_an_error_page(logged_in, db):
    response = logged_in.post(LOGOUT_URL, b"--x\r\ngarbage", content_type="multipart/form-data; boundary=")
    assert_error_page(response)
    assert signed_in(logged_in)


def test_discovery_advertises_the_endpoint(client, db):
    assert (
        client.get("/oauth/.well-known/openid-configuration")
        .json()["end_session_endpoint"]
        .endswith(LOGOUT_URL)
    )
