"""Hostile input: property-based tests (hypothesis) against every endpoint of the provider.

Each example sends one request built from a mix of *valid* values (a real client's id and secret, a
registered redirect URI, a PKCE pair, a code, tokens and an ID token minted by a real flow) and
hostile ones (random text, 100 KB values, control characters, NUL bytes, invalid UTF-8, broken
percent-encoding, non-ASCII digits, numbers past Python's int-string limit, deeply nested JSON,
values one past a stored column's length, repeated parameters, JSON or multipart bodies, wrong
content types, wrong methods, odd ``Authorization`` and other headers), then checks the properties
(docs/hardening.md, "Hostile input"):

- the status is never >= 500;
- JSON endpoints answer errors as a JSON object with ``error`` (and ``error_description``);
  HTML endpoints answer a page;
- a redirect leaves the site only for a URI registered, exactly, for the client named in the
  request (scheme, host and path compared); any other redirect stays on the site;
- a rejected request writes nothing: every model's row count (except ``AuditEvent``, sessions and
  the admin's ``LogEntry``) and every row of the OAuth tables (tokens, codes, consents, clients,
  keys, users) are the same before and after it.

Random examples rarely put one hostile value into an otherwise valid request, which is what reaches
the deepest code (a code being saved, a verifier being checked): ``test_hostile_class_sweep`` does
that for every class of hostile value, every parameter and every endpoint that takes a request from
the browser or a client (authorization GET and consent POST, login page, token endpoint).

Every example runs in a savepoint that is rolled back, with the cache (rate-limit counters) and the
signing-key cache cleared, so examples never see each other's effects.

``FUZZ_EXAMPLES`` sets the number of examples per test (default 40); a long run is e.g.
``FUZZ_EXAMPLES=2000 .venv/bin/pytest -p no:xdist -q tests/test_fuzz.py``.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest
from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core import signing
from django.core.cache import caches
from django.db import transaction
from django.test import Client as BrowserClient
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oauth_server import keys
from oauth_server.models import AccessToken, Client, Consent, Grant, IDToken, RefreshToken
from tests.factories import (
    DEFAULT_PASSWORD,
    AccessTokenFactory,
    ClientFactory,
    MachineClientFactory,
    PublicClientFactory,
    RefreshTokenFactory,
    UserFactory,
    pkce_pair,
)
from tests.helpers import basic_auth, exchange_code, get_code, grant_permissions

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

CALLBACK = "https://client.example.com/callback"
BYE = "https://client.example.com/bye"
SPA_CALLBACK = "https://spa.example.com/cb"
FIRST_PARTY_CALLBACK = "https://first.example.com/cb"
HUGE = 100_000


# --- the world: real clients, codes and tokens ------------------------------------------------------
@dataclass
class World:
    user: Any
    staff: Any
    web: Client
    spa: Client
    machine: Client
    admin: Client
    first_party: Client
    disabled: Client
    admin_token: str
    code: str
    verifier: str
    challenge: str
    access_token: str
    refresh_token: str
    id_token: str
    other_access_token: str
    other_refresh_token: str
    clients: list[Client] = field(default_factory=list)

    def secrets(self) -> list[str]:
        return [c.raw_secret for c in self.clients if getattr(c, "raw_secret", None)]

    def client_ids(self) -> list[str]:
        return [c.client_id for c in self.clients]

    def tokens(self) -> list[str]:
        return [
            self.access_token,
            self.refresh_token,
            self.id_token,
            self.other_access_token,
            self.other_refresh_token,
            self.admin_token,
            self.code,
        ]

    def client(self, client_id: str) -> Client | None:
        return next((c for c in self.clients if c.client_id == client_id), None)


@pytest.fixture
def world(db) -> World:
    user = UserFactory()
    web = ClientFactory(
        scopes=["openid", "profile", "email", "files:read"],
        redirect_uris=f"{CALLBACK} https://client.example.com/other",
        post_logout_redirect_uris=BYE,
    )
    spa = PublicClientFactory(scopes=["openid", "files:read"], redirect_uris=SPA_CALLBACK)
    machine = MachineClientFactory(scopes=["reports:read"])
    # The admin token acts with its client's owner, a service account holding every permission.
    admin = MachineClientFactory(scopes=["oauth:admin"], user=grant_permissions(UserFactory()))
    first_party = ClientFactory(scopes=["openid", "files:read"], redirect_uris=FIRST_PARTY_CALLBACK)
    first_party.skip_consent = True
    first_party.save()
    disabled = ClientFactory(scopes=["openid"], is_enabled=False, redirect_uris="https://off.example.com/cb")
    browser = BrowserClient()
    browser.force_login(user)
    # A real flow: signing keys, a consent, an ID token, a JWT or opaque access token, a refresh token.
    code, verifier = get_code(browser, web, scope="openid profile files:read")
    tokens = exchange_code(browser, web, code, verifier).json()
    # A second code, never exchanged, for the token endpoint to be fed.
    code, verifier = get_code(browser, web, scope="openid files:read")
    _, challenge = pkce_pair()
    other = RefreshTokenFactory(user=user, application=spa)
    return World(
        user=user,
        staff=grant_permissions(UserFactory(is_staff=True)),
        web=web,
        spa=spa,
        machine=machine,
        admin=admin,
        first_party=first_party,
        disabled=disabled,
        admin_token=AccessTokenFactory(user=None, application=admin, scope="oauth:admin").raw_token,
        code=code,
        verifier=verifier,
        challenge=challenge,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        id_token=tokens["id_token"],
        other_access_token=other.access_token.raw_token,
        other_refresh_token=other.raw_token,
        clients=[web, spa, machine, admin, first_party, disabled],
    )


# --- hostile values -------------------------------------------------------------------------------
def latin1(value: str) -> str:
    """What a WSGI server hands Django for a header sent as UTF-8 bytes (PEP 3333: latin-1)."""
    return value.encode("utf-8", "surrogatepass").decode("latin-1")


text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
control = st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=8)
percent_garbage = st.sampled_from(
    ["%", "%%", "%zz", "%0", "%00", "%C0%80", "%ff%fe", "%E2%82", "%u0041", "+", "&", "=", "&&==", "%26%3D"]
)
odd_scalars = st.sampled_from(
    ["", " ", "null", "[]", "{}", "true", "-1", "0", "9" * 40, "1e999", "NaN", "../../etc", "\\", '"', "'"]
)
huge = st.sampled_from(["A", "é", "%", "\x00", "😀", " "]).map(lambda c: c * (HUGE // len(c.encode())))
# str.isdigit() accepts these, int() does not (or gives another number than an ASCII reader would).
NON_ASCII_DIGITS = ["²", "٣", "１", "۹", "१", "𝟗", "³⁶⁰⁰", "3６00"]
non_ascii_digits = st.text(st.sampled_from("²³¹٠٣۹१１𝟗"), min_size=1, max_size=6)
# int() refuses more than 4,300 digits; 17 digits is past the longest accepted max_age.
HUGE_NUMBERS = ["9" * 4301, "1" + "0" * 5000, "9" * 17, str(2**64), "-" + "9" * 4301]
huge_numbers = st.one_of(st.sampled_from(HUGE_NUMBERS), st.integers(4301, 6000).map(lambda n: "7" * n))
# json.loads raises RecursionError past ~1,000 levels; the claims parameter allows 16.
DEEP_NESTING = ["[" * 1000 + "]" * 1000, '{"userinfo":' * 1000 + "null" + "}" * 1000, "[" * 17 + "]" * 17]
deep_nesting = st.one_of(
    st.sampled_from(DEEP_NESTING),
    st.integers(17, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(17, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(1, 3000).map(lambda n: "[" * n),  # unterminated
)
# One past the columns request values are stored in: Grant.code_challenge (128), Grant.nonce and
# Grant.code (255), AuditEvent.user_agent (512), Client.client_id (100 in the audit copy).
OVER_LONG = ["A" * 101, "A" * 129, "n" * 256, "u" * 513]
over_long = st.sampled_from([100, 101, 128, 129, 150, 151, 255, 256, 512, 513]).flatmap(
    lambda n: st.sampled_from(["A", "~", "é", "\x00"]).map(lambda c: c * n)
)
NUL_BYTES = ["\x00", "a\x00b", "\x00" * 300]


def hostile_values(valid: list[str]) -> st.SearchStrategy[str]:
    """A value that is sometimes valid, sometimes a valid one made hostile, sometimes junk."""
    valid_st = st.sampled_from(valid) if valid else st.just("")
    return st.one_of(
        valid_st,
        valid_st,
        text,
        control,
        percent_garbage,
        odd_scalars,
        huge,
        non_ascii_digits,
        huge_numbers,
        deep_nesting,
        over_long,
        valid_st.map(lambda v: v + "A" * max(1, 129 - len(v))),  # a valid value made one column too long
        st.tuples(valid_st, st.one_of(control, percent_garbage, text, st.just("\x00"))).map("".join),
        st.tuples(st.one_of(control, st.just("\x00")), valid_st).map("".join),
        valid_st.map(lambda v: v.upper()),
        valid_st.map(lambda v: v[: len(v) // 2]),
        valid_st.map(lambda v: f" {v} "),
    )


Pairs = list[tuple[str, str]]


@st.composite
def parameters(draw, base: dict[str, list[str]], extra_names: list[str] = ()) -> Pairs:
    """Parameter pairs from ``base`` (name -> valid values): each kept, dropped, made hostile or
    repeated, plus a few unexpected names."""
    pairs: Pairs = []
    for name, valid in base.items():
        how = draw(st.sampled_from(["valid", "valid", "drop", "hostile", "repeat", "repeat-same"]))
        if how == "drop":
            continue
        if how == "valid":
            pairs.append((name, draw(st.sampled_from(valid) if valid else st.just(""))))
            continue
        value = draw(hostile_values(valid))
        pairs.append((name, value))
        if how == "repeat":
            pairs.append((name, draw(hostile_values(valid))))
        elif how == "repeat-same":
            pairs.append((name, value))
    names = st.one_of(st.sampled_from([*base, *extra_names] or ["x"]), text, control, percent_garbage)
    pairs += draw(st.lists(st.tuples(names, hostile_values([])), max_size=3))
    return draw(st.permutations(pairs))


@dataclass
class Body:
    content_type: str
    data: bytes


def form(pairs: Pairs) -> bytes:
    return urlencode(pairs).encode()


@st.composite
def bodies(draw, pairs: Pairs) -> Body:
    """The parameters as a request body, encoded properly or not."""
    kind = draw(
        st.sampled_from(
            ["form", "form", "form", "raw", "bytes", "latin1", "json", "json-as-form", "multipart", "plain"]
            + ["charset", "no-boundary", "empty"]
        )
    )
    urlencoded = "application/x-www-form-urlencoded"
    if kind == "form":
        return Body(urlencoded, form(pairs))
    if kind == "raw":  # not percent-encoded at all: "&", "=", "%" and NUL go through as they are
        raw = "&".join(f"{k}={v}" for k, v in pairs)
        return Body(urlencoded, raw.encode("utf-8", "surrogatepass"))
    if kind == "bytes":  # invalid UTF-8, alone or after valid parameters
        junk = draw(st.binary(min_size=1, max_size=64))
        return Body(urlencoded, draw(st.sampled_from([b"", form(pairs) + b"&"])) + junk)
    if kind == "latin1":
        return Body(urlencoded, urlencode(pairs, encoding="latin-1", errors="replace").encode())
    if kind == "json":
        return Body("application/json", json.dumps(dict(pairs)).encode())
    if kind == "json-as-form":
        payload = draw(st.sampled_from([dict(pairs), [list(p) for p in pairs], {"x": dict(pairs)}]))
        return Body(urlencoded, json.dumps(payload).encode())
    if kind == "multipart":
        return Body(MULTIPART_CONTENT, encode_multipart(BOUNDARY, dict(pairs)))
    if kind == "plain":
        return Body(draw(st.sampled_from(["text/plain", "application/xml", ""])), form(pairs))
    if kind == "charset":
        charset = draw(st.sampled_from(["utf-16", "bogus", "latin-1", "utf-32", "ascii", "utf-8; x=y"]))
        return Body(f"{urlencoded}; charset={charset}", form(pairs))
    if kind == "no-boundary":
        return Body(
            draw(st.sampled_from(["multipart/form-data", "multipart/form-data; boundary=", "multipart/x"])),
            draw(st.sampled_from([form(pairs), b"--x\r\n\r\n", b""])),
        )
    return Body(urlencoded, b"")


def authorization_headers(world: World) -> st.SearchStrategy[str]:
    web_basic = basic_auth(world.web.client_id, world.web.raw_secret)
    return st.one_of(
        st.sampled_from(
            [
                web_basic,
                basic_auth(world.machine.client_id, world.machine.raw_secret),
                basic_auth(world.admin.client_id, world.admin.raw_secret),
                basic_auth(world.disabled.client_id, world.disabled.raw_secret),
                basic_auth(world.web.client_id, "wrong"),
                basic_auth(world.spa.client_id, ""),
                "Basic !!!",
                "Basic ",
                "Basic",
                "Basic " + base64.b64encode(b"no-colon").decode(),
                "Basic " + base64.b64encode(b"\xff\xfe:\x80").decode(),
                "Basic " + base64.b64encode(b"%zz:%00").decode(),
                "Basic " + base64.b64encode(b"\x00:\x00").decode(),
                web_basic + "===",
                web_basic + " extra",
                "Bearer",
                "Bearer ",
                "Bearer  a b c",
                f"Bearer {world.access_token}",
                f"Bearer  {world.access_token} ",
                f"bearer {world.access_token}",
                f"Bearer {world.access_token} {world.access_token}",
                f"Bearer {world.admin_token}",
                f"Bearer {world.id_token}",
                "Bearer \x00",
                "Bearer ====",
                "Digest username=x",
                "Bearer " + "A" * HUGE,
                "Basic " + "A" * HUGE,
                latin1("Bearer é😀"),
                latin1("Basic " + base64.b64encode("é:😀".encode()).decode()),
            ]
        ),
        text.map(latin1),
        st.tuples(st.sampled_from(["Basic ", "Bearer "]), text).map(lambda t: latin1("".join(t))),
    )


@st.composite
def headers(draw, world: World, authorization: bool = True) -> dict[str, str]:
    meta: dict[str, str] = {}
    if authorization and draw(st.booleans()):
        meta["HTTP_AUTHORIZATION"] = draw(authorization_headers(world))
    odd = st.one_of(text, control, huge, st.just("é")).map(latin1)
    for name in draw(
        st.lists(
            st.sampled_from(
                [
                    "HTTP_ORIGIN",
                    "HTTP_X_FORWARDED_FOR",
                    "HTTP_ACCEPT_LANGUAGE",
                    "HTTP_ACCEPT",
                    "HTTP_REFERER",
                    "HTTP_X_REQUESTED_WITH",
                    "HTTP_ACCESS_CONTROL_REQUEST_METHOD",
                    "HTTP_ACCESS_CONTROL_REQUEST_HEADERS",
                    "HTTP_X_JUNK",
                    "HTTP_COOKIE",
                    "HTTP_USER_AGENT",
                ]
            ),
            unique=True,
            max_size=3,
        )
    ):
        choices = [odd]
        if name == "HTTP_ORIGIN":
            choices.append(st.sampled_from(["https://client.example.com", "null", "https://evil.example"]))
        meta[name] = draw(st.one_of(*choices))
    return meta


METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def methods(*usual: str) -> st.SearchStrategy[str]:
    """Mostly the endpoint's own methods, sometimes any other."""
    return st.one_of(st.sampled_from(list(usual)), st.sampled_from(list(usual)), st.sampled_from(METHODS))


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


