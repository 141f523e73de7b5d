"""panva's ``openid-client`` (Node.js; OpenID-certified, FAPI 2.0 profiles included) against the running
demo: PAR with ``private_key_jwt`` and PKCE S256, DPoP at every step (docs/interop.md).

The client is registered with ``create_oauth_client`` (``PROFILE`` below) and its public JWK Set;
``tests/e2e/node/par_dpop_client.mjs`` gets its private key and does, with the library's own code:
discovery, the pushed authorization request, the authorization URL; headless Chromium signs in as
alice and clicks Allow on the real pages; the redirect lands on a loopback callback whose URL goes
back to the script, which exchanges the code (answering ``use_dpop_nonce``: the demo runs with DPoP
nonces on), checks the ID token, calls UserInfo, refreshes, and calls the files API, all with DPoP.
The test then checks what the library got, from the outside: the access token's ``cnf.jkt`` is the
thumbprint of the script's DPoP key, and the same token sent as Bearer is refused.

One demo server process (DPoP nonces on) serves the module, on a copy of ``demo_site``'s database.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from jwcrypto import jwk, jwt

from tests.e2e.browser import Browser
from tests.e2e.chromium import wait_for
from tests.e2e.conftest import DemoSite, _free_port, _running, copy_database, demo_env, runservers
from tests.e2e.loopback import Callback
from tests.e2e.nodejs import NODE_DIR, require_node_packages

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.once]

# How the client is registered: the FAPI 2.0 profile (docs/fapi.md), which makes it use PAR,
# private_key_jwt, PKCE S256 and DPoP, with an https redirect URI.
PROFILE = ["--profile", "fapi2", "--auth-method", "private_key_jwt"]
CLIENT_ID = "openid-client-node"
USERNAME = "alice"
SCOPE = "openid profile offline_access files:read"
SCRIPT = NODE_DIR / "par_dpop_client.mjs"
STEP_TIMEOUT = 60  # seconds for one step of the script (a loaded CI machine)
PAGE_TIMEOUT = 20  # seconds for one page in Chromium


def http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


# --- the site, the client, the callback ---------------------------------------------------------------
@pytest.fixture(scope="module")
def node() -> str:
    return require_node_packages()


@pytest.fixture(scope="module")
def nonce_site(tmp_path_factory: pytest.TempPathFactory, demo_site: DemoSite) -> Iterator[DemoSite]:
    """The demo with DPoP nonces on (DEMO_DPOP_NONCES=1: token endpoint, UserInfo and APIs), on a copy
    of ``demo_site``'s seeded database, at its own address and issuer."""
    cwd = tmp_path_factory.mktemp("openid-client-site")
    copy_database(demo_site, cwd)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**demo_env(cwd, base_url), "DEMO_DPOP_NONCES": "1"}
    with runservers(cwd, env, [port]) as (log_path,):
        data = json.loads(json.dumps(demo_site.data).replace(demo_site.base_url, base_url))
        site = DemoSite(base_url=base_url, data=data, env=env, cwd=cwd, log_path=log_path)
        _running["nonce_site"] = site
        try:
            yield site
        finally:
            _running.pop("nonce_site", None)


