"""Route selection as HTTP APIs do it: the most specific route wins.

API Gateway tries, in order: a full match of path and method (literal segments before
``{param}`` segments), a match with a greedy ``{proxy+}`` variable (the longest prefix
first), then the ``$default`` route; a route for the method wins over ``ANY``. Paths are
compiled once, so a request costs a dict lookup for a literal path and a few regex
matches otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from lakelet.errors import ConfigError
from lakelet.functions.events.http import DEFAULT_ROUTE
from lakelet.functions.model import RouteSpec

PARAM_RE = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_.-]*)(\+?)\}$")


@dataclass(frozen=True)
class Route:
    """One route key (``GET /items/{id}``) and the spec that declared it."""

    key: str
    method: str  # "ANY" matches every method
    path: str
    spec: RouteSpec


@dataclass(frozen=True)
class Match:
    route: Route
    path_parameters: dict[str, str]


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    names: tuple[str, ...]
    rank: tuple[int, ...]  # sorts the most specific first
    routes: dict[str, Route]  # method → route


class RouteTable:
    """All routes of an app, ready for :meth:`match`."""

    def __init__(self, specs: Iterable[RouteSpec]) -> None:
        self.routes: list[Route] = []
        self._literal: dict[str, dict[str, Route]] = {}
        patterns: dict[str, tuple[re.Pattern[str], tuple[str, ...], tuple[int, ...]]] = {}
        by_path: dict[str, dict[str, Route]] = {}
        self.default: dict[str, Route] = {}
        for spec in specs:
            for method in spec.methods:
                if spec.path == DEFAULT_ROUTE:
                    route = Route(DEFAULT_ROUTE, method, spec.path, spec)
                    self._add(self.default, route)
                    continue
                route = Route(f"{method} {spec.path}", method, spec.path, spec)
                compiled = _compile(spec.path)
                if compiled is None:
                    self._add(self._literal.setdefault(spec.path, {}), route)
                else:
                    patterns.setdefault(spec.path, compiled)
                    self._add(by_path.setdefault(spec.path, {}), route)
        self._patterns = sorted(
            (_Pattern(*patterns[path], routes) for path, routes in by_path.items()),
            key=lambda p: p.rank,
        )

    def _add(self, table: dict[str, Route], route: Route) -> None:
        if route.method in table:
            raise ConfigError(
                f"route {route.key!r} is declared twice (functions "
                f"{table[route.method].spec.function!r} and {route.spec.function!r})"
            )
        table[route.method] = route
        self.routes.append(route)

    def match(self, method: str, path: str) -> Match | list[str] | None:
        """The route for a request's (URL-decoded) path; ``None`` when no path matches,
        or the allowed methods when the path matches but the method does not."""
        allowed: list[str] = []
        by_method = self._literal.get(path)
        if by_method is not None:
            route = by_method.get(method) or by_method.get("ANY")
            if route is not None:
                return Match(route, {})
            allowed.extend(by_method)
        for pattern in self._patterns:
            found = pattern.regex.match(path)
            if found is None:
                continue
            route = pattern.routes.get(method) or pattern.routes.get("ANY")
            if route is None:
                allowed.extend(pattern.routes)
                continue
            return Match(route, dict(zip(pattern.names, found.groups(), strict=True)))
        route = self.default.get(method) or self.default.get("ANY")
        if route is not None:
            return Match(route, {})
        return sorted(set(allowed)) if allowed else None


def _compile(path: str) -> tuple[re.Pattern[str], tuple[str, ...], tuple[int, ...]] | None:
    """A regex for a path with variables (``None`` for a literal path).

    The rank orders patterns: greedy ones after the others, then per segment literal
    before variable, then longer before shorter.
    """
    segments = path.strip("/").split("/") if path != "/" else []
    if not any("{" in s or "}" in s for s in segments):
        return None
    parts: list[str] = []
    names: list[str] = []
    kinds: list[int] = []
    greedy = False
    for index, segment in enumerate(segments):
        param = PARAM_RE.match(segment)
        if param is None:
            if "{" in segment or "}" in segment:
                raise ConfigError(
                    f"route {path!r}: a path variable is a whole segment, like /items/{{id}}"
                )
            parts.append(re.escape(segment))
            kinds.append(0)
            continue
        name, plus = param.groups()
        if name in names:
            raise ConfigError(f"route {path!r}: variable {{{name}}} appears twice")
        names.append(name)
        if plus:
            if index != len(segments) - 1:
                raise ConfigError(f"route {path!r}: a greedy {{{name}+}} must be the last segment")
            parts.append("(.+)")
            greedy = True
            kinds.append(2)
        else:
            parts.append("([^/]+)")
            kinds.append(1)
    regex = re.compile("^/" + "/".join(parts) + "$")
    rank = (1 if greedy else 0, *kinds, -len(segments))
    return regex, tuple(names), rank
