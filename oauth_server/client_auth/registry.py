"""The client-authentication registry: every way a client can prove who it is, described once.

A method is a ``ClientAuthMethod`` registered in ``oauth_server/client_auth/__init__.py``. The
registry parses a request's credentials (``credentials.py``: the validator, audit, rate limiter and
CORS all read that one object), authenticates a client with the method the request used, decides
whether that method is allowed for the client (``Client.token_endpoint_auth_method``), and tells
discovery which methods to advertise at which endpoint (``*_auth_methods_supported``). The admin,
the management API and ``create_oauth_client --auth-method`` offer ``choices()``.

Adding a method (``private_key_jwt``, say) is one class with ``extract`` and ``authenticate`` and
one ``registry.register`` call; nothing in audit, rate limiting or CORS changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from .credentials import NONE, ClientCredentials

# ``Client`` (oauth_server.models) in the signatures below; not imported: the model imports this package.
Client = Any

# Endpoints a method may be advertised for (RFC 8414 2: <endpoint>_auth_methods_supported).
TOKEN, INTROSPECTION, REVOCATION = "token_endpoint", "introspection_endpoint", "revocation_endpoint"
ALL_ENDPOINTS = frozenset({TOKEN, INTROSPECTION, REVOCATION})


class ClientAuthFailed(Exception):
    """Raised by ``authenticate`` to say why (``reason``: audited, never sent to the client)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ClientAuthMethod:
    """One client-authentication method (RFC 7591 ``token_endpoint_auth_method`` value).

    ``name``
        The registered value (``client_secret_basic``).
    ``label``
        Shown in the admin and ``create_oauth_client --help``.
    ``endpoints``
        Where it is advertised; introspection callers must authenticate, so ``none`` is not offered there.
    ``confidential``
        Whether a client using it is confidential (proves possession of a credential): a public
        client must be registered with ``none``, a confidential one with another method.
    ``asymmetric``
        Whether it proves a private key (no shared secret): security profiles allow only these.
    ``accepts``
        The registered methods this method satisfies. A client registered with
        ``client_secret_basic`` may also send its secret in the body (and the other way round): both
        prove the same secret, and client libraries choose between them on their own.
    """

    name: ClassVar[str]
    label: ClassVar[str] = ""
    endpoints: ClassVar[frozenset[str]] = ALL_ENDPOINTS
    confidential: ClassVar[bool] = True
    # Whether the client holds a shared secret (one is generated for it, Client.clean requires it).
    uses_secret: ClassVar[bool] = False
    # Whether the server must read the secret again to verify (an HMAC keyed by it, client_secret_jwt):
    # the secret is then also kept encrypted (Client.encrypted_client_secret, secret_encryption.py).
    secret_kept_encrypted: ClassVar[bool] = False
    # Whether the client registers public keys (Client.jwks or jwks_uri; Client.clean requires one).
    uses_keys: ClassVar[bool] = False
    # Whether the method proves possession of a private key the server never sees (private_key_jwt,
    # a site's tls_client_auth): the only methods a security profile such as FAPI 2.0 allows
    # (``profiles.asymmetric_methods``).
    asymmetric: ClassVar[bool] = False
    accepts: ClassVar[frozenset[str]] = frozenset()

    def extract(self, authorization: str, params: Mapping[str, str]) -> ClientCredentials | None:
        """The credentials if the request used this method's form, else None. Never raises."""
        raise NotImplementedError

    def authenticate(self, client: Client, credentials: ClientCredentials, request: Any) -> bool:
        """Whether the credentials prove ``client`` (already loaded from ``credentials.client_id``).

        May raise ``ClientAuthFailed(reason)`` instead of returning False, to name the reason in the
        audit trail (``invalid_secret`` otherwise).
        """
        raise NotImplementedError

    def metadata(self, endpoint: str) -> dict[str, Any]:
        """Extra discovery members for an endpoint this method is advertised at (RFC 8414 2)."""
        return {}

    def allowed_for(self, client: Client) -> bool:
        registered = client.token_endpoint_auth_method or default_method(client)
        return registered == self.name or registered in self.accepts


class AuthMethodRegistry:
    def __init__(self) -> None:
        self._methods: dict[str, ClientAuthMethod] = {}

    def register(self, method: ClientAuthMethod) -> ClientAuthMethod:
        if method.name in self._methods:
            raise ValueError(f"client authentication method {method.name!r} is already registered")
        self._methods[method.name] = method
        return method

    def unregister(self, name: str) -> None:
        self._methods.pop(name, None)

    def get(self, name: str) -> ClientAuthMethod | None:
        return self._methods.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._methods

    def __iter__(self) -> Iterator[ClientAuthMethod]:
        return iter(self._methods.values())

    def names(self, endpoint: str = TOKEN) -> list[str]:
        """The methods advertised for an endpoint, in registration order (discovery)."""
        return [m.name for m in self._methods.values() if endpoint in m.endpoints]

    def metadata(self) -> dict[str, Any]:
        """``<endpoint>_auth_methods_supported`` for each endpoint, and the methods' own members.

        Two methods may name the same list member (``private_key_jwt`` and ``client_secret_jwt``
        both add ``<endpoint>_auth_signing_alg_values_supported``): the lists are joined in order.
        """
        document: dict[str, Any] = {}
        for endpoint in (TOKEN, INTROSPECTION, REVOCATION):
            document[f"{endpoint}_auth_methods_supported"] = self.names(endpoint)
            for method in self._methods.values():
                if endpoint not in method.endpoints:
                    continue
                for name, value in method.metadata(endpoint).items():
                    if isinstance(value, list) and isinstance(document.get(name), list):
                        value = list(dict.fromkeys([*document[name], *value]))
                    document[name] = value
        return document

    def choices(self) -> list[tuple[str, str]]:
        return [(m.name, m.label or m.name) for m in self._methods.values()]

    def parse(self, authorization: str, params: Mapping[str, str]) -> ClientCredentials:
        """Credentials by the one method whose form the request used; ``conflict`` if several.

        A request with none of the forms is the ``none`` method: a client_id alone (a public client),
        or no client at all.
        """
        found = [
            c
            for m in self._methods.values()
            if m.name != NONE
            for c in [m.extract(authorization, params)]
            if c
        ]
        if len(found) > 1:
            claimed = next((c.client_id for c in found if c.client_id), "")
            return ClientCredentials(method=found[0].method, client_id=claimed, conflict=True)
        if found:
            return found[0]
        client_id = params.get("client_id") or ""
        return ClientCredentials(method=NONE, client_id=client_id if isinstance(client_id, str) else "")


def default_method(client: Client) -> str:
    """A client registered before methods were recorded: ``none`` if public, else the secret."""
    return "client_secret_basic" if client.is_confidential else NONE


registry = AuthMethodRegistry()


def parse(authorization: str, params: Mapping[str, str]) -> ClientCredentials:
    """Credentials from an ``Authorization`` header value and body parameters, by the registered methods."""
    return registry.parse(authorization, params)
