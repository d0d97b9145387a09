"""Load a catalog table into the warehouse: the loader between the lake and SQL users.

The warehouse holds curated data: Iceberg tables that jobs wrote and checked. Raw
tables are files read with an inferred schema; a job turns them into a curated table
first, so bad rows are quarantined by the job rather than rejected by the warehouse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lakelet.errors import UserError
from lakelet.warehouse.base import LoadMode, LoadResult
from lakelet.warehouse.request import LoadRequest

if TYPE_CHECKING:
    from lakelet.catalog.names import TableName
    from lakelet.project import Project


def load_table(
    project: Project,
    source: TableName,
    target: str | None = None,
    *,
    mode: LoadMode = "replace",
    keys: Sequence[str] = (),
    max_errors: int = 0,
    dry_run: bool = False,
    dist_key: str | None = None,
    sort_key: Sequence[str] = (),
) -> LoadResult:
    """Load the current snapshot of ``source`` into ``target`` (default: the same name).

    Rejected rows are recorded in ``lakelet.load_errors`` with ``source`` as their
    origin and their row number in the snapshot as their line.
    """
    request = LoadRequest.check_options(
        target or str(source),
        mode,
        keys,
        max_errors=max_errors,
        dist_key=dist_key,
        sort_key=sort_key,
    )
    catalog = project.catalog
    kind = catalog.require_kind(source)
    if kind == "raw":
        raise UserError(
            f"{source} is a crawled raw table; load reads curated tables. Write it to an "
            f'Iceberg table with a job first (e.g. output = "curated.{source.name}" in '
            "lakelet.toml, then: lakelet run JOB), and load that table"
        )
    data = catalog.read_arrow(source)
    return project.warehouse.load(
        data,
        str(request.target),
        mode=mode,
        keys=request.keys,
        max_errors=request.max_errors,
        dry_run=dry_run,
        source=str(source),
        dist_key=request.dist_key,
        sort_key=request.sort_key,
    )
