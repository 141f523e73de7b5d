"""``manage.py list_signing_keys``: what is in the JWKS and what will be, without private material."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from oauth_server.models import SigningKey

_ORDER = {SigningKey.State.ACTIVE: 0, SigningKey.State.NEXT: 1, SigningKey.State.RETIRED: 2}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class Command(BaseCommand):
    help = "List the signing keys: kid, algorithm, state and until when each is published. Read-only."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object (and nothing else) on stdout."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        # Only public columns are read: the encrypted private key never leaves the database here.
        rows = SigningKey.objects.only(
            "kid", "algorithm", "state", "created", "activated_at", "retired_at", "retire_after"
        )
        found = sorted(rows, key=lambda k: (_ORDER.get(k.state, 3), -k.created.timestamp()))
        listing = [
            {
                "kid": key.kid,
                "algorithm": key.algorithm,
                "state": key.state,
                "created": _iso(key.created),
                "activated_at": _iso(key.activated_at),
                "retired_at": _iso(key.retired_at),
                "published_until": _iso(key.retire_after),
                "published": key.state != SigningKey.State.RETIRED
                or (key.retire_after is not None and key.retire_after > now),
            }
            for key in found
        ]
        if options["json"]:
            self.stdout.write(json.dumps({"keys": listing}, indent=2))
            return
        if not listing:
            self.stdout.write("No signing keys yet. Run `manage.py rotate_signing_keys` to create them.")
            return
        header = f"{'KID':<44} {'ALG':<6} {'STATE':<8} PUBLISHED"
        self.stdout.write(header)
        for key in listing:
            if key["state"] != SigningKey.State.RETIRED:
                published = "yes"
            elif key["published"]:
                published = f"until {key['published_until']}"
            else:
                published = "no (purge with rotate_signing_keys --purge)"
            self.stdout.write(f"{key['kid']:<44} {key['algorithm']:<6} {key['state']:<8} {published}")
