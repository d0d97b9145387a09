"""The zygote: a process that imports the app once, then forks a worker per request.

Importing an app's modules (and what they import) is the slow part of a Python cold
start; paid once here, a new execution environment is a ``fork`` away. The zygote is
its own single-threaded process (``python -m lakelet.functions.runtime.zygote``), so
a fork never copies the locks of a busy, threaded parent such as ``lakelet up``. It
holds no database connection and no S3 client, and forks from a frozen heap
(``gc.freeze``) so workers share its pages.

Even a fork is most of a cold start (copying page tables, then the pages a new process
writes first), so whenever it is idle the zygote keeps one child forked and prepared
ahead of time (a :class:`Blank`); a spawn hands it the function's configuration and
socket in one message, and the zygote forks the next blank after answering.

The runtime talks to it over a Unix socket: one spawn request at a time, each carrying
the new worker's end of a socket pair (``SCM_RIGHTS``); the reply is the worker's pid.
An app module that fails to import, or a handler it does not define, makes each spawn
for it answer with Lambda's ``Runtime.ImportModuleError`` / ``Runtime.HandlerNotFound``.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakelet.functions.invocation import FunctionFailure, FunctionsError
from lakelet.functions.model import Handler
from lakelet.functions.runtime import protocol, worker
from lakelet.functions.runtime.worker import WorkerConfig

BOOT_TIMEOUT_S = 120.0
MAX_REQUEST_BYTES = 1024 * 1024
READ_SIZE = 64 * 1024  # a spawn request usually fits; the heap serves it (no mmap)
MAX_PRELUDE_BYTES = 64 * 1024  # well inside a Unix socket's buffer: the write never blocks
BLANK_AFTER_MS = 0  # how long the zygote waits for another request before the next blank


class ZygoteError(FunctionsError):
    """The zygote process could not be started or has died."""


class SpawnFailed(Exception):
    """The function's module or handler could not be loaded (Lambda's init errors)."""

    def __init__(self, failure: FunctionFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass(frozen=True)
class Spawned:
    pid: int
    sock: socket.socket
    started_ns: int  # time.monotonic_ns() when the spawn was asked for
    prelude_sent: bool = False


@dataclass(frozen=True)
class Boot:
    """How the zygote's start went: total time, per-module import time, their output."""

    boot_ms: float
    import_ms: dict[str, float]
    logs: str


