"""Crawlers with ``on_arrival = true`` and jobs with ``trigger.arrival``, run by
``lakelet up`` when objects arrive under their paths.

Whether a run is due is decided by the crawler's and the jobs' own rules
(``crawl_on_arrival``: events after the crawler's last consumed event;
``due_jobs``: events after the job's last run started), inside the run's own process
(:mod:`lakelet.functions.sources.noderun`), so they keep their cursors and stay
at-least-once across restarts. This module only decides *when to ask*: once at
start (for what arrived while ``lakelet up`` was down), whenever the dispatcher hands
on events under a node's path, again after a run (for events that came during it),
and after a failure with a growing back-off, so a broken crawler is not restarted in
a tight loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakelet.functions.sources.launcher import Launcher, NodeRun
from lakelet.functions.sources.objects import Location
from lakelet.functions.sources.scheduler import log_run
from lakelet.storage.events import ObjectEvent

if TYPE_CHECKING:
    from lakelet.config import Settings

log = logging.getLogger("lakelet.up")

RETRY_FIRST_S = 30.0
RETRY_MAX_S = 1800.0
BUSY_RETRY_S = 5.0


@dataclass(frozen=True)
class ArrivalNode:
    """A crawler or job run when objects arrive under ``location``."""

    node: str
    location: Location

    @property
    def kind(self) -> str:
        return self.node.partition(":")[0]


def arrival_nodes(settings: Settings) -> list[ArrivalNode]:
    from lakelet.crawler.crawler import crawl_prefix
    from lakelet.jobs.triggers import job_triggers
    from lakelet.storage.base import split_location

    nodes = [
        ArrivalNode(f"crawler:{name}", Location(*crawl_prefix(spec.path)))
        for name, spec in sorted(settings.crawlers.items())
        if spec.on_arrival
    ]
    for name, job in sorted(settings.jobs.items()):
        arrival = job_triggers(name, job.trigger).arrival
        if arrival is not None:
            nodes.append(ArrivalNode(f"job:{name}", Location(*split_location(arrival))))
    return nodes


@dataclass
class _Asking:
    dirty: bool = True  # ask at start
    failures: int = 0
    retry_at: float = 0.0


class Arrivals:
    """Asks the :class:`Launcher` for arrival runs when they may be due."""

    def __init__(
        self,
        nodes: Sequence[ArrivalNode],
        launcher: Launcher,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nodes = list(nodes)
        self.launcher = launcher
        self.clock = clock
        self._lock = threading.Lock()
        self._asking = {n.node: _Asking() for n in self.nodes}

    def notice(self, events: Sequence[ObjectEvent]) -> None:
        """Events were handed on: the nodes whose paths they fall under may be due."""
        for node in self.nodes:
            if any(node.location.covers(e.bucket, e.key) for e in events):
                with self._lock:
                    self._asking[node.node].dirty = True

    def step(self) -> list[str]:
        """Start the arrival runs that may be due; returns the nodes started."""
        now = self.clock()
        started = []
        for node in self.nodes:
            with self._lock:
                asking = self._asking[node.node]
                if not asking.dirty or now < asking.retry_at:
                    continue
            if self.launcher.busy(node.node):
                continue  # asked again when the current run ends
            with self._lock:
                asking.dirty = False
            if self.launcher.launch(
                node.node, "new objects", arrival=True, on_done=self._done(node)
            ):
                started.append(node.node)
            else:
                with self._lock:
                    asking.dirty = True
        return started

    def pending(self) -> list[str]:
        """Nodes waiting to be asked (for tests and status)."""
        with self._lock:
            return [name for name, a in self._asking.items() if a.dirty]

    def _done(self, node: ArrivalNode) -> Callable[[NodeRun], None]:
        def done(run: NodeRun) -> None:
            # Events that came during the run marked the node dirty already.
            with self._lock:
                asking = self._asking[node.node]
                if run.busy:  # another process runs it: ask again in a while
                    asking.retry_at = self.clock() + BUSY_RETRY_S
                    asking.dirty = True
                elif run.ok:
                    asking.failures = 0
                    asking.retry_at = 0.0
                else:
                    asking.failures += 1
                    delay = min(RETRY_FIRST_S * 2 ** (asking.failures - 1), RETRY_MAX_S)
                    asking.retry_at = self.clock() + delay
                    asking.dirty = True
            if run.busy:
                log.info("%-9s %s: %s; trying again later", node.kind, node.node, run.summary)
                return
            log_run(node.kind, run)
            if not run.ok:
                log.warning("%-9s %s: next try in %.0f s", node.kind, node.node, delay)

        return done
