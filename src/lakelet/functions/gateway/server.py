"""Serving the gateway with uvicorn."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from lakelet.functions.gateway.app import build_gateway
from lakelet.functions.gateway.settings import GatewaySettings
from lakelet.functions.invocation import Invoker
from lakelet.functions.model import App


def make_server(
    app: App,
    invoker: Invoker,
    settings: GatewaySettings | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    base: Path | None = None,
    access_log: bool = False,
    log_level: str = "warning",
) -> uvicorn.Server:
    """A uvicorn server for the gateway, not started: ``await server.serve()`` in an
    event loop that also runs other work (``lakelet up``), or :func:`serve` alone.
    ``host``/``port`` override the settings'; port 0 picks a free port."""
    settings = settings or GatewaySettings()
    gateway = build_gateway(app, invoker, settings, base=base)
    config = uvicorn.Config(
        gateway,
        host=host or settings.host,
        port=settings.port if port is None else port,
        lifespan="off",
        access_log=access_log,
        log_level=log_level,
        server_header=False,
    )
    return uvicorn.Server(config)


def serve(
    app: App,
    invoker: Invoker,
    settings: GatewaySettings | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    base: Path | None = None,
) -> None:
    """Serve ``app``'s routes until interrupted (Ctrl-C)."""
    make_server(app, invoker, settings, host=host, port=port, base=base).run()
