"""Model rules: Client validation and helpers, Scope names, create_client, Consent, token validity."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from oauth2_provider.models import AbstractApplication
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors

from oauth_server.models import AccessToken, Client, Consent, GrantType, Scope
from tests.factories import ClientFactory, ConsentFactory, ScopeFactory, UserFactory

CALLBACK = "https://client.example.com/callback"
SECRET = "s" * 40


def make_client(**fields) -> Client:
    """An unsaved confidential web client that passes validation unless ``fields`` break it."""
    values = {
        "name": "Web",
        "client_type": Client.CLIENT_CONFIDENTIAL,
        "grant_types": [GrantType.AUTHORIZATION_CODE, GrantType.REFRESH_TOKEN],
        "redirect_uris": CALLBACK,
        "client_secret": SECRET,
    }
    values.update(fields)
    return Client(**values)


def errors_of(client: Client) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as exc:
        client.full_clean()
    return exc.value.message_dict


# --- Client.clean -----------------------------------------------------------------------------------
def test_valid_clients_pass(db):
    make_client().full_clean()
    make_client(grant_types=[GrantType.CLIENT_CREDENTIALS], redirect_uris="", name="Machine").full_clean()
    make_client(client_type=Client.CLIENT_PUBLIC, client_secret="", name="SPA").full_clean()


@pytest.mark.parametrize(
    "grant", ["password", "implicit", "urn:ietf:params:oauth:grant-type:jwt-bearer", "x"]
)
def test_unknown_grant_type_is_refused(db, grant):
    messages = errors_of(make_client(grant_types=[GrantType.AUTHORIZATION_CODE, grant]))
    assert grant in " ".join(messages["grant_types"])


def test_no_grant_type_is_refused(db):
    assert "grant_types" in errors_of(make_client(grant_types=[]))


def test_refresh_token_without_authorization_code_is_refused(db):
    messages = errors_of(make_client(grant_types=[GrantType.REFRESH_TOKEN]))
    assert "grant_types" in messages
    messages = errors_of(
        make_client(grant_types=[GrantType.CLIENT_CREDENTIALS, GrantType.REFRESH_TOKEN], redirect_uris="")
    )
    assert "grant_types" in messages


def test_client_credentials_on_a_public_client_is_refused(db):
    client = make_client(
        client_type=Client.CLIENT_PUBLIC, client_secret="", grant_types=[GrantType.CLIENT_CREDENTIALS]
    )
    assert "grant_types" in errors_of(client)


def test_confidential_client_without_secret_is_refused(db):
    assert "client_secret" in errors_of(make_client(client_secret=""))


@pytest.mark.parametrize(
    "uri",
    [
        "https://client.example.com/callback#frag",
        "https://client.example.com/callback#",
        "https://*.example.com/callback",
        "https://client.example.com/*",
    ],
)
def test_redirect_uri_with_fragment_or_wildcard_is_refused(db, uri):
    assert "redirect_uris" in errors_of(make_client(redirect_uris=f"{CALLBACK} {uri}"))


def test_post_logout_redirect_uri_with_wildcard_is_refused(db):
    client = make_client(post_logout_redirect_uris="https://*.example.com/")
    assert "post_logout_redirect_uris" in errors_of(client)


@pytest.mark.parametrize("field", ["audiences", "resource_identifiers"])
@pytest.mark.parametrize(
    "uri", ["api.example.com", "https://api.example.com/#x", "https://*.example.com", "https:"]
)
def test_audience_that_is_not_a_resource_uri_is_refused(db, field, uri):
    # RFC 8707 2: the same rule as the admin form, the management API and create_oauth_client.
    messages = errors_of(make_client(**{field: ["https://api.example.com", uri]}))
    assert messages[field] == [
        f"{uri}: use absolute URIs (e.g. https://api.example.com), without fragments or wildcards."
    ]


@pytest.mark.parametrize("field", ["audiences", "resource_identifiers"])
def test_resource_uris_pass(db, field):
    make_client(**{field: ["https://api.example.com/v1?x=1", "urn:example:api"]}).full_clean()


@pytest.mark.parametrize("uri", ["javascript:alert(1)", "data:text/html,x", "ftp://client.example.com/cb"])
def test_redirect_uri_with_a_disallowed_scheme_is_refused(db, uri):
    assert "redirect_uris" in errors_of(make_client(redirect_uris=uri))


def test_authorization_code_without_redirect_uris_is_refused(db):
    # Enforced by DOT's clean(), which sees our primary grant in authorization_grant_type.
    assert "redirect_uris" in errors_of(make_client(redirect_uris=""))


def test_all_problems_are_reported_at_once(db):
    messages = errors_of(
        make_client(grant_types=["password"], client_secret="", redirect_uris=CALLBACK + "#x")
    )
    assert {"grant_types", "client_secret", "redirect_uris"} <= set(messages)


# --- Client helpers ----------------------------------------------------------------------------------
def test_primary_dot_grant_follows_the_list(db):
    web = ClientFactory()
    assert web.authorization_grant_type == AbstractApplication.GRANT_AUTHORIZATION_CODE
    machine = ClientFactory(grant_types=[GrantType.CLIENT_CREDENTIALS], redirect_uris="")
    assert machine.authorization_grant_type == AbstractApplication.GRANT_CLIENT_CREDENTIALS
    both = ClientFactory(grant_types=[GrantType.CLIENT_CREDENTIALS, GrantType.AUTHORIZATION_CODE])
    assert both.authorization_grant_type == AbstractApplication.GRANT_AUTHORIZATION_CODE


def test_allows_grant_type_answers_dot_constants_from_the_list(db):
    web = ClientFactory()
    assert web.allows_grant_type(AbstractApplication.GRANT_AUTHORIZATION_CODE)
    assert not web.allows_grant_type(AbstractApplication.GRANT_CLIENT_CREDENTIALS)
    assert not web.allows_grant_type(AbstractApplication.GRANT_PASSWORD, AbstractApplication.GRANT_IMPLICIT)
    assert web.allows_grant_type(
        AbstractApplication.GRANT_IMPLICIT, AbstractApplication.GRANT_AUTHORIZATION_CODE
    )
    assert web.has_grant_type("refresh_token") and not web.has_grant_type("client_credentials")


@pytest.mark.parametrize(
    "uri",
    [
        CALLBACK + "/",
        "https://CLIENT.example.com/callback",
        "http://client.example.com/callback",
        CALLBACK + "?x=1",
        "https://client.example.com:443/callback",
        "https://client.example.com/callbac",
        "",
    ],
)
def test_redirect_uri_must_match_exactly(db, uri):
    client = ClientFactory(redirect_uris=f"{CALLBACK} https://other.example.com/cb")
    assert client.redirect_uri_allowed(CALLBACK)
    assert client.redirect_uri_allowed("https://other.example.com/cb")
    assert not client.redirect_uri_allowed(uri)


def test_loopback_redirect_needs_the_exact_port(db):
    client = ClientFactory(client_type=Client.CLIENT_PUBLIC, redirect_uris="http://127.0.0.1:8765/cb")
    assert client.redirect_uri_allowed("http://127.0.0.1:8765/cb")
    assert not client.redirect_uri_allowed("http://127.0.0.1:9999/cb")


def test_default_redirect_uri_only_when_unambiguous(db):
    assert ClientFactory().default_redirect_uri == CALLBACK
    several = ClientFactory(redirect_uris=f"{CALLBACK} https://other.example.com/cb")
    with pytest.raises(oauth2_errors.MissingRedirectURIError):
        several.default_redirect_uri  # noqa: B018


def test_post_logout_redirect_uri_exact_match(db):
    client = ClientFactory(post_logout_redirect_uris="https://client.example.com/bye")
    assert client.post_logout_redirect_uri_allowed("https://client.example.com/bye")
    assert not client.post_logout_redirect_uri_allowed("https://client.example.com/bye/")


def test_is_usable_and_enabled_queryset(db):
    on = ClientFactory()
    off = ClientFactory(is_enabled=False)
    assert on.is_usable(None) and not off.is_usable(None)
    assert list(Client.objects.enabled()) == [on]


def test_natural_key(db):
    client = ClientFactory()
    assert client.natural_key() == (client.client_id,)
    assert Client.objects.get_by_natural_key(client.client_id) == client


def test_client_ids_are_generated_and_unique(db):
    first, second = ClientFactory(), ClientFactory()
    assert first.client_id and second.client_id and first.client_id != second.client_id


# --- Scope names ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["files:read", "x", "https://api.example.com/read", "a!#$%&'()*+,-./:;<=>?@[]^_`{|}~"]
)
def test_valid_scope_names(db, name):
    Scope(name=name, description="d").full_clean()


@pytest.mark.parametrize(
    "name", ["files read", 'files"read', "files\\read", "files\tread", "files\nread", "fichiers:lé", ""]
)
def test_invalid_scope_names(db, name):
    with pytest.raises(ValidationError) as exc:
        Scope(name=name, description="d").full_clean()
    assert "name" in exc.value.message_dict


def test_scope_names_are_unique(db):
    ScopeFactory(name="files:read")
    with pytest.raises(ValidationError):
        Scope(name="files:read", description="again").full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        Scope.objects.create(name="files:read", description="again")


# --- create_client -------------------------------------------------------------------------------------
def test_create_client_confidential(db):
    ScopeFactory(name="files:read")
    client, secret = Client.objects.create_client(
        name="Web",
        client_type=Client.CLIENT_CONFIDENTIAL,
        grant_types=["authorization_code", "refresh_token", "authorization_code"],
        redirect_uris=[CALLBACK, "https://client.example.com/cb2"],
        scopes=["files:read"],
    )
    client = Client.objects.get(pk=client.pk)
    assert client.grant_types == ["authorization_code", "refresh_token"]
    assert client.redirect_uri_list == [CALLBACK, "https://client.example.com/cb2"]
    assert secret and client.check_secret(secret) and secret not in client.client_secret
    assert list(client.allowed_scopes.values_list("name", flat=True)) == ["files:read"]


def test_create_client_public_has_no_secret(db):
    client, secret = Client.objects.create_client(
        name="SPA",
        client_type=Client.CLIENT_PUBLIC,
        grant_types=["authorization_code"],
        redirect_uris=[CALLBACK],
    )
    assert secret is None
    assert client.client_secret == ""


def test_create_client_public_with_a_secret_is_refused(db):
    with pytest.raises(ValidationError):
        Client.objects.create_client(
            name="SPA",
            client_type=Client.CLIENT_PUBLIC,
            grant_types=["authorization_code"],
            redirect_uris=[CALLBACK],
            client_secret=SECRET,
        )
    assert not Client.objects.exists()


def test_create_client_with_an_unknown_scope_saves_nothing(db):
    ScopeFactory(name="files:read")
    with pytest.raises(ValidationError) as exc:
        Client.objects.create_client(
            name="Web",
            client_type=Client.CLIENT_CONFIDENTIAL,
            grant_types=["authorization_code"],
            redirect_uris=[CALLBACK],
            scopes=["files:read", "nope:nope"],
        )
    assert "nope:nope" in " ".join(exc.value.message_dict["allowed_scopes"])
    assert not Client.objects.exists()
    assert not Client.allowed_scopes.through.objects.exists()


def test_create_client_runs_clean_and_saves_nothing_when_invalid(db):
    with pytest.raises(ValidationError):
        Client.objects.create_client(
            name="Web",
            client_type=Client.CLIENT_CONFIDENTIAL,
            grant_types=["password"],
            redirect_uris=[CALLBACK],
        )
    assert not Client.objects.exists()


# --- Consent -------------------------------------------------------------------------------------------
def test_consent_active_and_scopes(db):
    live = ConsentFactory(scope="files:read files:write")
    revoked = ConsentFactory(scope="files:read", revoked_at=timezone.now())
    assert list(Consent.objects.active()) == [live]
    assert live.is_active and not revoked.is_active
    assert live.scopes == ["files:read", "files:write"]
    assert ConsentFactory(scope="").scopes == []


def test_one_consent_per_user_and_client(db):
    consent = ConsentFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.create(user=consent.user, client=consent.client, scope="x")
    Consent.objects.create(user=UserFactory(), client=consent.client, scope="x")


# --- AccessToken.is_valid -------------------------------------------------------------------------------
def _token(**fields) -> AccessToken:
    values = {
        "user": UserFactory(),
        "application": ClientFactory(),
        "scope": "files:read files:write",
        "expires": timezone.now() + timedelta(hours=1),
        "token_checksum": "c" * 64,
    }
    values.update(fields)
    return AccessToken.objects.create(**values)


def test_access_token_validity(db):
    token = _token()
    assert token.is_valid()
    assert token.is_valid(["files:read"])
    assert not token.is_valid(["files:delete"])


def test_token_of_a_disabled_client_is_invalid(db):
    token = _token()
    Client.objects.filter(pk=token.application_id).update(is_enabled=False)
    assert not AccessToken.objects.get(pk=token.pk).is_valid()


def test_token_of_an_inactive_user_is_invalid(db):
    token = _token()
    # A queryset update skips the receiver that deletes the tokens: is_valid() must refuse on its own.
    type(token.user).objects.filter(pk=token.user_id).update(is_active=False)
    assert not AccessToken.objects.get(pk=token.pk).is_valid()


def test_expired_token_is_invalid_and_not_active(db):
    expired = _token(expires=timezone.now() - timedelta(seconds=1))
    live = _token(token_checksum="d" * 64)
    assert not expired.is_valid()
    assert list(AccessToken.objects.active()) == [live]


def test_client_credentials_token_without_user_is_valid(db):
    assert _token(user=None).is_valid()
