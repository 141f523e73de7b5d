"""The grant registry: every grant the server knows, described once.

A grant is a ``GrantSpec`` registered in ``oauth_server/grants/__init__.py``. Everything that used to
list grants by hand reads the registry instead: the oauthlib server (``server.OAuth2Server`` builds
its token and authorization endpoints from it), discovery (``grant_types_supported``,
``response_types_supported``), DOT's advertised defaults (``conf.dot_defaults``), the client model
(``GrantType`` choices, ``Client.clean``, ``Client.allows_grant_type``), the validator
(``validate_response_type``, ``save_bearer_token``), and through ``GrantType`` the admin form and
filter, the management API and ``create_oauth_client --grant-type``.

This module imports neither Django models nor the server: the settings module reads it while the app
registry is still loading (``conf.dot_defaults``), and the model module builds ``GrantType`` from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

# oauthlib grant handler (a ``GrantTypeBase``) built for one request validator.
HandlerFactory = Callable[[Any], Any]


@dataclass(frozen=True)
class GrantSpec:
    """One grant: its wire name, how oauthlib serves it, and the client rules it brings.

    ``name``
        The ``grant_type`` value at the token endpoint (RFC 6749 4.1.3, or an absolute URI such as
        ``urn:ietf:params:oauth:grant-type:device_code``) and the value stored in
        ``Client.grant_types``.
    ``member``
        The ``GrantType`` enum member name (``GrantType.AUTHORIZATION_CODE``); needed because a URN is
        not an identifier.
    ``label``
        Shown in the admin and the management API (translatable).
    ``build``, ``urls``, ``metadata``
        Each a callable or the import path of one (``"oauth_server.grants.handlers.device_code.build"``).
        A grant whose handler needs the models names it by path: the registry is read by the model
        and the settings, so a spec module imports nothing of the app (no import cycle), and the
        handler module is imported when the server is built.
    ``build``
        ``build(request_validator)`` returns the oauthlib handler (already wrapped for OpenID Connect
        if it issues ID tokens). One handler per grant and server, shared by its token endpoint
        ``grant_type`` and its authorization endpoint ``response_types``. ``None``: the grant has no
        oauthlib handler (it is then neither served nor advertised at the token endpoint).
    ``token_endpoint``
        Served at the token endpoint under ``name`` and listed in ``grant_types_supported``.
    ``response_types``
        Authorization-endpoint ``response_type`` values this grant's handler serves (``("code",)``),
        listed in ``response_types_supported``.
    ``public_clients``
        Whether a public client (no secret, RFC 6749 2.1) may hold this grant; ``False`` makes
        ``Client.clean`` refuse it with ``confidential_only_message``.
    ``issues_refresh_token``
        Whether its token responses may carry a refresh token (to a client that also holds
        ``refresh_token``); the validator drops one from any other grant.
    ``needs_refresh_issuer``
        Only meaningful together with a grant that ``issues_refresh_token`` (the refresh grant
        itself); ``Client.clean`` refuses it alone with ``needs_refresh_issuer_message``.
    ``dot_grant``
        DOT's ``AbstractApplication.GRANT_*`` constant for this grant, if DOT has one: DOT code calls
        ``allows_grant_type`` with those, and fills ``authorization_grant_type`` from them.
    ``urls``
        Hook for a grant with an endpoint of its own (RFC 8628's device authorization endpoint):
        returns URL patterns appended to ``oauth_server.urls`` (wrapped by the module itself with
        ``headers``/``cors``/``ratelimit`` like the other endpoints).
    ``metadata``
        Hook: ``metadata(request)`` returns extra discovery members (``device_authorization_endpoint``),
        merged into both metadata documents.
    """

    name: str
    member: str
    label: Any
    build: HandlerFactory | str | None = None
    token_endpoint: bool = True
    response_types: tuple[str, ...] = ()
    public_clients: bool = True
    issues_refresh_token: bool = False
    needs_refresh_issuer: bool = False
    dot_grant: str = ""
    urls: Callable[[], list] | str | None = None
    metadata: Callable[[Any], Mapping[str, Any]] | str | None = None
    confidential_only_message: Any = field(default=_("Only confidential clients may use this grant type."))
    needs_refresh_issuer_message: Any = field(
        default=_("refresh_token needs a grant type that issues refresh tokens.")
    )


class GrantRegistry:
    """Grants by name, in registration order (the order of discovery lists and admin choices)."""

    def __init__(self) -> None:
        self._specs: dict[str, GrantSpec] = {}

    def register(self, spec: GrantSpec) -> GrantSpec:
        """Add a grant; a name, member or response type registered twice is a programming error."""
        if spec.name in self._specs:
            raise ValueError(f"Grant type {spec.name!r} is already registered.")
        if spec.member in {other.member for other in self._specs.values()}:
            raise ValueError(f"GrantType member {spec.member!r} is already registered.")
        taken = set(spec.response_types) & {
            rt for other in self._specs.values() for rt in other.response_types
        }
        if taken:
            raise ValueError(f"Response types {sorted(taken)} are already served by another grant.")
        self._specs[spec.name] = spec
        return spec

    def get(self, name: str | None) -> GrantSpec | None:
        return self._specs.get(name) if isinstance(name, str) else None

    def all(self) -> list[GrantSpec]:
        return list(self._specs.values())

    def __iter__(self) -> Iterator[GrantSpec]:
        return iter(self.all())

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def names(self) -> list[str]:
        """Every grant a client may hold (the ``GrantType`` values)."""
        return list(self._specs)

    def token_grant_types(self) -> list[str]:
        """``grant_type`` values served at the token endpoint: discovery's ``grant_types_supported``."""
        return [s.name for s in self._specs.values() if s.token_endpoint and s.build is not None]

    def response_types(self) -> list[str]:
        """``response_type`` values served at the authorization endpoint."""
        return [rt for s in self._specs.values() if s.build is not None for rt in s.response_types]

    def for_response_type(self, response_type: str | None) -> GrantSpec | None:
        return next((s for s in self._specs.values() if response_type in s.response_types), None)

    def choices(self) -> list[tuple[str, tuple[str, Any]]]:
        """``(member, (value, label))`` pairs: the functional-API input of ``models.TextChoices``."""
        return [(s.member, (s.name, s.label)) for s in self._specs.values()]

    def from_dot_grant(self, dot_grant: str) -> str:
        """Our grant name for DOT's constant (``authorization-code``); other values pass through."""
        return next((s.name for s in self._specs.values() if s.dot_grant == dot_grant != ""), dot_grant)

    def primary_dot_grant(self, grant_types: Iterable[str]) -> str:
        """DOT's one ``authorization_grant_type`` for our list: the first registered grant DOT knows."""
        held = list(grant_types or [])
        return next((s.dot_grant for s in self._specs.values() if s.dot_grant and s.name in held), "")

    def client_errors(self, grant_types: Iterable[str], confidential: bool) -> list[Any]:
        """The rules the grants put on a client's list, as messages (``Client.clean``).

        Unknown names are reported by the caller (with the names); these are the per-grant rules:
        first the grants refused to public clients, then the grants that need a refresh issuer.
        """
        specs = [spec for name in dict.fromkeys(grant_types or []) if (spec := self.get(name)) is not None]
        messages: list[Any] = []
        if not confidential:
            messages += [s.confidential_only_message for s in specs if not s.public_clients]
        for spec in specs:
            if spec.needs_refresh_issuer and not any(
                other.issues_refresh_token for other in specs if other is not spec
            ):
                messages.append(spec.needs_refresh_issuer_message)
        return messages

    def handlers(self, request_validator: Any) -> dict[str, Any]:
        """One oauthlib handler per grant that has one, by grant name (``server.OAuth2Server``)."""
        return {
            s.name: _hook(s.build)(request_validator) for s in self._specs.values() if s.build is not None
        }

    def urlpatterns(self) -> list:
        """URL patterns of grants with their own endpoints (hook: the device grant's endpoint and page)."""
        return [pattern for s in self._specs.values() if s.urls is not None for pattern in _hook(s.urls)()]

    def metadata(self, request: Any) -> dict[str, Any]:
        """Extra discovery members contributed by grants (hook: ``device_authorization_endpoint``)."""
        extra: dict[str, Any] = {}
        for spec in self._specs.values():
            if spec.metadata is not None:
                extra.update(_hook(spec.metadata)(request))
        return extra


def _hook(value: Any) -> Any:
    """A spec's hook: the callable itself, or the one its import path names (imported on first use)."""
    return import_string(value) if isinstance(value, str) else value
