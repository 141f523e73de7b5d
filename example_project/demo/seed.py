"""The demo's fixed data (accounts, scopes, clients) and the idempotent code that puts it in the database.

Every credential here is PUBLIC (it is printed by ``seed_demo`` and written in the README) so that
the documented curl commands work on every run. Demo only: never use these values in production.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import reverse

from oauth_server import keys
from oauth_server.conf import settings as oauth_settings
from oauth_server.models import Client, GrantType, Scope

from .models import File
from .rp import pkce_pair
from .site import DEFAULT_BASE_URL, FILES_API_PATH, MY_REPORT_PATH, REPORTS_API_PATH

DEMO_PASSWORD = "demo-password-123"
DEMO_ONLY_WARNING = (
    "DEMO ONLY: these passwords and client secrets are public (README, docs/demo.md). "
    "Never use them in production."
)


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    email: str
    is_superuser: bool = False


USERS = [
    DemoUser("alice", "Alice", "Liddell", "alice@example.com"),
    DemoUser("bob", "Bob", "Kahn", "bob@example.com"),
    DemoUser("admin", "Ada", "Admin", "admin@example.com", is_superuser=True),
]

# The standard OIDC scopes come from oauth_server's migration; these are the demo APIs' scopes.
SCOPES = {
    "files:read": "Read your files",
    "files:write": "Create, change and delete your files",
    "reports:read": "Read the reports",
    "mcp:tools": "Use the demo's MCP tools (who you are; with files:read, your files)",
}


@dataclass(frozen=True)
class DemoClient:
    key: str
    name: str
    client_id: str
    client_type: str
    grant_types: list[str]
    scopes: list[str]
    client_secret: str | None = None
    # Paths under the base URL; each is registered for 127.0.0.1 and localhost alike.
    redirect_paths: list[str] = field(default_factory=list)
    post_logout_paths: list[str] = field(default_factory=list)
    audience_paths: list[str] = field(default_factory=list)
    resource_paths: list[str] = field(default_factory=list)
    description: str = ""


WEB_APP = DemoClient(
    key="web",
    name="Demo Web App",
    client_id="demo-web-app",
    client_type=Client.CLIENT_CONFIDENTIAL,
    client_secret="demo-web-app-secret-DEMO-ONLY-never-use-in-production",
    grant_types=[GrantType.AUTHORIZATION_CODE, GrantType.REFRESH_TOKEN],
    scopes=["openid", "profile", "email", "offline_access", "files:read", "files:write"],
    redirect_paths=["/demo/callback"],
    # Where RP-initiated logout sends the user back: the app's own "signed out" page, then the home.
    post_logout_paths=["/demo/app/logged-out", "/"],
    audience_paths=[FILES_API_PATH],
    description="A server-side web application (confidential): code + PKCE, refresh tokens; "
    "calls the files API.",
)
SPA = DemoClient(
    key="spa",
    name="Demo SPA",
    client_id="demo-spa",
    client_type=Client.CLIENT_PUBLIC,
    grant_types=[GrantType.AUTHORIZATION_CODE, GrantType.REFRESH_TOKEN],
    scopes=["openid", "profile", "email", "offline_access", "files:read"],
    redirect_paths=["/demo/spa-callback"],
    post_logout_paths=["/"],
    audience_paths=[FILES_API_PATH],
    description="A browser application (public, no secret): code + PKCE, refresh tokens.",
)
REPORTS_SERVICE = DemoClient(
    key="reports",
    name="reports-service",
    client_id="reports-service",
    client_type=Client.CLIENT_CONFIDENTIAL,
    client_secret="reports-service-secret-DEMO-ONLY-never-use-in-production",
    grant_types=[GrantType.CLIENT_CREDENTIALS],
    scopes=["reports:read"],
    audience_paths=[REPORTS_API_PATH],
    description="A backend service acting for itself: client credentials.",
)
FILES_API = DemoClient(
    key="files_api",
    name="files-api",
    client_id="files-api",
    client_type=Client.CLIENT_CONFIDENTIAL,
    client_secret="files-api-secret-DEMO-ONLY-never-use-in-production",
    # A client needs one grant type; the API holds client_credentials but no scope: it only
    # authenticates to introspect the tokens issued for it.
    grant_types=[GrantType.CLIENT_CREDENTIALS],
    scopes=[],
    resource_paths=[FILES_API_PATH],
    description="The files API (a resource server): introspects the tokens issued for it.",
)
CLI = DemoClient(
    key="cli",
    name="Demo CLI",
    client_id="demo-cli",
    client_type=Client.CLIENT_PUBLIC,
    grant_types=[GrantType.DEVICE_CODE, GrantType.REFRESH_TOKEN],
    scopes=["offline_access", "files:read"],
    # Two APIs: the CLI names the one it wants with RFC 8707 ``resource`` (cli.py), so each of its
    # tokens is for one API only: the files API (``login``) or the report builder (``report``).
    audience_paths=[FILES_API_PATH, MY_REPORT_PATH],
    description="A command-line tool (public): the device authorization grant (RFC 8628), refresh "
    "tokens; python -m example_project.demo.cli login (or report).",
)
# Its own client, not reports-service: giving reports-service the files API as an audience would put
# the files API in the audience of its client-credentials tokens too (a client's tokens are for all
# its audiences unless it names one). This one holds no other grant, so its only tokens are exchanged.
REPORT_BUILDER = DemoClient(
    key="report_builder",
    name="Report builder",
    client_id="report-builder",
    client_type=Client.CLIENT_CONFIDENTIAL,
    client_secret="report-builder-secret-DEMO-ONLY-never-use-in-production",
    grant_types=[GrantType.TOKEN_EXCHANGE],
    # The most an exchanged token may carry (the user's token may hold less: then less).
    scopes=["files:read"],
    # What it may exchange for: the files API only ...
    audience_paths=[FILES_API_PATH],
    # ... and whose tokens it may exchange: those issued for the API it serves.
    resource_paths=[MY_REPORT_PATH],
    description="A service acting for users (token exchange, RFC 8693): called with a user's token "
    "at /api/my-report/, it exchanges it for a files:read token for the files API and reports on "
    "the user's files.",
)
CLIENTS = [WEB_APP, SPA, REPORTS_SERVICE, FILES_API, CLI, REPORT_BUILDER]

# What the printed authorization URL asks for.
AUTHORIZATION_SCOPE = "openid profile email offline_access files:read"
# What the Demo Web App asks for when it signs a user in: it also creates and deletes files.
CLIENT_APP_SCOPE = "openid profile email offline_access files:read files:write"


@dataclass(frozen=True)
class DemoFile:
    owner: str
    name: str
    content: str


# The files API's starting data: each user sees only their own.
FILES = [
    DemoFile("alice", "shopping-list.txt", "Tea\nJam tarts\nA bottle labelled DRINK ME\n"),
    DemoFile("alice", "rabbit-hole.md", "# Notes\n\nCurious: the hole goes straight down, like a well.\n"),
    DemoFile("bob", "tcp-draft.txt", "A Protocol for Packet Network Intercommunication (draft 3)\n"),
    DemoFile("bob", "todo.md", "- review the gateway design\n- lunch with Vint\n"),
]


# --- base URL --------------------------------------------------------------------------------------
def origins(base_url: str) -> list[str]:
    """The base URL, then the same site under its other loopback name (127.0.0.1 <-> localhost).

    Redirect URIs match exactly, so a user who opens http://localhost:8000/ needs its own
    registered callback for the flow to work from there too.
    """
    parts = urlsplit(base_url)
    other = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(parts.hostname or "")
    result = [base_url]
    if other:
        port = f":{parts.port}" if parts.port else ""
        result.append(f"{parts.scheme}://{other}{port}")
    return result


def _urls(base_url: str, paths: list[str], *, all_origins: bool) -> list[str]:
    bases = origins(base_url) if all_origins else [base_url]
    return [base + path for path in paths for base in bases]


# --- seeding ---------------------------------------------------------------------------------------
class NotMigrated(Exception):
    """The database has no oauth_server tables yet."""


def _check_migrated() -> None:
    tables = set(connection.introspection.table_names())
    if not {Client._meta.db_table, Scope._meta.db_table, File._meta.db_table} <= tables:
        raise NotMigrated("The database is not migrated: run `python manage.py migrate` first.")


def _seed_user(spec: DemoUser):
    User = get_user_model()
    user, _ = User.objects.get_or_create(username=spec.username)
    changed = False
    for name, value in (
        ("first_name", spec.first_name),
        ("last_name", spec.last_name),
        ("email", spec.email),
        ("is_active", True),
        ("is_staff", spec.is_superuser),
        ("is_superuser", spec.is_superuser),
    ):
        if getattr(user, name) != value:
            setattr(user, name, value)
            changed = True
    # Only when it differs: setting the same password again would write a new salted hash.
    if not user.check_password(DEMO_PASSWORD):
        user.set_password(DEMO_PASSWORD)
        changed = True
    if changed:
        user.save()
    return user


def _seed_client(spec: DemoClient, base_url: str) -> Client:
    """Create the client, or bring an existing row back to the demo's values (same id, same secret)."""
    fields: dict[str, Any] = {
        "name": spec.name,
        "client_type": spec.client_type,
        "grant_types": list(spec.grant_types),
        "redirect_uris": " ".join(_urls(base_url, spec.redirect_paths, all_origins=True)),
        "post_logout_redirect_uris": " ".join(_urls(base_url, spec.post_logout_paths, all_origins=True)),
        "audiences": _urls(base_url, spec.audience_paths, all_origins=False),
        "resource_identifiers": _urls(base_url, spec.resource_paths, all_origins=False),
        "is_enabled": True,
        "skip_consent": False,
    }
    client = Client.objects.filter(client_id=spec.client_id).first()
    if client is None:
        redirect_uris = fields.pop("redirect_uris").split()
        for name in ("name", "client_type", "grant_types"):
            fields.pop(name)
        client, _ = Client.objects.create_client(
            name=spec.name,
            client_type=spec.client_type,
            grant_types=spec.grant_types,
            redirect_uris=redirect_uris,
            scopes=spec.scopes,
            client_secret=spec.client_secret,
            client_id=spec.client_id,
            **fields,
        )
        return client
    changed = [name for name, value in fields.items() if getattr(client, name) != value]
    for name in changed:
        setattr(client, name, fields[name])
    if spec.client_secret is None:
        if client.client_secret:
            client.client_secret = ""
            changed.append("client_secret")
    elif not client.check_secret(spec.client_secret):
        # Re-hash the fixed secret only when the stored one differs (re-hashing always would
        # rewrite the row on every run, since the salt is random).
        client.set_secret(spec.client_secret)
        changed.append("client_secret")
    if changed:
        client.full_clean()
        client.save()
    wanted = set(Scope.objects.filter(name__in=spec.scopes).values_list("pk", flat=True))
    if set(client.allowed_scopes.values_list("pk", flat=True)) != wanted:
        client.allowed_scopes.set(wanted)
    return client


