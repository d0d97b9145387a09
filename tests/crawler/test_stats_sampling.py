"""Statistics from a sample of lines: estimates close to the exact figures, said to be
estimates, and exact whenever a file cannot be sampled."""

from __future__ import annotations

import gzip
import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from lakelet.catalog import TableName
from lakelet.cli.main import main
from lakelet.config import CrawlerSection, load_settings
from lakelet.crawler import run_crawler
from lakelet.crawler import sample as sample_module
from lakelet.crawler.sample import DEFAULT_SAMPLE_ROWS, estimate_distinct, sample_lines
from lakelet.crawler.stats import merge_stats
from lakelet.errors import ConfigError
from lakelet.project import Project

TABLE = TableName("raw", "sales")
ROWS = 30_000


def sales_csv(rows: int = ROWS, newline: str = "\n") -> bytes:
    """``id`` unique; ``grp`` in runs of three (like an order's items); ``flag`` one of
    five; ``amount`` empty on every tenth row; ``day`` one of 336 dates."""
    lines = ["id,grp,flag,amount,day"]
    for i in range(rows):
        amount = "" if i % 10 == 0 else f"{(i * 37) % 1000}.{i % 100:02d}"
        day = f"2026-{1 + (i % 336) // 28:02d}-{1 + i % 28:02d}"
        lines.append(f"{i + 1},{i // 3},f{(i * 7) % 5},{amount},{day}")
    return (newline.join(lines) + newline).encode()


def crawl(project: Project, statistics: str, rows: int = 2_000, full: bool = True) -> Any:
    spec = CrawlerSection(
        path="raw/sales/",
        statistics=statistics,  # type: ignore[arg-type]
        statistics_sample_rows=rows,
    )
    run_crawler(project, "sales", spec, full=full)
    stats = project.catalog.raw.stats(TABLE)
    assert stats is not None
    return stats


