"""The API gateway of ``lakelet up``: an app's routes over HTTP, as an HTTP API
(payload format 2.0) serves them on AWS."""

from lakelet.functions.gateway.app import Gateway, build_gateway
from lakelet.functions.gateway.server import make_server, serve
from lakelet.functions.gateway.settings import GatewaySettings, from_settings

__all__ = ["Gateway", "GatewaySettings", "build_gateway", "from_settings", "make_server", "serve"]