class Zygote:
    """The runtime's handle on its zygote process (thread-safe)."""

    def __init__(
        self,
        modules: Sequence[str],
        *,
        sys_path: Sequence[str] | None = None,
        cwd: Path | None = None,
        python: str = sys.executable,
    ) -> None:
        self.modules = list(dict.fromkeys(modules))
        self.sys_path = list(sys.path if sys_path is None else sys_path)
        self.cwd = cwd
        self.python = python
        self.boot: Boot | None = None
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> Boot:
        with self._lock:
            return self._start()

    def spawn(self, config: WorkerConfig, prelude: bytes = b"") -> Spawned:
        """A new worker for ``config``; its end of the socket pair is the result's.

        ``prelude`` (the first invocation, when small) is written to the worker's
        socket before the fork, so the new worker finds it the moment it is ready.
        """
        started = time.monotonic_ns()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if prelude:
                ours.sendall(prelude)
            with self._lock:
                if self._control is None or not self._alive():
                    self._start()
                try:
                    reply = self._request(config, theirs)
                except (protocol.ChannelClosed, OSError):
                    self._stop()  # it died since the last spawn: one restart, then give up
                    self._start()
                    reply = self._request(config, theirs)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        if "failure" in reply:
            ours.close()
            f = reply["failure"]
            raise SpawnFailed(FunctionFailure(f["errorType"], f["errorMessage"], f["stackTrace"]))
        return Spawned(int(reply["pid"]), ours, started, bool(prelude))

    def close(self) -> None:
        with self._lock:
            self._stop()

    # --- internals -------------------------------------------------------------------

    def _request(self, config: WorkerConfig, fd_end: socket.socket) -> dict[str, Any]:
        assert self._control is not None
        socket.send_fds(self._control, [protocol.encode(config.to_wire())], [fd_end.fileno()])
        return protocol.recv(self._control)

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _start(self) -> Boot:
        if self._control is not None and self._alive():
            assert self.boot is not None
            return self.boot
        self._stop()
        started = time.perf_counter()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = subprocess.Popen(
                [self.python, "-m", "lakelet.functions.runtime.zygote", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                cwd=self.cwd,
                start_new_session=True,  # a Ctrl-C in the terminal is the runtime's to handle
            )
        except OSError as exc:
            ours.close()
            raise ZygoteError(f"cannot start the functions zygote ({self.python}): {exc}") from exc
        finally:
            theirs.close()
        self._process, self._control = process, ours
        try:
            ours.settimeout(BOOT_TIMEOUT_S)
            protocol.send(ours, {"modules": self.modules, "sys_path": self.sys_path})
            ready = protocol.recv(ours)
            ours.settimeout(None)
        except (protocol.ChannelClosed, OSError) as exc:
            self._stop()
            raise ZygoteError(
                f"the functions zygote exited while starting ({exc}); its error is above"
            ) from exc
        self.boot = Boot(
            boot_ms=(time.perf_counter() - started) * 1000,
            import_ms=dict(ready.get("import_ms", {})),
            logs=str(ready.get("logs", "")),
        )
        return self.boot

    def _stop(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._process is not None:
            try:
                self._process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


# --- the zygote process ----------------------------------------------------------------


def serve(control: socket.socket) -> int:
    """The zygote's main loop: import, then fork on request until the runtime leaves.

    Between requests it keeps one :class:`Blank` ready, so a spawn is a message to an
    existing process rather than a fork (whose copying of page tables, and of the
    pages a new process writes first, is most of a cold start)."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped by the kernel
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init = protocol.recv(control)
    sys.path[:0] = [p for p in init["sys_path"] if p not in sys.path]
    failures, import_ms, logs = _import_all(list(init["modules"]))
    with contextlib.suppress(Exception):
        worker.rehearse()
    gc.collect()
    gc.freeze()  # workers then never touch (and copy) the zygote's objects' pages
    protocol.send(control, {"import_ms": import_ms, "logs": logs})
    me = os.getpid()
    prctl = worker.load_prctl()
    blank: Blank | None = None
    poller = select.poll()
    poller.register(control, select.POLLIN)
    while True:
        if blank is None and not poller.poll(BLANK_AFTER_MS):
            blank = Blank.fork(failures, me, prctl)  # idle: make the next one now
            continue
        request = _next_request(control)
        if request is None:
            return 0
        config, fd = request.config, request.fd
        if fd is None:
            failure = FunctionFailure("Runtime.Unknown", "a spawn request came without a socket")
            protocol.send(control, {"failure": failure.payload()})
            continue
        try:
            _resolve(config.handler_ref, failures)
        except SpawnFailed as exc:
            reply: dict[str, Any] = {"failure": exc.failure.payload()}
        else:
            pid = blank.become(request.frame, fd) if blank is not None else None
            blank = None
            reply = (
                {"pid": pid} if pid is not None else _fork_worker(config, fd, failures, me, prctl)
            )
        os.close(fd)
        protocol.send(control, reply)


@dataclass(frozen=True)
class _Request:
    frame: bytes
    config: WorkerConfig
    fd: int | None  # the new worker's socket, passed along with the frame


def _next_request(control: socket.socket) -> _Request | None:
    """The next spawn request and the socket it carries (``None``: the runtime left)."""
    try:
        data, fds, _flags, _addr = socket.recv_fds(control, READ_SIZE, 1)
    except OSError:
        return None
    if not data:
        return None
    while len(data) < protocol.HEADER.size or len(data) < _frame_size(data):
        if len(data) > MAX_REQUEST_BYTES:
            raise protocol.ChannelClosed(f"a spawn request is over {MAX_REQUEST_BYTES} bytes")
        more = control.recv(READ_SIZE)
        if not more:
            return None
        data += more
    frame = data[: _frame_size(data)]
    return _Request(frame, WorkerConfig.from_wire(_decode(frame)), fds[0] if fds else None)


@dataclass
class Blank:
    """A child forked ahead of any request and prepared as far as it can be without
    knowing its function (signals, random state, sockets, log capture, the pages an
    invocation writes); :meth:`become` makes it a worker with one message."""

    pid: int
    channel: socket.socket

    @classmethod
    def fork(
        cls, failures: dict[str, FunctionFailure], me: int, prctl: Callable[..., int] | None
    ) -> Blank | None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        _flush_std()
        try:
            pid = os.fork()
        except OSError:  # out of processes or memory: spawns fork directly instead
            ours.close()
            theirs.close()
            return None
        if pid == 0:
            status = 70
            try:
                status = _wait_for_function(theirs.detach(), failures, me, prctl)
            except BaseException:
                with contextlib.suppress(Exception):
                    traceback.print_exc()
            finally:
                os._exit(status)
        theirs.close()
        return cls(pid, ours)

    def become(self, frame: bytes, fd: int) -> int | None:
        """Hand the child its spawn request (``frame``, as the runtime sent it) and its
        socket: its pid, or ``None`` if it died."""
        try:
            socket.send_fds(self.channel, [frame], [fd])
        except OSError:
            return None
        finally:
            self.channel.close()
        return self.pid


def _wait_for_function(
    channel_fd: int,
    failures: dict[str, FunctionFailure],
    zygote_pid: int,
    prctl: Callable[..., int] | None,
) -> int:
    """A blank child's life: prepare, wait for a function, then serve it."""
    environment = worker.prepare(channel_fd, zygote_pid, prctl)
    with contextlib.suppress(Exception):
        worker.warm_up(environment)
    channel = socket.socket(fileno=channel_fd)
    request = _next_request(channel)
    channel.close()
    if request is None or request.fd is None:
        return 0  # the zygote went away before needing this child
    config, fd = request.config, request.fd
    handler = _resolve(config.handler_ref, failures)  # the zygote checked it resolves
    worker.specialize(config)
    return worker.serve(fd, config, handler, environment)


def _fork_worker(
    config: WorkerConfig,
    fd: int,
    failures: dict[str, FunctionFailure],
    me: int,
    prctl: Callable[..., int] | None,
) -> dict[str, Any]:
    try:
        handler = _resolve(config.handler_ref, failures)
    except SpawnFailed as exc:
        return {"failure": exc.failure.payload()}
    _flush_std()
    try:
        pid = os.fork()
    except OSError as exc:  # out of processes or memory: this call fails, not the zygote
        return {"failure": FunctionFailure("Runtime.Unknown", f"cannot fork: {exc}").payload()}
    if pid == 0:  # the worker: never returns into this loop
        status = 70
        try:
            status = worker.run(fd, config, handler, me, prctl)
        except BaseException:
            with contextlib.suppress(Exception):
                traceback.print_exc()
        finally:
            os._exit(status)
    return {"pid": pid}


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _resolve(handler_ref: str, failures: dict[str, FunctionFailure]) -> Handler:
    module_name, _, qualname = handler_ref.partition(":")
    if module_name in failures:
        raise SpawnFailed(failures[module_name])
    module = sys.modules.get(module_name)
    target: Any = module
    for part in qualname.split(".") if module is not None else ():
        target = getattr(target, part, None)
    if module is None or target is None or not callable(target):
        raise SpawnFailed(
            FunctionFailure(
                "Runtime.HandlerNotFound",
                f"Handler '{qualname}' missing on module '{module_name}'",
            )
        )
    handler: Handler = target
    return handler


def _import_all(modules: list[str]) -> tuple[dict[str, FunctionFailure], dict[str, float], str]:
    """Import the app's modules, capturing what they print (the init phase's log)."""
    failures: dict[str, FunctionFailure] = {}
    timings: dict[str, float] = {}
    with tempfile.TemporaryFile() as capture:
        saved = os.dup(1), os.dup(2)
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)
        try:
            for name in modules:
                started = time.perf_counter()
                try:
                    importlib.import_module(name)
                except BaseException as exc:
                    failures[name] = FunctionFailure(
                        "Runtime.ImportModuleError",
                        f"Unable to import module '{name}': {exc}",
                        traceback.format_list(traceback.extract_tb(exc.__traceback__)),
                    )
                    traceback.print_exc()
                timings[name] = (time.perf_counter() - started) * 1000
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        capture.seek(0)
        logs = capture.read().decode("utf-8", errors="replace")
    return failures, timings, logs


def _frame_size(data: bytes) -> int:
    (size,) = protocol.HEADER.unpack_from(data)
    return int(protocol.HEADER.size + size)


def _decode(data: bytes) -> dict[str, Any]:
    import json

    body = data[protocol.HEADER.size : _frame_size(data)]
    message = json.loads(body)
    if not isinstance(message, dict):
        raise protocol.ChannelClosed("a spawn request is not a JSON object")
    return message


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    control = socket.socket(fileno=int(args[0]))
    try:
        return serve(control)
    except protocol.ChannelClosed:
        return 0


if __name__ == "__main__":
    sys.exit(main())
