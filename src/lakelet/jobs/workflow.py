"""Conditional triggers and workflows: a DAG of crawlers and jobs, run in order.

A job's ``trigger`` (in ``[jobs.NAME]``) says when it follows others, as Glue's
conditional triggers do::

    trigger = { after = ["crawler:sales", "job:clean"], on = "succeeded", logic = "all" }

``on`` is ``succeeded`` (default), ``failed`` or ``completed`` (either); ``logic`` is
``all`` (default) or ``any``. A workflow (``[workflows.NAME] start = [...]``) holds its
start nodes and every job whose trigger reaches back to them. Running it walks the graph
in dependency order: a node runs when its condition holds, is ``skipped`` when it can no
longer hold, and every node's state is reported. The plan is data (:func:`plan_workflow`);
running it is separate (:func:`run_workflow`), so a dry run is free.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lakelet.errors import ConfigError, LakeletError, NotFoundError
from lakelet.jobs.triggers import NodeState, Trigger, job_triggers

if TYPE_CHECKING:
    from lakelet.project import Project

KINDS = ("crawler", "job")


@dataclass(frozen=True)
class WorkflowPlan:
    """The graph: nodes in a dependency order, and each job's trigger."""

    name: str
    nodes: list[str]
    triggers: dict[str, Trigger]

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.name,
            "nodes": self.nodes,
            "edges": [
                {"from": before, "to": node, "on": t.on, "logic": t.logic}
                for node, t in self.triggers.items()
                for before in t.after
            ],
        }


@dataclass
class NodeRun:
    node: str
    state: NodeState = "waiting"
    seconds: float = 0.0
    detail: str = ""


@dataclass
class WorkflowRun:
    plan: WorkflowPlan
    params: dict[str, str]
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    nodes: dict[str, NodeRun] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        """No node failed, except failures a ``failed``/``completed`` trigger handles."""
        return not any(
            n.state == "failed" and not self._handled(n.node) for n in self.nodes.values()
        )

    def _handled(self, node: str) -> bool:
        return any(
            node in t.after and t.on in ("failed", "completed") for t in self.plan.triggers.values()
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.plan.to_dict(),
            "params": self.params,
            "started_at": self.started_at.isoformat(),
            "succeeded": self.succeeded,
            "states": [
                {
                    "node": n.node,
                    "state": n.state,
                    "seconds": round(n.seconds, 3),
                    "detail": n.detail,
                }
                for n in self.nodes.values()
            ],
        }


