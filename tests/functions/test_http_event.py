"""HTTP API payload format 2.0: the event, field by field against AWS's documented
example, read back by aws-lambda-powertools; and the response rules (full responses,
bare values, cookies, base64)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model

from lakelet.functions.events.http import (
    MalformedResponse,
    format_request_time,
    http_event,
    http_response,
    query_parameters,
)

# The example event of "Create AWS Lambda proxy integrations for HTTP APIs" (API Gateway
# developer guide), without the mutual-TLS ``authentication`` block.
EXAMPLE = json.loads((Path(__file__).parent / "apps" / "gw_http_api_v2_example.json").read_text())
EXAMPLE_EPOCH_S = 1583348638.390


def scope(
    method: str = "POST",
    path: str = "/my/path",
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    raw_path: bytes | None = None,
) -> dict[str, Any]:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": raw_path if raw_path is not None else path.encode(),
        "query_string": query,
        "headers": headers or [],
        "client": ("192.0.2.1", 53412),
        "server": ("127.0.0.1", 8000),
    }


def example_event() -> dict[str, Any]:
    """The documented request, as Lakelet's gateway builds its event."""
    request = scope(
        query=b"parameter1=value1&parameter1=value2&parameter2=value",
        headers=[
            (b"host", b"id.execute-api.us-east-1.amazonaws.com"),
            (b"header1", b"value1"),
            (b"header2", b"value1"),
            (b"header2", b"value2"),
            (b"cookie", b"cookie1; cookie2"),
            (b"user-agent", b"agent"),
            (b"content-type", b"text/plain"),
        ],
    )
    return http_event(
        request,
        b"Hello from Lambda",
        route_key="$default",
        request_id="id",
        path_parameters={"parameter1": "value1"},
        authorizer=EXAMPLE["requestContext"]["authorizer"],
        stage_variables={"stageVariable1": "value1", "stageVariable2": "value2"},
        now=EXAMPLE_EPOCH_S,
    )


