"""Security headers on every URL the app serves (oauth_server.headers, wired in oauth_server.urls).

Every URL name of ``oauth_server.urls`` must be classified below; an endpoint added without a
class fails ``test_every_url_is_classified``, and each class's headers are checked on every answer
(success, error, wrong method, anonymous and signed-in) of every URL in it.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client as BrowserClient
from django.urls import reverse

from oauth_server import urls as oauth_urls
from oauth_server.models import Consent
from tests.factories import ConsentFactory, MachineClientFactory, pkce_pair
from tests.helpers import (
    AUTHORIZE_URL,
    TOKEN_URL,
    authorize_params,
    basic_auth,
    consent_form_data,
    exchange_code,
    get_authorize,
    get_code,
    login_url,
    query,
)

TOKEN = "token"  # token information: never cached
PAGE = "page"  # a page a user acts on: never framed, cached or leaking its URL
PUBLIC = "public"  # public, cacheable JSON documents readable by any origin

CLASSES = {
    "authorize": PAGE,
    "token": TOKEN,
    "revoke-token": TOKEN,
    "introspect": TOKEN,
    "pushed-authorization-request": TOKEN,
    "user-info": TOKEN,
    "rp-initiated-logout": PAGE,
    "connected-apps": PAGE,
    "connected-app-revoke": PAGE,
    "show-code": PAGE,
    "device-authorization": TOKEN,
    "device": PAGE,
    "device-confirm": PAGE,
    "oidc-connect-discovery-info": PUBLIC,
    "oauth-server-metadata": PUBLIC,
    "jwks-info": PUBLIC,
    # RFC 7591/7592: the answers carry credentials (client secret, registration access token).
    "register": TOKEN,
    "register-client": TOKEN,
}


def assert_token_headers(response) -> None:
    directives = [d.strip() for d in response["Cache-Control"].split(",")]
    assert "no-store" in directives, response["Cache-Control"]
    assert response["Pragma"] == "no-cache"


def assert_page_headers(response) -> None:
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["Referrer-Policy"] in ("same-origin", "no-referrer")
    assert "no-store" in response["Cache-Control"]


def assert_public_headers(response) -> None:
    if response.status_code == 200 and response.request["REQUEST_METHOD"] == "GET":
        assert response["Access-Control-Allow-Origin"] == "*"
        assert response["Cache-Control"].startswith("public, max-age=")
    assert "Access-Control-Allow-Credentials" not in response


ASSERTIONS = {TOKEN: assert_token_headers, PAGE: assert_page_headers, PUBLIC: assert_public_headers}


def test_every_url_is_classified():
    names = {pattern.name for pattern in oauth_urls.urlpatterns}
    assert names == set(CLASSES), f"classify these URLs in CLASSES: {sorted(names - set(CLASSES))}"


@pytest.fixture
def world(db, user, web_client):
    """Signed-in and anonymous browsers, a live access token and an ID token for ``web_client``."""
    web_client.allowed_scopes.add(*_scopes("openid"))
    signed_in = BrowserClient()
    signed_in.force_login(user)
    code, verifier = get_code(signed_in, web_client, scope="openid files:read")
    tokens = exchange_code(signed_in, web_client, code, verifier).json()
    return {
        "signed_in": signed_in,
        "anonymous": BrowserClient(),
        "client": web_client,
        "machine": MachineClientFactory(scopes=["reports:read"]),
        "tokens": tokens,
    }


def _scopes(*names):
    from tests.factories import ScopeFactory

    return [ScopeFactory(name=name) for name in names]


def url_for(name: str, world) -> str:
    kwargs = (
        {"client_id": world["client"].client_id}
        if name in ("connected-app-revoke", "register-client")
        else {}
    )
    return reverse(f"oauth2_provider:{name}", kwargs=kwargs)


def answers(name: str, world) -> list:
    """Every URL's generic answers: each method, anonymous and signed in, without parameters."""
    url = url_for(name, world)
    responses = []
    for browser in (world["anonymous"], world["signed_in"]):
        responses += [browser.get(url), browser.post(url), browser.options(url), browser.put(url)]
    return responses + SPECIFIC.get(name, lambda world: [])(world)


def _authorize(world) -> list:
    browser, client = world["signed_in"], world["client"]
    verifier, challenge = pkce_pair()
    params = authorize_params(client, challenge=challenge, scope="files:write")
    page = get_authorize(browser, params)
    assert page.status_code == 200
    denied = browser.post(AUTHORIZE_URL, consent_form_data(page))
    bad_client = get_authorize(browser, {**params, "client_id": "nope"})
    return [page, denied, bad_client, get_authorize(world["anonymous"], params)]


