"""The device verification page in headless Chromium, with the keyboard alone: open
verification_uri_complete, sign in, Continue (the code is filled in), Allow or Deny on the consent
screen; then the device polls. axe-core finds no serious or critical violation on the pages, and a
wrong code's error is announced.

Without Chromium and chromedriver these tests skip, except when ``CI`` is set: then they fail.
"""

from __future__ import annotations

import pytest
import requests

from oauth_server.models import DeviceAuthorization, GrantType
from tests.e2e.chromium import (
    DESKTOP,
    axe_blocking,
    axe_report,
    axe_run,
    press_enter,
    press_space,
    tab_to,
    type_keys,
    wait_for,
)
from tests.factories import DEFAULT_PASSWORD, PublicClientFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]
GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def browser(driver):
    driver.get("about:blank")
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    driver.set_window_size(*DESKTOP)
    return driver


def assert_accessible(browser) -> None:
    _version, violations = axe_run(browser)
    blocking = axe_blocking(violations)
    assert not blocking, axe_report(blocking)


def poll(site: str, client, device_code: str) -> dict:
    return requests.post(
        f"{site}/oauth/token/",
        data={"grant_type": GRANT, "device_code": device_code, "client_id": client.client_id},
        timeout=10,
    ).json()


@pytest.mark.parametrize(("allow", "key"), [(True, "Enter"), (False, "Space")])
def test_verification_page_with_the_keyboard_alone(browser, site, allow, key):
    from selenium.webdriver.common.by import By

    press = press_enter if key == "Enter" else press_space
    tv = PublicClientFactory(
        name="Living Room TV",
        grant_types=[GRANT, GrantType.REFRESH_TOKEN],
        redirect_uris="",
        scopes=["files:read"],
    )
    person = UserFactory(username="ada")
    codes = requests.post(
        f"{site}/oauth/device_authorization/",
        data={"client_id": tv.client_id, "scope": "files:read"},
        timeout=10,
    ).json()
    browser.get(codes["verification_uri_complete"])

    wait_for(browser, lambda d: d.find_elements(By.ID, "id_password"))
    tab_to(browser, "id_username")
    type_keys(browser, person.username)
    tab_to(browser, "id_password")
    type_keys(browser, DEFAULT_PASSWORD)
    tab_to(browser, "login")
    press(browser)

    # The code is filled in, not submitted: the user presses Continue.
    wait_for(browser, lambda d: d.find_elements(By.ID, "continue"))
    assert browser.find_element(By.ID, "id_user_code").get_attribute("value") == codes["user_code"]
    assert DeviceAuthorization.objects.get().status == DeviceAuthorization.Status.PENDING
    assert_accessible(browser)
    tab_to(browser, "continue")
    press(browser)

    # The code flow's consent screen, with the device warning.
    wait_for(browser, lambda d: d.find_elements(By.ID, "allow"))
    page = browser.find_element(By.TAG_NAME, "main").text
    assert "Living Room TV" in page and "own device" in page
    assert_accessible(browser)
    tab_to(browser, "allow" if allow else "deny")
    press(browser)
    wait_for(browser, lambda d: d.find_elements(By.ID, "done-title"))
    assert_accessible(browser)

    answer = poll(site, tv, codes["device_code"])
    if allow:
        assert answer["access_token"] and answer["refresh_token"]
    else:
        assert answer["error"] == "access_denied"


def test_a_wrong_code_is_announced(browser, site):
    from selenium.webdriver.common.by import By

    person = UserFactory(username="lin")
    browser.get(f"{site}/oauth/device/")
    wait_for(browser, lambda d: d.find_elements(By.ID, "id_password"))
    tab_to(browser, "id_username")
    type_keys(browser, person.username)
    tab_to(browser, "id_password")
    type_keys(browser, DEFAULT_PASSWORD)
    tab_to(browser, "login")
    press_enter(browser)
    wait_for(browser, lambda d: d.find_elements(By.ID, "continue"))
    tab_to(browser, "id_user_code")
    type_keys(browser, "bbbb-bbbb")
    tab_to(browser, "continue")
    press_enter(browser)
    wait_for(browser, lambda d: d.find_elements(By.ID, "user-code-error"))
    error = browser.find_element(By.ID, "user-code-error")
    assert error.get_attribute("role") == "alert"
    field = browser.find_element(By.ID, "id_user_code")
    assert field.get_attribute("aria-invalid") == "true"
    assert "user-code-error" in field.get_attribute("aria-describedby")
    assert_accessible(browser)
