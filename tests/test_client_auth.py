"""Client authentication at the token endpoint and the client_credentials grant (RFC 6749 2.3, 4.4, 5.2)."""

from __future__ import annotations

from urllib.parse import quote_plus

import pytest

from oauth_server import keys
from oauth_server.models import AccessToken, AuditEvent, Client, GrantType, RefreshToken
from tests.factories import ClientFactory, MachineClientFactory, PublicClientFactory, pkce_pair
from tests.helpers import REVOKE_URL, TOKEN_URL, basic_auth, exchange_code, get_code, token_request

CC = {"grant_type": "client_credentials"}


def assert_error(response, error: str, status: int = 400) -> dict:
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json")
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["error"] == error, body
    return body


def assert_invalid_client(response) -> None:
    """RFC 6749 5.2: 401 with a WWW-Authenticate challenge for the client's scheme (Basic)."""
    assert_error(response, "invalid_client", 401)
    assert response["WWW-Authenticate"].startswith("Basic ")
    assert not AccessToken.objects.exists()


def body_auth(client, secret: str | None, **data: str):
    fields = {"client_id": client.client_id, **CC, **data}
    if secret is not None:
        fields["client_secret"] = secret
    return fields


# --- client_credentials: success ------------------------------------------------------------------
def test_client_credentials_with_http_basic(client, machine_client):
    data = {**CC, "scope": "reports:read"}
    response = token_request(client, data, client=machine_client, secret=machine_client.raw_secret)
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "reports:read"
    token = AccessToken.objects.get(application=machine_client)
    assert token.user is None


def test_client_credentials_with_post_body(client, machine_client):
    response = client.post(TOKEN_URL, body_auth(machine_client, machine_client.raw_secret))
    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "Bearer"


def test_basic_credentials_are_form_urlencoded(client, db):
    """RFC 6749 2.3.1: id and secret are form-urlencoded before Basic encoding."""
    machine = MachineClientFactory(raw_secret="s3cr3t with spaces+plus%percent:colon/slash-0123456789")
    header = basic_auth(quote_plus(machine.client_id), quote_plus(machine.raw_secret))
    response = client.post(TOKEN_URL, CC, HTTP_AUTHORIZATION=header)
    assert response.status_code == 200, response.content


def test_client_credentials_never_issues_a_refresh_token(client, db):
    machine = ClientFactory(
        grant_types=[GrantType.AUTHORIZATION_CODE, GrantType.REFRESH_TOKEN, GrantType.CLIENT_CREDENTIALS]
    )
    response = token_request(client, CC, client=machine, secret=machine.raw_secret)
    assert response.status_code == 200, response.content
    assert "refresh_token" not in response.json()
    assert not RefreshToken.objects.exists()


def test_client_access_token_lifetime_applies_to_client_credentials(client, db):
    machine = MachineClientFactory(access_token_lifetime=120)
    response = token_request(client, CC, client=machine, secret=machine.raw_secret)
    assert response.json()["expires_in"] == 120


# --- client_credentials: authentication failures ---------------------------------------------------
def test_wrong_secret_with_basic_is_401_invalid_client_with_challenge(client, machine_client):
    assert_invalid_client(token_request(client, CC, client=machine_client, secret="wrong-" * 8))


def test_wrong_secret_in_body_is_401_invalid_client(client, machine_client):
    assert_invalid_client(client.post(TOKEN_URL, body_auth(machine_client, "wrong-" * 8)))


def test_missing_secret_is_invalid_client(client, machine_client):
    assert_invalid_client(client.post(TOKEN_URL, body_auth(machine_client, None)))


def test_empty_secret_is_invalid_client(client, machine_client):
    assert_invalid_client(client.post(TOKEN_URL, body_auth(machine_client, "")))
    assert_invalid_client(token_request(client, CC, client=machine_client, secret=""))


def test_no_credentials_at_all_is_invalid_client(client, db):
    assert_invalid_client(client.post(TOKEN_URL, CC))


def test_unknown_client_is_invalid_client(client, db):
    response = client.post(TOKEN_URL, CC, HTTP_AUTHORIZATION=basic_auth("no-such-client", "x" * 40))
    assert_invalid_client(response)
    assert_invalid_client(
        client.post(TOKEN_URL, {**CC, "client_id": "no-such-client", "client_secret": "x" * 40})
    )


def test_stored_hash_is_not_accepted_as_the_secret(client, machine_client):
    stored = Client.objects.get(pk=machine_client.pk).client_secret
    assert_invalid_client(token_request(client, CC, client=machine_client, secret=stored))


def test_secret_of_another_client_is_invalid_client(client, machine_client):
    other = MachineClientFactory()
    assert_invalid_client(token_request(client, CC, client=machine_client, secret=other.raw_secret))


def test_malformed_basic_header_is_invalid_client(client, machine_client):
    for header in ("Basic !!!not-base64", "Basic " + "bm9jb2xvbg==", "Basic"):  # "nocolon"
        assert_invalid_client(client.post(TOKEN_URL, CC, HTTP_AUTHORIZATION=header))


