"""Every page a person sees, in English and French, in headless Chromium: axe-core finds no serious
or critical accessibility problem on any of them, and each is photographed for the docs.

The pictures go to docs/screenshots/<page>-<language>.png when ``UPDATE_SCREENSHOTS=1`` is set
(the one command that regenerates them all is in docs/accessibility.md), else to pytest's tmp_path,
so an ordinary test run never touches the working tree. The browser reaches the live server as
``http://auth.example.com`` (Chromium's host-resolver rules), and every date, name and identifier
on the pages is fixed, so regenerating without a change to the pages gives the same pictures.

Without Chromium and chromedriver these tests skip, except when ``CI`` is set: then they fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model

from oauth_server.models import AccessToken, Client, Consent, Scope
from tests.e2e.chromium import (
    authorize_url as chromium_authorize_url,
)
from tests.e2e.chromium import (
    axe_blocking,
    axe_report,
    axe_run,
    axe_targets,
    optimise_png,
    require_browser,
    screenshot,
    set_language,
    start_driver,
    wait_for,
)
from tests.factories import DEFAULT_PASSWORD, AccessTokenFactory, ClientFactory, ConsentFactory

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
HOST = "auth.example.com"
BASE = f"http://{HOST}"
LANGUAGES = ["en", "fr"]
PAGE_SIZE = (800, 700)  # the app's pages are one card: photographed whole, at this width
ADMIN_SIZE = (1200, 1000)  # the admin needs room: the top of its long form only
CONNECTED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
LAST_USED = datetime(2026, 3, 9, 14, 5, tzinfo=UTC)
STANDARD_SCOPES = {  # migration 0002's descriptions; transactional tests flush that migration's rows
    "openid": "Sign you in with your account",
    "profile": "See your name and basic profile information",
    "email": "See your email address",
    "offline_access": "Stay connected when you are not using the app",
}

# The Django admin's own markup (not ours) that axe reports as serious or critical: (rule, target).
# Each is explained in docs/accessibility.md; the test fails when one is no longer reported, so the
# list cannot outlive the problem.
ADMIN_IGNORED = {
    # filter_horizontal's JavaScript (admin/js/SelectFilter2.js) puts aria-label on a bare <span>.
    ("aria-prohibited-attr", 'label[for="id_allowed_scopes_input"] > .help-tooltip.search-label-icon'),
    ("aria-prohibited-attr", "#id_allowed_scopes_filter_selected > label > .help-tooltip.search-label-icon"),
}


@pytest.fixture(scope="module")
def chromium(live_server) -> Iterator:
    """One Chromium for the module, resolving auth.example.com to the live server, and no proxy."""
    require_browser()
    port = urlsplit(live_server.url).port
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NO_PROXY", "*")
        browser = start_driver(
            [
                f"--host-resolver-rules=MAP {HOST} 127.0.0.1:{port}",
                "--no-proxy-server",
                "--disable-features=HttpsUpgrades",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
            ]
        )
        yield browser
        browser.quit()


@pytest.fixture
def browser(chromium, settings):
    # The app's own sign-in page, not the demo's (whose hint about demo accounts is not translated).
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": []}]
    chromium.execute_cdp_cmd("Network.clearBrowserCookies", {})
    chromium.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-reduced-motion", "value": "reduce"}]}
    )
    chromium.get("about:blank")
    return chromium


@pytest.fixture
def gallery(tmp_path) -> Path:
    """docs/screenshots/ with ``UPDATE_SCREENSHOTS=1``, else this test's tmp_path."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path


# --- the people, apps and requests on the pages ----------------------------------------------------------
def standard_scopes() -> list[Scope]:
    return [
        Scope.objects.update_or_create(name=name, defaults={"description": text})[0]
        for name, text in STANDARD_SCOPES.items()
    ]


def acme_photos() -> Client:
    client = ClientFactory(
        name="Acme Photos",
        client_id="acme-photos",
        redirect_uris="https://photos.acme.example/callback",
        post_logout_redirect_uris="https://photos.acme.example/",
        client_uri="https://photos.acme.example/",
        policy_uri="https://photos.acme.example/privacy",
        tos_uri="https://photos.acme.example/terms",
        scopes=standard_scopes(),
    )
    Client.objects.filter(pk=client.pk).update(created=CONNECTED, updated=LAST_USED)
    return client


def grace():
    return get_user_model().objects.create_user(
        "grace", "grace@example.com", DEFAULT_PASSWORD, first_name="Grace", last_name="Hopper"
    )


def authorize_url(client: Client, **extra: str) -> str:
    """The shared authorization request (chromium.authorize_url) with the scopes these pages show."""
    return chromium_authorize_url(
        BASE, client, **{"scope": "openid profile email offline_access", "state": "af0ifjsldkj", **extra}
    )


