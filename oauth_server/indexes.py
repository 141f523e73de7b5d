"""A migration operation that adds an index without blocking writes on PostgreSQL.

``CREATE INDEX`` holds a lock that blocks every INSERT, UPDATE and DELETE on the table while the
index builds: on a site with millions of tokens, token issuance would stop for that long.
``CREATE INDEX CONCURRENTLY`` does not block writes (it reads the table twice, so it takes longer) but
cannot run in a transaction, so migrations using it set ``atomic = False``. Django's own
``AddIndexConcurrently`` is PostgreSQL-only (it lives in ``django.contrib.postgres``); this one falls
back to a plain ``CREATE INDEX`` on the other databases, whose tables a concurrent build would not
help anyway (SQLite locks the whole database for any write). docs/performance.md has the choice.

If a concurrent build fails (a deadlock, a cancelled statement), PostgreSQL leaves an INVALID index
behind: drop it (``DROP INDEX CONCURRENTLY name``) and run ``migrate`` again.
"""

from __future__ import annotations

from django.db import migrations


class AddIndexConcurrentlyOnPostgreSQL(migrations.AddIndex):
    """``AddIndex``, built ``CONCURRENTLY`` on PostgreSQL; use in a migration with ``atomic = False``."""

    atomic = False

    def describe(self) -> str:
        return f"{super().describe()} (concurrently on PostgreSQL)"

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.add_index(model, self.index, concurrently=True)
        else:
            schema_editor.add_index(model, self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        model = from_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.remove_index(model, self.index, concurrently=True)
        else:
            schema_editor.remove_index(model, self.index)
