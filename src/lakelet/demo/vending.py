"""The vending flow in the demo: purchases over HTTP through the functions runtime into
the lake, the crawler and a job, with the books kept.

:func:`install_vending_app` makes a project a vending project (``app.py`` from
:mod:`lakelet.demo.vending_app`, the crawlers, the job and the ``[functions]``
settings); :func:`run_vending_burst` serves it as ``lakelet up`` would (forked workers
behind the gateway on a free port, the ``notifications`` queue polled, a local webhook
standing in for the buyers' phones), drives a burst of purchases, crawls and
aggregates, and reconciles: approved purchases = sale objects in the lake = rows of
``raw.purchases`` = purchases in ``curated.purchases_by_machine``, and notifications
delivered = approved purchases.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakelet.config import CONFIG_FILE
from lakelet.demo.burst import BurstResult, drive_purchases
from lakelet.errors import ConfigError, UserError

if TYPE_CHECKING:
    from lakelet.demo.scenario import Check, Step
    from lakelet.functions.gateway import GatewaySettings
    from lakelet.functions.invocation import Invoker
    from lakelet.functions.model import App
    from lakelet.functions.queues import QueueStore
    from lakelet.functions.sources.pollers import BatchResult, QueuePoller
    from lakelet.project import Project

APP_MODULE = "app"
PURCHASES_CRAWLER = "purchases"
NOTIFICATIONS_CRAWLER = "notifications"
PURCHASES_JOB = "purchases_by_machine"
NOTIFICATIONS_QUEUE = "notifications"
DEAD_LETTER_QUEUE = "notifications-dlq"
START_TIMEOUT_S = 30.0
POLL_S = 0.05

CONFIG = f"""
[crawlers.{PURCHASES_CRAWLER}]
path = "raw/purchases/"
database = "raw"
on_arrival = true

[crawlers.{NOTIFICATIONS_CRAWLER}]
path = "raw/notifications/"
database = "raw"
on_arrival = true

[jobs.{PURCHASES_JOB}]
sql = "jobs/{PURCHASES_JOB}.sql"
output = "curated.{PURCHASES_JOB}"
mode = "overwrite"
description = "purchases and revenue per machine per day, from POST /purchase"
trigger = {{ after = ["crawler:{PURCHASES_CRAWLER}"] }}

[functions]
app = "{APP_MODULE}:app"
max_concurrency = 10

[functions.settings.authorize_payment]
reserved_concurrency = 4      # purchases wait on it: never let them starve it

[functions.settings.notify]
reserved_concurrency = 1

[functions.queues.{NOTIFICATIONS_QUEUE}]
visibility_timeout_s = 40     # over notify's timeout (30 s), as SQS requires
max_receive_count = 3
dead_letter = "{DEAD_LETTER_QUEUE}"
"""

JOB_SQL = """\
-- Purchases made through POST /purchase, per machine per day. raw.purchases is the
-- crawled JSON lines of raw/purchases/date=YYYY-MM-DD/<purchase_id>.jsonl.
SELECT
    CAST(p.date AS DATE) AS purchase_date,
    p.machine_id,
    count(*) AS purchases,
    count(DISTINCT p.product) AS products,
    CAST(sum(p.amount_cents) AS BIGINT) AS revenue_cents,
    CAST(sum(CAST(p.amount AS DECIMAL(10, 2))) AS DECIMAL(18, 2)) AS revenue,
    min(p.sold_at) AS first_purchase,
    max(p.sold_at) AS last_purchase
