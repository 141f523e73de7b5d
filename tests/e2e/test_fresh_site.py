"""The README's "Add it to your site", done by a machine: a new project, the package from its wheel.

Builds the sdist and the wheel (``python -m build``), checks what each contains, installs the wheel
with its dependencies into a plain new virtualenv (no system or shared site-packages), runs
``django-admin startproject``, appends the settings and URL blocks that README.md shows, runs the
README's commands, serves the site with gunicorn and drives it over HTTP with ``requests``: the
sign-in page, the consent form, the code page, the README's token exchange and UserInfo calls, and
its client-credentials call.

Everything it applies or runs is read from README.md (the code blocks after the
``<!-- fresh-site: ... -->`` markers), so the test fails when the README drifts. Two substitutions
only: the README's ``http://127.0.0.1:8000`` becomes the test server's address, and
``createsuperuser`` runs with ``--noinput`` (the account comes from the environment). The README's
``curl`` commands are run by ``requests`` with the same method, credentials, fields and URL.

It needs ``build`` (requirements/test.txt) and PyPI or pip's cache for the new virtualenv. Without
``build`` it skips, except under ``CI``. It does not depend on the test database: ``python -m tests``
runs it on its SQLite pass only (marker ``once``, tests/conftest.py).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from tests.e2e.conftest import REPO, _free_port

pytestmark = [pytest.mark.live, pytest.mark.once]

README = REPO / "README.md"
README_ORIGIN = "http://127.0.0.1:8000"
USERNAME, PASSWORD = "newuser", "a-new-users-password-123"
# Left out of the copy the sdist is built from: what a checkout may hold that is not source.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "dist", "build", "*.egg-info", "__pycache__", "*.py[cod]", "*.sqlite3",
    ".pytest_cache", ".ruff_cache", ".ci", ".helpers", "node_modules",
    ".cache",  # benchmarks/.cache: plain DOT's virtualenv (benchmarks/http_bench.py)
)  # fmt: skip
WHEEL_MUST_HAVE = [
    "oauth_server/__init__.py",
    "oauth_server/urls.py",
    "oauth_server/accounts_urls.py",
    "oauth_server/wellknown_urls.py",
    "oauth_server/migrations/0001_initial.py",
    "oauth_server/templates/oauth_server/base.html",
    "oauth_server/templates/oauth_server/login.html",
    "oauth_server/templates/oauth_server/consent.html",
    "oauth_server/templates/oauth_server/code.html",
    "oauth_server/templates/oauth_server/logged_out.html",
    "oauth_server/static/oauth_server/oauth_server.css",
    "oauth_server/locale/fr/LC_MESSAGES/django.po",
    "oauth_server/locale/fr/LC_MESSAGES/django.mo",
]
SDIST_MUST_HAVE = [
    "README.md",
    "pyproject.toml",
    "manage.py",
    "requirements/base.txt",
    "requirements/test.txt",
    "docs/integration.md",
    "example_project/settings.py",
    "example_project/demo/seed.py",
    "tests/e2e/test_fresh_site.py",
    *WHEEL_MUST_HAVE,
]


# --- README.md --------------------------------------------------------------------------------------
def readme_block(name: str) -> str:
    """The code block right after ``<!-- fresh-site: NAME -->`` in README.md."""
    match = re.search(
        rf"<!-- fresh-site: {re.escape(name)} -->\s*```[a-z]*\n(.*?)\n```", README.read_text(), re.DOTALL
    )
    assert match, f"README.md has no code block marked <!-- fresh-site: {name} -->"
    return match.group(1) + "\n"


def shell_lines(block: str) -> list[str]:
    """The block's commands, backslash continuations joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def localize(text: str, base_url: str) -> str:
    """The README's runserver address -> the test server's (plain and URL-encoded)."""
    encoded_readme = README_ORIGIN.replace(":", "%3A").replace("/", "%2F")
    encoded_here = base_url.replace(":", "%3A").replace("/", "%2F")
    return text.replace(README_ORIGIN, base_url).replace(encoded_readme, encoded_here)


def substitute(word: str, variables: dict[str, str]) -> str:
    word = re.sub(r"\$\{?([A-Z_]+)\}?", lambda m: variables[m.group(1)], word)
    return word.replace("THE_CODE", variables.get("THE_CODE", "THE_CODE"))


