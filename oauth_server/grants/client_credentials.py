"""The client credentials grant (RFC 6749 4.4): confidential clients only, never a refresh token."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from oauthlib.oauth2.rfc6749.grant_types import ClientCredentialsGrant

from .registry import GrantSpec

NAME = "client_credentials"


def build(request_validator: Any) -> ClientCredentialsGrant:
    return ClientCredentialsGrant(request_validator)


GRANT = GrantSpec(
    name=NAME,
    member="CLIENT_CREDENTIALS",
    label=_("Client credentials"),
    build=build,
    public_clients=False,
    confidential_only_message=_("Only confidential clients may use client_credentials."),
    dot_grant="client-credentials",  # AbstractApplication.GRANT_CLIENT_CREDENTIALS
)