# --- token endpoint -------------------------------------------------------------------------------
def token_parameters(world: World) -> dict[str, list[str]]:
    return {
        "grant_type": ["authorization_code", "refresh_token", "client_credentials", "password", "implicit"]
        + ["urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"],
        "code": [world.code, world.access_token],
        "redirect_uri": [CALLBACK, SPA_CALLBACK, CALLBACK + "/", "https://evil.example/cb"],
        "code_verifier": [world.verifier, world.challenge, "a" * 43, "a" * 129],
        "refresh_token": [world.refresh_token, world.other_refresh_token, world.access_token],
        "client_id": world.client_ids(),
        "client_secret": world.secrets(),
        "scope": ["openid", "files:read", "reports:read", "oauth:admin", "openid files:read", "nope"],
        "resource": ["https://api.example.com", "urn:x", "not a uri", "https://api.example.com#f"],
        "device_code": ["x"],
    }


@FUZZ
@given(data=st.data())
def test_token_endpoint(world, data):
    sent = Sent(
        method=data.draw(methods("POST")),
        path="/oauth/token/",
        query=data.draw(st.one_of(st.just([]), parameters({"client_secret": world.secrets()}))),
        body=data.draw(parameters(token_parameters(world)).flatmap(bodies)),
        meta=data.draw(headers(world)),
    )
    response, changed = observe(world, sent)
    check_token(sent, response, changed)


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


