"""Sign in, approve and revoke with the keyboard alone, in headless Chromium: Tab to move, the
keys typed into whatever has the focus, Enter or Space to press a button. WebDriver never clicks or
focuses an element, so a control that cannot be reached or pressed from the keyboard fails the test.

Without Chromium and chromedriver these tests skip, except when ``CI`` is set: then they fail.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests

from oauth_server.models import AccessToken, Consent, Grant
from tests.e2e.chromium import DESKTOP, press_enter, press_space, set_language, tab_to, type_keys, wait_for
from tests.factories import DEFAULT_PASSWORD, ClientFactory, UserFactory, pkce_pair
from tests.helpers import query

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

PRESS = {"Enter": press_enter, "Space": press_space}


@pytest.fixture
def browser(driver):
    driver.get("about:blank")
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    driver.set_window_size(*DESKTOP)
    return driver


def focus_and_press(browser, element_id: str, key: str) -> None:
    tab_to(browser, element_id)
    PRESS[key](browser)


@pytest.mark.parametrize(("language", "key"), [("en", "Enter"), ("fr", "Space")])
def test_sign_in_approve_and_revoke_with_the_keyboard_alone(browser, site, language, key):
    from selenium.webdriver.common.by import By

    set_language(browser, language)
    app = ClientFactory(name="Acme Photos", redirect_uris=f"{site}/callback", scopes=["openid", "email"])
    person = UserFactory(username="grace")
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": f"{site}/callback",
        "scope": "openid email",
        "state": "keyboard",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    browser.get(f"{site}/oauth/authorize/?{urlencode(params)}")

    # Sign in: Tab to each field, type, then press the "Sign in" button itself.
    wait_for(browser, lambda d: d.find_elements(By.ID, "id_password"))
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == language
    tab_to(browser, "id_username")
    type_keys(browser, person.username)
    tab_to(browser, "id_password")
    type_keys(browser, DEFAULT_PASSWORD)
    focus_and_press(browser, "login", key)

    # Consent: Tab past the account and the app's links to "Allow", and press it.
    wait_for(browser, lambda d: d.find_elements(By.ID, "allow"))
    focus_and_press(browser, "allow", key)
    wait_for(browser, lambda d: d.current_url.startswith(f"{site}/callback"))
    assert query(browser.current_url)["state"] == "keyboard"
    assert Grant.objects.filter(application=app, user=person).count() == 1
    tokens = requests.post(  # the app exchanges its code, so it holds live tokens to revoke
        f"{site}/oauth/token/",
        data={
            "grant_type": "authorization_code",
            "code": query(browser.current_url)["code"],
            "redirect_uri": f"{site}/callback",
            "code_verifier": verifier,
        },
        auth=(app.client_id, app.raw_secret),
        timeout=10,
    )
    assert tokens.status_code == 200, tokens.text
    assert AccessToken.objects.filter(user=person, application=app).exists()

    # Connected apps: Tab to "Revoke access" and press it.
    browser.get(f"{site}/oauth/connected-apps/")
    wait_for(browser, lambda d: d.find_elements(By.ID, "revoke-1"))
    focus_and_press(browser, "revoke-1", key)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".oas-message-success"))
    assert not browser.find_elements(By.CSS_SELECTOR, ".oas-app")
    assert Consent.objects.get(user=person, client=app).revoked_at is not None
    assert not AccessToken.objects.filter(user=person, application=app).exists()
