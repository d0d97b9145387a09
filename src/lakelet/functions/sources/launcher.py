"""Start crawler and job runs in processes of their own, one at a time per node.

The scheduler and the arrival triggers of ``lakelet up`` ask the :class:`Launcher`
for a run; it refuses while the same node (``crawler:NAME``, ``job:NAME``) is still
running, starts :mod:`lakelet.functions.sources.noderun` otherwise, and reports the
outcome through the caller's callback from a thread that waits for the process.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakelet.functions.sources.noderun import EXIT_BUSY

log = logging.getLogger("lakelet.up")

STDERR_TAIL = 600
TERMINATE_WAIT_S = 5.0


@dataclass(frozen=True)
class NodeRun:
    """The outcome of one run: ``ran`` is false when an arrival check found nothing
    new; ``busy`` when another process was running the node."""

    node: str
    why: str
    ok: bool
    ran: bool
    busy: bool
    summary: str
    seconds: float


OnDone = Callable[[NodeRun], None]


class Launcher:
    """Runs nodes of one project (``root``, with the CLI's ``--set`` ``overrides``)."""

    def __init__(
        self,
        root: Path,
        overrides: Mapping[str, Any] | None = None,
        *,
        python: str = sys.executable,
    ) -> None:
        self.root = root
        self.overrides = dict(overrides or {})
        self.python = python
        self._lock = threading.Lock()
        self._running: dict[str, subprocess.Popen[bytes] | None] = {}
        self._threads: list[threading.Thread] = []
        self._accepting = True
        self._idle = threading.Condition(self._lock)

    def busy(self, node: str) -> bool:
        with self._lock:
            return node in self._running

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    def launch(self, node: str, why: str, *, arrival: bool, on_done: OnDone) -> bool:
        """Start ``node`` unless it is running already or the launcher is stopping."""
        with self._lock:
            if not self._accepting or node in self._running:
                return False
            self._running[node] = None
            thread = threading.Thread(
                target=self._run, args=(node, why, arrival, on_done), name=f"lakelet-{node}"
            )
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return True

    def stop_accepting(self) -> None:
        with self._lock:
            self._accepting = False

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every run to end; ``True`` if they did."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def terminate(self) -> None:
        """Stop the runs still going (``SIGTERM``, then ``SIGKILL``); a run stopped
        half-way commits nothing and its schedule or arrival is not marked done."""
        with self._lock:
            processes = [p for p in self._running.values() if p is not None]
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(TERMINATE_WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
        for thread in list(self._threads):
            thread.join(TERMINATE_WAIT_S)

    # --- one run ---------------------------------------------------------------------

    def _command(self, node: str, arrival: bool) -> list[str]:
        command = [
            self.python,
            "-m",
            "lakelet.functions.sources.noderun",
            node,
            "--project",
            str(self.root),
            "--overrides",
            json.dumps(self.overrides),
        ]
        return [*command, "--arrival"] if arrival else command

    def _run(self, node: str, why: str, arrival: bool, on_done: OnDone) -> None:
        started = time.monotonic()
        try:
            process = subprocess.Popen(
                self._command(node, arrival),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.root,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            with self._lock:
                self._running[node] = process
            out, err = process.communicate()
            result = _result(node, why, process.returncode, out, err, time.monotonic() - started)
        except Exception as exc:  # could not start the process at all
            result = NodeRun(node, why, False, False, False, str(exc), time.monotonic() - started)
        finally:
            with self._idle:
                self._running.pop(node, None)
                self._idle.notify_all()
        try:
            on_done(result)
        except Exception:
            log.exception("handling the end of %s failed", node)


def _result(node: str, why: str, code: int, out: bytes, err: bytes, seconds: float) -> NodeRun:
    lines = out.decode("utf-8", "replace").strip().splitlines()
    reported: dict[str, Any] = {}
    if lines:
        try:
            reported = json.loads(lines[-1])
        except ValueError:
            reported = {}
    if not isinstance(reported, dict) or "ok" not in reported:
        tail = err.decode("utf-8", "replace").strip()[-STDERR_TAIL:]
        summary = f"exit code {code}" + (f": {tail}" if tail else "")
        return NodeRun(node, why, False, True, False, summary, seconds)
    return NodeRun(
        node,
        why,
        ok=bool(reported["ok"]) and code == 0,
        ran=bool(reported.get("ran", True)),
        busy=code == EXIT_BUSY or bool(reported.get("busy")),
        summary=str(reported.get("summary", "")),
        seconds=seconds,
    )
