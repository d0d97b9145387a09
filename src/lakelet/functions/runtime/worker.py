"""One execution environment: a process forked from the zygote that serves one function.

After the fork it makes itself a clean environment (fresh random state, no socket of
its parent, the function's variables, a memory ceiling, its own log capture), then
answers invocations on its socket until the runtime closes it. A handler's output is
captured at the file-descriptor level, so ``print``, :mod:`logging`, C extensions and
subprocesses all land in the invocation's log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import resource
import signal
import socket
import stat
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from lakelet.functions.context import make_context
from lakelet.functions.model import FunctionSpec, Handler
from lakelet.functions.runtime import protocol

MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's synchronous response limit
MAX_LOG_BYTES = 1024 * 1024  # what one invocation returns of its log (the tail)
ADDRESS_SPACE_SLACK_MB = 1024
FD_DIRS = ("/proc/self/fd", "/dev/fd")
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerConfig:
    """What the zygote needs to turn a fork into ``function``'s environment."""

    function: str
    handler_ref: str
    memory_mb: int
    timeout_s: float
    environment: dict[str, str] = field(default_factory=dict)
    region: str = "us-east-1"
    account_id: str = "123456789012"
    log_stream: str = ""

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> WorkerConfig:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def run(
    sock_fd: int,
    config: WorkerConfig,
    handler: Handler,
    zygote_pid: int,
    prctl: Callable[..., int] | None = None,
) -> int:
    """The forked child's whole life; returns its exit status (never returns into the
    zygote's loop: the zygote calls ``os._exit`` with it). ``prctl`` is
    :func:`load_prctl`'s, prepared before the fork."""
    log_fd = _become_worker(sock_fd, config, zygote_pid, prctl)
    sock = socket.socket(fileno=sock_fd)
    spec = FunctionSpec(
        name=config.function,
        handler=handler,
        handler_ref=config.handler_ref,
        memory_mb=config.memory_mb,
        timeout_s=config.timeout_s,
        environment=config.environment,
    )
    request_ids = _install_lambda_logging()
    ready_ns = time.monotonic_ns()
    first = True
    while True:
        try:
            request = protocol.recv(sock)
        except protocol.ChannelClosed:
            return 0
        request_id = str(request["request_id"])
        request_ids.request_id = request_id
        reply = _invoke(spec, config, request, log_fd)
        if first:
            reply["ready_ns"] = ready_ns
            first = False
        frame = _frame(reply, request_id)
        try:
            sock.sendall(frame)
        except OSError:
            return 0
        if reply.get("fatal"):
            return 1


def _invoke(
    spec: FunctionSpec, config: WorkerConfig, request: dict[str, Any], log_fd: int
) -> dict[str, Any]:
    request_id = str(request["request_id"])
    context = make_context(
        spec,
        request_id,
        deadline_epoch_ms=int(request["deadline_epoch_ms"]),
        region=config.region,
        account_id=config.account_id,
        log_stream=config.log_stream,
    )
    reply: dict[str, Any] = {"outcome": "ok"}
    started = time.perf_counter()
    try:
        reply["payload"] = spec.handler(request["event"], context)
    except MemoryError:
        reply = {"outcome": "out_of_memory", "fatal": True}
    except BaseException as exc:  # the handler's failure is the invocation's result
        failure = _failure(exc)
        sys.stdout.write(_error_log(failure))
        reply = {"outcome": "error", "failure": failure}
        if not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt: the runtime exits
            reply["fatal"] = True
    reply["duration_ms"] = (time.perf_counter() - started) * 1000
    reply["max_rss_kb"] = _max_rss_kb()
    reply["logs"] = _drain_log(log_fd)
    return reply


def _frame(reply: dict[str, Any], request_id: str) -> bytes:
    """The reply as a frame; a result JSON cannot hold, or one over Lambda's 6 MB,
    becomes the error Lambda's runtime gives."""
    try:
        frame = protocol.encode(reply)
    except (TypeError, ValueError) as exc:
        reply.pop("payload", None)
        reply["outcome"] = "error"
        reply["failure"] = {
            "errorType": "Runtime.MarshalError",
            "errorMessage": f"Unable to marshal response: {exc}",
            "stackTrace": [],
        }
        return protocol.encode(reply)
    if len(frame) > MAX_RESPONSE_BYTES + len(reply.get("logs", "")) + 4096:
        reply.pop("payload", None)
        reply["outcome"] = "error"
        reply["failure"] = {
            "errorType": "Function.ResponseSizeTooLarge",
            "errorMessage": "Response payload size exceeded maximum allowed payload size "
            f"({MAX_RESPONSE_BYTES} bytes).",
            "stackTrace": [],
        }
        return protocol.encode(reply)
    return frame


