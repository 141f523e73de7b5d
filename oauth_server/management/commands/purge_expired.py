"""``manage.py purge_expired``: the one cleanup to schedule (cron, a Kubernetes CronJob; hourly or daily).

1. DOT's ``cleartokens``: expired authorization codes (with their replay tombstones), expired access
   and ID tokens, revoked and expired refresh tokens (docs/settings.md says which, and when).
2. Expired device authorizations (RFC 8628; ``device.purge_expired``), whatever their status.
3. Expired pushed authorization requests (RFC 9126; ``par.purge_expired``).

Every step deletes in batches. Nothing that is still usable is deleted: a pending device
authorization or a pushed request in time stays. Running it twice deletes nothing the second time.
"""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from oauth_server import device, par
from oauth_server.cleanup import DEFAULT_BATCH_SIZE


class Command(BaseCommand):
    help = (
        "Delete what has expired: DOT's cleartokens (codes, tokens), then expired device "
        "authorizations and pushed authorization requests. Run it on a schedule."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Rows per DELETE for device authorizations and pushed requests (default "
            f"{DEFAULT_BATCH_SIZE}; cleartokens uses CLEAR_EXPIRED_TOKENS_BATCH_SIZE).",
        )
        parser.add_argument(
            "--skip-cleartokens",
            action="store_true",
            help="Leave tokens and codes alone (when cleartokens is scheduled on its own).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        if batch_size < 1:
            raise CommandError("--batch-size must be 1 or more.")
        if not options["skip_cleartokens"]:
            call_command("cleartokens", stdout=self.stdout, stderr=self.stderr)
            self.stdout.write("Expired tokens and codes: cleared (cleartokens).")
        devices = device.purge_expired(batch_size=batch_size)
        self.stdout.write(f"Deleted {devices} expired device authorization(s).")
        pushed = par.purge_expired(batch_size=batch_size)
        self.stdout.write(f"Deleted {pushed} expired pushed authorization request(s).")
