"""The vending app in-process: its handlers through the gateway (Starlette's TestClient)
and the in-process invoker, in a real project, the payment check over real HTTP.

What a test expects is computed from the request it sent (the lake path from the date,
amounts with Decimal), never read back from the code under test.
"""

from __future__ import annotations

import json
import socket
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lakelet.demo import vending_app
from lakelet.demo.vending import (
    DEAD_LETTER_QUEUE,
    NOTIFICATIONS_QUEUE,
    QueueDelivery,
    WebhookSink,
    drain,
    install_vending_app,
    queue_poller,
    serve_gateway,
)
from lakelet.errors import ConfigError
from lakelet.functions.direct import DirectInvoker
from lakelet.functions.events import failed_message_ids, queue_arn, sqs_batch_event
from lakelet.functions.gateway import build_gateway
from lakelet.functions.loader import load_app
from lakelet.functions.model import App
from lakelet.functions.queues import QueueStore
from lakelet.project import Project
from lakelet.storage.base import iter_objects

with warnings.catch_warnings():  # Starlette prefers httpx2 for its test client
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@dataclass
class Vending:
    project: Project
    app: App
    invoker: DirectInvoker
    client: TestClient
    queues: QueueStore

    def buy(self, **fields: Any) -> Any:
        body = {
            "machine_id": "VM-007",
            "product": "Cola 0.33L",
            "amount": "2.50",
            "payment_token": "tok_visa_4242",
            **fields,
        }
        return self.client.post("/purchase", json={k: v for k, v in body.items() if v is not ...})

    def objects(self, prefix: str) -> list[str]:
        return [o.key for o in iter_objects(self.project.store, "raw", prefix)]

    def notify_pending(self) -> QueueDelivery:
        """Run the notification function over what is queued, as ``lakelet up`` would."""
        poller = queue_poller(
            self.queues, self.invoker, self.app, self.project, NOTIFICATIONS_QUEUE
        )
        return drain(poller)


@pytest.fixture(scope="module")
def payment_url() -> Iterator[str]:
    """The fake payment gateway served over real HTTP, as ``lakelet up`` serves it."""
    app = vending_app.app
    with serve_gateway(app, DirectInvoker(app)) as url:
        yield url


