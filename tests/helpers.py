"""Drive the OAuth flows through Django's test client, the way a real client and browser would."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django.dispatch import Signal
from django.test import Client as BrowserClient
from django.test import TestCase
from django.urls import reverse

from tests.factories import UserFactory, pkce_pair

AUTHORIZE_URL = "/oauth/authorize/"
TOKEN_URL = "/oauth/token/"
REVOKE_URL = "/oauth/revoke/"


def basic_auth(client_id: str, secret: str) -> str:
    """An RFC 6749 2.3.1 Authorization header (form-encoding both parts is a no-op for our ids)."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def query(url: str) -> dict[str, str]:
    """The query parameters of a redirect Location, one value each."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def authorize_params(client, *, challenge: str | None = None, **extra: Any) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri_list[0] if client.redirect_uri_list else "",
        "state": "xyz-state",
    }
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update({k: v for k, v in extra.items() if v is not None})
    return params


def get_authorize(browser: BrowserClient, params: dict[str, str]):
    return browser.get(AUTHORIZE_URL + "?" + urlencode(params))


def consent_form_data(response) -> dict[str, str]:
    """The hidden fields of the rendered consent form (what a browser would post back)."""
    form = response.context["form"]
    return {name: "" if value is None else value for name, value in form.initial.items() if name != "allow"}


def approve(browser: BrowserClient, params: dict[str, str], *, allow: bool = True):
    """GET the consent page, then post the user's decision; returns the POST response."""
    page = get_authorize(browser, params)
    assert page.status_code == 200, page
    data = consent_form_data(page)
    if allow:
        data["allow"] = "true"
    return browser.post(AUTHORIZE_URL, data)


def get_code(browser: BrowserClient, client, *, scope: str = "", **extra: Any) -> tuple[str, str]:
    """Run the consent flow for ``client`` and return (code, code_verifier)."""
    verifier, challenge = pkce_pair()
    params = authorize_params(client, challenge=challenge, scope=scope or None, **extra)
    response = get_authorize(browser, params)
    if response.status_code == 200:
        data = consent_form_data(response)
        data["allow"] = "true"
        response = browser.post(AUTHORIZE_URL, data)
    assert response.status_code == 302, response
    params_back = query(response["Location"])
    assert "code" in params_back, params_back
    return params_back["code"], verifier


def token_request(
    browser: BrowserClient, data: dict[str, str], *, client=None, secret: str | None = None, **headers
):
    """POST to the token endpoint, authenticating with HTTP Basic when a secret is given."""
    if client is not None and secret is not None:
        headers["HTTP_AUTHORIZATION"] = basic_auth(client.client_id, secret)
    elif client is not None:
        data = {"client_id": client.client_id, **data}
    return browser.post(TOKEN_URL, data, **headers)


def exchange_code(browser: BrowserClient, client, code: str, verifier: str, **overrides: str):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri_list[0],
        "code_verifier": verifier,
        **overrides,
    }
    return token_request(browser, data, client=client, secret=getattr(client, "raw_secret", None))


def login_url() -> str:
    return reverse("login")


def grant_permissions(user, *names: str):
    """Give ``user`` these permissions ("app_label.codename"); none: every oauth_server permission.

    Returns the user re-read, since Django caches permissions on the user object.
    """
    from django.contrib.auth.models import Permission

    permissions = Permission.objects.filter(content_type__app_label="oauth_server")
    if names:
        wanted = {tuple(name.split(".", 1)) for name in names}
        permissions = [
            p
            for p in permissions.select_related("content_type")
            if (p.content_type.app_label, p.codename) in wanted
        ]
        assert len(permissions) == len(wanted), f"unknown permission among {names}"
    user.user_permissions.add(*permissions)
    return type(user)._default_manager.get(pk=user.pk)


@contextmanager
def signal_sent(signal: Signal) -> Iterator[list[dict[str, Any]]]:
    """Collect the keyword arguments of each sending of ``signal`` while the block runs; the
    block's on-commit callbacks (where this app sends its signals) run when it ends.

    Only this receiver is disconnected afterwards: the app's own (the audit trail's) stay.
    """
    received: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        received.append(kwargs)

    signal.connect(receiver, weak=False, dispatch_uid="tests.helpers.signal_sent")
    try:
        with TestCase.captureOnCommitCallbacks(execute=True):
            yield received
    finally:
        signal.disconnect(dispatch_uid="tests.helpers.signal_sent")


# --- the management API (tests/test_api.py, tests/test_api_permissions.py) -------------------------------
API = "/oauth/api/"
CLIENTS = API + "clients/"
SCOPES = API + "scopes/"
SCHEMA = API + "schema/"


def send(browser: BrowserClient, method: str, url: str, data=None, **extra):
    """A JSON request (``data`` is encoded unless it is already a string)."""
    body = data if isinstance(data, str | bytes) or data is None else json.dumps(data)
    return browser.generic(method, url, body or "", content_type="application/json", **extra)


def assert_error(response, status: int, error: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"error", "error_description"}, body
    if error is not None:
        assert body["error"] == error, body
    return body


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def service_account(*permissions: str):
    """An active, non-staff user with no usable password, holding these permissions (none: all)."""
    user = UserFactory()
    user.set_unusable_password()
    user.save()
    return grant_permissions(user, *permissions)


def signed_in(user) -> BrowserClient:
    """A browser signed in as ``user`` (the test client skips CSRF unless asked)."""
    browser = BrowserClient()
    browser.force_login(user)
    return browser


def assert_client_auth_refused(response, reason: str, method: str) -> None:
    """A 401 invalid_client that issued nothing, audited as ``client_auth_failed`` with this method
    and reason (the client-assertion methods' tests share it)."""
    from oauth_server.models import AccessToken, AuditEvent

    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"
    assert not AccessToken.objects.exists()
    event = AuditEvent.objects.filter(event=AuditEvent.Event.CLIENT_AUTH_FAILED).latest("id")
    assert event.details["method"] == method
    assert event.details["reason"] == reason, event.details
