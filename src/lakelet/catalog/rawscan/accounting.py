"""What a raw scan read: the rows that reached a query, and every row it rejected.

Counting the good rows of a CSV scan means converting every value again, and locating a
row whose value does not convert means reading its file once more; both are paid only
where needed. A caller that knows how many rows its query took from the scan (a query
that keeps each row, such as ``SELECT *``, read to its end) passes that number, and
then it takes a proof that no value failed to convert, the cheapest first:

* the files' newlines: each row takes at least one line, so when the local,
  uncompressed files hold exactly as many lines as the rows accepted (plus headers)
  and the reader rejected none, no row can have been left out;
* else one count of the well-formed rows, converting nothing.

Only when neither proves it are the values converted again, per file, and the rows
that fail located.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakelet.catalog.rawscan.core import REJECT_COLUMNS, RawScan

RejectRow = tuple[Any, ...]
"""``file, line, column_name, reason, raw_row`` (see ``REJECT_COLUMNS``)."""
CHUNK_BYTES = 1 << 24


@dataclass(frozen=True)
class ScanCount:
    """Rows of a scan that reached the query (``accepted``) and the rows it rejected."""

    accepted: int
    rejects: list[RejectRow]


def count_scan(con: Any, scan: RawScan, *, accepted: int | None = None) -> ScanCount:
    """Count ``scan`` in the DuckDB connection ``con`` where its view is bound.

    ``accepted``: how many rows a query that read the scan to its end took from it,
    when the caller knows (otherwise the good rows are counted here). Run this after
    that query's result was consumed: the reader records its rejects when a scan ends.
    """
    if scan.counts_sql is None or scan.total_sql is None or scan.structural_sql is None:
        if accepted is None:
            ((accepted,),) = con.execute(f"SELECT count(*) FROM ({scan.select_sql})").fetchall()
        return ScanCount(int(accepted), con.execute(scan.rejects_sql).fetchall())
    failing: list[str] | None = None
    if accepted is not None:
        structural = con.execute(
            f"SELECT {REJECT_COLUMNS} FROM ({scan.structural_sql}) ORDER BY file, line"
        ).fetchall()
        if not structural and _lines_prove(scan, accepted):
            return ScanCount(accepted, [])
        ((total,),) = con.execute(scan.total_sql).fetchall()
        if int(total or 0) < accepted:
            raise ValueError(f"{accepted} rows accepted from a scan of {total} well-formed rows")
        if int(total or 0) == accepted:
            return ScanCount(accepted, structural)
    counts = con.execute(scan.counts_sql).fetchall()
    accepted = sum(int(good) for _, good, _ in counts)
    failing = [str(file) for file, _, failed in counts if failed]
    return ScanCount(accepted, _located(con, scan, scan.structural_sql, failing))


def _located(con: Any, scan: RawScan, structural: str, failing: list[str]) -> list[RejectRow]:
    """The reader's rejects and the located rows of ``failing`` files whose values do not
    convert. A file DuckDB's line read refuses (bytes that are not UTF-8) is located
    again from a table of its lines (:attr:`RawScan.relocated`)."""
    import duckdb

    def rejects(parts: list[str]) -> list[RejectRow]:
        union = "\nUNION ALL\n".join([structural, *parts])
        query = f"SELECT {REJECT_COLUMNS} FROM (\n{union}\n) ORDER BY file, line"
        return list(con.execute(query).fetchall())

    try:
        return rejects([scan.located_sql[f] for f in failing])
    except duckdb.Error:
        if not failing or any(f not in scan.relocated for f in failing):
            raise
    done: list[str] = []
    try:
        for file in failing:
            done.append(file)
            for statement in scan.relocated[file].setup:
                con.execute(statement)
        return rejects([scan.relocated[f].sql for f in failing])
    finally:
        for file in done:
            for statement in scan.relocated[file].cleanup:
                con.execute(statement)


def _lines_prove(scan: RawScan, accepted: int) -> bool:
    """Whether the files' lines leave no room for a row that was not accepted.

    A file's rows take at least one line each below its header, so the lines bound the
    rows read from above; if they add up to the rows accepted, every row read was. A
    file whose lines cannot be counted this way (remote, compressed, or ending lines
    with a bare carriage return, which DuckDB also reads as a line end) proves nothing.
    """
    lines = 0
    for url in scan.files:
        before = scan.lines_before_rows.get(url)
        counted = None if before is None else physical_lines(Path(url))
        if counted is None or before is None:
            return False
        lines += counted - before
    return lines == accepted


def physical_lines(path: Path) -> int | None:
    """The lines of a file as ``\\n`` ends them (a last line without one counts), or
    ``None`` when a bare ``\\r`` could end lines too."""
    newlines = returns = pairs = 0
    last = b""
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            newlines += chunk.count(b"\n")
            found = chunk.count(b"\r")
            if found:  # most files have none: the pairs are looked for only then
                returns += found
                pairs += chunk.count(b"\r\n")
            pairs += last == b"\r" and chunk[:1] == b"\n"
            last = chunk[-1:]
    if returns != pairs:
        return None
    return newlines + (1 if last not in (b"", b"\n") else 0)
