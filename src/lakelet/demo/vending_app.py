"""The vending machines' front: ``POST /purchase`` → payment check → sale in the lake →
notification. ``lakelet demo`` copies this file into its project as ``app.py``
(``[functions] app = "app:app"``); copy it into your own project the same way.

Every handler is a plain ``def handler(event, context)`` that would run on Lambda behind
an HTTP API: only the five functions at the end (:func:`put_object`, :func:`get_object`,
:func:`object_exists`, :func:`delete_object`, :func:`send_message`) touch Lakelet (the
lake and the project's queues); on AWS they are boto3's ``s3.put_object``,
``get_object``, ``head_object``, ``delete_object`` and ``sqs.send_message``.

Environment (set per function under ``[functions.settings.NAME] environment``):

``PAYMENT_GATEWAY_URL``
    the payment gateway's authorize endpoint (any HTTP service that answers like
    :func:`authorize_payment`). Unset: the app's own fake gateway, ``POST
    /payments/authorize``, reached through ``LAKELET_GATEWAY_URL``, the gateway's base
    URL that ``lakelet up`` gives its functions.
``NOTIFY_WEBHOOK_URL``
    where :func:`notify` POSTs each notification (JSON). Unset: the outbox is the only
    delivery (someone reads it from the lake).
``LAKELET_PROJECT_ROOT``
    the project folder; unset, the nearest ``lakelet.toml`` above the working directory
    (the runtime starts its workers in the project folder).

The lake layout: sales at ``raw/purchases/date=YYYY-MM-DD/<purchase_id>.jsonl`` (one
JSON object each, times in UTC; the crawler ``purchases`` makes them ``raw.purchases``),
and the notification outbox at ``raw/notifications/date=YYYY-MM-DD/<purchase_id>.jsonl``,
one record per notification with its final status (table ``raw.notifications``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lakelet

if TYPE_CHECKING:
    from lakelet.functions.queues import QueueStore
    from lakelet.project import Project

app = lakelet.App("vending")

RAW_BUCKET = "raw"
PURCHASES_PREFIX = "purchases/"
OUTBOX_PREFIX = "notifications/"
NOTIFICATIONS_QUEUE = "notifications"
AUTHORIZE_PATH = "/payments/authorize"
CURRENCY = "EUR"
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1000.00")  # a sanity bound for input; the gateway's limit is lower
FAKE_GATEWAY_LIMIT = Decimal("50.00")  # the fake gateway declines anything above
PAYMENT_TIMEOUT_S = 5.0
WEBHOOK_TIMEOUT_S = 5.0
ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # ids become object keys: keep them plain
MAX_PRODUCT_CHARS = 128


# The app's own exceptions never leave a handler (each becomes an HTTP answer or a batch
# item failure), and plain Exception keeps the module free of Lakelet for Lambda.


class Invalid(Exception):
    """A request field is missing or wrong: a 400 naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class PaymentUnavailable(Exception):
    """The payment gateway did not answer usefully; ``status`` is ours to return."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class NoAnswer(Exception):
    """Nothing answered an HTTP request (refused, unreachable, timed out)."""


@dataclass(frozen=True)
class PurchaseRequest:
    purchase_id: str
    machine_id: str
    product: str
    amount: Decimal
    payment_token: str


# --- POST /purchase -------------------------------------------------------------------


@app.route("/purchase", methods=["POST"], timeout_s=10.0, memory_mb=256)
def purchase(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Check the payment, record the sale in the lake, queue the buyer's notification.

    201 with the sale; 400 naming a bad field; 402 with the gateway's reason when the
    payment is declined (nothing is written); 429/502/503 when the gateway is busy, down
    or not configured. A ``purchase_id`` seen before (today or yesterday, UTC) answers
    201 with the sale already recorded and changes nothing (header
    ``idempotent-replayed: true``), or 409 if the purchase differs. (Two copies sent at
    the same instant may both reach the gateway, which dedupes by the idempotency key;
    they write the same object, and the notification is sent at least once.)
    """
    try:
        request = parse_purchase(event.get("body"), bool(event.get("isBase64Encoded")))
    except Invalid as exc:
        return respond(400, {"message": str(exc), "field": exc.field})
    sold_at = request_time(event)
    project = open_project()
    existing = find_sale(project, request.purchase_id, sold_at)
    if existing is not None:
        if not same_purchase(existing, request):
            message = f"purchase_id {request.purchase_id!r} was used for a different purchase"
            return respond(409, {"message": message, "field": "purchase_id"})
        return respond(201, existing, {"idempotent-replayed": "true"})
    try:
        payment = call_payment_gateway(request, remaining_s(context))
    except PaymentUnavailable as exc:
        log = {"event": "payment_unavailable", "purchase_id": request.purchase_id}
        print(json.dumps({**log, "error": str(exc)}))
        headers = {"retry-after": "1"} if exc.status == 429 else {}
        return respond(exc.status, {"message": str(exc)}, headers)
    if not payment.get("approved"):
        reason = str(payment.get("reason") or "declined")
        return respond(
            402,
            {
                "message": f"payment declined: {reason}",
                "reason": reason,
                "purchase_id": request.purchase_id,
            },
        )
    sale = sale_record(request, sold_at, str(payment.get("authorization_id", "")), context)
    key = sale_key(request.purchase_id, sold_at)
    put_object(project, key, (json.dumps(sale, sort_keys=True) + "\n").encode("utf-8"))
    try:
        send_message(project, json.dumps(notification_for(sale, key)), request.purchase_id)
    except Exception:
        # No sale without its notification: undo, so the client's retry starts afresh.
        delete_object(project, key)
        raise
    return respond(201, sale)


