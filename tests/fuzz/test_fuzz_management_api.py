"""Hostile input at the management API (``/oauth/api/``)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import (
    FUZZ,
    Sent,
    assert_allowed_status,
    assert_json_error,
    assert_local_or_registered,
    assert_no_server_error,
    assert_nothing_written,
    describe,
    observe,
    options_answered,
)
from tests.fuzz.strategies import (
    Body,
    control,
    form,
    headers,
    hostile_values,
    methods,
    odd_scalars,
    parameters,
    percent_garbage,
    text,
)
from tests.fuzz.world import CALLBACK, World


# --- the management API -------------------------------------------------------------------------------
def json_values(world: World) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        hostile_values(["confidential", "public", "authorization_code", CALLBACK, "openid", "jwt", "fapi2"]),
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
    "security_profile",
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


# --- regressions: what the fuzzer found, pinned down -------------------------------------------------
@pytest.mark.parametrize("path", ["scopes/%0A/", "clients/a%0Ab/", "%0A", "users/%0A/tokens/"])
def test_api_path_with_a_newline_is_a_json_404(client, world, path):
    """The API's catch-all pattern ("^.*$") did not match a newline: Django's HTML 404 answered."""
    client.force_login(world.staff)
    response = client.get("/oauth/api/" + path)
    assert response.status_code == 404, describe(response)
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "not_found"
