"""The functions runtime: Lambda's invoke semantics over forked workers.

:class:`Runtime` implements :class:`~lakelet.functions.invocation.Invoker`. A
synchronous call takes a concurrency slot (or is throttled: ``TooManyRequests``),
borrows a warm worker of its function or forks one from the zygote (a cold start,
reported with its ``Init Duration``), waits at most the function's timeout (then the
worker is killed: ``Sandbox.Timedout``) and returns the result with Lambda's ``REPORT``
figures. An ``Event`` call is queued durably and answered at once; see
:mod:`lakelet.functions.runtime.asyncinvoke`. Every invocation, throttles included, is
stored with its cost (:mod:`lakelet.functions.runtime.stats`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakelet.errors import ConfigError, UserError
from lakelet.functions.context import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION,
    new_log_stream_name,
    new_request_id,
    runtime_environment,
)
from lakelet.functions.invocation import (
    FunctionFailure,
    FunctionsError,
    Invocation,
    InvocationType,
    Outcome,
    TooManyRequests,
)
from lakelet.functions.model import App, FunctionSpec
from lakelet.functions.runtime import protocol, report
from lakelet.functions.runtime.limits import ConcurrencyLimits
from lakelet.functions.runtime.pool import Worker, WorkerPool, resident_bytes, salvage_log
from lakelet.functions.runtime.stats import InvocationRecorder, Record
from lakelet.functions.runtime.worker import WorkerConfig
from lakelet.functions.runtime.zygote import Boot, SpawnFailed, Zygote

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelet.functions.runtime.asyncinvoke import AsyncInvoker
    from lakelet.project import Project

log = logging.getLogger("lakelet.functions")

KB = 1024


@dataclass(frozen=True)
class RuntimeOptions:
    """How the runtime behaves; ``[functions]`` in ``lakelet.toml`` sets the first four.

    ``retry_backoff_s`` are the waits before the second and third attempt of an
    asynchronous event (Lambda: one and two minutes); ``async_poll_s`` is how often
    the event queues are checked for events due again.
    """

    max_concurrency: int = 10
    idle_timeout_s: float = 300.0
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    retry_backoff_s: tuple[float, ...] = (60.0, 120.0)
    async_poll_s: float = 1.0
    memory_poll_s: float = 0.01
    log_dir: Path | None = None


class Runtime:
    """Runs an :class:`App`'s functions in workers forked from a zygote.

    ``engine`` (the project's metadata database) stores invocations and queues
    asynchronous events; without it neither happens and ``Event`` calls are refused.
    ``sys_path`` is where the zygote finds the app's modules (default: this process's).
    Start it with :meth:`start` or on first use; :meth:`close` stops every process.
    """

    def __init__(
        self,
        app: App,
        *,
        engine: sa.Engine | None = None,
        options: RuntimeOptions | None = None,
        sys_path: Sequence[str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.app = app
        self.options = options or RuntimeOptions()
        _check_handlers(app)
        self.limits = ConcurrencyLimits(app.functions, self.options.max_concurrency)
        modules = sorted({s.handler_ref.partition(":")[0] for s in app.functions.values()})
        self.zygote = Zygote(modules, sys_path=sys_path, cwd=cwd)
        self._engine = engine
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._pool: WorkerPool | None = None
        self._recorder: InvocationRecorder | None = None
        self._events: AsyncInvoker | None = None
        self._executor = ThreadPoolExecutor(
            max_workers=self.options.max_concurrency, thread_name_prefix="lakelet-fn"
        )

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> Boot:
        """Start the zygote (importing the app), the pool and the event dispatcher."""
        with self._lock:
            if self._closed:
                raise FunctionsError("this functions runtime is closed")
            if not self._started:
                boot = self.zygote.start()
                if boot.logs:
                    log.info("init of app %s:\n%s", self.app.name, boot.logs.rstrip())
                self._pool = WorkerPool(
                    self.zygote,
                    idle_timeout_s=self.options.idle_timeout_s,
                    memory_poll_s=self.options.memory_poll_s,
                )
                if self._engine is not None:
                    from lakelet.functions.queues import QueueStore
                    from lakelet.functions.runtime.asyncinvoke import AsyncInvoker

                    self._recorder = InvocationRecorder(self._engine, log_dir=self.options.log_dir)
                    self._events = AsyncInvoker(self, QueueStore(self._engine))
                    self._events.start()
                self._started = True
            assert self.zygote.boot is not None
            return self.zygote.boot

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._events is not None:
            self._events.stop()
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._pool is not None:
            self._pool.close()
        self.zygote.close()
        if self._recorder is not None:
            self._recorder.close()

    def __enter__(self) -> Runtime:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def flush(self) -> None:
        """Wait until every invocation so far is stored."""
        if self._recorder is not None:
            self._recorder.flush()

    @property
    def pool(self) -> WorkerPool:
        self._ensure_started()
        assert self._pool is not None
        return self._pool

    @property
    def events(self) -> AsyncInvoker:
        self._ensure_started()
        if self._events is None:
            raise UserError(
                "asynchronous invocation needs the project's metadata database to queue "
                "events; open the runtime with engine=project.metadata"
            )
        return self._events

    # --- Invoker ---------------------------------------------------------------------

    def invoke(
        self,
        function: str,
        event: Any,
        *,
        invocation_type: InvocationType = "RequestResponse",
        source: str = "direct",
    ) -> Invocation:
        spec = self.app.get(function)
        self._ensure_started()
        if invocation_type == "Event":
            return self.events.submit(spec, event, source)
        if invocation_type != "RequestResponse":
            raise UserError(f"invocation type {invocation_type!r}: use RequestResponse or Event")
        self._acquire(spec, source)
        try:
            return self.run_reserved(spec, event, source=source)
        finally:
            self.limits.release(spec.name)

    async def ainvoke(
        self,
        function: str,
        event: Any,
        *,
        invocation_type: InvocationType = "RequestResponse",
        source: str = "direct",
    ) -> Invocation:
        """Throttling is decided on the loop, at once; the call itself waits in one of
        ``max_concurrency`` threads, so a burst never queues behind busy threads."""
        spec = self.app.get(function)
        if self._closed:
            raise FunctionsError("this functions runtime is closed")
        if not self._started or invocation_type == "Event":
            return await asyncio.to_thread(
                self.invoke, function, event, invocation_type=invocation_type, source=source
            )
        self._acquire(spec, source)
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(
                self._executor, self._run_and_release, spec, event, source
            )
        except BaseException:
            self.limits.release(spec.name)
            raise
        return await future

    def _run_and_release(self, spec: FunctionSpec, event: Any, source: str) -> Invocation:
        try:
            return self.run_reserved(spec, event, source=source)
        finally:
            self.limits.release(spec.name)

    def _acquire(self, spec: FunctionSpec, source: str) -> None:
        try:
            self.limits.acquire(spec.name)
        except TooManyRequests as exc:
            throttled = Invocation(
                new_request_id(),
                spec.name,
                "throttled",
                failure=FunctionFailure("TooManyRequestsException", str(exc)),
                memory_mb=spec.memory_mb,
            )
            self._record(throttled, source, "RequestResponse", 1)
            raise

    # --- one invocation --------------------------------------------------------------

    def run_reserved(
        self,
        spec: FunctionSpec,
        event: Any,
        *,
        source: str = "direct",
        request_id: str | None = None,
        invocation_type: InvocationType = "RequestResponse",
        attempt: int = 1,
    ) -> Invocation:
        """Run one invocation in a slot the caller already holds, and store it."""
        request_id = request_id or new_request_id()
        started_at = datetime.now(UTC)
        invocation = self._run(spec, event, request_id)
        self._record(invocation, source, invocation_type, attempt, started_at)
        return invocation

    def _run(self, spec: FunctionSpec, event: Any, request_id: str) -> Invocation:
        pool = self.pool
        request = _encode_request(spec, event, request_id)
        try:
            worker = pool.checkout(spec.name, lambda: self._worker_config(spec), request)
        except SpawnFailed as exc:
            return self._finish(spec, request_id, "error", failure=exc.failure)
        sent = time.monotonic()
        try:
            if not worker.request_sent:
                worker.sock.sendall(request)
            reply = protocol.recv(worker.sock, deadline=sent + spec.timeout_s)
        except TimeoutError:
            return self._timed_out(spec, request_id, worker, sent)
        except (protocol.ChannelClosed, BrokenPipeError, ConnectionResetError):
            return self._died(spec, request_id, worker, sent)
        if worker.killed_for == "out_of_memory":  # over the limit just as it answered
            pool.discard(worker)
            return self._finish(
                spec,
                request_id,
                "out_of_memory",
                failure=report.out_of_memory_failure(request_id),
                duration_ms=float(reply.get("duration_ms", 0.0)),
                init_ms=self._init_ms(worker, reply),
                max_used_mb=_mb(worker.peak_rss_bytes),
                body=str(reply.get("logs", "")),
            )
        init_ms = self._init_ms(worker, reply)
        if reply.get("fatal"):
            pool.discard(worker)
        else:
            pool.checkin(worker)
        outcome: Outcome = reply["outcome"]
        failure = None
        if outcome == "out_of_memory":
            failure = report.out_of_memory_failure(request_id)
        elif outcome != "ok":
            f = reply["failure"]
            failure = FunctionFailure(f["errorType"], f["errorMessage"], list(f["stackTrace"]))
        return self._finish(
            spec,
            request_id,
            outcome,
            payload=reply.get("payload"),
            failure=failure,
            duration_ms=float(reply["duration_ms"]),
            init_ms=init_ms,
            max_used_mb=math.ceil(int(reply["max_rss_kb"]) / KB),
            body=str(reply.get("logs", "")),
        )

    def _timed_out(
        self, spec: FunctionSpec, request_id: str, worker: Worker, sent: float
    ) -> Invocation:
        body = salvage_log(worker.pid)
        worker.peak_rss_bytes = max(worker.peak_rss_bytes, resident_bytes(worker.pid) or 0)
        self.pool.kill(worker, "timeout")
        self.pool.discard(worker)
        body = (body.rstrip("\n") + "\n" if body else "") + report.timeout_log(
            request_id, spec.timeout_s
        )
        return self._finish(
            spec,
            request_id,
            "timeout",
            failure=report.timeout_failure(request_id, spec.timeout_s),
            duration_ms=(time.monotonic() - sent) * 1000,
            init_ms=self._spawn_ms(worker),
            max_used_mb=_mb(worker.peak_rss_bytes),
            body=body,
        )

    def _died(self, spec: FunctionSpec, request_id: str, worker: Worker, sent: float) -> Invocation:
        """The worker's socket closed mid-invocation: killed for memory, or it exited."""
        self.pool.discard(worker)
        duration_ms = (time.monotonic() - sent) * 1000
        used_mb = _mb(worker.peak_rss_bytes)
        if worker.killed_for == "out_of_memory":
            failure = report.out_of_memory_failure(request_id)
            outcome: Outcome = "out_of_memory"
            used_mb = max(used_mb, spec.memory_mb)
        else:
            failure = report.exit_failure(request_id)
            outcome = "error"
        said = worker.last_words.rstrip("\n")
        return self._finish(
            spec,
            request_id,
            outcome,
            failure=failure,
            duration_ms=duration_ms,
            init_ms=self._spawn_ms(worker),
            max_used_mb=used_mb,
            body=(f"{said}\n" if said else "") + f"{failure.message}\n{failure.error_type}",
        )

    def _finish(
        self,
        spec: FunctionSpec,
        request_id: str,
        outcome: Outcome,
        *,
        payload: Any = None,
        failure: FunctionFailure | None = None,
        duration_ms: float = 0.0,
        init_ms: float | None = None,
        max_used_mb: int = 0,
        body: str = "",
    ) -> Invocation:
        invocation = Invocation(
            request_id=request_id,
            function=spec.name,
            outcome=outcome,
            payload=payload if outcome == "ok" else None,
            failure=failure,
            duration_ms=duration_ms,
            billed_ms=report.billed_ms(duration_ms, init_ms),
            memory_mb=spec.memory_mb,
            max_memory_used_mb=max_used_mb,
            init_ms=init_ms,
        )
        line = report.report_line(invocation)
        log.info("%s", line)
        return replace(invocation, logs=report.log_text(request_id, body, line))

    # --- helpers ---------------------------------------------------------------------

    def _worker_config(self, spec: FunctionSpec) -> WorkerConfig:
        stream = new_log_stream_name()
        environment = {
            **runtime_environment(spec, region=self.options.region, log_stream=stream),
            "TZ": ":UTC",
            **spec.environment,
        }
        return WorkerConfig(
            function=spec.name,
            handler_ref=spec.handler_ref,
            memory_mb=spec.memory_mb,
            timeout_s=spec.timeout_s,
            environment=environment,
            region=self.options.region,
            account_id=self.options.account_id,
            log_stream=stream,
        )

    @staticmethod
    def _init_ms(worker: Worker, reply: dict[str, Any]) -> float | None:
        """Cold start: from asking the zygote for a fork to the worker being ready."""
        if not worker.cold or "ready_ns" not in reply:
            return None
        return max(0.0, (int(reply["ready_ns"]) - worker.spawned_ns) / 1e6)

    @staticmethod
    def _spawn_ms(worker: Worker) -> float | None:
        """Cold start of a worker that never answered: the fork's round trip."""
        if not worker.cold:
            return None
        return max(0.0, (worker.forked_ns - worker.spawned_ns) / 1e6)

    def _record(
        self,
        invocation: Invocation,
        source: str,
        invocation_type: str,
        attempt: int,
        started_at: datetime | None = None,
    ) -> None:
        if self._recorder is not None:
            self._recorder.record(
                Record(
                    invocation, source, invocation_type, attempt, started_at or datetime.now(UTC)
                )
            )

    def _ensure_started(self) -> None:
        if self._closed:
            raise FunctionsError("this functions runtime is closed")
        if not self._started:
            self.start()


