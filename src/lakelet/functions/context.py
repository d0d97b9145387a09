"""The ``context`` a handler receives: the same attributes AWS's Python runtime gives.

It mirrors ``awslambdaric``'s ``LambdaContext`` exactly, types included, so code that
runs here runs on Lambda unchanged: ``memory_limit_in_mb`` is a *string* there (read
from ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``), ``identity`` is an object whose two Cognito
fields are ``None`` outside Cognito, ``client_context`` is ``None`` unless a mobile
client sent one, and the remaining time is measured against a wall-clock deadline.
A context is a few strings and an int, so building one per invocation in a forked
worker costs nothing, and it pickles.
"""

from __future__ import annotations

import secrets
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lakelet.functions.model import FunctionSpec

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"  # AWS's documentation account
LATEST = "$LATEST"


@dataclass
class CognitoIdentity:
    """``context.identity``: set only when Amazon Cognito authorised the call."""

    cognito_identity_id: str | None = None
    cognito_identity_pool_id: str | None = None


@dataclass
class Client:
    """``context.client_context.client``: the calling mobile app, as AWS names it."""

    installation_id: str | None = None
    app_title: str | None = None
    app_version_name: str | None = None
    app_version_code: str | None = None
    app_package_name: str | None = None


@dataclass
class ClientContext:
    """``context.client_context``: what a mobile SDK client sent with the call."""

    custom: Any = None
    env: Any = None
    client: Client | None = None


@dataclass
class LambdaContext:
    """The invocation's context; attribute for attribute ``awslambdaric``'s."""

    aws_request_id: str
    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: str
    log_group_name: str
    log_stream_name: str
    identity: CognitoIdentity = field(default_factory=CognitoIdentity)
    client_context: ClientContext | None = None
    tenant_id: str | None = None
    _epoch_deadline_time_in_ms: int = 0

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until the function times out, never below zero."""
        remaining = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg: object) -> None:
        """Write to the function's log (its standard output, captured per invocation)."""
        sys.stdout.write(str(msg))


def make_context(
    spec: FunctionSpec,
    request_id: str,
    *,
    deadline_epoch_ms: int,
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT_ID,
    log_stream: str | None = None,
    client_context: Mapping[str, Any] | None = None,
) -> LambdaContext:
    """The context for one invocation of ``spec``, timing out at ``deadline_epoch_ms``.

    ``log_stream`` belongs to the worker (one per execution environment, as on Lambda);
    a fresh one is made when it is not given.
    """
    return LambdaContext(
        aws_request_id=request_id,
        function_name=spec.name,
        function_version=LATEST,
        invoked_function_arn=function_arn(spec.name, region=region, account_id=account_id),
        memory_limit_in_mb=str(spec.memory_mb),
        log_group_name=log_group_name(spec.name),
        log_stream_name=log_stream or new_log_stream_name(),
        client_context=_client_context(client_context),
        _epoch_deadline_time_in_ms=deadline_epoch_ms,
    )


def function_arn(
    name: str, *, region: str = DEFAULT_REGION, account_id: str = DEFAULT_ACCOUNT_ID
) -> str:
    return f"arn:aws:lambda:{region}:{account_id}:function:{name}"


def log_group_name(function: str) -> str:
    return f"/aws/lambda/{function}"


def new_log_stream_name(now: datetime | None = None) -> str:
    """``YYYY/MM/DD/[$LATEST]`` + 32 hex digits, as Lambda names an environment's stream."""
    day = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y/%m/%d")
    return f"{day}/[{LATEST}]{secrets.token_hex(16)}"


def new_request_id() -> str:
    """A request id shaped like Lambda's (a UUID)."""
    return str(uuid.uuid4())


def runtime_environment(
    spec: FunctionSpec, *, region: str = DEFAULT_REGION, log_stream: str
) -> dict[str, str]:
    """The reserved variables Lambda sets in a function's environment.

    ``awslambdaric`` reads its context from these, and code often reads ``AWS_REGION``
    or ``AWS_LAMBDA_FUNCTION_NAME``; the function's own ``environment`` goes on top.
    """
    return {
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": LATEST,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": log_group_name(spec.name),
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
        "_HANDLER": spec.handler_ref.replace(":", "."),
    }


def _client_context(raw: Mapping[str, Any] | None) -> ClientContext | None:
    if raw is None:
        return None
    client = raw.get("client")
    return ClientContext(
        custom=raw.get("custom"),
        env=raw.get("env"),
        client=None
        if client is None
        else Client(**{k: client.get(k) for k in Client.__dataclass_fields__}),
    )
