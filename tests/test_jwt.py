"""ID tokens (OIDC Core 1.0) and JWT access tokens (RFC 9068, RFC 8707), minted through real flows and
verified with joserfc against the published JWKS, never with the code that signed them."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client as BrowserClient
from freezegun import freeze_time
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from oauth_server import keys
from oauth_server.claims import apply_hook, user_for_subject
from oauth_server.models import AccessToken, Grant, IDToken, RefreshToken, Subject
from oauth_server.tokens import token_checksum
from oauth_server.validator import OAuthServerValidator
from tests.factories import ClientFactory, MachineClientFactory
from tests.helpers import exchange_code, get_code, token_request

JWKS_URL = "/oauth/.well-known/jwks.json"
ISSUER = "http://testserver/oauth"
ALGORITHMS = ["RS256", "ES256", "EdDSA"]
API = "https://api.example.com/"
OTHER_API = "https://other.example.com/"
START = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)


# --- helpers -----------------------------------------------------------------------------------------
def verify(browser: BrowserClient, token: str, *, typ: str):
    """joserfc's verdict with the JWKS as served: the header and claims of a token we signed."""
    key_set = KeySet.import_key_set(browser.get(JWKS_URL).json())
    result = jwt.decode(token, key_set, algorithms=ALGORITHMS)
    assert result.header["typ"] == typ, result.header
    return result


def left_half_hash(value: str, algorithm: str) -> str:
    """OIDC Core 3.1.3.6 at_hash, computed independently: SHA-512 for EdDSA (Ed25519), else SHA-256."""
    digest = (hashlib.sha512 if algorithm == "EdDSA" else hashlib.sha256)(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def refresh(browser, client, refresh_token: str, **extra):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return token_request(browser, data, client=client, secret=client.raw_secret)


def tokens_for(browser, client, *, scope: str, **extra) -> dict:
    token_extra = {k: extra.pop(k) for k in list(extra) if k.startswith("token_")}
    code, verifier = get_code(browser, client, scope=scope, **extra)
    response = exchange_code(
        browser, client, code, verifier, **{k.removeprefix("token_"): v for k, v in token_extra.items()}
    )
    assert response.status_code == 200, response.content
    return response.json()


def client_credentials(browser, client, **extra):
    data = {"grant_type": "client_credentials", "scope": "reports:read", **extra}
    return token_request(browser, data, client=client, secret=client.raw_secret)


@pytest.fixture
def algorithm(request, settings):
    """The site's signing algorithm for this test (the first keys are made on first use)."""
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "SIGNING_KEY_ALGORITHM": request.param}
    return request.param


@pytest.fixture
def oidc_client(db):
    return ClientFactory(scopes=["openid", "profile", "email", "files:read"])


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


# --- ID tokens ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHMS, indirect=True)
def test_id_token_claims_and_header_per_algorithm(browser, user, oidc_client, algorithm):
    with freeze_time(START):
        browser.force_login(user)
        body = tokens_for(browser, oidc_client, scope="openid", nonce="n-0S6_WzA2Mj")
        token = verify(browser, body["id_token"], typ="JWT")

    jwks = browser.get(JWKS_URL).json()["keys"]
    assert token.header == {"alg": algorithm, "kid": jwks[0]["kid"], "typ": "JWT"}
    assert jwks[0]["alg"] == algorithm  # the active key is listed first
    claims = token.claims
    now = int(START.timestamp())
    sub = Subject.objects.get(user=user).sub
    assert claims["iss"] == ISSUER == browser.get("/oauth/.well-known/openid-configuration").json()["issuer"]
    assert claims["sub"] == sub and sub != str(user.pk)
    assert claims["aud"] == oidc_client.client_id
    assert claims["azp"] == oidc_client.client_id
    assert claims["iat"] == now
    assert claims["exp"] == now + 3600  # ID_TOKEN_LIFETIME
    assert claims["auth_time"] == now  # the session's login, frozen at START
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["at_hash"] == left_half_hash(body["access_token"], algorithm)
    assert IDToken.objects.get(jti=claims["jti"]).user == user
    assert "c_hash" not in claims


