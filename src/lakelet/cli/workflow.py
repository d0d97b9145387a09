"""``lakelet workflow show|run``: DAGs of crawlers and jobs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

import typer
from rich.tree import Tree

from lakelet.cli.context import open_project
from lakelet.cli.output import Format, console, print_json
from lakelet.errors import UserError

if TYPE_CHECKING:
    from lakelet.jobs.workflow import WorkflowPlan

FormatOpt = Annotated[Format, typer.Option("--format", help="Output format (table or json).")]
STYLE = {
    "succeeded": "green",
    "failed": "red",
    "skipped": "dim",
    "running": "yellow",
    "waiting": "white",
}


def register(app: typer.Typer) -> None:
    workflow = typer.Typer(help="Run DAGs of crawlers and jobs (\\[workflows.NAME]).")
    app.add_typer(workflow, name="workflow")

    @workflow.command("show")
    def show(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="Workflow name.")],
        fmt: FormatOpt = Format.table,
    ) -> None:
        """Print the workflow's graph (nothing runs)."""
        from lakelet.jobs.workflow import plan_workflow

        plan = plan_workflow(open_project(ctx), name)
        if fmt is Format.json:
            print_json(plan.to_dict())
            return
        states = {n: "waiting" for n in plan.nodes}
        console().print(_graph(plan, states, {}))

    @workflow.command("run")
    def run(
        ctx: typer.Context,
        name: Annotated[str, typer.Argument(help="Workflow name.")],
        param: Annotated[
            list[str] | None,
            typer.Option("--param", "-p", help="KEY=VALUE shared by every job run (repeatable)."),
        ] = None,
        fmt: FormatOpt = Format.table,
    ) -> None:
        """Run the workflow: nodes in dependency order under their triggers."""
        from lakelet.jobs.workflow import plan_workflow, run_workflow

        project = open_project(ctx)
        plan = plan_workflow(project, name)
        params = {}
        for item in param or []:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise UserError(f"--param {item!r}: expected KEY=VALUE")
            params[key] = value
        with console(stderr=True).status(f"running workflow {name}…"):
            result = run_workflow(project, plan, params)
        if fmt is Format.json:
            print_json(result.to_dict())
        else:
            states = {n: r.state for n, r in result.nodes.items()}
            details = {n: r.detail for n, r in result.nodes.items()}
            console().print(_graph(plan, states, details))
            verdict = "[green]succeeded[/]" if result.succeeded else "[red]failed[/]"
            console().print(f"workflow {name}: {verdict}")
        if not result.succeeded:
            raise typer.Exit(1)


def _graph(plan: WorkflowPlan, states: Mapping[str, str], details: Mapping[str, str]) -> Tree:
    """Each node under the nodes it waits for (a node waiting for several is repeated)."""
    tree = Tree(f"[bold]workflow {plan.name}[/]")
    branches: dict[str, list[Tree]] = {}

    def label(node: str) -> str:
        state = states.get(node, "waiting")
        detail = f" — {details[node]}" if details.get(node) else ""
        trigger = plan.triggers.get(node)
        when = f" (after {trigger.logic} {trigger.on})" if trigger else ""
        return f"[{STYLE[state]}]{node}[/] [{STYLE[state]}]{state}[/]{when}{detail}"

    for node in plan.nodes:
        trigger = plan.triggers.get(node)
        parents = [b for a in (trigger.after if trigger else ()) for b in branches.get(a, [])]
        homes = parents or [tree]
        branches[node] = [home.add(label(node)) for home in homes]
    return tree