# --- revocation and introspection -----------------------------------------------------------------
def revocation_parameters(world: World) -> dict[str, list[str]]:
    return {
        "token": world.tokens(),
        "token_type_hint": ["access_token", "refresh_token", "id_token", "nope"],
        "client_id": world.client_ids(),
        "client_secret": world.secrets(),
    }


def caller_pks(world: World, sent: Sent) -> set[int]:
    """The clients whose credentials appear anywhere in the request (those it may act for)."""
    ids = set(sent.values("client_id"))
    authorization = sent.meta.get("HTTP_AUTHORIZATION", "")
    for client in world.clients:
        if client.client_id in authorization or client.client_id in ids:
            ids.add(client.client_id)
        raw_basic = basic_auth(client.client_id, getattr(client, "raw_secret", None) or "")
        if authorization.startswith(raw_basic):
            ids.add(client.client_id)
    return {c.pk for c in world.clients if c.client_id in ids}


@FUZZ
@given(data=st.data())
def test_revocation_endpoint(world, data):
    sent = Sent(
        method=data.draw(methods("POST")),
        path="/oauth/revoke/",
        query=data.draw(st.one_of(st.just([]), parameters({"token": world.tokens()}))),
        body=data.draw(parameters(revocation_parameters(world)).flatmap(bodies)),
        meta=data.draw(headers(world)),
    )
    with example(world) as browser:
        before_tokens = token_rows()
        before = snapshot()
        response = send(browser, sent)
        changed = diff(before, snapshot())
        after_tokens = token_rows()
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    assert "Location" not in response
    if response.status_code == 200:
        assert response["Content-Type"] == "application/json"
        if sent.method != "HEAD" and sent.method != "OPTIONS":
            assert json.loads(response.content) == {}
        # A legitimate revocation touches the caller's own tokens only.
        touched = {row[1] for key, row in before_tokens.items() if after_tokens.get(key) != row}
        assert touched <= caller_pks(world, sent), (touched, sent.meta.get("HTTP_AUTHORIZATION"))
        assert set(changed) <= {
            "oauth_server.AccessToken",
            "oauth_server.RefreshToken",
            "oauth_server.IDToken",
            "oauth_server.AccessToken:rows",
            "oauth_server.RefreshToken:rows",
            "oauth_server.IDToken:rows",
        }, changed
        return
    assert_allowed_status(response, {400, 401, 405, 413, 415, 429})
    assert_json_error(sent, response)
    assert_nothing_written(changed, response)


def token_rows() -> dict[tuple[str, int], tuple]:
    """(table, pk) -> (revoked-or-present marker, client pk) for every access and refresh token."""
    rows: dict[tuple[str, int], tuple] = {}
    for pk, client, revoked in RefreshToken.objects.values_list("pk", "application_id", "revoked"):
        rows[("refresh", pk)] = (revoked, client)
    for pk, client in AccessToken.objects.values_list("pk", "application_id"):
        rows[("access", pk)] = (None, client)
    return rows


@FUZZ
@given(data=st.data())
def test_introspection_endpoint(world, data):
    sent = Sent(
        method=data.draw(methods("POST")),
        path="/oauth/introspect/",
        query=data.draw(st.one_of(st.just([]), parameters({"token": world.tokens()}))),
        body=data.draw(parameters(revocation_parameters(world)).flatmap(bodies)),
        meta=data.draw(headers(world)),
    )
    response, changed = observe(world, sent)
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    assert "Location" not in response
    assert_nothing_written(changed, response)  # introspection never writes, whatever the answer
    if response.status_code == 200:
        assert response["Content-Type"] == "application/json"
        if sent.method not in ("HEAD", "OPTIONS"):
            body = json.loads(response.content)
            assert isinstance(body.get("active"), bool), body
        return
    assert_allowed_status(response, {400, 401, 405, 413, 415, 429})
    assert_json_error(sent, response)


