"""Hostile client ID metadata documents (oauth_server/cimd.py) and the root well-known URLs: documents
drawn from valid and hostile members reach the authorization endpoint (the fetch answered in
process), raw responses reach the fetcher's reader. Never a 500, never a redirect to a URI the
document did not list, never a client outside the policy, nothing saved for a refused document."""

from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oauth_server import cimd
from oauth_server.models import Client
from tests.fuzz.harness import FUZZ, describe, example
from tests.fuzz.strategies import DEEP_NESTING, HUGE_NUMBERS, NUL_BYTES, OVER_LONG

URL = "https://mcp-client.example/client.json"
GOOD_REDIRECT = "http://127.0.0.1:33418/callback"

hostile_text = st.sampled_from(
    [
        "",
        " ",
        "javascript:alert(1)",
        "https://*.example/cb",
        "https://x.example/cb#f",
        "//evil.example",
        "\u202e",
        GOOD_REDIRECT,
        "http://evil.example/cb",
        "https://app.example/cb",
        "cursor://cb",
        URL,
        URL + "/",
        *HUGE_NUMBERS[:1],
        *NUL_BYTES,
        *OVER_LONG,
        DEEP_NESTING[2],
    ]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(hostile_text, children, max_size=3),
    max_leaves=6,
)
MEMBERS = {
    "client_id": st.sampled_from([URL, URL.upper(), URL + "/", "https://other.example/c.json"]) | json_values,
    "client_name": hostile_text | json_values,
    "redirect_uris": st.lists(hostile_text, max_size=3) | json_values,
    "post_logout_redirect_uris": st.lists(hostile_text, max_size=2) | json_values,
    "grant_types": st.lists(
        st.sampled_from(
            ["authorization_code", "refresh_token", "client_credentials", "implicit", "password", ""]
        ),
        max_size=3,
    )
    | json_values,
    "response_types": st.lists(st.sampled_from(["code", "token", "id_token", "code token"]), max_size=2)
    | json_values,
    "token_endpoint_auth_method": st.sampled_from(["none", "client_secret_basic", "private_key_jwt"])
    | json_values,
    "client_secret": hostile_text,
    "scope": st.sampled_from(["openid", "oauth:admin", "openid oauth:admin profile", "files:read", ""])
    | json_values,
    "logo_uri": hostile_text | json_values,
    "client_uri": hostile_text | json_values,
    "tos_uri": hostile_text,
    "policy_uri": hostile_text,
    "jwks": json_values,
}


@st.composite
def documents(draw) -> dict:
    document = {
        "client_id": URL,
        # Always drawn: what a redirect may go to is the property that matters most.
        "redirect_uris": draw(st.lists(hostile_text, min_size=1, max_size=3)),
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "none",
    }
    for name in draw(st.lists(st.sampled_from(sorted(MEMBERS)), max_size=4, unique=True)):
        if draw(st.booleans()):
            document[name] = draw(MEMBERS[name])
        else:
            document.pop(name, None)
    return document


def assert_within_policy(client: Client, document: dict) -> None:
    assert client.registration_source == Client.RegistrationSource.CIMD
    assert client.client_type == Client.CLIENT_PUBLIC and client.token_endpoint_auth_method == "none"
    assert not client.skip_consent and not client.client_secret
    assert set(client.grant_types) <= {"authorization_code", "refresh_token"}
    assert "oauth:admin" not in client.allowed_scopes.values_list("name", flat=True)
    for uri in client.redirect_uri_list:
        assert uri in document["redirect_uris"]
        parts = urlsplit(uri)
        assert parts.scheme == "https" or parts.hostname in ("127.0.0.1", "localhost", "::1"), uri


@pytest.fixture
def admin_scope(world):
    from oauth_server.models import Scope

    Scope.objects.filter(name="oauth:admin").update(is_default=True)  # the policy must still drop it


@FUZZ
@given(document=documents())
def test_hostile_documents_at_the_authorization_endpoint(world, admin_scope, monkeypatch, document):
    monkeypatch.setattr(
        cimd.CIMDFetcher, "fetch", lambda self, client_id: (json.loads(json.dumps(document)), 300)
    )
    params = {
        "response_type": "code",
        "client_id": URL,
        "redirect_uri": (document.get("redirect_uris") or [GOOD_REDIRECT])[0]
        if isinstance(document.get("redirect_uris"), list)
        and document["redirect_uris"]
        and isinstance(document["redirect_uris"][0], str)
        else GOOD_REDIRECT,
        "state": "s",
        "scope": "openid",
        "code_challenge": world.challenge,
        "code_challenge_method": "S256",
    }
    with example(world, logged_in=world.user) as browser:
        response = browser.get("/oauth/authorize/?" + urlencode(params))
        assert response.status_code < 500, describe(response)
        client = Client.objects.filter(client_id=URL).first()
        if client is None:
            assert response.status_code == 400 and "Location" not in response, describe(response)
        else:
            assert_within_policy(client, document)
            if response.status_code == 302:
                assert response["Location"].split("?")[0] in client.redirect_uri_list, response["Location"]


class FakeResponse:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status, self.headers, self._body = status, headers, body

    def read1(self, amount: int) -> bytes:
        chunk, self._body = self._body[:amount], self._body[amount:]
        return chunk


@FUZZ
@given(
    status=st.sampled_from([200, 200, 200, 204, 301, 302, 404, 500]),
    content_type=st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "text/html",
            "",
            "application/foo+json",
            "APPLICATION/JSON",
            "application/jsonx",
        ]
    ),
    encoding=st.sampled_from([None, "identity", "gzip", "br", ""]),
    length=st.sampled_from([None, "0", "99999999", "abc", "-1"]),
    body=st.binary(max_size=300)
    | st.builds(lambda v: json.dumps(v).encode(), json_values)
    | st.sampled_from([DEEP_NESTING[0].encode(), DEEP_NESTING[1].encode(), b"9" * 5000, b"\xff\xfe{}"]),
    cache_control=st.sampled_from(
        [
            None,
            "max-age=600",
            "max-age=-1",
            "max-age=" + "9" * 50,
            "no-store, max-age=9",
            'max-age="60"',
            "private",
            ",",
        ]
    ),
)
def test_the_reader_refuses_or_returns_a_document(
    status, content_type, encoding, length, body, cache_control, settings
):
    headers = {"Content-Type": content_type}
    for name, value in (
        ("Content-Encoding", encoding),
        ("Content-Length", length),
        ("Cache-Control", cache_control),
    ):
        if value is not None:
            headers[name] = value
    try:
        document, age = cimd.CIMDFetcher().read(FakeResponse(status, headers, body), deadline=float("inf"))
    except cimd.DocumentRefused as refused:
        assert refused.reason
    else:
        assert isinstance(document, dict) and status == 200
        assert 300 <= age <= 86400
        assert len(body) <= 16 * 1024


@FUZZ
@given(
    name=st.sampled_from(["oauth-authorization-server", "openid-configuration"]),
    path=st.text(max_size=40)
    | st.sampled_from(["oauth", "oauth/", "/oauth", "oauth/x", "OAUTH", "..", "%2e"]),
    method=st.sampled_from(["GET", "HEAD", "POST", "OPTIONS", "DELETE"]),
)
def test_root_well_known_urls(world, name, path, method):
    with example(world) as browser:
        try:
            response = browser.generic(method, f"/.well-known/{name}/{path}")
        except UnicodeEncodeError:
            return  # the test client cannot send it; a real request would be bytes
        assert response.status_code in (200, 301, 404, 405), describe(response)
        if response.status_code == 200 and method == "GET":
            assert response.json()["issuer"].endswith("/oauth")