def open_vending(project: Project, monkeypatch: pytest.MonkeyPatch) -> Vending:
    assert install_vending_app(project.root)
    project = Project.open(project.root)
    monkeypatch.setenv("LAKELET_PROJECT_ROOT", str(project.root))
    for name in ("LAKELET_GATEWAY_URL", "PAYMENT_GATEWAY_URL", "NOTIFY_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    app = load_app(project)
    invoker = DirectInvoker(app)
    queues = QueueStore(project.metadata)
    queues.ensure_queues(project.settings.functions.queues, referenced=[NOTIFICATIONS_QUEUE])
    return Vending(project, app, invoker, TestClient(build_gateway(app, invoker)), queues)


@pytest.fixture
def offline(tmp_project: Project, monkeypatch: pytest.MonkeyPatch) -> Vending:
    """The vending project with no payment gateway reachable."""
    return open_vending(tmp_project, monkeypatch)


@pytest.fixture
def vending(tmp_project: Project, monkeypatch: pytest.MonkeyPatch, payment_url: str) -> Vending:
    """The vending project with the fake payment gateway behind LAKELET_GATEWAY_URL."""
    shop = open_vending(tmp_project, monkeypatch)
    monkeypatch.setenv("LAKELET_GATEWAY_URL", payment_url)
    return shop


def today() -> str:
    return datetime.now(UTC).date().isoformat()


# --- purchases --------------------------------------------------------------------------


@pytest.mark.integration
def test_an_approved_purchase_is_a_sale_in_the_lake_and_a_queued_notification(
    vending: Vending,
) -> None:
    before = today()
    answer = vending.buy(purchase_id="p-1", amount=2.5)
    after = today()
    assert answer.status_code == 201, answer.text
    sale = answer.json()
    assert sale["purchase_id"] == "p-1"
    assert (sale["machine_id"], sale["product"]) == ("VM-007", "Cola 0.33L")
    assert (sale["amount"], sale["amount_cents"], sale["currency"]) == ("2.50", 250, "EUR")
    assert sale["authorization_id"].startswith("auth_")

    keys = vending.objects("purchases/")
    assert keys in ([f"purchases/date={before}/p-1.jsonl"], [f"purchases/date={after}/p-1.jsonl"])
    stored = vending.project.store.get("raw", keys[0])
    lines = stored.decode().splitlines()
    assert len(lines) == 1 and json.loads(lines[0]) == sale
    assert b"tok_visa_4242" not in stored  # the payment token is never kept
    assert keys[0].startswith(f"purchases/date={sale['sold_at'][:10]}/")

    messages = vending.queues.receive(NOTIFICATIONS_QUEUE)
    assert len(messages) == 1
    note = json.loads(messages[0].body)
    assert (note["purchase_id"], note["amount"], note["sale"]) == ("p-1", "2.50", f"raw/{keys[0]}")
    assert messages[0].attributes == {"purchase_id": "p-1"}

    # the notification function, given the SQS batch Lambda would deliver
    event = sqs_batch_event(messages, queue_arn(NOTIFICATIONS_QUEUE))
    result = vending.invoker.invoke("notify", event)
    assert result.outcome == "ok", result.failure
    assert failed_message_ids(result.payload, event) == set()
    outbox = vending.objects("notifications/")
    assert outbox == [f"notifications/date={sale['sold_at'][:10]}/p-1.jsonl"]
    record = json.loads(vending.project.store.get("raw", outbox[0]))
    assert (record["status"], record["channel"], record["attempts"]) == ("delivered", "outbox", 1)
    assert record["message_id"] == messages[0].message_id
    assert json.loads(record["payload"]) == note


@pytest.mark.integration
@pytest.mark.parametrize(
    ("token", "amount", "reason"),
    [
        ("tok_decline_0001", "2.50", "card_declined"),
        ("tok_insufficient_7", "2.50", "insufficient_funds"),
        ("tok_visa_4242", "50.01", "amount_over_limit"),
        ("card-4242", "2.50", "invalid_token"),
    ],
)
def test_a_declined_payment_is_402_and_writes_nothing(
    vending: Vending, token: str, amount: str, reason: str
) -> None:
    answer = vending.buy(purchase_id="p-2", payment_token=token, amount=amount)
    assert answer.status_code == 402
    assert answer.json()["reason"] == reason
    assert reason in answer.json()["message"]
    assert vending.objects("purchases/") == []
    assert vending.queues.depth(NOTIFICATIONS_QUEUE).total == 0


@pytest.mark.integration
def test_the_limit_itself_is_approved(vending: Vending) -> None:
    assert vending.buy(amount="50.00").status_code == 201


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"machine_id": ...}, "machine_id"),
        ({"machine_id": "VM 7/../x"}, "machine_id"),
        ({"machine_id": 7}, "machine_id"),
        ({"product": ""}, "product"),
        ({"amount": ...}, "amount"),
        ({"amount": "two euros"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"amount": "-1.50"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": "1e9"}, "amount"),
        ({"payment_token": ...}, "payment_token"),
        ({"purchase_id": "../../etc"}, "purchase_id"),
    ],
)
def test_a_malformed_purchase_is_400_naming_the_field(
    offline: Vending, change: dict[str, Any], field: str
) -> None:
    answer = offline.buy(**change)
    assert answer.status_code == 400
    assert answer.json()["field"] == field
    assert answer.json()["message"].startswith(f"{field}: ")
    assert offline.objects("purchases/") == []


