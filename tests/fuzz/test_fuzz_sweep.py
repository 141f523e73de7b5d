"""Every class of hostile value in every parameter of an otherwise valid request (tests/fuzz/sweep.py)."""

from __future__ import annotations

import pytest

from tests.fuzz.harness import describe, observe
from tests.fuzz.sweep import AUTHORIZE, HOSTILE_CLASSES, LOGIN, check_sweep, sweep_bases, sweep_requests


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
