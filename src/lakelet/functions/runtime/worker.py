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
from dataclasses import dataclass, field
from typing import Any

from lakelet.functions.context import (
    LATEST,
    LambdaContext,
    function_arn,
    log_group_name,
    new_log_stream_name,
)
from lakelet.functions.invocation import JsonEvent
from lakelet.functions.model import Handler
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
        return dict(vars(self))  # not asdict(): it deep-copies, and this is a cold start's

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
    """A child forked for ``config``: its whole life; returns its exit status (never
    returns into the zygote's loop: the zygote calls ``os._exit`` with it). ``prctl``
    is :func:`load_prctl`'s, prepared before the fork."""
    environment = prepare(sock_fd, zygote_pid, prctl)
    specialize(config)
    return serve(sock_fd, config, handler, environment)


@dataclass(frozen=True)
class Environment:
    """A prepared execution environment: where its output goes, who it serves."""

    log_fd: int
    request_ids: _RequestIdFilter


def prepare(keep_fd: int, zygote_pid: int, prctl: Callable[..., int] | None) -> Environment:
    """What a fresh child does before it knows its function: nothing of the zygote's
    that an environment must not share (signal handlers, random state, sockets but
    ``keep_fd``), its own log capture and Lambda's log format."""
    for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL)
    _die_with_parent(zygote_pid, prctl)
    random.seed()  # also done by CPython's at-fork hook; explicit because it is promised
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
    _drop_inherited_sockets(keep=keep_fd)
    log_fd = _capture_output()
    return Environment(log_fd, _install_lambda_logging())


def specialize(config: WorkerConfig) -> None:
    """Become ``config.function``'s environment: its variables and memory ceiling."""
    os.environ.update(config.environment)
    if hasattr(time, "tzset"):
        time.tzset()
    _limit_address_space(config.memory_mb)


def warm_up(environment: Environment) -> None:
    """Touch an invocation's pages (a prepared child shares them with the zygote until
    it writes them: the copies are made now, not during a cold start), then forget
    what that wrote."""
    rehearse()
    _drain_log(environment.log_fd)


def serve(sock_fd: int, config: WorkerConfig, handler: Handler, environment: Environment) -> int:
    """Answer invocations on the socket until the runtime closes it."""
    sock = socket.socket(fileno=sock_fd)
    contexts = ContextMaker(config)
    request_ids, log_fd = environment.request_ids, environment.log_fd
    ready_ns = time.monotonic_ns()
    first = True
    buffer = protocol.FrameBuffer()
    while True:
        try:
            body = _next_request(sock, buffer)
            if body is None:
                return 0
            request_id, deadline_epoch_ms, event = protocol.decode_request(body)
        except (protocol.ChannelClosed, OSError):
            return 0
        request_ids.request_id = request_id
        reply = _invoke(handler, contexts(request_id, deadline_epoch_ms), event, log_fd)
        if first:
            reply["ready_ns"] = ready_ns
            first = False
        frame = _frame(reply, request_id, http=body[:1] == protocol.HTTP_PARTS)
        try:
            sock.sendall(frame)
        except OSError:
            return 0
        if reply.get("fatal"):
            return 1


def _next_request(sock: socket.socket, buffer: protocol.FrameBuffer) -> bytes | None:
    """The next request's frame body (``None``: the runtime closed the socket)."""
    body = buffer.next_frame()
    while body is None:
        chunk = sock.recv(protocol.READ_SIZE)
        if not chunk:
            return None
        body = buffer.take(chunk)
    return body


