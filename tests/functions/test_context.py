"""The context object: awslambdaric's attributes and types, a deadline, and pickling."""

from __future__ import annotations

import io
import json
import pickle
import re
import time
import uuid
from contextlib import redirect_stdout
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from lakelet.functions import App
from lakelet.functions.context import (
    LambdaContext,
    make_context,
    new_log_stream_name,
    runtime_environment,
)
from lakelet.functions.model import FunctionSpec

app = App("vending")


@app.function(memory_mb=256, timeout_s=5)
def purchase(event: Any, context: Any) -> Any:
    return {"ok": True}


SPEC: FunctionSpec = app.get("purchase")
STREAM_RE = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")


def context_for(deadline_in_ms: int = 5000, **kwargs: Any) -> LambdaContext:
    deadline = int(time.time() * 1000) + deadline_in_ms
    return make_context(SPEC, "req-1", deadline_epoch_ms=deadline, **kwargs)


def test_attributes_are_those_of_awslambdaric() -> None:
    context = context_for(region="eu-west-1", account_id="111122223333")
    assert context.aws_request_id == "req-1"
    assert context.function_name == "purchase"
    assert context.function_version == "$LATEST"
    assert context.invoked_function_arn == "arn:aws:lambda:eu-west-1:111122223333:function:purchase"
    # awslambdaric reads AWS_LAMBDA_FUNCTION_MEMORY_SIZE: a string, not an int
    assert context.memory_limit_in_mb == "256"
    assert context.log_group_name == "/aws/lambda/purchase"
    assert STREAM_RE.match(context.log_stream_name)
    assert context.log_stream_name.startswith(datetime.now(UTC).strftime("%Y/%m/%d/"))
    assert context.identity.cognito_identity_id is None
    assert context.identity.cognito_identity_pool_id is None
    assert context.client_context is None
    assert context.tenant_id is None


def test_defaults_are_awss_documentation_account_and_region() -> None:
    assert context_for().invoked_function_arn == (
        "arn:aws:lambda:us-east-1:123456789012:function:purchase"
    )


def test_a_workers_log_stream_is_kept() -> None:
    stream = new_log_stream_name(datetime(2026, 11, 27, tzinfo=UTC))
    assert STREAM_RE.match(stream) and stream.startswith("2026/11/27/[$LATEST]")
    assert context_for(log_stream=stream).log_stream_name == stream
    assert new_log_stream_name() != new_log_stream_name()


def test_remaining_time_counts_down_to_zero() -> None:
    context = context_for(2000)
    first = context.get_remaining_time_in_millis()
    assert 1500 < first <= 2000
    time.sleep(0.05)
    assert context.get_remaining_time_in_millis() <= first - 40
    assert context_for(-10).get_remaining_time_in_millis() == 0


def test_a_client_context_is_exposed_like_the_mobile_sdk_sends_it() -> None:
    raw = {"client": {"installation_id": "i-1", "app_title": "Vending"}, "custom": {"a": 1}}
    context = context_for(client_context=raw)
    assert context.client_context is not None
    assert context.client_context.custom == {"a": 1}
    assert context.client_context.env is None
    assert context.client_context.client is not None
    assert context.client_context.client.app_title == "Vending"
    assert context.client_context.client.app_package_name is None


def test_it_pickles_with_its_deadline() -> None:
    context = context_for(3000)
    copy = pickle.loads(pickle.dumps(context))
    assert copy == context
    assert 2000 < copy.get_remaining_time_in_millis() <= 3000


def test_powertools_logger_reads_it_as_a_lambda_context() -> None:
    out = io.StringIO()
    logger = Logger(service=f"vending-{uuid.uuid4().hex}", stream=out)

    @logger.inject_lambda_context
    def handler(event: Any, context: Any) -> str:
        logger.info("sold")
        return "done"

    assert handler({}, context_for()) == "done"
    line = json.loads(out.getvalue().splitlines()[-1])
    assert line["function_name"] == "purchase"
    assert line["function_memory_size"] == "256"
    assert line["function_arn"].endswith(":function:purchase")
    assert line["function_request_id"] == "req-1"


def test_log_writes_to_stdout() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        context_for().log("hello")
    assert out.getvalue() == "hello"


def test_the_runtime_environment_names_the_function_like_lambda() -> None:
    env = runtime_environment(SPEC, region="eu-west-1", log_stream="s")
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "purchase"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/purchase"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == "s"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["_HANDLER"].endswith(".purchase")
