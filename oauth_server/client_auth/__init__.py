"""Client authentication: the registry of methods and the request's parsed credentials.

``registry.py`` describes the methods; ``methods.py`` holds the built-in ones, registered here;
``credentials.py`` parses a request's credentials once (``credentials_of``). See
docs/architecture.md, "Where to add a client-authentication method".
"""

from .credentials import ClientCredentials, credentials_of, parse
from .methods import ClientSecretBasic, ClientSecretPost, NoAuthentication
from .registry import AuthMethodRegistry, ClientAuthMethod, default_method, registry

registry.register(ClientSecretBasic())
registry.register(ClientSecretPost())
registry.register(NoAuthentication())

__all__ = [
    "AuthMethodRegistry",
    "ClientAuthMethod",
    "ClientCredentials",
    "credentials_of",
    "default_method",
    "parse",
    "registry",
]
