"""The gateway's settings (``[functions.gateway]`` in ``lakelet.toml``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from lakelet.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# API Gateway accepts 10 MB, but a synchronous Lambda invocation takes at most 6 MB.
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024


@dataclass(frozen=True)
class GatewaySettings:
    """How ``lakelet up`` serves an app's routes.

    CORS is off unless ``cors_origins`` is set (``"*"`` for any origin). ``api_keys`` are
    the keys accepted in ``x-api-key`` by ``auth="api_key"`` routes; ``auth="jwt"``
    routes check tokens signed by a key of the JWKS (``jwks_url`` or ``jwks_file``),
    issued by ``jwt_issuer`` for one of ``jwt_audience``. ``throttle_rate`` /
    ``throttle_burst`` limit the whole API, as a token bucket.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    cors_origins: tuple[str, ...] = ()
    cors_methods: tuple[str, ...] = ("*",)
    cors_headers: tuple[str, ...] = ("*",)
    api_keys: tuple[str, ...] = ()
    jwt_issuer: str | None = None
    jwt_audience: tuple[str, ...] = ()
    jwks_url: str | None = None
    jwks_file: str | None = None
    throttle_rate: float | None = None
    throttle_burst: int | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __post_init__(self) -> None:
        for name in ("cors_origins", "cors_methods", "cors_headers", "api_keys", "jwt_audience"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(value))
        if self.max_body_bytes <= 0:
            raise ConfigError(f"[functions.gateway] max_body_bytes = {self.max_body_bytes}: > 0")
        if self.throttle_rate is not None and self.throttle_rate <= 0:
            raise ConfigError(f"[functions.gateway] throttle_rate = {self.throttle_rate}: > 0")
        if self.throttle_burst is not None and self.throttle_burst < 1:
            raise ConfigError(f"[functions.gateway] throttle_burst = {self.throttle_burst}: ≥ 1")


def from_settings(settings: Any) -> GatewaySettings:
    """The gateway settings of a project's :class:`~lakelet.config.Settings`; the
    defaults until ``[functions.gateway]`` is configured."""
    section = getattr(getattr(settings, "functions", None), "gateway", None)
    if section is None:
        return GatewaySettings()
    values = {
        f.name: _plain(getattr(section, f.name))
        for f in fields(GatewaySettings)
        if hasattr(section, f.name)
    }
    return GatewaySettings(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(value)
    return value
