"""Transform steps: a job's result passed through SQL files, Python functions and the
built-in steps Glue users reach for, in order.

Each step gets the previous step's result (the job's SQL result for the first step, or
nothing when the job has no SQL) and returns the next one:

* ``sql = "jobs/more.sql"`` — the previous result is the table ``input``;
* ``python = "module:function"`` — ``function(table, context)`` takes an Arrow table (or
  ``None`` as the first step of a job without SQL) and a :class:`StepContext` (to read
  catalog tables by name, run SQL, see the parameters), and returns an Arrow table or a
  DuckDB relation. The module is imported from the project folder.
* ``builtin`` — ``apply_mapping`` (``mapping = {new = "old"}`` or ``"old:TYPE"``; only
  mapped columns are kept), ``resolve_choice`` (``mapping = {column = "TYPE"}``; a value
  that does not cast fails the run, naming it — no silent coercion), ``flatten`` (struct
  columns become ``parent_child`` columns; with ``arrays = "child_tables"`` array columns
  become child tables, see :mod:`lakelet.jobs.children`), ``dedupe`` (``keys``,
  ``order_by``: the first row per key), ``join`` (``table``, ``on``, ``how``).

Steps run in the job's DuckDB session, so tables they read are bound, counted and
pinned like the SQL's. Steps write nothing: child tables are returned as data by
:func:`run_steps_with_children` for the runner to write once the rules have passed.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakelet.errors import ConfigError, JobError, LakeletError
from lakelet.jobs.children import ChildTable, relationalize

if TYPE_CHECKING:
    import pyarrow as pa

    from lakelet.config import StepSection
    from lakelet.jobs.session import Session
    from lakelet.jobs.spec import JobSpec

BUILTINS = ("apply_mapping", "resolve_choice", "flatten", "dedupe", "join")
INPUT = "input"


@dataclass
class StepContext:
    """What a Python step may use besides its input table."""

    session: Session
    params: Mapping[str, str]
    root: Path

    def read(self, name: str) -> pa.Table:
        """A catalog or warehouse table by name (``curated.daily_sales``)."""
        return self.session.execute(f"SELECT * FROM {name}", params=self.params)

    def sql(self, query: str) -> pa.Table:
        """Run SQL in the job's session (the previous result is ``input``)."""
        return self.session.execute(query, params=self.params)


def check_steps(root: Path, job: str, steps: Sequence[StepSection], *, first: bool) -> None:
    """Refuse a malformed step before anything runs, naming it."""
    for index, step in enumerate(steps):
        where = f"jobs.{job}.steps[{index}]"
        kinds = [k for k in ("sql", "python", "builtin") if getattr(step, k) is not None]
        if len(kinds) != 1:
            raise ConfigError(f"{where}: give exactly one of sql, python or builtin")
        if step.sql is not None and not _path(root, step.sql).is_file():
            raise ConfigError(f"{where}.sql: no SQL file at {_path(root, step.sql)}")
        if step.python is not None and ":" not in step.python:
            raise ConfigError(f"{where}.python: expected module:function, got {step.python!r}")
        if step.builtin is not None:
            if step.builtin not in BUILTINS:
                raise ConfigError(
                    f"{where}.builtin = {step.builtin!r}: use one of {', '.join(BUILTINS)}"
                )
            needs = {
                "apply_mapping": step.mapping,
                "resolve_choice": step.mapping,
                "dedupe": step.keys,
                "join": step.table and step.on,
            }.get(step.builtin, True)
            if not needs:
                raise ConfigError(f"{where}: builtin {step.builtin!r} needs its options")
        if (step.arrays != "keep" or step.key is not None) and step.builtin != "flatten":
            raise ConfigError(f'{where}: arrays and key are options of builtin = "flatten"')
        if step.key is not None and step.arrays != "child_tables":
            raise ConfigError(
                f'{where}.key: the parent key is for arrays = "child_tables"; add that or drop key'
            )
        if first and index == 0 and step.python is None:
            raise ConfigError(
                f"{where}: a job without sql must start with a python step (it has no input)"
            )


def run_steps(
    session: Session, spec: JobSpec, result: pa.Table | None, params: Mapping[str, str]
) -> pa.Table:
    """The job's result after its steps (for steps that make no child tables)."""
    table, children = run_steps_with_children(session, spec, result, params)
    if children:  # dropping them would lose the arrays' data
        raise JobError(
            f"job {spec.name!r} makes child tables; its runner must write them "
            "(run_steps_with_children + lakelet.jobs.children.write_children)"
        )
    return table


