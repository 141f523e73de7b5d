"""Management commands (create_oauth_client, create_oauth_scope, rotate_signing_keys,
list_signing_keys) and the database-tagged "no signing key" check (oauth_server.W002)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection
from django.test import override_settings
from django.utils import timezone
from freezegun import freeze_time

from oauth_server import hashers, keys
from oauth_server.models import Client, Scope, SigningKey
from tests.factories import ClientFactory, ScopeFactory, UserFactory
from tests.helpers import basic_auth, exchange_code, get_code, grant_permissions

JWKS_URL = "/oauth/.well-known/jwks.json"
TOKEN_URL = "/oauth/token/"
ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    """call_command with captured output; returns stdout (stderr must stay empty on success)."""
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    assert err.getvalue() == ""
    return out.getvalue()


def run_json(*args: str) -> dict:
    # json.loads of the whole stdout: it fails if anything but one JSON document was printed.
    return json.loads(run(*args, "--json"))


def snapshot() -> dict[str, list]:
    """Everything a failed command could have half-written."""
    return {
        "clients": list(Client.objects.values_list("client_id", "name", "client_secret")),
        "client_scopes": list(Client.allowed_scopes.through.objects.values_list("client_id", "scope_id")),
        "scopes": list(Scope.objects.values_list("name", "description", "is_default")),
        "keys": list(SigningKey.objects.values_list("kid", "state", "retire_after")),
    }


def ids(messages) -> list[str]:
    return [m.id for m in messages if m.id and m.id.startswith("oauth_server.")]


def jwks_kids(client) -> list[str]:
    response = client.get(JWKS_URL)
    assert response.status_code == 200
    return [key["kid"] for key in response.json()["keys"]]


# --- create_oauth_client: happy paths ---------------------------------------------------------------
def test_machine_client_json_and_the_printed_secret_gets_a_token(client):
    ScopeFactory(name="reports:read")
    data = run_json(
        "create_oauth_client",
        "--name",
        "Reports",
        "--type",
        "confidential",
        "--grant-type",
        "client_credentials",
        "--scope",
        "reports:read",
        "--audience",
        "https://api.example.com",
    )
    assert data["name"] == "Reports"
    assert data["client_type"] == "confidential"
    assert data["grant_types"] == ["client_credentials"]
    assert data["redirect_uris"] == []
    assert data["scopes"] == ["reports:read"]
    assert data["audiences"] == ["https://api.example.com"]
    secret = data["client_secret"]
    assert len(secret) >= 32

    stored = Client.objects.get(client_id=data["client_id"])
    assert stored.client_secret != secret
    assert hashers.is_hashed(stored.client_secret)
    assert stored.check_secret(secret)

    response = client.post(
        TOKEN_URL,
        {"grant_type": "client_credentials", "scope": "reports:read"},
        HTTP_AUTHORIZATION=basic_auth(data["client_id"], secret),
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "reports:read"
    wrong = client.post(
        TOKEN_URL,
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(data["client_id"], secret + "x"),
    )
    assert wrong.status_code == 401


def test_human_output_shows_the_secret_once_with_a_warning():
    ScopeFactory(name="files:read")
    out = run(
        "create_oauth_client",
        "--name",
        "My App",
        "--type",
        "confidential",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--redirect-uri",
        "https://app.example.com/callback",
        "--scope",
        "files:read",
    )
    stored = Client.objects.get()
    assert stored.client_id in out
    secret_lines = [line for line in out.splitlines() if line.strip().startswith("client_secret")]
    assert len(secret_lines) == 1
    secret = secret_lines[0].split()[-1]
    assert stored.check_secret(secret)
    assert out.count(secret) == 1
    assert "cannot be shown again" in out
    assert stored.grant_types == ["authorization_code", "refresh_token"]
    assert stored.redirect_uri_list == ["https://app.example.com/callback"]


def test_public_client_has_no_secret_and_completes_the_code_flow(client, user):
    ScopeFactory(name="files:read")
    data = run_json(
        "create_oauth_client",
        "--name",
        "My SPA",
        "--type",
        "public",
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        "https://spa.example.com/callback",
        "--redirect-uri",
        "http://127.0.0.1:8400/callback",
        "--post-logout-redirect-uri",
        "https://spa.example.com/bye",
        "--scope",
        "files:read",
        "--scope",
        "openid",
        "--skip-consent",
        "--access-token-format",
        "opaque",
    )
    assert data["client_secret"] is None
    assert data["client_type"] == "public"
    assert data["redirect_uris"] == ["https://spa.example.com/callback", "http://127.0.0.1:8400/callback"]
    assert data["post_logout_redirect_uris"] == ["https://spa.example.com/bye"]
    assert data["scopes"] == ["files:read", "openid"]
    assert data["skip_consent"] is True
    assert data["access_token_format"] == "opaque"
    stored = Client.objects.get(client_id=data["client_id"])
    assert stored.client_secret == ""
    assert stored.skip_consent and stored.access_token_format == "opaque"

    client.force_login(user)
    code, verifier = get_code(client, stored, scope="files:read")
    response = exchange_code(client, stored, code, verifier)
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "files:read"


def test_operator_supplied_id_and_secret_are_used():
    secret = "s" * 40
    data = run_json(
        "create_oauth_client",
        "--name",
        "Chosen",
        "--type",
        "confidential",
        "--grant-type",
        "client_credentials",
        "--client-id",
        "reports-service",
        "--client-secret",
        secret,
    )
    assert data["client_id"] == "reports-service"
    assert data["client_secret"] == secret
    stored = Client.objects.get(client_id="reports-service")
    assert stored.check_secret(secret) and stored.client_secret != secret


def test_repeated_values_are_stored_once():
    ScopeFactory(name="files:read")
    data = run_json(
        "create_oauth_client",
        "--name",
        "Dup",
        "--type",
        "confidential",
        "--grant-type",
        "client_credentials",
        "--grant-type",
        "client_credentials",
        "--scope",
        "files:read",
        "--scope",
        "files:read",
    )
    assert data["grant_types"] == ["client_credentials"]
    assert data["scopes"] == ["files:read"]


# --- create_oauth_client: every validation error saves nothing -----------------------------------------
WEB = ["--name", "Web", "--type", "confidential", "--grant-type", "authorization_code"]
CALLBACK = ["--redirect-uri", "https://app.example.com/callback"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param([*WEB, *CALLBACK, "--scope", "nope"], "Unknown scopes: nope", id="unknown-scope"),
        pytest.param(
            [*WEB, *CALLBACK, "--scope", "openid,profile"],
            "--scope: 'openid,profile' is not one scope name. Repeat --scope for each scope: "
            "--scope openid --scope profile",
            id="comma-separated-scopes",
        ),
        pytest.param(
            [*WEB, *CALLBACK, "--scope", "openid profile, email"],
            "Repeat --scope for each scope: --scope openid --scope profile --scope email",
            id="space-separated-scopes",
        ),
        pytest.param(
            ["--name", "X", "--type", "confidential", "--grant-type", "password"],
            "invalid choice: 'password'",
            id="bad-grant-type",
        ),
        pytest.param(
            ["--name", "X", "--type", "hybrid", "--grant-type", "client_credentials"],
            "invalid choice: 'hybrid'",
            id="bad-client-type",
        ),
        pytest.param(
            [*WEB, *CALLBACK, "--access-token-format", "xml"], "invalid choice: 'xml'", id="bad-format"
        ),
        pytest.param(["--type", "public", "--grant-type", "authorization_code"], "--name", id="no-name"),
        pytest.param(["--name", "X", "--type", "public"], "--grant-type", id="no-grant-type"),
        pytest.param(
            ["--name", "   ", "--type", "confidential", "--grant-type", "client_credentials"],
            "--name: must not be empty",
            id="blank-name",
        ),
        pytest.param(
            ["--name", "X", "--type", "confidential", "--grant-type", "refresh_token"],
            "refresh_token only makes sense together with authorization_code",
            id="refresh-without-code",
        ),
        pytest.param(
            ["--name", "X", "--type", "public", "--grant-type", "client_credentials"],
            "Only confidential clients may use client_credentials",
            id="public-client-credentials",
        ),
        pytest.param(
            ["--name", "X", "--type", "confidential", "--grant-type", "client_credentials"]
            + ["--client-secret", "too-short"],
            "--client-secret: A client secret must be at least 32 characters long",
            id="short-secret",
        ),
        pytest.param(
            ["--name", "X", "--type", "public", "--grant-type", "authorization_code", *CALLBACK]
            + ["--client-secret", "s" * 40],
            "Public clients have no secret",
            id="public-with-secret",
        ),
        pytest.param(
            [*WEB, "--redirect-uri", "https://*.example.com/callback"],
            "wildcards and fragments are not allowed",
            id="wildcard-redirect",
        ),
        pytest.param(
            [*WEB, "--redirect-uri", "https://app.example.com/callback#frag"],
            "wildcards and fragments are not allowed",
            id="fragment-redirect",
        ),
        pytest.param([*WEB, "--redirect-uri", "javascript:alert(1)"], "--redirect-uri", id="bad-scheme"),
        pytest.param(WEB, "redirect_uris cannot be empty", id="code-without-redirect"),
        pytest.param(
            [*WEB, *CALLBACK, "--client-id", "has space"], "--client-id: printable ASCII", id="bad-id"
        ),
        pytest.param(
            [*WEB, *CALLBACK, "--audience", "api.example.com"], "--audience: 'api.example.com'", id="audience"
        ),
        pytest.param(
            [*WEB, *CALLBACK, "--audience", "https://api.example.com/#x"], "RFC 8707", id="audience-fragment"
        ),
        pytest.param(
            [*WEB, *CALLBACK, "--audience", "https://*.example.com"],
            "--audience: 'https://*.example.com' is not an absolute URI",
            id="audience-wildcard",
        ),
        pytest.param(
            [*WEB, *CALLBACK, "--resource-identifier", "https:"],
            "--resource-identifier: 'https:' is not an absolute URI",
            id="resource-identifier-without-host",
        ),
        pytest.param(
            [*WEB, *CALLBACK, "--post-logout-redirect-uri", "javascript:alert(1)"],
            "--post-logout-redirect-uri",
            id="bad-post-logout",
        ),
    ],
)
def test_invalid_client_is_refused_and_nothing_is_saved(args, message):
    ScopeFactory(name="files:read")
    ClientFactory(client_id="taken")
    before = snapshot()
    with pytest.raises(CommandError) as excinfo:
        run("create_oauth_client", *args, "--scope", "files:read")
    assert message in str(excinfo.value)
    assert snapshot() == before


def test_a_scope_whose_name_has_a_comma_is_accepted():
    """RFC 6749 3.3 allows a comma in a scope name: the list hint only applies to unknown values."""
    ScopeFactory(name="legacy,scope")
    data = run_json("create_oauth_client", *WEB, *CALLBACK, "--scope", "legacy,scope")
    assert data["scopes"] == ["legacy,scope"]


def test_duplicate_client_id_is_refused_and_the_existing_client_is_untouched():
    existing = ClientFactory(client_id="reports-service", name="Original")
    before = snapshot()
    with pytest.raises(CommandError, match="--client-id: .*already exists"):
        run(
            "create_oauth_client",
            "--name",
            "Impostor",
            "--type",
            "confidential",
            "--grant-type",
            "client_credentials",
            "--client-id",
            "reports-service",
        )
    assert snapshot() == before
    existing.refresh_from_db()
    assert existing.name == "Original" and existing.check_secret(existing.raw_secret)


def test_several_problems_are_reported_together_on_their_options():
    with pytest.raises(CommandError) as excinfo:
        run(
            "create_oauth_client",
            "--name",
            "X",
            "--type",
            "public",
            "--grant-type",
            "client_credentials",
            "--grant-type",
            "refresh_token",
        )
    lines = str(excinfo.value).splitlines()
    assert all(line.startswith("--grant-type: ") for line in lines)
    assert len(lines) == 2
    assert Client.objects.count() == 0


# --- create_oauth_client --owner: the management API's service account ------------------------------------
def admin_client_args(*extra: str) -> list[str]:
    return [
        "create_oauth_client",
        "--name",
        "ops automation",
        "--type",
        "confidential",
        "--grant-type",
        "client_credentials",
        "--scope",
        "oauth:admin",
        *extra,
    ]


def test_an_admin_client_acts_with_its_owners_permissions_in_the_api(client):
    """docs/management-api.md, "Setting up a machine caller", end to end."""
    ScopeFactory(name="oauth:admin")
    owner = grant_permissions(UserFactory(username="svc-ops"), "oauth_server.view_client")
    data = run_json(*admin_client_args("--owner", "svc-ops"))
    assert data["owner"] == "svc-ops"
    assert Client.objects.get(client_id=data["client_id"]).user == owner
    response = client.post(
        TOKEN_URL,
        {"grant_type": "client_credentials", "scope": "oauth:admin"},
        HTTP_AUTHORIZATION=basic_auth(data["client_id"], data["client_secret"]),
    )
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {response.json()['access_token']}"}
    assert client.get("/oauth/api/clients/", **bearer).status_code == 200
    denied = client.post(
        "/oauth/api/scopes/", {"name": "a:b", "description": "A"}, "application/json", **bearer
    )
    assert denied.status_code == 403
    assert "oauth_server.add_scope" in denied.json()["error_description"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "--owner: a client allowed the admin scope 'oauth:admin' needs an owner"),
        (("--owner", "nobody"), "--owner: no user 'nobody'."),
        (("--owner", "retired"), "--owner: the user 'retired' is not active."),
    ],
)
def test_an_admin_client_needs_an_active_owner(extra, message):
    ScopeFactory(name="oauth:admin")
    UserFactory(username="retired", is_active=False)
    before = snapshot()
    with pytest.raises(CommandError, match=message):
        run(*admin_client_args(*extra))
    assert snapshot() == before


def test_any_client_may_have_an_owner():
    UserFactory(username="alice")
    out = run(
        "create_oauth_client",
        "--name",
        "A",
        "--type",
        "public",
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        "https://app.example.com/cb",
        "--owner",
        "alice",
    )
    assert "owner           alice" in out


# --- create_oauth_scope -------------------------------------------------------------------------------
def test_create_scope_json_and_human():
    data = run_json("create_oauth_scope", "files:read", "--description", "Read your files")
    assert data == {
        "name": "files:read",
        "description": "Read your files",
        "is_default": False,
        "created": True,
    }
    out = run("create_oauth_scope", "files:write", "--description", "Change your files", "--default")
    assert "Created scope 'files:write' (default)" in out
    assert list(Scope.objects.filter(name__startswith="files:").values_list("name", "is_default")) == [
        ("files:read", False),
        ("files:write", True),
    ]


def test_duplicate_scope_is_refused_and_unchanged():
    ScopeFactory(name="files:read", description="Read your files")
    before = snapshot()
    with pytest.raises(CommandError, match="already exists. Use --update"):
        run("create_oauth_scope", "files:read", "--description", "Something else", "--default")
    assert snapshot() == before


@pytest.mark.parametrize(
    "name", ["files read", 'say"hi', "back\\slash", "caf\u00e9", "", "x" * 101], ids=repr
)
def test_invalid_scope_name_is_refused(name):
    before = snapshot()
    with pytest.raises(CommandError) as excinfo:
        run("create_oauth_scope", name, "--description", "Whatever")
    assert str(excinfo.value).startswith("NAME: ")
    assert snapshot() == before


def test_scope_name_error_cites_rfc_6749():
    with pytest.raises(CommandError, match=r"RFC 6749 3\.3"):
        run("create_oauth_scope", "files read", "--description", "Whatever")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--description is required"),
        (["--description", ""], "--description: This field cannot be blank"),
        (["--description", "d" * 256], "--description: Ensure this value has at most 255"),
    ],
)
def test_scope_description_is_required_and_bounded(args, message):
    before = snapshot()
    with pytest.raises(CommandError) as excinfo:
        run("create_oauth_scope", "files:read", *args)
    assert message in str(excinfo.value)
    assert snapshot() == before


def test_update_changes_only_what_is_given_and_creates_when_missing():
    ScopeFactory(name="files:read", description="Old", is_default=True)
    data = run_json("create_oauth_scope", "files:read", "--description", "New", "--update")
    assert data == {"name": "files:read", "description": "New", "is_default": True, "created": False}
    data = run_json("create_oauth_scope", "files:read", "--no-default", "--update")
    assert data["description"] == "New" and data["is_default"] is False
    assert Scope.objects.get(name="files:read").description == "New"
    data = run_json("create_oauth_scope", "files:write", "--description", "Write", "--update")
    assert data["created"] is True
    assert Scope.objects.filter(name="files:write").exists()


# --- rotate_signing_keys ------------------------------------------------------------------------------
def states() -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for kid, state in SigningKey.objects.order_by("created", "id").values_list("kid", "state"):
        result.setdefault(state, []).append(kid)
    return result


def test_first_rotation_creates_active_and_next(client):
    data = run_json("rotate_signing_keys")
    assert data["retired"] is None and data["purged"] is None
    assert data["active"]["algorithm"] == data["next"]["algorithm"] == "RS256"
    assert states() == {"active": [data["active"]["kid"]], "next": [data["next"]["kid"]]}
    assert jwks_kids(client) == [data["active"]["kid"], data["next"]["kid"]]


@freeze_time("2030-01-01 12:00:00")
def test_rotation_moves_every_key_one_step_and_jwks_publishes_all_three(client):
    first = run_json("rotate_signing_keys")
    out = run("rotate_signing_keys")
    retired, active = first["active"]["kid"], first["next"]["kid"]
    found = states()
    assert found["retired"] == [retired]
    assert found["active"] == [active]
    (new_next,) = found["next"]
    assert new_next not in (retired, active)

    # published until every token it may have signed has expired (1 h access/ID tokens + leeway)
    assert keys.retire_delay() >= 3600 + 300
    expected_until = timezone.now() + timedelta(seconds=keys.retire_delay())
    assert SigningKey.objects.get(kid=retired).retire_after == expected_until
    assert f"retired  {retired}" in out and expected_until.isoformat() in out
    assert f"active   {active}" in out and f"next     {new_next}" in out

    assert jwks_kids(client) == [active, new_next, retired]
    assert keys.active_key().kid == active


@override_settings(OAUTH_SERVER={"ACCESS_TOKEN_LIFETIME": 600, "ID_TOKEN_LIFETIME": 300})
@freeze_time("2030-01-01 12:00:00")
def test_retired_key_publication_follows_the_longest_client_lifetime():
    ClientFactory(access_token_lifetime=7200)
    run("rotate_signing_keys")
    data = run_json("rotate_signing_keys")
    assert keys.retire_delay() >= 7200 + 300
    until = timezone.now() + timedelta(seconds=keys.retire_delay())
    assert data["retired"]["published_until"] == until.isoformat()


def test_algorithm_applies_to_the_new_next_key():
    run("rotate_signing_keys")
    data = run_json("rotate_signing_keys", "--algorithm", "ES256")
    assert data["active"]["algorithm"] == "RS256"
    assert data["next"]["algorithm"] == "ES256"
    # Without --algorithm the change sticks: the next key keeps the algorithm now signing.
    data = run_json("rotate_signing_keys")
    assert data["active"]["algorithm"] == "ES256"
    assert data["next"]["algorithm"] == "ES256"


def test_first_rotation_with_an_algorithm_uses_it_for_both_keys(client):
    data = run_json("rotate_signing_keys", "--algorithm", "EdDSA")
    assert data["active"]["algorithm"] == data["next"]["algorithm"] == "EdDSA"
    assert {key["alg"] for key in client.get(JWKS_URL).json()["keys"]} == {"EdDSA"}


def test_unknown_algorithm_is_refused():
    with pytest.raises(CommandError, match="invalid choice: 'HS256'"):
        run("rotate_signing_keys", "--algorithm", "HS256")
    assert SigningKey.objects.count() == 0


def test_purge_removes_only_retired_keys_whose_publication_ended(client):
    with freeze_time("2030-01-01 12:00:00"):
        k1 = run_json("rotate_signing_keys")["active"]["kid"]
        run("rotate_signing_keys")  # k1 retired, published until 13:05
    with freeze_time("2030-01-01 12:30:00"):
        k2 = run_json("rotate_signing_keys")["retired"]["kid"]  # published until 13:35
    with freeze_time("2030-01-01 13:10:00"):
        assert k1 not in jwks_kids(client)  # no longer published, still stored
        assert SigningKey.objects.filter(kid=k1).exists()
        data = run_json("rotate_signing_keys", "--purge")
        k3 = data["retired"]["kid"]
        assert data["purged"] == 1
        assert not SigningKey.objects.filter(kid=k1).exists()
        assert states()["retired"] == [k2, k3]
        assert set(jwks_kids(client)) >= {k2, k3}
        out = run("rotate_signing_keys", "--purge")
        assert "Purged 0 retired key(s)" in out


def test_rotation_refuses_a_next_key_no_secret_decrypts():
    run("rotate_signing_keys")
    active_before = SigningKey.objects.get(state=SigningKey.State.ACTIVE).kid
    before = snapshot()
    with override_settings(OAUTH_SERVER={"SIGNING_KEY_ENCRYPTION_SECRET": "a-new-secret-" * 4}):
        with pytest.raises(CommandError, match="cannot be decrypted.*Nothing was changed"):
            run("rotate_signing_keys")
        assert snapshot() == before
        # With the old secret (here SECRET_KEY) as a fallback, the rotation goes through.
        with override_settings(
            OAUTH_SERVER={
                "SIGNING_KEY_ENCRYPTION_SECRET": "a-new-secret-" * 4,
                "SIGNING_KEY_ENCRYPTION_SECRET_FALLBACKS": [django_settings.SECRET_KEY],
            }
        ):
            data = run_json("rotate_signing_keys")
    assert data["retired"]["kid"] == active_before


# --- list_signing_keys --------------------------------------------------------------------------------
def test_list_without_keys_says_how_to_create_them():
    assert "rotate_signing_keys" in run("list_signing_keys")
    assert run_json("list_signing_keys") == {"keys": []}


def test_list_shows_public_facts_only():
    with freeze_time("2030-01-01 12:00:00"):
        run("rotate_signing_keys")
        rotation = run_json("rotate_signing_keys")
    with freeze_time("2030-01-01 12:10:00"):
        listing = run_json("list_signing_keys")["keys"]
        human = run("list_signing_keys")
    assert [(k["kid"], k["state"]) for k in listing] == [
        (rotation["active"]["kid"], "active"),
        (rotation["next"]["kid"], "next"),
        (rotation["retired"]["kid"], "retired"),
    ]
    retired = listing[2]
    assert retired["published_until"] == rotation["retired"]["published_until"]
    assert retired["published"] is True
    assert set(listing[0]) == {
        "kid",
        "algorithm",
        "state",
        "created",
        "activated_at",
        "retired_at",
        "published_until",
        "published",
    }
    for key in SigningKey.objects.all():
        assert key.kid in human
        assert key.private_key not in human
    assert f"until {rotation['retired']['published_until']}" in human

    with freeze_time("2030-01-01 14:00:00"):
        listing = run_json("list_signing_keys")["keys"]
        assert listing[2]["published"] is False
        assert "no (purge with rotate_signing_keys --purge)" in run("list_signing_keys")


# --- the W002 system check ------------------------------------------------------------------------------
def test_w002_without_an_active_key_and_gone_after_rotation():
    messages = run_checks(databases=["default"])
    assert ids(messages) == ["oauth_server.W002"]
    assert "rotate_signing_keys" in messages[[m.id for m in messages].index("oauth_server.W002")].hint
    # Database checks run only when asked for (check --database, migrate), never by plain check.
    assert "oauth_server.W002" not in ids(run_checks())
    run("rotate_signing_keys")
    assert "oauth_server.W002" not in ids(run_checks(databases=["default"]))


def test_w002_is_silent_when_the_table_does_not_exist():
    with mock.patch.object(connection.introspection, "table_names", return_value=["django_migrations"]):
        assert "oauth_server.W002" not in ids(run_checks(databases=["default"]))


def test_w002_does_not_crash_when_the_database_fails():
    with mock.patch.object(
        connection.introspection, "table_names", side_effect=OperationalError("connection refused")
    ):
        assert "oauth_server.W002" not in ids(run_checks(databases=["default"]))


def test_check_on_a_fresh_database_before_migrate_does_not_crash(tmp_path):
    """A real unmigrated SQLite file: `check --database default` must pass, not trace back."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--database", "default"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "oauth_server.W002" not in result.stdout + result.stderr
