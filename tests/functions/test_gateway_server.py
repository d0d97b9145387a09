"""The gateway served by a real uvicorn on a free port, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from lakelet.functions import App
from lakelet.functions.direct import DirectInvoker
from lakelet.functions.gateway import GatewaySettings, make_server
from lakelet.functions.loader import import_app

APPS = Path(__file__).parent / "apps"
START_TIMEOUT_S = 20.0


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    app = import_app("gw_app:app", APPS)
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    jwk = {**json.loads(ECAlgorithm.to_jwk(public)), "kid": "k"}
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    settings = GatewaySettings(
        api_keys=("k",),
        jwt_issuer="https://issuer.example",
        jwks_file="jwks.json",
        max_body_bytes=1024,
    )
    server = make_server(app, DirectInvoker(app), settings, port=0, base=tmp_path)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.integration
def test_the_gateway_serves_over_http(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as http:
        found = http.get("/items/42")
        assert found.status_code == 200
        assert found.json() == {"id": "42", "routeKey": "GET /items/{item_id}"}
        assert found.headers["apigw-requestid"]

        event = http.post("/echo?x=1", content=b"hi", headers={"content-type": "text/plain"})
        seen = event.json()["event"]
        assert seen["body"] == "hi"
        assert seen["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
        assert seen["headers"]["x-forwarded-port"] == base_url.rsplit(":", 1)[1]

        crash = http.get("/crash")
        assert crash.status_code == 502
        assert "hunter2" not in crash.text

        def chunks() -> Iterator[bytes]:
            for _ in range(4):
                yield b"x" * 512

        too_big = http.post("/echo", content=chunks())
        assert too_big.status_code == 413
        assert too_big.headers["apigw-requestid"]
        assert http.get("/echo").status_code == 200  # the server is still fine


def _item(event: Any, context: Any) -> Any:
    return {"id": event["pathParameters"]["item_id"]}


@pytest.mark.integration
def test_connections_have_tcp_nodelay_on_a_socket_bound_by_the_caller() -> None:
    """``lakelet up`` binds its own socket (``socket.create_server``: protocol 0, so
    asyncio leaves Nagle's algorithm on); without TCP_NODELAY every response's body
    would wait up to 40 ms for the client's delayed acknowledgement of its head."""
    app = App("nodelay")
    app.route("/items/{item_id}")(_item)
    sock = socket.create_server(("127.0.0.1", 0))
    server = make_server(app, DirectInvoker(app), GatewaySettings())
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(server.serve(sockets=[sock]),), daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        port = sock.getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            assert http.get("/items/1").status_code == 200
            (connection,) = server.server_state.connections
            transport = connection.transport
            option = transport.get_extra_info("socket").getsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY
            )
            assert option != 0
            started = time.monotonic()
            for n in range(10):  # keep-alive requests, each well under Nagle's 40 ms
                assert http.get(f"/items/{n}").status_code == 200
            assert time.monotonic() - started < 10 * 0.04
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        loop.close()
        sock.close()
