"""The consent page of a client nobody vetted (self-registered), in a real browser: axe-core finds
no serious or critical problem, its text (the warning included) meets WCAG AA contrast in light and
dark mode, and it is approved with the keyboard alone."""

from __future__ import annotations

import pytest

from tests.e2e.chromium import (
    CONTRAST_JS,
    TEXT_SELECTOR,
    authorize_url,
    axe_blocking,
    axe_report,
    axe_run,
    press_enter,
    screenshot,
    sign_in,
    tab_to,
    wait_for,
)
from tests.factories import PublicClientFactory
from tests.helpers import query

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def agent(site):
    return PublicClientFactory(
        name="Helpful Agent",
        registration_source="dcr",
        redirect_uris=f"{site}/callback",
        logo_uri="https://cdn.agent.example/logo.png",
        tos_uri="https://agent.example/terms",
        scopes=["openid", "profile", "email", "photos:read"],
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_unvetted_consent_page_is_accessible(browser, site, agent, person, scheme, shots):
    from selenium.webdriver.common.by import By

    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
    )
    sign_in(browser, authorize_url(site, agent), person)
    warning = browser.find_element(By.ID, "unvetted-title")
    assert "Nobody has reviewed this app" in warning.text
    assert "Registered automatically" in browser.find_element(By.ID, "client-origin").text
    assert not browser.find_elements(By.CSS_SELECTOR, "img.oas-logo")
    _version, violations = axe_run(browser)
    blocking = axe_blocking(violations)
    assert not blocking, axe_report(blocking)
    measured = browser.execute_script(CONTRAST_JS, TEXT_SELECTOR)
    texts = {m["text"] for m in measured}
    assert any("Nobody has reviewed" in t for t in texts), texts
    low = [m for m in measured if m["ratio"] < 4.5]
    assert not low, f"text below 4.5:1 in {scheme} mode: {low}"
    screenshot(browser, shots / f"consent-unvetted-{scheme}.png")


def test_unvetted_consent_page_is_approved_with_the_keyboard(browser, site, agent, person):

    sign_in(browser, authorize_url(site, agent), person)
    tab_to(browser, "allow")
    press_enter(browser)
    wait_for(browser, lambda d: "code=" in d.current_url)
    assert "code" in query(browser.current_url)