def curl(command: str, variables: dict[str, str]) -> requests.Response:
    """Run a README ``curl`` line (``-s``, ``-u``, ``-d``, ``-H`` and a URL) with requests."""
    words = [substitute(word, variables) for word in shlex.split(command)]
    assert words[0] == "curl", command
    data: list[tuple[str, str]] = []
    headers: dict[str, str] = {}
    auth = url = None
    args = iter(words[1:])
    for word in args:
        if word == "-s":
            continue
        if word == "-u":
            auth = tuple(next(args).split(":", 1))
        elif word == "-d":
            key, _, value = next(args).partition("=")
            data.append((key, value))
        elif word == "-H":
            key, _, value = next(args).partition(":")
            headers[key.strip()] = value.strip()
        elif word.startswith("http"):
            url = word
        else:
            raise AssertionError(f"the test does not know curl's {word!r} (README: {command})")
    assert url, command
    http = session()
    if data:
        return http.post(url, data=data, auth=auth, headers=headers, timeout=30)
    return http.get(url, auth=auth, headers=headers, timeout=30)


# --- HTTP -------------------------------------------------------------------------------------------
def session() -> requests.Session:
    http = requests.Session()
    http.trust_env = False  # no proxy from the environment
    return http


class Forms(HTMLParser):
    """The ``<input>`` fields of a page's forms and the text of its ``<code id=...>`` elements."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.inputs: dict[str, str] = {}
        self.codes: dict[str, str] = {}
        self.stylesheets: list[str] = []
        self._code_id: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if tag == "input" and attributes.get("name") and attributes.get("type") in ("hidden", None, ""):
            self.inputs[attributes["name"]] = attributes.get("value", "")
        elif tag == "code" and attributes.get("id"):
            self._code_id = attributes["id"]
            self.codes[self._code_id] = ""
        elif tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(attributes.get("href", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "code":
            self._code_id = None

    def handle_data(self, data: str) -> None:
        if self._code_id:
            self.codes[self._code_id] += data


# --- the pieces -------------------------------------------------------------------------------------
def run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)  # noqa: S603
    assert result.returncode == 0, (
        f"{' '.join(cmd)} exited with {result.returncode}\n"
        f"--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-5000:]}"
    )
    return result.stdout + result.stderr


def pinned(requirements: Path, name: str) -> str:
    for line in requirements.read_text().splitlines():
        if line.split("==")[0].strip().lower() == name.lower():
            return line.strip()
    raise AssertionError(f"{name} is not pinned in {requirements}")


@pytest.fixture
def dists(tmp_path: Path) -> dict[str, Path]:
    """The sdist and the wheel, built with ``python -m build`` from a copy of the source tree."""
    try:
        import build  # noqa: F401
    except ImportError:
        reason = "the `build` package is missing (pip install -r requirements/test.txt)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, the packaging test must run: {reason}")
        pytest.skip(reason)
    work = tmp_path / "dists"
    source = work / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    run([sys.executable, "-m", "build", "--outdir", str(work / "dist"), str(source)], cwd=work)
    (wheel,) = (work / "dist").glob("*.whl")
    (sdist,) = (work / "dist").glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def check_wheel(path: Path) -> None:
    """Only oauth_server (with its templates, static files, catalogs, migrations) and its dist-info."""
    with zipfile.ZipFile(path) as wheel:
        names = wheel.namelist()
        dist_info = next(name.split("/")[0] for name in names if name.endswith(".dist-info/METADATA"))
        metadata = wheel.read(f"{dist_info}/METADATA").decode()
        top_level = wheel.read(f"{dist_info}/top_level.txt").decode().split()
    strays = [name for name in names if not name.startswith(("oauth_server/", f"{dist_info}/"))]
    assert strays == [], "the wheel installs more than oauth_server"
    assert top_level == ["oauth_server"]
    assert [name for name in WHEEL_MUST_HAVE if name not in names] == []
    assert not [name for name in names if "__pycache__" in name or name.endswith((".pyc", ".sqlite3"))]
    migrations = [name for name in names if re.match(r"oauth_server/migrations/\d{4}_\w+\.py$", name)]
    source_migrations = sorted((REPO / "oauth_server/migrations").glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert len(migrations) == len(source_migrations)
    # README.md is the long description, as Markdown (what PyPI renders).
    headers, _, description = metadata.partition("\n\n")
    assert "Description-Content-Type: text/markdown" in headers
    assert description.strip() == README.read_text().strip()


def check_sdist(path: Path) -> None:
    """The source: the app, docs, demo site, tests and requirements; nothing of a local checkout."""
    with tarfile.open(path) as sdist:
        names = [name.split("/", 1)[1] for name in sdist.getnames() if "/" in name]
    assert [name for name in SDIST_MUST_HAVE if name not in names] == []
    assert not [name for name in names if "__pycache__" in name or name.endswith((".pyc", ".sqlite3"))]
    assert not [name for name in names if name.startswith((".venv/", ".git/", ".ci/"))]


@contextmanager
def fresh_site(wheel: Path, work: Path) -> Iterator[dict]:
    """A new project in a plain virtualenv with the wheel, set up as README.md says, under gunicorn."""
    work.mkdir()
    venv = work / "venv"
    # A plain virtualenv (no system or shared site-packages). It gets no pip of its own: the suite's
    # pip installs into it (``--python``), which saves bootstrapping pip (slow on a busy machine).
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work)
    python, bin_dir = venv / "bin" / "python", venv / "bin"
    # The wheel and its dependencies, held to the versions the suite is tested with; and gunicorn.
    run(
        [
            sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
            "--disable-pip-version-check", "-c", str(REPO / "requirements/base.txt"),
            str(wheel), pinned(REPO / "requirements/test.txt", "gunicorn"),
        ],
        cwd=work,
        timeout=480,
    )  # fmt: skip

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONDONTWRITEBYTECODE="1",
        NO_PROXY="*",
        no_proxy="*",
        DJANGO_SUPERUSER_USERNAME=USERNAME,
        DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        DJANGO_SUPERUSER_EMAIL="newuser@example.com",
    )
    # The app comes from the venv, and nothing of the checkout (example_project) is importable there.
    probe = run(
        [str(python), "-c", "import oauth_server, importlib.util as u; "
         "print(oauth_server.__file__); print(u.find_spec('example_project'))"],
        cwd=work, env=env,
    ).split()  # fmt: skip
    assert probe[0].startswith(str(venv)) and probe[1] == "None", probe

    run([str(bin_dir / "django-admin"), "startproject", "mysite"], cwd=work, env=env)
    site = work / "mysite"
    for name in ("settings.py", "urls.py"):
        target = site / "mysite" / name
        target.write_text(target.read_text() + "\n" + readme_block(name))

    clients: dict[str, dict[str, str]] = {}
    server: subprocess.Popen | None = None
    log_path = work / "gunicorn.log"

    def manage(line: str) -> None:
        nonlocal server
        words = shlex.split(localize(line, base_url))
        assert words[:2] == ["python", "manage.py"], f"the test does not know this README step: {line}"
        command = words[2]
        if command == "runserver":
            server = start_gunicorn(bin_dir, site, env, port, log_path)
            return
        if command == "createsuperuser":
            words.append("--noinput")  # the account comes from DJANGO_SUPERUSER_* above
        output = run([str(python), *words[1:]], cwd=site, env=env)
        if command == "create_oauth_client":
            printed = dict(re.findall(r"^\s+(client_id|client_secret)\s+(\S+)$", output, re.MULTILINE))
            clients[printed["client_id"]] = printed

    curls: list[str] = []
    for line in shell_lines(readme_block("commands")) + shell_lines(readme_block("machine")):
        if line.startswith("curl "):
            curls.append(line)
        else:
            manage(line)
    assert server is not None, "the README's commands do not start the server"
    try:
        yield {
            "base_url": base_url,
            "clients": clients,
            "curls": curls,
            "site": site,
            "python": python,
            "env": env,
            "log": log_path,
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def start_gunicorn(bin_dir: Path, site: Path, env: dict, port: int, log_path: Path) -> subprocess.Popen:
    """``runserver`` of the README, as a production-like server: gunicorn on the project's WSGI app."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            [str(bin_dir / "gunicorn"), "mysite.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
             "--access-logfile", "-", "--error-logfile", "-"],
            cwd=site, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    http = session()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"gunicorn exited:\n{log_path.read_text()[-5000:]}"
        try:
            http.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=10)
            return process
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"gunicorn did not answer within 30s:\n{log_path.read_text()[-5000:]}")


