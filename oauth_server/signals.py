"""Signals sites can listen to (audit forwarding, notifications)."""

from django.dispatch import Signal

#: sent with ``user``, ``client`` and ``scopes`` when a user approves a client on the consent page
consent_granted = Signal()
#: sent with ``consent`` when a consent is revoked (admin, API or the user)
consent_revoked = Signal()
#: sent with ``client`` when a client's secret is rotated
client_secret_rotated = Signal()
