"""The refresh token grant (RFC 6749 6): rotated on every use, reuse revokes the family (validator).

Only meaningful next to a grant that issues refresh tokens (``needs_refresh_issuer``). Wrapped for
OpenID Connect so a refresh with ``openid`` in scope gets a new ID token (OIDC Core 12.2).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from oauthlib.oauth2.rfc6749.grant_types import RefreshTokenGrant
from oauthlib.openid.connect.core.grant_types import RefreshTokenGrant as OIDCRefreshTokenGrant

from .registry import GrantSpec

NAME = "refresh_token"


def carry_auth_time(request) -> dict:
    """Refresh: the new tokens keep the original authentication time (OIDC Core 12.2), which the
    refresh token carries from the authorization code; ``user.last_login`` would be another session's.
    """
    rt = getattr(request, "refresh_token_instance", None)
    request.auth_time = getattr(rt, "auth_time", None)
    return {}


class OpenIDRefreshGrant(OIDCRefreshTokenGrant):
    """The OIDC refresh grant around a given OAuth 2 refresh grant (oauthlib builds its own otherwise)."""

    def __init__(self, proxy_target: RefreshTokenGrant):
        self.proxy_target = proxy_target
        self.register_token_modifier(self.add_id_token)


def build(request_validator: Any) -> OpenIDRefreshGrant:
    grant = RefreshTokenGrant(request_validator)
    grant.custom_validators.post_token.append(carry_auth_time)
    return OpenIDRefreshGrant(grant)


GRANT = GrantSpec(
    name=NAME,
    member="REFRESH_TOKEN",
    label=_("Refresh token"),
    build=build,
    issues_refresh_token=True,
    needs_refresh_issuer=True,
    needs_refresh_issuer_message=_(
        "refresh_token only makes sense together with authorization_code or the device authorization grant."
    ),
)
