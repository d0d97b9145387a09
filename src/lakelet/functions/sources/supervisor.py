"""``lakelet up``: the functions runtime, the API gateway and every event source of a
project, in one asyncio loop.

The runtime starts first (its zygote is a process of its own, started before this
process opens any database connection or S3 client). Then the sources run as loops
on the event loop, each step in a worker thread since they block on the database, the
lake or a synchronous invocation: the scheduler, the lake watcher, the object-event
dispatcher with the arrival triggers of crawlers and jobs, and a few consumers per
queue trigger. Crawler and job runs happen in processes of their own, so nothing here
holds the DuckDB warehouse open. One ``lakelet up`` per project: a lock file in
``.lakelet/`` refuses a second.

``SIGINT``/``SIGTERM`` stop it gracefully: the gateway stops accepting, the sources
stop taking work, what is in flight may finish for ``grace_s`` seconds (then crawler
and job processes are terminated), and the runtime is closed. A second signal skips
the wait. Anything cut short is delivered again after the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import logging
import os
import signal
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import uvicorn

from lakelet.errors import UserError
from lakelet.functions.queues import QueueStore
from lakelet.functions.sources.arrivals import Arrivals, arrival_nodes
from lakelet.functions.sources.launcher import Launcher
from lakelet.functions.sources.objects import (
    Location,
    ObjectDispatcher,
    ObjectWatcher,
    watched_locations,
)
from lakelet.functions.sources.pollers import QueuePoller, consumers, prepare_queues
from lakelet.functions.sources.scheduler import Clock, Scheduler, schedule_entries
from lakelet.functions.sources.state import SourceState

if TYPE_CHECKING:
    from lakelet.functions.invocation import Invoker
    from lakelet.functions.model import App
    from lakelet.functions.runtime import Runtime
    from lakelet.project import Project

log = logging.getLogger("lakelet.up")

LOCK_FILE = "up.lock"
SPARE_THREADS = 4
FORCE_CHECK_S = 0.2  # how often a graceful stop looks for a second Ctrl-C


@dataclass(frozen=True)
class UpOptions:
    """How ``lakelet up`` runs. ``host``/``port`` default to ``[functions.gateway]``;
    ``poll_interval_s`` paces the scheduler, the watcher, the dispatcher and empty
    queues; ``overrides`` are the CLI's ``--set`` values, passed on to crawler and
    job runs."""

    host: str | None = None
    port: int | None = None
    gateway: bool = True
    poll_interval_s: float = 1.0
    grace_s: float = 10.0
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.poll_interval_s <= 0:
            raise UserError(f"--poll-interval {self.poll_interval_s}: must be over 0 seconds")
        if self.grace_s < 0:
            raise UserError(f"grace period {self.grace_s}: must not be negative")


@dataclass(frozen=True)
class Served:
    """One line of what ``lakelet up`` serves: a route, schedule, trigger, …"""

    kind: str
    what: str
    target: str


class Up:
    """Runs a project's functions and event sources until :meth:`stop`.

    ``app`` defaults to the project's (``[functions] app``; none is fine when crawlers
    or jobs have triggers). ``invoker`` replaces the forked-worker runtime (it is then
    not closed here); ``clock`` drives the scheduler (tests).
    """

    def __init__(
        self,
        project: Project,
        options: UpOptions | None = None,
        *,
        app: App | None = None,
        invoker: Invoker | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.project = project
        self.options = options or UpOptions()
        self.app = app if app is not None else _project_app(project)
        self.clock = clock
        self.url: str | None = None
        self.ready = threading.Event()
        self._invoker = invoker
        self._runtime: Runtime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._forced = False
        self._server: uvicorn.Server | None = None
        self._sockets: list[socket.socket] = []
        self.scheduler: Scheduler | None = None
        self.watcher: ObjectWatcher | None = None
        self.dispatcher: ObjectDispatcher | None = None
        self.arrivals: Arrivals | None = None
        self.launcher = Launcher(project.root, self.options.overrides)
        self.pollers: list[QueuePoller] = []

    # --- what it serves --------------------------------------------------------------

    def plan(self) -> list[Served]:
        """Everything this ``lakelet up`` will serve, without starting anything."""
        app, settings = self.app, self.project.settings
        rows = []
        if app is not None:
            rows += [
                Served("route", f"{' '.join(r.methods)} {r.path}", r.function) for r in app.routes
            ]
        for entry in schedule_entries(app, settings):
            rows.append(Served("schedule", entry.expression, entry.target))
        if app is not None:
            for t in app.object_triggers:
                what = f"{t.bucket}/{t.prefix}*{t.suffix}"
                rows.append(Served("object", what, t.function))
            for q in app.queue_triggers:
                rows.append(Served("queue", f"{q.queue} (batch {q.batch_size})", q.function))
        for node in arrival_nodes(settings):
            rows.append(Served("arrival", f"{node.location}", node.node))
        for loc in watched_locations(app, settings):
            rows.append(Served("watch", f"{loc}", f"every {self.options.poll_interval_s:g} s"))
        return rows

    @property
    def serves_http(self) -> bool:
        return self.options.gateway and self.app is not None and bool(self.app.routes)

    # --- running ---------------------------------------------------------------------

    def run(self, on_ready: Callable[[Up], None] | None = None) -> None:
        """Serve until ``SIGINT``/``SIGTERM`` (the main thread's entry point)."""

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.stop)
            await self.serve(on_ready)

        asyncio.run(main())

    def stop(self) -> None:
        """Ask for a graceful stop (thread-safe); a second call skips the grace period."""
        loop, stopping = self._loop, self._stopping
        if loop is None or stopping is None:
            return
        if stopping.is_set():
            self._forced = True
            log.info("stopping now")
        loop.call_soon_threadsafe(stopping.set)

    async def serve(self, on_ready: Callable[[Up], None] | None = None) -> None:
        """Start everything, run until :meth:`stop`, then shut down gracefully."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        with _project_lock(self.project):
            try:
                executor = await self._start()
            except BaseException:
                await self._abandon()
                raise
            tasks: list[asyncio.Task[None]] = []
            try:
                tasks = self._tasks(executor)
                self.ready.set()
                if on_ready is not None:
                    on_ready(self)
                await self._stopping.wait()
            finally:
                await self._shutdown(tasks, executor)

    async def _start(self) -> ThreadPoolExecutor:
        loop = asyncio.get_running_loop()
        project, options, app = self.project, self.options, self.app
        section = project.settings.functions
        invoker = self._invoker
        sock = self._bind() if self.serves_http else None  # the URL, before the runtime
        if app is not None and invoker is None:
            from lakelet.functions.runtime import open_runtime

            self._runtime = open_runtime(
                project,
                app=_with_environment(app, self._environment()),
                async_poll_s=min(options.poll_interval_s, 1.0),
            )
            await loop.run_in_executor(None, self._runtime.start)
            invoker = self._runtime
        self._invoker = invoker
        state = SourceState(project.metadata)
        entries = schedule_entries(app, project.settings)
        self.scheduler = Scheduler(
            entries,
            state,
            invoker=invoker,
            launcher=self.launcher,
            project=project,
            region=section.region,
            account_id=section.account_id,
            clock=self.clock,
        )
        self.arrivals = Arrivals(arrival_nodes(project.settings), self.launcher)
        locations = watched_locations(app, project.settings)
        self._check_buckets(locations)
        self.watcher = ObjectWatcher(project.store, project.events, state, locations)
        self.dispatcher = ObjectDispatcher(
            project.events,
            state,
            app.object_triggers if app is not None else [],
            invoker=invoker,
            region=section.region,
            on_events=self.arrivals.notice,
        )
        if app is not None and invoker is not None and app.queue_triggers:
            queues = QueueStore(project.metadata)
            for warning in prepare_queues(queues, app, section.queues, section.region):
                log.warning("%s", warning)
            for trigger in app.queue_triggers:
                poller = QueuePoller(
                    queues,
                    invoker,
                    trigger,
                    region=section.region,
                    account_id=section.account_id,
                )
                self.pollers += [poller] * consumers(app, trigger)
        for source in (self.scheduler, self.watcher, self.dispatcher):
            await loop.run_in_executor(None, source.start)
        if sock is not None and app is not None and invoker is not None:
            self._server = self._gateway(app, invoker, sock)
        return ThreadPoolExecutor(
            max_workers=3 + len(self.pollers) + SPARE_THREADS, thread_name_prefix="lakelet-up"
        )

    def _tasks(self, executor: ThreadPoolExecutor) -> list[asyncio.Task[None]]:
        interval = self.options.poll_interval_s
        assert self.scheduler and self.watcher and self.dispatcher and self.arrivals
        dispatcher, arrivals = self.dispatcher, self.arrivals

        def dispatch() -> None:
            try:
                dispatcher.step()
            finally:
                arrivals.step()

        loops: list[Awaitable[None]] = [
            self._every("scheduler", self.scheduler.tick, interval, executor),
            self._every("watcher", self.watcher.poll, interval, executor),
            self._every("dispatcher", dispatch, interval, executor),
            *(self._consume(p, interval, executor) for p in self.pollers),
        ]
        tasks = [asyncio.ensure_future(loop) for loop in loops]
        if self._server is not None:
            served = asyncio.ensure_future(self._server.serve(sockets=list(self._sockets)))
            served.add_done_callback(self._gateway_ended)
            tasks.append(served)
        return tasks

    def _gateway_ended(self, task: asyncio.Future[None]) -> None:
        """The gateway must not end on its own: if it does, everything stops."""
        if self._stopped():
            return
        failure = None if task.cancelled() else task.exception()
        log.error("the gateway stopped%s; stopping", f": {failure}" if failure else "")
        self.stop()

    async def _every(
        self, name: str, step: Callable[[], object], interval: float, executor: ThreadPoolExecutor
    ) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopped():
            try:
                await loop.run_in_executor(executor, step)
            except Exception as exc:
                if self._stopped() or _interpreter_exiting(exc):
                    return
                log.warning("%s: %s: %s; trying again", name, type(exc).__name__, exc)
                log.debug("%s failed", name, exc_info=True)
            await self._pause(interval)

    async def _consume(
        self, poller: QueuePoller, interval: float, executor: ThreadPoolExecutor
    ) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopped():
            try:
                result = await loop.run_in_executor(executor, poller.poll_once)
            except Exception as exc:
                if self._stopped() or _interpreter_exiting(exc):
                    return
                log.warning("sqs       %s: %s: %s", poller.trigger.queue, type(exc).__name__, exc)
                result = None
            if result is None or result.outcome == "throttled":
                await self._pause(interval)

    async def _shutdown(
        self, tasks: list[asyncio.Task[None]], executor: ThreadPoolExecutor
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.grace_s
        log.info("stopping: finishing what is in flight (up to %g s)", self.options.grace_s)
        self.launcher.stop_accepting()
        if self._server is not None:
            self._server.should_exit = True
        pending = {t for t in tasks if not t.done()}
        while pending and not self._forced and (left := deadline - loop.time()) > 0:
            _, pending = await asyncio.wait(pending, timeout=min(left, FORCE_CHECK_S))
        while not self._forced and (left := deadline - loop.time()) > 0:
            if await loop.run_in_executor(None, self.launcher.wait, min(left, FORCE_CHECK_S)):
                break
        if self.launcher.running():
            log.warning("stopping crawler/job runs: %s", ", ".join(self.launcher.running()))
            await loop.run_in_executor(None, self.launcher.terminate)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._runtime is not None:
            # Asynchronous events already taken finish while the runtime is still open.
            await loop.run_in_executor(None, self._runtime.events.stop)
            await loop.run_in_executor(None, self._runtime.close)
        executor.shutdown(wait=False, cancel_futures=True)
        log.info("stopped")

    async def _abandon(self) -> None:
        """Undo a start that failed half-way."""
        for sock in self._sockets:
            sock.close()
        if self._runtime is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._runtime.close)

    # --- helpers ---------------------------------------------------------------------

    def _stopped(self) -> bool:
        return self._stopping is None or self._stopping.is_set()

    async def _pause(self, seconds: float) -> None:
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _environment(self) -> dict[str, str]:
        """What ``lakelet up`` tells its functions: the project folder and, when it
        serves HTTP, the gateway's base URL (for a function calling another route)."""
        variables = {"LAKELET_PROJECT_ROOT": str(self.project.root)}
        if self.url is not None:
            variables["LAKELET_GATEWAY_URL"] = self.url
        return variables

    def _bind(self) -> socket.socket:
        gateway = self.project.settings.functions.gateway
        host = self.options.host or gateway.host
        port = gateway.port if self.options.port is None else self.options.port
        try:
            sock = socket.create_server((host, port))
        except OSError as exc:
            raise UserError(
                f"cannot serve the gateway on {host}:{port}: {exc.strerror or exc}; "
                "choose another with --port (or [functions.gateway] port)"
            ) from None
        bound = sock.getsockname()
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound[1]}"
        self._sockets = [sock]
        return sock

    def _gateway(self, app: App, invoker: Invoker, sock: socket.socket) -> uvicorn.Server:
        from lakelet.functions.gateway import from_settings, make_server

        configured = make_server(
            app, invoker, from_settings(self.project.settings), base=self.project.root
        ).config
        configured.timeout_graceful_shutdown = max(1, round(self.options.grace_s))
        return _GatewayServer(configured)

    def _check_buckets(self, locations: list[Location]) -> None:
        buckets = set(self.project.store.buckets())
        for loc in locations:
            if loc.bucket not in buckets:
                raise UserError(
                    f"a trigger waits for objects in bucket {loc.bucket!r}, which the lake "
                    f"has not (buckets: {', '.join(sorted(buckets)) or 'none'}); create it "
                    "or fix the trigger"
                )


