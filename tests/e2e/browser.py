"""A minimal user agent for end-to-end tests: a ``requests`` session that posts the site's real forms.

It signs in on the login page and approves the consent page exactly as a person would (hidden
fields and CSRF token included), so the OAuth client libraries under test only ever see the
redirect back to their callback.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urljoin

import requests

FORM_RE = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
INPUT_RE = re.compile(r"<input\b[^>]*>", re.I)
ATTR_RE = re.compile(r'([\w-]+)="([^"]*)"')
# Redirects to these stay in the browser (sign-in, authorization); any other target is the callback.
SERVER_PATHS = ("/oauth/authorize/", "/accounts/login/")


def _attrs(tag: str) -> dict[str, str]:
    return {k.lower(): unescape(v) for k, v in ATTR_RE.findall(tag)}


def post_form(html: str) -> tuple[str | None, dict[str, str]]:
    """(action, fields) of the page's first POST form with named inputs (CSRF token included).

    Submit buttons and checkboxes are left out: the caller chooses what to submit.
    """
    for form_attrs, body in FORM_RE.findall(html):
        attrs = _attrs(form_attrs)
        if attrs.get("method", "get").lower() != "post":
            continue
        fields = {}
        for tag in INPUT_RE.findall(body):
            input_attrs = _attrs(tag)
            kind = input_attrs.get("type", "text").lower()
            if "name" in input_attrs and kind not in ("submit", "button", "checkbox"):
                fields[input_attrs["name"]] = input_attrs.get("value", "")
        if len(fields) > 1 or "csrfmiddlewaretoken" not in fields:  # not just a sign-out button
            return attrs.get("action"), fields
    raise AssertionError(f"No POST form on the page:\n{html[:1000]}")


def form_fields(html: str) -> dict[str, str]:
    """Every named input of the page's POST form (hidden fields and CSRF token included)."""
    return post_form(html)[1]


class Browser:
    """A user agent: signs in on the login page when sent there, then approves the consent page."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False  # never through a proxy: the site is on the loopback

    def get(self, url: str, **kwargs) -> requests.Response:
        return self.session.get(urljoin(self.base_url + "/", url), **kwargs)

    def _submit(self, page: requests.Response, data: dict[str, str]) -> requests.Response:
        action, fields = post_form(page.text)
        target = urljoin(page.url, action or page.url)
        return self.session.post(
            target, data={**fields, **data}, allow_redirects=False, headers={"Referer": page.url}
        )

    def login(self, page: requests.Response, username: str, password: str) -> requests.Response:
        response = self._submit(page, {"username": username, "password": password})
        assert response.status_code == 302, f"login failed for {username}: {response.text[:500]}"
        return response

    def authorize(self, url: str, username: str, *, password: str, allow: bool = True) -> str:
        """Open a URL that leads to the authorization endpoint; sign in and decide on consent when
        asked. Returns where the server finally redirects to (the client's callback)."""
        response = self.get(url, allow_redirects=False)
        decided = False
        for _ in range(10):
            if response.status_code in (301, 302, 303):
                target = urljoin(response.url, response.headers["Location"])
                if not target.startswith(tuple(self.base_url + path for path in SERVER_PATHS)):
                    return target
                response = self.get(target, allow_redirects=False)
            elif response.status_code == 200 and 'name="password"' in response.text:
                response = self.login(response, username, password)
            elif response.status_code == 200 and not decided:  # the consent page
                response = self._submit(response, {"allow": "true"} if allow else {})
                decided = True
            else:
                raise AssertionError(f"{response.status_code} at {response.url}: {response.text[:500]}")
        raise AssertionError("too many redirects")
