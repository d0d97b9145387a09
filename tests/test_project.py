"""`lakelet init` and opening projects."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakelet.cli.main import main
from lakelet.errors import UserError
from lakelet.project import Project, find_root


def test_init_creates_the_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "vending"
    assert main(["init", str(target)]) == 0
    assert (target / "lakelet.toml").is_file()
    assert (target / "lake" / "raw").is_dir() and (target / "lake" / "curated").is_dir()
    assert (target / ".lakelet").is_dir()
    assert 'name = "vending"' in (target / "lakelet.toml").read_text()
    assert "vending" in capsys.readouterr().out
    # Idempotent: a second init keeps the settings file as it is.
    (target / "lakelet.toml").write_text('[project]\nname = "kept"\n')
    assert main(["init", str(target)]) == 0
    assert Project.open(target).settings.project.name == "kept"


def test_project_is_found_from_a_sub_folder(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path)]) == 0
    nested = tmp_path / "jobs" / "deeper"
    nested.mkdir(parents=True)
    assert find_root(nested) == tmp_path.resolve()
    with pytest.raises(UserError, match="lakelet init"):
        find_root(tmp_path.parent / "elsewhere-without-project")
