"""The sign-in and consent pages in a real browser: headless Chromium driven by selenium.

What only a browser can tell: the login form works, the consent page is usable with the keyboard
alone, the colours the user actually sees meet WCAG AA, the page fits a phone screen, and it cannot
be framed. Screenshots go to ``$OAUTH_SERVER_SCREENSHOTS`` (a directory) when set, else to pytest's
tmp_path.

Without Chromium and chromedriver these tests skip, except when ``CI`` is set: then they fail.
"""

from __future__ import annotations

import pytest
import requests

from oauth_server.models import Consent, Grant
from tests.e2e.chromium import (
    CONTRAST_JS,
    PHONE,
    TEXT_SELECTOR,
    authorize_url,
    press_enter,
    screenshot,
    sign_in,
    tab_to,
    wait_for,
)
from tests.factories import ClientFactory
from tests.helpers import query

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def app(site):
    return ClientFactory(
        name="Acme Photos",
        redirect_uris=f"{site}/callback",
        client_uri="https://photos.acme.example/",
        policy_uri="https://photos.acme.example/privacy",
        scopes=["openid", "profile", "email", "photos:read"],
    )


def test_keyboard_only_sign_in_and_approve(browser, site, app, person, shots):
    sign_in(browser, authorize_url(site, app, login_hint="grace"), person)
    assert browser.title == "Authorize Acme Photos"
    assert "Acme Photos wants to access your account" in browser.find_element("tag name", "h1").text
    screenshot(browser, shots / "consent-desktop.png")

    tab_to(browser, "allow")
    focus = browser.execute_script(
        "const s = getComputedStyle(document.activeElement);"
        "return [s.outlineStyle, parseFloat(s.outlineWidth)];"
    )
    assert focus[0] != "none" and focus[1] >= 2, f"no visible focus ring on Allow: {focus}"
    screenshot(browser, shots / "consent-allow-focused.png")
    press_enter(browser)

    wait_for(browser, lambda d: d.current_url.startswith(f"{site}/callback"))
    params = query(browser.current_url)
    assert params["state"] == "browser-state"
    assert params["iss"] == f"{site}/oauth"
    assert Grant.objects.filter(application=app, user=person).count() == 1
    assert sorted(Consent.objects.get(user=person, client=app).scopes) == [
        "email",
        "openid",
        "photos:read",
        "profile",
    ]
    assert params["code"]


def test_keyboard_deny_returns_access_denied(browser, site, app, person):
    sign_in(browser, authorize_url(site, app), person)
    tab_to(browser, "deny")
    press_enter(browser)

    wait_for(browser, lambda d: d.current_url.startswith(f"{site}/callback"))
    params = query(browser.current_url)
    assert params["error"] == "access_denied"
    assert params["state"] == "browser-state"
    assert "code" not in params
    assert not Grant.objects.exists()
    assert not Consent.objects.filter(user=person).exists()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_and_buttons_meet_wcag_aa_contrast(browser, site, app, person, scheme, shots):
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
    )
    sign_in(browser, authorize_url(site, app), person)
    measured = browser.execute_script(CONTRAST_JS, TEXT_SELECTOR)
    assert len(measured) > 10, measured  # the page's text was found
    texts = {m["text"] for m in measured}
    assert {"Allow", "Deny"} <= texts
    low = [m for m in measured if m["ratio"] < 4.5]
    assert not low, f"text below 4.5:1 in {scheme} mode: {low}"
    screenshot(browser, shots / f"consent-{scheme}.png")


def test_login_page_contrast_and_labels(browser, site, app, shots):
    browser.get(authorize_url(site, app))
    wait_for(browser, lambda d: d.find_elements("id", "id_username"))
    labels = browser.execute_script(
        "return [...document.querySelectorAll('input:not([type=hidden])')]"
        ".map(i => [i.id, i.labels.length, i.autocomplete]);"
    )
    assert labels == [["id_username", 1, "username"], ["id_password", 1, "current-password"]]
    low = [m for m in browser.execute_script(CONTRAST_JS, TEXT_SELECTOR) if m["ratio"] < 4.5]
    assert not low, low
    screenshot(browser, shots / "login.png")


