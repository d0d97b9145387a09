"""Arrival triggers of crawlers and jobs, and their runs in processes of their own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from lakelet.functions.sources.arrivals import (
    BUSY_RETRY_S,
    RETRY_FIRST_S,
    ArrivalNode,
    Arrivals,
    arrival_nodes,
)
from lakelet.functions.sources.launcher import Launcher, NodeRun
from lakelet.functions.sources.noderun import node_lock
from lakelet.functions.sources.objects import Location
from lakelet.project import Project
from lakelet.storage.events import ObjectEvent


@dataclass
class FakeLauncher:
    started: list[str] = field(default_factory=list)
    callbacks: dict[str, Callable[[NodeRun], None]] = field(default_factory=dict)

    def busy(self, node: str) -> bool:
        return node in self.callbacks

    def launch(
        self, node: str, why: str, *, arrival: bool, on_done: Callable[[NodeRun], None]
    ) -> bool:
        assert arrival
        if node in self.callbacks:
            return False
        self.started.append(node)
        self.callbacks[node] = on_done
        return True

    def finish(self, node: str, *, ok: bool = True, busy: bool = False) -> None:
        self.callbacks.pop(node)(NodeRun(node, "", ok, True, busy, "", 0.1))


NODES = [
    ArrivalNode("crawler:sales", Location("raw", "sales/")),
    ArrivalNode("job:returns", Location("raw", "returns/")),
]


def event(key: str) -> ObjectEvent:
    return ObjectEvent(1, "ObjectCreated:Put", datetime.now(UTC), "raw", key, 1, "e")


def arrivals(launcher: FakeLauncher, now: list[float]) -> Arrivals:
    return Arrivals(NODES, launcher, clock=lambda: now[0])  # type: ignore[arg-type]


def test_every_node_is_asked_once_at_start_then_on_its_own_objects() -> None:
    launcher, now = FakeLauncher(), [0.0]
    a = arrivals(launcher, now)
    assert a.step() == ["crawler:sales", "job:returns"]
    launcher.finish("crawler:sales")
    launcher.finish("job:returns")
    assert a.step() == []
    a.notice([event("sales/2026/a.csv"), event("other/b.csv")])
    assert a.step() == ["crawler:sales"]


def test_objects_arriving_during_a_run_ask_again_after_it() -> None:
    launcher, now = FakeLauncher(), [0.0]
    a = arrivals(launcher, now)
    a.step()
    a.notice([event("sales/late.csv")])
    assert a.step() == []  # never two runs at once
    launcher.finish("crawler:sales")
    assert a.step() == ["crawler:sales"]


def test_a_failed_run_is_retried_after_a_back_off() -> None:
    launcher, now = FakeLauncher(), [0.0]
    a = arrivals(launcher, now)
    a.step()
    launcher.finish("crawler:sales", ok=False)
    a.notice([event("sales/more.csv")])
    assert "crawler:sales" not in a.step()  # not restarted in a tight loop
    now[0] += RETRY_FIRST_S
    assert a.step() == ["crawler:sales"]
    launcher.finish("crawler:sales", ok=False)
    now[0] += RETRY_FIRST_S
    assert a.step() == []  # the back-off doubles
    now[0] += RETRY_FIRST_S
    assert a.step() == ["crawler:sales"]


def test_a_node_busy_in_another_process_is_asked_again_later() -> None:
    launcher, now = FakeLauncher(), [0.0]
    a = arrivals(launcher, now)
    a.step()
    launcher.finish("job:returns", busy=True)
    assert a.step() == []
    now[0] += BUSY_RETRY_S
    assert a.step() == ["job:returns"]


def test_arrival_nodes_are_read_from_the_settings(tmp_project: Project) -> None:
    config = tmp_project.root / "lakelet.toml"
    config.write_text(
        config.read_text()
        + """
[crawlers.sales]
path = "raw/sales"
on_arrival = true

[jobs.clean]
sql = "jobs/clean.sql"
output = "curated.clean"
trigger = { arrival = "raw/returns/" }
"""
    )
    assert arrival_nodes(Project.open(tmp_project.root).settings) == [
        ArrivalNode("crawler:sales", Location("raw", "sales/")),
        ArrivalNode("job:clean", Location("raw", "returns/")),
    ]


@pytest.mark.integration
def test_runs_are_refused_while_another_process_holds_the_node(tmp_project: Project) -> None:
    config = tmp_project.root / "lakelet.toml"
    config.write_text(config.read_text() + '\n[crawlers.sales]\npath = "raw/sales/"\n')
    project = Project.open(tmp_project.root)
    launcher = Launcher(project.root)
    results: dict[str, NodeRun] = {}
    done = threading.Event()

    def collect(run: NodeRun) -> None:
        results[run.node] = run
        if len(results) == 2:
            done.set()

    with node_lock(project, "crawler:sales") as held:
        assert held
        assert launcher.launch("crawler:sales", "test", arrival=False, on_done=collect)
        assert not launcher.launch("crawler:sales", "test", arrival=False, on_done=collect)
        assert launcher.launch("job:missing", "test", arrival=False, on_done=collect)
        assert done.wait(60)
    busy = results["crawler:sales"]
    assert busy.busy and not busy.ok
    missing = results["job:missing"]
    assert not missing.ok and not missing.busy and "missing" in missing.summary
    assert launcher.running() == []
