"""The only place where the Demo Web App (``client_views.py``) looks at the provider's side.

A real third-party application would know these from its registration with the server (its
configuration); the demo reads them from the demo's fixed data (``seed.py``) and, for the
"not seeded yet" page, from the provider's client table. Everything else the app learns from the
server over HTTP (``rp.py``).
"""

from __future__ import annotations

from oauth_server.conf import settings as oauth_settings
from oauth_server.models import Client

from . import seed
from .rp import Credentials

WEB_APP = Credentials(client_id=seed.WEB_APP.client_id, client_secret=seed.WEB_APP.client_secret or "")
SCOPE = seed.CLIENT_APP_SCOPE
SPA_CLIENT_ID = seed.SPA.client_id


def web_app_redirect_uri(here: str) -> str | None:
    """The redirect URI to send: ``here`` (this host's callback, 127.0.0.1 vs localhost) if it is
    registered, else the first registered one; None when the Demo Web App is not registered and
    enabled (``seed_demo`` has not run) or has no redirect URI."""
    client = Client.objects.filter(client_id=WEB_APP.client_id, is_enabled=True).first()
    if client is None or not client.redirect_uri_list:
        return None
    return here if client.redirect_uri_allowed(here) else client.redirect_uri_list[0]


def authorization_code_lifetime() -> int:
    """Seconds a code stays usable: shown on the page of a code this app did not ask for."""
    return oauth_settings.AUTHORIZATION_CODE_LIFETIME