def _token(world) -> list:
    machine = world["machine"]
    auth = {"HTTP_AUTHORIZATION": basic_auth(machine.client_id, machine.raw_secret)}
    return [
        world["anonymous"].post(TOKEN_URL, {"grant_type": "client_credentials"}, **auth),
        world["anonymous"].post(TOKEN_URL, {"grant_type": "password"}, **auth),
        world["anonymous"].post(TOKEN_URL, {"grant_type": "client_credentials"}),
    ]


def _introspect(world) -> list:
    client = world["client"]
    auth = {"HTTP_AUTHORIZATION": basic_auth(client.client_id, client.raw_secret)}
    url = reverse("oauth2_provider:introspect")
    return [world["anonymous"].post(url, {"token": world["tokens"]["access_token"]}, **auth)]


def _revoke(world) -> list:
    client = world["client"]
    auth = {"HTTP_AUTHORIZATION": basic_auth(client.client_id, client.raw_secret)}
    url = reverse("oauth2_provider:revoke-token")
    return [world["anonymous"].post(url, {"token": world["tokens"]["refresh_token"]}, **auth)]


def _userinfo(world) -> list:
    url = reverse("oauth2_provider:user-info")
    good = {"HTTP_AUTHORIZATION": f"Bearer {world['tokens']['access_token']}"}
    return [world["anonymous"].get(url, **good), world["anonymous"].get(url, HTTP_AUTHORIZATION="Bearer bad")]


def _logout(world) -> list:
    url = reverse("oauth2_provider:rp-initiated-logout")
    hint = world["tokens"]["id_token"]
    return [
        world["signed_in"].get(url + "?" + urlencode({"id_token_hint": hint})),
        world["signed_in"].get(url + "?" + urlencode({"id_token_hint": "garbage"})),
    ]


def _connected_apps(world) -> list:
    return [world["signed_in"].get(reverse("oauth2_provider:connected-apps"))]


def _connected_app_revoke(world) -> list:
    ConsentFactory(user=Consent.objects.first().user, client=world["machine"])
    url = reverse("oauth2_provider:connected-app-revoke", kwargs={"client_id": world["machine"].client_id})
    return [world["signed_in"].post(url)]


SPECIFIC = {
    "authorize": _authorize,
    "token": _token,
    "introspect": _introspect,
    "revoke-token": _revoke,
    "user-info": _userinfo,
    "rp-initiated-logout": _logout,
    "connected-apps": _connected_apps,
    "connected-app-revoke": _connected_app_revoke,
}


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_headers_on_every_answer(name, world):
    responses = answers(name, world)
    statuses = {response.status_code for response in responses}
    assert len(statuses) > 1 or name.startswith(("oidc", "oauth-server", "jwks")), statuses
    for response in responses:
        try:
            ASSERTIONS[CLASSES[name]](response)
        except (AssertionError, KeyError) as error:
            request = response.request
            answer = f"{request['REQUEST_METHOD']} {request['PATH_INFO']} -> {response.status_code}"
            raise AssertionError(f"{name}: {answer}: {error!r}") from error


def test_login_page_is_not_frameable(db):
    response = BrowserClient().get(login_url())
    assert response.status_code == 200
    assert_page_headers(response)


def test_authorization_responses_carry_no_referrer(world):
    """RFC 9700 4.2.4: the redirect carrying the code (or the error) leaks nothing onward."""
    browser, client = world["signed_in"], world["client"]
    verifier, challenge = pkce_pair()
    params = authorize_params(client, challenge=challenge, scope="files:write")
    page = get_authorize(browser, params)
    assert page.status_code == 200
    denied = browser.post(AUTHORIZE_URL, consent_form_data(page))
    assert denied.status_code == 302 and query(denied["Location"])["error"] == "access_denied"
    assert denied["Referrer-Policy"] == "no-referrer"
    page = get_authorize(browser, params)
    allowed = browser.post(AUTHORIZE_URL, {**consent_form_data(page), "allow": "true"})
    assert allowed.status_code == 302 and "code" in query(allowed["Location"])
    assert allowed["Referrer-Policy"] == "no-referrer"
    # The pages themselves keep same-origin (a no-referrer page's form POST fails Django's CSRF check).
    assert page["Referrer-Policy"] == "same-origin"


def test_a_view_forgetting_its_headers_still_gets_them(rf):
    """The decorators, not the views, guarantee the headers."""
    from django.http import HttpResponse

    from oauth_server.headers import page_headers, token_headers

    bare = page_headers(lambda request: HttpResponse("x"))(rf.get("/"))
    assert_page_headers(bare)
    assert bare["Referrer-Policy"] == "same-origin"
    csp = HttpResponse("x")
    csp["Content-Security-Policy"] = "default-src 'self'"
    merged = page_headers(lambda request: csp)(rf.get("/"))
    assert merged["Content-Security-Policy"] == "default-src 'self'; frame-ancestors 'none'"
    cached = HttpResponse("{}")
    cached["Cache-Control"] = "max-age=60"
    assert_token_headers(token_headers(lambda request: cached)(rf.get("/")))