def test_eddsa_at_hash_uses_sha512_not_oauthlibs_sha256(browser, oidc_client, settings):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "SIGNING_KEY_ALGORITHM": "EdDSA"}
    body = tokens_for(browser, oidc_client, scope="openid")
    claims = verify(browser, body["id_token"], typ="JWT").claims
    sha256_half = left_half_hash(body["access_token"], "RS256")
    assert claims["at_hash"] == left_half_hash(body["access_token"], "EdDSA") != sha256_half
    assert len(claims["at_hash"]) == 43  # 32 bytes, base64url


def test_nonce_only_when_sent(browser, oidc_client):
    claims = verify(browser, tokens_for(browser, oidc_client, scope="openid")["id_token"], typ="JWT").claims
    assert "nonce" not in claims


@pytest.mark.parametrize(
    ("scope", "present", "absent"),
    [
        ("openid", {"sub"}, {"name", "preferred_username", "email", "email_verified"}),
        (
            "openid profile",
            {"name", "given_name", "family_name", "preferred_username", "updated_at"},
            {"email", "email_verified"},
        ),
        ("openid email", {"email", "email_verified"}, {"name", "preferred_username"}),
    ],
)
def test_profile_and_email_claims_follow_the_scopes(browser, user, oidc_client, scope, present, absent):
    claims = verify(browser, tokens_for(browser, oidc_client, scope=scope)["id_token"], typ="JWT").claims
    assert present <= set(claims), claims
    assert not absent & set(claims), claims
    if "email" in present:
        assert claims["email"] == user.email and claims["email_verified"] is False
    if "name" in present:
        assert claims["name"] == "Ada Lovelace" and claims["preferred_username"] == user.username


def test_no_id_token_without_openid(browser, oidc_client):
    assert "id_token" not in tokens_for(browser, oidc_client, scope="files:read")


def test_auth_time_is_the_approving_sessions_login_not_last_login(client, user, oidc_client):
    """Another session's later login moves user.last_login; the tokens keep this session's time."""
    with freeze_time(START):
        client.force_login(user)
    with freeze_time(START + timedelta(minutes=10)):
        BrowserClient().force_login(user)  # elsewhere
    user.refresh_from_db()
    assert user.last_login == START + timedelta(minutes=10)
    with freeze_time(START + timedelta(minutes=20)):
        body = tokens_for(client, oidc_client, scope="openid files:read")
        id_claims = verify(client, body["id_token"], typ="JWT").claims
        at_claims = verify(client, body["access_token"], typ="at+jwt").claims
    assert id_claims["auth_time"] == at_claims["auth_time"] == int(START.timestamp())


# --- refresh: OIDC Core 12.2 -------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHMS, indirect=True)
def test_refreshed_id_token_keeps_sub_aud_auth_time_and_gets_a_new_iat(client, user, oidc_client, algorithm):
    with freeze_time(START):
        client.force_login(user)
        first = tokens_for(client, oidc_client, scope="openid profile files:read", nonce="abc")
        original = verify(client, first["id_token"], typ="JWT").claims
    with freeze_time(START + timedelta(minutes=30)):
        BrowserClient().force_login(user)  # moves last_login: must not leak into auth_time
        second = refresh(client, oidc_client, first["refresh_token"]).json()
        renewed = verify(client, second["id_token"], typ="JWT").claims
        access = verify(client, second["access_token"], typ="at+jwt").claims
    with freeze_time(START + timedelta(minutes=50)):
        third = refresh(client, oidc_client, second["refresh_token"]).json()
        again = verify(client, third["id_token"], typ="JWT").claims

    for claims in (renewed, again):
        for name in ("iss", "sub", "aud", "azp", "auth_time"):
            assert claims[name] == original[name], name
        assert "nonce" not in claims  # no authentication request, so no nonce to echo
        assert claims["jti"] != original["jti"]
    assert renewed["iat"] == int((START + timedelta(minutes=30)).timestamp())
    assert again["iat"] == int((START + timedelta(minutes=50)).timestamp())
    assert renewed["at_hash"] == left_half_hash(second["access_token"], algorithm)
    assert again["at_hash"] == left_half_hash(third["access_token"], algorithm)
    assert renewed["name"] == "Ada Lovelace"
    assert access["auth_time"] == original["auth_time"]
    assert RefreshToken.objects.filter(revoked__isnull=True).get().auth_time == START


