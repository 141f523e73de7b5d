import pytest

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
