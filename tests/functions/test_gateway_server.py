"""The gateway served by a real uvicorn on a free port, over real HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

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
