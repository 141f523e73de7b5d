"""Hostile input at the device authorization grant (RFC 8628): the device authorization endpoint,
polling at the token endpoint, the verification form and the confirmation form."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oauth_server import device
from oauth_server.models import Client, GrantType
from tests.factories import ClientFactory, PublicClientFactory
from tests.fuzz.harness import (
    FUZZ,
    Sent,
    assert_allowed_status,
    assert_json_error,
    assert_local_or_registered,
    assert_no_server_error,
    assert_nothing_written,
    assert_page,
    check_token,
    observe,
    options_answered,
)
from tests.fuzz.strategies import Body, bodies, form, headers, methods, parameters
from tests.fuzz.sweep import HOSTILE_CLASSES
from tests.fuzz.world import World

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
FORM = "application/x-www-form-urlencoded"


@dataclass
class DeviceWorld:
    world: World
    cli: Client
    tv: Client
    pending: device.IssuedCodes
    approved: device.IssuedCodes

    def client_ids(self) -> list[str]:
        return [self.cli.client_id, self.tv.client_id, *self.world.client_ids()]

    def secrets(self) -> list[str]:
        return [self.tv.raw_secret, *self.world.secrets()]


@pytest.fixture
def dw(world) -> DeviceWorld:
    cli = PublicClientFactory(
        grant_types=[GRANT, GrantType.REFRESH_TOKEN], redirect_uris="", scopes=["files:read"]
    )
    tv = ClientFactory(grant_types=[GRANT], redirect_uris="", scopes=["files:read"])
    world.clients.extend([cli, tv])
    pending = device.start(cli, ["files:read"])
    approved = device.start(cli, ["files:read"])
    device.decide(approved.authorization, world.user, allow=True, auth_time=None)
    return DeviceWorld(world, cli, tv, pending, approved)


def endpoint_parameters(dw: DeviceWorld) -> dict[str, list[str]]:
    return {
        "client_id": dw.client_ids(),
        "client_secret": dw.secrets(),
        "scope": ["files:read", "openid", "nope", "files:read files:read", ""],
    }


@FUZZ
@given(data=st.data())
def test_device_authorization_endpoint(dw, data):
    sent = Sent(
        method=data.draw(methods("POST")),
        path="/oauth/device_authorization/",
        query=data.draw(st.one_of(st.just([]), parameters({"client_id": dw.client_ids()}))),
        body=data.draw(parameters(endpoint_parameters(dw)).flatmap(bodies)),
        meta=data.draw(headers(dw.world)),
    )
    response, changed = observe(dw.world, sent)
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    assert "Location" not in response
    assert response["Cache-Control"] == "no-store"
    if response.status_code == 200:
        body = response.json()
        assert {"device_code", "user_code", "verification_uri", "expires_in", "interval"} <= set(body)
        return
    assert_allowed_status(response, {400, 401, 405, 413, 415, 429})
    assert_json_error(sent, response)
    assert_nothing_written(changed, response)


def poll_parameters(dw: DeviceWorld) -> dict[str, list[str]]:
    return {
        "grant_type": [GRANT],
        "device_code": [dw.pending.device_code, dw.approved.device_code, dw.pending.user_code, "x"],
        "client_id": dw.client_ids(),
        "client_secret": dw.secrets(),
        "scope": ["files:read", "openid"],
    }


@FUZZ
@given(data=st.data())
def test_device_polling(dw, data):
    sent = Sent(
        method=data.draw(methods("POST")),
        path="/oauth/token/",
        query=[],
        body=data.draw(parameters(poll_parameters(dw)).flatmap(bodies)),
        meta=data.draw(headers(dw.world)),
    )
    response, changed = observe(dw.world, sent)
    if response.status_code == 400 and response.json().get("error") in ("authorization_pending", "slow_down"):
        # A poll records its time (and a slow_down the longer interval): the only write allowed.
        changed = [name for name in changed if name != "oauth_server.DeviceAuthorization"]
    check_token(sent, response, changed)


def verification_parameters(dw: DeviceWorld) -> dict[str, list[str]]:
    return {
        "user_code": [dw.pending.user_code, dw.pending.user_code.lower(), dw.approved.user_code, "BBBB-BBBB"],
        "csrfmiddlewaretoken": ["x"],
        "allow": ["true", "false"],
    }


def check_page(sent: Sent, response, changed: list[str]) -> None:
    assert_no_server_error(response)
    if options_answered(sent, response, changed):
        return
    if response.status_code in (301, 302, 303, 307, 308):
        assert_local_or_registered(response, set())
        return
    assert_allowed_status(response, {200, 400, 403, 405, 413, 429})
    if sent.method not in ("HEAD", "OPTIONS") and response.status_code != 405:
        assert_page(sent, response)


@FUZZ
@given(data=st.data(), logged_in=st.booleans())
@pytest.mark.parametrize("path", ["/oauth/device/", "/oauth/device/confirm/"])
def test_verification_pages(dw, data, logged_in, path):
    pairs = data.draw(parameters(verification_parameters(dw)))
    method = data.draw(methods("GET", "POST"))
    as_query = method != "POST"
    sent = Sent(
        method=method,
        path=path,
        query=pairs if as_query else [],
        body=None if as_query else data.draw(bodies(pairs)),
        meta=data.draw(headers(dw.world, authorization=False)),
        body_pairs=pairs,
    )
    response, changed = observe(dw.world, sent, logged_in=dw.world.user if logged_in else None)
    check_page(sent, response, changed)
    # A decision needs a code entered first in the same session: a fresh browser never decides.
    assert_nothing_written(changed, response)


# --- every hostile class in every parameter of otherwise valid requests -------------------------------
@pytest.mark.parametrize("value", list(HOSTILE_CLASSES.values()), ids=list(HOSTILE_CLASSES))
@pytest.mark.parametrize("name", ["client_id", "scope", "x"])
def test_hostile_classes_at_the_endpoint(dw, name, value):
    pairs = {"client_id": dw.cli.client_id, "scope": "files:read", name: value}
    sent = Sent("POST", "/oauth/device_authorization/", [], Body(FORM, form(list(pairs.items()))), {})
    response, changed = observe(dw.world, sent)
    assert_no_server_error(response)
    if response.status_code != 200:
        assert_json_error(sent, response)
        assert_nothing_written(changed, response)
    else:
        assert name == "x"


@pytest.mark.parametrize("value", list(HOSTILE_CLASSES.values()), ids=list(HOSTILE_CLASSES))
@pytest.mark.parametrize("name", ["client_id", "device_code", "grant_type", "scope"])
def test_hostile_classes_when_polling(dw, name, value):
    pairs = {"grant_type": GRANT, "device_code": dw.approved.device_code, "client_id": dw.cli.client_id}
    pairs[name] = value
    sent = Sent("POST", "/oauth/token/", [], Body(FORM, form(list(pairs.items()))), {})
    response, changed = observe(dw.world, sent)
    check_token(sent, response, changed)


@pytest.mark.parametrize("value", list(HOSTILE_CLASSES.values()), ids=list(HOSTILE_CLASSES))
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_hostile_classes_in_the_user_code(dw, value, method):
    pairs = [("user_code", value)]
    post = method == "POST"
    sent = Sent(
        method, "/oauth/device/", [] if post else pairs, Body(FORM, form(pairs)) if post else None, {}
    )
    response, changed = observe(dw.world, sent, logged_in=dw.world.user)
    check_page(sent, response, changed)
    assert response.status_code in (200, 400)
    assert_nothing_written(changed, response)
