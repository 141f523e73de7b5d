"""DOT scopes backend over the ``Scope`` table: the database, not settings, is the source of truth."""

from __future__ import annotations

import re
from collections.abc import Iterable

from oauth2_provider.scopes import BaseScopes

from .models import Scope


def _client_scopes(application) -> list[tuple[str, bool]]:
    """(name, is_default) of the client's allowed scopes, cached on the instance for one request
    (``Client.scope_rows``: read with the client itself when the validator loaded it)."""
    return application.scope_rows()


class DatabaseScopes(BaseScopes):
    """A client may use only its allowed scopes; its defaults are the allowed ones marked default."""

    def get_all_scopes(self) -> dict[str, str]:
        return dict(Scope.objects.values_list("name", "description"))

    def get_available_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        if application is None:
            return list(Scope.objects.values_list("name", flat=True))
        return [name for name, _ in _client_scopes(application)]

    def get_default_scopes(self, application=None, request=None, *args, **kwargs) -> list[str]:
        if application is None:
            return list(Scope.objects.filter(is_default=True).values_list("name", flat=True))
        return [name for name, is_default in _client_scopes(application) if is_default]


# --- invalid_scope's error_description -----------------------------------------------------------
# RFC 6749 3.3 scope-token: what may be echoed back. error_description must be ASCII without '"' and
# '\' (RFC 6749 5.2); a value outside the grammar is counted, not shown. Scope names are at most 100
# characters (Scope.name), so a longer value is no scope either.
_SCOPE_TOKEN_RE = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]{1,100}")
MAX_NAMED = 10


def _named(singular: str, plural: str, names: list[str]) -> str:
    label = singular if len(names) == 1 else plural
    return f"{label}: {' '.join(names)}"


def describe_refused_scopes(
    requested: Iterable[str], allowed: Iterable[str], granted: Iterable[str] | None = None
) -> str | None:
    """The ``error_description`` of an ``invalid_scope`` answer, or None when nothing is refused.

    Names each refused scope and why: unknown on this server, not allowed for this client, or (a
    refresh, ``granted`` given) not in the grant the refresh token carries. Only names the client
    sent are shown, so nothing leaks: not the client's allowed scopes, not the other scopes that exist.
    """
    allowed = set(allowed)
    granted = None if granted is None else set(granted)
    refused = [
        name
        for name in dict.fromkeys(requested)
        if name not in allowed or (granted is not None and name not in granted)
    ]
    if not refused:
        return None
    shown = [name for name in refused if _SCOPE_TOKEN_RE.fullmatch(name)][:MAX_NAMED]
    existing = set(Scope.objects.filter(name__in=shown).values_list("name", flat=True))
    unknown = [name for name in shown if name not in existing]
    not_allowed = [name for name in shown if name in existing and name not in allowed]
    not_granted = [name for name in shown if name in allowed]
    parts = []
    if unknown:
        parts.append(_named("Unknown scope", "Unknown scopes", unknown))
    if not_allowed:
        parts.append(
            _named("Scope not allowed for this client", "Scopes not allowed for this client", not_allowed)
        )
    if not_granted:
        parts.append(_named("Scope not originally granted", "Scopes not originally granted", not_granted))
    if len(refused) > len(shown):
        parts.append(f"{len(refused) - len(shown)} more refused (malformed or not shown)")
    text = ". ".join(parts) + "."
    if any("," in name for name in unknown):
        text += " Separate scopes with spaces, not commas."
    return text
