"""The generator: sizes, determinism, and faults exactly where the manifest says."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import pytest

from lakelet.demo.generate import MACHINES_KEY, SALES_COLUMNS, Dataset, generate

KEY_RE = re.compile(r"^sales/date=(\d{4}-\d{2}-\d{2})/sales(-\d)?\.csv$")


def classify(fields: list[str], day: date) -> str | None:
    """The fault in one CSV row, judged from the text alone (None for a good row)."""
    if len(fields) > len(SALES_COLUMNS):
        return "too_many_fields"
    if len(fields) < len(SALES_COLUMNS):
        return "too_few_fields"
    row = dict(zip(SALES_COLUMNS, fields, strict=True))
    if not row["quantity"].isdigit():
        return "non_numeric_quantity"
    try:
        Decimal(row["unit_price"])
    except InvalidOperation:
        return "non_numeric_price"
    try:
        sold_at = datetime.fromisoformat(row["sold_at"])
    except ValueError:
        return "bad_timestamp"
    assert sold_at.date() == day, f"sale {row['transaction_id']} outside its partition"
    return None


def sales_rows(dataset: Dataset) -> list[tuple[str, int, list[str]]]:
    """(key, line, fields) of every data row in the sales files."""
    rows: list[tuple[str, int, list[str]]] = []
    for file in dataset.files_under("sales/"):
        reader = csv.reader(io.StringIO(file.content.decode("utf-8")))
        assert next(reader) == list(SALES_COLUMNS)
        rows.extend((file.key, reader.line_num, fields) for fields in reader)
    return rows


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(seed=11, days=5, machines=6, end=date(2026, 3, 2))


def test_sizes_follow_the_options(dataset: Dataset) -> None:
    assert len(dataset.machines) == 6
    assert len({m.machine_id for m in dataset.machines}) == 6
    assert len(dataset.products) == 30
    assert all(Decimal("1.50") <= p.list_price <= Decimal("4.00") for p in dataset.products)
    days = {KEY_RE.match(f.key).group(1) for f in dataset.files_under("sales/")}  # type: ignore[union-attr]
    assert days == {f"2026-02-{d}" for d in (26, 27, 28)} | {"2026-03-01", "2026-03-02"}
    assert (dataset.start, dataset.end) == (date(2026, 2, 26), date(2026, 3, 2))
    split_days = [f.key for f in dataset.files_under("sales/") if "sales-" in f.key]
    assert split_days, "some days arrive as two files"


def test_default_size_is_realistic() -> None:
    full = generate()
    assert len(full.machines) == 20
    assert len({f.key.split("/")[1] for f in full.files_under("sales/")}) == 14
    rows = full.rows_under("sales/")
    assert 20 * 14 * 30 <= rows <= 20 * 14 * 80
    methods = {fields[-1] for _, _, fields in sales_rows(full) if len(fields) == 9}
    assert {"card", "cash", "mobile"} <= methods


def test_declared_rows_match_the_files(dataset: Dataset) -> None:
    for file in dataset.files:
        lines = file.content.decode("utf-8").splitlines()
        header = 1 if file.key.endswith(".csv") else 0
        assert file.data_rows == len(lines) - header
    assert dataset.rows_under("sales/") == len(sales_rows(dataset))
    assert dataset.rows_under("machines/") == len(dataset.machines) + 1


def test_same_seed_same_bytes_other_seed_other_data() -> None:
    first = generate(seed=3, days=2, machines=3)
    again = generate(seed=3, days=2, machines=3)
    other = generate(seed=4, days=2, machines=3)
    assert [(f.key, f.content) for f in first.files] == [(f.key, f.content) for f in again.files]
    assert first.malformed == again.malformed
    assert [f.content for f in first.files] != [f.content for f in other.files]


def test_faults_are_exactly_the_declared_ones(dataset: Dataset) -> None:
    declared = {(m.key, m.line): m.kind for m in dataset.malformed if m.key.startswith("sales/")}
    assert 5 <= len(declared) <= 10
    assert {"too_many_fields", "too_few_fields", "non_numeric_quantity"} <= set(declared.values())
    assert {"non_numeric_price", "bad_timestamp"} <= set(declared.values())
    found = {}
    for key, line, fields in sales_rows(dataset):
        day = date.fromisoformat(KEY_RE.match(key).group(1))  # type: ignore[union-attr]
        kind = classify(fields, day)
        if kind is not None:
            found[(key, line)] = kind
    assert found == declared


def test_one_broken_json_line_is_declared(dataset: Dataset) -> None:
    (machines_file,) = dataset.files_under("machines/")
    assert machines_file.key == MACHINES_KEY
    broken = []
    records = []
    for line_no, line in enumerate(machines_file.content.decode("utf-8").splitlines(), 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            broken.append(line_no)
    declared = [m.line for m in dataset.malformed if m.key == MACHINES_KEY]
    assert broken == declared and len(broken) == 1
    assert [r["machine_id"] for r in records] == [m.machine_id for m in dataset.machines]
    assert all(set(r["location"]) == {"lat", "lon"} for r in records)


def test_good_rows_are_clean_and_consistent(dataset: Dataset) -> None:
    machines = {m.machine_id for m in dataset.machines}
    products = {p.sku: p for p in dataset.products}
    bad = {(m.key, m.line) for m in dataset.malformed}
    ids = []
    for key, line, fields in sales_rows(dataset):
        if (key, line) in bad:
            continue
        row = dict(zip(SALES_COLUMNS, fields, strict=True))
        assert row["machine_id"] in machines
        assert products[row["sku"]].name == row["product"]
        assert int(row["quantity"]) >= 1
        assert Decimal(row["unit_price"]).as_tuple().exponent == -2
        ids.append(row["transaction_id"])
    assert len(ids) == len(set(ids))


def test_without_faults_every_row_is_good() -> None:
    clean = generate(seed=5, days=2, machines=2, malformed=False)
    assert clean.malformed == ()
    for key, _, fields in sales_rows(clean):
        day = date.fromisoformat(KEY_RE.match(key).group(1))  # type: ignore[union-attr]
        assert classify(fields, day) is None


def test_at_most_one_fault_per_file() -> None:
    for days, machines in ((1, 1), (2, 3), (7, 3), (14, 20)):
        data = generate(seed=days, days=days, machines=machines)
        keys = [m.key for m in data.malformed if m.key.startswith("sales/")]
        assert len(keys) == len(set(keys))
        assert len(keys) <= 7
        sizes = {f.key: f.data_rows for f in data.files}
        assert all(sizes[k] >= 40 for k in keys), "faults only in files of some size"
        if len(data.files_under("sales/")) >= 9 and machines >= 3:
            assert len(keys) == 7


def test_manifest_is_json_ready(dataset: Dataset) -> None:
    manifest = json.loads(json.dumps(dataset.manifest()))
    assert sum(f["rows"] for f in manifest["files"]) == sum(f.data_rows for f in dataset.files)
    assert len(manifest["malformed"]) == len(dataset.malformed)
