"""client_secret_jwt client authentication (RFC 7523 2.2, 3; OIDC Core 9), its secret encrypted at rest,
and the attacks: replay, wrong audience, algorithm confusion in both directions."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import override_settings
from jwcrypto import jwk, jws, jwt

from oauth_server import secret_encryption
from oauth_server.client_auth import registry
from oauth_server.conf import DEFAULTS
from oauth_server.flows.clients import rotate_secret
from oauth_server.models import AccessToken, AuditEvent, Client, PushedAuthorizationRequest
from tests.factories import ScopeFactory
from tests.helpers import REVOKE_URL, TOKEN_URL, assert_client_auth_refused, basic_auth, pkce_pair

ISSUER = "http://testserver/oauth"
TOKEN_ENDPOINT = "http://testserver/oauth/token/"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KEY_A = secret_encryption.generate_key()
KEY_B = secret_encryption.generate_key()


def server_settings(**values):
    return override_settings(OAUTH_SERVER={**DEFAULTS, **values})


def make_client(secret: str | None = None, **fields) -> tuple[Client, str]:
    ScopeFactory(name="reports:read")
    return Client.objects.create_client(
        name="HMAC service",
        client_type=Client.CLIENT_CONFIDENTIAL,
        grant_types=["client_credentials"],
        scopes=["reports:read"],
        client_secret=secret,
        token_endpoint_auth_method="client_secret_jwt",
        **fields,
    )


def hmac_key(secret: str | bytes) -> jwk.JWK:
    raw = secret.encode() if isinstance(secret, str) else secret
    return jwk.JWK(kty="oct", k=jws.base64url_encode(raw))


def assertion(client_id: str, secret: str | bytes, alg: str = "HS256", **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER,
        "exp": now + 60,
        "iat": now,
        "jti": uuid.uuid4().hex,
        **overrides,
    }
    token = jwt.JWT(header={"alg": alg}, claims={k: v for k, v in claims.items() if v is not None})
    token.make_signed_token(hmac_key(secret))
    return token.serialize()


def cc(signed: str, **extra) -> dict:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
        **extra,
    }


def refused(response, reason: str, method: str = "client_secret_jwt") -> None:
    assert_client_auth_refused(response, reason, method)


# --- success at every endpoint --------------------------------------------------------------------------
@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_each_hmac_algorithm_authenticates(client, db, alg):
    app, secret = make_client()
    response = client.post(TOKEN_URL, cc(assertion(app.client_id, secret, alg), scope="reports:read"))
    assert response.status_code == 200, response.content
    assert AccessToken.objects.get().application == app
    assert response.json()["scope"] == "reports:read"


def test_the_token_endpoint_url_is_an_accepted_audience_and_client_id_may_be_sent(client, db):
    app, secret = make_client()
    signed = assertion(app.client_id, secret, aud=[TOKEN_ENDPOINT])
    response = client.post(TOKEN_URL, cc(signed, client_id=app.client_id))
    assert response.status_code == 200, response.content


def test_works_at_introspection_revocation_and_par(client, db):
    app, secret = make_client(resource_identifiers=["https://api.example.com"])
    token = client.post(TOKEN_URL, cc(assertion(app.client_id, secret))).json()["access_token"]
    introspected = client.post(
        "/oauth/introspect/",
        {
            "token": token,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(app.client_id, secret),
        },
    )
    assert introspected.status_code == 200, introspected.content
    assert introspected.json()["active"] is True
    revoked = client.post(
        REVOKE_URL,
        {
            "token": token,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(app.client_id, secret, aud="http://testserver/oauth/revoke/"),
        },
    )
    assert revoked.status_code == 200, revoked.content
    assert not AccessToken.objects.exists()

    web, web_secret = make_client(redirect_uris=["https://app.example.com/cb"])
    web.grant_types = ["authorization_code"]
    web.save()
    _verifier, challenge = pkce_pair()
    pushed = client.post(
        "/oauth/par/",
        {
            "response_type": "code",
            "client_id": web.client_id,
            "redirect_uri": "https://app.example.com/cb",
            "scope": "reports:read",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(web.client_id, web_secret, aud="http://testserver/oauth/par/"),
        },
    )
    assert pushed.status_code == 201, pushed.content
    assert PushedAuthorizationRequest.objects.count() == 1


def test_discovery_advertises_the_method_and_the_hmac_algorithms(client, db):
    metadata = client.get("/oauth/.well-known/openid-configuration").json()
    for endpoint in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        assert "client_secret_jwt" in metadata[f"{endpoint}_auth_methods_supported"]
        algs = metadata[f"{endpoint}_auth_signing_alg_values_supported"]
        assert {"HS256", "HS384", "HS512"} <= set(algs) and "none" not in algs
        assert len(algs) == len(set(algs))
    with server_settings(CLIENT_SECRET_ASSERTION_ALGORITHMS=["HS512"]):
        algs = client.get("/oauth/.well-known/openid-configuration").json()[
            "token_endpoint_auth_signing_alg_values_supported"
        ]
        assert "HS512" in algs and "HS256" not in algs


def test_it_is_a_shared_secret_method_in_the_registry():
    method = registry.get("client_secret_jwt")
    assert method.uses_secret and method.secret_kept_encrypted and method.confidential
    assert not method.uses_keys
    assert not registry.get("client_secret_basic").secret_kept_encrypted


# --- refusals -------------------------------------------------------------------------------------------
def test_wrong_secret_is_refused(client, db):
    app, _secret = make_client()
    refused(client.post(TOKEN_URL, cc(assertion(app.client_id, "w" * 64))), "invalid_signature")


def test_another_clients_secret_is_refused(client, db):
    victim, _ = make_client()
    _attacker, attacker_secret = make_client()
    refused(client.post(TOKEN_URL, cc(assertion(victim.client_id, attacker_secret))), "invalid_signature")


def test_replayed_assertion_is_refused(client, db):
    app, secret = make_client()
    signed = assertion(app.client_id, secret)
    assert client.post(TOKEN_URL, cc(signed)).status_code == 200
    AccessToken.objects.all().delete()
    refused(client.post(TOKEN_URL, cc(signed)), "replayed_jti")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "https://other-server.example/oauth"}, "wrong_audience"),
        ({"aud": "https://other-server.example/oauth/token/"}, "wrong_audience"),
        ({"aud": None}, "wrong_audience"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"exp": int(time.time()) + 3600}, "lifetime_too_long"),
        ({"exp": None}, "missing_exp"),
        ({"jti": None}, "missing_jti"),
        ({"nbf": int(time.time()) + 600}, "bad_nbf"),
        ({"iss": "someone-else"}, "wrong_issuer_or_subject"),
    ],
)
def test_bad_claims_are_refused(client, db, overrides, reason):
    app, secret = make_client()
    refused(client.post(TOKEN_URL, cc(assertion(app.client_id, secret, **overrides))), reason)


def test_alg_none_is_refused(client, db):
    """An unsigned assertion is not an HMAC: private_key_jwt's form, a method this client is not
    registered for; and that method refuses ``none`` anyway."""
    app, _secret = make_client()
    now = int(time.time())
    claims = {"iss": app.client_id, "sub": app.client_id, "aud": ISSUER, "exp": now + 60, "jti": "n1"}
    header = jws.base64url_encode(json.dumps({"alg": "none"}))
    unsigned = f"{header}.{jws.base64url_encode(json.dumps(claims))}."
    refused(client.post(TOKEN_URL, cc(unsigned)), "auth_method_not_allowed", method="private_key_jwt")


def test_an_hmac_algorithm_the_site_turned_off_is_refused(client, db):
    app, secret = make_client()
    with server_settings(CLIENT_SECRET_ASSERTION_ALGORITHMS=["HS512"]):
        refused(
            client.post(TOKEN_URL, cc(assertion(app.client_id, secret, "HS256"))), "algorithm_not_allowed"
        )
        ok = client.post(TOKEN_URL, cc(assertion(app.client_id, secret, "HS512")))
        assert ok.status_code == 200, ok.content


def test_rs256_signed_assertion_is_refused_for_a_secret_client(client, db):
    """Algorithm confusion the other way: an asymmetric signature for a client_secret_jwt client,
    even by a key the attacker registered as a jwk in the header."""
    app, _secret = make_client()
    key = jwk.JWK.generate(kty="RSA", size=2048)
    now = int(time.time())
    claims = {"iss": app.client_id, "sub": app.client_id, "aud": ISSUER, "exp": now + 60, "jti": "r1"}
    token = jwt.JWT(header={"alg": "RS256", "jwk": json.loads(key.export_public())}, claims=claims)
    token.make_signed_token(key)
    refused(
        client.post(TOKEN_URL, cc(token.serialize())), "auth_method_not_allowed", method="private_key_jwt"
    )


def test_hs256_keyed_with_a_key_clients_public_key_is_refused(client, db):
    """The classic confusion: HMAC keyed with the (public) RSA key of a private_key_jwt client."""
    from tests.factories import MachineClientFactory

    key = jwk.JWK.generate(kty="RSA", size=2048)
    app = MachineClientFactory()
    app.token_endpoint_auth_method = "private_key_jwt"
    app.client_secret = ""
    app.jwks = {"keys": [json.loads(key.export_public())]}
    app.full_clean()
    app.save()
    assert app.encrypted_client_secret == ""
    for public in (key.export_to_pem(), key.export_public().encode()):
        forged = assertion(app.client_id, public)
        refused(client.post(TOKEN_URL, cc(forged)), "auth_method_not_allowed")


def test_the_secret_itself_is_refused_by_basic_and_post(client, db):
    """Strict: a client_secret_jwt client proves its secret with an assertion only."""
    app, secret = make_client()
    basic = client.post(
        TOKEN_URL, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic_auth(app.client_id, secret)
    )
    assert basic.status_code == 401
    assert AuditEvent.objects.latest("id").details["reason"] == "auth_method_not_allowed"
    post = client.post(
        TOKEN_URL, {"grant_type": "client_credentials", "client_id": app.client_id, "client_secret": secret}
    )
    assert post.status_code == 401
    assert not AccessToken.objects.exists()


def test_assertion_and_basic_at_once_is_invalid_request(client, db):
    app, secret = make_client()
    response = client.post(
        TOKEN_URL, cc(assertion(app.client_id, secret)), HTTP_AUTHORIZATION=basic_auth(app.client_id, secret)
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_a_secret_too_short_for_the_algorithm_is_refused(client, db):
    """RFC 7518 3.2: the key is at least the hash's size; a 32-character secret keys HS256 only."""
    app, secret = make_client(secret="s" * 32)
    refused(client.post(TOKEN_URL, cc(_hs512(app, secret))), "secret_too_short_for_algorithm")
    assert client.post(TOKEN_URL, cc(assertion(app.client_id, secret, "HS256"))).status_code == 200


