import pytest

from oauth_server import keys
from tests.factories import ClientFactory, MachineClientFactory, PublicClientFactory, UserFactory


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def web_client(db):
    return ClientFactory(scopes=["files:read", "files:write"])


@pytest.fixture
def public_client(db):
    return PublicClientFactory(scopes=["files:read"])


@pytest.fixture
def machine_client(db):
    return MachineClientFactory(scopes=["reports:read"])


@pytest.fixture(autouse=True)
def _fresh_signing_key_cache():
    """The active signing key is cached per process; each test's database starts without keys."""
    keys.clear_cache()
    yield
    keys.clear_cache()