def plan_workflow(project: Project, name: str) -> WorkflowPlan:
    """Resolve a workflow's nodes and order; every name is checked before anything runs."""
    workflows = project.settings.workflows
    if name not in workflows:
        close = difflib.get_close_matches(name, list(workflows), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(sorted(workflows)) or "none (add a [workflows.NAME] section)"
        raise NotFoundError(f"no workflow {name!r}{hint} (workflows: {known})")
    settings = project.settings
    triggers: dict[str, Trigger] = {}
    for job, section in settings.jobs.items():
        trigger = job_triggers(job, section.trigger).after
        if trigger is not None:
            triggers[f"job:{job}"] = trigger
    for node in [*workflows[name].start, *(a for t in triggers.values() for a in t.after)]:
        _check_node(project, node, f"workflows.{name}")
    nodes = list(dict.fromkeys(workflows[name].start))
    changed = True
    while changed:  # add every job whose trigger reaches back to the workflow
        changed = False
        for node, trigger in triggers.items():
            if node not in nodes and any(a in nodes for a in trigger.after):
                nodes.append(node)
                changed = True
    included = {n: t for n, t in triggers.items() if n in nodes}
    for node, trigger in included.items():
        missing = [a for a in trigger.after if a not in nodes]
        if missing:
            raise ConfigError(
                f"workflow {name!r}: {node} waits for {', '.join(missing)}, which the workflow "
                "never runs; add it to start"
            )
    return WorkflowPlan(name, _order(name, nodes, included), included)


def _check_node(project: Project, node: str, where: str) -> None:
    kind, _, target = node.partition(":")
    known = project.settings.crawlers if kind == "crawler" else project.settings.jobs
    if kind not in KINDS or not target:
        raise ConfigError(f"{where}: {node!r} is not crawler:NAME or job:NAME")
    if target not in known:
        close = difflib.get_close_matches(target, list(known), n=1)
        hint = f"; did you mean '{kind}:{close[0]}'?" if close else ""
        raise ConfigError(f"{where}: no {kind} named {target!r}{hint}")


def _order(name: str, nodes: list[str], triggers: Mapping[str, Trigger]) -> list[str]:
    """Nodes so that every node follows the nodes it waits for; a cycle is an error."""
    ordered: list[str] = []
    pending = list(nodes)
    while pending:
        ready = [
            n for n in pending if all(a in ordered for a in triggers.get(n, Trigger(())).after)
        ]
        if not ready:
            raise ConfigError(
                f"workflow {name!r}: its triggers form a cycle among {', '.join(pending)}"
            )
        ordered.extend(ready)
        pending = [n for n in pending if n not in ready]
    return ordered


def _after(triggers: Mapping[str, Trigger], node: str) -> tuple[str, ...]:
    trigger = triggers.get(node)
    return () if trigger is None else trigger.after


NodeRunner = Callable[[str, Mapping[str, str]], str]
"""Runs one node (``crawler:…``/``job:…``) and returns a one-line summary, or raises."""


def run_workflow(
    project: Project,
    plan: WorkflowPlan,
    params: Mapping[str, str] | None = None,
    *,
    runner: NodeRunner | None = None,
    on_change: Callable[[WorkflowRun], None] | None = None,
) -> WorkflowRun:
    """Run the plan's nodes in order under their triggers, sharing ``params``."""
    run = WorkflowRun(plan, dict(params or {}))
    run.nodes = {n: NodeRun(n) for n in plan.nodes}
    execute = runner or (lambda node, p: _run_node(project, node, p))
    states: dict[str, NodeState] = {n: "waiting" for n in plan.nodes}
    for node in plan.nodes:
        trigger = plan.triggers.get(node)
        if trigger is not None and trigger.holds(states) is not True:
            states[node] = run.nodes[node].state = "skipped"
            run.nodes[node].detail = _why_skipped(trigger, states)
            continue
        states[node] = run.nodes[node].state = "running"
        if on_change:
            on_change(run)
        started = time.perf_counter()
        try:
            run.nodes[node].detail = execute(node, run.params)
            states[node] = run.nodes[node].state = "succeeded"
        except LakeletError as exc:
            states[node] = run.nodes[node].state = "failed"
            run.nodes[node].detail = str(exc)
        run.nodes[node].seconds = time.perf_counter() - started
        if on_change:
            on_change(run)
    return run


def _why_skipped(trigger: Trigger, states: Mapping[str, NodeState]) -> str:
    seen = ", ".join(f"{a} {states[a]}" for a in trigger.after)
    return f"needs {trigger.logic} of {', '.join(trigger.after)} {trigger.on}; {seen}"


def _run_node(project: Project, node: str, params: Mapping[str, str]) -> str:
    kind, _, name = node.partition(":")
    if kind == "crawler":
        from lakelet.crawler import crawler_spec, run_crawler

        report = run_crawler(project, name, crawler_spec(project, name))
        changed = [t.name for t in report.tables if t.action != "unchanged"]
        return f"{len(report.tables)} table(s), changed: {', '.join(changed) or 'none'}"
    from lakelet.jobs.runner import run_job

    record = run_job(project, name, params)
    return (
        f"run {record.run_id}: read {record.rows_read}, wrote {record.rows_written}, "
        f"rejected {record.rows_rejected}"
    )
