"""Deleting rows that expired: the small pieces ``manage.py purge_expired`` runs on a schedule.

Each kind of short-lived row has its own ``purge_expired`` next to the code that creates it
(``device.purge_expired``, ``par.purge_expired``); they all delete through ``delete_in_batches``,
so a backlog of millions never becomes one huge transaction or one long lock. DOT's own tokens and
codes are DOT's ``cleartokens`` (batched by ``CLEAR_EXPIRED_TOKENS_BATCH_SIZE``), which the command
runs first.
"""

from __future__ import annotations

from django.db.models import QuerySet

# Rows per DELETE: small enough for short transactions, large enough to keep round trips few.
DEFAULT_BATCH_SIZE = 5000


def delete_in_batches(queryset: QuerySet, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Delete what ``queryset`` selects, ``batch_size`` primary keys per DELETE; how many rows.

    Each batch is re-selected from the queryset's filter, so rows that stopped matching meanwhile
    are left alone and rows that started matching are deleted too. Cascaded rows are not counted.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be 1 or more.")
    model = queryset.model
    deleted = 0
    while True:
        batch = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not batch:
            return deleted
        deleted += model._base_manager.filter(pk__in=batch).delete()[1].get(model._meta.label, 0)