class _GatewayServer(uvicorn.Server):
    """The gateway's server, leaving ``SIGINT``/``SIGTERM`` to :class:`Up`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _with_environment(app: App, variables: Mapping[str, str]) -> App:
    """A copy of ``app`` whose functions also get ``variables`` (their own settings win)."""
    functions = {
        name: dataclasses.replace(spec, environment={**variables, **spec.environment})
        for name, spec in app.functions.items()
    }
    return dataclasses.replace(app, functions=functions)


def _interpreter_exiting(exc: Exception) -> bool:
    """Worker threads are refused once Python is exiting (a host thread of the
    loop outlived the main thread): the loops end instead of retrying forever."""
    return isinstance(exc, RuntimeError) and "after shutdown" in str(exc)


def _project_app(project: Project) -> App | None:
    if project.settings.functions.app is None:
        return None
    from lakelet.functions.loader import load_app

    return load_app(project)


@contextlib.contextmanager
def _project_lock(project: Project) -> Iterator[None]:
    """One ``lakelet up`` per project (the kernel drops the lock when it dies)."""
    project.state_dir.mkdir(parents=True, exist_ok=True)
    path = project.state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text(encoding="utf-8").strip() or "another process"
            raise UserError(
                f"lakelet up is already running for {project.root} (pid {holder}); stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)