def _failure(exc: BaseException) -> dict[str, Any]:
    """Lambda's error payload; the stack starts at the handler, not at this module."""
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code is _invoke.__code__:
        tb = tb.tb_next
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_list(traceback.extract_tb(tb)),
    }


def _error_log(failure: dict[str, Any]) -> str:
    stack = "".join(failure["stackTrace"])
    return (
        f"[ERROR] {failure['errorType']}: {failure['errorMessage']}\n"
        f"Traceback (most recent call last):\n{stack}"
    )


def rehearse() -> None:
    """Run an invocation's code paths once in the zygote, so lazily built caches
    (formatters, encoders, context classes) exist before the fork instead of being
    built, and their pages copied, in every new worker."""

    def handler(event: Any, context: Any) -> Any:
        raise ValueError(context.aws_request_id)

    spec = FunctionSpec("rehearsal", handler, "rehearsal:handler")
    config = WorkerConfig("rehearsal", "rehearsal:handler", 128, 3.0)
    request = {"request_id": "0", "event": {"k": [1, 2.5, None]}, "deadline_epoch_ms": 0}
    reply = _invoke(spec, config, request, -1)
    protocol.encode(reply)
    record = logging.LogRecord("rehearsal", logging.INFO, __file__, 0, "m", None, None)
    record.aws_request_id = "0"
    _lambda_formatter().format(record)


# --- becoming a worker ---------------------------------------------------------------


def _become_worker(
    sock_fd: int, config: WorkerConfig, zygote_pid: int, prctl: Callable[..., int] | None
) -> int:
    """Everything a fresh execution environment must not inherit from the zygote."""
    for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    _die_with_parent(zygote_pid, prctl)
    random.seed()  # also done by CPython's at-fork hook; explicit because it is promised
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    _drop_inherited_sockets(keep=sock_fd)
    os.environ.update(config.environment)
    if hasattr(time, "tzset"):
        time.tzset()
    _limit_address_space(config.memory_mb)
    return _capture_output()


def _die_with_parent(zygote_pid: int, prctl: Callable[..., int] | None) -> None:
    """Linux: be killed when the zygote goes, so no worker outlives its runtime."""
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != zygote_pid:
        os._exit(0)


def load_prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, looked up once in the zygote (loading ctypes in every worker
    would cost milliseconds of each cold start)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def _drop_inherited_sockets(keep: int) -> None:
    """Point every inherited socket but ``keep`` at /dev/null.

    The descriptor numbers stay taken, so a Python object that still wraps one (a
    client the app module made at import) fails cleanly instead of writing to whatever
    file reuses the number, and nothing reaches the zygote's or the runtime's peers.
    """
    folder = next((d for d in FD_DIRS if os.path.isdir(d)), None)
    if folder is None:
        return
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for name in os.listdir(folder):
            fd = int(name)
            if fd in (keep, devnull):
                continue
            try:
                is_socket = stat.S_ISSOCK(os.fstat(fd).st_mode)
            except OSError:
                continue
            if is_socket:
                os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _limit_address_space(memory_mb: int) -> None:
    """A backstop under the runtime's resident-memory watch: an allocation far past the
    function's memory fails with ``MemoryError`` before it can hurt the machine."""
    try:
        fd = os.open("/proc/self/statm", os.O_RDONLY)
    except OSError:
        return
    try:
        current = int(os.read(fd, 256).split()[0]) * os.sysconf("SC_PAGE_SIZE")
    finally:
        os.close(fd)
    ceiling = current + (4 * memory_mb + ADDRESS_SPACE_SLACK_MB) * 1024 * 1024
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))


def _capture_output() -> int:
    """Standard output and error go to an in-memory file read after each invocation."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("lakelet-function-log")
    else:  # macOS
        import tempfile

        with tempfile.TemporaryFile() as scratch:
            fd = os.dup(scratch.fileno())
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    return fd


def _drain_log(fd: int) -> str:
    if fd < 0:
        return ""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    size = os.fstat(fd).st_size
    if size == 0:
        return ""
    start = max(0, size - MAX_LOG_BYTES)
    data = os.pread(fd, size - start, start)
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    text = data.decode("utf-8", errors="replace")
    return text if start == 0 else f"[log truncated to its last {MAX_LOG_BYTES} bytes]\n{text}"


def _max_rss_kb() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS


# --- Lambda's log format -------------------------------------------------------------


class _RequestIdFilter(logging.Filter):
    """Stamps records with the current request id, as Lambda's runtime does."""

    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _install_lambda_logging() -> _RequestIdFilter:
    """The root logger writes ``[LEVEL]\\ttime\\trequest id\\tmessage`` to standard output,
    so ``logging.warning(...)`` in a handler looks as it does in CloudWatch."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_lambda_formatter())
    ids = _RequestIdFilter()
    handler.addFilter(ids)
    logging.root.addHandler(handler)
    return ids


def _lambda_formatter() -> logging.Formatter:
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    return formatter
