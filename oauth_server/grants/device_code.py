"""The device authorization grant (RFC 8628): a device with no browser (a CLI, a TV) gets tokens
after its user approves on another device.

Three parts, one registration:

- the device authorization endpoint (``POST /oauth/device_authorization/``, RFC 8628 3.1-3.2) and
  the verification page (``/oauth/device/``, 3.3), both in ``views/device.py``, mounted through
  ``urls`` and advertised through ``metadata`` (``device_authorization_endpoint``);
- the token handler (``grants/handlers/device_code.py``) for
  ``grant_type=urn:ietf:params:oauth:grant-type:device_code`` (3.4-3.5): client authentication as
  at every token request (a public client names itself with ``client_id``, the ``none`` method),
  then ``device.redeemable`` (pending, slow_down, denied,
  expired, single use) and the tokens; refresh tokens as for the code flow.

oauthlib's own ``DeviceCodeGrant`` checks no device code at all (it leaves that to the caller), and
DOT's token view answers the polling itself before authenticating the client; neither is used
(docs/device.md).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .registry import GrantSpec

NAME = "urn:ietf:params:oauth:grant-type:device_code"
HANDLERS = "oauth_server.grants.handlers.device_code"

GRANT = GrantSpec(
    name=NAME,
    member="DEVICE_CODE",
    label=_("Device authorization (RFC 8628)"),
    build=f"{HANDLERS}.build",
    issues_refresh_token=True,
    urls=f"{HANDLERS}.urls",
    metadata=f"{HANDLERS}.metadata",
)
