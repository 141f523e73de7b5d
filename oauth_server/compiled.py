"""Hot-path lookups whose SQL Django compiles once per connection instead of once per request.

Profiles of the token, introspection and revocation endpoints (issue 15, docs/performance.md) put
Django's query *compilation* at about a millisecond per ``select_related`` lookup: resolving
sixty-odd columns, quoting each name, building converters. That costs more than PostgreSQL's
answer. The shape of those lookups never changes, only the value looked up (a ``client_id``, a
token checksum), so ``CompiledLookup`` lets Django compile the queryset once, with a marker value in
place of each parameter, keeps the SQL, the parameter positions, the column layout and the
converters on the connection, and then per request runs that SQL with the real values and builds
the instances the way Django's ``ModelIterable`` does (``Model.from_db``, the related populators of
``select_related``, annotations).

On PostgreSQL (psycopg 3) the statement also goes through a server-binding cursor, so psycopg
prepares it once per connection and PostgreSQL stops
parsing and planning it each time: planning these joins costs more than running them
(``PREPARED_LOOKUPS``, on by default; off behind a PgBouncer older than 1.21 in transaction mode).

What it keeps from the ORM: the SQL is Django's (database routers, quoting, ``LIMIT``, the backend's
dialect), the cursor is the connection's (``execute_wrapper``, ``assertNumQueries``, query logging
with ``DEBUG``), values come back through the fields' converters, and instances are ordinary model
instances. What it assumes: each marker reaches the SQL parameters unchanged. If one does not (a
lookup that transforms its value, a value inlined into the SQL), the lookup is refused when it is
compiled and every call goes through the ORM as before: slower, never wrong.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, models, router, transaction
from django.db.models import sql as django_sql
from django.db.models.query import get_related_populators
from django.db.models.signals import post_save, pre_save

from .conf import settings

M = TypeVar("M", bound=models.Model)

_ids = itertools.count()
PREPARE_THRESHOLD = 5  # psycopg's default; PreparingCursor asks for preparation at once anyway


@dataclass(frozen=True)
class _Plan:
    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, str], ...]  # parameter position -> name of the value it takes
    model: type[models.Model]
    init_list: list[str]
    start: int
    end: int
    related_populators: list[Any]
    annotation_col_map: dict[str, int]
    converters: dict[int, Any]
    compiler: Any  # bound to this plan's connection: apply_converters passes it to the fields


class CompiledLookup(Generic[M]):
    """``build(**markers)`` is a queryset; ``first(**values)`` is its first row with those values.

    ``build`` must return the same shape for any values: filters on the named values, the same
    ``select_related``, annotations and slice every time.
    """

    def __init__(self, build: Callable[..., models.QuerySet], *names: str) -> None:
        self.build = build
        self.names = names
        self._key = f"_oauth_server_compiled_{next(_ids)}"
        self._model: type[models.Model] | None = None
        self._for_write = False

    def first(self, **values: Any) -> M | None:
        for obj in self.all(**values):
            return obj
        return None

    def all(self, **values: Any) -> list[M]:
        if self._model is None:
            queryset = self.build(**values)
            self._model, self._for_write = queryset.model, queryset._for_write
        # As QuerySet.db decides: a locking read (select_for_update) goes to the database written to.
        db = router.db_for_write(self._model) if self._for_write else router.db_for_read(self._model)
        connection = connections[db]
        plans = connection.__dict__.setdefault("_oauth_server_compiled", {})
        plan = plans.get(self._key)
        if plan is None:
            plan = plans[self._key] = self._compile(db) or False
        if plan is False:
            return list(self.build(**values))
        return self._run(plan, db, connection, values)

    def _compile(self, db: str) -> _Plan | None:
        markers = {name: f"\x1fcompiled-lookup-{self._key}-{name}\x1f" for name in self.names}
        queryset = self.build(**markers)
        if queryset.db != db or queryset._known_related_objects or queryset._prefetch_related_lookups:
            return None
        compiler = queryset.query.get_compiler(using=db)
        try:
            sql, params = compiler.as_sql()
        except Exception:  # noqa: BLE001 - e.g. EmptyResultSet: nothing to reuse, the ORM decides
            return None
        by_marker = {marker: name for name, marker in markers.items()}
        slots = tuple(
            (i, by_marker[p]) for i, p in enumerate(params) if isinstance(p, str) and p in by_marker
        )
        if {name for _, name in slots} != set(self.names) or "compiled-lookup-" in sql:
            return None  # a value was transformed or inlined: the ORM it is
        if sum("compiled-lookup-" in str(p) for p in params) != len(slots):
            return None
        select, klass_info = compiler.select, compiler.klass_info
        if klass_info is None or compiler.has_extra_select:
            return None
        select_fields = klass_info["select_fields"]
        start, end = select_fields[0], select_fields[-1] + 1
        fields = [s[0] for s in select[0 : compiler.col_count]]
        return _Plan(
            sql=sql,
            params=tuple(params),
            slots=slots,
            model=klass_info["model"],
            init_list=[f[0].target.attname for f in select[start:end]],
            start=start,
            end=end,
            related_populators=get_related_populators(klass_info, select, db),
            annotation_col_map=dict(compiler.annotation_col_map or {}),
            converters=compiler.get_converters(fields),
            compiler=compiler,
        )

    @staticmethod
    def _run(plan: _Plan, db: str, connection: Any, values: dict[str, Any]) -> list[Any]:
        params = list(plan.params)
        for position, name in plan.slots:
            params[position] = values[name]
        with _cursor(connection) as cursor:
            cursor.execute(plan.sql, params)
            rows = cursor.fetchall()
        if plan.converters:
            rows = plan.compiler.apply_converters(rows, plan.converters)
        found = []
        for row in rows:
            obj = plan.model.from_db(db, plan.init_list, row[plan.start : plan.end])
            for populator in plan.related_populators:
                populator.populate(row, obj)
            for name, position in plan.annotation_col_map.items():
                setattr(obj, name, row[position])
            found.append(obj)
        return found


class LockingLookup(Generic[M]):
    """A row to change: ``SELECT ... FOR UPDATE OF`` (the rows ``of`` names) inside a transaction,
    the same read without the lock outside one (where Django refuses a locking read; SQLite ignores
    the lock and serializes writers instead, docs/hardening.md). Each variant compiled once."""

    def __init__(self, build: Callable[..., models.QuerySet], *names: str, of: tuple[str, ...] = ("self",)):
        self.locked: CompiledLookup[M] = CompiledLookup(
            lambda **v: build(**v).select_for_update(of=of), *names
        )
        self.plain: CompiledLookup[M] = CompiledLookup(build, *names)
        self._model: type[models.Model] | None = None

    def _variant(self, values: dict[str, Any]) -> CompiledLookup[M]:
        if self._model is None:
            self._model = self.plain.build(**values).model
        in_transaction = not transaction.get_autocommit(using=router.db_for_write(self._model))
        return self.locked if in_transaction else self.plain

    def all(self, **values: Any) -> list[M]:
        return self._variant(values).all(**values)

    def first(self, **values: Any) -> M | None:
        return self._variant(values).first(**values)


@dataclass(frozen=True)
class _InsertPlan:
    sql: str
    fields: tuple[Any, ...]
    returning_fields: tuple[Any, ...]
    converters: dict[int, Any]
    compiler: Any


def insert(obj: models.Model) -> None:
    """``obj.save()`` for a new row, with the ``INSERT`` built once per connection (and prepared on
    PostgreSQL): the same ``pre_save``/``post_save`` signals, ``auto_now_add`` values, primary key
    and database state afterwards.

    For the rows every token request writes (the access token, its audit event): building the
    ``INSERT`` cost about as much as sending it. Anything this does not reproduce exactly goes
    through ``obj.save()``: a model with its own ``save()``, inheritance, proxies, an existing
    primary key, fields with their own SQL placeholders or database defaults; an expression as a
    value (set before or by a ``pre_save`` receiver) has its INSERT built by Django.
    """
    model = type(obj)
    meta = model._meta
    db = router.db_for_write(model, instance=obj)
    connection = connections[db]
    if (
        model.save is not models.Model.save
        or model.save_base is not models.Model.save_base
        or meta.proxy
        or meta.parents
        or meta.auto_field is None
        or obj.pk is not None
        or not obj._state.adding
        or not connection.features.can_return_columns_from_insert
    ):
        obj.save()
        return
    plans = connection.__dict__.setdefault("_oauth_server_compiled", {})
    key = ("insert", meta.label)
    plan = plans.get(key)
    if plan is None:
        plan = plans[key] = _compile_insert(model, db) or False
    if not plan:
        obj.save()
        return
    obj._prepare_related_fields_for_save(operation_name="save")
    pre_save.send(sender=model, instance=obj, raw=False, using=db, update_fields=None)
    # After the signal, as save() does: a receiver may still change the values.
    values = [f.pre_save(obj, add=True) for f in plan.fields]
    with transaction.mark_for_rollback_on_error(using=db):
        if any(hasattr(value, "resolve_expression") for value in values):
            # An expression (Now(), a subquery...) has SQL of its own: Django builds this INSERT.
            rows = model._base_manager._insert(
                [obj], fields=list(plan.fields), returning_fields=list(plan.returning_fields), using=db
            )
        else:
            params = [
                f.get_db_prep_save(v, connection=connection) for f, v in zip(plan.fields, values, strict=True)
            ]
            with _cursor(connection) as cursor:
                cursor.execute(plan.sql, params)
                rows = [cursor.fetchone()]
            if plan.converters:
                rows = list(plan.compiler.apply_converters(rows, plan.converters))
    for value, field in zip(rows[0], plan.returning_fields, strict=True):
        setattr(obj, field.attname, value)
    obj._state.db = db
    obj._state.adding = False
    post_save.send(sender=model, instance=obj, created=True, update_fields=None, raw=False, using=db)


def _compile_insert(model: type[models.Model], db: str) -> _InsertPlan | None:
    """What Model._save_table would send for a new row of ``model``, as one reusable statement
    (compiled from a blank instance: the values are parameters, whatever they are)."""
    meta = model._meta
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field and not f.generated]
    if any(getattr(f, "get_placeholder", None) for f in fields):
        return None
    returning_fields = list(meta.db_returning_fields)
    query = django_sql.InsertQuery(model)
    query.insert_values(fields, [model()])
    compiler = query.get_compiler(using=db)
    compiler.returning_fields = returning_fields
    statements = compiler.as_sql()
    if len(statements) != 1:
        return None
    sql, params = statements[0]
    if len(params) != len(fields) or compiler.returning_params:
        return None
    columns = [f.get_col(meta.db_table) for f in returning_fields]
    return _InsertPlan(
        sql=sql,
        fields=tuple(fields),
        returning_fields=tuple(returning_fields),
        converters=compiler.get_converters(columns),
        compiler=compiler,
    )


@contextlib.contextmanager
def _cursor(connection: Any) -> Iterator[Any]:
    """The connection's cursor (wrappers, logging, ``execute_wrapper`` included); on PostgreSQL with
    psycopg 3, around a server-binding cursor kept on the connection, so that psycopg may prepare
    the statement (module docstring) and no cursor is built per statement."""
    kept = _prepared_cursor(connection)
    if kept is None:
        with connection.cursor() as wrapper:
            yield wrapper
        return
    connection.validate_thread_sharing()
    yield connection.make_debug_cursor(kept) if connection.queries_logged else connection.make_cursor(kept)


def _prepared_cursor(connection: Any) -> Any:
    """This connection's PreparingCursor, made on first use; None where nothing is prepared."""
    if connection.vendor != "postgresql" or not settings.PREPARED_LOOKUPS:
        return None
    options = connection.settings_dict.get("OPTIONS") or {}
    if "prepare_threshold" in options and options["prepare_threshold"] is None:
        return None  # the site said no prepared statements (PgBouncer): none here either
    # What connection.cursor() does first: a health check where configured, a connection.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw, timezone = connection.connection, connection.timezone
    kept = connection.__dict__.get("_oauth_server_cursor")
    if kept is not None and kept[0] is raw and kept[1] == timezone and not kept[2].closed:
        return kept[2]
    try:
        from django.db.backends.postgresql import base as postgresql
        from psycopg import ClientCursor
        from psycopg.pq import Format
    except ImportError:  # psycopg2: client-side binding only
        return None
    if not issubclass(raw.cursor_factory, ClientCursor):
        return None  # server-side binding already (the site's option): psycopg's own rules apply
    if raw.prepare_threshold is None:
        # Django leaves psycopg's preparation off, which also ignores prepare=True. Its own cursors
        # bind on the client here and never prepare, so only PreparingCursor's statements are.
        raw.prepare_threshold = PREPARE_THRESHOLD
    with connection.wrap_database_errors:
        cursor = _preparing_cursor_class(postgresql.ServerBindingCursor)(raw)
    # What Django's create_cursor does for its own cursors: the connection's time zone for timestamps.
    loader = raw.adapters.get_loader(postgresql.TIMESTAMPTZ_OID, Format.TEXT)
    if timezone != loader.timezone:
        postgresql.register_tzloader(timezone, cursor)
    connection.__dict__["_oauth_server_cursor"] = (raw, timezone, cursor)
    return cursor


@functools.cache
def _preparing_cursor_class(base: type) -> type:
    """Django turns psycopg's automatic preparation off (``prepare_threshold=None``, for poolers):
    this cursor asks for it on each statement, which psycopg then prepares once per connection."""

    class PreparingCursor(base):
        def execute(self, query, params=None, *, prepare=None, binary=None):
            # psycopg records the statement only when it sends it unprepared; Django's query log
            # (DEBUG, assertNumQueries, the debug toolbar) reads that record.
            try:
                return super().execute(
                    query, params, prepare=True if prepare is None else prepare, binary=binary
                )
            finally:
                self._query = _LoggedQuery(self.connection, query, params)

    return PreparingCursor


class _LoggedQuery:
    """What Django's query log reads of a psycopg cursor (``_query.query``): the statement with its
    values, composed only if someone reads it."""

    params = None

    def __init__(self, connection: Any, sql: str, params: Any) -> None:
        self._connection, self._sql, self._params = connection, sql, params

    @property
    def query(self) -> bytes:
        from psycopg import ClientCursor

        with ClientCursor(self._connection) as cursor:
            return cursor.mogrify(self._sql, self._params).encode()
