"""``manage.py create_oauth_scope``: add a scope (or, with ``--update``, change one) from a shell.

Scopes live in the database (``oauth_server.Scope``); the name is validated as an RFC 6749 3.3
scope-token by the model, so the command cannot store a scope the token endpoint could never parse.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import IntegrityError, transaction

from oauth_server.models import Scope


def _messages(exc: ValidationError) -> str:
    if not hasattr(exc, "error_dict"):
        return "; ".join(exc.messages)
    option = {"name": "NAME", "description": "--description", "is_default": "--default"}
    return "\n".join(
        f"{option.get(field, field)}: {message}"
        for field, messages in exc.message_dict.items()
        for message in messages
    )


class Command(BaseCommand):
    help = (
        "Create an OAuth scope. With --update, change the description or default flag of an existing "
        "scope (or create it if missing), so provisioning scripts can run it repeatedly."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Scope name, e.g. files:read (RFC 6749 3.3 scope-token).")
        parser.add_argument(
            "--description", help="Shown to users on the consent screen. Required when creating."
        )
        parser.add_argument(
            "--default",
            dest="is_default",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="Granted when a client asks for no scope and is allowed this one (--no-default: not).",
        )
        parser.add_argument(
            "--update",
            action="store_true",
            help="If the scope exists, update it instead of failing (options not given stay unchanged).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object (and nothing else) on stdout."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name: str = options["name"]
        description: str | None = options["description"]
        is_default: bool | None = options["is_default"]
        try:
            with transaction.atomic():
                scope = Scope.objects.select_for_update().filter(name=name).first()
                created = scope is None
                if created:
                    if description is None:
                        raise CommandError("--description is required when creating a scope.")
                    scope = Scope(name=name, description=description, is_default=bool(is_default))
                elif not options["update"]:
                    raise CommandError(
                        f"Scope {name!r} already exists. Use --update to change its description "
                        "or default flag."
                    )
                else:
                    if description is not None:
                        scope.description = description
                    if is_default is not None:
                        scope.is_default = is_default
                scope.full_clean()
                scope.save()
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from exc
        except IntegrityError as exc:
            # Another process created the same scope between our lookup and the insert.
            raise CommandError(f"Scope {name!r} already exists.") from exc

        data = {
            "name": scope.name,
            "description": scope.description,
            "is_default": scope.is_default,
            "created": created,
        }
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        verb = "Created" if created else "Updated"
        default = " (default)" if scope.is_default else ""
        self.stdout.write(self.style.SUCCESS(f"{verb} scope {scope.name!r}{default}: {scope.description}"))