# --- userinfo ---------------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_userinfo_endpoint(world, data):
    base = {"access_token": [world.access_token, world.other_access_token, world.admin_token]}
    sent = Sent(
        method=data.draw(methods("GET", "POST")),
        path="/oauth/userinfo/",
        query=data.draw(st.one_of(st.just([]), parameters(base, ["schema", "claims"]))),
        body=data.draw(st.one_of(st.none(), parameters(base).flatmap(bodies))),
        meta=data.draw(headers(world)),
    )
    response, changed = observe(world, sent)
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    assert "Location" not in response
    assert_nothing_written(changed, response)
    if response.status_code == 200:
        assert response["Content-Type"].startswith("application/json")
        if sent.method not in ("HEAD", "OPTIONS"):
            assert json.loads(response.content)["sub"]
        return
    assert_allowed_status(response, {400, 401, 403, 405, 413, 415, 429})
    # RFC 6750 3.1: a request without any token gets a bare challenge (no error code).
    bare = response.status_code == 401 and response.get("WWW-Authenticate") == "Bearer"
    if bare:
        assert response["Content-Type"].startswith("application/json")
        if sent.method != "HEAD":
            assert json.loads(response.content)["error_description"]
    else:
        assert_json_error(sent, response)
    if response.status_code in (401, 403):
        assert response["WWW-Authenticate"].startswith("Bearer"), response.get("WWW-Authenticate")


# --- authorization endpoint -------------------------------------------------------------------------
def authorize_parameters(world: World) -> dict[str, list[str]]:
    return {
        "response_type": ["code", "token", "id_token", "code id_token", "none"],
        "client_id": world.client_ids(),
        "redirect_uri": [CALLBACK, SPA_CALLBACK, FIRST_PARTY_CALLBACK, "https://evil.example/cb"]
        + [CALLBACK + "?x=1", CALLBACK + "#f", "//evil.example", "/\\evil.example", "javascript:alert(1)"],
        "scope": ["openid", "openid profile", "files:read", "reports:read", "oauth:admin", "nope"],
        "state": ["xyz", "a" * 300],
        "code_challenge": [world.challenge, "abc", world.challenge + "=", "A" * 129],
        "code_challenge_method": ["S256", "plain"],
        "nonce": ["n-0S6", "n" * 255],
        "prompt": ["none", "login", "consent", "none login", "select_account"],
        "max_age": ["0", "3600", "-1", "1e3", "²", "9" * 4301, "9" * 16],
        "oauth_server_reauth": [
            "x",
            signing.dumps({"after": 0, "not": ""}, salt="oauth_server.reauthentication"),
        ],
        "id_token_hint": [world.id_token, world.access_token],
        "login_hint": ["alice"],
        "resource": ["https://api.example.com", "urn:x"],
        "response_mode": ["query", "fragment", "form_post"],
        "claims": ['{"userinfo": {"email": null}}', "{", "[]", DEEP_NESTING[0], DEEP_NESTING[1]],
        "request": ["eyJ.eyJ.x"],
        "request_uri": ["https://evil.example/r"],
        "ui_locales": ["fr", "xx"],
    }


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
        if "code=" in urlsplit(response["Location"]).query:
            return  # a valid request: a code was issued (and consent recorded)
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


@FUZZ
@given(data=st.data(), logged_in=st.booleans())
def test_authorization_endpoint_get(world, data, logged_in):
    sent = Sent(
        method=data.draw(methods("GET")),
        path="/oauth/authorize/",
        query=data.draw(parameters(authorize_parameters(world))),
        body=None,
        meta=data.draw(headers(world)),
    )
    response, changed = observe(world, sent, logged_in=world.user if logged_in else None)
    client_ids = [v for k, v in sent.query if k == "client_id"]
    check_authorize(world, sent, response, changed, client_ids)


def consent_parameters(world: World) -> dict[str, list[str]]:
    return {
        "client_id": world.client_ids(),
        "redirect_uri": [CALLBACK, SPA_CALLBACK, FIRST_PARTY_CALLBACK, "https://evil.example/cb"],
        "response_type": ["code", "token"],
        "scope": ["openid", "openid profile", "files:read", "oauth:admin", "nope"],
        "state": ["xyz"],
        "code_challenge": [world.challenge, "abc", "A" * 129],
        "code_challenge_method": ["S256", "plain"],
        "nonce": ["n", "n" * 255, "n" * 256],
        "claims": ['{"userinfo": {"email": null}}', "{", DEEP_NESTING[0]],
        "resource": ["https://api.example.com", "urn:x"],
        "allow": ["true", "false", "Authorize"],
    }


@FUZZ
@given(data=st.data())
def test_authorization_endpoint_consent_post(world, data):
    pairs = data.draw(parameters(consent_parameters(world)))
    sent = Sent(
        method=data.draw(methods("POST")),
        path="/oauth/authorize/",
        query=data.draw(st.one_of(st.just([]), parameters({"client_id": world.client_ids()}))),
        body=data.draw(bodies(pairs)),
        meta=data.draw(headers(world, authorization=False)),
        body_pairs=pairs,
    )
    response, changed = observe(world, sent, logged_in=world.user)
    client_ids = sent.values("client_id") + [v for k, v in pairs if k == "client_id"]
    check_authorize(world, sent, response, changed, client_ids)


# --- login page -----------------------------------------------------------------------------------
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


@FUZZ
@given(data=st.data())
def test_login_page(world, data):
    """The login page reads ``next`` (an authorization request: its client_id and login_hint)."""
    authorize_pairs = data.draw(parameters(authorize_parameters(world)))
    next_values = [login_next(world, authorize_pairs), "https://evil.example/", "//evil.example"]
    base = {"next": next_values, "username": [world.user.username], "password": [DEFAULT_PASSWORD]}
    pairs = data.draw(parameters(base))
    method = data.draw(methods("GET", "POST"))
    as_query = method != "POST" or data.draw(st.booleans())
    sent = Sent(
        method=method,
        path="/accounts/login/",
        query=pairs if as_query else data.draw(st.one_of(st.just([]), parameters({"next": next_values}))),
        body=None if as_query else data.draw(bodies(pairs)),
        meta=data.draw(headers(world, authorization=False)),
        body_pairs=pairs,
    )
    response, changed = observe(world, sent)
    check_login(world, sent, response, changed)


# --- every class of hostile value in every parameter, the rest of the request valid ----------------
# One value of each class per parameter (the hypothesis tests draw the others): 256 characters is
# past every column a request value is stored in but the user agent's (sent 513 long separately).
HOSTILE_CLASSES = {
    "non-ascii-digits": "²",
    "huge-numbers": HUGE_NUMBERS[0],
    "deep-nesting": DEEP_NESTING[0],
    "over-long": "A" * 256,
    "nul-bytes": "a\x00b",
}


def valid_authorize_pairs(world: World, client: Client) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri_list[0],
        "scope": "openid",
        "state": "xyz",
        "code_challenge": world.challenge,
        "code_challenge_method": "S256",
        "nonce": "n-0S6",
        "max_age": "3600",
        "prompt": "consent",
        "claims": '{"userinfo": {"email": null}}',
        "login_hint": "alice",
        "ui_locales": "fr",
        "id_token_hint": world.id_token,
    }


# Parameters swept though absent from the valid requests (the world's clients have no audiences).
SWEPT_EXTRAS = ["resource", "request", "response_mode", "x"]