def shape(value: Any) -> Any:
    """Keys and value types, recursively: what must match AWS, whatever the values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def test_event_has_the_documented_shape() -> None:
    event = example_event()
    ours = shape(event)
    theirs = shape(EXAMPLE)
    # Real requests carry more headers than the example (host, x-forwarded-*).
    assert set(theirs["headers"]) <= set(ours["headers"])
    ours["headers"] = theirs["headers"] = {}
    assert ours == theirs
    assert list(event) == list(EXAMPLE)  # and in AWS's order


@pytest.mark.parametrize(
    "path",
    [
        ["version"],
        ["routeKey"],
        ["rawPath"],
        ["rawQueryString"],
        ["cookies"],
        ["headers", "header1"],
        ["headers", "header2"],
        ["queryStringParameters"],
        ["pathParameters"],
        ["stageVariables"],
        ["body"],
        ["isBase64Encoded"],
        ["requestContext", "accountId"],
        ["requestContext", "domainName"],
        ["requestContext", "domainPrefix"],
        ["requestContext", "http"],
        ["requestContext", "authorizer"],
        ["requestContext", "requestId"],
        ["requestContext", "routeKey"],
        ["requestContext", "stage"],
        ["requestContext", "timeEpoch"],
    ],
)
def test_event_matches_the_documented_values(path: list[str]) -> None:
    ours: Any = example_event()
    theirs: Any = EXAMPLE
    for key in path:
        ours, theirs = ours[key], theirs[key]
    assert ours == theirs


def test_request_time_is_formatted_as_api_gateway_does() -> None:
    event = example_event()
    assert re.fullmatch(
        r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", event["requestContext"]["time"]
    )
    assert format_request_time(EXAMPLE_EPOCH_S) == "04/Mar/2020:19:03:58 +0000"
    assert format_request_time(0) == "01/Jan/1970:00:00:00 +0000"


def test_powertools_reads_the_event() -> None:
    event = APIGatewayProxyEventV2(example_event())
    assert event.raw_path == "/my/path"
    assert event.cookies == ["cookie1", "cookie2"]
    assert event.query_string_parameters == {"parameter1": "value1,value2", "parameter2": "value"}
    assert event.path_parameters == {"parameter1": "value1"}
    assert event.headers.get("Header2") == "value1,value2"
    assert event.request_context.http.method == "POST"
    assert event.request_context.http.source_ip == "192.0.2.1"
    assert event.request_context.authorizer.jwt_claim == {"claim1": "value1", "claim2": "value2"}
    assert event.request_context.authorizer.jwt_scopes == ["scope1", "scope2"]
    assert event.decoded_body == "Hello from Lambda"
    model = APIGatewayProxyEventV2Model.model_validate(example_event())
    assert model.requestContext.http.userAgent == "agent"
    assert model.requestContext.timeEpoch.year == 2020


def test_optional_members_are_left_out_when_empty() -> None:
    event = http_event(scope("GET", "/ping"), b"", route_key="GET /ping", request_id="r")
    for absent in ("cookies", "queryStringParameters", "pathParameters", "body", "stageVariables"):
        assert absent not in event
    assert "authorizer" not in event["requestContext"]
    assert event["isBase64Encoded"] is False
    assert event["rawQueryString"] == ""
    assert event["headers"]["x-forwarded-for"] == "192.0.2.1"
    assert event["headers"]["x-forwarded-port"] == "8000"
    assert event["headers"]["x-forwarded-proto"] == "http"
    APIGatewayProxyEventV2Model.model_validate(event)


def test_headers_are_lower_cased_and_cookies_leave_the_headers() -> None:
    event = http_event(
        scope(headers=[(b"X-Thing", b"1"), (b"x-thing", b"2"), (b"Cookie", b"a=1;b=2")]),
        b"",
        route_key="$default",
        request_id="r",
    )
    assert event["headers"]["x-thing"] == "1,2"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["a=1", "b=2"]


def test_a_forwarded_for_chain_gets_the_client_appended() -> None:
    headers = [(b"x-forwarded-for", b"203.0.113.9")]
    event = http_event(scope(headers=headers), b"", route_key="$default", request_id="r")
    assert event["headers"]["x-forwarded-for"] == "203.0.113.9, 192.0.2.1"


def test_raw_path_keeps_the_encoding_and_http_path_is_decoded() -> None:
    event = http_event(
        scope("GET", "/items/a b", raw_path=b"/items/a%20b"),
        b"",
        route_key="GET /items/{id}",
        request_id="r",
        path_parameters={"id": "a b"},
    )
    assert event["rawPath"] == "/items/a%20b"
    assert event["requestContext"]["http"]["path"] == "/items/a b"


@pytest.mark.parametrize(
    ("content_type", "body", "encoded"),
    [
        (b"application/json", b'{"a": 1}', False),
        (b"application/json; charset=utf-8", b'{"a": 1}', False),
        (b"text/csv", "é,1".encode(), False),
        (b"application/vnd.api+json", b"{}", False),
        (b"application/xml", b"<a/>", False),
        (b"application/octet-stream", b"\x00\x01\xff", True),
        (b"image/png", b"\x89PNG", True),
        (b"application/x-www-form-urlencoded", b"a=1&b=2", True),
        (b"text/plain", b"\xff\xfe", True),  # not UTF-8, whatever it claims
        (None, b"plain", False),
        (None, b"\xff", True),
    ],
)
def test_binary_bodies_are_base64_encoded(
    content_type: bytes | None, body: bytes, encoded: bool
) -> None:
    headers = [(b"content-type", content_type)] if content_type else []
    event = http_event(scope(headers=headers), body, route_key="$default", request_id="r")
    assert event["isBase64Encoded"] is encoded
    got = base64.b64decode(event["body"]) if encoded else event["body"].encode()
    assert got == body
    if not encoded:
        assert APIGatewayProxyEventV2(event).decoded_body == body.decode()


def test_repeated_query_parameters_join_with_commas() -> None:
    assert query_parameters("a=1&a=2&b=&c") == {"a": "1,2", "b": "", "c": ""}
    assert query_parameters("q=hello%20world&x=a%2Cb") == {"q": "hello world", "x": "a,b"}


# --- responses -------------------------------------------------------------------------


def header(result: Any, name: bytes) -> list[bytes]:
    return [v for k, v in result.headers if k == name]


def test_a_full_response_is_sent_as_given() -> None:
    result = http_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "text/plain", "X-Count": 3, "X-Ok": True},
            "body": "made",
        }
    )
    assert result.status == 201
    assert result.body == b"made"
    assert header(result, b"content-type") == [b"text/plain"]
    assert header(result, b"x-count") == [b"3"]
    assert header(result, b"x-ok") == [b"true"]


def test_a_response_without_content_type_is_json() -> None:
    result = http_response({"statusCode": 204})
    assert result.status == 204
    assert result.body == b""
    assert header(result, b"content-type") == [b"application/json"]


@pytest.mark.parametrize(
    ("payload", "body"),
    [
        ({"message": "hi"}, b'{"message":"hi"}'),
        ({"body": "x", "headers": {}}, b'{"body":"x","headers":{}}'),  # no statusCode
        ("Hello from Lambda!", b"Hello from Lambda!"),  # AWS's own example: as is
        (42, b"42"),
        (1.5, b"1.5"),
        (True, b"true"),
        ([1, "é"], '[1,"é"]'.encode()),
        (None, b""),
    ],
)
def test_anything_but_a_full_response_is_a_200_json_body(payload: Any, body: bytes) -> None:
    result = http_response(payload)
    assert (result.status, result.body) == (200, body)
    assert result.headers == [(b"content-type", b"application/json")]


def test_cookies_become_set_cookie_headers() -> None:
    result = http_response({"statusCode": 200, "cookies": ["a=1; Secure", "b=2"], "body": ""})
    assert header(result, b"set-cookie") == [b"a=1; Secure", b"b=2"]


def test_multi_value_headers_merge_with_headers() -> None:
    result = http_response(
        {
            "statusCode": 200,
            "headers": {"x-tag": "a"},
            "multiValueHeaders": {"X-Tag": ["a", "b"], "x-other": ["c"]},
        }
    )
    assert header(result, b"x-tag") == [b"a", b"b"]
    assert header(result, b"x-other") == [b"c"]


def test_a_base64_body_is_decoded() -> None:
    raw = bytes(range(256))
    result = http_response(
        {
            "statusCode": "200",
            "headers": {"content-type": "application/octet-stream"},
            "body": base64.b64encode(raw).decode(),
            "isBase64Encoded": True,
        }
    )
    assert result.status == 200
    assert result.body == raw


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"statusCode": "teapot"}, "statusCode"),
        ({"statusCode": 99}, "statusCode"),
        ({"statusCode": 600}, "statusCode"),
        ({"statusCode": True}, "statusCode"),
        ({"statusCode": 200, "body": {"a": 1}}, "body"),
        ({"statusCode": 200, "headers": ["a"]}, "headers"),
        ({"statusCode": 200, "headers": {"x": ["a"]}}, "header 'x'"),
        ({"statusCode": 200, "headers": {"x": "a\r\nset-cookie: evil"}}, "line break"),
        ({"statusCode": 200, "headers": {"bad name": "a"}}, "header name"),
        ({"statusCode": 200, "cookies": "a=1"}, "cookies"),
        ({"statusCode": 200, "multiValueHeaders": {"x": "a"}}, "multiValueHeaders"),
        ({"statusCode": 200, "body": "%%%", "isBase64Encoded": True}, "base64"),
        ({"statusCode": 200, "isBase64Encoded": "yes"}, "isBase64Encoded"),
        ({"statusCode": 200, "statuscode": 201}, "statuscode"),
    ],
)
def test_a_malformed_response_is_refused_with_its_reason(payload: Any, reason: str) -> None:
    with pytest.raises(MalformedResponse, match=re.escape(reason)):
        http_response(payload)