def _hs512(app: Client, secret: str) -> str:
    """An HS512 assertion with a short key (jwcrypto refuses to sign one, so sign by hand)."""
    import hashlib
    import hmac

    now = int(time.time())
    header = jws.base64url_encode(json.dumps({"alg": "HS512"}))
    claims = {"iss": app.client_id, "sub": app.client_id, "aud": ISSUER, "exp": now + 60, "jti": "short"}
    payload = jws.base64url_encode(json.dumps(claims))
    mac = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha512).digest()
    return f"{header}.{payload}.{jws.base64url_encode(mac)}"


# --- the secret: rotation, encryption at rest, key rotation ---------------------------------------------
def test_rotation_replaces_the_encrypted_secret(client, db):
    app, old = make_client()
    before = app.encrypted_client_secret
    new = rotate_secret(app)
    app.refresh_from_db()
    assert app.encrypted_client_secret and app.encrypted_client_secret != before
    assert secret_encryption.decrypt(app.encrypted_client_secret) == new
    refused(client.post(TOKEN_URL, cc(assertion(app.client_id, old))), "invalid_signature")
    assert client.post(TOKEN_URL, cc(assertion(app.client_id, new))).status_code == 200


def _stored(app: Client) -> dict[str, str]:
    """The client's row as the database holds it (no model code in between)."""
    table = connection.ops.quote_name(Client._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE id = %s", [app.pk])  # noqa: S608
        columns = [col[0] for col in cursor.description]
        return {c: str(v) for c, v in zip(columns, cursor.fetchone(), strict=True)}


def test_the_database_holds_no_plaintext_secret(db):
    app, secret = make_client()
    row = _stored(app)
    assert row["encrypted_client_secret"].startswith("gAAAA")  # a Fernet token
    assert row["client_secret"].startswith("sha256$")
    assert not [column for column, value in row.items() if secret in value]
    assert secret_encryption.decrypt(row["encrypted_client_secret"]) == secret


def test_other_methods_keep_only_the_hash_and_changing_away_clears_it(db):
    ScopeFactory(name="reports:read")
    basic, _ = Client.objects.create_client(
        name="basic", client_type=Client.CLIENT_CONFIDENTIAL, grant_types=["client_credentials"]
    )
    assert basic.client_secret and basic.encrypted_client_secret == ""
    app, _secret = make_client()
    app.token_endpoint_auth_method = "client_secret_basic"
    app.full_clean()
    app.save(update_fields=["token_endpoint_auth_method"])
    assert _stored(app)["encrypted_client_secret"] == ""


def test_switching_to_client_secret_jwt_needs_a_new_secret(db):
    ScopeFactory(name="reports:read")
    app, _ = Client.objects.create_client(
        name="basic", client_type=Client.CLIENT_CONFIDENTIAL, grant_types=["client_credentials"]
    )
    app.token_endpoint_auth_method = "client_secret_jwt"
    assert app.needs_new_secret
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as info:
        app.full_clean()
    assert "client_secret" in info.value.message_dict
    new = app.set_secret()
    app.full_clean()
    app.save()
    assert secret_encryption.decrypt(app.encrypted_client_secret) == new


def test_a_secret_assigned_in_clear_is_hashed_and_encrypted_on_save(db):
    app, _ = make_client()
    app.client_secret = "c" * 64  # DOT's way of setting a secret
    app.save()
    assert app.client_secret.startswith("sha256$") and app.check_secret("c" * 64)
    assert secret_encryption.decrypt(app.encrypted_client_secret) == "c" * 64


def test_a_client_without_an_encrypted_secret_is_refused(client, db):
    app, secret = make_client()
    Client.objects.filter(pk=app.pk).update(encrypted_client_secret="")
    refused(client.post(TOKEN_URL, cc(assertion(app.client_id, secret))), "secret_unavailable")


def test_key_rotation_with_a_key_list_and_the_command(client, db):
    with server_settings(CLIENT_SECRET_ENCRYPTION_KEYS=[KEY_A]):
        app, secret = make_client()
        under_a = app.encrypted_client_secret
    # Default keys (derived from SECRET_KEY) do not open it.
    refused(client.post(TOKEN_URL, cc(assertion(app.client_id, secret))), "secret_undecryptable")
    with server_settings(CLIENT_SECRET_ENCRYPTION_KEYS=[KEY_B, KEY_A]):
        assert client.post(TOKEN_URL, cc(assertion(app.client_id, secret))).status_code == 200
        call_command("rotate_secret_encryption_key", "--json", stdout=(out := _Out()))
        assert json.loads(out.text)["reencrypted"] == 1
    app.refresh_from_db()
    assert app.encrypted_client_secret != under_a
    with server_settings(CLIENT_SECRET_ENCRYPTION_KEYS=[KEY_B]):  # the old key removed
        assert client.post(TOKEN_URL, cc(assertion(app.client_id, secret))).status_code == 200
    with (
        server_settings(CLIENT_SECRET_ENCRYPTION_KEYS=[KEY_A]),
        pytest.raises(CommandError, match=app.client_id),
    ):
        call_command("rotate_secret_encryption_key", stdout=_Out())


def test_moving_from_the_default_to_a_dedicated_key(client, db):
    from cryptography.fernet import Fernet

    app, secret = make_client()  # under the key derived from SECRET_KEY
    with server_settings(CLIENT_SECRET_ENCRYPTION_KEYS=[KEY_A]):
        assert client.post(TOKEN_URL, cc(assertion(app.client_id, secret))).status_code == 200
        call_command("rotate_secret_encryption_key", stdout=_Out())
    app.refresh_from_db()
    assert Fernet(KEY_A.encode()).decrypt(app.encrypted_client_secret.encode()).decode() == secret


def test_malformed_keys_are_refused_not_skipped(client, db):
    app, secret = make_client()
    with server_settings(CLIENT_SECRET_ENCRYPTION_KEYS=["not-a-key", KEY_A]):
        refused(client.post(TOKEN_URL, cc(assertion(app.client_id, secret))), "secret_undecryptable")
        with pytest.raises(secret_encryption.SecretDecryptionError):
            secret_encryption.encrypt("x" * 64)


def test_the_default_key_follows_secret_key_fallbacks(client, db, settings):
    app, secret = make_client()
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 50
    assert client.post(TOKEN_URL, cc(assertion(app.client_id, secret))).status_code == 200
    call_command("rotate_secret_encryption_key", stdout=_Out())
    settings.SECRET_KEY_FALLBACKS = []
    assert client.post(TOKEN_URL, cc(assertion(app.client_id, secret))).status_code == 200


def test_the_command_generates_keys_and_dry_runs(db):
    out = _Out()
    call_command("rotate_secret_encryption_key", "--generate", stdout=out)
    assert secret_encryption.key_problem(out.text.strip()) is None
    app, _ = make_client()
    before = app.encrypted_client_secret
    out = _Out()
    call_command("rotate_secret_encryption_key", "--dry-run", stdout=out)
    assert "1 client secret(s) would be re-encrypted" in out.text
    app.refresh_from_db()
    assert app.encrypted_client_secret == before


class _Out:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


# --- system checks --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "keys", [["not base64!"], [secret_encryption.generate_key()[:20]], [""], "a-string", [None]]
)
def test_malformed_keys_are_errors(keys):
    with server_settings(CLIENT_SECRET_ENCRYPTION_KEYS=keys):
        ids = [m.id for m in run_checks()]
    assert "oauth_server.E007" in ids


