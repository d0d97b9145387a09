"""Child tables: the arrays of a job's output as tables of their own (Glue's Relationalize).

``flatten`` with ``arrays = "child_tables"`` moves every array column (at any depth,
inside structs or inside other arrays' elements) into the table
``<output table>_<array path>``: ``items`` of ``curated.orders`` becomes
``curated.orders_items``, ``parts`` inside each item ``curated.orders_items_parts``.
A child row holds

* the parent key: the step's ``key`` column, or ``row_id``, a hash of the parent row's
  content (the same rows give the same ids, so re-runs are reproducible, and rows of
  different runs do not collide);
* for a nested array, the positions of its ancestors (``items_index``);
* the element's 0-based position in its array (``<path>_index``);
* the element itself: a scalar in the column ``<path>``; a struct flattened into
  ``<path>_<field>`` columns; an array (an array of arrays) in a child table of its own,
  ``<path>_item``.

Empty and NULL arrays have no child rows; a NULL element keeps its position.

A bookmarked job's rows carry their raw file (``_lakelet_file``), and so do their child
rows. Child tables are committed before the output (and its bookmark), so a run that
fails in between has written children the bookmark does not know of; and a changed
file's children are already there. In a bookmarked append, the child rows of every file
the run read are therefore replaced (:func:`replaced_files`), the way the output
replaces a re-read file's rows: a rerun or a changed file never doubles them.

The step makes child tables as data only; the runner writes them with
:func:`write_children` after the output's quality rules passed, so a failed run
writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakelet.catalog.catalog import ReplaceRows
from lakelet.catalog.names import TableName, to_identifier
from lakelet.errors import ConfigError, JobError, UserError
from lakelet.jobs.bookmarks import PROVENANCE_COLUMN

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from lakelet.catalog.catalog import WriteMode, WriteResult
    from lakelet.jobs.bookmarks import BookmarkedRead
    from lakelet.jobs.quality import RuleResult
    from lakelet.jobs.spec import JobSpec
    from lakelet.project import Project

ROW_ID = "row_id"
INDEX = "index"
ITEM = "item"
_POSITION = "__lakelet_position"
_ROWS = "lakelet_relationalize"


@dataclass(frozen=True)
class ChildTable:
    """The elements of one array column, one row each, keyed back to their parent row."""

    name: TableName  # curated.orders_items
    path: str  # the array's column path in the flattened parent: items, items_parts
    keys: tuple[str, ...]  # columns from the parent row: order_id, _lakelet_file, items_index
    table: pa.Table


@dataclass(frozen=True)
class Relationalized:
    parent: pa.Table
    key: str
    children: list[ChildTable]


@dataclass
class ChildrenWritten:
    """What :func:`write_children` committed, and the child tables' rule results."""

    writes: list[WriteResult] = field(default_factory=list)
    quality: list[RuleResult] = field(default_factory=list)
    quarantined: int = 0


class ChildQualityFailed(JobError):
    """A ``fail`` rule of a child table failed: no child table was written."""

    exit_code = 2


def relationalize(
    table: pa.Table,
    *,
    output: TableName,
    separator: str = "_",
    key: str | None = None,
    where: str = "flatten",
    connection: duckdb.DuckDBPyConnection | None = None,
) -> Relationalized:
    """Flatten ``table``'s structs into columns and its arrays into child tables.

    Without ``key``, a ``row_id`` column is computed (with ``connection``, or a fresh
    DuckDB connection) and written to the parent and every child.
    """
    import pyarrow as pa

    if key is None:
        if ROW_ID in table.column_names:
            raise ConfigError(
                f"{where}: the input already has a column {ROW_ID!r}; name the column that "
                f'identifies a row with key = "..." (or rename {ROW_ID!r})'
            )
        table = table.add_column(0, ROW_ID, row_ids(table, connection))
        key = ROW_ID
    leaves, arrays = _split(table, separator)
    parent = _table(leaves, where, "the flattened output")
    if key not in parent.column_names:
        scalars = ", ".join(parent.column_names)
        raise ConfigError(
            f"{where}: key {key!r} is not a column of the flattened output ({scalars})"
        )
    _check_key(parent.column(key), key, where)
    carried: tuple[str, ...] = (key,)
    if PROVENANCE_COLUMN in parent.column_names and key != PROVENANCE_COLUMN:
        carried = (key, PROVENANCE_COLUMN)  # the children's rows come from the same file
    children: list[ChildTable] = []
    for path, values in arrays:
        children += _explode(
            parent.select(list(carried)), carried, path, values, output, separator, where
        )
    _check_names(children, where)
    assert isinstance(parent, pa.Table)
    return Relationalized(parent, key, children)


