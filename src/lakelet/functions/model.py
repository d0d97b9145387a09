"""The app model: what an :class:`App`'s decorators register, and nothing more.

Decorators only record functions and their triggers, so importing an app module has no
side effects: the runtime, the gateway, the scheduler and the SAM export all read the
same model. A handler is a plain ``def handler(event, context)`` and is returned
unchanged by its decorator, so it stays callable (and testable) as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lakelet.errors import ConfigError

Handler = Callable[[Any, Any], Any]
Auth = Literal["none", "api_key", "jwt"]
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # Lambda's function-name alphabet

DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_S = 3.0
DEFAULT_ASYNC_RETRIES = 2


@dataclass(frozen=True)
class FunctionSpec:
    """One function: its handler and Lambda's per-function settings.

    ``handler_ref`` is ``module:qualname`` so a worker forked from the zygote (or a
    SAM template) can find it; ``reserved_concurrency`` ``None`` means the global pool.
    ``dead_letter_queue`` names a local queue that receives failed asynchronous events
    after ``retries`` more attempts.
    """

    name: str
    handler: Handler
    handler_ref: str
    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: float = DEFAULT_TIMEOUT_S
    reserved_concurrency: int | None = None
    retries: int = DEFAULT_ASYNC_RETRIES
    dead_letter_queue: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RouteSpec:
    """An HTTP API route (``/items/{id}``, ``/files/{proxy+}``) and who may call it."""

    path: str
    methods: tuple[str, ...]
    function: str
    auth: Auth = "none"
    throttle_rate: float | None = None  # requests per second, token bucket
    throttle_burst: int | None = None


@dataclass(frozen=True)
class ObjectTrigger:
    """``s3:ObjectCreated:*`` under ``bucket`` (the lake's first folder, locally)."""

    function: str
    bucket: str
    prefix: str = ""
    suffix: str = ""


@dataclass(frozen=True)
class ScheduleTrigger:
    """An EventBridge schedule: ``rate(...)`` or ``cron(...)``, UTC."""

    function: str
    expression: str


@dataclass(frozen=True)
class QueueTrigger:
    """An SQS event source mapping: up to ``batch_size`` messages per invocation."""

    function: str
    queue: str
    batch_size: int = 10


@dataclass
class App:
    """A set of functions and their triggers, e.g. ``app = lakelet.App("vending")``."""

    name: str
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    routes: list[RouteSpec] = field(default_factory=list)
    object_triggers: list[ObjectTrigger] = field(default_factory=list)
    schedules: list[ScheduleTrigger] = field(default_factory=list)
    queue_triggers: list[QueueTrigger] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.name):
            raise ConfigError(f"App name {self.name!r}: use letters, digits, '-' and '_'")

    # --- registration --------------------------------------------------------------

    def function(self, name: str | None = None, **settings: Any) -> Callable[[Handler], Handler]:
        """Register a function with no trigger of its own (invoked by name or by
        another function). ``settings`` are :class:`FunctionSpec` fields."""

        def register(handler: Handler) -> Handler:
            self._register(handler, name, settings)
            return handler

        return register

    def route(
        self,
        path: str,
        methods: Sequence[str] = ("GET",),
        *,
        auth: Auth = "none",
        throttle_rate: float | None = None,
        throttle_burst: int | None = None,
        name: str | None = None,
        **settings: Any,
    ) -> Callable[[Handler], Handler]:
        """An HTTP API route served by ``lakelet up``."""
        if not path.startswith("/"):
            raise ConfigError(f"route {path!r}: a path starts with '/'")
        wanted = tuple(m.upper() for m in methods)
        unknown = [m for m in wanted if m not in HTTP_METHODS]
        if unknown:
            raise ConfigError(f"route {path!r}: unknown method(s) {', '.join(unknown)}")
        if auth not in ("none", "api_key", "jwt"):
            raise ConfigError(f"route {path!r}: auth is 'none', 'api_key' or 'jwt'")

        def register(handler: Handler) -> Handler:
            spec = self._register(handler, name, settings)
            self.routes.append(
                RouteSpec(path, wanted, spec.name, auth, throttle_rate, throttle_burst)
            )
            return handler

        return register

    def on_object_created(
        self,
        *,
        bucket: str,
        prefix: str = "",
        suffix: str = "",
        name: str | None = None,
        **settings: Any,
    ) -> Callable[[Handler], Handler]:
        """Called with an S3 ``ObjectCreated`` event for each new object that matches."""

        def register(handler: Handler) -> Handler:
            spec = self._register(handler, name, settings)
            self.object_triggers.append(ObjectTrigger(spec.name, bucket, prefix, suffix))
            return handler

        return register

    def schedule(
        self, expression: str, *, name: str | None = None, **settings: Any
    ) -> Callable[[Handler], Handler]:
        """Called with an EventBridge ``Scheduled Event`` on ``rate(...)``/``cron(...)``."""
        from lakelet.crawler.schedule import parse_schedule

        parse_schedule(expression)  # a bad expression fails at import, not at 3 a.m.

        def register(handler: Handler) -> Handler:
            spec = self._register(handler, name, settings)
            self.schedules.append(ScheduleTrigger(spec.name, expression))
            return handler

        return register

    def on_queue(
        self, queue: str, *, batch_size: int = 10, name: str | None = None, **settings: Any
    ) -> Callable[[Handler], Handler]:
        """Called with SQS batches of up to ``batch_size`` (1–10) messages of ``queue``."""
        if not 1 <= batch_size <= 10:
            raise ConfigError(f"on_queue({queue!r}): batch_size is 1 to 10, as in SQS")

        def register(handler: Handler) -> Handler:
            spec = self._register(handler, name, settings)
            self.queue_triggers.append(QueueTrigger(spec.name, queue, batch_size))
            return handler

        return register

    # --- lookup --------------------------------------------------------------------

    def get(self, name: str) -> FunctionSpec:
        try:
            return self.functions[name]
        except KeyError:
            from lakelet.errors import NotFoundError

            known = ", ".join(sorted(self.functions)) or "none"
            raise NotFoundError(
                f"app {self.name!r} has no function {name!r} (known: {known})"
            ) from None

    def _register(
        self, handler: Handler, name: str | None, settings: Mapping[str, Any]
    ) -> FunctionSpec:
        fname = name or handler.__name__
        if not NAME_RE.match(fname):
            raise ConfigError(f"function name {fname!r}: use letters, digits, '-' and '_'")
        existing = self.functions.get(fname)
        if existing is not None:
            if existing.handler is handler and not settings:
                return existing  # one handler behind several triggers
            raise ConfigError(f"app {self.name!r}: function {fname!r} is registered twice")
        allowed = set(FunctionSpec.__dataclass_fields__) - {"name", "handler", "handler_ref"}
        unknown = sorted(set(settings) - allowed)
        if unknown:
            raise ConfigError(
                f"function {fname!r}: unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(allowed))}"
            )
        ref = f"{handler.__module__}:{handler.__qualname__}"
        spec = FunctionSpec(fname, handler, ref, **settings)
        self.functions[fname] = spec
        return spec
