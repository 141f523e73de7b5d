"""The client-authentication registry (oauth_server/client_auth/): one parse per request, one home
per method, and a new method that works end to end without touching audit, rate limits or CORS."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import RequestFactory

from oauth_server import client_auth
from oauth_server.client_auth import ClientAuthMethod, ClientCredentials
from oauth_server.forms import ClientAdminForm
from oauth_server.models import AuditEvent, Client
from oauth_server.request_state import credentials_of, state_of
from tests.factories import ClientFactory, MachineClientFactory, PublicClientFactory
from tests.helpers import TOKEN_URL, basic_auth

CC = {"grant_type": "client_credentials"}


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


# --- parsing ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("authorization", "params", "method", "client_id", "secret"),
    [
        (f"Basic {b64('app:s3cret')}", {}, "client_secret_basic", "app", "s3cret"),
        (f"basic {b64('app:s3cret')}", {}, "client_secret_basic", "app", "s3cret"),  # RFC 9110 11.1
        (f"Basic {b64('a%3Ab+c:p%25w')}", {}, "client_secret_basic", "a:b c", "p%w"),  # RFC 6749 2.3.1
        ("", {"client_id": "app", "client_secret": "s3cret"}, "client_secret_post", "app", "s3cret"),
        ("", {"client_id": "app"}, "none", "app", None),
        ("", {}, "none", "", None),
        ("Bearer abc", {"client_id": "app"}, "none", "app", None),
    ],
)
def test_parse(authorization, params, method, client_id, secret):
    credentials = client_auth.parse(authorization, params)
    assert (credentials.method, credentials.client_id, credentials.secret) == (method, client_id, secret)
    assert not credentials.conflict and not credentials.malformed


@pytest.mark.parametrize("value", ["Basic !!!", f"Basic {b64('no-colon')}", "Basic " + b64("é:x")[:-2]])
def test_undecodable_basic_is_malformed_not_anonymous(value):
    credentials = client_auth.parse(value, {"client_id": "app"})
    assert credentials.method == "client_secret_basic" and credentials.malformed
    assert credentials.client_id == "" and credentials.presents_credential


def test_two_methods_conflict():
    credentials = client_auth.parse(f"Basic {b64('app:one')}", {"client_id": "app", "client_secret": "two"})
    assert credentials.conflict and credentials.client_id == "app"


def test_repr_never_shows_the_secret():
    credentials = client_auth.parse(f"Basic {b64('app:topsecret')}", {})
    assert "topsecret" not in repr(credentials)


def test_parsed_once_and_shared_with_oauthlib_request(db):
    """The object the rate limiter or CORS made from Django's request is the validator's."""
    request = RequestFactory().post(TOKEN_URL, {"client_id": "app", "client_secret": "s"})
    first = credentials_of(request)
    assert credentials_of(request) is first

    class OauthlibRequest:  # what DOT builds: META copied into headers
        def __init__(self, headers):
            self.headers = headers
            self.client_id = "other"

    carried = OauthlibRequest(dict(request.META))
    assert credentials_of(carried) is first
    assert state_of(carried) is state_of(request)


def test_discovery_lists_the_registry(client, db):
    metadata = client.get("/oauth/.well-known/openid-configuration").json()
    assert metadata["token_endpoint_auth_methods_supported"] == client_auth.registry.names("token_endpoint")
    assert metadata["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "client_secret_jwt",
        "none",
    ]
    assert "none" not in metadata["introspection_endpoint_auth_methods_supported"]
    assert "none" in metadata["revocation_endpoint_auth_methods_supported"]


# --- a new method, registered without touching anything else ---------------------------------------
class SharedAssertion(ClientAuthMethod):
    """A toy method for the test: the secret as a ``client_assertion`` of a test type."""

    name = "test_shared_assertion"
    label = "test"
    TYPE = "urn:test:shared"

    def extract(self, authorization: str, params: Mapping[str, str]) -> ClientCredentials | None:
        if params.get("client_assertion_type") != self.TYPE:
            return None
        return ClientCredentials(
            method=self.name,
            client_id=params.get("client_id", ""),
            assertion=params.get("client_assertion"),
            assertion_type=self.TYPE,
        )

    def authenticate(self, client: Any, credentials: ClientCredentials, request: Any) -> bool:
        return client.check_secret(credentials.assertion)


@pytest.fixture
def shared_assertion():
    method = client_auth.registry.register(SharedAssertion())
    yield method
    client_auth.registry.unregister(method.name)


@pytest.fixture
def assertion_client(db, shared_assertion):
    client = MachineClientFactory(scopes=["reports:read"])
    client.token_endpoint_auth_method = shared_assertion.name
    client.full_clean()
    client.save()
    return client


def assertion_form(client, assertion: str) -> dict[str, str]:
    return {
        **CC,
        "client_id": client.client_id,
        "client_assertion_type": SharedAssertion.TYPE,
        "client_assertion": assertion,
    }


def test_registered_method_authenticates_end_to_end(client, assertion_client):
    response = client.post(TOKEN_URL, assertion_form(assertion_client, assertion_client.raw_secret))
    assert response.status_code == 200, response.content
    metadata = client.get("/oauth/.well-known/oauth-authorization-server").json()
    assert "test_shared_assertion" in metadata["token_endpoint_auth_methods_supported"]


def test_registered_method_failure_is_audited_with_its_name(client, assertion_client):
    response = client.post(TOKEN_URL, assertion_form(assertion_client, "wrong"))
    assert response.status_code == 401
    event = AuditEvent.objects.get(event=AuditEvent.Event.CLIENT_AUTH_FAILED)
    assert event.details["method"] == "test_shared_assertion"
    assert event.details["reason"] == "invalid_secret"
    assert event.client_id == assertion_client.client_id


def test_client_must_use_its_registered_method(client, assertion_client):
    """A client registered for another method cannot fall back to its secret over Basic."""
    response = client.post(
        TOKEN_URL,
        CC,
        HTTP_AUTHORIZATION=basic_auth(assertion_client.client_id, assertion_client.raw_secret),
    )
    assert response.status_code == 401
    event = AuditEvent.objects.get(event=AuditEvent.Event.CLIENT_AUTH_FAILED)
    assert event.details["reason"] == "auth_method_not_allowed"
    assert event.details["method"] == "client_secret_basic"


def test_secret_methods_accept_each_other(client, machine_client):
    machine_client.token_endpoint_auth_method = "client_secret_post"
    machine_client.save()
    response = client.post(
        TOKEN_URL, CC, HTTP_AUTHORIZATION=basic_auth(machine_client.client_id, machine_client.raw_secret)
    )
    assert response.status_code == 200, response.content


def test_public_client_sending_a_secret_is_refused(client, db):
    public = PublicClientFactory(grant_types=["authorization_code"])
    response = client.post(
        TOKEN_URL,
        {
            "grant_type": "authorization_code",
            "code": "x",
            "client_id": public.client_id,
            "client_secret": "x" * 40,
        },
    )
    assert response.status_code == 401
    assert AuditEvent.objects.get().details["reason"] == "auth_method_not_allowed"


# --- the model field ----------------------------------------------------------------------------
def test_save_records_the_usual_method(db):
    assert ClientFactory().token_endpoint_auth_method == "client_secret_basic"
    assert PublicClientFactory().token_endpoint_auth_method == "none"


@pytest.mark.parametrize(
    ("factory", "method"),
    [(PublicClientFactory, "client_secret_basic"), (ClientFactory, "none"), (ClientFactory, "nonsense")],
)
def test_clean_refuses_a_method_that_does_not_fit(db, factory, method):
    client = factory()
    client.token_endpoint_auth_method = method
    with pytest.raises(ValidationError) as info:
        client.full_clean()
    assert "token_endpoint_auth_method" in info.value.message_dict


def test_admin_form_method_follows_a_type_change(db):
    public = PublicClientFactory(grant_types=["authorization_code"])
    form = ClientAdminForm(
        instance=public,
        data={
            "name": public.name,
            "client_type": Client.CLIENT_CONFIDENTIAL,
            "is_enabled": "on",
            "grant_types": ["authorization_code"],
            "redirect_uris": public.redirect_uris,
            "token_endpoint_auth_method": "none",
        },
        initial={"token_endpoint_auth_method": "none"},
    )
    assert form.is_valid(), form.errors
    saved = form.save()
    assert saved.token_endpoint_auth_method == "client_secret_basic"


def test_command_sets_the_method(db, capsys):
    call_command(
        "create_oauth_client",
        "--name=svc",
        "--type=confidential",
        "--grant-type=client_credentials",
        "--auth-method=client_secret_post",
        "--json",
    )
    assert Client.objects.get(name="svc").token_endpoint_auth_method == "client_secret_post"
    assert '"token_endpoint_auth_method": "client_secret_post"' in capsys.readouterr().out
