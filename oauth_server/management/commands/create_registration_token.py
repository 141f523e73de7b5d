"""``manage.py create_registration_token``: issue an RFC 7591 initial access token.

While ``REGISTRATION_POLICY`` is ``initial_access_token``, a client registers itself only with one
of these as a bearer token. The clear value is printed once; the database keeps its SHA-256.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from oauth_server import registration
from oauth_server.conf import settings

DEFAULT_EXPIRES_IN = 24 * 3600


class Command(BaseCommand):
    help = (
        "Issue an initial access token for dynamic client registration (RFC 7591). "
        "Single use and valid for a day unless told otherwise."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--expires-in",
            type=int,
            default=DEFAULT_EXPIRES_IN,
            metavar="SECONDS",
            help=f"Seconds until the token expires (default {DEFAULT_EXPIRES_IN}); 0: never.",
        )
        parser.add_argument(
            "--uses",
            type=int,
            default=1,
            metavar="N",
            help="How many clients it may register (default 1); 0: any number until it expires.",
        )
        parser.add_argument("--description", default="", help="A note for the admin (who it is for).")
        parser.add_argument(
            "--json", action="store_true", help='Print {"token": ..., "expires_at": ...} and nothing else.'
        )

    def handle(self, *args: Any, **options: Any) -> None:
        expires_in = options["expires_in"]
        uses = options["uses"]
        if expires_in < 0:
            raise CommandError("--expires-in must be a number of seconds, 0 (never) or more.")
        if uses < 0:
            raise CommandError("--uses must be 0 (unlimited) or more.")
        if len(options["description"]) > 255:
            raise CommandError("--description is at most 255 characters.")
        raw, row = registration.create_initial_access_token(
            expires_in=expires_in or None, max_uses=uses or None, description=options["description"]
        )
        expires_at = row.expires_at.isoformat() if row.expires_at else None
        if options["json"]:
            self.stdout.write(json.dumps({"token": raw, "expires_at": expires_at}))
            return
        self.stdout.write(raw)
        when = f"expires {expires_at}" if expires_at else "never expires"
        count = (
            "single use"
            if row.max_uses == 1
            else (f"{row.max_uses} uses" if row.max_uses else "any number of uses")
        )
        self.stderr.write(f"Initial access token #{row.pk}: {when}, {count}. Shown once: copy it now.")
        if registration.policy() != registration.INITIAL_ACCESS_TOKEN:
            self.stderr.write(
                self.style.WARNING(
                    f"REGISTRATION_POLICY is {settings.REGISTRATION_POLICY!r}: the registration endpoint "
                    "does not ask for this token."
                )
            )