def _seed_files(users: dict[str, Any]) -> None:
    """Each demo file exists once for its owner with its demo content; other files are left alone."""
    for spec in FILES:
        owner = users[spec.owner]
        found = File.objects.filter(owner=owner, name=spec.name).order_by("id").first()
        if found is None:
            File.objects.create(owner=owner, name=spec.name, content=spec.content)
        elif found.content != spec.content:
            found.content = spec.content
            found.save(update_fields=["content"])


@transaction.atomic
def seed(base_url: str = DEFAULT_BASE_URL) -> None:
    """Create or update the demo accounts, scopes, clients, files and a signing key; safe to run again."""
    _check_migrated()
    users = {spec.username: _seed_user(spec) for spec in USERS}
    _seed_files(users)
    for name, description in SCOPES.items():
        scope, created = Scope.objects.get_or_create(name=name, defaults={"description": description})
        if not created and scope.description != description:
            scope.description = description
            scope.save(update_fields=["description", "updated"])
    for spec in CLIENTS:
        try:
            _seed_client(spec, base_url)
        except ValidationError as exc:
            raise ValidationError(f"{spec.client_id}: {exc}") from exc
    keys.ensure_keys()


# --- what seed_demo prints -------------------------------------------------------------------------
def endpoints(base_url: str) -> dict[str, str]:
    names = {
        "issuer": None,
        "authorization": "authorize",
        "token": "token",
        "userinfo": "user-info",
        "introspection": "introspect",
        "revocation": "revoke-token",
        "end_session": "rp-initiated-logout",
        "jwks": "jwks-info",
        "discovery": "oidc-connect-discovery-info",
    }
    result = {key: base_url + reverse(f"oauth2_provider:{name}") for key, name in names.items() if name}
    # DOT's issuer: the discovery URL without its well-known suffix (oauth2_settings.oidc_issuer).
    result["issuer"] = result["discovery"].removesuffix("/.well-known/openid-configuration")
    result["home"] = base_url + "/"
    result["admin"] = base_url + reverse("admin:index")
    return {key: result[key] for key in ["home", "admin", *names]}