def with_value(pairs: dict[str, str], name: str, value: str) -> Pairs:
    """``pairs`` with ``name`` set to ``value`` (added when absent)."""
    return [*{**pairs, name: value}.items()]


@dataclass
class SweepBase:
    """A valid request of an endpoint, and the parameters the sweep sets to each hostile value."""

    method: str
    path: str
    pairs: dict[str, str]
    extras: list[str]
    user: Any = None
    client_ids: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    in_query: bool = False

    def sent(self, pairs: Pairs) -> Sent:
        if self.in_query:
            return Sent(self.method, self.path, pairs, None, dict(self.meta))
        body = Body("application/x-www-form-urlencoded", form(pairs))
        return Sent(self.method, self.path, [], body, dict(self.meta), pairs)


def sweep_bases(world: World, endpoint: str) -> list[SweepBase]:
    if endpoint == "authorize-get":
        first_party = valid_authorize_pairs(world, world.first_party)
        del first_party["prompt"]  # skip_consent and no prompt: the GET itself saves the code
        web = valid_authorize_pairs(world, world.web)
        return [
            SweepBase(
                "GET",
                AUTHORIZE,
                first_party,
                SWEPT_EXTRAS,
                world.user,
                [world.first_party.client_id],
                in_query=True,
            ),
            SweepBase("GET", AUTHORIZE, web, SWEPT_EXTRAS, world.user, [world.web.client_id], in_query=True),
            SweepBase("GET", AUTHORIZE, web, SWEPT_EXTRAS, None, [world.web.client_id], in_query=True),
        ]
    if endpoint == "consent-post":
        pairs = {**valid_authorize_pairs(world, world.web), "allow": "true"}
        return [SweepBase("POST", AUTHORIZE, pairs, SWEPT_EXTRAS, world.user, [world.web.client_id])]
    if endpoint == "login":
        credentials = {"username": world.user.username, "password": DEFAULT_PASSWORD}
        next_url = {"next": login_next(world, list(valid_authorize_pairs(world, world.web).items()))}
        return [
            SweepBase("GET", LOGIN, next_url, [], in_query=True),
            SweepBase("POST", LOGIN, {**credentials, **next_url}, []),
        ]
    pairs = {
        "grant_type": "authorization_code",
        "code": world.code,
        "redirect_uri": CALLBACK,
        "code_verifier": world.verifier,
    }
    auth = {"HTTP_AUTHORIZATION": basic_auth(world.web.client_id, world.web.raw_secret)}
    extras = ["client_id", "client_secret", "refresh_token", "scope", "resource", "x"]
    return [SweepBase("POST", "/oauth/token/", pairs, extras, meta=auth)]


AUTHORIZE = "/oauth/authorize/"
LOGIN = "/accounts/login/"


def sweep_requests(world: World, endpoint: str, value: str) -> Iterator[tuple[SweepBase, Sent]]:
    """Every parameter of the endpoint's valid requests set to ``value``, or suffixed with it; for the
    login page, also every parameter of the authorization request in ``next``."""
    for base in sweep_bases(world, endpoint):
        for name in [*base.pairs, *base.extras]:
            yield base, base.sent(with_value(base.pairs, name, value))
        if endpoint == "login":
            authorize = valid_authorize_pairs(world, world.web)
            for name in [*authorize, *SWEPT_EXTRAS]:
                next_url = login_next(world, with_value(authorize, name, value))
                yield base, base.sent(with_value(base.pairs, "next", next_url))
        if endpoint == "token":
            for user_agent in (value, "u" * 513):
                sent = base.sent(list(base.pairs.items()))
                yield base, replace(sent, meta={**base.meta, "HTTP_USER_AGENT": latin1(user_agent)})


def check_sweep(world: World, endpoint: str, base: SweepBase, sent: Sent, response, changed) -> None:
    if endpoint == "token":
        check_token(sent, response, changed)
    elif endpoint == "login":
        check_login(world, sent, response, changed)
    else:
        check_authorize(world, sent, response, changed, base.client_ids)


@pytest.mark.parametrize("endpoint", ["authorize-get", "consent-post", "login", "token"])
def test_sweep_bases_are_valid_requests(world, endpoint):
    """The sweep's requests reach the deep code: unchanged, each issues a code, a page or tokens."""
    for base in sweep_bases(world, endpoint):
        sent = base.sent(list(base.pairs.items()))
        response, changed = observe(world, sent, logged_in=base.user)
        check_sweep(world, endpoint, base, sent, response, changed)
        if endpoint == "token":
            assert response.status_code == 200, describe(response)
        elif endpoint == "login" and sent.method == "GET":
            assert response.status_code == 200 and response.context["client"] == world.web
        elif endpoint == "login":
            assert response.status_code == 302 and response["Location"].startswith(AUTHORIZE)
        elif base.user is None:
            assert response["Location"].startswith(LOGIN), describe(response)
        elif base.pairs.get("prompt") == "consent" and sent.method == "GET":
            assert response.status_code == 200, describe(response)
        else:
            assert "code=" in response["Location"], describe(response)


@pytest.mark.parametrize("endpoint", ["authorize-get", "consent-post", "login", "token"])
def test_hostile_class_sweep(world, endpoint):
    """Each class of hostile value in each parameter of an otherwise valid request: no 500, and the
    properties hold."""
    for value in HOSTILE_CLASSES.values():
        for base, sent in sweep_requests(world, endpoint, value):
            response, changed = observe(world, sent, logged_in=base.user)
            try:
                check_sweep(world, endpoint, base, sent, response, changed)
            except AssertionError as failure:
                raise AssertionError(
                    f"{sent.method} {sent.path} {sent.query or sent.body_pairs}"[:800]
                ) from failure


# --- logout -------------------------------------------------------------------------------------------
def logout_parameters(world: World) -> dict[str, list[str]]:
    return {
        "id_token_hint": [world.id_token, world.access_token, world.admin_token],
        "client_id": world.client_ids(),
        "post_logout_redirect_uri": [BYE, CALLBACK, "https://evil.example/bye", "//evil.example", BYE + "/"],
        "state": ["s"],
        "logout_hint": ["x"],
        "ui_locales": ["fr"],
    }


@FUZZ
@given(data=st.data(), logged_in=st.booleans())
def test_logout_endpoint(world, data, logged_in):
    pairs = data.draw(parameters(logout_parameters(world)))
    method = data.draw(methods("GET", "POST"))
    as_query = method != "POST" or data.draw(st.booleans())
    sent = Sent(
        method=method,
        path="/oauth/logout/",
        query=pairs if as_query else [],
        body=None if as_query else data.draw(bodies(pairs)),
        meta=data.draw(headers(world, authorization=False)),
        body_pairs=pairs,
    )
    response, changed = observe(world, sent, logged_in=world.user if logged_in else None)
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    if response.status_code in (301, 302, 303, 307, 308):
        # Registered post-logout URIs (of any client: the view itself narrows it to the hint's).
        registered = {BYE}
        assert_local_or_registered(response, registered)
        return  # a logout: the session ends and the requesting client's tokens may be revoked
    assert_nothing_written(changed, response)
    if response.status_code == 200 and sent.method == "OPTIONS":
        return
    assert_allowed_status(response, {200, 400, 403, 405, 413, 429})
    if sent.method != "HEAD":
        assert_page(sent, response)


