"""The demo's vending step end to end: forked workers behind the gateway on a real port,
the notifications queue polled into a webhook, then the crawler and the job. The
expected numbers come from the burst's plan (what the rules promise), not from the run.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from lakelet.demo.burst import plan_purchases
from lakelet.demo.scenario import Step
from lakelet.demo.vending import run_vending_burst
from lakelet.jobs import query
from lakelet.project import Project

COUNT = 30
SEED = 4


@pytest.mark.integration
@pytest.mark.slow
def test_the_vending_burst_reconciles(tmp_project: Project) -> None:
    steps: list[Step] = []
    result = run_vending_burst(tmp_project, COUNT, concurrency=3, seed=SEED, on_step=steps.append)

    plan = plan_purchases(COUNT, SEED)
    approved = [p for p in plan if p.expect == "approved"]
    revenue = sum((p.amount for p in approved if p.amount), Decimal("0.00"))
    assert approved, "the seed must plan some approved purchases"
    assert [c for c in result.checks if not c.ok] == []
    assert result.ok
    assert len(result.burst.approved) == result.objects_in_lake == len(approved)
    assert result.rows_crawled == result.job_purchases == len(approved)
    assert Decimal(result.job_revenue) == Decimal(result.revenue_crawled) == revenue
    assert result.webhook_notified == result.outbox_delivered == len(approved)
    assert result.delivery.succeeded >= len(approved)
    assert (result.queue_left, result.dead_letters) == (0, 0)
    assert result.burst.declined == sum(p.expect == "declined" for p in plan)
    assert result.burst.invalid == sum(p.expect == "invalid" for p in plan)
    assert [s.name for s in steps] == [
        "serve vending app",
        "purchase burst",
        "notifications",
        "crawl purchases",
        "crawl notifications",
        "job purchases_by_machine",
    ]
    json.dumps(result.to_dict())  # JSON-ready for `lakelet demo --format json`

    project = Project.open(tmp_project.root)
    per_machine = query(
        project,
        "SELECT machine_id, sum(purchases) AS n FROM curated.purchases_by_machine GROUP BY 1",
    ).to_pylist()
    expected: dict[str, int] = {}
    for p in approved:
        assert p.machine_id is not None
        expected[p.machine_id] = expected.get(p.machine_id, 0) + 1
    assert {r["machine_id"]: int(r["n"]) for r in per_machine} == expected