def apis(base_url: str) -> dict[str, str]:
    """The demo's resource servers and the pages around them."""
    return {
        "client_app": base_url + reverse("demo-app"),
        "files_api": base_url + reverse("api-files"),
        "reports_api": base_url + reverse("api-reports"),
        "my_report": base_url + reverse("api-my-report"),
        "connected_apps": base_url + reverse("oauth2_provider:connected-apps"),
        "management_api_schema": base_url + reverse("oauth_server_api:schema"),
    }


def client_credentials_curl(base_url: str) -> str:
    """The README's first command: a token for reports-service."""
    auth = f"{REPORTS_SERVICE.client_id}:{REPORTS_SERVICE.client_secret}"
    token_url = base_url + reverse("oauth2_provider:token")
    return f"curl -s -u {auth} -d grant_type=client_credentials -d scope=reports:read {token_url}"


def reports_api_curl(base_url: str) -> str:
    """Two lines for a shell: a reports-service token, then the reports API called with it."""
    extract = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"
    return (
        f"SERVICE_TOKEN=$({client_credentials_curl(base_url)} | {extract})\n"
        f'curl -s -H "Authorization: Bearer $SERVICE_TOKEN" {apis(base_url)["reports_api"]}'
    )


def cli_command(command: str, base_url: str) -> str:
    """The demo CLI's ``login`` or ``report``, for a demo served at ``base_url``."""
    option = "" if base_url == DEFAULT_BASE_URL else f" --base-url {base_url}"
    return f"python -m example_project.demo.cli {command}{option}"