def test_refresh_without_openid_has_no_id_token(browser, oidc_client):
    first = tokens_for(browser, oidc_client, scope="openid files:read")
    second = refresh(browser, oidc_client, first["refresh_token"], scope="files:read").json()
    assert "id_token" not in second
    assert verify(browser, second["access_token"], typ="at+jwt").claims["scope"] == "files:read"


def test_refresh_token_without_recorded_auth_time_omits_the_claim(browser, user, oidc_client):
    """Refresh tokens from before auth_time was recorded: no claim rather than another session's time."""
    first = tokens_for(browser, oidc_client, scope="openid files:read")
    RefreshToken.objects.update(auth_time=None)
    second = refresh(browser, oidc_client, first["refresh_token"]).json()
    assert "auth_time" not in verify(browser, second["id_token"], typ="JWT").claims
    assert "auth_time" not in verify(browser, second["access_token"], typ="at+jwt").claims


# --- JWT access tokens (RFC 9068) ----------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHMS, indirect=True)
def test_access_token_header_and_claims_per_algorithm(browser, user, oidc_client, algorithm):
    with freeze_time(START):
        browser.force_login(user)
        body = tokens_for(browser, oidc_client, scope="openid files:read")
        token = verify(browser, body["access_token"], typ="at+jwt")
    now = int(START.timestamp())
    assert token.header["alg"] == algorithm
    assert token.header["kid"] == browser.get(JWKS_URL).json()["keys"][0]["kid"]
    assert token.claims == {
        "iss": ISSUER,
        "sub": Subject.objects.get(user=user).sub,
        "aud": ISSUER,  # no resource, no client audiences, no DEFAULT_AUDIENCE
        "exp": now + body["expires_in"],
        "iat": now,
        "jti": token.claims["jti"],
        "client_id": oidc_client.client_id,
        "scope": "openid files:read",
        "auth_time": now,
    }
    assert body["expires_in"] == 3600
    row = AccessToken.objects.get()
    assert row.jti == token.claims["jti"] and row.audience == ISSUER
    assert row.expires == START + timedelta(seconds=3600)
    # The value itself is not stored: only its SHA-256 checksum.
    assert body["access_token"] not in (row.token or "")
    assert row.token_checksum == hashlib.sha256(body["access_token"].encode()).hexdigest()


def test_stored_expiry_is_the_jwts_exp_even_when_a_second_passes_while_issuing(client, db):
    machine = MachineClientFactory(scopes=["reports:read"])
    with freeze_time(START, auto_tick_seconds=0.3):  # the clock moves on between signing and saving
        response = client_credentials(client, machine)
    claims = verify(client, response.json()["access_token"], typ="at+jwt").claims
    assert AccessToken.objects.get().expires.timestamp() == claims["exp"]


def test_client_credentials_token_has_the_client_as_sub_and_no_auth_time(client, db):
    machine = MachineClientFactory(scopes=["reports:read"], audiences=[API])
    response = client_credentials(client, machine)
    assert response.status_code == 200, response.content
    claims = verify(client, response.json()["access_token"], typ="at+jwt").claims
    assert claims["sub"] == claims["client_id"] == machine.client_id
    assert claims["aud"] == API and claims["scope"] == "reports:read"
    assert "auth_time" not in claims


def test_per_client_lifetime_sets_exp_and_expires_in(browser, db):
    short = ClientFactory(scopes=["files:read"], access_token_lifetime=120)
    body = tokens_for(browser, short, scope="files:read")
    claims = verify(browser, body["access_token"], typ="at+jwt").claims
    assert body["expires_in"] == 120 == claims["exp"] - claims["iat"]