# --- connected apps ---------------------------------------------------------------------------------
@FUZZ
@given(data=st.data(), logged_in=st.booleans())
def test_connected_apps(world, data, logged_in):
    target = data.draw(
        st.one_of(
            st.just(""),
            st.sampled_from(world.client_ids()).map(lambda cid: f"{quote(cid, safe='')}/revoke/"),
            st.one_of(text, control, percent_garbage, huge).map(lambda v: f"{quote(v, safe='%/')}/revoke/"),
        )
    )
    pairs = data.draw(parameters({"csrfmiddlewaretoken": ["x"], "next": ["https://evil.example"]}))
    sent = Sent(
        method=data.draw(methods("GET", "POST")),
        path="/oauth/connected-apps/" + target,
        query=data.draw(st.one_of(st.just([]), parameters({"next": ["https://evil.example", "//evil"]}))),
        body=data.draw(bodies(pairs)),
        meta=data.draw(headers(world, authorization=False)),
    )
    response, changed = observe(world, sent, logged_in=world.user if logged_in else None)
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    if response.status_code in (301, 302, 303, 307, 308):
        assert_local_or_registered(response, set())
        if response.status_code == 303:
            return  # the user revoked one of their apps
    assert_nothing_written(changed, response)
    assert_allowed_status(response, {200, 302, 400, 403, 404, 405, 413, 429})


# --- discovery and JWKS -------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_discovery_and_jwks(world, data):
    sent = Sent(
        method=data.draw(methods("GET")),
        path=data.draw(
            st.sampled_from(
                [
                    "/oauth/.well-known/openid-configuration",
                    "/oauth/.well-known/oauth-authorization-server",
                    "/oauth/.well-known/jwks.json",
                ]
            )
        ),
        query=data.draw(parameters({"format": ["json", "yaml"]})),
        body=data.draw(st.one_of(st.none(), parameters({"x": ["y"]}).flatmap(bodies))),
        meta=data.draw(headers(world)),
    )
    response, changed = observe(world, sent)
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    assert_nothing_written(changed, response)
    assert "Location" not in response
    if sent.method in ("GET", "HEAD"):
        assert response.status_code == 200, describe(response)
        if sent.method == "GET":
            document = json.loads(response.content)
            assert "keys" in document or document["issuer"], document
    else:
        assert_allowed_status(response, {200, 204, 405})


# --- the management API -------------------------------------------------------------------------------
def json_values(world: World) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        hostile_values(["confidential", "public", "authorization_code", CALLBACK, "openid", "jwt"]),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=3),
        max_leaves=8,
    )


CLIENT_FIELDS = [
    "name",
    "client_type",
    "grant_types",
    "redirect_uris",
    "post_logout_redirect_uris",
    "scopes",
    "skip_consent",
    "is_enabled",
    "logo_uri",
    "access_token_lifetime",
    "refresh_token_lifetime",
    "audiences",
    "resource_identifiers",
    "access_token_format",
    "client_secret",
    "client_id",
]


@st.composite
def api_payloads(draw, world: World) -> Any:
    valid = {
        "name": "Fuzzed",
        "client_type": "confidential",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [CALLBACK],
        "scopes": ["openid"],
        "description": "A scope",
        "is_default": False,
    }
    payload: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from([*CLIENT_FIELDS, "description", "is_default"]), unique=True)):
        payload[name] = draw(st.one_of(st.just(valid.get(name, "")), json_values(world)))
    return draw(st.one_of(st.just(payload), st.just(payload), json_values(world)))


@FUZZ
@given(data=st.data())
def test_management_api(world, data):
    path = data.draw(
        st.one_of(
            st.sampled_from(
                [
                    "clients/",
                    f"clients/{world.web.client_id}/",
                    f"clients/{world.spa.client_id}/rotate-secret/",
                    f"clients/{world.web.client_id}/rotate-secret/",
                    "scopes/",
                    "scopes/openid/",
                    "scopes/files:read/",
                    f"users/{world.user.pk}/consents/",
                    f"users/{world.user.pk}/consents/{world.web.client_id}/",
                    f"users/{world.user.pk}/tokens/",
                    f"users/{world.user.pk}/tokens/refresh_token/1/",
                    f"users/{world.user.pk}/tokens/access_token/99999999999999999999/",
                    "schema/",
                    "clients",
                ]
            ),
            st.tuples(
                st.sampled_from(["clients/", "scopes/", "users/", f"users/{world.user.pk}/tokens/"]),
                st.one_of(text, control, percent_garbage, odd_scalars),
            ).map(lambda t: t[0] + quote(t[1], safe="%/") + "/"),
        )
    )
    method = data.draw(methods("GET", "POST", "PUT", "PATCH", "DELETE"))
    encoding = data.draw(st.sampled_from(["json", "json", "json", "form", "bytes", "wrong-type", "empty"]))
    payload = data.draw(api_payloads(world))
    if encoding == "json":
        body = Body("application/json", json.dumps(payload).encode())
    elif encoding == "form":
        flat = payload if isinstance(payload, dict) else {"x": payload}
        body = Body("application/x-www-form-urlencoded", form([(k, str(v)) for k, v in flat.items()]))
    elif encoding == "bytes":
        body = Body("application/json", data.draw(st.binary(min_size=1, max_size=64)))
    elif encoding == "wrong-type":
        body = Body(
            data.draw(st.sampled_from(["text/plain", "application/xml", ""])), json.dumps(payload).encode()
        )
    else:
        body = Body("application/json", b"")
    auth = data.draw(st.sampled_from(["staff", "token", "none", "header"]))
    meta = data.draw(headers(world, authorization=auth == "header"))
    if auth == "token":
        meta["HTTP_AUTHORIZATION"] = f"Bearer {world.admin_token}"
    sent = Sent(
        method=method,
        path="/oauth/api/" + path,
        query=data.draw(st.one_of(st.just([]), parameters({"page": ["1", "0", "-1"], "page_size": ["500"]}))),
        body=body,
        meta=meta,
    )
    response, changed = observe(world, sent, logged_in=world.staff if auth == "staff" else None)
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    if 200 <= response.status_code < 300:
        return  # an accepted request: what it changed is the API's business (tested in test_api)
    if response.status_code in (301, 302, 308):
        assert_local_or_registered(response, set())
    else:
        assert_allowed_status(response, {400, 401, 403, 404, 405, 406, 413, 415, 429})
        if sent.method != "HEAD" and response.status_code != 406:
            assert_json_error(sent, response)
    assert_nothing_written(changed, response)


# --- regressions: what the fuzzer found, pinned down ------------------------------------------------
NON_ASCII_BASIC = latin1("Basic " + base64.b64encode("é:😀".encode()).decode())


