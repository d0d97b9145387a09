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
    project: Project, node: str, state: NodeState, *, done: set[str] | None = None
) -> list[str]:
    """Run the jobs ``node`` ending in ``state`` sets off; one line per job run.

    ``done`` is shared by the whole chain, so a job reached along two paths runs once;
    a job that also waits for another job of this round waits for that one's outcome
    (it is reached again from there)."""
    from lakelet.functions.sources.noderun import node_lock
    from lakelet.jobs.runner import run_job

    done = set() if done is None else done
    done.add(node)
    candidates: dict[str, tuple[str, ...]] = {}
    for job, section in project.settings.jobs.items():
        trigger = job_triggers(job, section.trigger).after
        if trigger is not None and node in trigger.after and f"job:{job}" not in done:
            candidates[f"job:{job}"] = trigger.after
    lines: list[str] = []
    for target, after in candidates.items():
        if target in done or any(a in candidates and a != target for a in after):
            continue
        job = target.partition(":")[2]
        trigger = job_triggers(job, project.settings.jobs[job].trigger).after
        assert trigger is not None
        states = {n: state if n == node else latest_state(project, n) for n in trigger.after}
        if trigger.holds(states) is not True:
            continue
        done.add(target)
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
        lines += run_downstream(project, target, ended, done=done)
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