def test_site_access_token_lifetime_is_honoured(browser, oidc_client, settings):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "ACCESS_TOKEN_LIFETIME": 900}
    body = tokens_for(browser, oidc_client, scope="files:read")
    claims = verify(browser, body["access_token"], typ="at+jwt").claims
    assert body["expires_in"] == 900 == claims["exp"] - claims["iat"]


# --- audience (RFC 8707) ------------------------------------------------------------------------------
@pytest.fixture
def api_client(db):
    return ClientFactory(scopes=["openid", "files:read"], audiences=[API, OTHER_API])


def test_aud_is_the_requested_resource_when_the_client_lists_it(browser, api_client):
    body = tokens_for(browser, api_client, scope="openid files:read", token_resource=API)
    assert verify(browser, body["access_token"], typ="at+jwt").claims["aud"] == API
    assert AccessToken.objects.get().audience == API
    # The refresh token stays bound to that resource.
    renewed = refresh(browser, api_client, body["refresh_token"]).json()
    assert verify(browser, renewed["access_token"], typ="at+jwt").claims["aud"] == API
    # ... and cannot be widened to the other API at refresh.
    response = refresh(browser, api_client, renewed["refresh_token"], resource=OTHER_API)
    assert response.status_code == 400 and response.json()["error"] == "invalid_target"


def test_aud_is_every_requested_resource(browser, api_client):
    code, verifier = get_code(browser, api_client, scope="files:read")
    response = token_request(
        browser,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": api_client.redirect_uri_list[0],
            "code_verifier": verifier,
            "resource": [API, OTHER_API],
        },
        client=api_client,
        secret=api_client.raw_secret,
    )
    assert response.status_code == 200, response.content
    assert verify(browser, response.json()["access_token"], typ="at+jwt").claims["aud"] == [API, OTHER_API]


def test_aud_is_the_clients_audiences_without_a_resource(browser, api_client):
    body = tokens_for(browser, api_client, scope="files:read")
    assert verify(browser, body["access_token"], typ="at+jwt").claims["aud"] == [API, OTHER_API]


def bind_code_to(code: str, resources: list[str]) -> None:
    """What the authorization endpoint records for ``resource`` at /authorize (RFC 8707 2.1)."""
    assert Grant.objects.filter(code=token_checksum(code)).update(resource=resources) == 1


def test_aud_is_the_resource_the_code_was_bound_to(browser, api_client):
    code, verifier = get_code(browser, api_client, scope="files:read")
    bind_code_to(code, [OTHER_API])
    response = exchange_code(browser, api_client, code, verifier)
    assert verify(browser, response.json()["access_token"], typ="at+jwt").claims["aud"] == OTHER_API


def test_token_request_cannot_widen_the_resource_the_code_was_bound_to(browser, api_client):
    code, verifier = get_code(browser, api_client, scope="openid files:read")
    bind_code_to(code, [OTHER_API])
    response = exchange_code(browser, api_client, code, verifier, resource=API)
    assert response.status_code == 400 and response.json()["error"] == "invalid_target"
    assert not AccessToken.objects.exists() and not IDToken.objects.exists()


def test_aud_is_the_default_audience_setting(browser, oidc_client, settings):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "DEFAULT_AUDIENCE": "https://default.example.com/"}
    body = tokens_for(browser, oidc_client, scope="files:read")
    assert verify(browser, body["access_token"], typ="at+jwt").claims["aud"] == "https://default.example.com/"


@pytest.mark.parametrize(
    "resource",
    ["https://unlisted.example.com/", "urn:example:api"],  # not allowed; listed but not an absolute URI
)
def test_unlisted_resource_is_invalid_target_and_nothing_is_saved(browser, db, resource):
    api_client = ClientFactory(scopes=["openid", "files:read"], audiences=[API, "urn:example:api"])
    code, verifier = get_code(browser, api_client, scope="openid files:read")
    response = exchange_code(browser, api_client, code, verifier, resource=resource)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_target"
    assert not AccessToken.objects.exists()
    assert not IDToken.objects.exists()
    assert not RefreshToken.objects.exists()
    # The code was not consumed: a correct request still works.
    assert exchange_code(browser, api_client, code, verifier, resource=API).status_code == 200


