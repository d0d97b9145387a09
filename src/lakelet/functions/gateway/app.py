"""The API gateway: an ASGI app that serves an :class:`~lakelet.functions.App`'s routes
through an :class:`~lakelet.functions.invocation.Invoker`, as an HTTP API would.

Per request, in API Gateway's order: CORS preflight, route selection (404/405),
throttling (429), authorization (401/403), body limit (413), then the invocation; a
failed or timed-out handler, or a response API Gateway could not send, is a 502 whose
details go to the server's log, never to the client. Every response, errors included,
carries the request id in ``apigw-requestid``. The app is plain ASGI (it can be served
by uvicorn or mounted in a Starlette app); the hot path is a dict lookup, a few
compiled regexes and one invocation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from lakelet.errors import ConfigError
from lakelet.functions.events.http import (
    JSON_TYPE,
    MalformedResponse,
    format_request_time,
    http_event,
    http_response,
    request_headers,
)
from lakelet.functions.gateway.auth import ApiKeys, Denied, JwksSource, JwtAuthorizer
from lakelet.functions.gateway.cors import CorsPolicy
from lakelet.functions.gateway.routing import Match, Route, RouteTable
from lakelet.functions.gateway.settings import GatewaySettings
from lakelet.functions.gateway.throttle import TokenBucket, bucket
from lakelet.functions.invocation import Invocation, Invoker, TooManyRequests
from lakelet.functions.model import App
from lakelet.functions.requestids import BatchedIds, http_api_ids
from lakelet.functions.runtime.protocol import EVENT_SCOPE_KEYS, HttpParts

log = logging.getLogger("lakelet.functions.gateway")

Scope = MutableMapping[str, Any]
Parsed = tuple[dict[str, str], list[str]]  # headers by lower-case name, and the cookies
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

AinvokeHttp = Callable[..., Awaitable[Invocation]]

REQUEST_ID_HEADER = b"apigw-requestid"
# Framing is the server's business: these headers from a handler are dropped.
HOP_BY_HOP = frozenset(
    {b"content-length", b"transfer-encoding", b"connection", b"keep-alive", REQUEST_ID_HEADER}
)


def _message(text: str) -> bytes:
    return b'{"message":"' + text.encode() + b'"}'


NOT_FOUND = (404, _message("Not Found"))
METHOD_NOT_ALLOWED = (405, _message("Method Not Allowed"))
TOO_MANY = (429, _message("Too Many Requests"))
TOO_LARGE = (413, _message("Request Entity Too Large"))
BAD_REQUEST = (400, _message("Bad Request"))
BAD_GATEWAY = (502, _message("Internal Server Error"))


def new_request_id() -> str:
    """An id shaped like an HTTP API's (16 characters, base64)."""
    return http_api_ids(1)[0]