@pytest.mark.parametrize("body", [b"machine=VM-001", b"[1, 2]", b""])
def test_a_body_that_is_not_a_json_object_is_400(offline: Vending, body: bytes) -> None:
    answer = offline.client.post(
        "/purchase", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["field"] == "body"


def test_without_a_payment_gateway_the_purchase_is_refused(
    offline: Vending, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = offline.buy()
    assert answer.status_code == 503
    assert "PAYMENT_GATEWAY_URL" in answer.json()["message"]
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("PAYMENT_GATEWAY_URL", f"http://127.0.0.1:{closed}/authorize")
    assert offline.buy().status_code == 502
    assert offline.objects("purchases/") == []
    assert offline.queues.depth(NOTIFICATIONS_QUEUE).total == 0


@pytest.mark.integration
def test_payment_gateway_url_wins_over_the_local_fake(
    offline: Vending, payment_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMENT_GATEWAY_URL", payment_url + "/payments/authorize")
    monkeypatch.setenv("LAKELET_GATEWAY_URL", "http://127.0.0.1:9/unused")
    assert offline.buy().status_code == 201


@pytest.mark.integration
def test_a_replayed_purchase_id_is_one_sale(vending: Vending) -> None:
    first = vending.buy(purchase_id="p-3")
    again = vending.buy(purchase_id="p-3")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(vending.objects("purchases/")) == 1
    assert vending.queues.depth(NOTIFICATIONS_QUEUE).total == 1

    different = vending.buy(purchase_id="p-3", amount="3.00")
    assert different.status_code == 409
    assert different.json()["field"] == "purchase_id"
    assert len(vending.objects("purchases/")) == 1


# --- notifications ----------------------------------------------------------------------


@pytest.mark.integration
def test_notifications_go_to_the_webhook_once(
    vending: Vending, monkeypatch: pytest.MonkeyPatch
) -> None:
    with WebhookSink(status=204) as sink:
        monkeypatch.setenv("NOTIFY_WEBHOOK_URL", sink.url)
        for n in range(3):
            assert vending.buy(purchase_id=f"w-{n}", machine_id=f"VM-00{n}").status_code == 201
        tally = vending.notify_pending()
        assert (tally.succeeded, tally.failed_attempts) == (3, 0)
        assert sink.purchase_ids() == {"w-0": 1, "w-1": 1, "w-2": 1}
        first = next(r for r in sink.received if r["body"]["purchase_id"] == "w-1")
        assert first["body"]["machine_id"] == "VM-001"
        assert first["headers"]["idempotency-key"] == "w-1"

        # a redelivered message (SQS delivers at least once) is not sent again
        vending.queues.send(NOTIFICATIONS_QUEUE, json.dumps(first["body"]))
        assert vending.notify_pending().succeeded == 1
        assert sink.purchase_ids()["w-1"] == 1
    records = [
        json.loads(vending.project.store.get("raw", key))
        for key in vending.objects("notifications/")
    ]
    assert sorted(r["purchase_id"] for r in records) == ["w-0", "w-1", "w-2"]
    assert {(r["status"], r["channel"], r["http_status"]) for r in records} == {
        ("delivered", "webhook", 204)
    }


@pytest.mark.integration
def test_a_failing_webhook_retries_then_dead_letters(
    vending: Vending, monkeypatch: pytest.MonkeyPatch
) -> None:
    vending.queues.ensure(
        NOTIFICATIONS_QUEUE,
        visibility_timeout_s=0,
        max_receive_count=2,
        dead_letter=DEAD_LETTER_QUEUE,
    )
    with WebhookSink(status=500) as sink:
        monkeypatch.setenv("NOTIFY_WEBHOOK_URL", sink.url)
        assert vending.buy(purchase_id="f-1").status_code == 201
        assert vending.buy(purchase_id="f-2").status_code == 201
        messages = vending.queues.receive(NOTIFICATIONS_QUEUE)
        event = sqs_batch_event(messages, queue_arn(NOTIFICATIONS_QUEUE))
        result = vending.invoker.invoke("notify", event)
        assert result.outcome == "ok"
        assert failed_message_ids(result.payload, event) == {m.message_id for m in messages}
        assert len(messages) == 2 and len(sink.received) == 2
    key = vending.objects("notifications/")[0]
    record = json.loads(vending.project.store.get("raw", key))
    assert (record["status"], record["http_status"]) == ("failed", 500)
    assert "500" in record["error"]

    with socket.socket() as probe:  # now the webhook does not answer at all
        probe.bind(("127.0.0.1", 0))
        monkeypatch.setenv("NOTIFY_WEBHOOK_URL", f"http://127.0.0.1:{probe.getsockname()[1]}/")
    tally = vending.notify_pending()  # the second and last delivery fails too
    assert (tally.succeeded, tally.failed_attempts) == (0, 2)
    assert vending.queues.receive(NOTIFICATIONS_QUEUE) == []  # moved on
    dead = vending.queues.receive(DEAD_LETTER_QUEUE)
    assert sorted(json.loads(m.body)["purchase_id"] for m in dead) == ["f-1", "f-2"]
    assert len(vending.objects("purchases/")) == 2  # the sales themselves stand


def test_a_malformed_notification_fails_and_is_kept(offline: Vending) -> None:
    offline.queues.send(NOTIFICATIONS_QUEUE, "not json")
    offline.queues.send(NOTIFICATIONS_QUEUE, json.dumps({"purchase_id": "../x", "sold_at": "x"}))
    tally = offline.notify_pending()
    assert (tally.succeeded, tally.failed_attempts) == (0, 2)
    assert offline.queues.depth(NOTIFICATIONS_QUEUE).in_flight == 2
    assert offline.objects("notifications/") == []


# --- into the lake's tables -------------------------------------------------------------


@pytest.mark.integration
def test_the_crawler_and_the_job_see_every_sale(vending: Vending) -> None:
    from lakelet.crawler import crawler_spec, run_crawler
    from lakelet.jobs import query, run_job

    bought = [
        ("VM-001", "Cola 0.33L", "2.00"),
        ("VM-001", "Still Water 0.5L", "1.50"),
        ("VM-001", "Cola 0.33L", "2.00"),
        ("VM-002", "Cold Brew 0.25L", "3.80"),
        ("VM-003", "Energy Drink 0.5L", "3.60"),
    ]
    for n, (machine, product, amount) in enumerate(bought):
        answer = vending.buy(
            purchase_id=f"c-{n}", machine_id=machine, product=product, amount=amount
        )
        assert answer.status_code == 201
    assert vending.buy(purchase_id="c-x", payment_token="tok_decline").status_code == 402

    project = vending.project
    run_crawler(project, "purchases", crawler_spec(project, "purchases"))
    types = {
        row["column_name"]: row["column_type"]
        for row in query(project, "DESCRIBE raw.purchases").to_pylist()
    }
    assert types["amount_cents"] == "BIGINT"
    assert types["sold_at"] == "TIMESTAMP"
    assert types["date"] == "DATE"
    assert types["amount"] == types["machine_id"] == types["purchase_id"] == "VARCHAR"
    rows = query(project, "SELECT purchase_id, amount_cents FROM raw.purchases").to_pylist()
    assert sorted(r["purchase_id"] for r in rows) == [f"c-{n}" for n in range(5)]

    run = run_job(project, "purchases_by_machine")
    assert run.status == "succeeded" and run.rows_read == 5
    table = query(
        project,
        "SELECT machine_id, purchases, products, revenue, revenue_cents "
        "FROM curated.purchases_by_machine ORDER BY machine_id",
    ).to_pylist()
    expected: dict[str, tuple[int, set[str], Decimal]] = {}
    for machine, product, amount in bought:
        count, products, revenue = expected.get(machine, (0, set(), Decimal("0.00")))
        expected[machine] = (count + 1, products | {product}, revenue + Decimal(amount))
    assert [
        (r["machine_id"], r["purchases"], r["products"], r["revenue"], r["revenue_cents"])
        for r in table
    ] == [
        (m, count, len(products), revenue, int(revenue * 100))
        for m, (count, products, revenue) in sorted(expected.items())
    ]


# --- the project's setup ----------------------------------------------------------------


def test_installing_is_idempotent_and_refuses_a_project_with_functions(
    tmp_project: Project, tmp_path: Path
) -> None:
    assert install_vending_app(tmp_project.root)
    assert not install_vending_app(tmp_project.root)
    project = Project.open(tmp_project.root)
    assert project.settings.functions.app == "app:app"
    assert project.settings.crawlers["purchases"].on_arrival
    queue = project.settings.functions.queues[NOTIFICATIONS_QUEUE]
    assert queue.dead_letter == DEAD_LETTER_QUEUE
    app = load_app(project)
    assert {r.path for r in app.routes} == {"/purchase", "/payments/authorize"}
    assert [(t.function, t.queue) for t in app.queue_triggers] == [("notify", NOTIFICATIONS_QUEUE)]
    # the purchase (which waits on the payment check) can never starve it of slots
    assert (app.functions["authorize_payment"].reserved_concurrency or 0) >= 1

    other = tmp_path / "other"
    other.mkdir()
    (other / "lakelet.toml").write_text('[functions]\napp = "mine:app"\n')
    with pytest.raises(ConfigError, match=r"lakelet.toml.*\[functions\]"):
        install_vending_app(other)
