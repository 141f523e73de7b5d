"""The sign-in and consent pages' stylesheet, in real Chromium.

Under a production server (gunicorn, DEBUG off, ``production_site``) WhiteNoise serves the
stylesheet and the page uses it. If the stylesheet does not load at all (a site that serves no
``/static/``), base.html's inline fallback rules keep the consent page readable and usable; with
the stylesheet loaded those rules change nothing.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from oauth_server.models import Grant
from tests.e2e.chromium import authorize_url, screenshot, sign_in, tab_to, wait_for
from tests.factories import ClientFactory
from tests.helpers import query

STYLESHEET_RE = re.compile(r'<link rel="stylesheet" href="([^"]+)">')
# Set by oauth_server.css only (the inline fallback rules set neither): the page background and the
# card's rounded corners.
STYLED_JS = """
const card = document.querySelector('.oas-card');
return [getComputedStyle(document.body).backgroundColor, card && getComputedStyle(card).borderTopLeftRadius];
"""
SHEET_BACKGROUND = "rgb(243, 245, 248)"  # --oas-bg


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


@pytest.fixture
def chromium(driver):
    driver.delete_all_cookies()
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    yield driver
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})


# --- under gunicorn, DEBUG off ------------------------------------------------------------------
@pytest.mark.live
def test_production_server_serves_the_stylesheet_with_long_caching(production_site):
    site = production_site.base_url
    missing = http().get(site + "/no-such-page/")
    assert missing.status_code == 404
    assert "URLconf" not in missing.text  # DEBUG is really off: no technical 404 page

    page = http().get(site + "/accounts/login/")
    assert page.status_code == 200
    href = STYLESHEET_RE.search(page.text).group(1)
    # The manifest storage's hashed name: a new stylesheet gets a new URL, so it may be cached forever.
    assert re.fullmatch(r"/static/oauth_server/oauth_server\.[0-9a-f]{12}\.css", href), href
    css = http().get(urljoin(site, href), headers={"Accept-Encoding": "gzip"})
    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")
    assert "immutable" in css.headers["Cache-Control"]
    assert css.headers.get("Content-Encoding") == "gzip"  # precompressed by collectstatic
    assert ".oas-card" in css.text


@pytest.mark.live
@pytest.mark.browser
def test_production_sign_in_and_consent_pages_are_styled(production_site, chromium, shots):
    from selenium.webdriver.common.by import By

    site = production_site.base_url
    alice = production_site.account("alice")
    # prompt=consent: the site's database is a copy of demo_site's, where earlier tests of this
    # worker may have recorded alice's consent (the page would then be skipped).
    url = production_site.data["authorization"]["url"] + "&prompt=consent"
    chromium.get(site + url[len(production_site.data["base_url"]) :])
    wait_for(chromium, lambda d: d.find_elements(By.ID, "id_password"))
    assert chromium.execute_script(STYLED_JS) == [SHEET_BACKGROUND, "16px"]
    # The browser fetched the stylesheet itself, from WhiteNoise, with success.
    loaded = chromium.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter(e => e.initiatorType === 'link' && e.name.endsWith('.css'))"
        ".map(e => [new URL(e.name).pathname, e.responseStatus]);"
    )
    assert [(urlsplit(path).path.startswith("/static/oauth_server/"), status) for path, status in loaded] == [
        (True, 200)
    ]
    chromium.find_element(By.ID, "id_username").send_keys(alice["username"])
    chromium.find_element(By.ID, "id_password").send_keys(alice["password"])
    chromium.find_element(By.ID, "login").click()
    wait_for(chromium, lambda d: d.find_elements(By.ID, "allow"))
    assert chromium.execute_script(STYLED_JS) == [SHEET_BACKGROUND, "16px"]
    screenshot(chromium, shots / "consent-gunicorn.png")


# --- the stylesheet blocked (live_server) ----------------------------------------------------------
@pytest.fixture
def app(site):
    return ClientFactory(
        name="Acme Photos", redirect_uris=f"{site}/callback", scopes=["openid", "profile", "email"]
    )


BOX_JS = """
return Array.from(arguments).map(el => {
  const r = el.getBoundingClientRect(), s = getComputedStyle(el);
  return {width: r.width, height: r.height, top: r.top, bottom: r.bottom, left: r.left,
          visible: s.visibility === 'visible' && s.display !== 'none',
          background: s.backgroundColor, weight: s.fontWeight};
});
"""


@pytest.mark.live
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_without_the_stylesheet_the_consent_page_is_readable_and_usable(chromium, site, app, person, shots):
    from selenium.webdriver.common.by import By

    chromium.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*.css"]})
    sign_in(chromium, authorize_url(site, app, scope="openid profile email"), person)
    assert chromium.execute_script(STYLED_JS)[0] != SHEET_BACKGROUND  # the stylesheet really is missing
    screenshot(chromium, shots / "consent-unstyled.png")

    deny, allow = chromium.find_element(By.ID, "deny"), chromium.find_element(By.ID, "allow")
    assert (deny.text, allow.text) == ("Deny", "Allow")
    deny_box, allow_box = chromium.execute_script(BOX_JS, deny, allow)
    viewport = chromium.execute_script("return [innerWidth, innerHeight]")
    for box in (deny_box, allow_box):
        # Large enough to hit (WCAG 2.5.8 asks 24 px; the fallback gives 44), shown, inside the window.
        assert box["visible"] and box["width"] >= 44 and box["height"] >= 44, box
        assert box["left"] >= 0 and box["bottom"] <= viewport[1], box
    # Allow is filled and bold, Deny is not: the two are told apart without the stylesheet.
    assert allow_box["background"] != deny_box["background"]
    assert int(allow_box["weight"]) > int(deny_box["weight"])
    # A readable column, and the decorative initials (aria-hidden) are not shown as stray letters.
    assert chromium.execute_script("return document.body.getBoundingClientRect().width") <= 40 * 16
    assert not chromium.find_element(By.CSS_SELECTOR, ".oas-avatar").is_displayed()
    assert not chromium.find_element(By.CSS_SELECTOR, ".oas-account-avatar").is_displayed()

    tab_to(chromium, "deny")
    tab_to(chromium, "allow")
    allow.send_keys("\n")
    wait_for(chromium, lambda d: d.current_url.startswith(f"{site}/callback"))
    assert query(chromium.current_url)["code"]
    assert Grant.objects.filter(application=app, user=person).count() == 1


# Every computed property of every element, before and after removing the inline fallback rules.
FALLBACK_DIFF_JS = """
function snapshot() {
  return Array.from(document.querySelectorAll('body, body *')).map(el => {
    const s = getComputedStyle(el), out = {};
    for (const p of s) out[p] = s.getPropertyValue(p);
    return out;
  });
}
const before = snapshot();
document.getElementById('oas-critical').remove();
const after = snapshot(), diffs = [];
const all = Array.from(document.querySelectorAll('body, body *'));
before.forEach((props, i) => {
  for (const p in props) if (props[p] !== after[i][p])
    diffs.push([all[i].tagName + '.' + all[i].className, p, props[p], after[i][p]]);
});
return diffs;
"""


@pytest.mark.live
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_fallback_rules_change_nothing_once_the_stylesheet_loads(chromium, site, app, person):
    from selenium.webdriver.common.by import By

    chromium.get(authorize_url(site, app, scope="openid profile email"))
    wait_for(chromium, lambda d: d.find_elements(By.ID, "id_password"))
    assert chromium.execute_script(STYLED_JS)[0] == SHEET_BACKGROUND
    assert chromium.execute_script(FALLBACK_DIFF_JS) == []  # the sign-in page
    sign_in(chromium, authorize_url(site, app, scope="openid profile email"), person)
    assert chromium.execute_script(STYLED_JS)[0] == SHEET_BACKGROUND
    assert chromium.execute_script(FALLBACK_DIFF_JS) == []  # the consent page
