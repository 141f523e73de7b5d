"""The ``world`` every fuzz test starts from (tests/fuzz/world.py)."""

from __future__ import annotations

import pytest

from tests.fuzz.world import World, make_world


@pytest.fixture
def world(db) -> World:
    return make_world()