def test_code_bound_to_a_resource_not_listed_for_the_client_is_invalid_target(browser, api_client):
    code, verifier = get_code(browser, api_client, scope="files:read")
    bind_code_to(code, ["https://unlisted.example.com/"])
    response = exchange_code(browser, api_client, code, verifier)
    assert response.status_code == 400 and response.json()["error"] == "invalid_target"
    assert not AccessToken.objects.exists()


def test_client_credentials_unlisted_resource_is_invalid_target(client, db):
    machine = MachineClientFactory(scopes=["reports:read"], audiences=[API])
    response = client_credentials(client, machine, resource=OTHER_API)
    assert response.status_code == 400 and response.json()["error"] == "invalid_target"
    assert not AccessToken.objects.exists()


# --- opaque access tokens --------------------------------------------------------------------------------
def assert_opaque(value: str) -> None:
    assert value.count(".") == 0 and len(value) >= 40
    with pytest.raises((JoseError, ValueError)):
        jwt.decode(value, KeySet([]))


def test_opaque_access_tokens_per_client(browser, db):
    opaque = ClientFactory(scopes=["openid", "files:read"], access_token_format="opaque")
    body = tokens_for(browser, opaque, scope="openid files:read")
    assert_opaque(body["access_token"])
    row = AccessToken.objects.get()
    assert row.jti and row.token_checksum == hashlib.sha256(body["access_token"].encode()).hexdigest()
    # The ID token is still a JWT, with at_hash of the opaque value.
    claims = verify(browser, body["id_token"], typ="JWT").claims
    assert claims["at_hash"] == left_half_hash(body["access_token"], "RS256")


def test_opaque_access_tokens_per_site_and_a_client_can_still_ask_for_jwt(browser, db, settings):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "ACCESS_TOKEN_FORMAT": "opaque"}
    site_default = ClientFactory(scopes=["files:read"])
    assert_opaque(tokens_for(browser, site_default, scope="files:read")["access_token"])
    jwt_client = ClientFactory(scopes=["files:read"], access_token_format="jwt")
    verify(browser, tokens_for(browser, jwt_client, scope="files:read")["access_token"], typ="at+jwt")


# --- customisation hooks ------------------------------------------------------------------------------------
def access_token_hook(request, claims):
    return {
        "roles": ["editor"],
        "seen_scope": claims["scope"],
        # None of these may change the token:
        "iss": "https://evil.example.com",
        "aud": "https://evil.example.com",
        "exp": 9999999999,
        "sub": "admin",
        "scope": "files:read files:write admin",
        "client_id": "someone-else",
        "jti": "fixed",
    }


def id_token_hook(request, claims):
    return {"tenant": "acme", "sub": "admin", "nonce": "forged", "at_hash": "x", "aud": "other", "exp": 1}


def userinfo_hook(request, claims):
    return {"picture": "https://cdn.example.com/a.png", "sub": "admin"}


def test_access_token_hook_adds_claims_but_cannot_override_security_claims(
    browser, oidc_client, settings, caplog
):
    settings.OAUTH_SERVER = {
        **settings.OAUTH_SERVER,
        "ACCESS_TOKEN_CLAIMS": "tests.test_jwt.access_token_hook",
    }
    with caplog.at_level(logging.WARNING, logger="oauth_server.claims"):
        body = tokens_for(browser, oidc_client, scope="files:read")
    claims = verify(browser, body["access_token"], typ="at+jwt").claims
    assert claims["roles"] == ["editor"] and claims["seen_scope"] == "files:read"
    assert claims["iss"] == ISSUER and claims["aud"] == ISSUER
    assert claims["exp"] == claims["iat"] + 3600
    assert claims["sub"] != "admin" and claims["client_id"] == oidc_client.client_id
    assert claims["scope"] == "files:read" and claims["jti"] == AccessToken.objects.get().jti != "fixed"
    assert "may not set aud, client_id, exp, iss, jti, scope, sub" in caplog.text


