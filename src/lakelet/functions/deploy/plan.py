"""What a SAM export would create, read back from the template itself, so the plan
and the template cannot disagree (``lakelet deploy --plan``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from lakelet.functions.deploy.sam import SamExport


@dataclass(frozen=True)
class PlanItem:
    """One resource (or one event of a function) the template declares."""

    resource_type: str
    logical_id: str
    details: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def plan(export: SamExport) -> list[PlanItem]:
    """Resources in template order, each function followed by its events."""
    template = export.template
    items = [
        PlanItem("Parameter", name, f"{p['Type']}: {p.get('Description', '')}".rstrip(": "))
        for name, p in template.get("Parameters", {}).items()
    ]
    for logical, resource in template["Resources"].items():
        kind = resource["Type"]
        properties = resource.get("Properties", {})
        items.append(PlanItem(kind, logical, _details(kind, properties)))
        for event_name, event in properties.get("Events", {}).items():
            items.append(
                PlanItem(
                    f"{event['Type']} event",
                    f"{logical}.{event_name}",
                    _event_details(event["Type"], event["Properties"]),
                )
            )
    return items


def _details(kind: str, p: Mapping[str, Any]) -> str:
    if kind == "AWS::Serverless::Function":
        parts = [
            f"handler {p['Handler']}",
            f"{p.get('MemorySize', 128)} MB",
            f"timeout {p.get('Timeout', 3)} s",
        ]
        if "ReservedConcurrentExecutions" in p:
            parts.append(f"reserved concurrency {p['ReservedConcurrentExecutions']}")
        retries = p.get("EventInvokeConfig", {}).get("MaximumRetryAttempts")
        if retries is not None:
            parts.append(f"async retries {retries}")
        if "DeadLetterQueue" in p:
            parts.append(f"dead letters → {_name(p['DeadLetterQueue']['TargetArn'])}")
        if "Environment" in p:
            parts.append(f"env {', '.join(sorted(p['Environment']['Variables']))}")
        if "InlineCode" in p:
            parts.append("inline code")
        return ", ".join(parts)
    if kind == "AWS::Serverless::HttpApi":
        parts = []
        for name, authorizer in p.get("Auth", {}).get("Authorizers", {}).items():
            jwt = authorizer.get("JwtConfiguration")
            if jwt is not None:
                audience = ", ".join(jwt["audience"])
                parts.append(f"{name}: JWT from {jwt['issuer']} for {audience}")
            else:
                parts.append(f"{name}: Lambda {_name(authorizer['FunctionArn'])}")
        cors = p.get("CorsConfiguration")
        if cors:
            parts.append(f"CORS {', '.join(cors['AllowOrigins'])}")
        limits = p.get("DefaultRouteSettings")
        if limits:
            parts.append(_throttle(limits))
        return "; ".join(parts) or "payload format 2.0"
    if kind == "AWS::SQS::Queue":
        parts = [f"visibility {p.get('VisibilityTimeout', 30)} s"]
        redrive = p.get("RedrivePolicy")
        if redrive:
            target = _name(redrive["deadLetterTargetArn"])
            parts.append(f"after {redrive['maxReceiveCount']} receives → {target}")
        return ", ".join(parts)
    if kind == "AWS::S3::Bucket":
        return "bucket of the S3 events (named by CloudFormation)"
    return ""


def _event_details(kind: str, p: Mapping[str, Any]) -> str:
    if kind == "HttpApi":
        route = f"{p['Method']} {p['Path']}" if "Path" in p else "$default"
        parts = [route, f"auth {p.get('Auth', {}).get('Authorizer', 'none')}"]
        if "RouteSettings" in p:
            parts.append(_throttle(p["RouteSettings"]))
        return ", ".join(parts)
    if kind == "Schedule":
        return str(p["Schedule"])
    if kind == "S3":
        rules = p.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        filters = " ".join(f"{r['Name']}={r['Value']}" for r in rules)
        return f"{_name(p['Bucket'])} {p['Events']} {filters}".rstrip()
    if kind == "SQS":
        return f"{_name(p['Queue'])}, batches of {p['BatchSize']}, partial batch failures"
    return ""


def _throttle(limits: Mapping[str, Any]) -> str:
    rate = limits["ThrottlingRateLimit"]
    return f"throttle {rate:g}/s burst {limits['ThrottlingBurstLimit']}"


def _name(value: Any) -> str:
    """The logical id an intrinsic points at."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return str(value)
