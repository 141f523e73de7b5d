"""panva's ``openid-client`` (Node.js, OpenID-certified) signing its authorization requests (RFC 9101,
JAR) and binding its authorization code to a DPoP key (RFC 9449 10, ``dpop_jkt``), against the
running demo (docs/interop.md).

The client is registered with ``create_oauth_client`` as ``private_key_jwt`` with its public JWK Set
and ``--require-signed-request-object``; DPoP is not required of it, so what refuses a code exchange
without a proof below is the code's binding alone. ``tests/e2e/node/jar_client.mjs`` gets the
private key and, with the library's own code, builds the request object
(``buildAuthorizationUrlWithJAR``) and either sends it through the browser with ``dpop_jkt`` among
its claims, or pushes it (``buildAuthorizationUrlWithPAR``, the library's way to combine JAR and
PAR) with a DPoP proof. Headless Chromium signs in as alice and allows; the script then tries the
code exchange (PKCE) with another DPoP key, with none, and with the bound key, in that order: the
first two are ``invalid_grant``, the third gets DPoP-bound tokens. A request object changed on the
way, unsigned (``alg: none``) or signed by a key that is not the client's gets an error page in the
browser, never a redirect; pushed, the changed one is ``invalid_request_object`` to the library.

It shares ``test_openid_client.py``'s fixtures (a demo server with DPoP nonces on, an https loopback
callback, Chromium accepting its certificate), as fresh instances for this module.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from jwcrypto import jwk, jws

from tests.e2e import test_openid_client as openid_client
from tests.e2e.chromium import wait_for
from tests.e2e.conftest import DemoSite
from tests.e2e.loopback import Callback
from tests.e2e.nodejs import NODE_DIR
from tests.e2e.test_openid_client import PAGE_TIMEOUT, USERNAME, Script, http, verified_claims

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.once]

# The module-scoped fixtures of test_openid_client.py, instantiated again for this module.
node = openid_client.node
nonce_site = openid_client.nonce_site
callback = openid_client.callback
driver = openid_client.driver

CLIENT_ID = "openid-client-jar"
CLIENT_NAME = "openid-client (Node.js) with JAR"
SCOPE = "openid profile"
SCRIPT = NODE_DIR / "jar_client.mjs"
ATTEMPTS = ("other", "none", "bound")  # the DPoP key of each code exchange, in this order


def b64decode(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def b64encode(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def registered(nonce_site: DemoSite, callback: Callback, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The client, registered as an operator would, with its public keys; its private JWK."""
    key = jwk.JWK.generate(kty="EC", crv="P-256", kid="openid-client-jar-1", alg="ES256", use="sig")
    public = tmp_path_factory.mktemp("openid-client-jar-keys") / "public.jwks.json"
    public.write_text(json.dumps({"keys": [json.loads(key.export_public())]}))
    created = nonce_site.manage(
        "create_oauth_client", "--json", "--name", CLIENT_NAME, "--client-id", CLIENT_ID,
        "--type", "confidential", "--grant-type", "authorization_code", "--redirect-uri", callback.url,
        *[arg for s in SCOPE.split() for arg in ("--scope", s)], "--auth-method", "private_key_jwt",
        "--jwks-file", str(public), "--require-signed-request-object",
    )  # fmt: skip
    return {"private_jwk": json.loads(key.export_private()), "client": json.loads(created.stdout)}


def config(site: DemoSite, callback: Callback, registered: dict, **options: Any) -> dict[str, Any]:
    return {
        "issuer": site.issuer,
        "client_id": CLIENT_ID,
        "private_jwk": registered["private_jwk"],
        "redirect_uri": callback.url,
        "scope": SCOPE,
        **options,
    }


