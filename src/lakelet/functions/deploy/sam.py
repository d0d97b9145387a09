"""The app as an AWS SAM template: what ``lakelet up`` runs, declared for CloudFormation.

Every function becomes an ``AWS::Serverless::Function`` with its memory, timeout,
reserved concurrency, retries and dead-letter queue; routes become ``HttpApi`` events
(payload 2.0, as served locally) on one ``AWS::Serverless::HttpApi`` carrying the JWT
authorizer, CORS and throttling; schedules become EventBridge ``Schedule`` events;
object triggers ``S3`` events on a bucket per lake bucket; queue triggers ``SQS``
events (partial batch failures reported, as locally) on ``AWS::SQS::Queue`` resources
with their redrive policies. HTTP APIs have no API keys, so ``auth="api_key"`` routes
get a small Lambda authorizer that checks ``x-api-key`` against the ``ApiKeys``
parameter: the keys themselves never enter the template.

The template is plain data (intrinsics in their long form, ``{"Ref": ...}``), written
as YAML when PyYAML is installed and as JSON (which is YAML too) otherwise.
"""

from __future__ import annotations

import importlib
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lakelet import __version__
from lakelet.errors import ConfigError, UserError
from lakelet.functions.events.http import DEFAULT_ROUTE
from lakelet.functions.gateway.routing import RouteTable
from lakelet.functions.gateway.settings import GatewaySettings
from lakelet.functions.model import App, FunctionSpec, RouteSpec

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
HTTP_API_ID = "HttpApi"
JWT_AUTHORIZER = "JwtAuthorizer"
API_KEY_AUTHORIZER = "ApiKeyAuthorizer"
API_KEY_FUNCTION = "ApiKeyAuthorizerFunction"
API_KEYS_PARAMETER = "ApiKeys"
LAMBDA_RUNTIMES = ("3.10", "3.11", "3.12", "3.13", "3.14")
DEFAULT_VISIBILITY_TIMEOUT_S = 30.0

# Checks x-api-key against the ApiKeys parameter (a simple-response authorizer, 2.0).
API_KEY_AUTHORIZER_CODE = """\
import hmac
import os

KEYS = [k.encode() for k in os.environ.get("API_KEYS", "").split(",") if k]


def handler(event, context):
    given = (event.get("headers") or {}).get("x-api-key", "").encode()
    ok = False
    for key in KEYS:
        ok |= hmac.compare_digest(given, key)
    return {"isAuthorized": ok}
"""


@dataclass
class SamExport:
    """The template and what the export noticed that AWS would refuse or treat otherwise."""

    template: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def export_sam(
    app: App,
    *,
    gateway: GatewaySettings | None = None,
    queues: Mapping[str, Any] | None = None,
    code_uri: str = ".",
    runtime: str | None = None,
) -> SamExport:
    """The SAM template of ``app``. ``queues`` maps a queue name to its settings
    (anything with ``visibility_timeout_s``, ``max_receive_count``, ``dead_letter``,
    such as the ``[functions.queues.NAME]`` sections); queues the app uses but that are
    not listed get SQS's defaults."""
    return _Builder(app, gateway or GatewaySettings(), queues or {}, code_uri, runtime).build()


def render(template: Mapping[str, Any]) -> str:
    """The template as YAML (PyYAML), or as JSON when PyYAML is not installed."""
    try:
        yaml: Any = importlib.import_module("yaml")  # PyYAML: cfn-lint brings it
    except ImportError:
        return json.dumps(template, indent=2) + "\n"
    text: str = yaml.safe_dump(
        dict(template), sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
    )
    return text


def default_runtime() -> str:
    """The Lambda runtime of this Python (or the newest Lambda has, if it is newer)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"python{version if version in LAMBDA_RUNTIMES else LAMBDA_RUNTIMES[-1]}"


def logical_id(name: str, suffix: str = "") -> str:
    """A CloudFormation logical id (alphanumeric) from a name: ``raw-sales`` → ``RawSales``."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]
    return "".join(w[:1].upper() + w[1:] for w in words) + suffix


def _ref(logical: str) -> dict[str, Any]:
    return {"Ref": logical}


