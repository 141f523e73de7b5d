"""The Demo Web App is a third-party client: its relying-party code (example_project/demo/rp.py) imports
nothing of the authorization server, and its views reach the provider's side through one module only."""

from __future__ import annotations

import ast
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "example_project" / "demo"
PROVIDER = ("oauth_server", "oauth2_provider", "oauthlib", "example_project")


def imported_modules(path: Path) -> list[str]:
    """Every module a file imports, relative ones written with their leading dots (``.seed``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            if node.module is None:  # from . import seed
                found += [base + alias.name for alias in node.names]
            else:
                found.append(base)
    return found


def test_rp_module_imports_nothing_of_the_server_or_the_demo():
    modules = imported_modules(DEMO / "rp.py")
    assert "requests" in modules  # it talks over HTTP ...
    provider = [m for m in modules if m.startswith(".") or m.split(".")[0] in PROVIDER]
    assert provider == []  # ... and imports nothing of oauth_server, its models or the demo's seed


def test_client_views_reach_the_provider_side_only_through_client_registration():
    modules = imported_modules(DEMO / "client_views.py")
    assert [m for m in modules if m.split(".")[0] in PROVIDER] == []
    assert {m for m in modules if m.startswith(".")} == {".client_registration", ".rp", ".site"}
