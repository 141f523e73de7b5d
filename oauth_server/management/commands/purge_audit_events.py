"""``manage.py purge_audit_events``: apply the audit trail's retention period (run it daily, e.g. cron).

Deletes events older than ``--older-than DAYS``, by default ``OAUTH_SERVER["AUDIT_RETENTION_DAYS"]``.
Rows go in batches of ``--batch-size``, each its own short transaction (two statements: the next ids
in primary-key order, then their DELETE), with an optional ``--pause`` between batches, so a large
backlog never holds one huge transaction or lock, and writes of new events go on meanwhile. Each
batch starts after the last id deleted (keyset pagination): it never re-reads the dead rows earlier
batches left in the index before VACUUM reclaims them, so every batch costs the same.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from oauth_server.conf import settings
from oauth_server.models import AuditEvent

BATCH_SIZE = 5000


class Command(BaseCommand):
    help = "Delete audit events older than --older-than DAYS (default: the AUDIT_RETENTION_DAYS setting)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            metavar="DAYS",
            help="Delete events created more than DAYS days ago. Default: AUDIT_RETENTION_DAYS.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only count the events that would be deleted."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            metavar="N",
            help=f"Events deleted per transaction (default {BATCH_SIZE}).",
        )
        parser.add_argument(
            "--pause",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="Sleep this long between batches, to leave the database to other work (default 0).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["older_than"]
        if days is None:
            days = settings.AUDIT_RETENTION_DAYS
            if days is None:
                raise CommandError(
                    "AUDIT_RETENTION_DAYS is None (keep forever): give --older-than DAYS to purge anyway."
                )
        if days < 0:
            raise CommandError("--older-than must be a number of days, 0 or more.")
        batch_size, pause = options["batch_size"], options["pause"]
        if batch_size < 1:
            raise CommandError("--batch-size must be 1 or more.")
        if pause < 0:
            raise CommandError("--pause must be 0 or more seconds.")
        cutoff = timezone.now() - timedelta(days=days)
        old = AuditEvent.objects.filter(created__lt=cutoff)
        if options["dry_run"]:
            count = old.count()
            self.stdout.write(f"{count} audit event(s) older than {days} day(s) would be deleted.")
            return
        deleted = batches = 0
        last = None
        while True:
            page = old if last is None else old.filter(pk__gt=last)
            batch = list(page.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not batch:
                break
            if batches and pause:
                time.sleep(pause)
            # Autocommit: each DELETE is its own transaction, its locks held only while it runs.
            deleted += AuditEvent.objects.filter(pk__in=batch).delete()[0]
            batches += 1
            last = batch[-1]
            if len(batch) < batch_size:
                break
        self.stdout.write(f"Deleted {deleted} audit event(s) older than {days} day(s).")