def test_basic_and_body_secret_together_is_invalid_request(client, machine_client):
    """RFC 6749 5.2: more than one authentication mechanism is invalid_request, and a wrong Basic
    secret must not be rescued by a right body secret."""
    data = body_auth(machine_client, machine_client.raw_secret)
    wrong_basic = basic_auth(machine_client.client_id, "wrong-" * 8)
    assert_error(client.post(TOKEN_URL, data, HTTP_AUTHORIZATION=wrong_basic), "invalid_request")
    right_basic = basic_auth(machine_client.client_id, machine_client.raw_secret)
    assert_error(client.post(TOKEN_URL, data, HTTP_AUTHORIZATION=right_basic), "invalid_request")
    assert not AccessToken.objects.exists()


def test_basic_with_client_id_in_body_is_fine(client, machine_client):
    header = basic_auth(machine_client.client_id, machine_client.raw_secret)
    response = client.post(
        TOKEN_URL, {**CC, "client_id": machine_client.client_id}, HTTP_AUTHORIZATION=header
    )
    assert response.status_code == 200, response.content


def test_credentials_in_the_query_string_are_refused(client, machine_client):
    """RFC 6749 2.3.1: client credentials MUST NOT be in the request URI."""
    url = f"{TOKEN_URL}?client_id={machine_client.client_id}&client_secret={machine_client.raw_secret}"
    assert_error(client.post(url, CC), "invalid_request")
    assert_error(
        client.post(
            f"{TOKEN_URL}?client_secret={machine_client.raw_secret}", body_auth(machine_client, None)
        ),
        "invalid_request",
    )
    assert not AccessToken.objects.exists()


def test_public_client_cannot_use_client_credentials(client, db):
    # Client.clean forbids this combination; a row created around it still gets no token.
    public = PublicClientFactory(grant_types=[GrantType.CLIENT_CREDENTIALS], redirect_uris="")
    assert_invalid_client(client.post(TOKEN_URL, {**CC, "client_id": public.client_id}))
    assert_invalid_client(client.post(TOKEN_URL, {**CC, "client_id": public.client_id, "client_secret": ""}))


def test_client_without_the_grant_is_unauthorized_client(client, web_client):
    response = token_request(client, CC, client=web_client, secret=web_client.raw_secret)
    assert_error(response, "unauthorized_client")
    assert not AccessToken.objects.exists()


def test_client_without_code_grant_cannot_exchange_codes(client, machine_client):
    data = {
        "grant_type": "authorization_code",
        "code": "x",
        "redirect_uri": "https://client.example.com/callback",
        "code_verifier": pkce_pair()[0],
    }
    response = token_request(client, data, client=machine_client, secret=machine_client.raw_secret)
    assert_error(response, "unauthorized_client")


# --- disabled clients ------------------------------------------------------------------------------
def test_disabled_client_is_invalid_client_and_its_tokens_stop_working(client, machine_client):
    response = token_request(client, CC, client=machine_client, secret=machine_client.raw_secret)
    assert response.status_code == 200
    token = AccessToken.objects.get(application=machine_client)
    assert token.is_valid()

    # A queryset update skips the receiver that revokes the tokens: is_valid() must refuse on its own.
    type(machine_client).objects.filter(pk=machine_client.pk).update(is_enabled=False)
    machine_client.is_enabled = False

    response = token_request(client, CC, client=machine_client, secret=machine_client.raw_secret)
    assert_error(response, "invalid_client", 401)
    assert AccessToken.objects.filter(application=machine_client).count() == 1
    token = AccessToken.objects.get(pk=token.pk)
    assert not token.is_valid()
    assert not token.is_valid(["reports:read"])


def test_reenabled_client_works_again(client, machine_client):
    machine_client.is_enabled = False
    machine_client.save()
    assert (
        token_request(client, CC, client=machine_client, secret=machine_client.raw_secret).status_code == 401
    )
    machine_client.is_enabled = True
    machine_client.save()
    assert (
        token_request(client, CC, client=machine_client, secret=machine_client.raw_secret).status_code == 200
    )


def test_disabled_client_cannot_exchange_a_code_it_already_has(client, user, web_client):
    client.force_login(user)
    code, verifier = get_code(client, web_client, scope="files:read")
    web_client.is_enabled = False
    web_client.save()
    assert_error(exchange_code(client, web_client, code, verifier), "invalid_client", 401)


# --- authorization_code: confidential vs public clients -------------------------------------------
@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def test_confidential_client_must_authenticate_for_the_code_exchange(logged_in, web_client):
    code, verifier = get_code(logged_in, web_client, scope="files:read")
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": web_client.redirect_uri_list[0],
        "code_verifier": verifier,
    }
    assert_error(token_request(logged_in, data, client=web_client), "invalid_client", 401)
    # The failed attempt did not consume the code.
    assert exchange_code(logged_in, web_client, code, verifier).status_code == 200


