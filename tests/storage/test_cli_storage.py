"""``lakelet put`` and ``lakelet ls`` on a local lake and on an S3 lake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakelet.cli.main import main
from lakelet.project import Project
from lakelet.storage.base import iter_objects


def run(project: Project, *args: str) -> int:
    return main(["--project", str(project.root), *args])


def listed(project: Project, capsys: pytest.CaptureFixture[str], location: str) -> list[str]:
    capsys.readouterr()
    assert run(project, "ls", location, "--format", "json") == 0
    return [row["object"] for row in json.loads(capsys.readouterr().out)]


def test_put_a_file_and_list_it(
    any_project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "2026-11-27.csv"
    source.write_text("machine,amount\nm1,3\n", encoding="utf-8")

    assert run(any_project, "put", str(source), "raw/sales/") == 0
    assert run(any_project, "put", str(source), "raw/sales/renamed.csv") == 0

    assert listed(any_project, capsys, "raw/sales") == [
        "raw/sales/2026-11-27.csv",
        "raw/sales/renamed.csv",
    ]
    assert any_project.store.get("raw", "sales/renamed.csv") == source.read_bytes()
    assert [e.key for e in any_project.events.since(0)] == [
        "sales/2026-11-27.csv",
        "sales/renamed.csv",
    ]


def test_put_a_folder_keeps_its_layout(
    any_project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "export"
    (folder / "date=2026-11-26").mkdir(parents=True)
    (folder / "date=2026-11-27").mkdir()
    (folder / "date=2026-11-26" / "a.csv").write_bytes(b"1\n")
    (folder / "date=2026-11-27" / "b.csv").write_bytes(b"22\n")

    capsys.readouterr()
    assert run(any_project, "put", str(folder), "raw/sales", "--format", "json") == 0
    written = json.loads(capsys.readouterr().out)

    expected = ["raw/sales/date=2026-11-26/a.csv", "raw/sales/date=2026-11-27/b.csv"]
    assert [row["object"] for row in written] == expected
    assert [row["size"] for row in written] == [2, 3]
    assert listed(any_project, capsys, "raw/sales/") == expected
    assert listed(any_project, capsys, "raw/sales/date=2026-11-27") == expected[1:]


def test_ls_without_a_location_lists_the_buckets(
    any_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run(any_project, "ls", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out) == [{"bucket": "curated"}, {"bucket": "raw"}]


@pytest.mark.parametrize(
    ("destination", "named"),
    [
        ("raw/../escape.csv", "'../escape.csv'"),
        ("raw/a//b.csv", "'a//b.csv'"),
        ("Bad_Bucket/x", "'Bad_Bucket'"),
    ],
)
def test_put_to_a_bad_key_is_a_user_error(
    any_project: Project,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    destination: str,
    named: str,
) -> None:
    source = tmp_path / "x.csv"
    source.write_bytes(b"1\n")
    capsys.readouterr()

    assert run(any_project, "put", str(source), destination) == 2

    err = " ".join(capsys.readouterr().err.split())  # undo the console's line wrapping
    assert err.startswith("error:") and named in err
    assert list(iter_objects(any_project.store, "raw")) == []
    assert any_project.events.since(0) == []


def test_put_to_an_unknown_bucket_is_a_user_error(
    any_project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "x.csv"
    source.write_bytes(b"1\n")
    capsys.readouterr()

    assert run(any_project, "put", str(source), "landing/x.csv") == 2
    assert "landing" in capsys.readouterr().err
    assert any_project.store.buckets() == ["curated", "raw"]