@pytest.mark.parametrize("language", ["en", "fr"])
def test_consent_page_fits_a_phone(browser, site, app, person, shots, language):
    user_agent = browser.execute_script("return navigator.userAgent")
    browser.execute_cdp_cmd(
        "Emulation.setUserAgentOverride", {"userAgent": user_agent, "acceptLanguage": language}
    )
    sign_in(browser, authorize_url(site, app), person)
    assert browser.find_element("tag name", "html").get_attribute("lang") == language
    browser.set_window_size(*PHONE)
    width = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"horizontal scrolling on a phone: {width}"
    buttons = browser.execute_script(
        "return ['deny', 'allow'].map(id => document.getElementById(id).getBoundingClientRect())"
        ".map(r => [r.width, r.height]);"
    )
    assert all(w >= 44 and h >= 44 for w, h in buttons), buttons  # comfortable touch targets
    screenshot(browser, shots / f"consent-phone-{language}.png")


def test_error_page_in_the_browser(browser, site, app, shots):
    browser.get(authorize_url(site, app, redirect_uri="https://evil.example/steal"))
    assert "This sign-in link is not valid" in browser.find_element("tag name", "h1").text
    links = browser.execute_script("return [...document.links].map(a => a.href)")
    assert not [href for href in links if "evil.example" in href]
    screenshot(browser, shots / "error.png")


def test_consent_and_login_pages_cannot_be_framed(browser, site, app, person):
    sign_in(browser, authorize_url(site, app), person)
    http = requests.Session()
    http.trust_env = False
    for cookie in browser.get_cookies():
        http.cookies.set(cookie["name"], cookie["value"])
    consent_page = http.get(authorize_url(site, app), allow_redirects=False)
    assert consent_page.status_code == 200 and 'id="allow"' in consent_page.text
    anonymous = requests.Session()
    anonymous.trust_env = False
    login_page = anonymous.get(f"{site}/accounts/login/", allow_redirects=False)
    for page in (consent_page, login_page):
        assert page.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]

    # And a real framing attempt: Chromium refuses to render the page inside another site's frame.
    browser.get(f"{site}/callback")
    browser.execute_script(
        "const f = document.createElement('iframe'); f.id = 'victim'; f.src = arguments[0];"
        "document.body.appendChild(f);",
        authorize_url(site, app),
    )
    browser.switch_to.frame("victim")
    try:
        wait_for(browser, lambda d: d.execute_script("return document.readyState") == "complete")
        assert not browser.find_elements("id", "allow")
    finally:
        browser.switch_to.default_content()


def test_cross_site_prompt_login_leaves_the_user_signed_in(browser, site, app, person, shots):
    """Another site navigates the top-level window to the authorization endpoint with prompt=login
    (SameSite=Lax cookies are sent): the user gets the login page and is still signed in after."""
    sign_in(browser, authorize_url(site, app), person)
    host = "127.0.0.1" if "//localhost" in site else "localhost"
    other_site = site.replace("//localhost", f"//{host}").replace("//127.0.0.1", f"//{host}")
    assert other_site != site
    browser.get(f"{other_site}/callback")  # any page of another site (another host: another site)
    browser.execute_script("window.location.href = arguments[0];", authorize_url(site, app, prompt="login"))
    wait_for(browser, lambda d: d.current_url.startswith(f"{site}/accounts/login/"))
    wait_for(browser, lambda d: d.find_elements("id", "id_password"))
    assert browser.find_element("tag name", "h1").text == "Sign in again"
    assert "grace" in browser.find_element("class name", "oas-reauthenticate").text
    screenshot(browser, shots / "login-again.png")

    browser.get(f"{site}/oauth/connected-apps/")  # the user leaves the login page
    assert browser.current_url.startswith(f"{site}/oauth/connected-apps/")
    assert not browser.find_elements("id", "id_password")
