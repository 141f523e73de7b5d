"""Client authentication: the registry of methods and the request's parsed credentials.

``registry.py`` describes the methods; ``methods.py`` holds the built-in ones, registered here;
``credentials.py`` holds the parsed form (``ClientCredentials``); ``registry.parse`` makes it; a
request's credentials, parsed once, are ``request_state.credentials_of(request)``. The model imports
this package, so it imports no module that imports the model (only settings, ``client_keys``,
``replay``, ``secret_encryption``). See docs/architecture.md, "Where to add a client-authentication method".
"""

from .client_secret_jwt import ClientSecretJWT
from .credentials import ClientCredentials
from .methods import ClientSecretBasic, ClientSecretPost, NoAuthentication
from .private_key_jwt import PrivateKeyJWT
from .registry import AuthMethodRegistry, ClientAuthFailed, ClientAuthMethod, default_method, parse, registry

registry.register(ClientSecretBasic())
registry.register(ClientSecretPost())
registry.register(PrivateKeyJWT())
registry.register(ClientSecretJWT())
registry.register(NoAuthentication())

__all__ = [
    "AuthMethodRegistry",
    "ClientAuthFailed",
    "ClientAuthMethod",
    "ClientCredentials",
    "default_method",
    "parse",
    "registry",
]