def test_id_token_hook_adds_claims_but_cannot_override_security_claims(browser, user, oidc_client, settings):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "ID_TOKEN_CLAIMS": "tests.test_jwt.id_token_hook"}
    body = tokens_for(browser, oidc_client, scope="openid", nonce="real-nonce")
    claims = verify(browser, body["id_token"], typ="JWT").claims
    assert claims["tenant"] == "acme"
    assert claims["sub"] == Subject.objects.get(user=user).sub
    assert claims["nonce"] == "real-nonce" and claims["aud"] == oidc_client.client_id
    assert claims["at_hash"] == left_half_hash(body["access_token"], "RS256")
    assert claims["exp"] == claims["iat"] + 3600


def test_userinfo_hook_adds_claims_but_cannot_change_sub(browser, user, oidc_client, settings):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "USERINFO": "tests.test_jwt.userinfo_hook"}
    body = tokens_for(browser, oidc_client, scope="openid profile")
    info = BrowserClient().get("/oauth/userinfo/", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert info.status_code == 200, info.content
    data = info.json()
    assert data["picture"] == "https://cdn.example.com/a.png"
    assert (
        data["sub"]
        == Subject.objects.get(user=user).sub
        == verify(browser, body["id_token"], typ="JWT").claims["sub"]
    )
    assert data["name"] == "Ada Lovelace"


def test_a_hook_returning_something_else_than_a_dict_is_a_configuration_error(settings):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "USERINFO": lambda request, claims: ["oops"]}
    with pytest.raises(ImproperlyConfigured, match="must return a dict"):
        apply_hook("USERINFO", None, {"sub": "x"})


def test_a_hook_returning_none_adds_nothing(settings):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "USERINFO": lambda request, claims: None}
    assert apply_hook("USERINFO", None, {"sub": "x"}) == {"sub": "x"}


# --- header typ: the two kinds of token cannot be swapped ---------------------------------------------
def test_an_access_token_is_not_accepted_where_an_id_token_is_expected(browser, oidc_client):
    body = tokens_for(browser, oidc_client, scope="openid files:read")
    validator = OAuthServerValidator()
    assert validator._load_id_token(body["access_token"]) is None
    assert validator._load_id_token(body["id_token"]) == IDToken.objects.get()
    assert verify(browser, body["id_token"], typ="JWT").header["typ"] != "at+jwt"


# --- key rotation, seen by a relying party / resource server ---------------------------------------------
def test_tokens_verify_across_a_rotation_until_the_old_key_is_retired(browser, user, oidc_client):
    with freeze_time(START) as frozen:
        browser.force_login(user)
        before = tokens_for(browser, oidc_client, scope="openid files:read")
        old_kid = verify(browser, before["access_token"], typ="at+jwt").header["kid"]

        frozen.tick(timedelta(minutes=5))
        rotation = keys.rotate()
        assert rotation.retired.kid == old_kid
        after = tokens_for(browser, oidc_client, scope="openid files:read")
        for name, typ in (("access_token", "at+jwt"), ("id_token", "JWT")):
            assert verify(browser, before[name], typ=typ).header["kid"] == old_kid
            assert verify(browser, after[name], typ=typ).header["kid"] == rotation.activated.kid
        assert old_kid in {k["kid"] for k in browser.get(JWKS_URL).json()["keys"]}

        # Just before retire_after the old key is still published.
        frozen.move_to(rotation.retire_after - timedelta(seconds=1))
        assert old_kid in {k["kid"] for k in browser.get(JWKS_URL).json()["keys"]}

        frozen.move_to(rotation.retire_after)
        assert old_kid not in {k["kid"] for k in browser.get(JWKS_URL).json()["keys"]}
        with pytest.raises(JoseError):
            verify(browser, before["access_token"], typ="at+jwt")
        with pytest.raises(JoseError):
            verify(browser, before["id_token"], typ="JWT")
        # The newer tokens' key is still the active one.
        assert verify(browser, after["id_token"], typ="JWT").header["kid"] == rotation.activated.kid


