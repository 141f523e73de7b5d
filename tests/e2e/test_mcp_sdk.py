"""The official MCP Python SDK's OAuth client (``mcp.client.auth.OAuthClientProvider``) against the
running demo, with no pre-registration (issue 12's "Done means"):

* by dynamic client registration: the SDK gets the 401, follows ``resource_metadata`` to the RFC 9728
  document, reads the path-aware RFC 8414 metadata, registers itself (RFC 7591), and sends the person
  to the authorization URL: headless Chromium signs in on the real login page and clicks Allow on the
  real consent page; the redirect lands on the SDK's loopback callback (a tiny server in this test),
  whose code goes back to the SDK; ``whoami`` answers "alice";
* by a client ID metadata document served from a local HTTPS server (self-signed certificate the
  demo trusts through ``DEMO_CIMD_CA_FILE``; ``DEMO_CIMD_ALLOW_LOOPBACK=1``): the SDK uses the
  document's URL as its client_id; same flow;
* after the person revokes the app in Connected apps (the real page, in Chromium), the SDK's next
  call is refused: the access token gets a 401, the SDK's refresh is refused too (the revocation
  took the refresh token family with it), and the SDK can only ask the person to authorize again.

* step-up: after the metadata-document flow, ``list_files`` (which needs ``files:read`` too) is
  refused with 403 ``insufficient_scope``; the SDK asks for the union of scopes, and the consent
  page lists only what is new.

One demo server process serves every test here, on a copy of ``demo_site``'s seeded database.
Marked ``once``: the server has its own SQLite database whatever the test run's database is.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

from tests.cimd_server import DocumentServer
from tests.e2e.chromium import wait_for
from tests.e2e.conftest import DemoSite, _free_port, _running, copy_database, demo_env, runservers
from tests.e2e.loopback import Callback

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.once]

USERNAME = "alice"
FLOW_TIMEOUT = 60  # seconds for one whole SDK flow (discovery, sign-in, consent, token, tool call)
PAGE_TIMEOUT = 20  # seconds for one page in Chromium (a loaded CI machine)


# --- the site, the document server, the callback --------------------------------------------------------
@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocumentServer]:
    server = DocumentServer(tmp_path_factory.mktemp("cimd-documents"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def mcp_site(
    tmp_path_factory: pytest.TempPathFactory, demo_site: DemoSite, documents: DocumentServer
) -> Iterator[DemoSite]:
    """The demo, on a copy of ``demo_site``'s seeded database (no second migrate and seed), that may
    also fetch metadata documents from ``documents`` (loopback, self-signed certificate): the two
    development-only switches of issue 12. Its own address, issuer and MCP audience."""
    cwd = tmp_path_factory.mktemp("mcp-demo-site")
    copy_database(demo_site, cwd)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **demo_env(cwd, base_url),
        "DEMO_CIMD_ALLOW_LOOPBACK": "1",
        "DEMO_CIMD_CA_FILE": str(documents.cert),
    }
    with runservers(cwd, env, [port]) as (log_path,):
        # seed_demo's accounts, and its endpoints at this server's address.
        data = json.loads(json.dumps(demo_site.data).replace(demo_site.base_url, base_url))
        site = DemoSite(base_url=base_url, data=data, env=env, cwd=cwd, log_path=log_path)
        _running["mcp_site"] = site
        try:
            yield site
        finally:
            _running.pop("mcp_site", None)


@pytest.fixture(scope="module")
def callback() -> Iterator[Callback]:
    server = Callback()
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser(driver):
    """One Chromium for the module: signed in once, it stays signed in (as a person's browser)."""
    driver.delete_all_cookies()
    return driver


# --- the SDK client ------------------------------------------------------------------------------------
class MemoryStorage:
    """The SDK's ``TokenStorage``, in memory."""

    def __init__(self) -> None:
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens) -> None:
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info) -> None:
        self.client_info = client_info


class AuthorizationRefused(Exception):
    """Raised by the redirect handler when the test does not want the person to authorize again."""