def sign_in(browser, url: str, site: DemoSite, callback: Callback) -> dict[str, str]:
    """Open the authorization URL in Chromium, sign in as alice, allow (unless alice already has for
    this client); the login page's return address and the callback URL."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.delete_all_cookies()
    browser.get(url)
    wait_for(browser, lambda d: d.find_elements(By.ID, "id_password"), timeout=PAGE_TIMEOUT)
    login_page = browser.current_url
    browser.find_element(By.ID, "id_username").send_keys(USERNAME)
    browser.find_element(By.ID, "id_password").send_keys(site.account(USERNAME)["password"], Keys.ENTER)
    wait_for(
        browser,
        lambda d: d.find_elements(By.ID, "allow") or d.current_url.startswith(callback.url),
        timeout=PAGE_TIMEOUT,
    )
    if not browser.current_url.startswith(callback.url):
        assert CLIENT_NAME in browser.find_element(By.TAG_NAME, "main").text
        browser.find_element(By.ID, "allow").click()
        wait_for(browser, lambda d: d.current_url.startswith(callback.url), timeout=PAGE_TIMEOUT)
    return {"login_page": login_page, "landed": browser.current_url}


def run_flow(node, site, callback, registered, driver, cwd, **options: Any) -> dict[str, Any]:
    """One authorization with the script (``options``: mode, bind), then the code exchanges of
    ``ATTEMPTS``, each answer by the key's name."""
    script = Script(node, config(site, callback, registered, **options), cwd, script=SCRIPT)
    try:
        authorize = script.receive()
        assert authorize["step"] == "authorize", json.dumps(authorize, indent=1)
        browser = sign_in(driver, authorize["url"], site, callback)
        answers = {}
        for attempt in ATTEMPTS:
            script.send(json.dumps({"callback": browser["landed"], "dpop": attempt}))
            answer = script.receive()
            assert answer["step"] == "exchange" and answer["dpop"] == attempt
            answers[attempt] = answer
    finally:
        script.close()
    return {"authorize": authorize, **browser, "answers": answers}


@pytest.fixture(scope="module")
def jar_flow(node, nonce_site, callback, registered, driver, tmp_path_factory) -> dict[str, Any]:
    """The request object through the browser, with dpop_jkt among its claims."""
    cwd = tmp_path_factory.mktemp("openid-client-jar")
    return run_flow(node, nonce_site, callback, registered, driver, cwd, mode="jar", bind=True)


@pytest.fixture(scope="module")
def jar_par_flow(node, nonce_site, callback, registered, driver, tmp_path_factory) -> dict[str, Any]:
    """The request object pushed (PAR) with a DPoP proof."""
    cwd = tmp_path_factory.mktemp("openid-client-jar-par")
    return run_flow(node, nonce_site, callback, registered, driver, cwd, mode="jar_par", bind=True)


@pytest.fixture(scope="module")
def fresh_request_object(node, nonce_site, callback, registered, tmp_path_factory) -> Iterator[str]:
    """A request object openid-client signed and nobody used (its jti unspent)."""
    cwd = tmp_path_factory.mktemp("openid-client-jar-fresh")
    script = Script(
        node, config(nonce_site, callback, registered, mode="jar", bind=False), cwd, script=SCRIPT
    )
    try:
        authorize = script.receive()
    finally:
        script.close()
    yield authorize["request_object"]