def row_ids(table: pa.Table, connection: duckdb.DuckDBPyConnection | None = None) -> pa.Array:
    """A content hash per row (with its ordinal among identical rows): stable across runs."""
    import duckdb
    import pyarrow as pa

    con = connection or duckdb.connect(":memory:")
    positions = pa.array(range(table.num_rows), pa.int64())
    con.register(_ROWS, table.append_column(_POSITION, positions))
    fields = ", ".join(f"'{_escape(c)}': {_quote(c)}" for c in table.column_names)
    try:
        ids = con.sql(
            f"""
            SELECT md5(content || '#' || row_number() OVER (PARTITION BY content
                                                        ORDER BY {_POSITION})) AS id
            FROM (SELECT CAST(to_json({{{fields}}}) AS VARCHAR) AS content, {_POSITION}
                  FROM {_ROWS})
            ORDER BY {_POSITION}
            """
        ).to_arrow_table()
    finally:
        con.unregister(_ROWS)
        if connection is None:
            con.close()
    return ids.column("id").combine_chunks()


def write_children(
    project: Project,
    spec: JobSpec,
    children: Sequence[ChildTable],
    run_id: str,
    *,
    mode: WriteMode | None = None,
    replace: ReplaceRows | None = None,
    reread: Sequence[str] = (),
    now: datetime | None = None,
) -> ChildrenWritten:
    """Check the child tables' declared rules, then commit each with the job's mode
    (or ``mode``: the output's commit mode, e.g. ``overwrite`` when a reset rebuilds it),
    first deleting the child rows of the files ``replace`` names (:func:`replaced_files`);
    a child table that cannot tell the ``reread`` files' rows apart refuses the run.

    All rules of all child tables run before the first commit: a ``fail`` rule raises
    :class:`ChildQualityFailed` with nothing written. Rows held by ``quarantine`` rules
    go to ``quarantine.<job>`` like the output's. Each child is its own Iceberg commit;
    call this before committing the output, so a failure leaves the output's last
    snapshot (and bookmark) in place and a re-run redoes the children.
    """
    if not children:
        return ChildrenWritten()
    moment = now or datetime.now(UTC)
    done = ChildrenWritten()
    passed: list[tuple[TableName, pa.Table]] = []
    held: list[pa.Table] = []
    for child in children:
        rows, kept, results = _check_child(project, child, moment)
        done.quality += results
        passed.append((child.name, rows))
        if kept is not None:
            held.append(kept)
    blocking = [r for r in done.quality if not r.passed and r.action == "fail"]
    if blocking:
        failed = "; ".join(f"{r.source}: {r.rule} ({r.detail})" for r in blocking)
        raise ChildQualityFailed(
            f"data-quality rules of child tables failed, nothing was written: {failed}"
        )
    if reread:
        _check_provenance(project, [name for name, _ in passed])
    if held:
        import pyarrow as pa

        from lakelet.jobs.quality.quarantine import write_quarantine

        rows_held = pa.concat_tables(held)
        done.quarantined = rows_held.num_rows
        write_quarantine(project, spec.name, rows_held, run_id=run_id, at=moment)
    for name, rows in passed:
        kept = replace if replace is not None and replace.column in rows.column_names else None
        done.writes.append(project.catalog.write(name, rows, mode or spec.mode, replace=kept))
    return done


def replaced_files(
    result: pa.Table, reading: BookmarkedRead | None, mode: WriteMode
) -> ReplaceRows | None:
    """The files whose child rows a bookmarked append replaces: every file the run read
    that gave rows (its children may be there from a run that failed before its output
    commit) and every file read again (it may give none now)."""
    import pyarrow.compute as pc

    if reading is None or mode != "append" or PROVENANCE_COLUMN not in result.column_names:
        return None
    gave = pc.unique(result.column(PROVENANCE_COLUMN)).to_pylist()
    files = {str(f) for f in gave if f is not None} | set(reading.reread)
    return ReplaceRows(PROVENANCE_COLUMN, tuple(sorted(files))) if files else None


def _check_provenance(project: Project, children: list[TableName]) -> None:
    """Refuse, before any commit, a child table whose earlier rows cannot be told apart
    by file (written before child rows carried it)."""
    from lakelet.jobs.commit import ReprocessedFiles

    for name in children:
        if project.catalog.kind(name) != "iceberg":
            continue
        names = {f.name for f in project.catalog.load_iceberg(name).schema().fields}
        if PROVENANCE_COLUMN not in names and project.catalog.current_snapshot_id(name):
            raise ReprocessedFiles(
                f"child table {name} was written without a {PROVENANCE_COLUMN} column, so "
                "the rows of files this run read again cannot be replaced and would be "
                "doubled; nothing was written. Rebuild the output and its child tables "
                "with: lakelet run JOB --reset-bookmark"
            )


