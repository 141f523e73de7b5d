"""Signals sites can listen to (audit forwarding, notifications).

Declarations only: this app's own receivers (policy and audit trail) are in ``receivers.py``,
connected by ``apps.OAuthServerConfig.ready()``.
"""

from django.dispatch import Signal

#: sent with ``user``, ``client`` and ``scopes`` when a user approves a client on the consent page
consent_granted = Signal()
#: sent with ``consent`` when a consent is revoked (admin, API or the user)
consent_revoked = Signal()
#: sent with ``client`` when a client's secret is rotated
client_secret_rotated = Signal()
#: sent with ``grant``, ``client``, ``user`` and ``request`` (oauthlib's) when an already exchanged
#: authorization code is presented again; the tokens issued from it are already revoked
authorization_code_replayed = Signal()
#: sent with ``rotation`` (keys.Rotation: activated, retired, next, retire_after) after keys.rotate()
signing_key_rotated = Signal()
#: sent with ``event`` (an AuditEvent; unsaved with AUDIT_LOG="log-only") for every audit event:
#: at once for failures, when the transaction commits for successes (docs/audit.md)
audit_event = Signal()
#: sent with ``client`` and ``registration`` (a ClientRegistration) after a client registered itself
#: at the RFC 7591 endpoint (on commit)
client_registered = Signal()
#: sent with ``client``, ``registration`` and ``changed`` (field names) after an RFC 7592 update
client_registration_updated = Signal()
#: sent with ``client_id``, ``name`` and ``via`` ("rfc7592" or "purge") after a self-registered
#: client was deleted by its registrant or by ``purge_registrations``
client_registration_deleted = Signal()
