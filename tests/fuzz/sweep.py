"""The hostile-class sweep's machinery: one value of each hostile class in each parameter of an
otherwise valid request (authorization GET and consent POST, login page, token endpoint)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from oauth_server.models import Client
from tests.factories import (
    DEFAULT_PASSWORD,
)
from tests.fuzz.harness import Sent, check_authorize, check_login, check_token, login_next
from tests.fuzz.strategies import DEEP_NESTING, HUGE_NUMBERS, Body, Pairs, form, latin1
from tests.fuzz.world import CALLBACK, World
from tests.helpers import basic_auth

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
SWEPT_EXTRAS = ["resource", "request", "request_uri", "response_mode", "dpop_jkt", "x"]


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