class Gateway:
    """The ASGI app; build it with :func:`build_gateway`."""

    def __init__(
        self,
        app: App,
        invoker: Invoker,
        settings: GatewaySettings,
        *,
        base: Path | None = None,
    ) -> None:
        self.app = app
        self.invoker = invoker
        self.settings = settings
        self.table = RouteTable(app.routes)
        self.cors = CorsPolicy.build(
            settings.cors_origins, settings.cors_methods, settings.cors_headers
        )
        self.global_bucket = bucket(settings.throttle_rate, settings.throttle_burst)
        self.route_buckets: dict[str, TokenBucket] = {}
        for route in self.table.routes:
            found = bucket(route.spec.throttle_rate, route.spec.throttle_burst)
            if found is not None:
                self.route_buckets[route.key] = found
        auths = {route.spec.auth for route in self.table.routes}
        self.api_keys = _api_keys(settings) if "api_key" in auths else None
        self.jwt = _jwt_authorizer(settings, base) if "jwt" in auths else None
        self.max_body = settings.max_body_bytes
        self.request_ids = BatchedIds(http_api_ids)
        self._second = -1  # the request time, formatted once a second
        self._second_text = ""
        # The forked runtime's: it takes a request's parts and its worker makes the event.
        self._ainvoke_http: AinvokeHttp | None = getattr(invoker, "ainvoke_http", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An HTTP request, served here rather than in a helper coroutine: each level of
        coroutines costs every request."""
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return  # websockets are not routed: HTTP APIs do not carry them
        request_id = self.request_ids()
        cors = self.cors
        extra: list[tuple[bytes, bytes]] = [(REQUEST_ID_HEADER, request_id.encode())]
        parsed: Parsed | None = None  # parsed when needed: a worker can parse them instead
        if cors is not None:
            parsed = request_headers(scope)
            headers = parsed[0]
            origin = headers.get("origin")
            if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                allowed = cors.preflight_headers(
                    origin, headers.get("access-control-request-headers")
                )
                await _send(send, 204, [*extra, *allowed], b"")
                return
            extra.extend(cors.response_headers(origin))
        status, body, more = await self._serve(scope, receive, parsed, request_id)
        if cors is not None:
            more = [h for h in more if not h[0].startswith(b"access-control-")]
        # _send's work, inline: one coroutine less to make and run per request
        extra += more
        for name, _ in more:
            if name == b"content-type":
                break
        else:
            if body:
                extra.append(JSON_TYPE)
        extra.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": body})

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        parsed: Parsed | None,
        request_id: str,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Status, body and headers of one request that is not a CORS preflight.
        ``parsed``: its headers and cookies, if the caller parsed them."""
        path: str = scope["path"]
        root = scope.get("root_path")
        if root and path.startswith(root):  # mounted under a prefix
            path = path[len(root) :] or "/"
        found = self.table.match(scope["method"], path)
        if not isinstance(found, Match):
            if found is None:
                return (*NOT_FOUND, [])
            return (*METHOD_NOT_ALLOWED, [(b"allow", ", ".join(found).encode())])
        route = found.route
        if not self._admit(route):
            return (*TOO_MANY, [])
        authorizer: dict[str, Any] | None = None
        auth = route.spec.auth
        if auth != "none":
            parsed = parsed or request_headers(scope)
            outcome = await self._authorize(auth, parsed[0])
            if isinstance(outcome, Denied):
                more = []
                if outcome.www_authenticate:
                    more.append((b"www-authenticate", outcome.www_authenticate.encode()))
                return outcome.status, _message(outcome.message), more
            authorizer = outcome
        declared, chunked = _framing(scope, parsed)
        if declared is not None or chunked:
            body = await self._read_body(receive, declared)
            if isinstance(body, tuple):
                return (*body, [])
        else:  # HTTP/1.1: a request without either header has no body
            body = b""
        now = time.time()
        if int(now) != self._second:
            self._second, self._second_text = int(now), format_request_time(now)
        function = route.spec.function
        try:  # awaited here, not in a helper: each coroutine level costs every request
            if self._ainvoke_http is not None:  # the invoker makes the event itself
                given = {key: scope[key] for key in EVENT_SCOPE_KEYS if key in scope}
                if parsed is None:  # the worker parses them (the same function)
                    given["headers"] = scope["headers"]
                parts: HttpParts = (
                    given,
                    body,
                    route.key,
                    request_id,
                    found.path_parameters or None,
                    authorizer,
                    now,
                    self._second_text,
                    None if parsed is None else parsed[0],
                    None if parsed is None else parsed[1],
                )
                result = await self._ainvoke_http(function, parts, source="api")
            else:
                event = http_event(
                    scope,
                    body,
                    route_key=route.key,
                    request_id=request_id,
                    path_parameters=found.path_parameters,
                    authorizer=authorizer,
                    now=now,
                    request_time=self._second_text,
                    parsed=parsed,
                )
                result = await self.invoker.ainvoke(function, event, source="api")
        except TooManyRequests:
            return (*TOO_MANY, [])
        except Exception:
            log.exception("request %s: invoking %s failed", request_id, function)
            return (*BAD_GATEWAY, [])
        return self._response(route, result, request_id)

    def _admit(self, route: Route) -> bool:
        """Take a token from the API's bucket and the route's, as API Gateway would."""
        if self.global_bucket is not None and not self.global_bucket.take():
            return False
        route_bucket = self.route_buckets.get(route.key)
        return route_bucket is None or route_bucket.take()

    async def _authorize(self, auth: str, headers: dict[str, str]) -> dict[str, Any] | Denied:
        if auth == "api_key":
            assert self.api_keys is not None
            denied = self.api_keys.check(headers.get("x-api-key"))
            return {} if denied is None else denied
        assert self.jwt is not None
        return await self.jwt.authorize(headers.get("authorization"))

    async def _read_body(self, receive: Receive, declared: str | None) -> bytes | tuple[int, bytes]:
        if declared is not None:
            if not declared.isdigit():
                return BAD_REQUEST
            if int(declared) > self.max_body:
                return TOO_LARGE
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return BAD_REQUEST  # the client went away
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self.max_body:
                    return TOO_LARGE
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _response(
        self, route: Route, result: Invocation, request_id: str
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """The HTTP response for an invocation's result, by API Gateway's rules."""
        if result.outcome != "ok":
            if result.outcome == "throttled":
                return (*TOO_MANY, [])
            failure = result.failure
            detail = f"{failure.error_type}: {failure.message}" if failure else result.outcome
            trace = "".join(f"\n{line}" for line in failure.stack_trace) if failure else ""
            log.error(
                "request %s: %s %s (invocation %s): %s%s",
                request_id,
                route.key,
                result.outcome,
                result.request_id,
                detail,
                trace,
            )
            return (*BAD_GATEWAY, [])
        rendered = result.http_response  # by the worker
        if rendered is not None:
            status, body, headers = rendered
        else:
            try:
                response = http_response(result.payload)
            except MalformedResponse as exc:
                log.error(
                    "request %s: %s returned a malformed response: %s", request_id, route.key, exc
                )
                return (*BAD_GATEWAY, [])
            status, body, headers = response.status, response.body, response.headers
        if len(headers) != 1 or headers[0] != JSON_TYPE:  # a handler's own headers
            headers = [h for h in headers if h[0] not in HOP_BY_HOP]
        return status, body, headers


def build_gateway(
    app: App, invoker: Invoker, settings: GatewaySettings | None = None, *, base: Path | None = None
) -> Gateway:
    """The gateway for ``app``; a relative ``jwks_file`` is read from ``base``.

    Raises :class:`~lakelet.errors.ConfigError` when a route needs settings that are
    missing (API keys, a JWT issuer and JWKS) or two routes share a route key.
    """
    return Gateway(app, invoker, settings or GatewaySettings(), base=base)


def _api_keys(settings: GatewaySettings) -> ApiKeys:
    if not settings.api_keys:
        raise ConfigError(
            "a route has auth='api_key' but [functions.gateway] api_keys is empty; set "
            "LAKELET__FUNCTIONS__GATEWAY__API_KEYS='[\"a-secret-key\"]'"
        )
    return ApiKeys(settings.api_keys)


def _jwt_authorizer(settings: GatewaySettings, base: Path | None) -> JwtAuthorizer:
    if not settings.jwt_issuer:
        raise ConfigError("a route has auth='jwt' but [functions.gateway] jwt_issuer is not set")
    if not settings.jwks_url and not settings.jwks_file:
        raise ConfigError(
            "a route has auth='jwt': set [functions.gateway] jwks_url or jwks_file to the "
            "issuer's signing keys"
        )
    file = None
    if settings.jwks_file:
        file = Path(settings.jwks_file)
        if not file.is_absolute() and base is not None:
            file = base / file
    jwks = JwksSource(url=settings.jwks_url or None, file=file)
    return JwtAuthorizer(settings.jwt_issuer, settings.jwt_audience, jwks)


def _framing(scope: Scope, parsed: Parsed | None) -> tuple[str | None, bool]:
    """The request's ``content-length`` (repeats joined with commas, as
    :func:`request_headers` joins them) and whether it has ``transfer-encoding``: HTTP/1.1
    gives a body by one or the other. Read from the raw headers when none were parsed."""
    if parsed is not None:
        headers = parsed[0]
        return headers.get("content-length"), "transfer-encoding" in headers
    lengths: list[str] = []
    chunked = False
    for name, value in scope["headers"]:
        lowered = name.lower()
        if lowered == b"content-length":
            lengths.append(value.decode("latin-1"))
        elif lowered == b"transfer-encoding":
            chunked = True
    return (",".join(lengths) if lengths else None), chunked


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    if not any(name == b"content-type" for name, _ in headers) and body:
        headers.append(JSON_TYPE)
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
