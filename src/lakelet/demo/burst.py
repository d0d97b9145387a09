"""A burst of vending purchases against ``POST /purchase``, with what each should get.

The purchases derive from a seed: most are valid and approved, some are declined by the
fake payment gateway (a declining token, an amount over its limit) and some are
malformed (a missing or bad field, a body that is not JSON), so every answer can be
checked against what was planned. A ``429`` (throttled) is retried after a short wait,
as a machine would; the final answers, the retries and the latencies are counted.
Purchase ids include the seed, so the same burst sent twice is a replay that approves
nothing new.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal

from lakelet.demo.generate import PRODUCTS
from lakelet.errors import UserError

Expect = Literal["approved", "declined", "invalid"]
EXPECTED_STATUS: dict[str, int] = {"approved": 201, "declined": 402, "invalid": 400}
THROTTLED = 429
MACHINES = 20
DECLINE_SHARE = 0.08
OVER_LIMIT_SHARE = 0.04
MALFORMED_SHARE = 0.08
MAX_RETRIES = 8
REQUEST_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PlannedPurchase:
    """One request to send: its JSON body (or raw text, for a malformed one) and the
    outcome the rules promise; ``amount`` is set for valid purchases."""

    index: int
    body: str
    expect: Expect
    purchase_id: str | None
    machine_id: str | None
    amount: Decimal | None
    fault: str | None = None


@dataclass(frozen=True)
class Answer:
    """The final answer to one planned purchase (``status`` 0: nothing answered)."""

    planned: PlannedPurchase
    status: int
    throttled: int
    latency_ms: float
    body: dict[str, Any]


@dataclass(frozen=True)
class ApprovedSale:
    purchase_id: str
    machine_id: str
    amount: str


@dataclass
class BurstResult:
    """What a burst got: final statuses, retries, latencies and the approved sales."""

    count: int
    concurrency: int
    seconds: float
    statuses: dict[int, int] = field(default_factory=dict)
    throttled: int = 0
    approved: list[ApprovedSale] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def declined(self) -> int:
        return self.statuses.get(402, 0)

    @property
    def invalid(self) -> int:
        return self.statuses.get(400, 0)

    @property
    def approved_amount(self) -> Decimal:
        return sum((Decimal(s.amount) for s in self.approved), Decimal("0.00"))

    @property
    def requests_per_s(self) -> float:
        sent = sum(self.statuses.values()) + self.throttled
        return sent / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.requests_per_s, 1),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "throttled": self.throttled,
            "approved": len(self.approved),
            "approved_amount": str(self.approved_amount),
            "declined": self.declined,
            "invalid": self.invalid,
            "unexpected": self.unexpected,
            "latency_ms": self.latency_ms,
            "sales": [asdict(s) for s in self.approved],
        }


def plan_purchases(count: int, seed: int = 7) -> list[PlannedPurchase]:
    """``count`` purchases from ``seed``: the same seed plans the same requests."""
    if count < 0:
        raise UserError(f"purchases: count {count} is negative")
    rng = random.Random(seed)
    planned = []
    for index in range(count):
        purchase_id = f"p{seed}-{index:06d}"
        machine_id = f"VM-{rng.randint(1, MACHINES):03d}"
        product, _, price, _ = PRODUCTS[rng.randrange(len(PRODUCTS))]
        amount = Decimal(price)
        token = f"tok_visa_{rng.randrange(10_000):04d}"
        body: dict[str, Any] = {
            "purchase_id": purchase_id,
            "machine_id": machine_id,
            "product": product,
            "amount": str(amount),
            "payment_token": token,
        }
        roll = rng.random()
        if roll < DECLINE_SHARE:
            body["payment_token"] = f"tok_decline_{rng.randrange(10_000):04d}"
            planned.append(_planned(index, body, "declined", fault="card_declined"))
        elif roll < DECLINE_SHARE + OVER_LIMIT_SHARE:
            body["amount"] = f"{rng.randint(60, 150)}.00"
            planned.append(_planned(index, body, "declined", fault="amount_over_limit"))
        elif roll < DECLINE_SHARE + OVER_LIMIT_SHARE + MALFORMED_SHARE:
            planned.append(_malformed(index, body, rng))
        else:
            planned.append(
                PlannedPurchase(
                    index, json.dumps(body), "approved", purchase_id, machine_id, amount
                )
            )
    return planned


def _planned(
    index: int, body: dict[str, Any], expect: Expect, *, fault: str | None = None
) -> PlannedPurchase:
    return PlannedPurchase(
        index,
        json.dumps(body),
        expect,
        body.get("purchase_id"),
        body.get("machine_id"),
        None,
        fault,
    )


def _malformed(index: int, body: dict[str, Any], rng: random.Random) -> PlannedPurchase:
    kind = rng.choice(("missing machine_id", "bad amount", "negative amount", "no token", "text"))
    if kind == "text":
        text = "machine=VM-001&product=cola"
        return PlannedPurchase(index, text, "invalid", None, None, None, kind)
    broken = dict(body)
    if kind == "missing machine_id":
        del broken["machine_id"]
    elif kind == "bad amount":
        broken["amount"] = "two euros"
    elif kind == "negative amount":
        broken["amount"] = "-1.50"
    else:
        del broken["payment_token"]
    return _planned(index, broken, "invalid", fault=kind)


def drive_purchases(
    base_url: str,
    count: int = 100,
    concurrency: int = 4,
    seed: int = 7,
    *,
    max_retries: int = MAX_RETRIES,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> BurstResult:
    """Send the planned purchases to ``base_url``/purchase from ``concurrency`` threads."""
    if concurrency < 1:
        raise UserError(f"purchases: concurrency {concurrency} must be at least 1")
    planned = plan_purchases(count, seed)
    url = base_url.rstrip("/") + "/purchase"
    latencies: list[float] = []
    lock = threading.Lock()

    def send(item: PlannedPurchase) -> Answer:
        return _send(url, item, max_retries, timeout_s, latencies, lock)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="burst") as pool:
        answers = list(pool.map(send, planned))
    seconds = time.perf_counter() - started
    return summarise(answers, count, concurrency, seconds, latencies)


def summarise(
    answers: list[Answer], count: int, concurrency: int, seconds: float, latencies: list[float]
) -> BurstResult:
    result = BurstResult(count=count, concurrency=concurrency, seconds=seconds)
    result.statuses = dict(Counter(a.status for a in answers))
    result.throttled = sum(a.throttled for a in answers)
    for answer in answers:
        item = answer.planned
        if answer.status != EXPECTED_STATUS[item.expect]:
            detail = answer.body.get("message", "")
            result.unexpected.append(
                f"#{item.index} ({item.purchase_id or item.fault}): expected {item.expect} "
                f"({EXPECTED_STATUS[item.expect]}), got {answer.status or 'no answer'}"
                + (f": {detail}" if detail else "")
            )
        elif answer.status == 201 and item.purchase_id and item.machine_id:
            result.approved.append(
                ApprovedSale(item.purchase_id, item.machine_id, str(answer.body.get("amount")))
            )
    result.latency_ms = latency_summary(latencies)
    return result


def latency_summary(latencies: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max of per-request latencies (ms), nearest-rank."""
    if not latencies:
        return {}
    ordered = sorted(latencies)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 2)

    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": round(ordered[-1], 2)}


def _send(
    url: str,
    item: PlannedPurchase,
    max_retries: int,
    timeout_s: float,
    latencies: list[float],
    lock: threading.Lock,
) -> Answer:
    throttled = 0
    while True:
        started = time.perf_counter()
        status, body, retry_after = _post(url, item.body, timeout_s)
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            latencies.append(elapsed)
        if status != THROTTLED or throttled >= max_retries:
            return Answer(item, status, throttled, elapsed, body)
        throttled += 1
        time.sleep(min(1.0, retry_after or 0.02 * 2**throttled))


def _post(url: str, body: str, timeout_s: float) -> tuple[int, dict[str, Any], float | None]:
    request = urllib.request.Request(
        url, data=body.encode("utf-8"), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status, raw, headers = int(response.status), response.read(), response.headers
    except urllib.error.HTTPError as exc:
        status, raw, headers = exc.code, exc.read(), exc.headers
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        return 0, {"message": str(exc)}, None
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {}
    retry_after = headers.get("retry-after") if headers is not None else None
    wait = float(retry_after) if retry_after and retry_after.isdigit() else None
    return status, parsed if isinstance(parsed, dict) else {}, wait
