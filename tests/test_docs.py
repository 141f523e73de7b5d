"""The documentation stays true to the code: every setting documented, every page reachable,
every relative link resolving."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from oauth_server.conf import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LINK_RE = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_every_setting_is_documented_in_settings_md():
    text = (DOCS / "settings.md").read_text()
    missing = [key for key in DEFAULTS if f"`{key}`" not in text]
    assert not missing, f"undocumented OAUTH_SERVER settings: {missing}"


def test_every_docs_page_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [page.name for page in DOCS.glob("*.md") if f"docs/{page.name}" not in readme]
    assert not missing, f"docs pages not in the README's index: {missing}"


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_resolve(page):
    broken = [
        target
        for target in LINK_RE.findall(page.read_text())
        if "://" not in target and not target.startswith("mailto:") and not (page.parent / target).exists()
    ]
    assert not broken, f"{page.name}: broken links {broken}"


IMAGE_RE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)|<img\b[^>]*?\bsrc=\"([^\"]+)\"")
SCREENSHOTS = DOCS / "screenshots"


def referenced_images() -> dict[Path, list[str]]:
    """Every local image (Markdown or HTML ``<img>``) referenced from the README and docs, by page."""
    found = {}
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        targets = [md or html for md, html in IMAGE_RE.findall(page.read_text())]
        found[page] = [target for target in targets if "://" not in target]
    return found


def test_every_image_in_the_docs_exists():
    missing = [
        f"{page.name}: {target}"
        for page, targets in referenced_images().items()
        for target in targets
        if not (page.parent / target).is_file()
    ]
    assert not missing, f"images referenced but missing: {missing}"


def test_every_screenshot_is_generated_and_shown():
    """docs/screenshots/ holds exactly what tests/e2e/test_screenshots.py takes (so one command
    regenerates all of it, and nothing stale stays), and each picture is shown somewhere."""
    from tests.e2e.test_screenshots import LANGUAGES, PAGES

    on_disk = {path.name for path in SCREENSHOTS.glob("*")}
    assert on_disk == {f"{page}-{language}.png" for page in PAGES for language in LANGUAGES}
    shown = {
        (page.parent / target).resolve()
        for page, targets in referenced_images().items()
        for target in targets
    }
    linked = {
        (page.parent / target).resolve()
        for page in [ROOT / "README.md", *DOCS.glob("*.md")]
        for target in LINK_RE.findall(page.read_text())
    }
    unshown = sorted(name for name in on_disk if (SCREENSHOTS / name).resolve() not in shown | linked)
    assert not unshown, f"screenshots no page shows or links to: {unshown}"