def test_the_old_key_outlives_every_token_it_signed(browser, user, db, settings):
    """The longest lifetime (a client's 2 h access tokens) decides how long the old key stays published."""
    long_lived = ClientFactory(scopes=["openid", "files:read"], access_token_lifetime=7200)
    with freeze_time(START) as frozen:
        browser.force_login(user)
        body = tokens_for(browser, long_lived, scope="openid files:read")
        rotation = keys.rotate()
        expires = verify(browser, body["access_token"], typ="at+jwt").claims["exp"]
        frozen.move_to(datetime.fromtimestamp(expires - 1, tz=UTC))
        verify(browser, body["access_token"], typ="at+jwt")  # still verifiable until it expires
        assert rotation.retire_after.timestamp() > expires


@pytest.mark.parametrize(("old", "new"), [("RS256", "ES256"), ("ES256", "EdDSA"), ("EdDSA", "RS256")])
def test_changing_algorithm_by_rotation(browser, oidc_client, settings, old, new):
    settings.OAUTH_SERVER = {**settings.OAUTH_SERVER, "SIGNING_KEY_ALGORITHM": old}
    first = tokens_for(browser, oidc_client, scope="openid files:read")
    keys.rotate(algorithm=new)  # the new algorithm is published as the next key first
    second = tokens_for(browser, oidc_client, scope="openid files:read")
    assert verify(browser, second["id_token"], typ="JWT").header["alg"] == old
    assert new in {k["alg"] for k in browser.get(JWKS_URL).json()["keys"]}
    keys.rotate()
    third = tokens_for(browser, oidc_client, scope="openid files:read")
    for body in (first, second, third):
        verify(browser, body["access_token"], typ="at+jwt")
    id_token = verify(browser, third["id_token"], typ="JWT")
    assert id_token.header["alg"] == new
    assert id_token.claims["at_hash"] == left_half_hash(third["access_token"], new)


# --- the documented resource-server validator (docs/resource-servers.md) -----------------------------------
DOC = Path(__file__).resolve().parent.parent / "docs" / "resource-servers.md"


def documented_validator() -> dict:
    text = DOC.read_text()
    block = re.search(
        r"<!-- tested-python-example:begin -->\s*```python\n(.*?)```\s*<!-- tested-python-example:end -->",
        text,
        re.S,
    )
    assert block, "the tested example block is missing from docs/resource-servers.md"
    namespace: dict = {}
    exec(compile(block.group(1), str(DOC), "exec"), namespace)  # noqa: S102
    return namespace


@pytest.fixture
def doc():
    return documented_validator()


def jwks_fetcher(browser, calls: list):
    def fetch(url):
        calls.append(url)
        return browser.get(url).json()

    return fetch


def test_documented_python_validator_accepts_our_access_tokens(browser, db, doc):
    api_client = ClientFactory(scopes=["openid", "files:read"], audiences=[API])
    body = tokens_for(browser, api_client, scope="openid files:read")
    calls: list = []
    cache = doc["JWKSCache"](JWKS_URL, fetch=jwks_fetcher(browser, calls))
    claims = doc["validate_access_token"](
        body["access_token"], issuer=ISSUER, audience=API, keys=cache, required_scopes=["files:read"]
    )
    assert claims["client_id"] == api_client.client_id and claims["aud"] == API
    assert calls == [JWKS_URL]

    with pytest.raises(doc["InsufficientScope"]):
        doc["validate_access_token"](
            body["access_token"], issuer=ISSUER, audience=API, keys=cache, required_scopes=["files:write"]
        )
    for kwargs in ({"issuer": ISSUER + "/", "audience": API}, {"issuer": ISSUER, "audience": OTHER_API}):
        with pytest.raises(doc["InvalidToken"]):
            doc["validate_access_token"](body["access_token"], keys=cache, **kwargs)
    # An ID token (typ JWT) is not an access token, even with a valid signature from the same keys.
    with pytest.raises(doc["InvalidToken"], match="not an access token"):
        doc["validate_access_token"](
            body["id_token"], issuer=ISSUER, audience=api_client.client_id, keys=cache
        )
    # A tampered payload fails the signature check.
    head, payload, signature = body["access_token"].split(".")
    forged = base64.urlsafe_b64encode(b'{"scope":"admin"}').rstrip(b"=").decode()
    with pytest.raises(doc["InvalidToken"]):
        doc["validate_access_token"](f"{head}.{forged}.{signature}", issuer=ISSUER, audience=API, keys=cache)


