"""DOT scopes backend over the ``Scope`` table: the database, not settings, is the source of truth."""

from __future__ import annotations

from oauth2_provider.scopes import BaseScopes

from .models import Scope


def _client_scopes(application) -> list[tuple[str, bool]]:
    """(name, is_default) of the client's allowed scopes, cached on the instance for one request."""
    cached = getattr(application, "_oauth_server_scopes", None)
    if cached is None:
        cached = list(application.allowed_scopes.values_list("name", "is_default"))
        application._oauth_server_scopes = cached
    return cached


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
