"""Headless Chromium for the browser tests: flags, the skip-or-fail rule, and page helpers (the
authorization URL and signing in by typing included, shared by the consent-page tests).

The fixtures built on it (``driver``, ``browser``, ``shots``, ``site``) live in ``tests/e2e/conftest.py``.
Without Chromium and chromedriver the browser tests skip, except when ``CI`` is set: then they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlencode

import pytest

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
DESKTOP = (1280, 900)
PHONE = (390, 844)
MAX_TABS = 30

# WCAG 2.x contrast of an element's text against the first opaque background behind it.
CONTRAST_JS = """
function parse(c) {
  const m = c.match(/rgba?\\(([^)]+)\\)/);
  if (!m) return null;
  const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
  return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
}
function lum(c) {
  const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
}
function background(el) {
  for (let e = el; e; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0.99) return c;
  }
  return {r: 255, g: 255, b: 255, a: 1};
}
const out = [];
for (const el of document.querySelectorAll(arguments[0])) {
  const text = (el.innerText || "").trim();
  if (!text || el.offsetParent === null) continue;
  const fg = parse(getComputedStyle(el).color), bg = background(el);
  const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  out.push({text: text.slice(0, 40), ratio: (hi + 0.05) / (lo + 0.05)});
}
return out;
"""
TEXT_SELECTOR = "h1, h2, p, li, a, strong, span, small, code, label, button, .oas-brand, .oas-account-email"


def missing_browser() -> str | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium or not shutil.which("chromedriver"):
        return (
            "headless Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
    return None


def require_browser() -> None:
    """Skip the calling test without Chromium and chromedriver; under ``CI`` fail instead."""
    reason = missing_browser()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, browser tests must run: {reason}")
        pytest.skip(reason)


def start_driver(extra_flags: Sequence[str] = ()):
    """A headless Chromium session at desktop size, English UI (plus ``extra_flags``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in [*CHROMIUM_FLAGS, *extra_flags]:
        options.add_argument(flag)
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    options.add_argument("--lang=en-US")
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    browser.implicitly_wait(0)
    return browser


def screenshot(browser, path: Path) -> None:
    """The whole page, not just the viewport, at the current window width."""
    size = browser.get_window_size()
    width, height = size["width"], size["height"]
    page_height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, max(height, page_height + 140))  # + browser chrome
    browser.save_screenshot(str(path))
    browser.set_window_size(width, height)


def wait_for(browser, condition, timeout: float = 10):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(condition)


def tab_to(browser, element_id: str) -> None:
    """Press TAB (and nothing else) until the element has the keyboard focus."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    for _ in range(MAX_TABS):
        if browser.execute_script("return document.activeElement && document.activeElement.id") == element_id:
            return
        ActionChains(browser).send_keys(Keys.TAB).perform()
    pytest.fail(f"#{element_id} cannot be reached with the Tab key")


def press_enter(browser) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ActionChains(browser).send_keys(Keys.ENTER).perform()


def set_language(browser, language: str) -> None:
    """Send ``Accept-Language: <language>`` from now on, as a browser set to that language does
    (the demo's LocaleMiddleware picks the page's language from it)."""
    user_agent = browser.execute_script("return navigator.userAgent")
    browser.execute_cdp_cmd(
        "Emulation.setUserAgentOverride", {"userAgent": user_agent, "acceptLanguage": language}
    )


def type_keys(browser, text: str) -> None:
    """Type into whatever has the keyboard focus (no element is clicked or focused by WebDriver)."""
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).send_keys(text).perform()


def press_space(browser) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    ActionChains(browser).send_keys(Keys.SPACE).perform()


# --- the authorization pages ------------------------------------------------------------------------
def authorize_url(site: str, app, **extra: str) -> str:
    """An authorization request of ``app`` (code flow, PKCE S256, ``state=browser-state``) on
    ``site``, with ``extra`` parameters added or replaced."""
    from tests.factories import pkce_pair

    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": app.redirect_uri_list[0],
        "scope": "openid profile email photos:read",
        "state": "browser-state",
        "code_challenge": pkce_pair()[1],
        "code_challenge_method": "S256",
        **extra,
    }
    return f"{site}/oauth/authorize/?{urlencode(params)}"


def sign_in(browser, url: str, user) -> None:
    """Open the authorization URL, land on the login page, and sign in by typing."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from tests.factories import DEFAULT_PASSWORD

    browser.get(url)
    wait_for(browser, lambda d: d.find_elements(By.ID, "id_password"))
    username = browser.find_element(By.ID, "id_username")
    if username.get_attribute("value") != user.username:
        username.clear()
        username.send_keys(user.username)
    password = browser.find_element(By.ID, "id_password")
    password.send_keys(DEFAULT_PASSWORD, Keys.ENTER)
    wait_for(browser, lambda d: d.find_elements(By.ID, "allow"))


# --- axe-core ----------------------------------------------------------------------------------------
# axe-core comes bundled in selenium-axe-python (the maintained fork of Mozilla's axe-selenium-python,
# whose last release bundles axe-core 3.1 from 2018): no Node.js needed to run it.
AXE_BLOCKING = ("serious", "critical")
AXE_RUN_JS = """
const done = arguments[arguments.length - 1];
axe.run(document, arguments[0]).then(
  r => done({version: axe.version, violations: r.violations}),
  e => done({error: String(e)}),
);
"""
_axe_source: list[str] = []


def axe_run(browser) -> tuple[str, list[dict]]:
    """(axe-core's version, every violation it finds on the current page, as axe reports them).

    Every rule axe runs by default is checked: WCAG 2.0-2.2 A and AA, and best practices.
    """
    if not _axe_source:
        import selenium_axe_python

        script = Path(selenium_axe_python.__file__).with_name("axe-core") / "axe.min.js"
        _axe_source.append(script.read_text(encoding="utf-8"))
    browser.execute_script(_axe_source[0])
    result = browser.execute_async_script(AXE_RUN_JS, {"resultTypes": ["violations"]})
    if "error" in result:
        raise AssertionError(f"axe-core failed: {result['error']}")
    return result["version"], result["violations"]


def axe_blocking(violations: list[dict], ignore: Iterable[tuple[str, str]] = ()) -> list[dict]:
    """The serious and critical ones, less the ``ignore``d (rule id, CSS target) pairs (markup we do
    not control, docs/accessibility.md), each as ``{"id", "impact", "help", "targets"}``."""
    ignored = set(ignore)
    found = []
    for violation in violations:
        if violation["impact"] not in AXE_BLOCKING:
            continue
        targets = [t for t in axe_targets(violation) if (violation["id"], t) not in ignored]
        if targets:
            found.append({**{k: violation[k] for k in ("id", "impact", "help")}, "targets": targets})
    return found


def axe_targets(violation: dict) -> list[str]:
    return [" ".join(node["target"]) for node in violation["nodes"]]


def axe_report(violations: list[dict]) -> str:
    return "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["targets"]) for v in violations
    )


def optimise_png(path: Path) -> None:
    """Shrink a screenshot in place with pngquant (256 colours) and optipng, when installed
    (apt-get install pngquant optipng); without them the file is kept as Chromium wrote it."""
    import subprocess

    if shutil.which("pngquant"):
        subprocess.run(  # exit 98/99: the result would be larger or worse; the original stays
            ["pngquant", "--force", "--skip-if-larger", "--strip", "--speed", "1", "--output", path, path],
            check=False,
        )
    if shutil.which("optipng"):
        subprocess.run(["optipng", "-quiet", "-o2", "-strip", "all", path], check=True)
