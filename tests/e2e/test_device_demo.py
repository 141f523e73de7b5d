"""The device authorization grant against the running demo (``demo_site``: runserver on the demo's
own SQLite file), over real HTTP: the demo CLI (requests + Authlib) signs alice in and lists her
files; Authlib polls through slow_down, denial, expiry and a reused device code. The user's side is a
plain ``requests`` browser posting the real sign-in, code and consent forms."""

from __future__ import annotations

import re
import sqlite3
from urllib.parse import urljoin

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError

from example_project.demo import cli
from tests.e2e.browser import Browser

live = pytest.mark.live
GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def start(site, scope: str = "files:read") -> dict:
    metadata = cli.discover(site.base_url)
    return cli.start(metadata, cli.CLIENT_ID, scope)


def decide(site, codes: dict, *, allow: bool = True, username: str = "alice") -> requests.Response:
    """Open verification_uri_complete as the user: sign in, press Continue, then Allow or Deny."""
    browser = Browser(site.base_url)
    page = browser.get(codes["verification_uri_complete"], allow_redirects=False)
    assert page.status_code == 302 and "/accounts/login/" in page.headers["Location"]
    back = browser.login(
        browser.get(urljoin(site.base_url, page.headers["Location"])), username, site.password
    )
    form = browser.get(urljoin(site.base_url, back.headers["Location"]))
    assert codes["user_code"] in form.text  # filled in, not submitted
    entered = browser._submit(form, {"user_code": codes["user_code"]})
    assert entered.status_code == 302, entered.text[:500]
    consent = browser.get(urljoin(site.base_url, entered.headers["Location"]))
    assert "Demo CLI" in consent.text and "your own device" in consent.text
    # The device consent form has no hidden field but the CSRF token (Browser._submit skips those).
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', consent.text).group(1)
    data = {"csrfmiddlewaretoken": csrf, **({"allow": "true"} if allow else {})}
    done = browser.session.post(consent.url, data=data, headers={"Referer": consent.url})
    assert done.status_code == 200
    return done


def session() -> OAuth2Session:
    oauth = OAuth2Session(client_id=cli.CLIENT_ID, token_endpoint_auth_method="none")
    oauth.trust_env = False
    return oauth


def poll_error(site, codes: dict) -> str:
    with pytest.raises(OAuthError) as raised:
        session().fetch_token(site.endpoints["token"], grant_type=GRANT, device_code=codes["device_code"])
    return raised.value.error


@live
def test_the_demo_cli_signs_in_and_lists_the_files(demo_site):
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line)
        match = re.search(r"open (\S+\?user_code=[A-Z-]+)", line)
        if match:  # the user, on their phone, as soon as the CLI prints the link
            decide(demo_site, {"verification_uri_complete": match.group(1), "user_code": match.group(1)[-9:]})

    token, files = cli.login(demo_site.base_url, say=say, sleep=lambda seconds: None)
    assert token["access_token"] and token["refresh_token"]
    names = {f["name"] for f in files["files"]}
    # Her seeded files (other tests on this demo site may have added some of hers).
    assert names >= {f["name"] for f in demo_site.data["files"] if f["owner"] == "alice"}
    assert any("enter the code" in line for line in said)


@live
def test_slow_down_denial_expiry_and_reuse(demo_site):
    codes = start(demo_site)
    assert poll_error(demo_site, codes) == "authorization_pending"
    assert poll_error(demo_site, codes) == "slow_down"  # at once: sooner than the interval

    denied = start(demo_site)
    decide(demo_site, denied, allow=False)
    assert poll_error(demo_site, denied) == "access_denied"

    expired = start(demo_site)
    with sqlite3.connect(demo_site.cwd / "demo.sqlite3") as db:
        db.execute(
            "UPDATE oauth_server_deviceauthorization SET expires = '2000-01-01 00:00:00' "
            "WHERE status = 'pending'"
        )
    assert poll_error(demo_site, expired) == "expired_token"

    used = start(demo_site)
    decide(demo_site, used)
    token = session().fetch_token(
        demo_site.endpoints["token"], grant_type=GRANT, device_code=used["device_code"]
    )
    assert token["access_token"]
    assert poll_error(demo_site, used) == "invalid_grant"