@pytest.fixture(scope="module")
def callback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callback]:
    """An https redirect URI on loopback (FAPI 2.0 allows no plain http), under a self-signed
    certificate that this module's Chromium is told to accept."""
    server = Callback(certificate_dir=tmp_path_factory.mktemp("callback-tls"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def driver():
    """Chromium accepting the callback's self-signed certificate (this module only)."""
    from tests.e2e.chromium import require_browser, start_driver

    require_browser()
    browser = start_driver(["--ignore-certificate-errors"])
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def registered(nonce_site: DemoSite, callback: Callback, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The client, registered as an operator would: ``create_oauth_client`` with its public keys.
    Returns its private JWK (for the script) and the command's JSON."""
    key = jwk.JWK.generate(kty="EC", crv="P-256", kid="openid-client-1", alg="ES256", use="sig")
    public = tmp_path_factory.mktemp("openid-client-keys") / "public.jwks.json"
    public.write_text(json.dumps({"keys": [json.loads(key.export_public())]}))
    created = nonce_site.manage(
        "create_oauth_client", "--json", "--name", "openid-client (Node.js)", "--client-id", CLIENT_ID,
        "--type", "confidential", "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        "--redirect-uri", callback.url, *[arg for s in SCOPE.split() for arg in ("--scope", s)],
        "--audience", nonce_site.data["apis"]["files_api"], "--jwks-file", str(public), *PROFILE,
    )  # fmt: skip
    return {"private_jwk": json.loads(key.export_private()), "client": json.loads(created.stdout)}


# --- the script ---------------------------------------------------------------------------------------
class Script:
    """``node par_dpop_client.mjs`` (or another ``script``): JSON lines in (stdin), JSON lines out
    (stdout), with timeouts."""

    def __init__(self, node: str, config: dict[str, Any], cwd: Path, script: Path = SCRIPT) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [node, str(script)],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={"PATH": "/usr/bin:/bin", "NO_PROXY": "*", "no_proxy": "*"},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.send(json.dumps(config))

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def receive(self) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=STEP_TIMEOUT)
        except queue.Empty:
            pytest.fail(f"the openid-client script said nothing for {STEP_TIMEOUT}s", pytrace=False)
        if line is None:
            self.process.wait(timeout=10)
            pytest.fail(
                f"the openid-client script exited with {self.process.returncode}:\n"
                f"{self.process.stderr.read()[-3000:]}",
                pytrace=False,
            )
        message = json.loads(line)
        if message["step"] == "error":
            pytest.fail(f"openid-client refused the server's answer:\n{json.dumps(message, indent=1)}")
        return message

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()


def approve(browser, url: str, site: DemoSite, callback: Callback) -> str:
    """Open the authorization URL in Chromium; sign in as alice; click Allow; the callback URL."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.delete_all_cookies()
    browser.get(url)
    wait_for(browser, lambda d: d.find_elements(By.ID, "id_password"), timeout=PAGE_TIMEOUT)
    browser.find_element(By.ID, "id_username").send_keys(USERNAME)
    browser.find_element(By.ID, "id_password").send_keys(site.account(USERNAME)["password"], Keys.ENTER)
    wait_for(browser, lambda d: d.find_elements(By.ID, "allow"), timeout=PAGE_TIMEOUT)
    assert "openid-client (Node.js)" in browser.find_element(By.TAG_NAME, "main").text
    browser.find_element(By.ID, "allow").click()
    wait_for(browser, lambda d: d.current_url.startswith(callback.url), timeout=PAGE_TIMEOUT)
    return browser.current_url


@pytest.fixture(scope="module")
def flow(node, nonce_site, callback, registered, driver, tmp_path_factory) -> dict[str, Any]:
    """One whole run of the script, shared by the tests below: what it printed at each step."""
    config = {
        "issuer": nonce_site.issuer,
        "client_id": CLIENT_ID,
        "private_jwk": registered["private_jwk"],
        "redirect_uri": callback.url,
        "scope": SCOPE,
        "resource_url": nonce_site.data["apis"]["files_api"],
    }
    script = Script(node, config, tmp_path_factory.mktemp("openid-client-run"))
    try:
        authorize = script.receive()
        assert authorize["step"] == "authorize"
        landed = approve(driver, authorize["url"], nonce_site, callback)
        script.send(landed)
        done = script.receive()
        assert done["step"] == "done"
    finally:
        script.close()
    return {"authorize": authorize, "landed": landed, "done": done}


def verified_claims(site: DemoSite, token: str) -> dict[str, Any]:
    """The JWT access token's claims, verified with the JWKS fetched over HTTP."""
    keyset = jwk.JWKSet.from_json(http().get(site.endpoints["jwks"]).text)
    return json.loads(jwt.JWT(jwt=token, key=keyset, algs=["RS256", "ES256", "EdDSA"]).claims)


# --- the tests ----------------------------------------------------------------------------------------
def test_the_client_is_registered_under_the_fapi2_profile(registered, callback):
    client = registered["client"]
    assert client["security_profile"] == "fapi2"  # PAR, PKCE S256 and DPoP required by the profile
    assert client["token_endpoint_auth_method"] == "private_key_jwt"
    assert client["client_secret"] is None
    assert callback.url.startswith("https://127.0.0.1:")


def test_par_with_private_key_jwt_then_a_browser_with_the_request_uri_only(flow, nonce_site, callback):
    url = urlsplit(flow["authorize"]["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == nonce_site.endpoints["authorization"]
    # RFC 9126 4: the browser carries a reference, never the parameters.
    assert sorted(parse_qs(url.query)) == ["client_id", "request_uri"]
    par = [e for e in flow["done"]["exchanges"] if e["url"].endswith("/oauth/par/")][-1]
    assert par["status"] == 201 and par["client_assertion"] and par["authorization"] == ""
    landed = parse_qs(urlsplit(flow["landed"]).query)
    assert flow["landed"].startswith(callback.url + "?")
    assert landed["iss"] == [nonce_site.issuer]  # RFC 9207, which openid-client checked too


def test_use_dpop_nonce_is_answered_and_the_library_retries_with_the_nonce(flow):
    """The first proof carries no nonce; the server answers use_dpop_nonce with DPoP-Nonce (at the
    token endpoint, or already at PAR when PAR binds the code to the key, RFC 9449 10.1); the library
    retries with that nonce, and every later proof carries it."""
    exchanges = [e for e in flow["done"]["exchanges"] if e["url"].endswith(("/oauth/par/", "/oauth/token/"))]
    refused = [e for e in exchanges if e["status"] == 400]
    assert refused and all("use_dpop_nonce" in e["error"] and e["dpop_nonce"] for e in refused)
    first = exchanges.index(refused[0])
    assert exchanges[first]["proof_nonce"] is None
    retried = exchanges[first + 1]
    assert retried["url"] == refused[0]["url"] and retried["proof_nonce"] == refused[0]["dpop_nonce"]
    token_calls = [e for e in exchanges if e["url"].endswith("/oauth/token/") and e["status"] == 200]
    assert [e["grant_type"] for e in token_calls] == ["authorization_code", "refresh_token"]
    assert all(e["proof_nonce"] for e in token_calls)  # the nonce (it may rotate: no equality)
    # Every token request: a DPoP proof and the client's assertion, never a secret.
    assert all(e["dpop"] and e["client_assertion"] and e["authorization"] == "" for e in token_calls)


def test_tokens_are_dpop_bound_to_the_scripts_key(flow, nonce_site):
    done = flow["done"]
    assert done["issuer"] == nonce_site.issuer
    assert done["token_type"].lower() == done["refreshed_token_type"].lower() == "dpop"
    jkt = jwk.JWK(**flow["authorize"]["dpop_jwk"]).thumbprint()  # RFC 7638, computed here
    for token in (done["access_token"], done["refreshed_access_token"]):
        claims = verified_claims(nonce_site, token)
        assert claims["cnf"] == {"jkt": jkt}
        assert claims["client_id"] == CLIENT_ID
        assert claims["aud"] == nonce_site.data["apis"]["files_api"]
    assert done["refresh_token_rotated"] is True


def test_id_token_and_userinfo_name_alice(flow):
    done = flow["done"]
    assert done["id_token_claims"]["preferred_username"] == USERNAME
    assert done["id_token_claims"]["azp"] == CLIENT_ID
    assert done["userinfo"]["sub"] == done["id_token_claims"]["sub"]
    (userinfo,) = [e for e in done["exchanges"] if e["url"].endswith("/oauth/userinfo/")]
    assert userinfo["authorization"] == "DPoP" and userinfo["status"] == 200


def test_files_api_with_dpop_then_the_same_token_as_bearer_is_refused(flow, nonce_site):
    done = flow["done"]
    assert done["files_status"] == 200, done["files"]
    seeded = {f["name"] for f in nonce_site.data["files"] if f["owner"] == USERNAME}
    assert {f["name"] for f in done["files"]["files"]} >= seeded
    api_calls = [e for e in done["exchanges"] if e["url"] == nonce_site.data["apis"]["files_api"]]
    # The API's nonce is its own (not the token endpoint's): one use_dpop_nonce round trip, whose
    # DPoP-Nonce header the library needs (the kit's DRF exception handler sends it).
    assert [e["status"] for e in api_calls] == [401, 200]
    assert api_calls[0]["dpop_nonce"] and api_calls[1]["proof_nonce"] == api_calls[0]["dpop_nonce"]

    token, files_api = done["refreshed_access_token"], nonce_site.data["apis"]["files_api"]
    as_bearer = http().get(files_api, headers={"Authorization": f"Bearer {token}"})
    assert as_bearer.status_code == 401
    assert as_bearer.json()["error"] == "invalid_token"
    without_proof = http().get(files_api, headers={"Authorization": f"DPoP {token}"})
    assert without_proof.status_code == 401
    assert without_proof.json()["error"] == "invalid_dpop_proof"


def test_an_authorization_request_without_par_is_refused(registered, nonce_site, callback):
    """The same client sending its parameters through the browser (no request_uri): once the user is
    signed in, the server answers invalid_request at the (registered) redirect URI, with no consent."""
    query = urlencode(
        {
            "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": callback.url,
            "scope": "openid", "state": "s", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        }
    )  # fmt: skip
    browser = Browser(nonce_site.base_url)
    landed = browser.authorize(
        f"{nonce_site.endpoints['authorization']}?{query}", USERNAME, password=nonce_site.password
    )
    assert landed.startswith(callback.url + "?")
    params = parse_qs(urlsplit(landed).query)
    assert params["error"] == ["invalid_request"] and params["state"] == ["s"]
