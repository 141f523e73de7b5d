"""The documentation stays true to the code: every setting documented, every page reachable,
every relative link resolving."""

from __future__ import annotations

import re
from pathlib import Path
from unittest import mock

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


def test_templates_md_gives_the_csp_hash_of_the_inline_fallback_style(client):
    """A site whose CSP has style-src copies this hash from docs/templates.md: it must be current."""
    import base64
    import hashlib

    page = client.get("/accounts/login/").content.decode()
    style = re.search(r'<style id="oas-critical">(.*?)</style>', page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in (DOCS / "templates.md").read_text()


# --- the system checks: docs/commands.md's table is what oauth_server/checks.py defines -------------
CHECK_ID_RE = re.compile(r"`((?:oauth_server|oauth2_provider)\.[EW]\d{3})`")


def _checks_in_code() -> dict[str, bool]:
    """{check id: registered with deploy=True} for every id that oauth_server/checks.py emits."""
    import ast

    tree = ast.parse((ROOT / "oauth_server" / "checks.py").read_text())
    found: dict[str, bool] = {}
    for function in (node for node in tree.body if isinstance(node, ast.FunctionDef)):
        deploy = any(
            isinstance(decorator, ast.Call)
            and any(k.arg == "deploy" and getattr(k.value, "value", False) for k in decorator.keywords)
            for decorator in function.decorator_list
        )
        for node in ast.walk(function):
            if isinstance(node, ast.keyword) and node.arg == "id" and isinstance(node.value, ast.Constant):
                found[node.value.value] = deploy
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("Error", "Warning"):
                assert any(k.arg == "id" for k in node.keywords), f"a check without an id in {function.name}"
    return found


def _table_rows(text: str, heading: str) -> dict[str, list[str]]:
    """{first cell's check id: cells} of the first table after ``heading``."""
    section = text.split(heading, 1)[1]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        match = CHECK_ID_RE.fullmatch(cells[0])
        if match:
            rows[match.group(1)] = cells
    return rows


def test_commands_md_checks_table_lists_exactly_the_checks_of_checks_py():
    code = _checks_in_code()
    table = _table_rows((DOCS / "commands.md").read_text(), "## System checks")
    assert sorted(table) == sorted(code), "docs/commands.md's checks table and oauth_server/checks.py differ"
    for check_id, (_, level, when, _meaning) in table.items():
        assert level == ("error" if ".E" in check_id else "warning"), check_id
        assert ("--deploy" in when) == code[check_id], f"{check_id}: 'When' says {when!r}"


def test_deployment_md_lists_what_check_deploy_reports_on_a_default_site(settings):
    """The defaults a new site has: no separate key secret, issuer not pinned, local-memory cache."""
    from django.core.checks import run_checks

    settings.DEBUG = False
    settings.OAUTH_SERVER = {}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.SECURE_PROXY_SSL_HEADER = None
    settings.SECURE_SSL_REDIRECT = False
    # The example settings keep database connections (CONN_MAX_AGE 60); the test database need not.
    with mock.patch.dict(settings.DATABASES["default"], {"CONN_MAX_AGE": 60}):
        reported = {
            m.id
            for m in run_checks(include_deployment_checks=True)
            if m.id.startswith(("oauth_server.", "oauth2_provider."))
        }
    documented = set(_table_rows((DOCS / "deployment.md").read_text(), "## `check --deploy`"))
    assert reported == documented


@pytest.mark.django_db
def test_commands_md_json_example_has_the_keys_create_oauth_client_prints():
    """The example was pasted from a real run; a key added to the command must reach the docs."""
    import json
    from io import StringIO

    from django.core.management import call_command

    from tests.factories import ScopeFactory

    text = (DOCS / "commands.md").read_text()
    example = json.loads(
        re.search(r"```json\n(\{.*?\})\n```", text.split("# a service", 1)[1], re.S).group(1)
    )
    ScopeFactory(name="reports:read")
    out = StringIO()
    call_command(
        "create_oauth_client",
        *("--name", "Reports", "--type", "confidential", "--grant-type", "client_credentials"),
        *("--scope", "reports:read", "--audience", "https://api.example.com", "--json"),
        stdout=out,
    )
    printed = json.loads(out.getvalue())
    assert list(example) == list(printed)
    assert {k: v for k, v in example.items() if k not in ("client_id", "client_secret")} == {
        k: v for k, v in printed.items() if k not in ("client_id", "client_secret")
    }


@pytest.mark.django_db
def test_management_api_works_without_rest_framework_in_installed_apps(client, settings):
    """docs/management-api.md says a site need not add "rest_framework" to INSTALLED_APPS."""
    from django.apps import apps
    from django.contrib.auth import get_user_model

    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "rest_framework"]
    assert not apps.is_installed("rest_framework")
    staff = get_user_model().objects.create_superuser("ops", password="x")
    client.force_login(staff)
    assert client.get("/oauth/api/clients/").status_code == 200
    assert client.get("/oauth/api/schema/").status_code == 200
    created = client.post(
        "/oauth/api/scopes/",
        {"name": "files:read", "description": "Read files"},
        content_type="application/json",
    )
    assert created.status_code == 201, created.content
    assert client.get("/oauth/api/nope/").status_code == 404


def test_security_md_names_every_check_of_checks_py():
    """docs/security.md's checks table once lagged behind the code (security review, issue 9)."""
    text = (DOCS / "security.md").read_text().split("## System checks", 1)[1].split("\n## ", 1)[0]
    missing = []
    for check_id in _checks_in_code():
        app, code = check_id.split(".")
        if f"`{check_id}`" not in text and f"`{code}`" not in text:
            missing.append(check_id)
    assert not missing, f"docs/security.md's checks table lacks {missing}"
