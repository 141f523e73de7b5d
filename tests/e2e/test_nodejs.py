"""The Node.js packages' skip-or-fail rule and install check (tests/e2e/nodejs.py)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.e2e import nodejs


@pytest.fixture
def no_node(monkeypatch):
    monkeypatch.setattr(nodejs.shutil, "which", lambda name: None)


def test_without_node_the_test_skips(no_node, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Node.js and npm are not installed"):
        nodejs.require_node_packages()


def test_without_node_under_ci_the_test_fails(no_node, monkeypatch):
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        nodejs.require_node_packages()


def test_a_failing_npm_ci_fails_under_ci(monkeypatch, tmp_path):
    (tmp_path / "package-lock.json").write_text(
        json.dumps({"packages": {"": {}, "node_modules/openid-client": {"version": "6.8.9"}}})
    )
    monkeypatch.setattr(nodejs, "NODE_DIR", tmp_path)
    monkeypatch.setattr(nodejs.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(
        nodejs.subprocess,
        "run",
        lambda *args, **kwargs: subprocess.CompletedProcess(args, 1, "", "npm ERR! network"),
    )
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="npm ci .* failed"):
        nodejs.require_node_packages()


def test_installed_compares_node_modules_with_the_lock_file(monkeypatch, tmp_path):
    (tmp_path / "package-lock.json").write_text(
        json.dumps({"packages": {"": {}, "node_modules/openid-client": {"version": "6.8.9"}}})
    )
    monkeypatch.setattr(nodejs, "NODE_DIR", tmp_path)
    assert not nodejs._installed()  # nothing installed
    package = tmp_path / "node_modules" / "openid-client"
    package.mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"version": "6.0.0"}))
    assert not nodejs._installed()  # another version
    (package / "package.json").write_text(json.dumps({"version": "6.8.9"}))
    assert nodejs._installed()


def test_the_lock_file_pins_openid_client():
    lock = json.loads((nodejs.NODE_DIR / "package-lock.json").read_text())
    manifest = json.loads((nodejs.NODE_DIR / "package.json").read_text())
    pinned = manifest["dependencies"]["openid-client"]
    assert pinned[0].isdigit()  # an exact version, not a range
    assert lock["packages"]["node_modules/openid-client"]["version"] == pinned
