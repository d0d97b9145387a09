"""Route selection by HTTP APIs' priorities, and the token buckets that throttle."""

from __future__ import annotations

import pytest

from lakelet.functions.gateway.routing import Match, RouteTable
from lakelet.functions.gateway.throttle import TokenBucket, bucket
from lakelet.functions.model import RouteSpec


def table(*routes: tuple[str, str]) -> RouteTable:
    return RouteTable(
        RouteSpec(path, (method,), f"f{i}") for i, (method, path) in enumerate(routes)
    )


def chosen(routes: RouteTable, method: str, path: str) -> tuple[str, dict[str, str]] | None:
    found = routes.match(method, path)
    if not isinstance(found, Match):
        return None
    return found.route.key, found.path_parameters


ROUTES = table(
    ("GET", "/"),
    ("GET", "/pets"),
    ("GET", "/pets/dog/1"),
    ("GET", "/pets/dog/{id}"),
    ("GET", "/pets/{kind}/{id}"),
    ("ANY", "/pets/{kind}"),
    ("POST", "/pets/{kind}"),
    ("GET", "/pets/{proxy+}"),
    ("GET", "/pets/dog/{proxy+}"),
    ("ANY", "/{proxy+}"),
)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/", ("GET /", {})),
        ("GET", "/pets", ("GET /pets", {})),
        ("GET", "/pets/dog/1", ("GET /pets/dog/1", {})),  # the full literal match
        ("GET", "/pets/dog/2", ("GET /pets/dog/{id}", {"id": "2"})),  # literals first
        ("GET", "/pets/cat/2", ("GET /pets/{kind}/{id}", {"kind": "cat", "id": "2"})),
        ("POST", "/pets/cat", ("POST /pets/{kind}", {"kind": "cat"})),  # method over ANY
        ("PUT", "/pets/cat", ("ANY /pets/{kind}", {"kind": "cat"})),
        ("GET", "/pets/dog/1/toys", ("GET /pets/dog/{proxy+}", {"proxy": "1/toys"})),
        ("GET", "/pets/cat/1/toys", ("GET /pets/{proxy+}", {"proxy": "cat/1/toys"})),
        ("DELETE", "/pets/cat/1", ("ANY /{proxy+}", {"proxy": "pets/cat/1"})),
        ("GET", "/toys", ("ANY /{proxy+}", {"proxy": "toys"})),
    ],
)
def test_the_most_specific_route_wins(
    method: str, path: str, expected: tuple[str, dict[str, str]]
) -> None:
    assert chosen(ROUTES, method, path) == expected


def test_no_match_and_wrong_method() -> None:
    routes = table(("GET", "/a"), ("POST", "/a"), ("PUT", "/b/{id}"))
    assert routes.match("GET", "/c") is None
    assert routes.match("DELETE", "/a") == ["GET", "POST"]
    assert routes.match("GET", "/b/1") == ["PUT"]
    assert routes.match("GET", "/b/1/2") is None  # {id} is one segment


def test_the_default_route_comes_last() -> None:
    routes = table(("GET", "/a"), ("ANY", "$default"))
    assert chosen(routes, "GET", "/a") == ("GET /a", {})
    assert chosen(routes, "POST", "/a") == ("$default", {})
    assert chosen(routes, "GET", "/zzz") == ("$default", {})


def test_a_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    limiter = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [limiter.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back at 2 per second
    assert [limiter.take() for _ in range(2)] == [True, False]
    now[0] += 60  # never more than the burst
    assert [limiter.take() for _ in range(4)] == [True, True, True, False]


def test_a_bucket_without_burst_allows_a_second_of_requests() -> None:
    assert bucket(None, 5) is None
    limiter = bucket(2.5, None, clock=lambda: 0.0)
    assert limiter is not None
    assert [limiter.take() for _ in range(4)] == [True, True, True, False]
