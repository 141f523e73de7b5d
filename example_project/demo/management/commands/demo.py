"""``manage.py demo [addrport]``: migrate, seed the demo data, run the development server."""

from __future__ import annotations

import errno
import os
import re
import socket
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.commands.runserver import naiveip_re
from django.test.utils import override_settings

from example_project.demo import site

DEFAULT_ADDRPORT = "127.0.0.1:8000"


def base_url_for(addrport: str) -> str:
    """The URL a browser on this machine uses for the address the server listens on."""
    host, sep, port = addrport.rpartition(":")
    if not sep:
        host, port = "", addrport
    if not port.isdigit():
        raise CommandError(f"Give the address as [host:]port, not {addrport!r}.")
    if host in ("", "0", "0.0.0.0", "[::]"):  # noqa: S104 - listening on all interfaces
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def check_can_listen(addrport: str) -> None:
    """Refuse, in one line, an address runserver could not listen on (a port already in use).

    Called before migrate and seed_demo: otherwise a second ``manage.py demo`` on a busy port
    re-seeds the running server's database and prints the credentials before runserver fails.
    The socket is set up as runserver's (``SO_REUSEADDR``), so a port in TIME_WAIT is not refused.
    """
    match = re.match(naiveip_re, addrport)
    if match is None:
        raise CommandError(f"Give the address as [host:]port, not {addrport!r}.")
    host, _ipv4, ipv6, _fqdn, port = match.groups()
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    host = host[1:-1] if ipv6 else ("0.0.0.0" if host == "0" else host)  # noqa: S104 - as runserver
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, int(port)))
    except OSError as exc:
        shown = f"[{host}]" if ipv6 else host
        if exc.errno == errno.EADDRINUSE:
            raise CommandError(
                f"Port {port} is already in use on {shown}: another server (a demo already running?) "
                f"listens there. Stop it, or give another address: manage.py demo {shown}:{int(port) + 1}"
            ) from exc
        raise CommandError(f"Cannot listen on {addrport}: {exc.strerror or exc}.") from exc


class Command(BaseCommand):
    help = (
        "Run the demo: migrate, seed_demo (accounts, clients, DEMO-ONLY credentials), then Django's "
        "development server. The database is DATABASE_URL, by default db.sqlite3 at the repository root."
    )
    # migrate runs first; the checks run in runserver.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "addrport", nargs="?", default=DEFAULT_ADDRPORT, help=f"default {DEFAULT_ADDRPORT}"
        )
        parser.add_argument(
            "--base-url",
            help="The site's URL for redirect URIs and audiences (default: http://<addrport>, "
            "with 0.0.0.0 shown as 127.0.0.1).",
        )
        parser.add_argument(
            "--noreload",
            action="store_false",
            dest="use_reloader",
            help="Passed to runserver: do not restart when code changes.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        addrport = options["addrport"]
        if ":" not in addrport:
            addrport = f"127.0.0.1:{addrport}"
        try:
            base_url = site.normalize_base_url(options["base_url"] or base_url_for(addrport))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        # With the autoreloader, runserver starts this command again in a child process (RUN_MAIN):
        # the parent already migrated and seeded.
        if os.environ.get("RUN_MAIN") != "true":
            check_can_listen(addrport)
            call_command("migrate", interactive=False, verbosity=max(options["verbosity"] - 1, 0))
            if not settings.DEBUG:
                # Production-like run (DJANGO_DEBUG=0): WhiteNoise serves the static files from
                # STATIC_ROOT, and the manifest storage needs collectstatic's manifest to render a page.
                call_command("collectstatic", interactive=False, verbosity=0)
            call_command("seed_demo", base_url=base_url, stdout=self.stdout, no_color=options["no_color"])
        # The issuer and the APIs' audiences follow the address served (settings were read for
        # DEMO_BASE_URL); override_settings sends setting_changed, so every settings object reloads.
        derived = site.settings_for(
            base_url, getattr(settings, "OAUTH2_PROVIDER", None), getattr(settings, "OAUTH_SERVER", None)
        )
        # Keys settings.py adds to the APIs' settings (DEMO_DPOP_NONCES) stay.
        derived["OAUTH_RESOURCE_SERVER"] = {
            **getattr(settings, "OAUTH_RESOURCE_SERVER", {}),
            **derived["OAUTH_RESOURCE_SERVER"],
        }
        # override_settings holds the settings in a UserSettingsHolder, whose SETTINGS_MODULE is None:
        # carry the real one over, or runserver's banner says "using settings None".
        with override_settings(SETTINGS_MODULE=settings.SETTINGS_MODULE, **derived):
            call_command("runserver", addrport, use_reloader=options["use_reloader"])
