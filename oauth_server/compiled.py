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

What it keeps from the ORM: the SQL is Django's (database routers, quoting, ``LIMIT``, the backend's
dialect), the cursor is the connection's (``execute_wrapper``, ``assertNumQueries``, query logging
with ``DEBUG``), values come back through the fields' converters, and instances are ordinary model
instances. What it assumes: each marker reaches the SQL parameters unchanged. If one does not (a
lookup that transforms its value, a value inlined into the SQL), the lookup is refused when it is
compiled and every call goes through the ORM as before: slower, never wrong.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, models, router
from django.db.models.query import get_related_populators

M = TypeVar("M", bound=models.Model)

_ids = itertools.count()


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

    def first(self, **values: Any) -> M | None:
        for obj in self.all(**values):
            return obj
        return None

    def all(self, **values: Any) -> list[M]:
        if self._model is None:
            self._model = self.build(**values).model
        db = router.db_for_read(self._model)
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
        with connection.cursor() as cursor:
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
