"""HTTP API payload format 2.0: the event a route's handler receives, and how its return
value becomes the HTTP response.

The shapes follow API Gateway's HTTP APIs exactly, so a handler written against
``lakelet up`` runs unchanged behind AWS: header names are lower-cased and repeated
headers (and query parameters) are joined with commas; cookies move from the ``cookie``
header to ``cookies``; bodies that are not text arrive base64-encoded. A handler may
return a full response (``statusCode``, ``headers``, ``cookies``, ``body``,
``isBase64Encoded``) or any other JSON value, which API Gateway sends as a 200
``application/json`` response (a string as is, anything else JSON-encoded).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote

from lakelet.functions.invocation import FunctionsError, JsonEvent

ACCOUNT_ID = "123456789012"  # what SAM's local API Gateway reports too
API_ID = "lakelet"
STAGE = "$default"
DEFAULT_ROUTE = "$default"

# Request bodies of these media types reach the handler as text; others base64-encoded.
TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/javascript",
        "application/xml",
        "application/graphql",
        "application/x-ndjson",
        "application/yaml",
    }
)
TEXT_SUFFIXES = ("+json", "+xml")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RESPONSE_KEYS = frozenset(
    {"statusCode", "headers", "multiValueHeaders", "cookies", "body", "isBase64Encoded"}
)
JSON_TYPE = (b"content-type", b"application/json")


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _payload_encoder() -> Callable[[Any, int], Sequence[str]]:
    """The C encoder itself, built once (``json.dumps`` builds one per call), without
    the check for cycles: a payload comes out of a JSON decoder (the runtime's), or
    from a handler run in this process, whose cycle ends in a ``RecursionError``."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the json accelerator
        encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
        return lambda value, _level: (encoder.encode(value),)
    encode: Callable[[Any, int], Sequence[str]] = make(
        None, _not_json, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    return encode


_ENCODE = _payload_encoder()


class MalformedResponse(FunctionsError):
    """A handler returned a response API Gateway cannot turn into HTTP (a 502)."""


@dataclass(frozen=True, init=False)
class HttpResult:
    """An HTTP response ready for ASGI: status, raw header pairs, body bytes."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        # One per request: set at once, not through object.__setattr__ per field.
        self.__dict__.update(status=status, headers=headers, body=body)


def http_event(
    scope: Mapping[str, Any],
    body: bytes,
    *,
    route_key: str,
    request_id: str,
    path_parameters: Mapping[str, str] | None = None,
    authorizer: Mapping[str, Any] | None = None,
    stage_variables: Mapping[str, str] | None = None,
    now: float | None = None,
    request_time: str | None = None,
    parsed: tuple[dict[str, str], list[str]] | None = None,
) -> JsonEvent:
    """The payload-2.0 event for one ASGI HTTP request whose body was read already.

    Optional members (``cookies``, ``queryStringParameters``, ``pathParameters``,
    ``body``, ``stageVariables``, ``requestContext.authorizer``) are left out when
    empty, as API Gateway leaves them out. It holds JSON values only (a
    :class:`JsonEvent`, which the runtime ships cheaply). ``parsed`` (:func:`request_headers` of the
    scope) and ``request_time`` (:func:`format_request_time` of ``now``) save a busy
    caller the work when it has them already.
    """
    headers, cookies = parsed or request_headers(scope)
    headers = headers.copy()
    client = scope.get("client")
    source_ip = client[0] if client else "127.0.0.1"
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded}, {source_ip}" if forwarded else source_ip
    if "x-forwarded-port" not in headers:
        server = scope.get("server")
        headers["x-forwarded-port"] = str(server[1]) if server and server[1] else "80"
    if "x-forwarded-proto" not in headers:
        headers["x-forwarded-proto"] = scope.get("scheme", "http")

    path: str = scope["path"]
    raw_path_bytes = scope.get("raw_path")
    raw_path = raw_path_bytes.decode("latin-1") if raw_path_bytes else quote(path)
    raw_query = scope.get("query_string", b"").decode("latin-1")
    host = _hostname(headers.get("host", "localhost"))
    stamp = time.time() if now is None else now
    context = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": host,
        "domainPrefix": host.partition(".")[0],
        "http": {
            "method": scope["method"],
            "path": path,
            "protocol": "HTTP/" + scope.get("http_version", "1.1"),
            "sourceIp": source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": STAGE,
        "time": request_time or format_request_time(stamp),
        "timeEpoch": int(stamp * 1000),
    }
    if authorizer:
        context["authorizer"] = dict(authorizer)
    if not (cookies or raw_query or body or path_parameters or stage_variables):
        return JsonEvent(  # the usual GET: every member at once
            version="2.0",
            routeKey=route_key,
            rawPath=raw_path,
            rawQueryString=raw_query,
            headers=headers,
            requestContext=context,
            isBase64Encoded=False,
        )
    event = JsonEvent(version="2.0", routeKey=route_key, rawPath=raw_path, rawQueryString=raw_query)
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if raw_query:
        event["queryStringParameters"] = query_parameters(raw_query)
    event["requestContext"] = context
    encoded = False
    if body:
        text = _as_text(body, headers.get("content-type"))
        if text is None:
            event["body"] = base64.b64encode(body).decode("ascii")
            encoded = True
        else:
            event["body"] = text
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    event["isBase64Encoded"] = encoded
    if stage_variables:
        event["stageVariables"] = dict(stage_variables)
    return event


def request_headers(scope: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The headers by lower-case name (repeats joined with commas, as API Gateway
    joins them) and the cookies, which API Gateway takes out of the headers."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
        elif name in headers:
            headers[name] = f"{headers[name]},{value}"
        else:
            headers[name] = value
    return headers, cookies


def query_parameters(raw_query: str) -> dict[str, str]:
    """``a=1&a=2&b`` → ``{"a": "1,2", "b": ""}``: repeated names joined with commas."""
    result: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        result[name] = f"{result[name]},{value}" if name in result else value
    return result


def format_request_time(stamp: float) -> str:
    """``12/Mar/2020:19:03:58 +0000``, independent of the process's locale."""
    t = time.gmtime(stamp)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def _hostname(host: str) -> str:
    """``example.com:8000`` → ``example.com``; ``[::1]:8000`` → ``[::1]``."""
    if host.startswith("["):
        return host[: host.find("]") + 1] or host
    return host.rsplit(":", 1)[0]


def is_text_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in TEXT_TYPES or media.endswith(TEXT_SUFFIXES)


def _as_text(body: bytes, content_type: str | None) -> str | None:
    """The body as text when its media type is textual (or absent) and it is UTF-8."""
    if content_type and not is_text_type(content_type):
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


# --- the response ------------------------------------------------------------------------


def http_response(payload: Any) -> HttpResult:
    """Turn a handler's return value into an HTTP response, by API Gateway's rules.

    A dict with ``statusCode`` is a full response; anything else is a 200 with
    ``content-type: application/json`` whose body is the value (a string as is, other
    values JSON-encoded). Raises :class:`MalformedResponse` for a response API Gateway
    would reject.
    """
    if isinstance(payload, dict) and "statusCode" in payload:
        return _full_response(payload)
    if isinstance(payload, str):
        body = payload.encode("utf-8")
    elif payload is None:
        body = b""
    else:
        try:
            body = "".join(_ENCODE(payload, 0)).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise MalformedResponse(f"the return value is not JSON: {exc}") from None
    return HttpResult(200, [JSON_TYPE], body)


def _full_response(payload: dict[str, Any]) -> HttpResult:
    unknown = sorted(set(payload) - _RESPONSE_KEYS)
    if unknown:
        raise MalformedResponse(f"unknown response key(s) {', '.join(unknown)}")
    status = _status(payload["statusCode"])
    headers: list[tuple[bytes, bytes]] = []
    seen: set[bytes] = set()
    single = payload.get("headers") or {}
    if not isinstance(single, dict):
        raise MalformedResponse("'headers' must be an object of name → value")
    for name, value in single.items():
        key = _header_name(name)
        seen.add(key)
        headers.append((key, _header_value(name, value)))
    multi = payload.get("multiValueHeaders") or {}
    if not isinstance(multi, dict):
        raise MalformedResponse("'multiValueHeaders' must be an object of name → list")
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedResponse(f"multiValueHeaders[{name!r}] must be a list")
        key = _header_name(name)
        already = {v for k, v in headers if k == key}
        for value in values:
            encoded = _header_value(name, value)
            if encoded not in already:
                headers.append((key, encoded))
        seen.add(key)
    cookies = payload.get("cookies") or []
    if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
        raise MalformedResponse("'cookies' must be a list of strings")
    headers.extend((b"set-cookie", _latin1("cookie", c)) for c in cookies)
    if b"content-type" not in seen:
        headers.append(JSON_TYPE)
    body = _body(payload.get("body"), payload.get("isBase64Encoded", False))
    return HttpResult(status, headers, body)


def _status(value: Any) -> int:
    if isinstance(value, bool):
        raise MalformedResponse(f"statusCode {value!r} is not an HTTP status")
    try:
        status = int(value)
    except (TypeError, ValueError):
        raise MalformedResponse(f"statusCode {value!r} is not an HTTP status") from None
    if not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode {value!r} is not an HTTP status")
    return status


def _body(value: Any, encoded: Any) -> bytes:
    if encoded not in (True, False, "true", "false", "True", "False"):
        raise MalformedResponse(f"isBase64Encoded {encoded!r} is not a boolean")
    if value is None:
        return b""
    if not isinstance(value, str):
        raise MalformedResponse(
            f"'body' must be a string (got {type(value).__name__}); json.dumps it first"
        )
    if encoded in (True, "true", "True"):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedResponse("'body' is not valid base64 (isBase64Encoded)") from None
    return value.encode("utf-8")


def _header_name(name: Any) -> bytes:
    if not isinstance(name, str) or not name or not name.isascii() or " " in name:
        raise MalformedResponse(f"header name {name!r} is not valid")
    return name.lower().encode("ascii")


def _header_value(name: str, value: Any) -> bytes:
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int | float):
        return str(value).encode("ascii")
    if isinstance(value, str):
        return _latin1(name, value)
    raise MalformedResponse(f"header {name!r}: value {value!r} is not a string")


def _latin1(name: str, value: str) -> bytes:
    if "\r" in value or "\n" in value:
        raise MalformedResponse(f"header {name!r}: a value cannot contain a line break")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise MalformedResponse(f"header {name!r}: value is not Latin-1 text") from None