def test_non_hmac_algorithms_are_an_error():
    with server_settings(CLIENT_SECRET_ASSERTION_ALGORITHMS=["HS256", "RS256"]):
        assert "oauth_server.E007" in [m.id for m in run_checks()]
    with server_settings(CLIENT_SECRET_ASSERTION_ALGORITHMS=[]):
        assert "oauth_server.E007" in [m.id for m in run_checks()]


def test_deploy_check_recommends_a_dedicated_key():
    assert "oauth_server.W013" in [m.id for m in run_checks(include_deployment_checks=True)]
    assert "oauth_server.W013" not in [m.id for m in run_checks()]
    with server_settings(CLIENT_SECRET_ENCRYPTION_KEYS=[KEY_A]):
        ids = [m.id for m in run_checks(include_deployment_checks=True)]
    assert "oauth_server.W013" not in ids and "oauth_server.E007" not in ids


# --- every way to create a client -----------------------------------------------------------------------
def test_create_oauth_client_command(client, db):
    ScopeFactory(name="reports:read")
    out = _Out()
    call_command(
        "create_oauth_client",
        "--name=hmac",
        "--type=confidential",
        "--grant-type=client_credentials",
        "--scope=reports:read",
        "--auth-method=client_secret_jwt",
        "--json",
        stdout=out,
    )
    data = json.loads(out.text)
    assert data["token_endpoint_auth_method"] == "client_secret_jwt" and data["client_secret"]
    response = client.post(TOKEN_URL, cc(assertion(data["client_id"], data["client_secret"], "HS512")))
    assert response.status_code == 200, response.content


