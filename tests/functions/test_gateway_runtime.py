"""The gateway over the forked-worker runtime of ``lakelet up``: the handler in its
worker sees the same HTTP API event as in process, and failures map alike."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from lakelet.functions.direct import DirectInvoker
from lakelet.functions.gateway import GatewaySettings, build_gateway
from lakelet.functions.loader import import_app
from lakelet.functions.model import App
from lakelet.functions.runtime import Runtime, RuntimeOptions

with warnings.catch_warnings():  # Starlette prefers httpx2 for its test client
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

APPS = Path(__file__).parent / "apps"
VOLATILE = ("requestId", "time", "timeEpoch")  # differ from one request to the next


@pytest.fixture(scope="module")
def gw_app() -> App:
    return import_app("gw_app:app", APPS)


@pytest.fixture(scope="module")
def runtime(gw_app: App) -> Iterator[Runtime]:
    with Runtime(gw_app, options=RuntimeOptions(max_concurrency=4)) as runtime:
        yield runtime


@pytest.fixture(scope="module")
def jwks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    jwk = {**json.loads(ECAlgorithm.to_jwk(public)), "kid": "k"}
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))  # the app's JWT route is not called here
    return path


def clients(app: App, runtime: Runtime, jwks: Path) -> tuple[TestClient, TestClient]:
    settings = GatewaySettings(
        api_keys=("k",), jwt_issuer="https://issuer.example", jwks_file=str(jwks)
    )
    return (
        TestClient(build_gateway(app, runtime, settings)),
        TestClient(build_gateway(app, DirectInvoker(app), settings)),
    )


def stable(event: dict[str, Any]) -> dict[str, Any]:
    context = {k: v for k, v in event["requestContext"].items() if k not in VOLATILE}
    return {**event, "requestContext": context}


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/echo", None),
        ("GET", "/echo?a=1&a=2&b=", None),
        ("POST", "/echo", b'{"n": 1}'),
        ("POST", "/echo", b"\x00\xff binary"),
    ],
)
def test_a_worker_gets_the_event_the_in_process_handler_gets(
    gw_app: App, runtime: Runtime, jwks_file: Path, method: str, url: str, body: bytes | None
) -> None:
    forked, direct = clients(gw_app, runtime, jwks_file)
    headers = {"cookie": "a=1; b=2", "content-type": "application/octet-stream"} if body else {}
    answers = [c.request(method, url, content=body, headers=headers) for c in (forked, direct)]
    assert [a.status_code for a in answers] == [200, 200]
    events = [a.json()["event"] for a in answers]
    assert stable(events[0]) == stable(events[1])
    assert list(events[0]) == list(events[1])  # members in API Gateway's order too
    assert events[0]["requestContext"]["requestId"] == answers[0].headers["apigw-requestid"]


def test_failures_through_workers_map_as_in_process(
    gw_app: App, runtime: Runtime, jwks_file: Path
) -> None:
    forked, direct = clients(gw_app, runtime, jwks_file)
    for url, status in (("/crash", 502), ("/admin", 403), ("/nowhere", 404)):
        answers = [c.get(url) for c in (forked, direct)]
        assert [a.status_code for a in answers] == [status, status]
        assert answers[0].json() == answers[1].json()
        assert "hunter2" not in answers[0].text
    assert forked.get("/admin", headers={"x-api-key": "k"}).text == "welcome"


@pytest.mark.parametrize(
    "url", ["/object-body", "/binary", "/cookies", "/malformed", "/unserialisable", "/items/7"]
)
def test_responses_rendered_in_workers_are_the_gateways_own(
    gw_app: App, runtime: Runtime, jwks_file: Path, url: str
) -> None:
    """A warm worker renders the response itself (a cold start's reply and a malformed
    response still go to the gateway as a payload): the same status, headers and body
    either way, and as in process."""
    forked, direct = clients(gw_app, runtime, jwks_file)
    volatile = {"apigw-requestid", "date", "content-length"}
    answers = [c.get(url) for c in (forked, forked, forked, direct)]
    seen = [
        (a.status_code, sorted((k, v) for k, v in a.headers.multi_items() if k not in volatile))
        for a in answers
    ]
    assert seen[1:] == seen[:1] * 3
    assert all(a.content == answers[0].content for a in answers)


def test_warm_workers_answer_http_requests_with_the_rendered_response(
    gw_app: App, runtime: Runtime, jwks_file: Path
) -> None:
    results: list[Any] = []

    class Watching:  # the runtime, keeping what each HTTP invocation returned
        def __init__(self) -> None:
            self.ainvoke = runtime.ainvoke
            self.invoke = runtime.invoke

        async def ainvoke_http(self, *args: Any, **kwargs: Any) -> Any:
            results.append(await runtime.ainvoke_http(*args, **kwargs))
            return results[-1]

    settings = GatewaySettings(
        api_keys=("k",), jwt_issuer="https://issuer.example", jwks_file=str(jwks_file)
    )
    client = TestClient(build_gateway(gw_app, cast(Any, Watching()), settings))
    for _ in range(3):
        assert client.get("/items/7").json() == {"id": "7", "routeKey": "GET /items/{item_id}"}
    warm = results[-1]
    assert warm.payload is None and warm.http_response is not None
    assert warm.http_response[0] == 200
    client.get("/malformed")
    client.get("/malformed")
    assert results[-1].http_response is None  # the gateway says what is wrong with it


def test_a_rendered_reply_stands_for_the_payload_the_gateway_would_render() -> None:
    from decimal import Decimal

    from lakelet.functions.events.http import http_response
    from lakelet.functions.runtime import protocol

    for payload in (
        {"a": Decimal("1.50"), "b": (1, 2)},
        {"statusCode": 201, "headers": {"x-a": "1"}, "cookies": ["c=1"], "body": "made"},
        "plain text",
        None,
    ):
        frame = protocol.encode_http_reply(payload, 1500, 2048)
        assert frame is not None
        reply = protocol.decode(frame[protocol.HEADER.size :])
        expected = http_response(json.loads(protocol.encode_ok_reply(payload, 0, 0)[4:])["payload"])
        assert reply == {
            "outcome": "ok",
            "duration_ns": 1500,
            "max_rss_kb": 2048,
            "http": (expected.status, expected.body, expected.headers),
        }
    assert protocol.encode_http_reply({"statusCode": "teapot"}, 1, 1) is None  # malformed
    with pytest.raises(TypeError):
        protocol.encode_http_reply({"a": object()}, 1, 1)
    import marshal

    for wrong in (b"not marshal", marshal.dumps((1, 2, "200", b"", []))):
        with pytest.raises(protocol.ChannelClosed):
            protocol.decode(protocol.HTTP_REPLY + wrong)


@pytest.mark.parametrize(
    ("headers", "chunks", "status"),
    [
        ([(b"content-length", b"5"), (b"content-length", b"5")], [b"hello"], 400),
        ([(b"transfer-encoding", b"chunked")], [b"hel", b"lo"], 200),
        ([(b"content-length", b"5"), (b"cookie", b"a=1"), (b"cookie", b"b=2")], [b"hello"], 200),
        ([(b"X-Mixed-Case", b"v"), (b"x-mixed-case", b"w")], [], 200),
    ],
)
def test_raw_headers_frame_the_body_and_the_event_as_parsed_ones(
    gw_app: App,
    runtime: Runtime,
    jwks_file: Path,
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
    status: int,
) -> None:
    """Without CORS or auth the gateway leaves the headers unparsed and the worker parses
    them: the body's framing and the event are those of the parsing path in process."""
    import asyncio

    async def call(gateway: Any) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/echo",
            "raw_path": b"/echo",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 5555),
            "server": ("127.0.0.1", 80),
        }
        messages = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ] or [{"type": "http.request", "body": b""}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await gateway(scope, receive, send)
        return sent[0]["status"], sent[1]["body"]

    settings = GatewaySettings(  # the app's auth routes need them; /echo has no auth
        api_keys=("k",), jwt_issuer="https://issuer.example", jwks_file=str(jwks_file)
    )
    parsing = replace(settings, cors_origins=("https://elsewhere.example",))  # parses them
    answers = [
        asyncio.run(call(build_gateway(gw_app, invoker, chosen)))
        for invoker, chosen in (
            (runtime, settings),
            (runtime, parsing),
            (DirectInvoker(gw_app), settings),
        )
    ]
    assert [a[0] for a in answers] == [status] * 3
    if status == 200:
        raw, parsed, direct = (stable(json.loads(a[1])["event"]) for a in answers)
        assert raw == parsed == direct
        assert raw.get("body", "") in ("", "hello")