@pytest.mark.parametrize("path", ["/oauth/token/", "/oauth/introspect/", "/oauth/revoke/"])
@pytest.mark.parametrize("authorization", [NON_ASCII_BASIC, latin1("Basic é")])
def test_non_ascii_basic_credentials_are_invalid_client(client, world, path, authorization):
    """DOT's base64 decoding raised ValueError (a 500) for an Authorization header with non-ASCII."""
    data = {"grant_type": "client_credentials", "token": world.access_token}
    before = snapshot()
    response = client.post(path, data, HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 401, describe(response)
    assert response.json()["error"] == "invalid_client"
    assert response["WWW-Authenticate"] == 'Basic realm="oauth"'
    assert diff(before, snapshot()) == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"grant_type=client_credentials"),  # no boundary
        ("multipart/form-data; boundary=", b"--\r\n"),
        ("multipart/form-data; boundary=\x00", b"--\x00\r\n"),
    ],
)
def test_unreadable_body_at_the_token_endpoint_is_invalid_request(client, world, content_type, body):
    """A multipart body Django cannot parse escaped DOT's token view as a 500."""
    auth = basic_auth(world.machine.client_id, world.machine.raw_secret)
    response = client.generic(
        "POST", "/oauth/token/", body, content_type=content_type, HTTP_AUTHORIZATION=auth
    )
    assert response.status_code == 400, describe(response)
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "The request body could not be read.",
    }
    assert response["Cache-Control"] == "no-store"
    assert not AccessToken.objects.filter(application=world.machine).exists()


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD"])
def test_wrong_method_at_the_token_endpoint_is_a_json_405(client, db, method):
    """Django's default 405 was an empty text/html answer, unlike every other error of the endpoint."""
    response = client.generic(method, "/oauth/token/?grant_type=client_credentials")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert "POST" in response["Allow"]
    assert response["Cache-Control"] == "no-store"
    if method != "HEAD":
        assert response.json()["error"] == "invalid_request"
        assert method in response.json()["error_description"]


@pytest.mark.parametrize("path", ["scopes/%0A/", "clients/a%0Ab/", "%0A", "users/%0A/tokens/"])
def test_api_path_with_a_newline_is_a_json_404(client, world, path):
    """The API's catch-all pattern ("^.*$") did not match a newline: Django's HTML 404 answered."""
    client.force_login(world.staff)
    response = client.get("/oauth/api/" + path)
    assert response.status_code == 404, describe(response)
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize("allow", [None, "true"])
@pytest.mark.parametrize(
    "redirect_uri", ["https://evil.example/cb", SPA_CALLBACK, CALLBACK + "/", CALLBACK + "?x=1", ""]
)
def test_tampered_redirect_uri_in_the_consent_form_is_refused(client, world, allow, redirect_uri):
    """A denial was sent to the consent form's hidden redirect_uri unchecked: an open redirect."""
    client.force_login(world.user)
    data = {
        "client_id": world.web.client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "openid",
        "state": "s",
        "code_challenge": world.challenge,
        "code_challenge_method": "S256",
    }
    if allow:
        data["allow"] = allow
    before = snapshot()
    response = client.post("/oauth/authorize/", data)
    assert response.status_code == 400, describe(response)
    assert "Location" not in response
    assert_page(Sent("POST", "/oauth/authorize/", [], None, {}), response)
    assert diff(before, snapshot()) == []


def test_denial_still_goes_back_to_the_registered_redirect_uri(client, world):
    client.force_login(world.user)
    data = {"client_id": world.web.client_id, "redirect_uri": CALLBACK, "response_type": "code"}
    data.update(scope="openid", state="s", code_challenge=world.challenge, code_challenge_method="S256")
    response = client.post("/oauth/authorize/", data)
    assert response.status_code == 302
    assert response["Location"].startswith(CALLBACK + "?error=access_denied&state=s")


NUL_CLIENT = "web\x00"


@pytest.mark.parametrize("auth", ["basic", "body", "public"])
@pytest.mark.parametrize("path", ["/oauth/token/", "/oauth/introspect/", "/oauth/revoke/"])
def test_nul_byte_in_client_id_is_invalid_client(client, world, auth, path):
    """PostgreSQL refuses NUL bytes: DOT's client lookup failed with DataError (a 500)."""
    data = {"grant_type": "client_credentials", "token": world.access_token}
    extra = {}
    if auth == "basic":
        extra["HTTP_AUTHORIZATION"] = basic_auth(NUL_CLIENT, world.web.raw_secret)
    elif auth == "body":
        data.update(client_id=NUL_CLIENT, client_secret=world.web.raw_secret)
    else:
        data["client_id"] = NUL_CLIENT
    before = snapshot()
    response = client.post(path, data, **extra)
    assert response.status_code in (400, 401), describe(response)
    assert response.json()["error"] in ("invalid_client", "invalid_request")
    assert diff(before, snapshot()) == []


@pytest.mark.parametrize("logged_in", [True, False])
def test_nul_byte_in_client_id_at_the_authorization_endpoint_is_an_error_page(client, world, logged_in):
    if logged_in:
        client.force_login(world.user)
    query = urlencode({"response_type": "code", "client_id": NUL_CLIENT, "redirect_uri": CALLBACK})
    response = client.get(f"/oauth/authorize/?{query}")
    assert response.status_code == 400, describe(response)
    assert "Location" not in response
    assert b"invalid_request" in response.content or b"invalid_client" in response.content


def test_nul_byte_in_the_consent_forms_client_id_is_refused(client, world):
    client.force_login(world.user)
    data = {"client_id": NUL_CLIENT, "redirect_uri": CALLBACK, "response_type": "code", "allow": "true"}
    response = client.post("/oauth/authorize/", data)
    assert response.status_code == 400, describe(response)
    assert "Location" not in response


def test_nul_byte_in_a_connected_app_url_is_a_404(client, world):
    client.force_login(world.user)
    before = snapshot()
    response = client.post("/oauth/connected-apps/web%00/revoke/")
    assert response.status_code == 404, describe(response)
    assert diff(before, snapshot()) == []


def test_consent_is_not_recorded_when_the_approved_request_fails(client, world):
    """oauthlib answers a tampered claims field with an error redirect; the approval was recorded anyway."""
    client.force_login(world.user)
    data = {"client_id": world.web.client_id, "redirect_uri": CALLBACK, "response_type": "code"}
    data.update(scope="openid email", state="s", code_challenge=world.challenge, code_challenge_method="S256")
    before = snapshot()
    response = client.post("/oauth/authorize/", {**data, "claims": "{", "allow": "true"})
    assert response.status_code == 302
    assert "error=invalid_request" in response["Location"], response["Location"]
    assert response["Location"].startswith(CALLBACK + "?")
    assert diff(before, snapshot()) == []
    assert "email" not in Consent.objects.get(user=world.user, client=world.web).scope.split()
    # The same approval without the tampering is remembered.
    response = client.post("/oauth/authorize/", {**data, "allow": "true"})
    assert "code=" in response["Location"]
    assert "email" in Consent.objects.get(user=world.user, client=world.web).scope.split()


# --- regressions: issue 9, item 4 (500s on hostile input) ------------------------------------------
DEEP_ARRAY = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"userinfo":' * 1000 + "null" + "}" * 1000


def authorize_query(world: World, client: Client | None = None, **extra: str) -> dict[str, str]:
    """A valid authorization request of ``client`` (the web client by default), with ``extra``."""
    client = client or world.web
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri_list[0],
        "scope": "openid",
        "state": "s",
        "code_challenge": world.challenge,
        "code_challenge_method": "S256",
    }
    return {**params, **extra}


