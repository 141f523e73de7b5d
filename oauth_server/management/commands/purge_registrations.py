"""``manage.py purge_registrations --unused-days N``: delete self-registered clients nobody uses.

Open registration lets anyone create clients; most are used once, or never. A client registered
by DCR or from a metadata document (``registration_source`` ``dcr``/``cimd``) is *unused* when it
was created more than N days ago and no access token, refresh token or authorization code of it was
created in the last N days (a sign-in, a token refresh or an approval creates one). Deleting a
client deletes its tokens, codes, consents and registration (cascade); each deletion is audited
(``client_registration_deleted``, ``via: "purge"``). Clients an operator registered are never
touched.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from oauth_server import signals
from oauth_server.models import Client
from oauth_server.registration import unused_registrations


class Command(BaseCommand):
    help = "Delete self-registered (DCR, metadata document) clients unused for --unused-days N days."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--unused-days",
            type=int,
            required=True,
            metavar="N",
            help="Delete clients created over N days ago with no token or code created in the last N days.",
        )
        parser.add_argument("--dry-run", action="store_true", help="List them; delete nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["unused_days"]
        if days < 1:
            raise CommandError("--unused-days must be 1 or more.")
        clients = list(unused_registrations(days))
        for client in clients:
            self.stdout.write(f"{client.client_id}\t{client.registration_source}\t{client.name}")
        if options["dry_run"]:
            self.stdout.write(f"{len(clients)} unused self-registered client(s) would be deleted.")
            return
        deleted = 0
        for client in clients:
            client_id, name = client.client_id, client.name
            with transaction.atomic():
                # Asked again, row locked: a token issued since the listing keeps the client.
                still = unused_registrations(days).filter(pk=client.pk).select_for_update(of=("self",))
                if still.first() is None:
                    continue
                client.delete()
                deleted += 1
                transaction.on_commit(
                    lambda client_id=client_id, name=name: signals.client_registration_deleted.send(
                        sender=Client, client_id=client_id, name=name, via="purge"
                    )
                )
        self.stdout.write(f"Deleted {deleted} unused self-registered client(s).")
