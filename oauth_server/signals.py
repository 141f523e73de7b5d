"""Signals sites can listen to (audit forwarding, notifications)."""

import time

from django.contrib.auth.signals import user_logged_in
from django.dispatch import Signal, receiver

#: sent with ``user``, ``client`` and ``scopes`` when a user approves a client on the consent page
consent_granted = Signal()
#: sent with ``consent`` when a consent is revoked (admin, API or the user)
consent_revoked = Signal()
#: sent with ``client`` when a client's secret is rotated
client_secret_rotated = Signal()


SESSION_AUTH_TIME_KEY = "oauth_server_auth_time"


@receiver(user_logged_in)
def remember_auth_time(sender, request, user, **kwargs) -> None:
    """The session's authentication time, for max_age, prompt=login and the ID token's auth_time."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_AUTH_TIME_KEY] = int(time.time())
