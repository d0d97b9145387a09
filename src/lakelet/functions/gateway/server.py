"""Serving the gateway with uvicorn.

uvicorn writes a response's head and body in separate ``send`` calls. On a connection
without ``TCP_NODELAY``, Nagle's algorithm holds the body until the client acknowledges
the head, and clients delay that acknowledgement by up to 40 ms: every request would
take 40 ms. asyncio sets ``TCP_NODELAY`` only on connections accepted from a socket
made with protocol ``IPPROTO_TCP``, as uvicorn's own are but a listening socket from
:func:`socket.create_server` is not (``lakelet up`` binds its own, to know the URL
first); so the gateway's HTTP protocol sets it on every connection it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from functools import cache
from pathlib import Path
from typing import Any

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
    config = uvicorn_config(
        gateway,
        host=host or settings.host,
        port=settings.port if port is None else port,
        access_log=access_log,
        log_level=log_level,
    )
    return uvicorn.Server(config)


def uvicorn_config(
    asgi: Any, *, host: str, port: int, access_log: bool = False, log_level: str = "warning"
) -> uvicorn.Config:
    """How the gateway is served (the benchmark serves its bare app alike)."""
    return uvicorn.Config(
        asgi,
        host=host,
        port=port,
        http=nodelay_http_protocol(),
        lifespan="off",
        access_log=access_log,
        log_level=log_level,
        server_header=False,
    )


@cache  # one class per process, not one per server
def nodelay_http_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (``http="auto"``: httptools if installed, else h11) on
    connections with ``TCP_NODELAY`` set."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class NoDelayHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(OSError):  # already gone: the server notices
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().connection_made(transport)

    return NoDelayHTTPProtocol


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
