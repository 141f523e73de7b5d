"""Hostile input at the pushed authorization request endpoint (RFC 9126)."""

from __future__ import annotations

import json

from django.conf import settings
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from tests import dpop_proofs as proofs
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
from tests.fuzz.strategies import bodies, control, headers, huge, latin1, methods, parameters, text
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
        # RFC 9101 signed request objects (valid, and validly signed hostile ones) and RFC 9449 10.
        "request": ["a.b.c", "a.b.c.d.e", *world.request_objects],
        "dpop_jkt": [world.dpop_jkt, proofs.thumbprint(proofs.key("A")), "short"],
    }


PAR_HTU = "http://testserver/oauth/par/"


@st.composite
def par_dpop_headers(draw) -> str:
    """A DPoP header at the PAR endpoint (RFC 9449 10.1): valid, for another URL or method, with a
    hostile claim, tampered, doubled, or junk."""
    kind = draw(st.sampled_from(["valid", "other", "claim", "tampered", "two", "junk"]))
    if kind == "junk":
        return latin1(draw(st.one_of(text, control, huge, st.just(""), st.just("a.b.c"))))
    claims: dict = {}
    if kind == "claim":
        name = draw(st.sampled_from(["htm", "htu", "iat", "jti", "nonce"]))
        claims[name] = draw(st.one_of(st.none(), st.integers(), st.text(max_size=20)))
    url = "http://testserver/oauth/token/" if kind == "other" else PAR_HTU
    try:
        proof = proofs.proof("POST", url, **claims)
    except TypeError:  # htm or htu drawn: they are proof()'s positional arguments
        proof = proofs.proof("POST" if "htm" not in claims else str(claims["htm"]), claims.get("htu") or url)
    if kind == "tampered":
        position = draw(st.integers(0, len(proof) - 1))
        proof = proof[:position] + draw(st.sampled_from("A_-.=")) + proof[position + 1 :]
    elif kind == "two":
        proof = f"{proof}, {proof}"
    return proof


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
    if data.draw(st.booleans()):
        sent.meta["HTTP_DPOP"] = data.draw(par_dpop_headers())
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


def test_each_world_request_object_at_par(world):
    """Every request object of the world, pushed by its client: 201, or a JSON error; never a 500."""
    from tests.helpers import basic_auth

    auth = {"HTTP_AUTHORIZATION": basic_auth(world.web.client_id, world.web.raw_secret)}
    answers = []
    for signed in world.request_objects:
        pairs = [("client_id", world.web.client_id), ("request", signed)]
        sent = Sent("POST", "/oauth/par/", [], next(iter([form_body(pairs)])), dict(auth))
        response, changed = observe(world, sent)
        assert_no_server_error(response)
        answers.append(response.status_code)
        if response.status_code != 201:
            assert_json_error(sent, response)
            assert_nothing_written(changed, response)
    assert 201 in answers and 400 in answers, answers


def form_body(pairs):
    from tests.fuzz.strategies import Body, form

    return Body("application/x-www-form-urlencoded", form(pairs))
