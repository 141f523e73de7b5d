"""The demo site as a new user meets it: started with the documented commands, used over real HTTP.

The live tests run against ``demo_site`` (conftest.py: ``migrate``, ``seed_demo --json`` and
``runserver`` as subprocesses, on the demo's own SQLite file) with independent client software:
Authlib as the OAuth client, ``curl`` for the README's and seed_demo's commands, and a plain
``requests`` browser that posts the real login and consent forms. The last tests check the
``seed_demo`` and ``demo`` commands in process (idempotence, repair, arguments).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import sqlite3
import subprocess
import time
from html import unescape
from io import StringIO
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from jwcrypto import jwk, jwt

from example_project.demo import seed
from example_project.demo.management.commands import demo as demo_command
from example_project.demo.models import File
from oauth_server.models import Client, Scope
from tests.e2e.browser import Browser
from tests.e2e.conftest import MANAGE, REPO

live = pytest.mark.live

WEB_APP, SPA, REPORTS, FILES_API = "demo-web-app", "demo-spa", "reports-service", "files-api"


# --- helpers ---------------------------------------------------------------------------------------
def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def oauth_session(site, client_id: str, **kwargs) -> OAuth2Session:
    """An Authlib client configured from what seed_demo printed, as a developer would."""
    client = site.client(client_id)
    session = OAuth2Session(client["client_id"], client["client_secret"], **kwargs)
    session.trust_env = False
    return session


def verified_claims(site, token: str, typ: str) -> dict:
    """Verify a JWT against the JWKS fetched over HTTP (not the server's own code)."""
    keyset = jwk.JWKSet.from_json(http().get(site.endpoints["jwks"]).text)
    parsed = jwt.JWT(jwt=token, key=keyset, algs=["RS256", "ES256", "EdDSA"], expected_type="JWS")
    assert parsed.token.jose_header["typ"] == typ
    return json.loads(parsed.claims)


def code_flow(
    site, username: str = "alice", *, scope: str = "openid profile email offline_access files:read"
):
    """Authorization code + PKCE S256 with Authlib; returns (session, token, nonce)."""
    client = site.client(WEB_APP)
    session = oauth_session(
        site,
        WEB_APP,
        scope=scope,
        redirect_uri=client["redirect_uris"][0],
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier, nonce = generate_token(48), generate_token(16)
    url, state = session.create_authorization_url(
        site.endpoints["authorization"], code_verifier=verifier, nonce=nonce
    )
    assert "code_challenge_method=S256" in url
    location = Browser(site.base_url).authorize(url, username, password=site.password)
    params = parse_qs(urlsplit(location).query)
    assert location.startswith(client["redirect_uris"][0] + "?")
    assert params["state"] == [state]
    assert params["iss"] == [site.issuer]  # RFC 9207
    token = session.fetch_token(
        site.endpoints["token"], authorization_response=location, code_verifier=verifier
    )
    return session, token, nonce


def introspect(site, client_id: str, token: str) -> dict:
    response = oauth_session(site, client_id).introspect_token(
        site.endpoints["introspection"], token=token, token_type_hint="access_token"
    )
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return response.json()


def client_credentials_token(site, method: str) -> dict:
    session = oauth_session(site, REPORTS, scope="reports:read", token_endpoint_auth_method=method)
    return session.fetch_token(site.endpoints["token"], grant_type="client_credentials")


# --- the home page ---------------------------------------------------------------------------------
@live
def test_home_page_explains_the_roles_and_links_everything(demo_site):
    page = http().get(demo_site.base_url + "/")
    assert page.status_code == 200
    html = page.text
    for text in (
        "Resource owner",
        "Authorization server",
        "Resource server",
        "Try the authorization code flow",
    ):
        assert text in html
    for client in demo_site.data["clients"]:
        assert client["client_id"] in html
    links = set(re.findall(r'href="([^"]+)"', html))
    assert {"/demo/start/", "/admin/", "/oauth/.well-known/openid-configuration"} <= links
    assert demo_site.endpoints["jwks"] in links
    assert any(link.startswith("/accounts/login/") for link in links)
    apis = demo_site.data["apis"]
    assert set(apis.values()) <= links  # the roles: client app, the APIs, connected apps, schema
    for link in links:
        url = link if link.startswith("http") else demo_site.base_url + link
        if link.startswith("/demo/start"):
            continue  # starts a flow; test below
        response = http().get(url)
        if url in (apis["files_api"], apis["reports_api"], apis["my_report"]):
            # An API opened in a browser: no token, so the RFC 6750 challenge, in JSON.
            assert response.status_code == 401, link
            # RFC 9728 5.1: the challenge names the API's metadata, at the path-inserted URL.
            metadata = url.replace(
                demo_site.base_url, demo_site.base_url + "/.well-known/oauth-protected-resource"
            )
            assert response.headers["WWW-Authenticate"] == (
                f'Bearer realm="api", resource_metadata="{metadata}", '
                f'DPoP realm="api", algs="ES256 RS256 PS256 EdDSA", resource_metadata="{metadata}"'
            )
        elif url == apis["management_api_schema"]:
            assert response.status_code in (401, 403), link  # staff or an admin-scope token only
        else:
            assert response.status_code == 200, link  # the admin answers with its login page
    assert "reports:read" in html and apis["reports_api"] in unescape(html)
    assert "demo-password-123" in html and "Demo only" in html


@live
def test_the_mcp_server_challenges_and_publishes_its_metadata_under_runserver(demo_site):
    """/mcp/ on the real server (runserver, WSGI): the 401 names the scope and the RFC 9728 document,
    and that document names the demo's issuer; the SDK client's own test is tests/test_demo_mcp.py."""
    mcp = demo_site.base_url + "/mcp/"
    metadata = demo_site.base_url + "/.well-known/oauth-protected-resource/mcp/"
    response = http().post(mcp, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="api", scope="mcp:tools", resource_metadata="{metadata}", '
        f'DPoP realm="api", scope="mcp:tools", algs="ES256 RS256 PS256 EdDSA", resource_metadata="{metadata}"'
    )
    document = http().get(metadata)
    assert document.status_code == 200
    assert document.json()["resource"] == mcp
    assert document.json()["authorization_servers"] == [demo_site.issuer]
    assert "mcp:tools" in document.json()["scopes_supported"]
    assert document.headers["Cache-Control"].startswith("public, max-age=")


@live
def test_try_the_code_flow_from_the_home_page(demo_site):
    """The server-side Demo Web App: start, sign in, consent, and its page shows the tokens."""
    browser = Browser(demo_site.base_url)
    location = browser.authorize("/demo/start/", "bob", password=demo_site.password)
    assert location.startswith(demo_site.base_url + "/demo/callback?")
    page = browser.get(location)
    assert page.status_code == 200, page.text[:2000]
    assert "received tokens" in page.text
    assert 'role="alert"' not in page.text  # no nonce / aud / iss problem
    id_claims = json.loads(
        unescape(re.search(r'id="id-token-claims"><code>(.*?)</code>', page.text, re.S)[1])
    )
    assert id_claims["name"] == "Bob Kahn" and id_claims["aud"] == WEB_APP
    at_claims = json.loads(
        unescape(re.search(r'id="access-token-claims"><code>(.*?)</code>', page.text, re.S)[1])
    )
    assert at_claims["aud"] == demo_site.base_url + "/api/files/"
    assert at_claims["client_id"] == WEB_APP and "files:read" in at_claims["scope"].split()
    userinfo = json.loads(unescape(re.search(r'id="userinfo"><code>(.*?)</code>', page.text, re.S)[1]))
    assert userinfo["email"] == "bob@example.com" and userinfo["sub"] == id_claims["sub"]

    replay = browser.get(location)  # the state was good for one callback: the code is not spent again
    assert "CODE=" in replay.text and "received tokens" not in replay.text


@live
def test_demo_callback_refuses_bad_responses(demo_site):
    browser = Browser(demo_site.base_url)
    denied = browser.authorize(
        "/demo/start/?prompt=consent", "alice", password=demo_site.password, allow=False
    )
    page = browser.get(denied)
    assert page.status_code == 400 and "access_denied" in page.text

    mixed_up = browser.get("/demo/callback?code=abc&state=s&iss=https://evil.example/oauth")
    assert mixed_up.status_code == 400 and "invalid_issuer" in mixed_up.text

    no_code = browser.get("/demo/callback?state=s")
    assert no_code.status_code == 400 and "invalid_request" in no_code.text

    hostile = browser.get("/demo/callback", params={"code": "<script>alert(1)</script>", "state": "x"})
    assert hostile.status_code == 200
    assert "<script>alert(1)" not in hostile.text and "&lt;script&gt;" in hostile.text


# --- Authlib: authorization code + PKCE, refresh, userinfo --------------------------------------------
@live
def test_authlib_code_flow_with_pkce_gets_verifiable_tokens(demo_site):
    session, token, nonce = code_flow(demo_site, "alice")
    assert token["token_type"].lower() == "bearer"
    assert set(token["scope"].split()) == {"openid", "profile", "email", "offline_access", "files:read"}
    assert token["refresh_token"]

    id_claims = verified_claims(demo_site, token["id_token"], "JWT")
    assert id_claims["iss"] == demo_site.issuer
    assert id_claims["aud"] == WEB_APP
    assert id_claims["nonce"] == nonce
    assert id_claims["email"] == "alice@example.com" and id_claims["name"] == "Alice Liddell"

    at_claims = verified_claims(demo_site, token["access_token"], "at+jwt")
    assert at_claims["aud"] == demo_site.base_url + "/api/files/"
    assert at_claims["sub"] == id_claims["sub"] and at_claims["client_id"] == WEB_APP

    for method in ("GET", "POST"):
        info = session.request(method, demo_site.endpoints["userinfo"])
        assert info.status_code == 200, info.text
        assert info.json() == {
            "sub": id_claims["sub"],
            "name": "Alice Liddell",
            "given_name": "Alice",
            "family_name": "Liddell",
            "preferred_username": "alice",
            "email": "alice@example.com",
            "email_verified": False,
            "updated_at": info.json()["updated_at"],
        }


@live
def test_authlib_refresh_rotates_and_the_old_token_is_refused(demo_site):
    session, token, _ = code_flow(demo_site, "alice")
    first_refresh = token["refresh_token"]
    refreshed = session.refresh_token(demo_site.endpoints["token"], refresh_token=first_refresh)
    assert refreshed["refresh_token"] != first_refresh
    assert refreshed["access_token"] != token["access_token"]

    with pytest.raises(OAuthError) as reuse:
        session.refresh_token(demo_site.endpoints["token"], refresh_token=first_refresh)
    assert reuse.value.error == "invalid_grant"
    # Reuse of a rotated token revokes the family (RFC 9700 4.14.2): the new one is dead too.
    with pytest.raises(OAuthError) as family:
        session.refresh_token(demo_site.endpoints["token"], refresh_token=refreshed["refresh_token"])
    assert family.value.error == "invalid_grant"


# --- Authlib: client credentials ---------------------------------------------------------------------
@live
@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_credentials(demo_site, method):
    token = client_credentials_token(demo_site, method)
    assert token["scope"] == "reports:read" and "refresh_token" not in token
    claims = verified_claims(demo_site, token["access_token"], "at+jwt")
    assert claims["aud"] == demo_site.base_url + "/api/reports/"
    assert claims["sub"] == REPORTS and claims["client_id"] == REPORTS


@live
def test_client_credentials_with_a_wrong_secret_is_invalid_client(demo_site):
    session = OAuth2Session(REPORTS, "not-the-secret-" * 3, scope="reports:read")
    session.trust_env = False
    with pytest.raises(OAuthError) as error:
        session.fetch_token(demo_site.endpoints["token"], grant_type="client_credentials")
    assert error.value.error == "invalid_client"


# --- introspection and revocation -------------------------------------------------------------------
@live
def test_introspection_by_the_owner_and_by_the_api_the_token_is_for(demo_site):
    _, token, _ = code_flow(demo_site, "bob", scope="openid files:read")
    access = token["access_token"]

    own = introspect(demo_site, WEB_APP, access)
    assert own["active"] is True and own["client_id"] == WEB_APP
    assert set(own["scope"].split()) == {"openid", "files:read"}

    api = introspect(demo_site, FILES_API, access)  # files-api serves the token's audience
    assert api["active"] is True and api["client_id"] == WEB_APP

    # Anyone else learns nothing: not another client, not an API the token is not for.
    assert introspect(demo_site, REPORTS, access) == {"active": False}
    machine = client_credentials_token(demo_site, "client_secret_basic")["access_token"]
    assert introspect(demo_site, FILES_API, machine) == {"active": False}
    assert introspect(demo_site, REPORTS, machine)["active"] is True


@live
def test_revocation_then_introspection_says_inactive(demo_site):
    session, token, _ = code_flow(demo_site, "alice")
    revoke_url = demo_site.endpoints["revocation"]

    response = session.revoke_token(revoke_url, token=token["access_token"], token_type_hint="access_token")
    assert response.status_code == 200
    assert introspect(demo_site, WEB_APP, token["access_token"]) == {"active": False}
    assert introspect(demo_site, FILES_API, token["access_token"]) == {"active": False}
    assert session.get(demo_site.endpoints["userinfo"]).status_code == 401

    response = session.revoke_token(revoke_url, token=token["refresh_token"], token_type_hint="refresh_token")
    assert response.status_code == 200
    with pytest.raises(OAuthError) as error:
        session.refresh_token(demo_site.endpoints["token"], refresh_token=token["refresh_token"])
    assert error.value.error == "invalid_grant"


# --- the four roles together: the Demo Web App, the files and reports APIs, Connected apps ------------
def _element(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:pre|ul|p|strong|code|div)>', html, re.S)
    assert match, f"no #{element_id} on the page:\n{html[:3000]}"
    return unescape(re.sub(r"<[^>]+>", "", match[1])).strip()


def _file_names(html: str) -> set[str]:
    return {unescape(name) for name in re.findall(r'class="demo-file-name">([^<]*)<', html)}


def _csrf(html: str) -> str:
    return unescape(re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1])


@live
def test_demo_web_app_with_the_files_api_connected_apps_and_logout(demo_site):
    """The client app as a user meets it: sign in, consent, files through the API, refresh, revoke
    access in Connected apps (the API then answers 401), log out at the server."""
    base, apis = demo_site.base_url, demo_site.data["apis"]
    browser = Browser(base)
    web = browser.session
    assert 'id="signed-out"' in web.get(apis["client_app"]).text

    # start -> the server's authorization endpoint (from discovery), with PKCE, state and nonce
    start = web.get(base + "/demo/start/?prompt=consent", allow_redirects=False)
    authorize = start.headers["Location"]
    assert start.status_code == 302 and authorize.startswith(demo_site.endpoints["authorization"] + "?")
    params = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert params["code_challenge_method"] == "S256" and params["nonce"] and params["state"]
    assert "files:write" in params["scope"].split()
    # login (alice) -> consent
    to_login = web.get(authorize, allow_redirects=False)
    assert to_login.status_code == 302 and "/accounts/login/" in to_login.headers["Location"]
    back = browser.login(web.get(urljoin(base, to_login.headers["Location"])), "alice", demo_site.password)
    consent = web.get(urljoin(base, back.headers["Location"]), allow_redirects=False)
    assert consent.status_code == 200 and "Demo Web App" in consent.text
    assert "Create, change and delete your files" in consent.text  # files:write, described
    decided = browser._submit(consent, {"allow": "true"})
    callback = decided.headers["Location"]
    assert callback.startswith(base + "/demo/callback?")

    # callback: the app exchanges the code over HTTP, keeps the tokens in ITS session, shows them
    landed = web.get(callback, allow_redirects=False)
    assert landed.status_code == 303 and landed.headers["Location"] == "/demo/app/"
    app_cookie = next(c for c in web.cookies if c.name == "demo_web_app_session")
    assert app_cookie.path == "/demo/" and app_cookie.has_nonstandard_attr("HttpOnly")
    page = web.get(apis["client_app"])
    assert page.status_code == 200 and 'role="alert"' not in page.text, page.text[:3000]
    id_claims = json.loads(_element(page.text, "id-token-claims"))
    assert id_claims["name"] == "Alice Liddell" and id_claims["aud"] == WEB_APP
    assert id_claims["iss"] == demo_site.issuer and id_claims["nonce"] == params["nonce"]
    alice_files = {f["name"] for f in demo_site.data["files"] if f["owner"] == "alice"}
    bob_files = {f["name"] for f in demo_site.data["files"] if f["owner"] == "bob"}
    assert _element(page.text, "files-status") == "200"
    assert alice_files <= _file_names(page.text) and not bob_files & _file_names(page.text)

    # create a file through the client app (a POST to the files API with the access token)
    created = web.post(
        base + "/demo/app/files/",
        data={"csrfmiddlewaretoken": _csrf(page.text), "name": "from-the-e2e-test.txt", "content": "hi"},
        allow_redirects=False,
    )
    assert created.status_code == 303
    page = web.get(apis["client_app"])
    assert _element(page.text, "flash-status") == "201"
    assert "from-the-e2e-test.txt" in _file_names(page.text)

    # Refresh: new tokens, the refresh token rotated; the new access token works with the API
    before = _element(page.text, "access-token-preview"), _element(page.text, "refresh-token-preview")
    refreshed = web.post(base + "/demo/app/refresh/", data={"csrfmiddlewaretoken": _csrf(page.text)})
    page = refreshed
    assert page.status_code == 200 and 'id="rotation"' in page.text, page.text[:3000]
    after = _element(page.text, "access-token-preview"), _element(page.text, "refresh-token-preview")
    assert after[0] != before[0] and after[1] != before[1]
    assert "from a refresh" in page.text and _element(page.text, "files-status") == "200"
    assert "from-the-e2e-test.txt" in _file_names(page.text)

    # Connected apps (the server's page, alice's server session): revoke the Demo Web App
    connected = web.get(apis["connected_apps"])
    assert connected.status_code == 200 and "Demo Web App" in connected.text
    revoke_path = re.search(r'action="(/oauth/connected-apps/demo-web-app/revoke/)"', connected.text)[1]
    revoked = web.post(base + revoke_path, data={"csrfmiddlewaretoken": _csrf(connected.text)})
    assert revoked.status_code == 200 and "Demo Web App no longer has access" in revoked.text

    # the client still holds its tokens, but the files API refuses them at once
    page = web.get(apis["client_app"])
    assert _element(page.text, "files-status") == "401"
    assert 'error="invalid_token"' in _element(page.text, "files-www-authenticate")
    assert "revoked" in _element(page.text, "files-error")
    assert "from-the-e2e-test.txt" not in _file_names(page.text)

    # Log out: RP-initiated logout with id_token_hint and the registered post-logout URI
    logout = web.post(
        base + "/demo/app/logout/", data={"csrfmiddlewaretoken": _csrf(page.text)}, allow_redirects=False
    )
    end_session = logout.headers["Location"]
    assert logout.status_code == 303 and end_session.startswith(demo_site.endpoints["end_session"] + "?")
    logout_params = {k: v[0] for k, v in parse_qs(urlsplit(end_session).query).items()}
    assert logout_params["post_logout_redirect_uri"] == base + "/demo/app/logged-out"
    assert logout_params["id_token_hint"].count(".") == 2 and logout_params["client_id"] == WEB_APP
    confirm = web.get(end_session, allow_redirects=False)  # the server asks (ALWAYS_PROMPT, kept)
    assert confirm.status_code == 200 and "Demo Web App" in confirm.text and "alice" in confirm.text
    ended = browser._submit(confirm, {"allow": "true"})
    assert ended.status_code == 302, ended.text[-3000:]
    assert ended.headers["Location"] == f"{base}/demo/app/logged-out?state={logout_params['state']}"
    landed = web.get(ended.headers["Location"])
    assert landed.status_code == 200 and "sent you back here" in landed.text
    # both sessions ended: the server's (Connected apps wants a login) and the app's (no tokens)
    assert "/accounts/login/" in web.get(apis["connected_apps"], allow_redirects=False).headers["Location"]
    assert 'id="signed-out"' in web.get(apis["client_app"]).text
    assert not any(c.name == "demo_web_app_session" for c in web.cookies)


@live
def test_reports_api_with_reports_service_credentials(demo_site):
    apis = demo_site.data["apis"]
    token = client_credentials_token(demo_site, "client_secret_basic")["access_token"]
    response = http().get(apis["reports_api"], headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["requested_by"] == REPORTS and len(report["rows"]) == 7
    assert report["total"] >= len(demo_site.data["files"])  # seeded today

    # A user's token is for the files API: the reports API refuses it (RFC 6750 invalid_token)...
    _, user_token, _ = code_flow(demo_site, "bob")
    refused = http().get(
        apis["reports_api"], headers={"Authorization": f"Bearer {user_token['access_token']}"}
    )
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    # ...while the files API serves bob his files, and refuses the service's token.
    files = http().get(apis["files_api"], headers={"Authorization": f"Bearer {user_token['access_token']}"})
    assert {f["name"] for f in files.json()["files"]} == {
        f["name"] for f in demo_site.data["files"] if f["owner"] == "bob"
    }
    assert http().get(apis["files_api"], headers={"Authorization": f"Bearer {token}"}).status_code == 401

    # The home page's two shell lines, run as printed.
    if shutil.which("curl") and shutil.which("python3"):
        home = http().get(demo_site.base_url + "/").text
        lines = _element(home, "reports-curl")
        result = subprocess.run(
            ["bash", "-c", lines],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": "/usr/bin:/bin", "NO_PROXY": "*"},
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["report"] == "files-created-per-day"


# --- the README's and seed_demo's commands, run for real ----------------------------------------------
def run_curl(command: str, env: dict[str, str] | None = None) -> dict:
    """Run a documented curl command (curl when installed, else an equivalent requests call)."""
    if shutil.which("curl"):
        result = subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": "/usr/bin:/bin", "NO_PROXY": "*", **(env or {})},
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout or "{}")
    return _curl_with_requests(command, env or {})


def _curl_with_requests(command: str, env: dict[str, str]) -> dict:
    for name, value in env.items():
        command = command.replace(f"${name}", value)
    args = shlex.split(command.replace("\\\n", " "))
    assert args[0] == "curl"
    data, headers, auth, url = [], {}, None, None
    it = iter(args[1:])
    for arg in it:
        if arg == "-s":
            continue
        if arg == "-u":
            auth = tuple(next(it).split(":", 1))
        elif arg == "-d":
            data.append(tuple(next(it).split("=", 1)))
        elif arg == "-H":
            name, value = next(it).split(":", 1)
            headers[name] = value.strip()
        else:
            url = arg
    response = http().request("POST" if data else "GET", url, data=data or None, headers=headers, auth=auth)
    return response.json() if response.content else {}


def readme_try_it_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Try it", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    commands = []
    for block in blocks:
        for command in re.split(r"(?<!\\)\n", block):
            command = command.strip()
            if command.startswith("curl "):
                commands.append(command.replace("\\\n", " "))
    return commands


@live
def test_readme_client_credentials_curl_command_works(demo_site):
    commands = [c for c in readme_try_it_commands() if "client_credentials" in c]
    assert commands, "the README's Try it section has no client_credentials curl command"
    for command in commands:
        body = run_curl(command.replace(seed.DEFAULT_BASE_URL, demo_site.base_url))
        assert body.get("token_type") == "Bearer", body
        assert body["scope"] == "reports:read" and body["access_token"].count(".") == 2


@live
def test_seed_demo_walkthrough_commands_work(demo_site):
    """The authorization URL and every curl command seed_demo printed, in the documented order."""
    auth, curl = demo_site.data["authorization"], demo_site.data["curl"]
    assert run_curl(curl["client_credentials"])["token_type"] == "Bearer"

    browser = Browser(demo_site.base_url)
    location = browser.authorize(auth["url"], "alice", password=demo_site.password)
    params = parse_qs(urlsplit(location).query)
    assert location.startswith(auth["redirect_uri"]) and params["state"] == [auth["state"]]
    code = params["code"][0]
    page = browser.get(location)  # the callback shows the code for the shell, without spending it
    assert f"CODE={code}" in page.text

    tokens = run_curl(curl["code_exchange"], {"CODE": code})
    assert tokens.get("token_type") == "Bearer", tokens
    env = {"ACCESS_TOKEN": tokens["access_token"], "REFRESH_TOKEN": tokens["refresh_token"]}
    assert run_curl(curl["userinfo"], env)["email"] == "alice@example.com"
    files = run_curl(curl["files_api"], env)["files"]  # the files API, with alice's token
    names = {f["name"] for f in files}
    assert {f["name"] for f in demo_site.data["files"] if f["owner"] == "alice"} <= names
    assert not {f["name"] for f in demo_site.data["files"] if f["owner"] == "bob"} & names
    assert run_curl(curl["introspection"], env)["active"] is True

    refreshed = run_curl(curl["refresh"], env)
    assert refreshed["refresh_token"] != env["REFRESH_TOKEN"]
    env = {"ACCESS_TOKEN": refreshed["access_token"], "REFRESH_TOKEN": refreshed["refresh_token"]}
    run_curl(curl["revocation"], env)
    assert "error" in run_curl(curl["refresh"], env)  # revoked
    assert run_curl(curl["introspection"], env) == {"active": False}  # its access token went with it


@live
def test_manage_py_demo_starts_and_serves(demo_site, tmp_path):
    """The README's ``manage.py demo``, on a copy of the demo database (it re-seeds for its port)."""
    source = sqlite3.connect(demo_site.cwd / "demo.sqlite3")
    target = sqlite3.connect(tmp_path / "copy.sqlite3")
    source.backup(target)
    source.close()
    target.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**demo_site.env, "DATABASE_URL": f"sqlite:///{tmp_path / 'copy.sqlite3'}"}
    log = (tmp_path / "demo.log").open("wb")
    process = subprocess.Popen(
        [*MANAGE, "demo", f"127.0.0.1:{port}", "--noreload"], cwd=tmp_path, env=env, stdout=log, stderr=log
    )
    try:
        base = f"http://127.0.0.1:{port}"
        home = _wait_for(base + "/", process, tmp_path / "demo.log")
        assert "Try the authorization code flow" in home.text
        discovery = http().get(base + "/oauth/.well-known/openid-configuration").json()
        assert discovery["issuer"] == base + "/oauth"
        output = (tmp_path / "demo.log").read_text()
        assert "demo-password-123" in output and "reports-service-secret-DEMO-ONLY" in output
        assert f"{base}/oauth/authorize/?response_type=code" in output
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _wait_for(url: str, process: subprocess.Popen, log_path: Path) -> requests.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text()
        try:
            return http().get(url, timeout=2)
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer: {log_path.read_text()}")


# --- seed_demo and demo in process ------------------------------------------------------------------
def seed_json(*args: str) -> dict:
    out = StringIO()
    call_command("seed_demo", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def snapshot() -> dict:
    User = get_user_model()
    return {
        "users": list(User.objects.order_by("username").values()),
        "clients": list(Client.objects.order_by("client_id").values()),
        "client_scopes": sorted(Client.allowed_scopes.through.objects.values_list("client_id", "scope_id")),
        "scopes": list(Scope.objects.order_by("name").values()),
        "files": list(File.objects.order_by("owner__username", "name").values()),
    }


@pytest.mark.django_db
def test_seed_demo_twice_changes_nothing_and_prints_the_same_credentials():
    first = seed_json()
    before = snapshot()
    second = seed_json()
    assert snapshot() == before
    for key in ("accounts", "clients", "endpoints", "base_url"):
        assert first[key] == second[key]
    # A fresh PKCE pair and state per run; everything else is fixed.
    assert first["authorization"]["code_verifier"] != second["authorization"]["code_verifier"]
    assert len({c["client_id"] for c in first["clients"]}) == len(seed.CLIENTS) == 6
    assert len(before["files"]) == len(seed.FILES) == 4


@pytest.mark.django_db
def test_seed_demo_output_matches_the_database():
    data = seed_json()
    User = get_user_model()
    for account in data["accounts"]:
        user = User.objects.get(username=account["username"])
        assert user.check_password(account["password"]) and user.email == account["email"]
        assert user.is_superuser is account["is_superuser"] is user.is_staff
        assert user.get_full_name() == account["name"]
    for printed in data["clients"]:
        client = Client.objects.get(client_id=printed["client_id"])
        assert client.name == printed["name"] and client.grant_types == printed["grant_types"]
        assert client.redirect_uri_list == printed["redirect_uris"]
        assert sorted(client.allowed_scopes.values_list("name", flat=True)) == sorted(printed["scopes"])
        assert client.audiences == printed["audiences"]
        assert client.resource_identifiers == printed["resource_identifiers"]
        if printed["client_secret"]:
            assert len(printed["client_secret"]) >= 32 and "DEMO-ONLY" in printed["client_secret"]
            assert client.check_secret(printed["client_secret"])
            assert printed["client_secret"] not in client.client_secret  # stored hashed
        else:
            assert client.client_type == Client.CLIENT_PUBLIC and not client.client_secret
    assert "never use" in data["warning"].lower()
    url = urlsplit(data["authorization"]["url"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    verifier = data["authorization"]["code_verifier"]
    digest = hashlib.sha256(verifier.encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert query["code_challenge_method"] == "S256" and query["client_id"] == WEB_APP
    assert f"code_verifier={verifier}" in data["curl"]["code_exchange"]


@pytest.mark.django_db
def test_seed_demo_repairs_what_was_changed():
    seed_json()
    web = Client.objects.get(client_id=WEB_APP)
    web.set_secret("x" * 40)
    web.redirect_uris = "https://elsewhere.example/cb"
    web.is_enabled = False
    web.save()
    web.allowed_scopes.clear()
    alice = get_user_model().objects.get(username="alice")
    alice.set_password("something else entirely")
    alice.is_active = False
    alice.save()
    File.objects.filter(owner__username="alice", name="shopping-list.txt").update(content="changed")
    File.objects.filter(owner__username="bob", name="todo.md").delete()
    File.objects.create(owner=alice, name="alice-own.txt", content="not the demo's")

    seed_json()
    web.refresh_from_db()
    assert web.check_secret(seed.WEB_APP.client_secret) and web.is_enabled
    assert web.redirect_uri_list[0] == "http://127.0.0.1:8000/demo/callback"
    assert "files:write" in web.allowed_scopes.values_list("name", flat=True)
    alice.refresh_from_db()
    assert alice.check_password(seed.DEMO_PASSWORD) and alice.is_active
    assert Client.objects.filter(client_id__in=[WEB_APP, SPA, REPORTS, FILES_API]).count() == 4
    for spec in seed.FILES:
        assert File.objects.get(owner__username=spec.owner, name=spec.name).content == spec.content
    assert File.objects.get(name="alice-own.txt").content == "not the demo's"  # not the demo's: untouched


def test_readme_and_docs_show_the_credentials_seed_demo_prints():
    readme = (REPO / "README.md").read_text().split("## Try it", 1)[1].split("\n## ", 1)[0]
    docs = (REPO / "docs" / "demo.md").read_text()
    for text in (readme, docs):
        assert seed.DEMO_PASSWORD in text
        for client in seed.CLIENTS:
            assert client.client_id in text
            if client.client_secret:
                assert client.client_secret in text
        for user in seed.USERS:
            assert f"`{user.username}`" in text


@pytest.mark.django_db
def test_seed_demo_base_url():
    data = seed_json("--base-url", "http://localhost:9000/")
    web = Client.objects.get(client_id=WEB_APP)
    assert web.redirect_uri_list == [
        "http://localhost:9000/demo/callback",
        "http://127.0.0.1:9000/demo/callback",
    ]
    assert data["endpoints"]["token"] == "http://localhost:9000/oauth/token/"
    assert Client.objects.get(client_id=FILES_API).resource_identifiers == [
        "http://localhost:9000/api/files/"
    ]
    for bad in ("ftp://host", "http://127.0.0.1:8000/sub/path", "not a url"):
        with pytest.raises(CommandError):
            call_command("seed_demo", "--base-url", bad, stdout=StringIO())


@pytest.mark.django_db
def test_seed_demo_on_an_unmigrated_database_says_so(monkeypatch):
    monkeypatch.setattr(seed.connection.introspection, "table_names", lambda *a, **k: [])
    with pytest.raises(CommandError, match="migrate"):
        call_command("seed_demo", stdout=StringIO())


@pytest.mark.parametrize(
    ("addrport", "base_url"),
    [
        ("127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("8001", "http://127.0.0.1:8001"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000"),
        ("localhost:8000", "http://localhost:8000"),
        ("[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_demo_command_migrates_seeds_then_runs_the_server(monkeypatch, settings, addrport, base_url):
    settings.DEBUG = True  # the demo's default: no collectstatic (tested below)
    calls = []
    monkeypatch.setattr(demo_command, "call_command", lambda name, *a, **kw: calls.append((name, a, kw)))
    # The port check is tested below on real sockets; these ports may be in use on this machine.
    monkeypatch.setattr(demo_command, "check_can_listen", lambda addr: calls.append(("check", (addr,), {})))
    monkeypatch.delenv("RUN_MAIN", raising=False)
    call_command("demo", addrport, "--noreload", stdout=StringIO())
    assert [c[0] for c in calls] == ["check", "migrate", "seed_demo", "runserver"]
    calls.pop(0)
    assert calls[0][2]["interactive"] is False
    assert calls[1][2]["base_url"] == base_url
    expected_addrport = addrport if ":" in addrport else f"127.0.0.1:{addrport}"
    assert calls[2][1] == (expected_addrport,) and calls[2][2]["use_reloader"] is False


def test_demo_command_child_of_the_autoreloader_only_serves(monkeypatch):
    calls = []
    monkeypatch.setattr(demo_command, "call_command", lambda name, *a, **kw: calls.append((name, a, kw)))
    monkeypatch.setenv("RUN_MAIN", "true")
    call_command("demo", stdout=StringIO())
    assert calls == [("runserver", ("127.0.0.1:8000",), {"use_reloader": True})]


@pytest.mark.parametrize(("debug", "expected"), [(True, []), (False, ["collectstatic"])])
def test_demo_command_collects_static_files_when_debug_is_off(monkeypatch, settings, debug, expected):
    """With DEBUG off WhiteNoise serves STATIC_ROOT and the manifest storage needs collectstatic."""
    settings.DEBUG = debug
    calls = []
    monkeypatch.setattr(demo_command, "call_command", lambda name, *a, **kw: calls.append(name))
    monkeypatch.setattr(demo_command, "check_can_listen", lambda addr: None)
    monkeypatch.delenv("RUN_MAIN", raising=False)
    call_command("demo", "--noreload", stdout=StringIO())
    assert [c for c in calls if c == "collectstatic"] == expected
    assert calls[-1] == "runserver"


def _listening_socket(host: str = "127.0.0.1", family: int = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen()
    return sock


def test_demo_on_a_busy_port_refuses_before_migrating_or_seeding(monkeypatch):
    calls = []
    monkeypatch.setattr(demo_command, "call_command", lambda name, *a, **kw: calls.append(name))
    monkeypatch.delenv("RUN_MAIN", raising=False)
    with _listening_socket() as busy:
        port = busy.getsockname()[1]
        with pytest.raises(CommandError, match=f"Port {port} is already in use on 127.0.0.1") as refused:
            call_command("demo", f"127.0.0.1:{port}", "--noreload", stdout=StringIO())
    assert calls == []  # neither migrate, nor seed_demo (which prints the credentials), nor runserver
    assert "\n" not in str(refused.value)
    assert f"manage.py demo 127.0.0.1:{port + 1}" in str(refused.value)


def test_demo_port_check_accepts_a_free_port_and_ipv6():
    with _listening_socket() as free:
        port = free.getsockname()[1]
    demo_command.check_can_listen(f"127.0.0.1:{port}")  # free again: no error
    if socket.has_ipv6:
        try:
            busy = _listening_socket("::1", socket.AF_INET6)
        except OSError:
            pytest.skip("no IPv6 loopback on this machine")
        with busy, pytest.raises(CommandError, match=r"in use on \[::1\]"):
            demo_command.check_can_listen(f"[::1]:{busy.getsockname()[1]}")


def test_demo_on_a_busy_port_prints_one_line_and_leaves_the_database_alone(tmp_path):
    """What the user sees: exit 1, one line on stderr, no credentials, no database created."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
    }
    env.pop("RUN_MAIN", None)
    with _listening_socket() as busy:
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*MANAGE, "demo", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"CommandError: Port {port} is already in use on 127.0.0.1: another server (a demo already "
        f"running?) listens there. Stop it, or give another address: manage.py demo 127.0.0.1:{port + 1}"
    ]
    assert not (tmp_path / "demo.sqlite3").exists()


def test_demo_runserver_banner_names_the_settings_module(monkeypatch):
    """runserver prints settings.SETTINGS_MODULE; inside override_settings it used to be None."""
    seen = []

    def fake_call_command(name, *args, **kwargs):
        if name == "runserver":
            seen.append(django_settings.SETTINGS_MODULE)

    monkeypatch.setattr(demo_command, "call_command", fake_call_command)
    monkeypatch.setenv("RUN_MAIN", "true")
    call_command("demo", stdout=StringIO())
    assert seen == [os.environ["DJANGO_SETTINGS_MODULE"]]