def _arn(logical: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical, "Arn"]}


class _Builder:
    def __init__(
        self,
        app: App,
        gateway: GatewaySettings,
        queues: Mapping[str, Any],
        code_uri: str,
        runtime: str | None,
    ) -> None:
        self.app = app
        self.gateway = gateway
        self.queue_settings = queues
        self.code_uri = code_uri
        self.runtime = runtime or default_runtime()
        self.resources: dict[str, Any] = {}
        self.function_ids: dict[str, str] = {}
        self.queue_ids: dict[str, str] = {}
        self.bucket_ids: dict[str, str] = {}
        self.warnings: list[str] = []

    def build(self) -> SamExport:
        RouteTable(self.app.routes)  # the same checks as the gateway: paths, duplicates
        for spec in self.app.functions.values():
            self.function_ids[spec.name] = self._unique(logical_id(spec.name, "Function"))
        for spec in self.app.functions.values():
            self.resources[self.function_ids[spec.name]] = self._function(spec)
        self._add_events()
        for name in self.queue_settings:  # queues of the project the app does not name
            self._queue(name)
        template: dict[str, Any] = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Transform": SAM_TRANSFORM,
            "Description": f"Lakelet app {self.app.name} (exported by lakelet {__version__})",
        }
        parameters = self._parameters()
        if parameters:
            template["Parameters"] = parameters
        template["Globals"] = {"Function": {"Runtime": self.runtime}}
        template["Resources"] = self.resources
        outputs = self._outputs()
        if outputs:
            template["Outputs"] = outputs
        return SamExport(template, self.warnings)

    # --- functions -----------------------------------------------------------------

    def _function(self, spec: FunctionSpec) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "Handler": _handler(spec),
            "CodeUri": self.code_uri,
            "MemorySize": spec.memory_mb,
            "Timeout": max(1, math.ceil(spec.timeout_s)),
        }
        if spec.reserved_concurrency is not None:
            properties["ReservedConcurrentExecutions"] = spec.reserved_concurrency
        if spec.environment:
            properties["Environment"] = {"Variables": dict(spec.environment)}
        if spec.dead_letter_queue is not None:
            properties["DeadLetterQueue"] = {
                "Type": "SQS",
                "TargetArn": _arn(self._queue(spec.dead_letter_queue)),
            }
        properties["EventInvokeConfig"] = {"MaximumRetryAttempts": spec.retries}
        return {"Type": "AWS::Serverless::Function", "Properties": properties}

    def _events(self, function: str) -> dict[str, Any]:
        properties = self.resources[self.function_ids[function]]["Properties"]
        events: dict[str, Any] = properties.setdefault("Events", {})
        return events

    def _add_events(self) -> None:
        for route in self.app.routes:
            self._add_route(route)
        for number, schedule in enumerate(self.app.schedules, start=1):
            events = self._events(schedule.function)
            events[_unique_key(events, f"Schedule{number}")] = {
                "Type": "Schedule",
                "Properties": {"Schedule": schedule.expression, "Enabled": True},
            }
        for trigger in self.app.object_triggers:
            rules = [
                {"Name": name, "Value": value}
                for name, value in (("prefix", trigger.prefix), ("suffix", trigger.suffix))
                if value
            ]
            event: dict[str, Any] = {
                "Bucket": _ref(self._bucket(trigger.bucket)),
                "Events": "s3:ObjectCreated:*",
            }
            if rules:
                event["Filter"] = {"S3Key": {"Rules": rules}}
            events = self._events(trigger.function)
            name = _unique_key(events, logical_id(trigger.bucket, "ObjectCreated"))
            events[name] = {"Type": "S3", "Properties": event}
        for queue_trigger in self.app.queue_triggers:
            queue_id = self._queue(queue_trigger.queue)
            spec = self.app.get(queue_trigger.function)
            visibility = self._visibility(queue_trigger.queue)
            if visibility < spec.timeout_s:
                self.warnings.append(
                    f"queue {queue_trigger.queue!r}: its visibility timeout ({visibility:g} s) "
                    f"is shorter than function {spec.name!r}'s timeout ({spec.timeout_s:g} s); "
                    "AWS refuses such an SQS trigger (set [functions.queues."
                    f"{queue_trigger.queue}] visibility_timeout_s ≥ the timeout)"
                )
            events = self._events(queue_trigger.function)
            events[_unique_key(events, logical_id(queue_trigger.queue, "Messages"))] = {
                "Type": "SQS",
                "Properties": {
                    "Queue": _arn(queue_id),
                    "BatchSize": queue_trigger.batch_size,
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                },
            }

    def _add_route(self, route: RouteSpec) -> None:
        self._http_api()
        for method in route.methods:
            event: dict[str, Any] = {"ApiId": _ref(HTTP_API_ID)}
            if route.path != DEFAULT_ROUTE:  # without path and method: the $default route
                event["Path"] = route.path
                event["Method"] = method
            event["PayloadFormatVersion"] = "2.0"
            if route.auth == "jwt":
                event["Auth"] = {"Authorizer": self._jwt_authorizer()}
            elif route.auth == "api_key":
                event["Auth"] = {"Authorizer": self._api_key_authorizer()}
            if route.throttle_rate is not None:
                burst = route.throttle_burst or max(1, math.ceil(route.throttle_rate))
                event["RouteSettings"] = {
                    "ThrottlingRateLimit": route.throttle_rate,
                    "ThrottlingBurstLimit": burst,
                }
            events = self._events(route.function)
            if route.path == DEFAULT_ROUTE:
                base = "Default"
            else:
                base = method.title() + (logical_id(route.path.replace("+", "")) or "Root")
            events[_unique_key(events, base)] = {"Type": "HttpApi", "Properties": event}

    # --- the HTTP API and its authorizers ------------------------------------------

    def _http_api(self) -> dict[str, Any]:
        if HTTP_API_ID in self.resources:
            properties: dict[str, Any] = self.resources[HTTP_API_ID]["Properties"]
            return properties
        properties = {}
        settings = self.gateway
        if settings.cors_origins:
            properties["CorsConfiguration"] = {
                "AllowOrigins": list(settings.cors_origins),
                "AllowMethods": list(settings.cors_methods),
                "AllowHeaders": list(settings.cors_headers),
                "MaxAge": 600,
            }
        if settings.throttle_rate is not None:
            burst = settings.throttle_burst or max(1, math.ceil(settings.throttle_rate))
            properties["DefaultRouteSettings"] = {
                "ThrottlingRateLimit": settings.throttle_rate,
                "ThrottlingBurstLimit": burst,
            }
        self.resources[HTTP_API_ID] = {"Type": "AWS::Serverless::HttpApi", "Properties": properties}
        return properties

    def _authorizers(self) -> dict[str, Any]:
        auth = self._http_api().setdefault("Auth", {})
        authorizers: dict[str, Any] = auth.setdefault("Authorizers", {})
        return authorizers

    def _jwt_authorizer(self) -> str:
        authorizers = self._authorizers()
        if JWT_AUTHORIZER not in authorizers:
            settings = self.gateway
            if not settings.jwt_issuer:
                raise ConfigError(
                    "a route has auth='jwt': set [functions.gateway] jwt_issuer (the token "
                    "issuer AWS will trust) before exporting"
                )
            if not settings.jwt_audience:
                raise ConfigError(
                    "a route has auth='jwt': AWS's JWT authorizer needs an audience; set "
                    "[functions.gateway] jwt_audience"
                )
            authorizers[JWT_AUTHORIZER] = {
                "IdentitySource": "$request.header.Authorization",
                "JwtConfiguration": {
                    "issuer": settings.jwt_issuer,
                    "audience": list(settings.jwt_audience),
                },
            }
            if settings.jwks_file:
                self.warnings.append(
                    f"JWT: AWS reads the signing keys from {settings.jwt_issuer}"
                    "/.well-known/openid-configuration, not from jwks_file"
                )
        return JWT_AUTHORIZER

    def _api_key_authorizer(self) -> str:
        authorizers = self._authorizers()
        if API_KEY_AUTHORIZER not in authorizers:
            authorizers[API_KEY_AUTHORIZER] = {
                "FunctionArn": _arn(API_KEY_FUNCTION),
                "AuthorizerPayloadFormatVersion": "2.0",
                "EnableSimpleResponses": True,
                "EnableFunctionDefaultPermissions": True,
                "Identity": {"ReauthorizeEvery": 0},  # a missing key reaches it too: 403
            }
            self.resources[API_KEY_FUNCTION] = {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Handler": "index.handler",
                    "InlineCode": API_KEY_AUTHORIZER_CODE,
                    "MemorySize": 128,
                    "Timeout": 3,
                    "Environment": {
                        "Variables": {"API_KEYS": {"Fn::Join": [",", _ref(API_KEYS_PARAMETER)]}}
                    },
                },
            }
        return API_KEY_AUTHORIZER

    # --- buckets and queues --------------------------------------------------------

    def _bucket(self, name: str) -> str:
        if name not in self.bucket_ids:
            logical = self._unique(logical_id(name, "Bucket"))
            self.bucket_ids[name] = logical
            self.resources[logical] = {"Type": "AWS::S3::Bucket"}
        return self.bucket_ids[name]

    def _queue(self, name: str) -> str:
        if name in self.queue_ids:
            return self.queue_ids[name]
        logical = self._unique(logical_id(name, "Queue"))
        self.queue_ids[name] = logical
        resource: dict[str, Any] = {"Type": "AWS::SQS::Queue"}
        self.resources[logical] = resource
        settings = self.queue_settings.get(name)
        properties: dict[str, Any] = {"VisibilityTimeout": math.ceil(self._visibility(name))}
        dead_letter = getattr(settings, "dead_letter", None)
        if settings is not None and dead_letter is not None:
            properties["RedrivePolicy"] = {
                "deadLetterTargetArn": _arn(self._queue(dead_letter)),
                "maxReceiveCount": settings.max_receive_count,
            }
        resource["Properties"] = properties
        return logical

    def _visibility(self, queue: str) -> float:
        settings = self.queue_settings.get(queue)
        value = getattr(settings, "visibility_timeout_s", None)
        return DEFAULT_VISIBILITY_TIMEOUT_S if value is None else float(value)

    # --- the rest ------------------------------------------------------------------

    def _parameters(self) -> dict[str, Any]:
        if API_KEY_FUNCTION not in self.resources:
            return {}
        return {
            API_KEYS_PARAMETER: {
                "Type": "CommaDelimitedList",
                "NoEcho": True,
                "Description": "API keys accepted in x-api-key by the api_key routes",
            }
        }

    def _outputs(self) -> dict[str, Any]:
        outputs: dict[str, Any] = {}
        if HTTP_API_ID in self.resources:
            outputs["HttpApiUrl"] = {
                "Description": "The HTTP API's endpoint",
                "Value": {
                    "Fn::Sub": f"https://${{{HTTP_API_ID}}}.execute-api.${{AWS::Region}}"
                    ".${AWS::URLSuffix}/"
                },
            }
        for name, logical in self.queue_ids.items():
            outputs[logical_id(logical, "Url")] = {
                "Description": f"The URL of queue {name}",
                "Value": _ref(logical),
            }
        return outputs

    def _unique(self, wanted: str) -> str:
        taken = set(self.resources) | set(self.function_ids.values()) | {HTTP_API_ID}
        taken |= set(self.queue_ids.values()) | set(self.bucket_ids.values())
        return _unique_key(taken, wanted)


def _unique_key(taken: Any, wanted: str) -> str:
    candidate = wanted
    number = 2
    while candidate in taken:
        candidate = f"{wanted}{number}"
        number += 1
    return candidate


def _handler(spec: FunctionSpec) -> str:
    """``module.function`` as Lambda's Python runtime names a handler."""
    module, _, qualname = spec.handler_ref.partition(":")
    if module == "__main__" or not qualname or "." in qualname or "<" in qualname:
        raise UserError(
            f"function {spec.name!r}: its handler {spec.handler_ref!r} is not a module-level "
            "function of an importable module, so Lambda could not find it; define it at "
            "the top level of the app's module"
        )
    return f"{module}.{qualname}"
