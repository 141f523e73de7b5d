"""Headless Chromium for the browser tests: flags, the skip-or-fail rule, and page helpers.

The fixtures built on it (``driver``, ``shots``, ``site``) live in ``tests/e2e/conftest.py``.
Without Chromium and chromedriver the browser tests skip, except when ``CI`` is set: then they fail.
"""

from __future__ import annotations

import shutil
from pathlib import Path

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


def start_driver():
    """A headless Chromium session at desktop size, English UI."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
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
