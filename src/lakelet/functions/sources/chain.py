"""Conditional triggers under ``lakelet up``: jobs that run after a crawler or a job.

When a node (``crawler:NAME`` or ``job:NAME``) run by ``lakelet up`` ends, every job
whose ``trigger.after`` names it is considered: its condition (``on`` succeeded /
failed / completed, ``logic`` all / any; see :mod:`lakelet.jobs.triggers`) is evaluated
with the node's outcome and, for its other predecessors, the state of their latest run
— like Glue's conditional triggers watching the latest event of each. A job that runs
ends in its own state, which may start the jobs after it in turn; each node runs at
most once per chain, under its lock, in the same process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakelet.errors import LakeletError
from lakelet.jobs.triggers import NodeState, job_triggers

if TYPE_CHECKING:
    from lakelet.project import Project

FAILED_RUNS = frozenset({"failed", "timeout", "stopped"})


def run_downstream(
    project: Project, node: str, state: NodeState, *, done: frozenset[str] = frozenset()
) -> list[str]:
    """Run the jobs ``node`` ending in ``state`` sets off; one line per job run."""
    from lakelet.functions.sources.noderun import node_lock
    from lakelet.jobs.runner import run_job

    lines: list[str] = []
    done = done | {node}
    for job, section in project.settings.jobs.items():
        target = f"job:{job}"
        trigger = job_triggers(job, section.trigger).after
        if trigger is None or node not in trigger.after or target in done:
            continue
        states = {n: state if n == node else latest_state(project, n) for n in trigger.after}
        if trigger.holds(states) is not True:
            continue
        with node_lock(project, target) as held:
            if not held:
                lines.append(f"{target}: already running")
                continue
            try:
                record = run_job(project, job)
                ended: NodeState = "succeeded"
                lines.append(f"{target}: run {record.run_id} wrote {record.rows_written} rows")
            except LakeletError as exc:
                ended = "failed"
                lines.append(f"{target}: failed: {exc}")
        lines += run_downstream(project, target, ended, done=done | {target})
    return lines


def latest_state(project: Project, node: str) -> NodeState:
    """The outcome of ``node``'s latest run (``waiting`` if it never ran)."""
    kind, _, name = node.partition(":")
    if kind == "crawler":
        from lakelet.crawler.manifest import Manifest

        ran = Manifest(project.metadata).state(name).last_run_at is not None
        return "succeeded" if ran else "waiting"
    from lakelet.jobs.runs import RunStore

    recent = RunStore(project.metadata).recent(name, limit=1)
    if not recent:
        return "waiting"
    status = recent[0].status
    if status == "succeeded":
        return "succeeded"
    return "failed" if status in FAILED_RUNS else "running"