def run_steps_with_children(
    session: Session, spec: JobSpec, result: pa.Table | None, params: Mapping[str, str]
) -> tuple[pa.Table, list[ChildTable]]:
    """The job's result after its steps, and the child tables ``flatten`` made of arrays."""
    context = StepContext(session, params, session.project_root)
    children: list[ChildTable] = []
    keys: dict[str, str] = {}  # parent key column -> the step that needs it
    for index, step in enumerate(spec.steps):
        where = f"jobs.{spec.name}.steps[{index}]"
        try:
            if step.builtin == "flatten" and step.arrays == "child_tables":
                assert result is not None
                made = relationalize(
                    result,
                    output=spec.output,
                    separator=step.separator,
                    key=step.key,
                    where=where,
                    connection=session.connection,
                )
                result = made.parent
                keys[made.key] = where
                children += made.children
            else:
                result = _run_step(session, context, step, result, where)
        except LakeletError:
            raise
        except Exception as exc:  # a Python step's own error
            raise JobError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
    assert result is not None
    for key, where in keys.items():
        if key not in result.column_names:
            raise ConfigError(
                f"{where}: a later step dropped the parent key {key!r} its child tables "
                f"refer to; keep {key!r} in the output"
            )
    names = [str(c.name) for c in children]
    clash = sorted({n for n in names if names.count(n) > 1} | ({str(spec.output)} & set(names)))
    if clash:
        raise ConfigError(
            f"jobs.{spec.name}: steps make the table {clash[0]} twice; flatten each array once"
        )
    return result, children


def _run_step(
    session: Session,
    context: StepContext,
    step: StepSection,
    table: pa.Table | None,
    where: str,
) -> pa.Table:
    if step.python is not None:
        return _as_arrow(_function(context.root, step.python, where)(table, context), where)
    assert table is not None
    session.connection.register(INPUT, table)
    try:
        if step.sql is not None:
            text = _path(context.root, step.sql).read_text(encoding="utf-8")
            return session.execute(text, params=context.params, source=where)
        return session.execute(_builtin_sql(step, table, where), source=where)
    finally:
        session.connection.unregister(INPUT)


def _builtin_sql(step: StepSection, table: pa.Table, where: str) -> str:
    q = _quote
    columns = table.column_names
    if step.builtin == "apply_mapping":
        parts = []
        for new, spec in step.mapping.items():
            old, _, cast = spec.partition(":")
            _require(old, columns, where)
            value = f"CAST({q(old)} AS {cast})" if cast else q(old)
            parts.append(f"{value} AS {q(new)}")
        return f"SELECT {', '.join(parts)} FROM {INPUT}"
    if step.builtin == "resolve_choice":
        for column in step.mapping:
            _require(column, columns, where)
        # CAST, not TRY_CAST: a value that does not fit fails the run, naming it.
        replaced = ", ".join(f"CAST({q(c)} AS {t}) AS {q(c)}" for c, t in step.mapping.items())
        return f"SELECT * REPLACE ({replaced}) FROM {INPUT}"
    if step.builtin == "flatten":
        return f"SELECT {', '.join(_flat(table.schema, step.separator))} FROM {INPUT}"
    if step.builtin == "dedupe":
        for key in step.keys:
            _require(key, columns, where)
        keys = ", ".join(q(k) for k in step.keys)
        order = f" ORDER BY {step.order_by}" if step.order_by else ""
        return f"SELECT * FROM {INPUT} QUALIFY row_number() OVER (PARTITION BY {keys}{order}) = 1"
    for key in step.on:
        _require(key, columns, where)
    how = {"inner": "", "left": "LEFT", "right": "RIGHT", "full": "FULL"}[step.how]
    using = ", ".join(q(k) for k in step.on)
    return f"SELECT * FROM {INPUT} {how} JOIN {step.table} USING ({using})"


def _flat(schema: Any, separator: str, prefix: str = "", path: str = "") -> list[str]:
    import pyarrow as pa

    out = []
    for field in schema:
        name = f"{prefix}{field.name}"
        ref = f"{path}.{_quote(field.name)}" if path else _quote(field.name)
        if pa.types.is_struct(field.type):
            out.extend(_flat(field.type, separator, f"{name}{separator}", ref))
        else:
            out.append(f"{ref} AS {_quote(name)}")
    return out


def _function(root: Path, target: str, where: str) -> Any:
    module_name, _, attribute = target.partition(":")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}.python: cannot import {module_name!r}: {exc}") from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigError(f"{where}.python: {module_name} has no function {attribute!r}")
    return function


def _as_arrow(value: Any, where: str) -> pa.Table:
    import pyarrow as pa

    if isinstance(value, pa.Table):
        return value
    if hasattr(value, "to_arrow_table"):  # a DuckDB relation
        table: pa.Table = value.to_arrow_table()
        return table
    raise JobError(f"{where}: a python step must return an Arrow table or a DuckDB relation")


def _require(column: str, columns: list[str], where: str) -> None:
    if column not in columns:
        known = ", ".join(columns)
        raise ConfigError(f"{where}: no column {column!r} in the step's input ({known})")


def _path(root: Path, text: str) -> Path:
    path = Path(text)
    return path if path.is_absolute() else root / path


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