FROM raw.purchases AS p
GROUP BY ALL
ORDER BY purchase_date, p.machine_id
"""


def app_source() -> str:
    """The vending app's source, as copied into a project's ``app.py``."""
    return resources.files("lakelet.demo").joinpath("vending_app.py").read_text(encoding="utf-8")


def install_vending_app(folder: Path) -> bool:
    """Add the vending app to the project in ``folder``: ``app.py``, the job's SQL and
    the ``lakelet.toml`` sections. Idempotent; ``False`` when it was there already."""
    config = folder / CONFIG_FILE
    try:
        text = config.read_text(encoding="utf-8")
        settings = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{config}: cannot read the project settings: {exc}") from None
    functions = settings.get("functions", {})
    if functions.get("app") == f"{APP_MODULE}:app" and (folder / f"{APP_MODULE}.py").exists():
        return False
    if functions or PURCHASES_CRAWLER in settings.get("crawlers", {}):
        raise ConfigError(
            f"{config}: it already has a [functions] section or a crawler "
            f"{PURCHASES_CRAWLER!r}; add the vending app to a project without them"
        )
    (folder / f"{APP_MODULE}.py").write_text(app_source(), encoding="utf-8")
    (folder / "jobs").mkdir(exist_ok=True)
    (folder / "jobs" / f"{PURCHASES_JOB}.sql").write_text(JOB_SQL, encoding="utf-8")
    config.write_text(text.rstrip() + "\n" + CONFIG, encoding="utf-8")
    return True


def with_environment(
    app: App, everywhere: Mapping[str, str], **per_function: Mapping[str, str]
) -> App:
    """A copy of ``app`` whose functions get ``everywhere`` and their own variables
    (as ``[functions.settings.NAME] environment`` would give them)."""
    functions = {
        name: dataclasses.replace(
            spec,
            environment={**spec.environment, **everywhere, **per_function.get(name, {})},
        )
        for name, spec in app.functions.items()
    }
    return dataclasses.replace(app, functions=functions)


# --- the queue's event source mapping ---------------------------------------------------


@dataclass
class QueueDelivery:
    """What polling a queue did: batches invoked, messages done and failed attempts."""

    batches: int = 0
    succeeded: int = 0
    failed_attempts: int = 0

    def add(self, batch: BatchResult) -> None:
        self.batches += 1
        self.succeeded += batch.deleted
        self.failed_attempts += batch.kept


def queue_poller(
    queues: QueueStore, invoker: Invoker, app: App, project: Project, queue: str
) -> QueuePoller:
    """``lakelet up``'s SQS event source mapping for ``queue``'s trigger in ``app``."""
    from lakelet.functions.sources.pollers import QueuePoller

    section = project.settings.functions
    trigger = next(t for t in app.queue_triggers if t.queue == queue)
    return QueuePoller(
        queues, invoker, trigger, region=section.region, account_id=section.account_id
    )


def drain(poller: QueuePoller, tally: QueueDelivery | None = None) -> QueueDelivery:
    """Deliver batches until a receive comes back empty (failed messages stay hidden
    for the queue's visibility timeout, so they end a drain)."""
    tally = tally if tally is not None else QueueDelivery()
    while (batch := poller.poll_once()) is not None:
        tally.add(batch)
    return tally


@contextmanager
def polling(poller: QueuePoller, tally: QueueDelivery) -> Iterator[None]:
    """Poll in a thread while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                batch = poller.poll_once()
            except Exception:  # a busy database: try again next tick
                batch = None
            if batch is None or batch.outcome == "throttled":
                stop.wait(POLL_S)
            else:
                tally.add(batch)

    thread = threading.Thread(target=loop, name=f"poll-{poller.trigger.queue}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


# --- the buyers' phones -------------------------------------------------------------------


class WebhookSink:
    """A local HTTP endpoint that records what is POSTed to it, answering ``status``
    (2xx: accepted; anything else: a failing webhook). ``with WebhookSink() as sink``."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    body = None
                headers = {k.lower(): v for k, v in self.headers.items()}
                with sink._lock:
                    sink.received.append({"body": body, "headers": headers})
                self.send_response(sink.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/notifications"

    def purchase_ids(self) -> Counter[str]:
        """How many times each purchase was notified."""
        with self._lock:
            return Counter(
                str(r["body"].get("purchase_id"))
                for r in self.received
                if isinstance(r["body"], dict)
            )

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


# --- the demo step ------------------------------------------------------------------------


@dataclass
class VendingResult:
    """What the burst did and the books that prove it; ``ok`` when every check holds."""

    burst: BurstResult
    objects_in_lake: int
    rows_crawled: int
    job_purchases: int
    job_revenue: str
    revenue_crawled: str
    outbox_delivered: int
    webhook_notified: int
    webhook_duplicates: int
    queue_left: int
    dead_letters: int
    delivery: QueueDelivery
    crawls: list[dict[str, Any]] = field(default_factory=list)
    job_run_id: str = ""
    steps: list[Step] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "burst": self.burst.to_dict(),
            "objects_in_lake": self.objects_in_lake,
            "rows_crawled": self.rows_crawled,
            "job_purchases": self.job_purchases,
            "job_revenue": self.job_revenue,
            "revenue_crawled": self.revenue_crawled,
            "outbox_delivered": self.outbox_delivered,
            "webhook_notified": self.webhook_notified,
            "webhook_duplicates": self.webhook_duplicates,
            "queue_left": self.queue_left,
            "dead_letters": self.dead_letters,
            "delivery": dataclasses.asdict(self.delivery),
            "crawls": self.crawls,
            "job_run_id": self.job_run_id,
            "steps": [dataclasses.asdict(s) for s in self.steps],
            "checks": [dataclasses.asdict(c) for c in self.checks],
        }


def run_vending_burst(
    project: Project,
    count: int = 100,
    *,
    concurrency: int = 4,
    seed: int = 7,
    timeout_s: float = 120.0,
    on_step: Callable[[Step], None] | None = None,
) -> VendingResult:
    """Serve the vending app from ``project`` (installing it first if needed), send
    ``count`` purchases, wait for their notifications, crawl, aggregate, reconcile."""
    from lakelet.crawler import crawler_spec, run_crawler
    from lakelet.demo.scenario import Step
    from lakelet.jobs import run_job
    from lakelet.project import Project

    steps: list[Step] = []

    def step(name: str, detail: str, started: float) -> None:
        done = Step(name, detail, round(time.perf_counter() - started, 3))
        steps.append(done)
        if on_step is not None:
            on_step(done)

    started = time.perf_counter()
    install_vending_app(project.root)
    project = Project.open(project.root)
    with WebhookSink() as sink, serving(project, sink.url) as (base_url, delivery, queues):
        step("serve vending app", f"{base_url}: runtime, gateway, notifications poller", started)
        started = time.perf_counter()
        burst = drive_purchases(base_url, count, concurrency, seed)
        latency = burst.latency_ms
        step(
            "purchase burst",
            f"{count} purchases from {concurrency} clients: {len(burst.approved)} approved, "
            f"{burst.declined} declined, {burst.invalid} invalid, {burst.throttled} throttled "
            f"and retried; {burst.requests_per_s:.0f} req/s, p50 {latency.get('p50', 0):.0f} ms, "
            f"p99 {latency.get('p99', 0):.0f} ms",
            started,
        )
        started = time.perf_counter()
        queue_left = _wait_for_queue(queues, NOTIFICATIONS_QUEUE, started + timeout_s)
        step(
            "notifications",
            f"{delivery.succeeded} delivered to the webhook in {delivery.batches} batches, "
            f"{queue_left} left in the queue",
            started,
        )
        dead_letters = queues.depth(DEAD_LETTER_QUEUE).total
    crawls = []
    for name in (PURCHASES_CRAWLER, NOTIFICATIONS_CRAWLER):
        started = time.perf_counter()
        report = run_crawler(project, name, crawler_spec(project, name))
        crawls.append(report.to_dict())
        step(f"crawl {name}", f"raw/{name}/ → raw.{name}", started)
    started = time.perf_counter()
    run = run_job(project, PURCHASES_JOB)
    step(
        f"job {PURCHASES_JOB}",
        f"read {run.rows_read:,}, wrote {run.rows_written:,} rows to {run.output}",
        started,
    )
    result = _books(project, burst, sink, delivery, queue_left, dead_letters)
    result.crawls, result.job_run_id, result.steps = crawls, run.run_id, steps
    result.checks = vending_checks(result, run.status)
    return result


@contextmanager
def serving(project: Project, webhook_url: str) -> Iterator[tuple[str, QueueDelivery, QueueStore]]:
    """The app served as ``lakelet up`` serves it: forked workers, the gateway on a free
    loopback port, the notifications queue polled. Yields the gateway's URL."""
    from lakelet.functions.gateway import from_settings
    from lakelet.functions.loader import load_app
    from lakelet.functions.queues import QueueStore
    from lakelet.functions.runtime import open_runtime

    listener = loopback_listener()
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    section = project.settings.functions
    app = with_environment(
        load_app(project),
        {"LAKELET_PROJECT_ROOT": str(project.root), "LAKELET_GATEWAY_URL": base_url},
        notify={"NOTIFY_WEBHOOK_URL": webhook_url},
    )
    queues = QueueStore(project.metadata)
    queues.ensure_queues(section.queues, referenced=[t.queue for t in app.queue_triggers])
    delivery = QueueDelivery()
    settings = from_settings(project.settings)
    with (
        open_runtime(project, app=app) as runtime,
        serve_gateway(app, runtime, listener, settings, base=project.root),
        polling(queue_poller(queues, runtime, app, project, NOTIFICATIONS_QUEUE), delivery),
    ):
        yield base_url, delivery, queues


def loopback_listener() -> socket.socket:
    """A socket bound to a free loopback port, so the URL is known before serving."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    return listener


@contextmanager
def serve_gateway(
    app: App,
    invoker: Invoker,
    listener: socket.socket | None = None,
    settings: GatewaySettings | None = None,
    *,
    base: Path | None = None,
) -> Iterator[str]:
    """Serve ``app``'s routes through ``invoker`` with uvicorn in a thread while the
    block runs (on ``listener``, or a free loopback port); yields the base URL."""
    from lakelet.functions.gateway import make_server

    listener = listener or loopback_listener()
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = make_server(app, invoker, settings, base=base)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="vending-gateway", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise UserError(f"the gateway did not start on {base_url}")
            time.sleep(0.02)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def _wait_for_queue(queues: QueueStore, queue: str, deadline: float) -> int:
    """Wait until ``queue`` is empty or the deadline passes; what is left."""
    while True:
        left = queues.depth(queue).total
        if left == 0 or time.perf_counter() > deadline:
            return left
        time.sleep(POLL_S)


def _books(
    project: Project,
    burst: BurstResult,
    sink: WebhookSink,
    delivery: QueueDelivery,
    queue_left: int,
    dead_letters: int,
) -> VendingResult:
    from lakelet.jobs import query
    from lakelet.storage.base import iter_objects

    objects = sum(1 for _ in iter_objects(project.store, "raw", "purchases/"))
    crawled = query(
        project,
        "SELECT count(*) AS n, CAST(coalesce(sum(CAST(amount AS DECIMAL(10, 2))), 0) "
        "AS DECIMAL(18, 2)) AS revenue FROM raw.purchases",
    ).to_pylist()[0]
    job = query(
        project,
        "SELECT CAST(coalesce(sum(purchases), 0) AS BIGINT) AS n, "
        "CAST(coalesce(sum(revenue), 0) AS DECIMAL(18, 2)) AS revenue "
        f"FROM curated.{PURCHASES_JOB}",
    ).to_pylist()[0]
    outbox = query(
        project,
        "SELECT count(DISTINCT purchase_id) AS n FROM raw.notifications WHERE status = 'delivered'",
    ).to_pylist()[0]
    notified = sink.purchase_ids()
    return VendingResult(
        burst=burst,
        objects_in_lake=objects,
        rows_crawled=int(crawled["n"]),
        job_purchases=int(job["n"]),
        job_revenue=str(job["revenue"]),
        revenue_crawled=str(crawled["revenue"]),
        outbox_delivered=int(outbox["n"]),
        webhook_notified=len(notified),
        webhook_duplicates=sum(n - 1 for n in notified.values()),
        queue_left=queue_left,
        dead_letters=dead_letters,
        delivery=delivery,
    )


def vending_checks(result: VendingResult, job_status: str) -> list[Check]:
    """The vending flow's books: every count against the approved purchases."""
    from lakelet.demo.scenario import Check

    burst = result.burst
    approved = len(burst.approved)
    amount = burst.approved_amount
    return [
        Check(
            "every purchase got the answer its rules promise",
            not burst.unexpected,
            f"{approved} approved (201), {burst.declined} declined (402), "
            f"{burst.invalid} invalid (400)"
            + (f"; unexpected: {'; '.join(burst.unexpected[:5])}" if burst.unexpected else ""),
        ),
        Check(
            "approved purchases = sale objects in the lake = rows of raw.purchases",
            approved == result.objects_in_lake == result.rows_crawled,
            f"{approved} = {result.objects_in_lake} = {result.rows_crawled}",
        ),
        Check(
            f"curated.{PURCHASES_JOB} counts every approved purchase",
            job_status == "succeeded" and result.job_purchases == approved,
            f"{job_status}: {result.job_purchases} purchases, {approved} approved",
        ),
        Check(
            "revenue agrees: approved amounts = raw.purchases = the job",
            Decimal(result.revenue_crawled) == Decimal(result.job_revenue) == amount,
            f"{amount} = {result.revenue_crawled} = {result.job_revenue}",
        ),
        Check(
            "every approved purchase was notified and recorded in the outbox",
            result.webhook_notified == result.outbox_delivered == approved,
            f"webhook {result.webhook_notified} (duplicates {result.webhook_duplicates}), "
            f"outbox {result.outbox_delivered}, approved {approved}",
        ),
        Check(
            "no notification left behind",
            result.queue_left == 0 and result.dead_letters == 0,
            f"{result.queue_left} in the queue, {result.dead_letters} dead-lettered",
        ),
    ]
