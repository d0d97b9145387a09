"""The API gateway over the in-process invoker: routing, errors, limits and CORS, as an
HTTP API answers them."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from lakelet.config import load_settings
from lakelet.errors import ConfigError
from lakelet.functions import App, Invocation, RouteSpec, TooManyRequests
from lakelet.functions.direct import DirectInvoker
from lakelet.functions.gateway import GatewaySettings, build_gateway, from_settings
from lakelet.functions.gateway.throttle import TokenBucket
from lakelet.functions.loader import import_app

with warnings.catch_warnings():  # Starlette prefers httpx2 for its test client
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

APPS = Path(__file__).parent / "apps"
INTERNAL_ERROR = {"message": "Internal Server Error"}


@pytest.fixture(scope="module")
def gw_app() -> App:
    return import_app("gw_app:app", APPS)


@pytest.fixture(scope="module", autouse=True)
def jwks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JWKS for the app's JWT route (its tokens are tested in test_gateway_auth)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [{**jwk, "kid": "k1"}]}))
    JWT_SETTINGS["jwks_file"] = str(path)
    return path


JWT_SETTINGS: dict[str, Any] = {"jwt_issuer": "https://issuer.example"}


def client(app: App, **settings: Any) -> TestClient:
    gateway = build_gateway(
        app, DirectInvoker(app), GatewaySettings(**{**JWT_SETTINGS, **settings})
    )
    return TestClient(gateway, raise_server_exceptions=True)


@pytest.fixture(scope="module")
def http(gw_app: App) -> TestClient:
    return client(gw_app, api_keys=("k-1", "k-2"))


def test_a_route_gets_the_http_api_event(http: TestClient) -> None:
    response = http.post("/echo?a=1&a=2&b=", json={"n": 1}, headers={"X-Trace": "t"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    event = body["event"]
    assert body["function"] == "echo"
    assert event["routeKey"] == "POST /echo"
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["headers"]["x-trace"] == "t"
    assert event["body"] == '{"n":1}'
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["requestId"] == response.headers["apigw-requestid"]


def test_a_binary_body_arrives_base64_encoded(http: TestClient) -> None:
    payload = bytes(range(256))
    response = http.post(
        "/echo", content=payload, headers={"content-type": "application/octet-stream"}
    )
    event = response.json()["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_path_parameters_and_the_most_specific_route(http: TestClient) -> None:
    found = http.get("/items/a%20b").json()
    assert found == {"id": "a b", "routeKey": "GET /items/{item_id}"}
    assert http.put("/items/7").json()["routeKey"] == "PUT /items/{item_id}"
    assert http.get("/items/special").json() == {"special": True}


def test_a_greedy_path_takes_the_rest_of_the_path(http: TestClient) -> None:
    response = http.delete("/files/2026/11/27/sales.csv")
    assert response.json() == {"proxy": "2026/11/27/sales.csv", "method": "ANY /files/{proxy+}"}
    assert http.get("/files").status_code == 404  # {proxy+} needs at least one segment


def test_unknown_paths_and_methods_get_json_errors(http: TestClient) -> None:
    missing = http.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {"message": "Not Found"}
    assert missing.headers["apigw-requestid"]
    wrong = http.delete("/items/1")
    assert wrong.status_code == 405
    assert wrong.json() == {"message": "Method Not Allowed"}
    assert wrong.headers["allow"] == "GET, PUT"


def test_every_response_has_its_own_request_id(http: TestClient) -> None:
    ids = {http.get(path).headers["apigw-requestid"] for path in ["/echo", "/nowhere"] * 5}
    assert len(ids) == 10
    assert all(len(i) == 16 for i in ids)


def test_a_crash_is_a_502_without_the_traceback(
    http: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, "lakelet.functions.gateway"):
        response = http.get("/crash")
    assert response.status_code == 502
    assert response.json() == INTERNAL_ERROR
    assert "hunter2" not in response.text
    request_id = response.headers["apigw-requestid"]
    logged = caplog.text
    assert request_id in logged
    assert "RuntimeError: database password is hunter2" in logged
    assert "gw_app.py" in logged  # the stack trace stays on the server


def test_a_timeout_is_a_502(http: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "lakelet.functions.gateway"):
        response = http.get("/slow")
    assert response.status_code == 502
    assert response.json() == INTERNAL_ERROR
    assert "Task timed out after 0.20 seconds" in caplog.text


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/malformed", "statusCode 'teapot'"),
        ("/object-body", "'body' must be a string"),
        ("/unserialisable", "Runtime.MarshalError"),
    ],
)
def test_a_malformed_response_is_a_502(
    http: TestClient, caplog: pytest.LogCaptureFixture, path: str, logged: str
) -> None:
    with caplog.at_level(logging.ERROR, "lakelet.functions.gateway"):
        response = http.get(path)
    assert response.status_code == 502
    assert response.json() == INTERNAL_ERROR
    assert logged in caplog.text


def test_a_string_is_sent_as_is(http: TestClient) -> None:
    response = http.get("/admin", headers={"x-api-key": "k-2"})
    assert response.status_code == 200
    assert response.text == "welcome"
    assert response.headers["content-type"] == "application/json"


def test_a_base64_response_is_decoded(http: TestClient) -> None:
    response = http.get("/binary")
    assert response.content == b"\x89PNG\r\n"
    assert response.headers["content-type"] == "image/png"


def test_cookies_and_multi_value_headers(http: TestClient) -> None:
    response = http.get("/cookies")
    assert response.headers.get_list("set-cookie") == ["session=abc; HttpOnly", "theme=dark"]
    assert response.headers.get_list("x-tag") == ["a", "b"]
    assert response.cookies["theme"] == "dark"


@pytest.mark.parametrize("key", [None, "", "k-3", "k-1 "])
def test_api_key_routes_refuse_a_missing_or_unknown_key(http: TestClient, key: str | None) -> None:
    headers = {} if key is None else {"x-api-key": key}
    response = http.get("/admin", headers=headers)
    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden"}


def test_api_key_routes_need_keys_configured(gw_app: App) -> None:
    with pytest.raises(ConfigError, match="api_keys"):
        build_gateway(gw_app, DirectInvoker(gw_app), GatewaySettings(**JWT_SETTINGS))


def test_a_function_at_its_reserved_concurrency_is_a_429(http: TestClient) -> None:
    response = http.get("/reserved")
    assert response.status_code == 429
    assert response.json() == {"message": "Too Many Requests"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_route_is_throttled_by_its_token_bucket(gw_app: App) -> None:
    http = client(gw_app, api_keys=("k",))
    clock = FakeClock()
    http.app.route_buckets["GET /limited"] = TokenBucket(1, 2, clock=clock)  # type: ignore[attr-defined]
    statuses = [http.get("/limited").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert http.get("/echo").status_code == 200  # other routes have their own limits
    clock.now += 1.0
    assert http.get("/limited").status_code == 200
    assert http.get("/limited").status_code == 429


def test_the_whole_api_is_throttled(gw_app: App) -> None:
    http = client(gw_app, api_keys=("k",), throttle_rate=1, throttle_burst=1)
    clock = FakeClock()
    http.app.global_bucket = TokenBucket(1, 2, clock=clock)  # type: ignore[attr-defined]
    statuses = [http.get(p).status_code for p in ("/echo", "/items/1", "/nowhere", "/echo")]
    assert statuses == [200, 200, 404, 429]  # unrouted requests cost nothing


def test_bodies_over_the_limit_get_413(gw_app: App) -> None:
    http = client(gw_app, api_keys=("k",), max_body_bytes=10)
    assert http.post("/echo", content=b"x" * 10).status_code == 200
    too_big = http.post("/echo", content=b"x" * 11)
    assert too_big.status_code == 413
    assert too_big.json() == {"message": "Request Entity Too Large"}

    def chunks() -> Any:  # no content-length: counted as it arrives
        yield b"x" * 6
        yield b"x" * 6

    assert http.post("/echo", content=chunks()).status_code == 413


def test_cors_preflight_is_answered_by_the_gateway(gw_app: App) -> None:
    http = client(
        gw_app,
        api_keys=("k",),
        cors_origins=("https://shop.example",),
        cors_methods=("GET", "POST"),
        cors_headers=("content-type", "authorization"),
    )
    preflight = http.options(
        "/purchase",  # a JWT route: the preflight is not authorised, as on AWS
        headers={"origin": "https://shop.example", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
    assert preflight.headers["access-control-allow-methods"] == "GET, POST"
    assert preflight.headers["access-control-allow-headers"] == "content-type, authorization"
    assert preflight.headers["apigw-requestid"]
    stranger = http.options(
        "/echo", headers={"origin": "https://evil.example", "access-control-request-method": "GET"}
    )
    assert stranger.status_code == 204
    assert "access-control-allow-origin" not in stranger.headers


def test_cors_headers_are_the_gateways_not_the_handlers(gw_app: App) -> None:
    http = client(gw_app, api_keys=("k",), cors_origins=("https://shop.example",))
    response = http.get("/binary", headers={"origin": "https://shop.example"})
    assert response.headers.get_list("access-control-allow-origin") == ["https://shop.example"]
    assert response.headers["vary"] == "origin"
    other = http.get("/binary", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    star = client(gw_app, api_keys=("k",), cors_origins=("*",), cors_headers=("*",))
    echoed = star.options(
        "/echo",
        headers={
            "origin": "https://any.example",
            "access-control-request-method": "PUT",
            "access-control-request-headers": "x-custom",
        },
    )
    assert echoed.headers["access-control-allow-origin"] == "*"
    assert echoed.headers["access-control-allow-headers"] == "x-custom"


def test_without_cors_options_is_routed_like_any_method(http: TestClient) -> None:
    response = http.options(
        "/echo", headers={"origin": "https://shop.example", "access-control-request-method": "GET"}
    )
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers


def test_the_default_route_catches_what_no_route_matches() -> None:
    app = App("fallback")

    @app.route("/known")
    def known(event: Any, context: Any) -> Any:
        return "known"

    @app.function()
    def fallback(event: Any, context: Any) -> Any:
        return {"routeKey": event["routeKey"], "path": event["rawPath"]}

    app.routes.append(RouteSpec("$default", ("ANY",), "fallback"))
    http = client(app)
    assert http.get("/known").text == "known"
    assert http.post("/a/b").json() == {"routeKey": "$default", "path": "/a/b"}


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["/a/{x}", "/a/{x}"], "declared twice"),
        (["/a/{x}b"], "whole segment"),
        (["/a/{p+}/b"], "last segment"),
        (["/a/{x}/{x}"], "appears twice"),
    ],
)
def test_bad_routes_are_config_errors(paths: list[str], message: str) -> None:
    app = App("bad")

    @app.function()
    def handler(event: Any, context: Any) -> Any:
        return None

    app.routes.extend(RouteSpec(p, ("GET",), "handler") for p in paths)
    with pytest.raises(ConfigError, match=message):
        client(app)


class BrokenInvoker:
    """An invoker failing the ways a runtime can."""

    def __init__(self, fail: BaseException | None = None, outcome: str = "ok") -> None:
        self.fail = fail
        self.outcome = outcome

    def invoke(self, function: str, event: Any, **kwargs: Any) -> Invocation:
        raise NotImplementedError

    async def ainvoke(self, function: str, event: Any, **kwargs: Any) -> Invocation:
        if self.fail is not None:
            raise self.fail
        return Invocation("req", function, self.outcome)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("invoker", "status"),
    [
        (BrokenInvoker(TooManyRequests("busy")), 429),
        (BrokenInvoker(outcome="throttled"), 429),
        (BrokenInvoker(RuntimeError("worker died")), 502),
        (BrokenInvoker(outcome="out_of_memory"), 502),
    ],
)
def test_invoker_failures_map_to_http(gw_app: App, invoker: Any, status: int) -> None:
    gateway = build_gateway(gw_app, invoker, GatewaySettings(api_keys=("k",), **JWT_SETTINGS))
    response = TestClient(gateway).get("/echo")
    assert response.status_code == status
    assert "worker died" not in response.text


def test_settings_validate_their_limits() -> None:
    with pytest.raises(ConfigError, match="max_body_bytes"):
        GatewaySettings(max_body_bytes=0)
    with pytest.raises(ConfigError, match="throttle_rate"):
        GatewaySettings(throttle_rate=0)
    assert dataclasses.replace(GatewaySettings(), cors_origins=["*"]).cors_origins == ("*",)  # type: ignore[arg-type]


def test_settings_come_from_lakelet_toml(tmp_path: Path) -> None:
    (tmp_path / "lakelet.toml").write_text(
        "[functions.gateway]\n"
        'cors_origins = ["https://shop.example"]\n'
        'jwt_audience = ["a", "b"]\n'
        "throttle_rate = 5\n"
        "max_body_bytes = 100\n"
    )
    settings = from_settings(load_settings(tmp_path, env={}))
    assert settings.cors_origins == ("https://shop.example",)
    assert settings.jwt_audience == ("a", "b")
    assert settings.throttle_rate == 5.0
    assert settings.max_body_bytes == 100
    assert settings.port == 8000
    assert from_settings(object()) == GatewaySettings()


def test_mounted_under_a_prefix_routes_the_rest_of_the_path(gw_app: App) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    gateway = build_gateway(
        gw_app, DirectInvoker(gw_app), GatewaySettings(api_keys=("k",), **JWT_SETTINGS)
    )
    outer = Starlette(routes=[Mount("/api", app=gateway)])
    response = TestClient(outer).get("/api/items/9")
    assert response.json() == {"id": "9", "routeKey": "GET /items/{item_id}"}