class ContextMaker:
    """Makes each invocation's context from what is the same for all of this
    environment's invocations (computed once): the context ``make_context`` makes."""

    __slots__ = ("_arn", "_group", "_memory", "_name", "_stream")

    def __init__(self, config: WorkerConfig) -> None:
        self._name = config.function
        self._arn = function_arn(
            config.function, region=config.region, account_id=config.account_id
        )
        self._memory = str(config.memory_mb)
        self._group = log_group_name(config.function)
        self._stream = config.log_stream or new_log_stream_name()

    def __call__(self, request_id: str, deadline_epoch_ms: int) -> LambdaContext:
        return LambdaContext(
            request_id,
            self._name,
            LATEST,
            self._arn,
            self._memory,
            self._group,
            self._stream,
            _epoch_deadline_time_in_ms=deadline_epoch_ms,
        )


def _invoke(handler: Handler, context: LambdaContext, event: Any, log_fd: int) -> dict[str, Any]:
    reply: dict[str, Any] = {"outcome": "ok"}
    started = time.perf_counter_ns()
    try:
        reply["payload"] = handler(event, context)
    except MemoryError:
        reply = {"outcome": "out_of_memory", "fatal": True}
    except BaseException as exc:  # the handler's failure is the invocation's result
        failure = _failure(exc)
        sys.stdout.write(_error_log(failure))
        reply = {"outcome": "error", "failure": failure}
        if not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt: the runtime exits
            reply["fatal"] = True
    reply["duration_ns"] = time.perf_counter_ns() - started  # an int: cheap to format
    reply["max_rss_kb"] = _max_rss_kb()
    logs = _drain_log(log_fd)
    if logs:
        reply["logs"] = logs
    return reply


def _frame(reply: dict[str, Any], request_id: str, *, http: bool = False) -> bytes:
    """The reply as a frame; a result JSON cannot hold, or one over Lambda's 6 MB,
    becomes the error Lambda's runtime gives. The usual reply to an HTTP request
    (``http``) carries the response rendered (:func:`protocol.encode_http_reply`)."""
    try:
        frame = None
        if len(reply) == 4 and reply["outcome"] == "ok":  # no logs, not the first
            payload, duration_ns, max_rss_kb = (
                reply["payload"],
                reply["duration_ns"],
                reply["max_rss_kb"],
            )
            if http:
                frame = protocol.encode_http_reply(payload, duration_ns, max_rss_kb)
            if frame is None:
                frame = protocol.encode_ok_reply(payload, duration_ns, max_rss_kb)
        else:
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
    """Run an invocation's code paths once (a failing and a successful one, from the
    request's frame to the reply's), so lazily built caches (formatters, encoders,
    context classes) exist before the fork instead of being built, and their pages
    copied, in every new worker."""

    def failing(event: Any, context: Any) -> Any:
        raise ValueError(context.aws_request_id)

    def succeeding(event: Any, context: Any) -> Any:
        return {"statusCode": 200, "body": event["k"], "remaining": context.memory_limit_in_mb}

    contexts = ContextMaker(
        WorkerConfig("rehearsal", "rehearsal:handler", 128, 3.0, log_stream="-")
    )
    event = {"k": [1, 2.5, None, True, "é"], "headers": {"a": "b"}}
    for handler, sent in ((failing, event), (succeeding, JsonEvent(event))):
        buffer = protocol.FrameBuffer()
        buffer.feed(protocol.encode_request("0", 0, sent))
        request_id, deadline_epoch_ms, received = protocol.decode_request(
            buffer.next_frame() or b""
        )
        reply = _invoke(handler, contexts(request_id, deadline_epoch_ms), received, -1)
        _frame(reply, request_id)
    record = logging.LogRecord("rehearsal", logging.INFO, __file__, 0, "m", None, None)
    record.aws_request_id = "0"
    _lambda_formatter().format(record)


# --- becoming a worker ---------------------------------------------------------------


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
    # What print() and logging buffered, down to the file descriptor (not a helper
    # function, nor contextlib.suppress: this runs on every invocation, and try is free).
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105
            stream.flush()
        except (AttributeError, OSError, ValueError):  # none, or closed by the handler
            pass
    size = os.lseek(fd, 0, os.SEEK_END)  # the size, without fstat's stat_result
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
