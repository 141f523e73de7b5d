"""The built-in client-authentication methods (RFC 6749 2.3.1, RFC 7591 2)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from django.utils.translation import gettext_lazy as _

from .credentials import NONE, ClientCredentials
from .registry import INTROSPECTION, REVOCATION, TOKEN, ClientAuthMethod

SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})


class ClientSecretBasic(ClientAuthMethod):
    """HTTP Basic with the form-urlencoded client_id and secret (RFC 6749 2.3.1)."""

    name = "client_secret_basic"
    label = _("Client secret, HTTP Basic (client_secret_basic)")
    accepts = SECRET_METHODS
    uses_secret = True

    def extract(self, authorization: str, params: Mapping[str, str]) -> ClientCredentials | None:
        scheme, _sep, value = authorization.strip().partition(" ")
        if scheme.lower() != "basic":  # auth-schemes are case-insensitive (RFC 9110 11.1)
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return ClientCredentials(method=self.name, malformed=True)
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            return ClientCredentials(method=self.name, malformed=True)
        return ClientCredentials(
            method=self.name, client_id=unquote_plus(client_id), secret=unquote_plus(secret)
        )

    def authenticate(self, client: Any, credentials: ClientCredentials, request: Any) -> bool:
        return bool(credentials.secret) and client.check_secret(credentials.secret)


class ClientSecretPost(ClientSecretBasic):
    """client_id and client_secret in the form body (RFC 6749 2.3.1, NOT RECOMMENDED but common)."""

    name = "client_secret_post"
    label = _("Client secret in the request body (client_secret_post)")

    def extract(self, authorization: str, params: Mapping[str, str]) -> ClientCredentials | None:
        secret = params.get("client_secret")
        if not secret:
            return None
        return ClientCredentials(method=self.name, client_id=params.get("client_id") or "", secret=secret)


class NoAuthentication(ClientAuthMethod):
    """A public client: client_id alone (RFC 6749 2.1); PKCE protects its codes."""

    name = NONE
    label = _("None: a public client (none)")
    endpoints = frozenset({TOKEN, REVOCATION})
    confidential = False

    def extract(self, authorization: str, params: Mapping[str, str]) -> ClientCredentials | None:
        return None  # the registry's fallback when no other method's form was used

    def authenticate(self, client: Any, credentials: ClientCredentials, request: Any) -> bool:
        return not client.is_confidential


__all__ = ["INTROSPECTION", "ClientSecretBasic", "ClientSecretPost", "NoAuthentication", "SECRET_METHODS"]
