"""How a run writes its output: one Iceberg commit, with its bookmark when it has one.

A bookmarked run appends what it read for the first time. Rows of a raw file it reads
again (the file changed, or a rewind re-reads it) are already in the output: if the
output keeps the provenance column (``_lakelet_file``), they are deleted in the same
commit that appends their new version, so a file's rows are replaced, never doubled;
if it does not, the run is refused before anything is written. A reset rebuilds the
output from everything its inputs hold now (an overwrite).

Rows of a raw file that disappeared stay in the output: the bookmark only learns about
files it reads, and a missing file is not an instruction to delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakelet.catalog.catalog import ReplaceRows, WriteMode, WriteResult
from lakelet.errors import UserError
from lakelet.jobs.bookmarks import BOOKMARK_PROPERTY, PROVENANCE_COLUMN

if TYPE_CHECKING:
    import pyarrow as pa

    from lakelet.catalog import Catalog
    from lakelet.jobs.bookmarks import BookmarkedRead
    from lakelet.jobs.spec import JobSpec

SHOWN_FILES = 5


class ReprocessedFiles(UserError):
    """A bookmarked run re-read files whose rows it cannot tell apart in the output."""


@dataclass(frozen=True)
class OutputCommit:
    """How the run's rows will be written: decided before any of them is."""

    mode: WriteMode
    properties: dict[str, str]
    replace: ReplaceRows | None = None

    def write(self, catalog: Catalog, spec: JobSpec, data: pa.Table) -> WriteResult:
        return catalog.write(
            spec.output, data, self.mode, properties=self.properties, replace=self.replace
        )


def plan_commit(
    catalog: Catalog, spec: JobSpec, schema: pa.Schema, reading: BookmarkedRead | None
) -> OutputCommit:
    """The commit for a result of ``schema``; refuses one that would double rows."""
    if reading is None:
        return OutputCommit(spec.mode, {})
    properties = {BOOKMARK_PROPERTY: reading.next.to_json()}
    if reading.rebuild:
        return OutputCommit("overwrite", properties)
    if not reading.reread:
        return OutputCommit(spec.mode, properties)
    missing = _provenance_missing(catalog, spec, schema)
    if missing is not None:
        files = ", ".join(reading.reread[:SHOWN_FILES])
        more = len(reading.reread) - SHOWN_FILES
        files += f" and {more} more" if more > 0 else ""
        raise ReprocessedFiles(
            f"job {spec.name!r} read {files} again (changed, or re-read after a rewind), "
            f"but {missing}, so their earlier rows cannot be replaced and would be "
            f"doubled; nothing was written. Keep {PROVENANCE_COLUMN} in the job's output "
            f"(SELECT *, or SELECT … , {PROVENANCE_COLUMN} … GROUP BY … , "
            f"{PROVENANCE_COLUMN}), or rebuild the output with: "
            f"lakelet run {spec.name} --reset-bookmark"
        )
    return OutputCommit(
        spec.mode, properties, ReplaceRows(PROVENANCE_COLUMN, tuple(reading.reread))
    )


def _provenance_missing(catalog: Catalog, spec: JobSpec, schema: pa.Schema) -> str | None:
    """Why the output cannot say which rows came from which file, if it cannot."""
    if PROVENANCE_COLUMN not in schema.names:
        return f"its result has no {PROVENANCE_COLUMN} column"
    if catalog.kind(spec.output) == "iceberg":
        names = {f.name for f in catalog.load_iceberg(spec.output).schema().fields}
        if PROVENANCE_COLUMN not in names:
            return f"{spec.output} was written without a {PROVENANCE_COLUMN} column"
    return None