def test_confidential_client_with_wrong_secret_cannot_exchange_a_code(logged_in, web_client):
    code, verifier = get_code(logged_in, web_client, scope="files:read")
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": web_client.redirect_uri_list[0],
        "code_verifier": verifier,
    }
    response = token_request(logged_in, data, client=web_client, secret="wrong-" * 8)
    assert_invalid_client(response)


def test_public_client_needs_only_its_client_id(logged_in, public_client):
    code, verifier = get_code(logged_in, public_client, scope="files:read")
    response = exchange_code(logged_in, public_client, code, verifier)
    assert response.status_code == 200, response.content


def test_public_client_id_of_an_unknown_client_is_invalid_client(client, db):
    data = {"grant_type": "authorization_code", "code": "x", "client_id": "nope", "code_verifier": "v" * 43}
    assert_error(client.post(TOKEN_URL, data), "invalid_client", 401)


# --- a client_id parameter naming another client (security review, issue 9 item 1) ----------------
def _refused_as_mismatch(response) -> None:
    body = assert_error(response, "invalid_request")
    assert "client_id" in body["error_description"]


def test_code_exchange_with_another_clients_client_id_in_the_body_is_refused(logged_in):
    """Basic auth as one client plus ``client_id=<another client>`` in the body used to return an
    ID token whose aud/azp named the other client (RFC 6749 3.2.1: the authenticated client is the
    one the token is for)."""
    web_client = ClientFactory(scopes=["openid", "files:read"])
    other = PublicClientFactory(scopes=["openid", "files:read"])
    code, verifier = get_code(logged_in, web_client, scope="openid files:read", nonce="n-1")
    _refused_as_mismatch(exchange_code(logged_in, web_client, code, verifier, client_id=other.client_id))
    assert not AccessToken.objects.exists()
    event = AuditEvent.objects.get(event=AuditEvent.Event.CLIENT_AUTH_FAILED)
    assert event.details["reason"] == "client_id_mismatch"
    # The refusal did not consume the code: the client's own request still works, for itself.
    response = exchange_code(logged_in, web_client, code, verifier, client_id=web_client.client_id)
    assert response.status_code == 200, response.content
    claims = keys.verify(response.json()["id_token"], typ="JWT")
    assert claims["aud"] == web_client.client_id
    assert claims["azp"] == web_client.client_id


def test_refresh_with_another_clients_client_id_in_the_body_is_refused(logged_in, web_client):
    other = ClientFactory()
    code, verifier = get_code(logged_in, web_client, scope="files:read")
    refresh = exchange_code(logged_in, web_client, code, verifier).json()["refresh_token"]
    data = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": other.client_id}
    _refused_as_mismatch(token_request(logged_in, data, client=web_client, secret=web_client.raw_secret))
    assert AccessToken.objects.count() == 1
    # Body authentication names one client only; the refresh token still works for its client.
    data["client_id"] = web_client.client_id
    response = token_request(logged_in, data, client=web_client, secret=web_client.raw_secret)
    assert response.status_code == 200, response.content


def test_client_credentials_with_another_clients_client_id_is_refused(client, machine_client):
    other = MachineClientFactory(scopes=["reports:read"])
    header = basic_auth(machine_client.client_id, machine_client.raw_secret)
    _refused_as_mismatch(
        client.post(TOKEN_URL, {**CC, "client_id": other.client_id}, HTTP_AUTHORIZATION=header)
    )
    assert not AccessToken.objects.exists()


@pytest.mark.parametrize("url", ["/oauth/introspect/", REVOKE_URL])
def test_introspection_and_revocation_refuse_another_clients_client_id(client, machine_client, url):
    other = MachineClientFactory()
    header = basic_auth(machine_client.client_id, machine_client.raw_secret)
    token = client.post(TOKEN_URL, CC, HTTP_AUTHORIZATION=header).json()["access_token"]
    _refused_as_mismatch(
        client.post(url, {"token": token, "client_id": other.client_id}, HTTP_AUTHORIZATION=header)
    )
    assert AccessToken.objects.count() == 1  # not revoked
    response = client.post(
        url, {"token": token, "client_id": machine_client.client_id}, HTTP_AUTHORIZATION=header
    )
    assert response.status_code == 200, response.content


def test_id_token_audience_comes_from_the_client_object_not_the_parameter(web_client, user):
    """Defence in depth: even a request whose client_id parameter differs reaches the ID token only
    with the authenticated client's id in aud and azp."""
    from oauthlib.common import Request

    from oauth_server.validator import OAuthServerValidator

    request = Request(
        "https://testserver/oauth/token/", headers={"SERVER_NAME": "testserver", "SERVER_PORT": "443"}
    )
    request.client, request.client_id, request.user = web_client, "someone-else", user
    request.grant_type, request.scopes, request.claims = "authorization_code", ["openid"], None
    claims, _expiration = OAuthServerValidator().get_id_token_dictionary({}, None, request)
    assert claims["aud"] == claims["azp"] == web_client.client_id
