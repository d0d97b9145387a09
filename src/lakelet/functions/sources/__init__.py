"""The event sources of ``lakelet up``: schedules, object events, queues, and the
crawlers and jobs that run on the same triggers (see :mod:`.supervisor`).

Kept import-light: each crawler or job run starts ``python -m
lakelet.functions.sources.noderun`` and must not pay for uvicorn to start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakelet.functions.sources.supervisor import Served, Up, UpOptions

__all__ = ["Served", "Up", "UpOptions"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lakelet.functions.sources import supervisor

        return getattr(supervisor, name)
    raise AttributeError(name)
