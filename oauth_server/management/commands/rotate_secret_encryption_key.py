"""``manage.py rotate_secret_encryption_key``: re-encrypt the stored client_secret_jwt secrets.

The secrets of ``client_secret_jwt`` clients are kept encrypted (``secret_encryption.py``) under the
first key of ``OAUTH_SERVER["CLIENT_SECRET_ENCRYPTION_KEYS"]`` (by default a key derived from
``SECRET_KEY``). To change the key: put the new key first, keep the old ones after it, deploy, run
this command (every secret is decrypted with whichever key opens it and encrypted under the first),
then remove the old keys. Re-encrypting on use instead would write a client row on token requests;
an explicit command also says when the old key may go (docs/client-authentication.md).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from oauth_server import secret_encryption
from oauth_server.models import Client


class Command(BaseCommand):
    help = (
        "Re-encrypt the stored secrets of client_secret_jwt clients under the first key of "
        "CLIENT_SECRET_ENCRYPTION_KEYS (after adding a new key in front). --generate prints a new key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--generate",
            action="store_true",
            help="Print a new random key for CLIENT_SECRET_ENCRYPTION_KEYS and do nothing else.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be re-encrypted; change nothing."
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object (and nothing else) on stdout."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["generate"]:
            self.stdout.write(secret_encryption.generate_key())
            return
        reencrypted, undecryptable = 0, []
        with transaction.atomic():
            rows = Client.objects.exclude(encrypted_client_secret="").select_for_update().order_by("pk")
            for client in rows:
                try:
                    token = secret_encryption.reencrypt(client.encrypted_client_secret)
                except secret_encryption.SecretDecryptionError:
                    undecryptable.append(client.client_id)
                    continue
                reencrypted += 1
                if not options["dry_run"]:
                    # update(): no save() side effects, no post_save (the secret itself is unchanged).
                    Client.objects.filter(pk=client.pk).update(encrypted_client_secret=token)
        missing = list(
            Client.objects.filter(
                token_endpoint_auth_method="client_secret_jwt",
                client_type=Client.CLIENT_CONFIDENTIAL,
                encrypted_client_secret="",
            ).values_list("client_id", flat=True)
        )
        data = {
            "reencrypted": reencrypted,
            "dry_run": options["dry_run"],
            "undecryptable": undecryptable,
            "without_encrypted_secret": missing,
        }
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2))
        else:
            verb = "would be re-encrypted" if options["dry_run"] else "re-encrypted under the first key"
            self.stdout.write(f"{reencrypted} client secret(s) {verb}.")
            if missing:
                self.stdout.write(
                    "client_secret_jwt clients with no encrypted secret (rotate their secret): "
                    + ", ".join(missing)
                )
        if undecryptable:
            raise CommandError(
                "No configured key decrypts the secret of: "
                + ", ".join(undecryptable)
                + ". List the key they were encrypted under in CLIENT_SECRET_ENCRYPTION_KEYS (or rotate "
                "these clients' secrets); do not remove old keys yet."
            )