def test_a_sample_estimates_rows_nulls_and_distinct_values(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", sales_csv())
    exact = crawl(tmp_project, "full")
    assert exact["rows"] == ROWS and not exact.get("estimated")
    estimate = crawl(tmp_project, "sample")
    assert estimate["estimated"] is True and estimate["exact_distinct"] is False
    assert 1_800 <= estimate["sample_rows"] <= 2_000  # drawn lines, repeats taken once
    assert estimate["rows"] == pytest.approx(ROWS, rel=0.03)
    columns = estimate["columns"]
    assert columns["amount"]["nulls"] == pytest.approx(ROWS / 10, rel=0.25)
    assert columns["id"]["distinct"] == pytest.approx(ROWS, rel=0.05)  # all unique
    assert columns["grp"]["distinct"] == pytest.approx(ROWS / 3, rel=0.35)
    assert columns["flag"]["distinct"] == 5
    assert 320 <= columns["day"]["distinct"] <= 345  # 336, each seen about six times
    for name in ("id", "grp", "amount", "day"):  # the sample's extremes lie within the data's
        low, high = columns[name]["min"], columns[name]["max"]
        assert exact["columns"][name]["min"] <= low <= high <= exact["columns"][name]["max"]
    assert columns["flag"]["min"] == "f0" and columns["flag"]["max"] == "f4"
    again = crawl(tmp_project, "sample")
    assert again == estimate  # the same files give the same sample


def test_a_sample_that_draws_every_line_is_exact(tmp_project: Project) -> None:
    data = sales_csv(200)
    tmp_project.store.put("raw", "sales/a.csv", data)
    exact = crawl(tmp_project, "full")
    estimate = crawl(tmp_project, "sample", rows=5_000)
    assert estimate["estimated"] and estimate["sample_rows"] == 200
    assert estimate["rows"] == exact["rows"] == 200
    values = [line.split(",") for line in data.decode().splitlines()[1:]]
    for index, name in enumerate(["id", "grp", "flag", "amount", "day"]):
        column, full = estimate["columns"][name], exact["columns"][name]
        assert {k: column[k] for k in ("nulls", "min", "max")} == {
            k: full[k] for k in ("nulls", "min", "max")
        }
        assert column["distinct"] == len({v[index] for v in values if v[index]}), name


def test_auto_samples_only_past_the_full_scan_size(
    tmp_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = sales_csv(2_000)
    monkeypatch.setattr(sample_module, "FULL_SCAN_BYTES", len(data) + 1)
    tmp_project.store.put("raw", "sales/a.csv", data)
    assert not crawl(tmp_project, "auto", rows=1_000).get("estimated")
    monkeypatch.setattr(sample_module, "FULL_SCAN_BYTES", len(data) - 1)
    assert crawl(tmp_project, "auto", rows=1_000)["estimated"]


def test_header_preamble_bom_and_crlf_stay_out_of_the_sample(tmp_project: Project) -> None:
    body = sales_csv(3_000, newline="\r\n")
    data = b"\xef\xbb\xbfSales report, November\r\n" + body
    tmp_project.store.put("raw", "sales/a.csv", data)
    exact = crawl(tmp_project, "full")
    assert exact["rows"] == 3_000  # the crawler found the title line and the header
    estimate = crawl(tmp_project, "sample", rows=1_000)
    assert estimate["estimated"]
    assert estimate["rows"] == pytest.approx(3_000, rel=0.05)
    flags = estimate["columns"]["flag"]
    assert (flags["min"], flags["max"], flags["distinct"]) == ("f0", "f4", 5)  # no "flag", no \r
    assert estimate["columns"]["id"]["nulls"] == 0  # every sampled line read as a row


def test_a_dense_sample_draws_exactly_the_data_lines(tmp_project: Project) -> None:
    body = sales_csv(300, newline="\r\n")
    tmp_project.store.put("raw", "sales/a.csv", b"\xef\xbb\xbfSales report\r\n" + body)
    crawl(tmp_project, "full")
    table = tmp_project.catalog.raw_table(TABLE)
    url = str(Path(tmp_project.store.root) / "raw" / "sales" / "a.csv")
    with ExitStack() as stack:
        sample = sample_lines(table, [url], 20_000, stack)
        assert sample is not None and len(sample.bundles) == 1
        drawn = Path(sample.bundles[0].path).read_bytes().decode().split("\n")[:-1]
    data = body.decode().split("\r\n")[1:-1]  # no title, header or \r
    assert sorted(drawn) == sorted(f"0,{line}" for line in data)  # file number 0, then the line
    rows_bytes = len(body) - body.index(b"\r\n") - 2  # after the header
    assert (sample.lines, sample.bytes, sample.of_bytes) == (300, rows_bytes, rows_bytes)


def test_lines_longer_than_a_read_and_the_last_line_are_drawn_whole(tmp_path: Path) -> None:
    window = sample_module.WINDOW_BYTES
    lines = [f"{i},{'x' * (i * 97 % (3 * window))}" for i in range(200)]
    path = tmp_path / "a.csv"
    path.write_text("\r\n".join(lines))  # no newline after the last line
    file = sample_module._File(str(path), ("id", "note"), {}, 0, path.stat().st_size)
    every = list(range(0, path.stat().st_size, 7))  # many draws in every line
    picked = sample_module._lines(file, every)
    assert picked is not None
    drawn, size = picked
    assert sorted(drawn) == sorted(line.encode() for line in lines)  # each once, \r dropped
    assert size == path.stat().st_size + 1  # as if the last line ended with a newline


def test_a_sample_with_lines_longer_than_the_read_buffer(
    tmp_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample_module, "SAMPLE_BUFFER_BYTES", 64 << 10)
    lines = ["id,note"] + [f"{i},{chr(97 + i % 26) * (100 << 10)}" for i in range(60)]
    tmp_project.store.put("raw", "sales/a.csv", ("\n".join(lines) + "\n").encode())
    estimate = crawl(tmp_project, "sample", rows=2_000)
    assert estimate["estimated"]
    assert estimate["rows"] == pytest.approx(60, rel=0.1)  # every sampled line read
    assert estimate["columns"]["note"]["max"].startswith("z")


def test_partition_values_join_the_sampled_rows(tmp_project: Project) -> None:
    for day in ("2026-11-27", "2026-11-28", "2026-11-29"):
        tmp_project.store.put("raw", f"sales/date={day}/a.csv", sales_csv(2_000))
    estimate = crawl(tmp_project, "sample", rows=1_000)
    assert estimate["estimated"] and estimate["rows"] == pytest.approx(6_000, rel=0.05)
    date = estimate["columns"]["date"]
    assert (date["min"], date["max"], date["distinct"], date["nulls"]) == (
        "2026-11-27",
        "2026-11-29",
        3,
        0,
    )


def test_quoted_fields_on_one_line_are_sampled(tmp_project: Project) -> None:
    lines = ["id,note"] + [f'{i},"x, {i % 4}"' for i in range(3_000)]
    tmp_project.store.put("raw", "sales/a.csv", ("\n".join(lines) + "\n").encode())
    estimate = crawl(tmp_project, "sample", rows=1_000)
    assert estimate["estimated"]
    note = estimate["columns"]["note"]
    assert (note["min"], note["max"], note["distinct"]) == ("x, 0", "x, 3", 4)


@pytest.mark.parametrize("case", ["records spanning lines", "compressed"])
def test_files_that_cannot_be_sampled_get_exact_statistics(tmp_project: Project, case: str) -> None:
    if case == "compressed":
        tmp_project.store.put("raw", "sales/a.csv.gz", gzip.compress(sales_csv(3_000)))
        expected = 3_000
    else:
        lines = ["id,note"] + [f'{i},"line one\nline {i % 7}"' for i in range(3_000)]
        tmp_project.store.put("raw", "sales/a.csv", ("\n".join(lines) + "\n").encode())
        expected = 3_000
    stats = crawl(tmp_project, "sample", rows=1_000)
    assert not stats.get("estimated") and "sample_rows" not in stats
    assert stats["rows"] == expected


def test_formats_of_their_own_are_converted_not_dropped(tmp_project: Project) -> None:
    """A currency or a day-first date reads as a scan reads it (the rows once vanished)."""
    lines = ["id,price,day", "0,$74.69,27/11/2026", "1,,13/01/2026", "2,$1.00,x"]
    lines += [f"{i},${i}.50,{1 + i % 28:02d}/02/2026" for i in range(3, 200)]
    tmp_project.store.put("raw", "sales/a.csv", ("\n".join(lines) + "\n").encode())
    for mode in ("full", "sample"):  # a sample of 50,000 draws every one of these lines
        stats = crawl(tmp_project, mode, rows=50_000)
        assert stats["rows"] == 199, mode  # the row with "x" for a date is rejected
        price, day = stats["columns"]["price"], stats["columns"]["day"]
        assert (price["min"], price["max"], price["nulls"]) == (3.5, 199.5, 1), mode
        assert (day["min"], day["max"]) == ("2026-01-13", "2026-11-27"), mode


def test_show_says_the_statistics_are_estimated(
    tmp_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_project.store.put("raw", "sales/a.csv", sales_csv(3_000))
    stats = crawl(tmp_project, "sample", rows=1_000)
    root = ["-C", str(tmp_project.root)]
    assert main([*root, "show", "raw.sales", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)["statistics"]
    assert shown["estimated_from_rows"] == stats["sample_rows"]
    assert {"nulls (est.)", "min (sample)", "max (sample)"} <= set(shown["columns"][0])
    assert main([*root, "show", "raw.sales"]) == 0
    out = capsys.readouterr().out
    assert f"estimated from a sample of {stats['sample_rows']:,} rows" in out
    assert f"~{stats['rows']:,} rows in 1 files" in out


def test_an_incremental_merge_keeps_an_estimate_an_estimate(tmp_project: Project) -> None:
    tmp_project.store.put("raw", "sales/a.csv", sales_csv(3_000))
    first = crawl(tmp_project, "sample", rows=1_000, full=False)
    tmp_project.store.put("raw", "sales/b.csv", sales_csv(50))
    merged = crawl(tmp_project, "sample", rows=1_000, full=False)
    assert merged["files"] == 2 and merged["estimated"]
    # the new file alone is small: wholly drawn, so its part is exact (50 rows)
    assert merged["rows"] == first["rows"] + 50
    assert merged["sample_rows"] == first["sample_rows"] + 50


def test_merge_stats_counts_the_rows_each_part_was_computed_from() -> None:
    def part(rows: int, nulls: int, low: int, high: int) -> dict[str, Any]:
        column = {"type": "BIGINT", "nulls": nulls, "min": low, "max": high, "distinct": 9}
        return {"rows": rows, "columns": {"x": column}, "exact_distinct": True}

    exact = part(10, 1, 5, 50)
    estimated = {**part(1_000, 100, 1, 20), "estimated": True, "sample_rows": 100}
    merged = merge_stats(exact, estimated)
    assert (merged["rows"], merged["estimated"], merged["sample_rows"]) == (1_010, True, 110)
    assert merged["columns"]["x"]["nulls"] == 101
    assert (merged["columns"]["x"]["min"], merged["columns"]["x"]["max"]) == (1, 50)
    assert "estimated" not in merge_stats(exact, exact)


@pytest.mark.parametrize(
    ("sampled", "distinct", "once", "population", "expected"),
    [
        (1_000, 1_000, 1_000, 100_000.0, 100_000),  # every value unique: scales up
        (1_000, 7, 0, 100_000.0, 7),  # every value repeated: what was seen
        (1_000, 600, 300, 1_000.0, 600),  # the sample is the whole: exact
        (0, 0, 0, 0.0, 0),
    ],
)
def test_distinct_estimator_limits(
    sampled: int, distinct: int, once: int, population: float, expected: int
) -> None:
    assert estimate_distinct(sampled, distinct, once, population) == expected


def test_distinct_estimate_lies_between_seen_and_population() -> None:
    estimate = estimate_distinct(1_000, 800, 700, 50_000.0)
    assert 800 < estimate < 50_000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('statistics = "quick"', "crawlers.sales.statistics = 'quick' is not one of"),
        ("statistics_sample_rows = 10", "crawlers.sales.statistics_sample_rows = 10: must be"),
    ],
)
def test_bad_statistics_settings_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "lakelet.toml").write_text(f'[crawlers.sales]\npath = "raw/sales/"\n{text}\n')
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("'", ".")):
        load_settings(tmp_path)


def test_statistics_settings_default_to_auto() -> None:
    spec = CrawlerSection(path="raw/sales/")
    assert (spec.statistics, spec.statistics_sample_rows) == ("auto", DEFAULT_SAMPLE_ROWS)