@dataclass
class Person:
    """What the person at the browser does when the SDK opens an authorization URL."""

    browser: Any
    site: DemoSite
    callback: Callback
    authorize: bool = True
    opened: list[str] = field(default_factory=list)
    callbacks: list[dict[str, str]] = field(default_factory=list)
    consent_texts: list[str] = field(default_factory=list)

    def approve(self, url: str) -> None:
        """Open ``url``; sign in if asked; click Allow on the consent page; wait for the callback."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        browser = self.browser
        browser.get(url)
        wait_for(
            browser,
            lambda d: d.find_elements(By.ID, "id_password") or d.find_elements(By.ID, "allow"),
            timeout=PAGE_TIMEOUT,
        )
        if browser.find_elements(By.ID, "id_password"):
            username = browser.find_element(By.ID, "id_username")
            username.clear()
            username.send_keys(USERNAME)
            browser.find_element(By.ID, "id_password").send_keys(
                self.site.account(USERNAME)["password"], Keys.ENTER
            )
            wait_for(browser, lambda d: d.find_elements(By.ID, "allow"), timeout=PAGE_TIMEOUT)
        self.consent_texts.append(browser.find_element(By.TAG_NAME, "main").text)
        browser.find_element(By.ID, "allow").click()
        wait_for(browser, lambda d: d.current_url.startswith(self.callback.url), timeout=PAGE_TIMEOUT)

    async def redirect_handler(self, url: str) -> None:
        self.opened.append(url)
        if not self.authorize:
            raise AuthorizationRefused(url)
        await anyio.to_thread.run_sync(self.approve, url)

    async def callback_handler(self):
        from mcp.shared.auth import AuthorizationCodeResult

        query = await anyio.to_thread.run_sync(lambda: self.callback.queries.get(timeout=FLOW_TIMEOUT))
        self.callbacks.append(query)
        assert "error" not in query, query
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


def make_provider(
    site: DemoSite,
    person: Person,
    *,
    name: str,
    client_metadata_url: str | None = None,
    auth_method: str = "none",
):
    from mcp.client.auth import OAuthClientProvider
    from mcp.shared.auth import OAuthClientMetadata

    metadata = OAuthClientMetadata(
        client_name=name,
        redirect_uris=[person.callback.url],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method=auth_method,
    )
    return OAuthClientProvider(
        server_url=site.base_url + "/mcp/",
        client_metadata=metadata,
        storage=MemoryStorage(),
        redirect_handler=person.redirect_handler,
        callback_handler=person.callback_handler,
        client_metadata_url=client_metadata_url,
    )


@dataclass
class Exchange:
    method: str
    url: str
    status: int
    body: str


def call_whoami(site: DemoSite, provider, exchanges: list[Exchange] | None = None) -> str:
    """A fresh MCP session through ``provider``: initialize, call ``whoami``; its text. Every HTTP
    exchange the SDK makes (MCP, discovery, registration, token) is appended to ``exchanges``."""
    return call_tool(site, provider, "whoami", exchanges).content[0].text


def call_tool(site: DemoSite, provider, name: str, exchanges: list[Exchange] | None = None):
    """A fresh MCP session through ``provider``: initialize, call the tool ``name``; its result."""
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    log = exchanges if exchanges is not None else []

    async def record(response) -> None:
        await response.aread()
        log.append(
            Exchange(response.request.method, str(response.request.url), response.status_code, response.text)
        )

    async def session():
        with anyio.fail_after(FLOW_TIMEOUT):
            async with (
                httpx2.AsyncClient(
                    auth=provider, event_hooks={"response": [record]}, trust_env=False
                ) as http,
                streamable_http_client(site.base_url + "/mcp/", http_client=http) as (read, write),
                ClientSession(read, write) as mcp,
            ):
                await mcp.initialize()
                result = await mcp.call_tool(name, {})
                assert not result.is_error, result
                return result

    return anyio.run(session)


def paths(exchanges: list[Exchange]) -> list[tuple[str, str, int]]:
    return [(e.method, urlsplit(e.url).path, e.status) for e in exchanges]


# --- the tests -----------------------------------------------------------------------------------------
def test_by_dynamic_registration_then_refused_after_revocation(mcp_site, browser, callback):
    from selenium.webdriver.common.by import By

    person = Person(browser, mcp_site, callback)
    provider = make_provider(mcp_site, person, name="SDK agent by DCR")
    exchanges: list[Exchange] = []

    assert mcp_site.issuer == mcp_site.base_url + "/oauth"
    assert call_whoami(mcp_site, provider, exchanges) == USERNAME

    # What the SDK did, in order: the 401, RFC 9728, path-aware RFC 8414, RFC 7591, token, retry.
    steps = paths(exchanges)
    assert steps[0] == ("POST", "/mcp/", 401), steps
    assert ("GET", "/.well-known/oauth-protected-resource/mcp/", 200) in steps, steps
    assert ("GET", "/.well-known/oauth-authorization-server/oauth", 200) in steps, steps
    registration = next(e for e in exchanges if urlsplit(e.url).path == "/oauth/register/")
    assert registration.status == 201, registration.body
    assert ("POST", "/oauth/token/", 200) in steps, steps
    # RFC 8707 resource = the MCP server; the scope the 401 named; RFC 9207 iss on the callback.
    request = {k: v[0] for k, v in parse_qs(urlsplit(person.opened[0]).query).items()}
    assert request["resource"] == mcp_site.base_url + "/mcp/"
    assert "mcp:tools" in request["scope"].split()
    assert request["code_challenge_method"] == "S256"
    assert person.callbacks[0]["iss"] == mcp_site.issuer
    assert "Registered automatically" in person.consent_texts[0]
    client_id = provider.context.client_info.client_id
    assert provider.context.current_tokens.refresh_token

    # A second session reuses the token: no new sign-in, no new registration.
    assert call_whoami(mcp_site, provider) == USERNAME
    assert len(person.opened) == 1

    # The person revokes the app on the real Connected apps page.
    browser.get(mcp_site.base_url + "/oauth/connected-apps/")
    heading = next(h for h in browser.find_elements(By.CSS_SELECTOR, "h2") if h.text == "SDK agent by DCR")
    number = heading.get_attribute("id").split("-")[1]
    browser.find_element(By.ID, f"revoke-{number}").click()
    wait_for(browser, lambda d: _app_gone(d, "SDK agent by DCR"))
    assert client_id not in browser.page_source

    # The next call: the access token is refused (401) ...
    person.authorize = False
    after: list[Exchange] = []
    with pytest.raises(BaseException) as refused:  # the SDK surfaces it through its task group
        call_whoami(mcp_site, provider, after)
    assert _contains(refused.value, AuthorizationRefused), refused.value
    steps = paths(after)
    assert steps[0] == ("POST", "/mcp/", 401), steps
    # ... and so is the refresh token, which the revocation took with it.
    refresh = _refresh(mcp_site, provider)
    assert refresh.status_code == 400, refresh.text
    assert refresh.json()["error"] == "invalid_grant"
    assert len(person.opened) == 2  # the SDK could only ask the person again


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_by_dynamic_registration_as_a_confidential_client(mcp_site, browser, callback, method):
    """The SDK asking for a secret at registration: the demo issues one, and the SDK's token request
    authenticates with it the way it registered."""
    person = Person(browser, mcp_site, callback)
    provider = make_provider(mcp_site, person, name=f"SDK agent with {method}", auth_method=method)
    assert call_whoami(mcp_site, provider) == USERNAME
    info = provider.context.client_info
    assert info.token_endpoint_auth_method == method
    assert info.client_secret


def test_sdk_refresh_after_revocation_is_refused(mcp_site, browser, callback):
    """The SDK's own refresh path: its access token treated as expired, it refreshes first; the
    revoked family's refresh token is refused, so it falls back to asking the person."""
    from selenium.webdriver.common.by import By

    person = Person(browser, mcp_site, callback)
    provider = make_provider(mcp_site, person, name="SDK agent that refreshes")
    assert call_whoami(mcp_site, provider) == USERNAME

    # Refresh works while the consent stands.
    provider.context.token_expiry_time = time.time() - 1
    before: list[Exchange] = []
    assert call_whoami(mcp_site, provider, before) == USERNAME
    assert ("POST", "/oauth/token/", 200) in paths(before), paths(before)

    browser.get(mcp_site.base_url + "/oauth/connected-apps/")
    heading = next(
        h for h in browser.find_elements(By.CSS_SELECTOR, "h2") if h.text == "SDK agent that refreshes"
    )
    browser.find_element(By.ID, f"revoke-{heading.get_attribute('id').split('-')[1]}").click()
    wait_for(
        browser,
        lambda d: _app_gone(d, "SDK agent that refreshes"),
    )

    person.authorize = False
    provider.context.token_expiry_time = time.time() - 1
    after: list[Exchange] = []
    with pytest.raises(BaseException) as refused:
        call_whoami(mcp_site, provider, after)
    assert _contains(refused.value, AuthorizationRefused), refused.value
    token_calls = [e for e in after if urlsplit(e.url).path == "/oauth/token/"]
    assert token_calls and token_calls[0].status == 400, [(e.status, e.body) for e in token_calls]
    assert "invalid_grant" in token_calls[0].body
    assert ("POST", "/mcp/", 401) in paths(after), paths(after)


