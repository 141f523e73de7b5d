"""Node.js client libraries for the interoperability tests (docs/interop.md).

The packages are pinned in ``tests/e2e/node/package.json`` and ``package-lock.json``; ``.ci/run`` runs
``npm ci`` there. ``require_node_packages()`` does the same when ``node_modules`` is missing or holds
other versions than the lock file (a checkout where only the README's test command ran), once per
test run, under a file lock so that parallel workers do not install over each other. Without Node.js
or npm, or when ``npm ci`` fails, the calling test skips, except under ``CI`` where it fails.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent / "node"
INSTALL_TIMEOUT = 300  # seconds for npm ci (three small packages; a slow registry)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, the Node.js interoperability tests must run: {reason}", pytrace=False)
    pytest.skip(reason)


def _installed() -> bool:
    """Every package of the lock file is in node_modules at the locked version."""
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    for path, entry in lock["packages"].items():
        if not path:
            continue
        manifest = NODE_DIR / path / "package.json"
        try:
            if json.loads(manifest.read_text())["version"] != entry["version"]:
                return False
        except (OSError, ValueError, KeyError):
            return False
    return True


def require_node_packages() -> str:
    """The ``node`` executable, with the locked packages installed in ``tests/e2e/node``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _unavailable("Node.js and npm are not installed (apt-get install nodejs npm)")
    with (NODE_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed():
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT,
            )
            if result.returncode != 0 or not _installed():
                output = f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
                _unavailable(f"npm ci in {NODE_DIR} failed:\n{output}")
    return node