def assert_code_bound_to(flow: dict[str, Any], site: DemoSite) -> None:
    """The exchanges with another key and with none are invalid_grant; with the bound key, the
    tokens are DPoP-bound to it (the thumbprint computed here, RFC 7638)."""
    answers = flow["answers"]
    for attempt in ("other", "none"):
        refused = answers[attempt]
        assert not refused["ok"], refused
        assert (refused["status"], refused["error"]) == (400, "invalid_grant"), refused
        assert "dpop_jkt" in refused["error_description"]
    token_calls = [e for e in answers["bound"]["exchanges"] if e["url"] == site.endpoints["token"]]
    other_jwk, bound_jwk = flow["authorize"]["other_jwk"], flow["authorize"]["dpop_jwk"]
    # On the wire: the "other" exchange's proofs carried the other key, the "none" exchange none.
    assert {json.dumps(e["proof_jwk"], sort_keys=True) for e in token_calls if e["dpop"]} == {
        json.dumps(other_jwk, sort_keys=True),
        json.dumps(bound_jwk, sort_keys=True),
    }
    assert [e["dpop"] for e in token_calls].count(False) == 1

    done = answers["bound"]
    assert done["ok"], done
    assert done["token_type"].lower() == "dpop"
    assert done["id_token_claims"]["preferred_username"] == USERNAME
    claims = verified_claims(site, done["access_token"])
    assert claims["cnf"] == {"jkt": jwk.JWK(**bound_jwk).thumbprint()}
    assert claims["client_id"] == CLIENT_ID


# --- the tests ----------------------------------------------------------------------------------------
def test_the_client_is_registered_with_its_keys_and_must_sign_its_requests(registered):
    client = registered["client"]
    assert client["token_endpoint_auth_method"] == "private_key_jwt"
    assert client["require_signed_request_object"] is True
    assert client["client_secret"] is None


