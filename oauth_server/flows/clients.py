"""Client operations: rotate a secret, enable or disable clients, revoke every token of clients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from .. import audit, signals
from ..models import Client
from ..revocation import revoke_tokens


def secret_rotated(client: Client) -> None:
    """Announce a new secret once the transaction commits (``client_secret_rotated``; its receiver
    records the audit event). For saves that set the secret themselves: the admin form and the
    API turning a public client confidential set it before validation, which requires one."""
    transaction.on_commit(lambda: signals.client_secret_rotated.send(sender=Client, client=client))


def rotate_secret(client: Client) -> str:
    """Give a confidential client a new generated secret; store its hash (and, for client_secret_jwt,
    its encryption), return it in clear.

    The old secret stops working at once. Issued tokens are left alone (as in Hydra and Keycloak):
    revoke them separately if the secret leaked. The caller checks that the client is confidential.
    """
    with transaction.atomic(savepoint=False):
        raw = client.set_secret()
        client.save(update_fields=["client_secret", "encrypted_client_secret", "updated"])
        secret_rotated(client)
    return raw


def set_enabled(clients: QuerySet, enabled: bool, *, request: Any = None) -> list[Client]:
    """Enable or disable clients in bulk; returns those whose flag changed.

    One ``update()``, which sends no ``post_save``: so the ``client_updated`` event is recorded
    here, and disabling revokes here what ``receivers.revoke_tokens_of_disabled_client`` revokes
    when a single client is saved disabled.
    """
    changed = list(clients.exclude(is_enabled=enabled))
    if not changed:
        return changed
    pks = [client.pk for client in changed]
    with transaction.atomic(savepoint=False):
        Client.objects.filter(pk__in=pks).update(is_enabled=enabled, updated=timezone.now())
        for client in changed:
            audit.record(audit.Event.CLIENT_UPDATED, request=request, client=client, changed=["is_enabled"])
        if not enabled:
            revoke_tokens(client=Client.objects.filter(pk__in=pks))
    return changed


def revoke_client_tokens(clients: Iterable[Client], *, via: str, request: Any = None) -> int:
    """Revoke every live token and unexchanged code of these clients, one ``token_revoked`` event
    a client; returns how many tokens and codes."""
    clients = list(clients)
    with transaction.atomic(savepoint=False):
        count = revoke_tokens(client=Client.objects.filter(pk__in=[client.pk for client in clients]))
        for client in clients:
            audit.record(audit.Event.TOKEN_REVOKED, request=request, client=client, via=via, scope="client")
    return count
