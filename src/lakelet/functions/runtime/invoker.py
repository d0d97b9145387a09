"""The functions runtime: Lambda's invoke semantics over forked workers.

:class:`Runtime` implements :class:`~lakelet.functions.invocation.Invoker`. A
synchronous call takes a concurrency slot (or is throttled: ``TooManyRequests``),
borrows a warm worker of its function or gets a new one from the zygote (a cold start,
reported with its ``Init Duration``), waits at most the function's timeout (then the
pool kills the worker: ``Sandbox.Timedout``) and returns the result with Lambda's
``REPORT`` figures. :meth:`Runtime.ainvoke` does the same on the caller's event loop
without a thread per call (see :mod:`lakelet.functions.runtime.replies`); only a cold
start's spawn runs in a thread. An ``Event`` call is queued durably and answered at
once; see :mod:`lakelet.functions.runtime.asyncinvoke`. Every invocation, throttles
included, is stored with its cost (:mod:`lakelet.functions.runtime.stats`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakelet.errors import ConfigError, UserError
from lakelet.functions.context import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION,
    new_log_stream_name,
    runtime_environment,
)
from lakelet.functions.invocation import (
    FunctionFailure,
    FunctionsError,
    Invocation,
    InvocationType,
    TooManyRequests,
)
from lakelet.functions.model import App, FunctionSpec
from lakelet.functions.requestids import BatchedIds, lambda_ids
from lakelet.functions.runtime import protocol, results
from lakelet.functions.runtime.invocationrows import report_of
from lakelet.functions.runtime.limits import ConcurrencyLimits
from lakelet.functions.runtime.pool import Worker, WorkerPool, resident_bytes, salvage_log
from lakelet.functions.runtime.replies import PendingCall
from lakelet.functions.runtime.results import new_request_id
from lakelet.functions.runtime.stats import InvocationRecorder
from lakelet.functions.runtime.worker import WorkerConfig
from lakelet.functions.runtime.zygote import Boot, SpawnFailed, Zygote

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lakelet.functions.runtime.asyncinvoke import AsyncInvoker
    from lakelet.project import Project

log = logging.getLogger("lakelet.functions")

SYNC_GRACE_S = 0.5  # a synchronous call waits this much past the deadline for the watcher


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
        self._closing = False
        self._pool: WorkerPool | None = None
        self._recorder: InvocationRecorder | None = None
        self._events: AsyncInvoker | None = None
        self._request_ids = BatchedIds(lambda_ids)
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
            if self._closed or self._closing:
                return
            self._closing = True
        # Async events already taken finish first, so they are not failed as "closed".
        if self._events is not None:
            self._events.stop()
        with self._lock:
            self._closed = True
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
        """Throttling is decided at once; a warm worker is then written to and waited
        for on the running loop (no thread), a cold one forked in a thread first."""
        spec = self.app.get(function)
        if self._closed:
            raise FunctionsError("this functions runtime is closed")
        if invocation_type != "RequestResponse" or not self._started:
            return await asyncio.to_thread(
                self.invoke, function, event, invocation_type=invocation_type, source=source
            )
        self._acquire(spec, source)
        try:
            call = self._start_call(spec, event, source)
        except BaseException:
            self.limits.release(spec.name)
            raise
        return await call.future

    async def ainvoke_http(
        self, function: str, parts: protocol.HttpParts, *, source: str = "api"
    ) -> Invocation:
        """:meth:`ainvoke` with the event of an HTTP request given as its parts (see
        :mod:`lakelet.functions.runtime.protocol`): the worker makes the event, so the
        gateway's process neither builds nor encodes it, and usually renders the
        response too (the result's ``http_response``, without a payload)."""
        spec = self.app.get(function)
        if self._closed:
            raise FunctionsError("this functions runtime is closed")
        if not self._started:
            return await self.ainvoke(function, protocol.event_of(parts), source=source)
        self._acquire(spec, source)
        try:
            call = self._start_call(spec, parts, source, http=True)
        except BaseException:
            self.limits.release(spec.name)
            raise
        return await call.future

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

    # --- one invocation, on an event loop --------------------------------------------

    def _start_call(
        self, spec: FunctionSpec, event: Any, source: str, *, http: bool = False
    ) -> PendingCall:
        """``http``: ``event`` is an HTTP request's :data:`~protocol.HttpParts`."""
        loop = asyncio.get_running_loop()
        request_id = self._request_ids()
        started_at = time.time()
        if http:
            request = _encode_http_request(spec, event, request_id, started_at)
        else:
            request = _encode_request(spec, event, request_id, started_at)
        call = PendingCall(loop, spec, request_id, request, source, started_at, self._call_done)
        pool = self._pool
        assert pool is not None
        worker = pool.take(spec.name, loop)
        if worker is not None:
            self._send(call, worker)
            return call
        try:
            spawning = self._executor.submit(
                pool.spawn, spec.name, partial(self._worker_config, spec), request
            )
        except RuntimeError:  # the executor is shut down: the runtime is closing
            raise FunctionsError("this functions runtime is closed") from None
        spawning.add_done_callback(partial(self._spawn_done, call))
        return call

    def _spawn_done(self, call: PendingCall, spawning: Future[Worker]) -> None:
        """In the spawning thread: carry on on the call's loop. If that loop has closed
        meanwhile (its caller is gone), the pool's watcher finishes the call."""
        worker = None
        if not spawning.cancelled() and spawning.exception() is None:
            worker = spawning.result()
            call.worker = worker
            worker.call = call
            assert self._pool is not None
            call.sent = self._pool.sent(worker, call.spec.timeout_s)  # the deadline runs
        try:
            call.loop.call_soon_threadsafe(self._spawned, call, spawning)
        except RuntimeError:
            if worker is None:
                call.finished = True
                self.limits.release(call.spec.name)

    def _spawned(self, call: PendingCall, spawning: Future[Worker]) -> None:
        if spawning.cancelled():  # the runtime closed before the fork
            error: BaseException | None = FunctionsError("this functions runtime is closed")
        else:
            error = spawning.exception()
        if error is None:
            self._send(call, spawning.result())
            return
        call.finished = True
        self.limits.release(call.spec.name)
        if isinstance(error, SpawnFailed):
            invocation = results.finished(
                call.spec, call.request_id, "error", failure=error.failure
            )
            self._record(invocation, call.source, "RequestResponse", 1, call.started_at)
            call.resolve(invocation)
        else:
            call.resolve(error)

    def _send(self, call: PendingCall, worker: Worker) -> None:
        pool = self._pool
        assert pool is not None
        call.worker = worker
        worker.call = call
        try:
            pool.watch(worker, call.loop)
        except (OSError, ValueError):  # its socket is already closed: the pool was
            self._call_done(call, None)
            return
        if not call.sent:  # a cold start's deadline runs from the spawn
            call.sent = pool.sent(worker, call.spec.timeout_s)
        call.send()

    def _call_done(self, call: PendingCall, reply: dict[str, Any] | None) -> None:
        """The reply (``None``: the worker's socket ended) of a call on a loop (or, once
        that loop has closed, in the pool's watcher)."""
        if call.finished:
            return
        call.finished = True
        worker = call.worker
        assert worker is not None and self._pool is not None
        worker.call = None
        spec = call.spec
        try:
            if reply is None:
                invocation = results.from_death(spec, call.request_id, worker, call.sent)
                keep = False
            else:
                invocation, keep = results.from_reply(spec, call.request_id, worker, reply)
        except Exception as exc:  # a reply that does not say what it must
            self._pool.discard(worker)
            self.limits.release(spec.name)
            call.resolve(exc)
            return
        if keep:
            self._pool.checkin(worker)
        else:
            self._pool.discard(worker)
        self.limits.release(spec.name)
        self._record(invocation, call.source, "RequestResponse", 1, call.started_at)
        call.resolve(invocation)

    # --- one invocation, in this thread ----------------------------------------------

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
        started_at = time.time()
        invocation = self._run(spec, event, request_id)
        self._record(invocation, source, invocation_type, attempt, started_at)
        return invocation

    def _run(self, spec: FunctionSpec, event: Any, request_id: str) -> Invocation:
        pool = self.pool
        request = _encode_request(spec, event, request_id, time.time())
        worker = pool.take(spec.name)
        if worker is None:
            try:
                worker = pool.spawn(spec.name, partial(self._worker_config, spec), request)
            except SpawnFailed as exc:
                return results.finished(spec, request_id, "error", failure=exc.failure)
        sent = pool.sent(worker, spec.timeout_s)
        sock = worker.sock
        try:
            if not worker.request_sent:
                sock.settimeout(spec.timeout_s + SYNC_GRACE_S)
                sock.sendall(request)
            reply = protocol.recv(
                sock, deadline=worker.deadline + SYNC_GRACE_S, buffer=protocol.FrameBuffer()
            )
        except TimeoutError:  # the pool's watcher kills at the deadline; it is late
            if worker.killed_for is None:
                worker.last_words = salvage_log(worker.pid)
                worker.peak_rss_bytes = max(worker.peak_rss_bytes, resident_bytes(worker.pid) or 0)
                pool.kill(worker, "timeout")
            pool.discard(worker)
            return results.from_death(spec, request_id, worker, sent)
        except (protocol.ChannelClosed, OSError):
            pool.discard(worker)
            return results.from_death(spec, request_id, worker, sent)
        invocation, keep = results.from_reply(spec, request_id, worker, reply)
        if keep:
            pool.checkin(worker)
        else:
            pool.discard(worker)
        return invocation

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

    def _record(
        self,
        invocation: Invocation,
        source: str,
        invocation_type: str,
        attempt: int,
        started_at: float | None = None,
    ) -> None:
        """Store the invocation (the recorder also logs its ``REPORT`` line, in batches);
        without a database, only log the line."""
        if self._recorder is not None:
            self._recorder.add(invocation, source, invocation_type, attempt, started_at)
        elif invocation.logs and log.isEnabledFor(logging.INFO):
            log.info("%s", report_of(invocation.logs))

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


def _encode_http_request(
    spec: FunctionSpec, parts: protocol.HttpParts, request_id: str, now: float
) -> bytes:
    """Parts :mod:`marshal` cannot carry (values of other types) go as their event."""
    deadline_epoch_ms = int((now + spec.timeout_s) * 1000)
    try:
        return protocol.encode_http_request(request_id, deadline_epoch_ms, parts)
    except ValueError:
        return _encode_request(spec, protocol.event_of(parts), request_id, now)


def _encode_request(spec: FunctionSpec, event: Any, request_id: str, now: float) -> bytes:
    deadline_epoch_ms = int((now + spec.timeout_s) * 1000)
    try:
        return protocol.encode_request(request_id, deadline_epoch_ms, event)
    except (TypeError, ValueError) as exc:
        raise UserError(
            f"function {spec.name!r}: the event is not JSON ({exc}); Lambda events are JSON"
        ) from None