def open_runtime(project: Project, *, app: App | None = None, **options: Any) -> Runtime:
    """The runtime of a project's app, with ``[functions]`` settings and its database;
    ``options`` override :class:`RuntimeOptions` fields."""
    if app is None:
        from lakelet.functions.loader import load_app

        app = load_app(project)
    section = project.settings.functions
    settings = RuntimeOptions(
        max_concurrency=section.max_concurrency,
        idle_timeout_s=float(section.idle_timeout_s),
        region=section.region,
        account_id=section.account_id,
        log_dir=project.state_dir / "logs" / "functions",
    )
    return Runtime(
        app,
        engine=project.metadata,
        options=replace(settings, **options),
        sys_path=[str(project.root), *[p for p in sys.path if p != str(project.root)]],
        cwd=project.root,
    )


def _check_handlers(app: App) -> None:
    """A forked worker finds its handler by ``module:qualname``; some cannot be found."""
    for spec in app.functions.values():
        module, _, qualname = spec.handler_ref.partition(":")
        if module == "__main__" or "<locals>" in qualname or "<lambda>" in qualname:
            raise ConfigError(
                f"function {spec.name!r}: handler {spec.handler_ref!r} cannot be found by a "
                "worker; define handlers at the top level of an importable module (the app "
                "module named by [functions] app)"
            )


def _encode_request(spec: FunctionSpec, event: Any, request_id: str) -> bytes:
    deadline_epoch_ms = int(time.time() * 1000 + spec.timeout_s * 1000)
    try:
        return protocol.encode(
            {"request_id": request_id, "event": event, "deadline_epoch_ms": deadline_epoch_ms}
        )
    except (TypeError, ValueError) as exc:
        raise UserError(
            f"function {spec.name!r}: the event is not JSON ({exc}); Lambda events are JSON"
        ) from None


def _mb(size: int) -> int:
    return math.ceil(size / (KB * KB))
