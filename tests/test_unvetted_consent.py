"""The consent and Connected apps pages for clients nobody vetted (self-registered: DCR or a client
ID metadata document): where the client comes from, its name as a claim, no remote logo, https
links only, and a clear warning. Operators' clients keep the ordinary page."""

from __future__ import annotations

import pytest

from tests.factories import AccessTokenFactory, ClientFactory, ConsentFactory, PublicClientFactory, pkce_pair
from tests.helpers import approve, authorize_params, get_authorize

LINKS = {
    "logo_uri": "https://cdn.evil.example/logo.png",
    "client_uri": "https://agent.example/",
    "policy_uri": "http://agent.example/privacy",
    "tos_uri": "https://agent.example/terms",
}


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


def consent_page(browser, app):
    _verifier, challenge = pkce_pair()
    response = get_authorize(browser, authorize_params(app, challenge=challenge, scope="files:read"))
    assert response.status_code == 200
    return response


def test_dcr_client_page_says_registered_automatically_and_warns(browser, db):
    app = PublicClientFactory(
        name="Google Drive <script>alert(1)</script>",
        registration_source="dcr",
        scopes=["files:read"],
        **LINKS,
    )
    response = consent_page(browser, app)
    html = response.content.decode()
    assert response.context["client_origin"].source == "dcr"
    assert "Registered automatically" in html
    assert "Nobody has reviewed this app" in html
    assert 'aria-labelledby="unvetted-title"' in html
    assert "An app calling itself" in html
    assert "<script>alert(1)</script>" not in html
    assert "Google Drive &lt;script&gt;alert(1)&lt;/script&gt;" in html
    # No remote image of the registrant's choosing; https links only.
    assert "cdn.evil.example" not in html
    assert 'class="oas-logo oas-avatar"' in html
    assert 'href="https://agent.example/terms"' in html
    assert 'href="https://agent.example/"' in html
    assert "http://agent.example/privacy" not in html


def test_cimd_client_page_names_the_documents_host(browser, db):
    app = PublicClientFactory(
        client_id="https://tools.agent.example/oauth/client.json",
        name="Agent",
        registration_source="cimd",
        scopes=["files:read"],
    )
    html = consent_page(browser, app).content.decode()
    assert "Described by <strong>tools.agent.example</strong>" in html
    assert "Nobody has reviewed this app" in html
    assert "Registered automatically" not in html


def test_a_look_alike_unicode_host_is_shown_in_punycode(browser, db):
    app = PublicClientFactory(
        client_id="https://gооgle.example/client.json",  # Cyrillic "о"s
        name="Agent",
        registration_source="cimd",
        scopes=["files:read"],
    )
    html = consent_page(browser, app).content.decode()
    assert "Described by <strong>xn--ggle-55da.example</strong>" in html
    assert "Described by <strong>gоо" not in html


def test_an_operators_client_gets_the_ordinary_page(browser, db):
    app = ClientFactory(name="Acme", scopes=["files:read"], **LINKS)
    response = consent_page(browser, app)
    html = response.content.decode()
    assert response.context["client_origin"] is None
    assert "Nobody has reviewed this app" not in html
    assert "Registered automatically" not in html
    assert "An app calling itself" not in html
    assert 'src="https://cdn.evil.example/logo.png"' in html  # vetted: its logo is shown
    assert 'href="http://agent.example/privacy"' in html


def test_approving_an_unvetted_client_works_like_any_other(browser, user, db):
    app = PublicClientFactory(registration_source="dcr", scopes=["files:read"])
    _verifier, challenge = pkce_pair()
    response = approve(browser, authorize_params(app, challenge=challenge, scope="files:read"))
    assert response.status_code == 302 and "code=" in response["Location"]


def test_connected_apps_show_the_same_origin_line(browser, user, db):
    dcr = PublicClientFactory(name="Dyn", registration_source="dcr", **LINKS)
    cimd = PublicClientFactory(
        name="Doc", registration_source="cimd", client_id="https://docs.agent.example/c.json"
    )
    manual = ClientFactory(name="Manual", **LINKS)
    for app in (dcr, cimd, manual):
        ConsentFactory(user=user, client=app, scope="files:read")
        AccessTokenFactory(user=user, application=app)
    html = browser.get("/oauth/connected-apps/").content.decode()
    assert "Registered automatically, not reviewed" in html
    assert "Described by <strong>docs.agent.example</strong>, not reviewed" in html
    assert html.count("not reviewed") == 2
    # The vetted client's logo is shown once; the self-registered one's never.
    assert html.count('src="https://cdn.evil.example/logo.png"') == 1
