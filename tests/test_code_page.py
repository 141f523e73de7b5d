"""The code page (oauth_server.views.code): a redirect URI that shows a developer the code just issued.

It must show a genuine code to the user who approved it, for a confidential client that registered
the page, and nothing to anyone else; it must never echo what the query string says.
"""

from __future__ import annotations

import shlex
from datetime import timedelta

import pytest
from django.test import Client as BrowserClient
from django.utils import timezone

from oauth_server.models import Grant
from oauth_server.tokens import token_checksum
from tests.factories import ClientFactory, PublicClientFactory, UserFactory
from tests.helpers import exchange_code, get_code

CODE_PAGE = "http://testserver/oauth/code/"
OTHER_CALLBACK = "https://client.example.com/callback"


@pytest.fixture
def dev_client(db):
    return ClientFactory(redirect_uris=CODE_PAGE, scopes=["files:read"])


@pytest.fixture
def browser(user):
    browser = BrowserClient()
    browser.force_login(user)
    return browser


def show(browser: BrowserClient, **params):
    return browser.get("/oauth/code/", params)


def test_shows_the_code_and_a_command_that_exchanges_it(browser, dev_client):
    code, verifier = get_code(browser, dev_client, scope="files:read")
    page = show(browser, code=code, state="xyz-state", iss="http://testserver/oauth")
    assert page.status_code == 200
    assert page.context["outcome"] == "code"
    assert code in page.content.decode()
    assert 0 < page.context["seconds"] <= 60
    words = shlex.split(page.context["curl"].replace("\\\n", " "))
    assert words[:3] == ["curl", "-s", "-u"]
    assert words[3] == f"{dev_client.client_id}:$CLIENT_SECRET"
    assert f"code={code}" in words
    assert f"redirect_uri={CODE_PAGE}" in words
    assert words[-1] == "http://testserver/oauth/token/"
    # The page's URL carries the code: it leaks to no one, and is never cached or framed.
    assert page["Referrer-Policy"] == "no-referrer"
    assert "no-store" in page["Cache-Control"]
    assert page["X-Frame-Options"] == "DENY"
    # ...and what it shows is what the token endpoint takes.
    tokens = exchange_code(browser, dev_client, code, verifier)
    assert tokens.status_code == 200, tokens.content
    assert tokens.json()["access_token"]


def test_an_exchanged_code_is_not_shown_again(browser, dev_client):
    code, verifier = get_code(browser, dev_client, scope="files:read")
    assert exchange_code(browser, dev_client, code, verifier).status_code == 200
    page = show(browser, code=code)
    assert page.status_code == 400
    assert page.context["outcome"] == "used"
    assert code not in page.content.decode()


def test_an_expired_code_is_not_shown(browser, dev_client):
    code, _ = get_code(browser, dev_client, scope="files:read")
    Grant.objects.filter(code=token_checksum(code)).update(expires=timezone.now() - timedelta(seconds=1))
    page = show(browser, code=code)
    assert page.context["outcome"] == "used"
    assert code not in page.content.decode()


def test_only_the_user_who_approved_sees_the_code(browser, dev_client):
    code, _ = get_code(browser, dev_client, scope="files:read")
    someone_else = BrowserClient()
    someone_else.force_login(UserFactory())
    for other in (someone_else, BrowserClient()):
        page = show(other, code=code)
        assert page.status_code == 400
        assert page.context["outcome"] == "none"
        assert code not in page.content.decode()


def test_never_for_a_public_client(browser, db):
    """A public client's code needs no secret: showing it is the out-of-band phishing risk."""
    spa = PublicClientFactory(redirect_uris=CODE_PAGE, scopes=["files:read"])
    code, _ = get_code(browser, spa, scope="files:read")
    page = show(browser, code=code)
    assert page.context["outcome"] == "none"
    assert code not in page.content.decode()


def test_only_codes_issued_for_this_page(browser, db):
    """A code a client received at its real callback cannot be displayed here."""
    client = ClientFactory(redirect_uris=f"{OTHER_CALLBACK} {CODE_PAGE}", scopes=["files:read"])
    code, _ = get_code(browser, client, scope="files:read", redirect_uri=OTHER_CALLBACK)
    page = show(browser, code=code)
    assert page.context["outcome"] == "none"
    assert code not in page.content.decode()


@pytest.mark.parametrize("change", ["unregister", "disable"])
def test_not_once_the_client_drops_the_page_or_is_disabled(browser, dev_client, change):
    code, _ = get_code(browser, dev_client, scope="files:read")
    if change == "unregister":
        dev_client.redirect_uris = OTHER_CALLBACK
    else:
        dev_client.is_enabled = False
    dev_client.save()
    page = show(browser, code=code)
    assert page.context["outcome"] == "none"
    assert code not in page.content.decode()


@pytest.mark.parametrize(
    "params",
    [
        {"code": "<script>alert(1)</script>"},
        {"code": "Call +1 555 0100 to unlock your account"},
        {"code": "x" * 5000},
        {"code": "\x00"},
        {},
    ],
)
def test_a_made_up_code_is_not_echoed(browser, db, params):
    page = show(browser, **params)
    assert page.status_code == 400
    assert page.context["outcome"] == "none"
    body = page.content.decode()
    assert "script>alert" not in body and "555 0100" not in body and "xxxxxxxxxx" not in body


def test_a_standard_error_is_named_anything_else_is_not(browser, db):
    denied = show(browser, error="access_denied", error_description="The user said no", state="s")
    assert denied.status_code == 400
    assert denied.context["outcome"] == "error"
    assert "access_denied" in denied.content.decode()
    assert "The user said no" not in denied.content.decode()
    made_up = show(browser, error="Your account is locked, call +1 555 0100")
    assert made_up.context["error"] == ""
    assert "555 0100" not in made_up.content.decode()


def test_get_only(browser, db):
    assert browser.post("/oauth/code/", {"code": "x"}).status_code == 405
