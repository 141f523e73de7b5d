"""The "Connected apps" page in headless Chromium: sign in, revoke with the keyboard alone, and
the colours the user sees. The driver and skip rule are tests/e2e/conftest.py's (skips without
Chromium and chromedriver unless ``CI`` is set); screenshots go to ``$OAUTH_SERVER_SCREENSHOTS``
when set, else to pytest's tmp_path.
"""

from __future__ import annotations

import pytest

from oauth_server.models import AccessToken, Consent
from tests.e2e.chromium import CONTRAST_JS, DESKTOP, PHONE, TEXT_SELECTOR, screenshot, tab_to, wait_for
from tests.factories import DEFAULT_PASSWORD, AccessTokenFactory, ClientFactory, ConsentFactory

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

PAGE = "/oauth/connected-apps/"


@pytest.fixture
def browser(driver):
    driver.delete_all_cookies()
    driver.set_window_size(*DESKTOP)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    return driver


@pytest.fixture
def photos(person):
    """A connected app with a consent and a live token, as after a real authorization."""
    app = ClientFactory(
        name="Acme Photos",
        client_uri="https://photos.acme.example/",
        scopes=["openid", "email", "photos:read"],
    )
    # Transactional tests flush migration 0002's scopes: give them their standard descriptions.
    descriptions = {
        "openid": "Sign you in with your account",
        "email": "See your email address",
        "photos:read": "See your photos",
    }
    for scope in app.allowed_scopes.all():
        scope.description = descriptions[scope.name]
        scope.save(update_fields=["description"])
    ConsentFactory(user=person, client=app, scope="openid email photos:read")
    AccessTokenFactory(user=person, application=app, scope="openid email photos:read")
    return app


def sign_in_to_connected_apps(browser, site: str, user) -> None:
    """Open the page, get sent to the login page, sign in by typing, and land back on the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(site + PAGE)
    wait_for(browser, lambda d: d.find_elements(By.ID, "id_password"))
    browser.find_element(By.ID, "id_username").send_keys(user.username)
    browser.find_element(By.ID, "id_password").send_keys(DEFAULT_PASSWORD, Keys.ENTER)
    wait_for(browser, lambda d: d.current_url == site + PAGE)


def test_keyboard_revoke_shows_the_message_and_the_empty_state(browser, site, person, photos, shots):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    sign_in_to_connected_apps(browser, site, person)
    assert browser.title == "Connected apps"
    assert browser.find_element(By.TAG_NAME, "h2").text == "Acme Photos"
    scopes = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".oas-app .oas-scope-text")]
    assert scopes == ["Sign you in with your account", "See your email address", "See your photos"]
    screenshot(browser, shots / "connected-apps.png")

    tab_to(browser, "revoke-1")
    focus = browser.execute_script(
        "const s = getComputedStyle(document.activeElement);"
        "return [s.outlineStyle, parseFloat(s.outlineWidth)];"
    )
    assert focus[0] != "none" and focus[1] >= 2, f"no visible focus ring on Revoke: {focus}"
    screenshot(browser, shots / "connected-apps-revoke-focused.png")
    ActionChains(browser).send_keys(Keys.ENTER).perform()

    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".oas-message-success"))
    assert browser.current_url == site + PAGE  # redirected back: reloading does not re-submit
    message = browser.find_element(By.CSS_SELECTOR, ".oas-message-success")
    assert message.text == "Acme Photos no longer has access to your account."
    assert browser.find_element(By.CSS_SELECTOR, ".oas-empty h2").text == "You haven't connected any apps"
    assert not browser.find_elements(By.CSS_SELECTOR, ".oas-app")
    assert Consent.objects.get(user=person, client=photos).revoked_at is not None
    assert not AccessToken.objects.filter(user=person, application=photos).exists()
    screenshot(browser, shots / "connected-apps-revoked.png")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_contrast_and_phone_layout(browser, site, person, photos, scheme, shots):
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
    )
    trusted = ClientFactory(name="Intranet", skip_consent=True, scopes=["openid"])
    AccessTokenFactory(user=person, application=trusted, scope="openid")
    sign_in_to_connected_apps(browser, site, person)

    measured = browser.execute_script(CONTRAST_JS, TEXT_SELECTOR + ", dt, dd, time")
    texts = {m["text"] for m in measured}
    assert {"Acme Photos", "Intranet", "Revoke access", "Last used"} <= texts, texts
    low = [m for m in measured if m["ratio"] < 4.5]
    assert not low, f"text below 4.5:1 in {scheme} mode: {low}"
    screenshot(browser, shots / f"connected-apps-{scheme}.png")

    browser.set_window_size(*PHONE)
    width = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"horizontal scrolling on a phone: {width}"
    buttons = browser.execute_script(
        "return [...document.querySelectorAll('.oas-app-revoke')]"
        ".map(b => b.getBoundingClientRect()).map(r => [r.width, r.height]);"
    )
    assert len(buttons) == 2 and all(w >= 44 and h >= 44 for w, h in buttons), buttons
    screenshot(browser, shots / f"connected-apps-phone-{scheme}.png")
