"""Client authentication: the registry of methods and the request's parsed credentials.

``registry.py`` describes the methods; ``methods.py`` holds the built-in ones, registered here;
``credentials.py`` holds the parsed form (``ClientCredentials``) and ``parse``; a request's
credentials, parsed once, are ``request_state.credentials_of(request)``. The package imports no
other module of the app (the model imports it). See docs/architecture.md, "Where to add a
client-authentication method".
"""

from .credentials import ClientCredentials
from .methods import ClientSecretBasic, ClientSecretPost, NoAuthentication
from .registry import AuthMethodRegistry, ClientAuthMethod, default_method, parse, registry

registry.register(ClientSecretBasic())
registry.register(ClientSecretPost())
registry.register(NoAuthentication())

__all__ = [
    "AuthMethodRegistry",
    "ClientAuthMethod",
    "ClientCredentials",
    "default_method",
    "parse",
    "registry",
]