def test_by_client_id_metadata_document_then_step_up(mcp_site, documents, browser, callback):
    person = Person(browser, mcp_site, callback)
    path = "/mcp-sdk-client.json"
    document = documents.document(path, client_name="SDK agent by CIMD", redirect_uris=[callback.url])
    client_id = documents.serve(path, document)
    provider = make_provider(mcp_site, person, name="SDK agent by CIMD", client_metadata_url=client_id)
    exchanges: list[Exchange] = []

    assert call_whoami(mcp_site, provider, exchanges) == USERNAME

    steps = paths(exchanges)
    assert not [s for s in steps if s[1] == "/oauth/register/"], steps  # no registration at all
    assert provider.context.client_info.client_id == client_id
    assert documents.hits.get(path, 0) >= 1  # the demo fetched the document
    assert f"client_id={_quote(client_id)}" in person.opened[0]
    assert "127.0.0.1" in person.consent_texts[0]  # where the client comes from

    # list_files needs files:read too: the SDK steps up when refused with insufficient_scope.
    stepped: list[Exchange] = []
    files = call_tool(mcp_site, provider, "list_files", stepped)
    assert "files" in files.structured_content
    assert ("POST", "/mcp/", 403) in paths(stepped), paths(stepped)
    assert len(person.opened) == 2
    first = parse_qs(urlsplit(person.opened[0]).query)["scope"][0].split()
    second = parse_qs(urlsplit(person.opened[1]).query)["scope"][0].split()
    assert "files:read" not in first
    assert set(second) == {*first, "files:read"}  # the union (SEP-2350)
    # The consent page asked only for what is new, and listed what she allowed before.
    new, _, before = person.consent_texts[1].partition("You already allowed it to")
    assert "Read your files" in new
    assert "Use the demo's MCP tools" in before and "Use the demo's MCP tools" not in new


# --- helpers -------------------------------------------------------------------------------------------
def _contains(error: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``error`` is, wraps (cause/context), or groups an exception of ``kind``."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return True
        stack.extend([current.__cause__, current.__context__])
        stack.extend(getattr(current, "exceptions", ()))
    return False


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _refresh(site: DemoSite, provider):
    import requests

    with contextlib.closing(requests.Session()) as http:
        http.trust_env = False
        return http.post(
            site.base_url + "/oauth/token/",
            data={
                "grant_type": "refresh_token",
                "refresh_token": provider.context.current_tokens.refresh_token
                if provider.context.current_tokens
                else provider.context.storage.tokens.refresh_token,
                "client_id": provider.context.client_info.client_id,
            },
            timeout=30,
        )


def _app_gone(driver, name: str) -> bool:
    """Whether Connected apps no longer lists ``name``; False while the page is being replaced (the
    revoke button's POST and redirect make the old headings stale)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        return name not in [h.text for h in driver.find_elements(By.TAG_NAME, "h2")]
    except StaleElementReferenceException:
        return False
