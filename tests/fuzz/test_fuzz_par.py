"""Hostile input at the pushed authorization request endpoint (RFC 9126)."""

from __future__ import annotations

import json

from django.conf import settings
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.harness import (
    FUZZ,
    Sent,
    assert_allowed_status,
    assert_json_error,
    assert_no_server_error,
    assert_nothing_written,
    observe,
    options_answered,
)
from tests.fuzz.strategies import bodies, headers, methods, parameters
from tests.fuzz.world import World
from tests.helpers import pkce_pair


def par_parameters(world: World) -> dict[str, list[str]]:
    _verifier, challenge = pkce_pair()
    return {
        "client_id": world.client_ids(),
        "client_secret": world.secrets(),
        "response_type": ["code", "token", "code id_token"],
        "redirect_uri": [uri for c in world.clients for uri in c.redirect_uri_list]
        + ["https://evil.example/"],
        "scope": ["openid", "openid profile", "nope"],
        "state": ["s"],
        "code_challenge": [challenge, "short"],
        "code_challenge_method": ["S256", "plain"],
        "request_uri": ["urn:ietf:params:oauth:request_uri:x"],
        "resource": ["https://api.example.com", "not a uri"],
        "claims": ['{"id_token": {"email": null}}', "{"],
        "client_assertion_type": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
        "client_assertion": ["a.b.c"],
    }


@FUZZ
@given(data=st.data())
def test_par_endpoint(world, data):
    _push(world, data)


@FUZZ
@given(data=st.data())
def test_par_endpoint_under_the_site_wide_fapi2_profile(world, data):
    """docs/fapi.md: secrets and public clients refused, redirect_uri required; never a 500."""
    with override_settings(OAUTH_SERVER={**settings.OAUTH_SERVER, "SECURITY_PROFILE": "fapi2"}):
        _push(world, data)


def _push(world, data):
    sent = Sent(
        method=data.draw(methods("POST")),
        path="/oauth/par/",
        query=data.draw(st.one_of(st.just([]), parameters({"scope": ["openid"]}))),
        body=data.draw(parameters(par_parameters(world)).flatmap(bodies)),
        meta=data.draw(headers(world)),
    )
    response, changed = observe(world, sent)
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    assert "Location" not in response
    if response.status_code == 201:
        assert set(changed) <= {"oauth_server.PushedAuthorizationRequest"}, changed
        if sent.method != "HEAD":
            body = json.loads(response.content)
            assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
        return
    assert_allowed_status(response, {400, 401, 405, 413, 415, 429})
    assert_json_error(sent, response)
    assert_nothing_written(changed, response)