def sign_in(browser, url: str, username: str, landed: Callable) -> None:
    """Open ``url``, get sent to a sign-in page, sign in by typing, and wait for ``landed``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(url)
    wait_for(browser, lambda d: d.find_elements(By.ID, "id_password"))
    browser.find_element(By.ID, "id_username").send_keys(username)
    browser.find_element(By.ID, "id_password").send_keys(DEFAULT_PASSWORD, Keys.ENTER)
    wait_for(browser, landed)


def has(element_id: str) -> Callable:
    return lambda d: d.find_elements("id", element_id)


# --- the pages ---------------------------------------------------------------------------------------------
def login_page(browser) -> None:
    """Signed out, following an app's sign-in link: the sign-in page names the app."""
    browser.get(authorize_url(acme_photos(), login_hint="grace"))
    wait_for(browser, has("id_password"))


def consent_page(browser) -> None:
    """First visit: everything the app asks for is new."""
    client, _ = acme_photos(), grace()
    sign_in(browser, authorize_url(client), "grace", has("allow"))
    assert not browser.find_elements("id", "granted-scopes-title")


def consent_step_up_page(browser) -> None:
    """The app already holds openid and profile and now asks for more: only the rest is new."""
    client, user = acme_photos(), grace()
    ConsentFactory(user=user, client=client, scope="openid profile")
    sign_in(browser, authorize_url(client), "grace", has("allow"))
    new = [e.get_attribute("data-scope") for e in browser.find_elements("css selector", ".oas-scopes-new li")]
    granted = [
        e.get_attribute("data-scope") for e in browser.find_elements("css selector", ".oas-scopes-granted li")
    ]
    assert (new, granted) == (["email", "offline_access"], ["openid", "profile"])


def error_page(browser) -> None:
    """A link with an unregistered redirect URI: an error page, never a redirect."""
    browser.get(authorize_url(acme_photos(), redirect_uri="https://evil.example/steal"))
    wait_for(browser, has("error-title"))


def connected_apps_page(browser) -> None:
    """Two apps: one the user approved, one first-party app the site trusts (no consent)."""
    user, photos = grace(), acme_photos()
    consent = ConsentFactory(user=user, client=photos, scope="openid profile email offline_access")
    AccessTokenFactory(user=user, application=photos, scope="openid profile email offline_access")
    intranet = ClientFactory(
        name="Team Calendar", client_id="team-calendar", skip_consent=True, scopes=standard_scopes()[:1]
    )
    AccessTokenFactory(user=user, application=intranet, scope="openid")
    Consent.objects.filter(pk=consent.pk).update(created=CONNECTED, updated=CONNECTED)
    AccessToken.objects.filter(application=photos).update(created=LAST_USED)
    AccessToken.objects.filter(application=intranet).update(created=LAST_USED - timedelta(days=6))
    sign_in(browser, f"{BASE}/oauth/connected-apps/", "grace", has("revoke-1"))


def admin_client_page(browser) -> None:
    """The change form of a client, as a superuser sees it."""
    client = acme_photos()
    get_user_model().objects.create_superuser("admin", "admin@example.com", DEFAULT_PASSWORD)
    sign_in(browser, f"{BASE}/admin/oauth_server/client/{client.pk}/change/", "admin", has("client_form"))


PAGES = {
    "login": login_page,
    "consent": consent_page,
    "consent-step-up": consent_step_up_page,
    "error": error_page,
    "connected-apps": connected_apps_page,
    "admin-client": admin_client_page,
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("page", list(PAGES))
def test_page_is_accessible_and_photographed(browser, gallery, page, language):
    admin = page.startswith("admin-")
    browser.set_window_size(*(ADMIN_SIZE if admin else PAGE_SIZE))
    set_language(browser, language)
    PAGES[page](browser)
    assert browser.current_url.startswith(BASE + "/")
    assert browser.find_element("tag name", "html").get_attribute("lang") == language

    version, violations = axe_run(browser)
    ignored = ADMIN_IGNORED if admin else set()
    blocking = axe_blocking(violations, ignore=ignored)
    assert not blocking, f"axe-core {version} on the {page} page ({language}):\n{axe_report(blocking)}"
    reported = {(v["id"], target) for v in violations for target in axe_targets(v)}
    assert ignored <= reported, f"no longer reported, drop from ADMIN_IGNORED and docs: {ignored - reported}"

    browser.execute_script("document.activeElement && document.activeElement.blur()")  # no caret
    path = gallery / f"{page}-{language}.png"
    if admin:
        browser.save_screenshot(str(path))
    else:
        screenshot(browser, path)
    assert path.stat().st_size > 5_000  # a page, not a blank
    if gallery == SCREENSHOTS:
        optimise_png(path)
