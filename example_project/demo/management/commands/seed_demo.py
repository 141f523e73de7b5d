"""``manage.py seed_demo``: the demo accounts, scopes and clients, and how to try them."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from example_project.demo import seed, site


class Command(BaseCommand):
    help = (
        "Create or update the demo accounts (alice, bob, admin), scopes and clients with fixed, "
        "documented DEMO-ONLY credentials, then print them with a ready-made authorization URL "
        "and curl commands. Running it again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url",
            default=None,
            help="Where the demo site is served; redirect URIs and audiences use it (default: the "
            f"DEMO_BASE_URL setting, {site.DEFAULT_BASE_URL} unless the environment says otherwise).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            base_url = site.normalize_base_url(
                options["base_url"] or getattr(settings, "DEMO_BASE_URL", site.DEFAULT_BASE_URL)
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        try:
            seed.seed(base_url)
        except seed.NotMigrated as exc:
            raise CommandError(str(exc)) from exc
        except ValidationError as exc:
            raise CommandError(f"Could not seed the demo clients: {exc}") from exc
        data = seed.summary(base_url)
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2))
        else:
            self.stdout.write(render_text(data, style=self.style))


def render_text(data: dict[str, Any], style=None) -> str:
    """The human-readable version of ``seed.summary()``."""

    def heading(text: str) -> str:
        return style.MIGRATE_HEADING(text) if style else text

    def warn(text: str) -> str:
        return style.WARNING(text) if style else text

    urls = data["endpoints"]
    auth = data["authorization"]
    curl = data["curl"]
    apis = data["apis"]
    lines = [
        heading(f"oauth_server demo: ready at {data['base_url']}/"),
        warn(data["warning"]),
        "",
        heading(f"Accounts (password {data['accounts'][0]['password']})"),
    ]
    for account in data["accounts"]:
        extra = f"superuser, {urls['admin']}" if account["is_superuser"] else account["email"]
        lines.append(f"  {account['username']:<7} {account['name']:<14} {extra}")
    lines += ["", heading("Clients")]
    for client in data["clients"]:
        lines.append(f"  {client['name']}  ({client['client_type']}: {', '.join(client['grant_types'])})")
        lines.append(f"    client_id      {client['client_id']}")
        if client["client_secret"]:
            lines.append(f"    client_secret  {client['client_secret']}")
        if client["redirect_uris"]:
            lines.append(f"    redirect_uris  {' '.join(client['redirect_uris'])}")
        if client["scopes"]:
            lines.append(f"    scopes         {' '.join(client['scopes'])}")
        if client["audiences"]:
            lines.append(f"    token audience {' '.join(client['audiences'])}")
        if client["resource_identifiers"]:
            lines.append(f"    serves (API)   {' '.join(client['resource_identifiers'])}")
    lines += [
        "",
        heading("Endpoints"),
        *(f"  {name:<14} {url}" for name, url in urls.items()),
        "",
        heading("1. Machine to machine (reports-service, client credentials)"),
        f"  {curl['client_credentials']}",
        "",
        heading("2. Authorization code + PKCE (Demo Web App)"),
        "  Or just open the home page and click 'Try the authorization code flow'.",
        "  Open this URL, sign in as alice and allow:",
        f"  {auth['url']}",
        f"  Its PKCE code_verifier: {auth['code_verifier']}  (state {auth['state']})",
        "  The browser lands on /demo/callback, which shows the code. Within "
        f"{auth['code_lifetime']} seconds, in a shell:",
        "  CODE=<the code>",
        f"  {curl['code_exchange']}",
        "  then set ACCESS_TOKEN=<access_token> REFRESH_TOKEN=<refresh_token> from the response.",
        "",
        heading("3. Use the tokens"),
        f"  userinfo:      {curl['userinfo']}",
        f"  introspection: {curl['introspection']}",
        f"  refresh:       {curl['refresh']}",
        f"  revocation:    {curl['revocation']}",
        "",
        heading("4. The APIs (resource servers)"),
        f"  Files API {apis['files_api']}: each user's own files (files:read, files:write)",
        f"  {curl['files_api']}",
        f"  Reports API {apis['reports_api']}: for reports-service (reports:read)",
        "  SERVICE_TOKEN=<access_token from command 1>",
        f"  {curl['reports_api']}",
        f"  Report builder {apis['my_report']}: a service acting for a user (token exchange, RFC 8693)",
        "  Sign in with the device grant, then get your files report, made for you by report-builder:",
        f"  {curl['cli_report']}",
        "",
        heading("5. In the browser"),
        f"  The Demo Web App (sign in, files, refresh, log out): {apis['client_app']}",
        f"  Your connected apps (revoke access): {apis['connected_apps']}",
        f"  Management API schema (staff):        {apis['management_api_schema']}",
        "",
    ]
    return "\n".join(lines)