def test_dynamic_registration_and_a_switch_by_update(client, db, django_capture_on_commit_callbacks):
    ScopeFactory(name="files:read")
    metadata = {
        "client_name": "Agent",
        "redirect_uris": ["https://agent.example.com/cb"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    with server_settings(REGISTRATION_POLICY="open"), django_capture_on_commit_callbacks(execute=True):
        registered = client.post("/oauth/register/", metadata, content_type="application/json").json()
        update = {
            **metadata,
            "client_id": registered["client_id"],
            "token_endpoint_auth_method": "client_secret_jwt",
        }
        response = client.generic(
            "PUT",
            registered["registration_client_uri"],
            json.dumps(update),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {registered['registration_access_token']}",
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_endpoint_auth_method"] == "client_secret_jwt"
    assert body["client_secret"] and body["client_secret"] != registered["client_secret"]
    stored = Client.objects.get(client_id=registered["client_id"])
    assert secret_encryption.decrypt(stored.encrypted_client_secret) == body["client_secret"]
    assert AuditEvent.objects.filter(event=AuditEvent.Event.CLIENT_SECRET_ROTATED).exists()


def test_dynamic_registration_of_a_client_secret_jwt_client(client, db):
    ScopeFactory(name="reports:read")
    metadata = {
        "client_name": "Agent",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_jwt",
        "scope": "reports:read",
    }
    with server_settings(REGISTRATION_POLICY="open", SELF_REGISTERED_GRANT_TYPES=["client_credentials"]):
        response = client.post("/oauth/register/", metadata, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["token_endpoint_auth_method"] == "client_secret_jwt"
    signed = assertion(body["client_id"], body["client_secret"])
    token = client.post(TOKEN_URL, cc(signed, scope="reports:read"))
    assert token.status_code == 200, token.content


def test_management_api_creates_one(client, db):
    from tests.factories import AccessTokenFactory, MachineClientFactory
    from tests.helpers import CLIENTS, bearer, service_account

    ScopeFactory(name="reports:read")
    machine = MachineClientFactory(scopes=["oauth:admin"], user=service_account())
    token = AccessTokenFactory(user=None, application=machine, scope="oauth:admin").raw_token
    response = client.post(
        CLIENTS,
        {
            "name": "HMAC",
            "client_type": "confidential",
            "grant_types": ["client_credentials"],
            "scopes": ["reports:read"],
            "token_endpoint_auth_method": "client_secret_jwt",
        },
        content_type="application/json",
        **bearer(token),
    )
    assert response.status_code == 201, response.content
    created = Client.objects.get(client_id=response.json()["client_id"])
    assert secret_encryption.decrypt(created.encrypted_client_secret) == response.json()["client_secret"]


def test_management_api_switch_issues_a_secret_only_with_the_permission(client, db):
    from tests.factories import AccessTokenFactory, MachineClientFactory
    from tests.helpers import CLIENTS, bearer, service_account

    ScopeFactory(name="reports:read")
    basic, _ = Client.objects.create_client(
        name="basic", client_type=Client.CLIENT_CONFIDENTIAL, grant_types=["client_credentials"]
    )
    view = ["oauth_server.view_client", "oauth_server.change_client"]
    for permissions, status in ((view, 403), ([*view, "oauth_server.issue_client_secret"], 200)):
        machine = MachineClientFactory(scopes=["oauth:admin"], user=service_account(*permissions))
        token = AccessTokenFactory(user=None, application=machine, scope="oauth:admin").raw_token
        response = client.patch(
            f"{CLIENTS}{basic.client_id}/",
            {"token_endpoint_auth_method": "client_secret_jwt"},
            content_type="application/json",
            **bearer(token),
        )
        assert response.status_code == status, response.content
    new = response.json()["client_secret"]
    basic.refresh_from_db()
    assert secret_encryption.decrypt(basic.encrypted_client_secret) == new
    assert "encrypted_client_secret" not in response.json()


# --- a real client library: Authlib's ClientSecretJWT, its requests sent through the test client --------
class DjangoClientAdapter:
    """A requests transport adapter that hands each request to Django's test client (no server
    thread): Authlib builds and signs exactly what it would send over the network."""

    def __init__(self, browser) -> None:
        self.browser = browser

    def send(self, request, **kwargs):
        import requests
        from requests.structures import CaseInsensitiveDict

        headers = {
            "HTTP_" + name.upper().replace("-", "_"): value
            for name, value in request.headers.items()
            if name.lower() not in ("content-type", "content-length")
        }
        body = request.body or b""
        answer = self.browser.generic(
            request.method,
            request.path_url,
            body.encode() if isinstance(body, str) else body,
            content_type=request.headers.get("Content-Type", ""),
            **headers,
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response._content = answer.content
        response.headers = CaseInsensitiveDict(answer.headers)
        response.url, response.request, response.encoding = request.url, request, "utf-8"
        return response

    def close(self) -> None:
        pass


def test_authlib_client(client, db):
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.requests_client import OAuth2Session
    from authlib.oauth2.rfc7523 import ClientSecretJWT

    app, secret = make_client()

    def fetch(**auth) -> dict:
        session = OAuth2Session(
            app.client_id, secret, token_endpoint_auth_method="client_secret_jwt", scope="reports:read"
        )
        session.register_client_auth_method(ClientSecretJWT(TOKEN_ENDPOINT, **auth))
        session.mount("http://testserver/", DjangoClientAdapter(client))
        return session.fetch_token(TOKEN_ENDPOINT, grant_type="client_credentials")

    # Authlib's own default: an assertion valid for an hour, over CLIENT_ASSERTION_MAX_LIFETIME (300 s).
    with pytest.raises(OAuthError) as info:
        fetch()
    assert info.value.error == "invalid_client"
    assert AuditEvent.objects.latest("id").details["reason"] == "lifetime_too_long"
    # A short exp (a fresh auth object per request: Authlib keeps the jti it adds in ``claims``).
    for alg in ("HS256", "HS384", "HS512"):
        token = fetch(alg=alg, claims={"exp": int(time.time()) + 60})
        assert token["token_type"] == "Bearer" and token["scope"] == "reports:read"
    # Or the site accepts Authlib's hour.
    with server_settings(CLIENT_ASSERTION_MAX_LIFETIME=3600):
        assert fetch()["access_token"]
    assert AccessToken.objects.filter(application=app).count() == 4
    # The same library's assertion with the wrong secret is refused.
    secret = "x" * 64
    with pytest.raises(OAuthError):
        fetch(claims={"exp": int(time.time()) + 60})


# --- the admin ------------------------------------------------------------------------------------------
def test_admin_adds_a_client_secret_jwt_client_and_shows_the_secret_once(admin_client, client, db):
    from tests.test_admin import client_form, url

    response = admin_client.post(
        url("client", "add"), client_form(token_endpoint_auth_method="client_secret_jwt")
    )
    assert response.status_code == 200, response.content
    [(created, secret)] = response.context["secrets"]
    created.refresh_from_db()
    assert secret_encryption.decrypt(created.encrypted_client_secret) == secret
    page = admin_client.get(url("client", "change", created.pk)).content.decode()
    assert secret not in page and created.encrypted_client_secret not in page
    assert "encrypted for client_secret_jwt" in page
    token = client.post(TOKEN_URL, cc(assertion(created.client_id, secret), scope="reports:read"))
    assert token.status_code == 200, token.content


def test_admin_switch_to_client_secret_jwt_needs_issue_client_secret(db):
    from tests.test_admin import CLIENT_PERMS, _staffer, client_form, url

    ScopeFactory(name="reports:read")
    basic, _ = Client.objects.create_client(
        name="Nightly Export", client_type=Client.CLIENT_CONFIDENTIAL, grant_types=["client_credentials"]
    )
    old_hash = basic.client_secret
    form = client_form(token_endpoint_auth_method="client_secret_jwt")
    browser = _staffer(*CLIENT_PERMS)
    assert browser.post(url("client", "change", basic.pk), form).status_code == 403
    basic.refresh_from_db()
    assert basic.token_endpoint_auth_method == "client_secret_basic" and basic.client_secret == old_hash
    browser = _staffer(*CLIENT_PERMS, "issue_client_secret")
    response = browser.post(url("client", "change", basic.pk), form)
    assert response.status_code == 200, response.content
    [(_shown, secret)] = response.context["secrets"]
    basic.refresh_from_db()
    assert basic.token_endpoint_auth_method == "client_secret_jwt"
    assert secret_encryption.decrypt(basic.encrypted_client_secret) == secret
    # And back: the encrypted copy goes, the hash stays (basic needs no new secret).
    response = browser.post(
        url("client", "change", basic.pk), client_form(token_endpoint_auth_method="client_secret_basic")
    )
    assert response.status_code == 302, response.content
    basic.refresh_from_db()
    assert basic.encrypted_client_secret == "" and basic.check_secret(secret)


# --- regressions ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["client_secret_jwt", "private_key_jwt"])
@pytest.mark.parametrize(
    ("claim", "reason"), [("exp", "missing_exp"), ("nbf", "bad_nbf"), ("iat", "bad_iat")]
)
def test_non_finite_times_are_refused(client, db, method, claim, reason):
    """JSON's NaN (Python's json accepts it) passed every comparison: an exp of NaN never expired,
    and the replay cache's timeout then failed on it (a 500)."""
    if method == "client_secret_jwt":
        app, secret = make_client()
        key = hmac_key(secret)
        alg = "HS256"
    else:
        from tests.factories import MachineClientFactory

        key = jwk.JWK.generate(kty="EC", crv="P-256")
        app = MachineClientFactory()
        app.token_endpoint_auth_method, app.client_secret = "private_key_jwt", ""
        app.jwks = {"keys": [json.loads(key.export_public())]}
        app.save()
        alg = "ES256"
    now = int(time.time())
    claims = {"iss": app.client_id, "sub": app.client_id, "aud": ISSUER, "exp": now + 60, "jti": "nan"}
    for value in (float("nan"), float("inf"), float("-inf")):
        if claim == "exp" and value == float("-inf"):
            continue  # plainly expired
        payload = json.dumps({**claims, claim: value, "jti": f"{claim}{value}"})  # NaN, Infinity
        token = jws.JWS(payload.encode())
        token.add_signature(key, alg=alg, protected={"alg": alg})
        signed = token.serialize(compact=True)
        response = client.post(TOKEN_URL, cc(signed))
        refused(response, reason, method=method)
