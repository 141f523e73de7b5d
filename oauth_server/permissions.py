"""Who may change a client, and who may give it a secret: one rule for the admin and the API.

Django's ``change_client`` is not enough for two powers (``Client.Meta.permissions``):

- ``manage_trusted_client``: create a client that skips the consent screen, turn ``skip_consent``
  on, or change in any way a client that has it: such a client gets codes for any user without
  asking them, so changing its redirect URI is as good as taking over those users' accounts;
- ``issue_client_secret``: give an existing client a new secret (rotate it, or turn a public client
  confidential): whoever reads it becomes that client, with its consents, its ``skip_consent`` and
  its service account's permissions in the management API.

Superusers hold every permission (``has_perm``).
"""

from __future__ import annotations

from typing import Any

from .models import Client

MANAGE_TRUSTED_CLIENT = f"{Client._meta.app_label}.manage_trusted_client"
ISSUE_CLIENT_SECRET = f"{Client._meta.app_label}.issue_client_secret"
CHANGE_CLIENT = f"{Client._meta.app_label}.change_client"


def may_set_skip_consent(user: Any) -> bool:
    """Whether ``user`` may create or change a client so that it skips the consent screen."""
    return bool(user and user.has_perm(MANAGE_TRUSTED_CLIENT))


def may_change_client(user: Any, client: Client | None) -> bool:
    """``change_client``, plus ``manage_trusted_client`` for a client that skips consent."""
    if not (user and user.has_perm(CHANGE_CLIENT)):
        return False
    return client is None or not client.skip_consent or may_set_skip_consent(user)


def may_issue_secret(user: Any, client: Client | None) -> bool:
    """Whether ``user`` may give ``client`` (an existing client) a new secret."""
    return may_change_client(user, client) and user.has_perm(ISSUE_CLIENT_SECRET)