def _check_child(
    project: Project, child: ChildTable, now: datetime
) -> tuple[pa.Table, pa.Table | None, list[RuleResult]]:
    """The child's rows that pass its table's rules, the rows held back, the results."""
    from lakelet.jobs.quality.tables import declared_checks

    checks = declared_checks(project.settings, child.name)
    if not checks:
        return child.table, None, []
    from lakelet.jobs.quality.rules import evaluate
    from lakelet.jobs.session import Session

    with Session(project) as session:
        evaluation = evaluate(session, checks, child.table, now=now)
    if evaluation.passed.num_rows + evaluation.held.num_rows != child.table.num_rows:
        raise JobError(f"child table {child.name}: rows passed + held != rows made")
    held = evaluation.held if evaluation.held.num_rows else None
    return evaluation.passed, held, evaluation.results


# --- relationalize ---------------------------------------------------------------------


def _split(table: pa.Table, separator: str) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """Flatten structs into ``parent<sep>child`` leaves; set array columns apart."""
    leaves: list[tuple[str, Any]] = []
    arrays: list[tuple[str, Any]] = []

    def walk(name: str, column: Any) -> None:
        import pyarrow as pa

        kind = column.type
        if pa.types.is_struct(kind):
            parts = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
            for index, values in enumerate(parts.flatten()):  # honours NULL parents
                walk(f"{name}{separator}{kind.field(index).name}", values)
        elif _is_list(kind):
            arrays.append((name, column))
        else:
            leaves.append((name, column))

    for name, column in zip(table.column_names, table.columns, strict=True):
        walk(name, column)
    return leaves, arrays


def _explode(
    keys: pa.Table,
    key_names: tuple[str, ...],
    path: str,
    column: Any,
    output: TableName,
    separator: str,
    where: str,
) -> list[ChildTable]:
    """One child table for the array column ``path``, then its nested arrays' tables."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lists = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    values = pc.list_flatten(lists)  # NULL lists add no elements
    # Offsets rebuilt from the lengths: a NULL list counts 0 whatever its raw offsets.
    lengths = pc.fill_null(pc.list_value_length(lists), 0).cast(pa.int64())
    ends = pc.cumulative_sum(lengths)
    offsets = pa.concat_arrays([pa.array([0], pa.int64()), ends.cast(pa.int64())])
    parents = pc.list_parent_indices(pa.LargeListArray.from_arrays(offsets, values))
    starts = pc.take(offsets, parents)
    positions = pc.subtract(pa.array(range(len(values)), pa.int64()), starts)
    element = f"{path}{separator}{ITEM}" if _is_list(values.type) else path
    index = f"{path}{separator}{INDEX}"
    base = keys.take(parents).append_column(index, positions)
    base = base.append_column(element, values)
    leaves, arrays = _split(base, separator)
    name = _child_name(output, path)
    child = _table(leaves, where, f"child table {name}")
    made = [ChildTable(name, path, key_names, child)]
    inner_keys = (*key_names, index)
    for inner_path, inner in arrays:
        made += _explode(
            child.select(list(inner_keys)), inner_keys, inner_path, inner, output, separator, where
        )
    return made


def _child_name(output: TableName, path: str) -> TableName:
    return TableName(output.database, to_identifier(f"{output.name}_{path}"))


def _table(columns: list[tuple[str, Any]], where: str, what: str) -> pa.Table:
    import pyarrow as pa

    seen: set[str] = set()
    for name, _ in columns:
        if name.lower() in seen:
            raise ConfigError(
                f"{where}: flattening gives {what} two columns named {name!r}; rename one "
                "first or choose another separator"
            )
        seen.add(name.lower())
    return pa.table({name: values for name, values in columns})


def _check_key(values: Any, key: str, where: str) -> None:
    """A parent key must name one row: no NULLs, no repeats."""
    import pyarrow.compute as pc

    if values.null_count:
        raise UserError(
            f"{where}: key {key!r} is NULL in {values.null_count} row(s); child rows could "
            "not name their parent (drop or fill those rows first, or leave key unset)"
        )
    counts = pc.value_counts(values)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(repeated):
        first = repeated[0].as_py()
        raise UserError(
            f"{where}: key {key!r} is not unique: {first['values']!r} occurs "
            f"{first['counts']} times; child rows could not name their parent "
            '(dedupe first, e.g. builtin = "dedupe", or leave key unset)'
        )


def _check_names(children: list[ChildTable], where: str) -> None:
    seen: dict[TableName, str] = {}
    for child in children:
        if child.name in seen:
            raise ConfigError(
                f"{where}: arrays {seen[child.name]!r} and {child.path!r} would both become "
                f"the child table {child.name}; rename one of them first"
            )
        seen[child.name] = child.path


def _is_list(kind: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _escape(text: str) -> str:
    return text.replace("'", "''")