def summary(base_url: str = DEFAULT_BASE_URL) -> dict[str, Any]:
    """Everything seed_demo prints: accounts, clients with secrets, a PKCE authorization URL, curl."""
    urls = endpoints(base_url)
    api_urls = apis(base_url)
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    redirect_uri = base_url + WEB_APP.redirect_paths[0]
    query = {
        "response_type": "code",
        "client_id": WEB_APP.client_id,
        "redirect_uri": redirect_uri,
        "scope": AUTHORIZATION_SCOPE,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    web = f"{WEB_APP.client_id}:{WEB_APP.client_secret}"
    files = f"{FILES_API.client_id}:{FILES_API.client_secret}"
    curl = {
        "client_credentials": client_credentials_curl(base_url),
        "code_exchange": (
            f'curl -s -u {web} -d grant_type=authorization_code -d "code=$CODE" '
            f"-d redirect_uri={redirect_uri} -d code_verifier={verifier} {urls['token']}"
        ),
        "userinfo": f'curl -s -H "Authorization: Bearer $ACCESS_TOKEN" {urls["userinfo"]}',
        "refresh": (
            f'curl -s -u {web} -d grant_type=refresh_token -d "refresh_token=$REFRESH_TOKEN" {urls["token"]}'
        ),
        "introspection": f'curl -s -u {files} -d "token=$ACCESS_TOKEN" {urls["introspection"]}',
        "files_api": f'curl -s -H "Authorization: Bearer $ACCESS_TOKEN" {api_urls["files_api"]}',
        "reports_api": f'curl -s -H "Authorization: Bearer $SERVICE_TOKEN" {api_urls["reports_api"]}',
        "cli_login": cli_command("login", base_url),
        "cli_report": cli_command("report", base_url),
        "revocation": (
            f'curl -s -u {web} -d "token=$REFRESH_TOKEN" -d token_type_hint=refresh_token '
            f"{urls['revocation']}"
        ),
    }
    clients = []
    for spec in CLIENTS:
        clients.append(
            {
                "name": spec.name,
                "client_id": spec.client_id,
                "client_secret": spec.client_secret,
                "client_type": spec.client_type,
                "grant_types": [str(g) for g in spec.grant_types],
                "scopes": spec.scopes,
                "redirect_uris": _urls(base_url, spec.redirect_paths, all_origins=True),
                "post_logout_redirect_uris": _urls(base_url, spec.post_logout_paths, all_origins=True),
                "audiences": _urls(base_url, spec.audience_paths, all_origins=False),
                "resource_identifiers": _urls(base_url, spec.resource_paths, all_origins=False),
                "description": spec.description,
            }
        )
    return {
        "warning": DEMO_ONLY_WARNING,
        "base_url": base_url,
        "endpoints": urls,
        "apis": api_urls,
        "files": [{"owner": f.owner, "name": f.name} for f in FILES],
        "accounts": [
            {
                "username": u.username,
                "password": DEMO_PASSWORD,
                "name": f"{u.first_name} {u.last_name}",
                "email": u.email,
                "is_superuser": u.is_superuser,
            }
            for u in USERS
        ],
        "clients": clients,
        "authorization": {
            "client_id": WEB_APP.client_id,
            "url": f"{urls['authorization']}?{urlencode(query)}",
            "redirect_uri": redirect_uri,
            "scope": AUTHORIZATION_SCOPE,
            "state": state,
            "nonce": nonce,
            "code_verifier": verifier,
            "code_challenge": challenge,
            "code_lifetime": oauth_settings.AUTHORIZATION_CODE_LIFETIME,
        },
        "curl": curl,
    }
