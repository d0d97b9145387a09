"""The Pollock metric (benchmarks/pollock/metric.py) on hand-computed cases."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

METRIC = Path(__file__).resolve().parents[2] / "benchmarks" / "pollock" / "metric.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pollock_metric", METRIC)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pollock_metric"] = module
    spec.loader.exec_module(module)
    return module


metric = _load()
CLEAN = '"a","b"\r\n"1","x"\r\n"2","y"\r\n'


def test_identical_file_scores_ten() -> None:
    assert metric.score(CLEAN, CLEAN).total == pytest.approx(10.0)


def test_failed_load_scores_zero() -> None:
    assert metric.score("Application Error\nboom\n", CLEAN).total == 0.0
    assert metric.score(None, CLEAN).total == 0.0


def test_empty_clean_file_scores_ten_for_an_empty_load() -> None:
    assert metric.score("", "").total == pytest.approx(10.0)


def test_missing_row_lowers_record_and_cell_recall() -> None:
    result = metric.score('"a","b"\r\n"1","x"\r\n', CLEAN)
    assert result.header == (1.0, 1.0, 1.0)
    assert result.record[:2] == (1.0, 0.5)
    assert result.record[2] == pytest.approx(2 / 3)
    assert result.cell[:2] == (1.0, 4 / 6)


def test_header_is_normalised_but_cells_are_not() -> None:
    result = metric.score('"A","B"\r\n"1.0","x"\r\n"2","Y"\r\n', CLEAN)
    assert result.header == (1.0, 1.0, 1.0)
    assert result.record == (1.0, 1.0, 1.0)
    assert result.cell[0] == pytest.approx(2 / 6)  # only "x" and "2" equal as written


@pytest.mark.parametrize(
    ("cell", "normalised"),
    [
        (" 1.50 ", "1.5"),
        ("TRUE", "1"),
        ("$ 74.69", "$74.69"),
        ("28/01/2018", "2018-01-28T00:00:00"),
        ("00:15", "00:15:00"),
        ("Boots", "boots"),
    ],
)
def test_normalise(cell: str, normalised: str) -> None:
    assert metric.normalise(cell) == normalised
