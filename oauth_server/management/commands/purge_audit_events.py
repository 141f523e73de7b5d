"""``manage.py purge_audit_events``: apply the audit trail's retention period (run it daily, e.g. cron).

Deletes events older than ``--older-than DAYS``, by default ``OAUTH_SERVER["AUDIT_RETENTION_DAYS"]``.
Rows go in batches, so a large backlog never holds one huge transaction or lock.
"""

from __future__ import annotations

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
        cutoff = timezone.now() - timedelta(days=days)
        old = AuditEvent.objects.filter(created__lt=cutoff)
        if options["dry_run"]:
            count = old.count()
            self.stdout.write(f"{count} audit event(s) older than {days} day(s) would be deleted.")
            return
        deleted = 0
        while True:
            batch = list(old.order_by("pk").values_list("pk", flat=True)[:BATCH_SIZE])
            if not batch:
                break
            deleted += AuditEvent.objects.filter(pk__in=batch).delete()[0]
        self.stdout.write(f"Deleted {deleted} audit event(s) older than {days} day(s).")