def test_the_library_signs_a_request_object_the_browser_carries(jar_flow, nonce_site, registered):
    url = urlsplit(jar_flow["authorize"]["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == nonce_site.endpoints["authorization"]
    query = parse_qs(url.query)
    assert sorted(query) == ["client_id", "request"]  # RFC 9101 5: the parameters are in the JWT
    token = query["request"][0]
    assert token == jar_flow["authorize"]["request_object"]
    header, claims = b64decode(token.split(".")[0]), b64decode(token.split(".")[1])
    assert header == {"alg": "ES256", "typ": "oauth-authz-req+jwt", "kid": "openid-client-jar-1"}
    assert claims["iss"] == claims["client_id"] == CLIENT_ID and claims["aud"] == nonce_site.issuer
    assert claims["response_type"] == "code" and claims["code_challenge_method"] == "S256"
    # RFC 9449 10: the thumbprint of the script's key, computed here.
    assert claims["dpop_jkt"] == jwk.JWK(**jar_flow["authorize"]["dpop_jwk"]).thumbprint()
    # The signature verifies with the registered public key (what the server checked).
    verifier = jws.JWS()
    verifier.deserialize(token)
    verifier.verify(jwk.JWK(**registered["private_jwk"]).public(), alg="ES256")


def test_the_server_swaps_the_request_object_for_a_request_uri(jar_flow, nonce_site, callback):
    """The login page's return address holds a request_uri, not the JWT (request_objects.resolve)."""
    login = parse_qs(urlsplit(jar_flow["login_page"]).query)
    back = parse_qs(urlsplit(login["next"][0]).query)
    assert sorted(back) == ["client_id", "request_uri"]
    landed = parse_qs(urlsplit(jar_flow["landed"]).query)
    assert jar_flow["landed"].startswith(callback.url + "?")
    assert landed["iss"] == [nonce_site.issuer] and landed["code"]


def test_jar_the_code_is_bound_to_the_dpop_jkt_of_the_request_object(jar_flow, nonce_site):
    assert_code_bound_to(jar_flow, nonce_site)


def test_jar_with_par_the_browser_carries_only_the_request_uri(jar_par_flow):
    url = urlsplit(jar_par_flow["authorize"]["url"])
    assert sorted(parse_qs(url.query)) == ["client_id", "request_uri"]
    pushes = [e for e in jar_par_flow["answers"]["bound"]["exchanges"] if e["url"].endswith("/oauth/par/")]
    # The push: the signed request object (and nothing of the request beside it), the client's
    # assertion, a DPoP proof with the script's key; use_dpop_nonce answered once, then 201.
    assert [e["status"] for e in pushes] == [400, 201]
    assert "use_dpop_nonce" in pushes[0]["error"]
    assert pushes[1]["params"] == ["client_assertion", "client_assertion_type", "client_id", "request"]
    assert pushes[1]["proof_jwk"] == jar_par_flow["authorize"]["dpop_jwk"]
    assert pushes[1]["proof_nonce"] == pushes[0]["dpop_nonce"]
    claims = b64decode(jar_par_flow["authorize"]["request_object"].split(".")[1])
    assert "dpop_jkt" not in claims  # the binding comes from the DPoP proof at PAR (RFC 9449 10.1)


def test_jar_with_par_the_code_is_bound_to_the_key_of_the_proof_at_par(jar_par_flow, nonce_site):
    assert_code_bound_to(jar_par_flow, nonce_site)


def test_a_tampered_pushed_request_object_is_invalid_request_object(
    node, nonce_site, callback, registered, tmp_path_factory
):
    cwd = tmp_path_factory.mktemp("openid-client-jar-tampered")
    options = {"mode": "jar_par", "bind": True, "tamper": True}
    script = Script(node, config(nonce_site, callback, registered, **options), cwd, script=SCRIPT)
    try:
        refused = script.receive()
    finally:
        script.close()
    assert refused["step"] == "authorize_refused", refused
    assert (refused["status"], refused["error"]) == (400, "invalid_request_object")
    assert "signature" in refused["error_description"]


def _forged_by_another_key(token: str) -> str:
    """The same header and claims, signed by a key that is not the client's (same kid)."""
    header, claims = b64decode(token.split(".")[0]), b64decode(token.split(".")[1])
    forger = jwk.JWK.generate(kty="EC", crv="P-256", kid=header["kid"])
    signed = jws.JWS(json.dumps(claims).encode())
    signed.add_signature(forger, alg="ES256", protected=json.dumps(header))
    return signed.serialize(compact=True)


def _changed(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = {**b64decode(payload), "scope": "openid profile email"}
    return f"{header}.{b64encode(claims)}.{signature}"


def _unsigned(token: str) -> str:
    header, payload, _signature = token.split(".")
    return f"{b64encode({**b64decode(header), 'alg': 'none'})}.{payload}."


@pytest.mark.parametrize(
    ("forge", "description"),
    [
        (_changed, "signature does not verify"),
        (_unsigned, "alg is not allowed"),
        (_forged_by_another_key, "signature does not verify"),
    ],
    ids=["claims-changed", "alg-none", "another-key"],
)
def test_a_request_object_the_client_did_not_sign_gets_an_error_page(
    forge, description, fresh_request_object, nonce_site, callback, driver
):
    """The person sees the error page, not a sign-in page and never the client's redirect URI."""
    from selenium.webdriver.common.by import By

    while not callback.queries.empty():
        callback.queries.get_nowait()
    url = (
        f"{nonce_site.endpoints['authorization']}?client_id={CLIENT_ID}&request={forge(fresh_request_object)}"
    )
    direct = http().get(url, allow_redirects=False)
    assert direct.status_code == 400 and "Location" not in direct.headers

    driver.delete_all_cookies()
    driver.get(url)
    wait_for(driver, lambda d: d.find_elements(By.ID, "error-title"), timeout=PAGE_TIMEOUT)
    assert driver.current_url == url
    page = driver.find_element(By.TAG_NAME, "main").text
    assert "invalid_request_object" in page and description in page
    assert callback.queries.empty()


def test_the_same_request_object_untouched_is_accepted(fresh_request_object, nonce_site):
    """The control for the test above: the object openid-client signed, as it is, goes on to sign-in
    by request_uri (so what refused the others was the change, not the object)."""
    url = f"{nonce_site.endpoints['authorization']}?client_id={CLIENT_ID}&request={fresh_request_object}"
    accepted = http().get(url, allow_redirects=False)
    assert accepted.status_code == 302, accepted.text
    assert sorted(parse_qs(urlsplit(accepted.headers["Location"]).query)) == ["client_id", "request_uri"]