def assert_invalid_request_redirect(response, redirect_uri: str = CALLBACK) -> None:
    assert response.status_code == 302, describe(response)
    location = response["Location"]
    assert location.startswith(redirect_uri + "?"), location
    back = dict(parse_qsl(urlsplit(location).query))
    assert back["error"] == "invalid_request", back
    assert back["state"] == "s", back
    assert "code" not in back, back


@pytest.mark.parametrize(
    "max_age",
    ["²", "٣", "１", "1" * 4301, "9" * 17, "1_000", " 60", "60 ", "+60", "0x10", "6\x000"],
)
def test_max_age_of_non_ascii_digits_or_too_many_digits_is_invalid_request(client, world, max_age):
    """str.isdigit() accepted "²" and int() then failed; 4,301 digits hit Python's int-string limit."""
    client.force_login(world.user)
    before = snapshot()
    response = client.get("/oauth/authorize/?" + urlencode(authorize_query(world, max_age=max_age)))
    assert_invalid_request_redirect(response)
    assert "max_age" in dict(parse_qsl(urlsplit(response["Location"]).query))["error_description"]
    assert diff(before, snapshot()) == []


@pytest.mark.parametrize("max_age", ["9" * 16, "3600"])
def test_max_age_within_the_accepted_form_still_works(client, world, max_age):
    client.force_login(world.user)
    response = client.get("/oauth/authorize/?" + urlencode(authorize_query(world, max_age=max_age)))
    assert response.status_code == 302, describe(response)  # consent is remembered: a code at once
    assert "code" in dict(parse_qsl(urlsplit(response["Location"]).query)), response["Location"]


def test_max_age_of_zeros_asks_for_a_fresh_login(client, world):
    client.force_login(world.user)
    response = client.get("/oauth/authorize/?" + urlencode(authorize_query(world, max_age="0" * 16)))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    "claims", [DEEP_ARRAY, DEEP_OBJECT, '{"userinfo": {"a": ' + "[" * 40 + "]" * 40 + "}}"]
)
@pytest.mark.parametrize("logged_in", [True, False])
def test_deeply_nested_claims_are_invalid_request(client, world, claims, logged_in):
    """json.loads raised RecursionError (a 500), even for an anonymous user."""
    if logged_in:
        client.force_login(world.user)
    before = snapshot()
    response = client.get("/oauth/authorize/?" + urlencode(authorize_query(world, claims=claims)))
    assert_invalid_request_redirect(response)
    assert diff(before, snapshot()) == []


def test_oversized_claims_are_invalid_request(client, world):
    claims = json.dumps({"userinfo": {f"claim_{i}": None for i in range(1000)}})
    client.force_login(world.user)
    response = client.get("/oauth/authorize/?" + urlencode(authorize_query(world, claims=claims)))
    assert_invalid_request_redirect(response)


@pytest.mark.parametrize("claims", [DEEP_ARRAY, DEEP_OBJECT])
def test_deeply_nested_claims_in_the_consent_form_are_invalid_request(client, world, claims):
    client.force_login(world.user)
    before = snapshot()
    response = client.post("/oauth/authorize/", {**authorize_query(world, claims=claims), "allow": "true"})
    assert_invalid_request_redirect(response)
    assert diff(before, snapshot()) == []


def test_claims_within_the_bounds_still_reach_the_code(client, world):
    claims = {"userinfo": {"email": {"essential": True}}, "id_token": {"auth_time": {"essential": True}}}
    client.force_login(world.user)
    data = {**authorize_query(world, claims=json.dumps(claims)), "allow": "true"}
    response = client.post("/oauth/authorize/", data)
    assert "code=" in response["Location"], response["Location"]
    assert json.loads(Grant.objects.latest("pk").claims) == claims


# Values PostgreSQL refused when the code was saved (DataError, a 500): longer than the column or with
# a NUL byte. SQLite stored them.
STORED_COLUMN_VALUES = [
    pytest.param("code_challenge", "A" * 129, id="challenge-over-128"),
    pytest.param("code_challenge", "A" * 42 + "\x00", id="challenge-nul"),
    pytest.param("nonce", "n" * 256, id="nonce-over-255"),
    pytest.param("nonce", "n-0S6\x00", id="nonce-nul"),
]


@pytest.mark.parametrize(("name", "value"), STORED_COLUMN_VALUES)
def test_values_the_code_cannot_store_are_invalid_request_on_get(client, world, name, value):
    """The first-party client skips consent: the GET itself issues (saves) the code."""
    client.force_login(world.user)
    before = snapshot()
    params = authorize_query(world, world.first_party, **{name: value})
    response = client.get("/oauth/authorize/?" + urlencode(params))
    assert_invalid_request_redirect(response, FIRST_PARTY_CALLBACK)
    assert diff(before, snapshot()) == []


@pytest.mark.parametrize(("name", "value"), STORED_COLUMN_VALUES)
def test_values_the_code_cannot_store_are_invalid_request_on_consent(client, world, name, value):
    client.force_login(world.user)
    before = snapshot()
    response = client.post("/oauth/authorize/", {**authorize_query(world, **{name: value}), "allow": "true"})
    if "\x00" in value:  # Django's form fields refuse NUL: a tampered consent form, shown as a page
        assert response.status_code == 400, describe(response)
        assert "Location" not in response
    else:
        assert_invalid_request_redirect(response)
    assert diff(before, snapshot()) == []


def test_longest_nonce_the_code_can_store_still_works(client, world):
    client.force_login(world.user)
    params = authorize_query(world, world.first_party, nonce="n" * 255)
    response = client.get("/oauth/authorize/?" + urlencode(params))
    assert "code=" in response["Location"], response["Location"]
    assert Grant.objects.latest("pk").nonce == "n" * 255


@pytest.mark.parametrize(
    "next_url",
    [
        "/oauth/authorize/%3Fclient_id%3Da%2500b",
        "/oauth/authorize/?client_id=a%00b",
        "/oauth/authorize/?client_id=" + "a" * 5000,
    ],
)
def test_hostile_client_id_in_the_login_pages_next_is_ignored(client, world, next_url):
    """The login view looked the client up with DOT's raw filter: PostgreSQL refused the NUL byte."""
    response = client.get("/accounts/login/?next=" + next_url)
    assert response.status_code == 200, describe(response)
    assert response.context["client"] is None


@pytest.mark.parametrize("scope", ["openid\x00", "openid oauth:admin files:write", "A" * 300])
def test_scope_parameter_of_a_code_exchange_is_not_recorded_on_the_id_token(client, world, scope):
    """DOT saved the ID token row with the request's raw ``scope`` (a code exchange ignores it): a NUL
    byte was a 500 on PostgreSQL, and the row claimed scopes that were never granted."""
    response = exchange_code(client, world.web, world.code, world.verifier, scope=scope)
    assert response.status_code == 200, describe(response)
    id_token = IDToken.objects.latest("pk")
    assert sorted(id_token.scope.split()) == ["files:read", "openid"]
