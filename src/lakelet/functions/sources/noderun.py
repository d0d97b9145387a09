"""One crawler or job run for ``lakelet up``, in a process of its own.

``lakelet up`` starts ``python -m lakelet.functions.sources.noderun NODE`` for every
scheduled or arrival-triggered run, so a crawl or a job never blocks the event loop,
never shares its memory, and holds the DuckDB warehouse file only while it runs. The
run goes through the crawler's and the jobs' own code (``run_crawler``,
``crawl_on_arrival``, ``run_job``, ``due_jobs``), so it is recorded exactly as from
the command line. A lock file per node (released by the kernel when the process dies,
even by ``SIGKILL``) keeps two runs of one crawler or job from overlapping, including
one left running by a ``lakelet up`` that was killed.

The last line written to standard output is a JSON object: ``ok``, ``ran`` (false when
an arrival check found nothing new), ``busy`` (another run holds the node) and
``summary`` or ``error``.
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lakelet.errors import LakeletError, UserError
from lakelet.functions.sources.chain import run_downstream
from lakelet.jobs.triggers import NodeState
from lakelet.project import Project

EXIT_BUSY = 75  # EX_TEMPFAIL: try again later
LOCK_DIR = "locks"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one run did, for the last line of output."""

    ok: bool
    ran: bool = True
    busy: bool = False
    summary: str = ""

    def line(self) -> str:
        return json.dumps(dataclasses.asdict(self))


def parse_node(node: str) -> tuple[str, str]:
    """``crawler:sales`` → ``("crawler", "sales")``."""
    kind, _, name = node.partition(":")
    if kind not in ("crawler", "job") or not name:
        raise UserError(f"{node!r} is not crawler:NAME or job:NAME")
    return kind, name


def run_node(project: Project, node: str, *, arrival: bool) -> Outcome:
    """Run ``node`` now, or (``arrival``) only if objects arrived for it."""
    kind, name = parse_node(node)
    if kind == "crawler":
        return _crawl(project, name, arrival)
    return _job(project, name, arrival)


def _crawl(project: Project, name: str, arrival: bool) -> Outcome:
    from lakelet.crawler import CrawlReport, crawler_spec, run_crawler
    from lakelet.crawler.arrival import crawl_on_arrival

    spec = crawler_spec(project, name)
    reports: list[CrawlReport]
    if arrival:
        only = dataclasses.replace(project.settings, crawlers={name: spec})
        reports = crawl_on_arrival(Project(project.root, only))
        if not reports:
            return Outcome(ok=True, ran=False, summary="no new objects")
    else:
        reports = [run_crawler(project, name, spec)]
    tables = [t for r in reports for t in r.tables]
    changed = [t.name for t in tables if t.action != "unchanged"]
    return Outcome(
        ok=True, summary=f"{len(tables)} table(s), changed: {', '.join(changed) or 'none'}"
    )


def _job(project: Project, name: str, arrival: bool) -> Outcome:
    from lakelet.jobs.runner import run_job
    from lakelet.jobs.triggers import due_jobs

    if arrival:
        section = project.settings.jobs.get(name)
        if section is None:
            raise UserError(f"no job {name!r} in lakelet.toml")
        trigger = {k: v for k, v in section.trigger.items() if k != "schedule"}
        only = dataclasses.replace(
            project.settings, jobs={name: dataclasses.replace(section, trigger=trigger)}
        )
        if not due_jobs(Project(project.root, only)):
            return Outcome(ok=True, ran=False, summary="no new objects")
    record = run_job(project, name)
    return Outcome(
        ok=True,
        summary=f"run {record.run_id}: read {record.rows_read}, wrote {record.rows_written}, "
        f"rejected {record.rows_rejected}",
    )


@contextmanager
def node_lock(project: Project, node: str) -> Iterator[bool]:
    """Hold ``node``'s lock file while the block runs; yields ``False`` when another
    process holds it."""
    folder = project.state_dir / LOCK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    kind, name = parse_node(node)
    fd = os.open(folder / f"{kind}-{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakelet.functions.sources.noderun")
    parser.add_argument("node", help="crawler:NAME or job:NAME")
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--overrides", default="{}", help="settings overrides, a JSON object")
    parser.add_argument("--arrival", action="store_true", help="run only if objects arrived")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = json.loads(args.overrides)
    try:
        project = Project.open(args.project, overrides=overrides)
        with node_lock(project, args.node) as held:
            if not held:
                print(Outcome(ok=False, ran=False, busy=True, summary="already running").line())
                return EXIT_BUSY
            try:
                outcome = run_node(project, args.node, arrival=args.arrival)
            except LakeletError as exc:
                after = _downstream(project, args.node, "failed")
                print(Outcome(ok=False, summary=_joined(str(exc), after)).line())
                return exc.exit_code
            if outcome.ran:
                after = _downstream(project, args.node, "succeeded")
                outcome = dataclasses.replace(outcome, summary=_joined(outcome.summary, after))
    except LakeletError as exc:
        print(Outcome(ok=False, summary=str(exc)).line())
        return exc.exit_code
    print(outcome.line())
    return 0


def _downstream(project: Project, node: str, state: NodeState) -> list[str]:
    """The chain after ``node``; its own failure (a bad trigger elsewhere) is reported
    beside the node's outcome, never in place of it."""
    try:
        return run_downstream(project, node, state)
    except LakeletError as exc:
        return [f"jobs after {node}: {exc}"]


def _joined(summary: str | None, after: list[str]) -> str:
    """The node's summary, then what ran after it (see :mod:`.chain`)."""
    return "; then ".join([summary or "", *after]) if after else summary or ""


if __name__ == "__main__":
    sys.exit(main())
