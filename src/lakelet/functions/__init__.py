"""Serverless functions: Lambda-compatible handlers, run by forked workers behind an
API gateway, schedules, object events and queues (see ``lakelet up``)."""

from lakelet.functions.invocation import (
    FunctionFailure,
    FunctionsError,
    Invocation,
    Invoker,
    TooManyRequests,
)
from lakelet.functions.model import App, FunctionSpec, RouteSpec

__all__ = [
    "App",
    "FunctionFailure",
    "FunctionSpec",
    "FunctionsError",
    "Invocation",
    "Invoker",
    "RouteSpec",
    "TooManyRequests",
]