def test_documented_python_validator_rejects_alg_none_and_hmac(browser, db, doc):
    api_client = ClientFactory(scopes=["files:read"], audiences=[API])
    body = tokens_for(browser, api_client, scope="files:read")
    _, payload, _ = body["access_token"].split(".")
    cache = doc["JWKSCache"](JWKS_URL, fetch=jwks_fetcher(browser, []))
    for header in (b'{"alg":"none","typ":"at+jwt"}', b'{"alg":"HS256","typ":"at+jwt","kid":"x"}'):
        encoded = base64.urlsafe_b64encode(header).rstrip(b"=").decode()
        with pytest.raises(doc["InvalidToken"], match="algorithm not allowed"):
            doc["validate_access_token"](f"{encoded}.{payload}.", issuer=ISSUER, audience=API, keys=cache)


def test_documented_python_validator_expiry_and_rotation(browser, user, db, doc):
    api_client = ClientFactory(scopes=["files:read"], audiences=[API], access_token_lifetime=600)
    calls: list = []
    with freeze_time(START) as frozen:
        browser.force_login(user)
        cache = doc["JWKSCache"](JWKS_URL, fetch=jwks_fetcher(browser, calls))
        first = tokens_for(browser, api_client, scope="files:read")["access_token"]
        doc["validate_access_token"](first, issuer=ISSUER, audience=API, keys=cache)

        # Two rotations in a row: the key now signing was not in the cached JWKS -> one refetch.
        keys.rotate()
        keys.rotate()
        frozen.tick(timedelta(seconds=20))
        second = tokens_for(browser, api_client, scope="files:read")["access_token"]
        doc["validate_access_token"](second, issuer=ISSUER, audience=API, keys=cache)
        doc["validate_access_token"](first, issuer=ISSUER, audience=API, keys=cache)  # old kid still there
        assert len(calls) == 2

        # exp with the documented 30 s leeway.
        frozen.move_to(START + timedelta(seconds=600 + 29))
        doc["validate_access_token"](first, issuer=ISSUER, audience=API, keys=cache)
        frozen.move_to(START + timedelta(seconds=600 + 31))
        with pytest.raises(doc["InvalidToken"]):
            doc["validate_access_token"](first, issuer=ISSUER, audience=API, keys=cache)


def test_documented_python_validator_unknown_kid_refetches_once_rate_limited(browser, user, db, doc):
    api_client = ClientFactory(scopes=["files:read"], audiences=[API])
    calls: list = []
    with freeze_time(START) as frozen:
        browser.force_login(user)
        token = tokens_for(browser, api_client, scope="files:read")["access_token"]
        _, payload, signature = token.split(".")
        unknown = (
            base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"at+jwt","kid":"nope"}').rstrip(b"=").decode()
        )
        cache = doc["JWKSCache"](JWKS_URL, fetch=jwks_fetcher(browser, calls))
        doc["validate_access_token"](token, issuer=ISSUER, audience=API, keys=cache)
        frozen.tick(timedelta(seconds=60))
        for _ in range(3):
            with pytest.raises(doc["InvalidToken"], match="unknown signing key"):
                doc["validate_access_token"](
                    f"{unknown}.{payload}.{signature}", issuer=ISSUER, audience=API, keys=cache
                )
    assert len(calls) == 2  # the first fetch, then one refetch: not one per bad token


def test_user_for_subject_maps_sub_back(browser, user, oidc_client):
    body = tokens_for(browser, oidc_client, scope="files:read")
    assert user_for_subject(verify(browser, body["access_token"], typ="at+jwt").claims["sub"]) == user
    assert user_for_subject("unknown") is None
