"""``lakelet demo`` on the command line: exit codes, JSON output, --keep."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lakelet.cli.main import main
from lakelet.demo import scenario

SMALL = ["--days", "2", "--machines", "3", "--seed", "5"]


def test_json_summary_and_kept_project(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keep = tmp_path / "kept"
    code = main(["demo", *SMALL, "--format", "json", "--keep", str(keep)])
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads(out)
    assert summary["ok"] is True
    assert summary["kept"] is True
    assert Path(summary["project"]) == keep.resolve()
    assert summary["rows_in_files"] == sum(f["rows"] for f in summary["manifest"]["files"])
    assert {r["file"] for r in summary["rejects"]} == {
        m["file"] for m in summary["manifest"]["malformed"]
    }
    assert (keep / "lakelet.toml").is_file()
    assert (keep / "jobs" / "daily_machine_sales.sql").is_file()


def test_the_throwaway_project_is_removed(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", *SMALL, "--format", "json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["kept"] is False
    assert not Path(summary["project"]).exists()


def test_table_report_names_the_books(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", *SMALL, "--keep", str(tmp_path / "p")])
    out = " ".join(capsys.readouterr().out.split())  # the report wraps at the terminal width
    assert code == 0
    assert "rows read = rows accepted + rows rejected" in out
    assert "Rejected rows" in out
    assert "all checks passed" in out


def test_keep_refuses_a_folder_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    code = main(["demo", *SMALL, "--keep", str(tmp_path)])
    assert code == 2
    assert "not an empty folder" in " ".join(capsys.readouterr().err.split())
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_bad_end_date_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["demo", *SMALL, "--end", "27/11/2026"])
    assert code == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_a_failed_check_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = scenario._checks

    def with_a_failure(*args: Any) -> list[scenario.Check]:
        return [*real(*args), scenario.Check("books balance", False, "off by one")]

    monkeypatch.setattr(scenario, "_checks", with_a_failure)
    code = main(["demo", *SMALL, "--format", "json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1
    assert summary["ok"] is False
    assert {"name": "books balance", "ok": False, "detail": "off by one"} in summary["checks"]
