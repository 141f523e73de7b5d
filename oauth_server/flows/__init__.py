"""Operations: one function each that does the work in a transaction, sends this app's signal and
records the audit event, so the admin, the management API, the user's pages and the endpoints all
do the same thing (allauth's ``internal/flows``).

- ``clients``: rotate a client's secret, enable/disable clients, revoke every token of clients.
- ``consents``: remember what a user approved, withdraw a consent.
- ``tokens``: revoke one token (its grant), the token presented at the revocation endpoint, a
  user's tokens (at one client or everywhere), and the admin's single-credential revocations.

A flow's transaction is ``atomic(savepoint=False)``: inside a caller's transaction (an admin
action that also writes its change log) it adds no savepoint statements, and a failure rolls the
whole caller back. Flows decide nothing about permissions (the caller checks them) and write no
admin change log (``LogEntry`` is the admin's). The row-level primitives they call are in
``revocation.py``.
"""
