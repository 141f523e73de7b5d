"""``manage.py rotate_signing_keys``: the scheduled (or emergency) rotation of the JWT signing keys.

``keys.rotate()`` does the work: next -> active, active -> retired (still published until every token
it signed has expired), a new next key pre-published. On a site without keys it creates active and
next. ``--purge`` then deletes retired keys whose publication has ended.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from oauth_server import keys
from oauth_server.conf import settings
from oauth_server.models import SigningKey


def _key(key: SigningKey | None, **extra: Any) -> dict[str, Any] | None:
    if key is None:
        return None
    return {"kid": key.kid, "algorithm": key.algorithm, **extra}


class Command(BaseCommand):
    help = (
        "Rotate the signing keys: the next key starts signing, the active key is retired (published "
        "until its tokens expire) and a new next key is published. Creates the first keys if none exist."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--algorithm",
            choices=SigningKey.Algorithm.values,
            help="Algorithm of the new next key (it signs from the following rotation on). "
            "Default: the algorithm of the key becoming active (SIGNING_KEY_ALGORITHM for the first keys).",
        )
        parser.add_argument(
            "--purge",
            action="store_true",
            help="Also delete retired keys that are no longer published.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object (and nothing else) on stdout."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self._refuse_undecryptable_next_key()
        rotation = keys.rotate(options["algorithm"])
        purged = keys.purge_expired() if options["purge"] else None

        published_until = rotation.retire_after.isoformat() if rotation.retire_after else None
        data = {
            "active": _key(rotation.activated),
            "retired": _key(rotation.retired, published_until=published_until),
            "next": _key(rotation.next),
            "purged": purged,
        }
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return

        if rotation.retired is None:
            self.stdout.write(self.style.SUCCESS("There was no active signing key: created the first keys."))
        else:
            self.stdout.write(self.style.SUCCESS("Rotated the signing keys."))
        active, nxt, retired = rotation.activated, rotation.next, rotation.retired
        self.stdout.write(f"  active   {active.kid} ({active.algorithm})  signs new tokens")
        if retired is not None:
            self.stdout.write(
                f"  retired  {retired.kid} ({retired.algorithm})  published until {published_until}"
            )
        self.stdout.write(f"  next     {nxt.kid} ({nxt.algorithm})  published, signs from the next rotation")
        if retired is not None:
            self.stdout.write(
                f"Running processes switch to the new key within {settings.SIGNING_KEY_CACHE_SECONDS} s "
                "(SIGNING_KEY_CACHE_SECONDS); the retired key stays in the JWKS meanwhile."
            )
        if purged is not None:
            self.stdout.write(f"Purged {purged} retired key(s) no longer published.")

    def _refuse_undecryptable_next_key(self) -> None:
        """Promoting a key no configured secret decrypts would break every token request: stop first."""
        upcoming = SigningKey.objects.filter(state=SigningKey.State.NEXT).first()
        if upcoming is None:
            return
        try:
            keys.decrypt_private_key(upcoming.private_key)
        except keys.KeyDecryptionError as exc:
            raise CommandError(
                f"The next key {upcoming.kid} cannot be decrypted with SIGNING_KEY_ENCRYPTION_SECRET or its "
                "fallbacks, so it cannot start signing. Add the secret it was encrypted under to "
                "OAUTH_SERVER['SIGNING_KEY_ENCRYPTION_SECRET_FALLBACKS']. Nothing was changed."
            ) from exc
