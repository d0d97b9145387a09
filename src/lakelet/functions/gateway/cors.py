"""CORS as an HTTP API configures it: the gateway answers preflight requests itself
(whether or not a route exists for ``OPTIONS``) and owns the ``access-control-*``
headers of every response, replacing any a handler sets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PREFLIGHT_MAX_AGE = b"600"


@dataclass(frozen=True)
class CorsPolicy:
    origins: frozenset[str]
    any_origin: bool
    methods: bytes
    headers: bytes | None  # None: echo the requested headers

    @classmethod
    def build(
        cls, origins: Sequence[str], methods: Sequence[str], headers: Sequence[str]
    ) -> CorsPolicy | None:
        """The policy, or ``None`` when CORS is off (no origins)."""
        if not origins:
            return None
        wanted = [h.strip().lower() for h in headers if h.strip()]
        return cls(
            origins=frozenset(o.rstrip("/") for o in origins),
            any_origin="*" in origins,
            methods=", ".join(m.strip().upper() for m in methods if m.strip()).encode(),
            headers=None if "*" in wanted or not wanted else ", ".join(wanted).encode(),
        )

    def allow_origin(self, origin: str | None) -> bytes | None:
        """The ``access-control-allow-origin`` value for a request's origin, if allowed."""
        if origin is None:
            return None
        if self.any_origin:
            return b"*"
        if origin in self.origins:
            return origin.encode("latin-1")
        return None

    def response_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        allowed = self.allow_origin(origin)
        if allowed is None:
            return []
        if allowed == b"*":
            return [(b"access-control-allow-origin", allowed)]
        return [(b"access-control-allow-origin", allowed), (b"vary", b"origin")]

    def preflight_headers(
        self, origin: str | None, requested_headers: str | None
    ) -> list[tuple[bytes, bytes]]:
        """Headers of the 204 answering a preflight; none for an origin not allowed."""
        headers = self.response_headers(origin)
        if not headers:
            return []
        headers.append((b"access-control-allow-methods", self.methods))
        allow_headers = self.headers
        if allow_headers is None and requested_headers:
            allow_headers = requested_headers.encode("latin-1")
        if allow_headers:
            headers.append((b"access-control-allow-headers", allow_headers))
        headers.append((b"access-control-max-age", PREFLIGHT_MAX_AGE))
        return headers