def pkce() -> tuple[str, str]:
    """As the README's openssl lines: 32 random bytes in hex, and its S256 challenge."""
    verifier = secrets.token_hex(32)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def check_code_flow(fresh_site: dict) -> None:
    """Sign-in, consent, the code page, the README's token exchange and UserInfo, over HTTP."""
    base_url = fresh_site["base_url"]
    app = fresh_site["clients"]["my-app"]
    verifier, challenge = pkce()
    variables = {
        "CLIENT_SECRET": app["client_secret"],
        "CODE_VERIFIER": verifier,
        "CODE_CHALLENGE": challenge,
    }
    authorize_block = shell_lines(localize(readme_block("authorize"), base_url))
    (echo,) = [line for line in authorize_block if line.startswith("echo ")]
    authorize_url = substitute(shlex.split(echo)[1], variables)
    assert authorize_url.startswith(f"{base_url}/oauth/authorize/?")

    browser = session()
    # Not signed in: the authorization endpoint sends the browser to Django's default LOGIN_URL,
    # where the app's own sign-in page answers (the 500/404 of issue 10 item 1 is gone).
    to_login = browser.get(authorize_url, allow_redirects=False)
    assert to_login.status_code == 302, to_login.status_code
    login_url = urljoin(base_url, to_login.headers["Location"])
    assert urlsplit(login_url).path == "/accounts/login/"
    login_page = browser.get(login_url)
    assert login_page.status_code == 200, (login_page.status_code, login_page.text[-2000:])
    assert 'class="oas-card oas-login"' in login_page.text
    assert "My App" in login_page.text  # "to continue to My App"
    assert "/static/oauth_server/oauth_server.css" in Forms(login_page.text).stylesheets
    form = Forms(login_page.text).inputs
    signed_in = browser.post(
        login_url,
        data={**form, "username": USERNAME, "password": PASSWORD},
        headers={"Referer": login_url},
        allow_redirects=False,
    )
    assert signed_in.status_code == 302, (signed_in.status_code, signed_in.text[-2000:])
    assert urljoin(base_url, signed_in.headers["Location"]) == authorize_url

    consent = browser.get(authorize_url, allow_redirects=False)
    assert consent.status_code == 200, (consent.status_code, consent.text[-2000:])
    assert 'class="oas-card oas-consent"' in consent.text
    fields = Forms(consent.text).inputs
    approved = browser.post(
        f"{base_url}/oauth/authorize/",
        data={**fields, "allow": "Allow"},
        headers={"Referer": authorize_url},
        allow_redirects=False,
    )
    assert approved.status_code == 302, (approved.status_code, approved.text[-2000:])
    landing = approved.headers["Location"]
    assert landing.startswith(f"{base_url}/oauth/code/?")
    sent = {key: values[0] for key, values in parse_qs(urlsplit(landing).query).items()}
    assert sent["state"] == "xyz" and sent["iss"] == f"{base_url}/oauth"

    code_page = browser.get(landing)
    assert code_page.status_code == 200, (code_page.status_code, code_page.text[-2000:])
    shown = Forms(code_page.text)
    assert shown.codes["code"] == sent["code"]
    assert f"-d code={sent['code']}" in shown.codes["curl"]

    # The README's exchange and UserInfo calls, with the code the page showed.
    variables["THE_CODE"] = shown.codes["code"]
    exchange, userinfo = shell_lines(localize(readme_block("exchange"), base_url))
    tokens = curl(exchange, variables)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "Bearer" and body["refresh_token"] and body["id_token"]
    assert set(body["scope"].split()) == {"openid", "profile"}
    variables["ACCESS_TOKEN"] = body["access_token"]
    claims = curl(userinfo, variables)
    assert claims.status_code == 200, claims.text
    assert claims.json()["sub"] and claims.json().get("preferred_username") in (USERNAME, None)

    # The code is good once: the page now says so and shows it no more.
    again = browser.get(landing)
    assert again.status_code == 400 and sent["code"] not in again.text


def check_client_credentials(fresh_site: dict) -> None:
    (call,) = [line for line in fresh_site["curls"] if "client_credentials" in line]
    service = fresh_site["clients"]["reports-job"]
    answer = curl(localize(call, fresh_site["base_url"]), {"REPORTS_SECRET": service["client_secret"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["scope"] == "reports:read"
    assert answer.json()["access_token"]


def check_system_checks(fresh_site: dict) -> None:
    output = run(
        [str(fresh_site["python"]), "manage.py", "check"], cwd=fresh_site["site"], env=fresh_site["env"]
    )
    assert "oauth_server." not in output, output


def test_a_new_site_set_up_as_the_readme_says(dists, tmp_path):
    """One test, so that ``-n 2`` builds and installs once (a module fixture would run per worker)."""
    check_wheel(dists["wheel"])
    check_sdist(dists["sdist"])
    with fresh_site(dists["wheel"], tmp_path / "site") as site:
        try:
            check_code_flow(site)
            check_client_credentials(site)
            check_system_checks(site)
        except AssertionError as error:
            log = site["log"].read_text(errors="replace")[-4000:]
            raise AssertionError(f"{error}\n--- gunicorn log (last lines) ---\n{log}") from error
