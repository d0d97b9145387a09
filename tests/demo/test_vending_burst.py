"""The purchase burst: its plan agrees with the app's rules, and the driver counts what
a real gateway answers (statuses, throttling retries, latencies)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lakelet.demo import vending_app
from lakelet.demo.burst import drive_purchases, latency_summary, plan_purchases
from lakelet.demo.vending import install_vending_app, serve_gateway
from lakelet.errors import UserError
from lakelet.functions.direct import DirectInvoker
from lakelet.functions.loader import load_app
from lakelet.project import Project
from lakelet.storage.base import iter_objects


def test_the_plan_is_reproducible_and_mixed() -> None:
    plan = plan_purchases(300, seed=11)
    assert plan == plan_purchases(300, seed=11)
    assert [p.body for p in plan] != [p.body for p in plan_purchases(300, seed=12)]
    kinds = Counter(p.expect for p in plan)
    assert kinds["approved"] > 200
    assert kinds["declined"] > 10 and kinds["invalid"] > 10
    ids = [p.purchase_id for p in plan if p.purchase_id]
    assert len(ids) == len(set(ids))
    assert plan_purchases(0) == []
    with pytest.raises(UserError):
        plan_purchases(-1)


def test_every_planned_outcome_follows_the_apps_rules() -> None:
    """Each planned request, checked against the app's own validation and the fake
    gateway's rules: what the plan promises is what the app must answer."""
    for item in plan_purchases(400, seed=3):
        try:
            request = vending_app.parse_purchase(item.body)
        except vending_app.Invalid:
            assert item.expect == "invalid", item
            continue
        reason = vending_app.decline_reason(request.payment_token, request.amount)
        if item.expect == "approved":
            assert reason is None, item
            assert request.amount == item.amount
            assert (request.purchase_id, request.machine_id) == (item.purchase_id, item.machine_id)
        else:
            assert item.expect == "declined" and reason == item.fault, item


def test_latency_summary_is_nearest_rank() -> None:
    latencies = [float(n) for n in range(100, 0, -1)]  # 1..100 ms, unordered
    assert latency_summary(latencies) == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert latency_summary([7.0]) == {"p50": 7.0, "p95": 7.0, "p99": 7.0, "max": 7.0}
    assert latency_summary([]) == {}


@pytest.fixture
def throttling_server() -> Iterator[tuple[str, list[int]]]:
    """Answers 429 to the first two requests, then 201 echoing the amount."""
    answered: list[int] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["content-length"])))
            with lock:
                status = 429 if len(answered) < 2 else 201
                answered.append(status)
            payload = json.dumps({"amount": body.get("amount")}).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answered
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.integration
def test_throttled_purchases_are_retried_and_counted(
    throttling_server: tuple[str, list[int]],
) -> None:
    url, answered = throttling_server
    plan = plan_purchases(3, seed=5)
    result = drive_purchases(url, 3, concurrency=1, seed=5)
    assert answered == [429, 429, 201, 201, 201]
    assert result.throttled == 2
    assert result.statuses == {201: 3}
    assert sum(result.statuses.values()) + result.throttled == len(answered)
    # every answer was 201, so the purchases planned otherwise are reported
    assert len(result.unexpected) == sum(p.expect != "approved" for p in plan)


@pytest.mark.integration
def test_a_burst_through_the_gateway_matches_its_plan(
    tmp_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_vending_app(tmp_project.root)
    project = Project.open(tmp_project.root)
    app = load_app(project)
    from lakelet.functions.queues import QueueStore

    QueueStore(project.metadata).ensure_queues(project.settings.functions.queues)
    monkeypatch.setenv("LAKELET_PROJECT_ROOT", str(project.root))
    monkeypatch.delenv("PAYMENT_GATEWAY_URL", raising=False)
    with serve_gateway(app, DirectInvoker(app)) as url:
        monkeypatch.setenv("LAKELET_GATEWAY_URL", url)
        result = drive_purchases(url, 40, concurrency=4, seed=9)
    plan = plan_purchases(40, seed=9)
    assert result.unexpected == []
    expected = Counter({"approved": 201, "declined": 402, "invalid": 400}[p.expect] for p in plan)
    assert result.statuses == dict(expected)
    assert sorted(s.purchase_id for s in result.approved) == sorted(
        p.purchase_id for p in plan if p.expect == "approved" and p.purchase_id
    )
    assert result.approved_amount == sum(
        (p.amount for p in plan if p.expect == "approved" and p.amount), Decimal("0.00")
    )
    keys = [o.key for o in iter_objects(project.store, "raw", "purchases/")]
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == sorted(
        f"{s.purchase_id}.jsonl" for s in result.approved
    )
    assert result.to_dict()["approved"] == len(result.approved)
    assert set(result.latency_ms) == {"p50", "p95", "p99", "max"}