def parse_purchase(body: Any, base64_encoded: bool = False) -> PurchaseRequest:
    """The purchase in a request body, or :class:`Invalid` naming the first bad field."""
    if base64_encoded or not isinstance(body, str) or not body.strip():
        raise Invalid("body", "send a JSON object with content-type application/json")
    try:
        data = json.loads(body, parse_float=Decimal)
    except ValueError as exc:
        raise Invalid("body", f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise Invalid("body", "expected a JSON object")
    purchase_id = data.get("purchase_id")
    if purchase_id is None:
        purchase_id = uuid.uuid4().hex
    return PurchaseRequest(
        purchase_id=_identifier("purchase_id", purchase_id),
        machine_id=_identifier("machine_id", data.get("machine_id")),
        product=_product(data.get("product")),
        amount=parse_amount(data.get("amount")),
        payment_token=_text(data.get("payment_token"), "payment_token", 256),
    )


def parse_amount(value: Any) -> Decimal:
    """A positive amount with at most two decimals, from ``"2.50"`` or ``2.5``."""
    if isinstance(value, bool) or value is None:
        raise Invalid("amount", 'required: a decimal amount like "2.50"')
    try:
        amount = Decimal(str(value).strip()) if isinstance(value, str | int | Decimal) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise Invalid("amount", f'expected a decimal amount like "2.50", got {value!r}')
    if amount <= 0 or amount > MAX_AMOUNT:
        raise Invalid("amount", f"must be over 0 and at most {MAX_AMOUNT}, got {amount}")
    if amount != amount.quantize(CENT):
        raise Invalid("amount", f"at most two decimals (cents), got {amount}")
    return amount.quantize(CENT)


def _identifier(field: str, value: Any) -> str:
    text = _text(value, field, 64)
    if not ID_RE.match(text):
        raise Invalid(field, f"use 1 to 64 letters, digits, '-' and '_', got {text!r}")
    return text


def _product(value: Any) -> str:
    return _text(value, "product", MAX_PRODUCT_CHARS)


def _text(value: Any, field: str, limit: int) -> str:
    if value is None:
        raise Invalid(field, "required")
    if not isinstance(value, str) or not value.strip():
        raise Invalid(field, f"expected a non-empty string, got {value!r}")
    if len(value) > limit:
        raise Invalid(field, f"at most {limit} characters")
    return value.strip()


def sale_record(
    request: PurchaseRequest, sold_at: datetime, authorization_id: str, context: Any
) -> dict[str, Any]:
    """The sale as stored: money as an exact string and in cents; never the token."""
    return {
        "purchase_id": request.purchase_id,
        "machine_id": request.machine_id,
        "product": request.product,
        "amount": str(request.amount),
        "amount_cents": int(request.amount * 100),
        "currency": CURRENCY,
        "authorization_id": authorization_id,
        "sold_at": sold_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{sold_at.microsecond // 1000:03d}",
        "request_id": str(getattr(context, "aws_request_id", "")),
    }


def notification_for(sale: dict[str, Any], key: str) -> dict[str, Any]:
    return {
        "type": "purchase.completed",
        "purchase_id": sale["purchase_id"],
        "machine_id": sale["machine_id"],
        "product": sale["product"],
        "amount": sale["amount"],
        "currency": sale["currency"],
        "sold_at": sale["sold_at"],
        "sale": f"{RAW_BUCKET}/{key}",
    }


def sale_key(purchase_id: str, sold_at: datetime) -> str:
    return f"{PURCHASES_PREFIX}date={sold_at.date().isoformat()}/{purchase_id}.jsonl"


def find_sale(project: Project, purchase_id: str, sold_at: datetime) -> dict[str, Any] | None:
    """A sale already recorded under ``purchase_id`` today or yesterday (so a client's
    retry just after midnight is still recognised)."""
    for day in (sold_at, sold_at - timedelta(days=1)):
        key = sale_key(purchase_id, day)
        if object_exists(project, key):
            found: dict[str, Any] = json.loads(get_object(project, key))
            return found
    return None


def same_purchase(sale: dict[str, Any], request: PurchaseRequest) -> bool:
    return (sale.get("machine_id"), sale.get("product"), sale.get("amount")) == (
        request.machine_id,
        request.product,
        str(request.amount),
    )


def request_time(event: dict[str, Any]) -> datetime:
    """When API Gateway received the request (``requestContext.timeEpoch``), in UTC."""
    epoch_ms = (event.get("requestContext") or {}).get("timeEpoch")
    if isinstance(epoch_ms, int) and not isinstance(epoch_ms, bool):
        return datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return datetime.now(UTC)


# --- the payment gateway --------------------------------------------------------------


def call_payment_gateway(request: PurchaseRequest, budget_s: float) -> dict[str, Any]:
    """``{"approved": true, "authorization_id": …}`` or ``{"approved": false, "reason":
    …}`` from the configured gateway; the purchase id is the idempotency key."""
    url = os.environ.get("PAYMENT_GATEWAY_URL")
    if not url:
        base = os.environ.get("LAKELET_GATEWAY_URL")
        if not base:
            raise PaymentUnavailable(
                "no payment gateway configured: set PAYMENT_GATEWAY_URL, or run under "
                "lakelet up (which sets LAKELET_GATEWAY_URL for the fake gateway)",
                503,
            )
        url = base.rstrip("/") + AUTHORIZE_PATH
    payload = {
        "token": request.payment_token,
        "amount": str(request.amount),
        "currency": CURRENCY,
        "reference": request.purchase_id,
        "merchant": request.machine_id,
    }
    timeout = max(0.5, min(PAYMENT_TIMEOUT_S, budget_s - 1.0))
    try:
        status, answer = post_json(url, payload, timeout, {"idempotency-key": request.purchase_id})
    except NoAnswer as exc:
        raise PaymentUnavailable(f"payment gateway: {exc}") from None
    if status == 200 and answer.get("approved") is True:
        return answer
    if status == 402:
        return {"approved": False, "reason": answer.get("reason", "declined")}
    if status == 429:
        raise PaymentUnavailable("payment gateway is busy; retry", 429)
    raise PaymentUnavailable(f"payment gateway answered HTTP {status}")


def post_json(
    url: str, payload: dict[str, Any], timeout: float, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """POST JSON; the status and the JSON answer (``{}`` when it is not an object).
    :class:`NoAnswer` when nothing answers."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        headers={"content-type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise NoAnswer(f"no answer from {url}: {exc}") from None
    try:
        answer = json.loads(body) if body else {}
    except ValueError:
        answer = {}
    return status, answer if isinstance(answer, dict) else {}


@app.route(AUTHORIZE_PATH, methods=["POST"], name="authorize_payment")
def authorize_payment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A fake payment gateway with fixed rules, for the demo and tests.

    A token must start with ``tok_``; ``tok_decline…`` is declined (``card_declined``),
    ``tok_insufficient…`` too (``insufficient_funds``), and so is any amount over
    50.00 (``amount_over_limit``). Approvals carry an authorization id derived from the
    request, so a retried authorization gets the same id.
    """
    try:
        data = json.loads(event.get("body") or "")
        token = data["token"]
        amount = Decimal(str(data["amount"]))
        reference = str(data.get("reference", ""))
        if not isinstance(token, str) or not amount.is_finite():
            raise ValueError
    except (ValueError, KeyError, TypeError, InvalidOperation):
        return respond(400, {"message": "expected JSON with token and amount"})
    reason = decline_reason(token, amount)
    if reason is not None:
        return respond(402, {"approved": False, "reason": reason})
    digest = hashlib.sha256(f"{token}|{amount}|{reference}".encode()).hexdigest()
    return respond(200, {"approved": True, "authorization_id": f"auth_{digest[:20]}"})


def decline_reason(token: str, amount: Decimal) -> str | None:
    if not token.startswith("tok_"):
        return "invalid_token"
    if token.startswith("tok_decline"):
        return "card_declined"
    if token.startswith("tok_insufficient"):
        return "insufficient_funds"
    if amount > FAKE_GATEWAY_LIMIT:
        return "amount_over_limit"
    return None


# --- notifications --------------------------------------------------------------------


@app.on_queue(NOTIFICATIONS_QUEUE, batch_size=10, timeout_s=30.0, memory_mb=256)
def notify(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Deliver each notification (to ``NOTIFY_WEBHOOK_URL`` when set) and record it in
    the outbox. Messages whose delivery failed are returned as ``batchItemFailures``:
    they come back after the queue's visibility timeout, and after its
    ``max_receive_count`` go to its dead-letter queue. A notification already delivered
    is not sent again, so redelivered messages are harmless.
    """
    webhook = os.environ.get("NOTIFY_WEBHOOK_URL") or None
    project = open_project()
    failures = []
    for record in event.get("Records", []):
        if not deliver(project, record, webhook):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def deliver(project: Project, record: dict[str, Any], webhook: str | None) -> bool:
    """One message: delivered (or already delivered) → ``True``."""
    try:
        message = json.loads(record["body"])
        purchase_id = message["purchase_id"]
        day = str(message["sold_at"])[:10]
        if not isinstance(purchase_id, str) or not ID_RE.match(purchase_id):
            raise ValueError("bad purchase_id")
        datetime.strptime(day, "%Y-%m-%d")
    except (ValueError, KeyError, TypeError) as exc:
        log = {"event": "bad_notification", "messageId": record.get("messageId")}
        print(json.dumps({**log, "error": str(exc)}))
        return False  # never succeeds: it ends in the dead-letter queue, kept for a human
    key = f"{OUTBOX_PREFIX}date={day}/{purchase_id}.jsonl"
    if already_delivered(project, key):
        return True
    status, http_status, error = "delivered", None, None
    if webhook is not None:
        try:
            http_status, _ = post_json(
                webhook, message, WEBHOOK_TIMEOUT_S, {"idempotency-key": purchase_id}
            )
            if not 200 <= http_status < 300:
                status, error = "failed", f"webhook answered HTTP {http_status}"
        except NoAnswer as exc:
            status, error = "failed", str(exc)
    attempts = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
    outbox = {
        "purchase_id": purchase_id,
        "machine_id": message.get("machine_id"),
        "type": message.get("type"),
        "channel": "webhook" if webhook else "outbox",
        "status": status,
        "attempts": attempts,
        "http_status": http_status,
        "error": error,
        "message_id": record.get("messageId"),
        "recorded_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
        "payload": json.dumps(message, sort_keys=True),
    }
    put_object(project, key, (json.dumps(outbox, sort_keys=True) + "\n").encode("utf-8"))
    return status == "delivered"


def already_delivered(project: Project, key: str) -> bool:
    if not object_exists(project, key):
        return False
    recorded: dict[str, Any] = json.loads(get_object(project, key))
    return recorded.get("status") == "delivered"


# --- the lake and the queues (boto3's s3 and sqs on AWS) ------------------------------


@functools.lru_cache(maxsize=4)
def _project_at(root: str) -> Project:
    from lakelet.project import Project

    return Project.open(Path(root))


def open_project() -> Project:
    """The project, opened once per execution environment (as Lambda code keeps its
    clients between invocations of a warm environment)."""
    return _project_at(str(Path(os.environ.get("LAKELET_PROJECT_ROOT") or ".").resolve()))


@functools.lru_cache(maxsize=4)
def _queues(root: str) -> QueueStore:
    from lakelet.functions.queues import QueueStore

    return QueueStore(_project_at(root).metadata)


def put_object(project: Project, key: str, body: bytes) -> None:
    project.store.put(RAW_BUCKET, key, body)


def get_object(project: Project, key: str) -> bytes:
    return project.store.get(RAW_BUCKET, key)


def object_exists(project: Project, key: str) -> bool:
    from lakelet.errors import ObjectNotFoundError

    try:
        project.store.head(RAW_BUCKET, key)
    except ObjectNotFoundError:
        return False
    return True


def delete_object(project: Project, key: str) -> None:
    project.store.delete(RAW_BUCKET, key)


def send_message(project: Project, body: str, purchase_id: str) -> None:
    _queues(str(project.root)).send(NOTIFICATIONS_QUEUE, body, {"purchase_id": purchase_id})


# --- HTTP API helpers -----------------------------------------------------------------


def respond(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps(body, sort_keys=True),
    }


def remaining_s(context: Any) -> float:
    get_remaining = getattr(context, "get_remaining_time_in_millis", None)
    return get_remaining() / 1000 if callable(get_remaining) else PAYMENT_TIMEOUT_S + 1.0
