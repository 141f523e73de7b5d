"""Sending one example and checking the properties every endpoint must keep (tests/fuzz/__init__.py).

Each example runs in a savepoint rolled back after it, with the cache (rate-limit counters) and the
signing-key cache cleared, so examples never see each other's effects. The ``check_*`` functions are
what an endpoint family must answer; the hypothesis tests and the sweep share them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import transaction
from django.test import Client as BrowserClient
from django.test.client import MULTIPART_CONTENT
from hypothesis import HealthCheck, settings

from oauth_server import keys
from oauth_server.models import AccessToken, Client, Consent, Grant, IDToken, RefreshToken
from tests.fuzz.strategies import Body, Pairs
from tests.fuzz.world import World

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    database=None,  # no example database in the work tree; failures print their reproduction
)


# --- sending and observing ------------------------------------------------------------------------
@dataclass
class Sent:
    method: str
    path: str
    query: Pairs
    body: Body | None
    meta: dict[str, str]

    def values(self, name: str) -> list[str]:
        """Every value of ``name`` the request carried, in the query or a form body."""
        found = [v for k, v in self.query if k == name]
        if self.body is not None:
            found += [v for k, v in parse_qsl(self.body.data.decode("utf-8", "replace")) if k == name]
            if self.body.content_type == MULTIPART_CONTENT or self.body.content_type == "application/json":
                found += [v for k, v in self.body_pairs if k == name]
        return found

    body_pairs: Pairs = field(default_factory=list)


def send(browser: BrowserClient, sent: Sent):
    url = sent.path
    if sent.query:
        url += "?" + urlencode(sent.query)
    body = sent.body or Body("", b"")
    extra = dict(sent.meta)
    if body.content_type == "":
        # The test client fills in a default content type; an empty one must reach the view.
        extra["CONTENT_TYPE"] = ""
    return browser.generic(
        sent.method, url, body.data, content_type=body.content_type or "application/octet-stream", **extra
    )


def excluded_models() -> set:
    excluded = {Session, LogEntry}
    with suppress(LookupError):
        excluded.add(apps.get_model("oauth_server", "AuditEvent"))
    return excluded


# Tables whose every row is compared, not only counted: a rejected request must not revoke a token,
# redeem a code, widen a consent or touch a client, key or user.
WATCHED = [AccessToken, RefreshToken, Grant, IDToken, Consent, Client]


def snapshot() -> dict[str, Any]:
    state: dict[str, Any] = {}
    excluded = excluded_models()
    for model in apps.get_models():
        if model in excluded:
            continue
        state[model._meta.label] = model._base_manager.count()
    for model in [*WATCHED, apps.get_model("oauth_server", "SigningKey"), get_user_model()]:
        state[model._meta.label + ":rows"] = list(model._base_manager.order_by("pk").values_list())
    return state


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]


@contextmanager
def example(world: World, *, logged_in: Any = None) -> Iterator[BrowserClient]:
    """One example: fresh counters and caches, a fresh browser, and a savepoint rolled back after."""
    caches["default"].clear()
    keys.clear_cache()
    with transaction.atomic():
        browser = BrowserClient()
        if logged_in is not None:
            browser.force_login(logged_in)
        yield browser
        transaction.set_rollback(True)
    keys.clear_cache()


def observe(world: World, sent: Sent, *, logged_in: Any = None):
    """Send ``sent``; return (response, names of the tables it changed)."""
    with example(world, logged_in=logged_in) as browser:
        before = snapshot()
        response = send(browser, sent)
        changed = diff(before, snapshot())
    return response, changed


def describe(response) -> str:
    return f"{response.status_code} {response.get('Content-Type')} {response.content[:300]!r}"


def assert_no_server_error(response) -> None:
    assert response.status_code < 500, describe(response)


def assert_json_error(sent: Sent, response, *, description: bool = True) -> dict:
    assert response["Content-Type"].startswith("application/json"), describe(response)
    if sent.method == "HEAD":
        return {}
    body = json.loads(response.content)
    assert isinstance(body, dict), describe(response)
    assert isinstance(body.get("error"), str) and body["error"], describe(response)
    if description:
        assert isinstance(body.get("error_description"), str) and body["error_description"], describe(
            response
        )
    return body


def assert_page(sent: Sent, response) -> None:
    assert response["Content-Type"].startswith("text/html"), describe(response)
    if sent.method != "HEAD":
        assert response.content.strip(), describe(response)


def assert_local_or_registered(response, registered: set[str]) -> None:
    """A redirect either stays on this site or goes to exactly a registered URI (never open)."""
    location = response["Location"]
    parts = urlsplit(location)
    if parts.scheme or parts.netloc:
        target = f"{parts.scheme}://{parts.netloc}{parts.path}"
        assert target in registered, f"open redirect to {location!r}; registered: {sorted(registered)}"
    else:
        assert location.startswith("/"), location
        assert not location.startswith(("//", "/\\")), location


def assert_nothing_written(changed: list[str], response) -> None:
    assert not changed, f"rejected request ({describe(response)}) changed {changed}"


def assert_allowed_status(response, allowed: set[int]) -> None:
    assert response.status_code in allowed, describe(response)


def options_answered(sent: Sent, response, changed: list[str]) -> bool:
    """OPTIONS (an Allow probe or a CORS preflight) never acts: no write, no redirect, no 5xx."""
    if sent.method != "OPTIONS":
        return False
    if "Location" in response:  # e.g. a login-required page sending an anonymous user to sign in
        assert_local_or_registered(response, set())
    assert_allowed_status(response, {200, 204, 302, 400, 401, 403, 404, 405, 406})
    assert_nothing_written(changed, response)
    return True


# --- what each endpoint family must answer (the hypothesis tests and the sweep) ----------------------
def check_token(sent: Sent, response, changed: list[str]) -> None:
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    assert "Location" not in response
    if response.status_code == 200:
        return  # a request that happened to be valid: tokens were legitimately issued
    assert_allowed_status(response, {400, 401, 403, 405, 413, 415, 429})
    # RFC 6749 5.2 makes error_description optional; oauthlib leaves it out for some errors.
    assert_json_error(sent, response, description=False)
    assert_nothing_written(changed, response)


def registered_redirects(world: World, client_ids: list[str]) -> set[str]:
    # The consent form is a Django form: it strips the whitespace around its hidden fields.
    return {
        uri
        for cid in client_ids
        if (c := world.client(cid) or world.client(cid.strip()))
        for uri in c.redirect_uri_list
    }


def check_authorize(world: World, sent: Sent, response, changed: list[str], client_ids: list[str]) -> None:
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    if response.status_code in (301, 302, 303, 307, 308):
        assert_local_or_registered(response, registered_redirects(world, client_ids))
        location = urlsplit(response["Location"])
        if "code=" in location.query:
            return  # a valid request: a code was issued (and consent recorded)
        if location.path == "/oauth/authorize/" and "request_uri=" in location.query and not location.netloc:
            # A verified request object (RFC 9101), stored: the browser continues with its request_uri.
            assert set(changed) <= {"oauth_server.PushedAuthorizationRequest"}, changed
            return
        assert_nothing_written(changed, response)
        return
    assert_nothing_written(changed, response)
    if response.status_code == 200:
        if sent.method != "OPTIONS":
            assert_page(sent, response)
        return
    assert_allowed_status(response, {400, 401, 403, 404, 405, 413, 429})
    if sent.method != "HEAD" and response.status_code != 405:
        assert_page(sent, response)


def login_next(world: World, pairs: Pairs) -> str:
    """An authorization request (hostile or not) as the login page's ``next``."""
    return "/oauth/authorize/?" + urlencode(pairs)


def check_login(world: World, sent: Sent, response, changed: list[str]) -> None:
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    if response.status_code in (301, 302, 303, 307, 308):
        # ``next`` never leaves the site: Django redirects to a path, or a relative one ("next=x").
        location = response["Location"]
        parts = urlsplit(location)
        assert not parts.scheme and not parts.netloc, location
        assert not location.startswith(("//", "\\", "/\\")), location
        return  # a successful sign-in (last_login, session)
    assert_nothing_written(changed, response)
    assert_allowed_status(response, {200, 400, 403, 405, 413, 429})
    if sent.method not in ("HEAD", "OPTIONS") and response.status_code != 405:
        assert_page(sent, response)


NUL_CLIENT = "web\x00"
