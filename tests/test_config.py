"""Settings: layering, validation, and errors that name the key, the file and a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakelet.config import load_settings
from lakelet.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "lakelet.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_defaults_without_a_file(tmp_path: Path) -> None:
    settings = load_settings(tmp_path, env={})
    assert settings.lake.root == "lake"
    assert settings.catalog.uri == "sqlite:///.lakelet/catalog.db"
    assert settings.warehouse.uri == "duckdb:///.lakelet/warehouse.duckdb"
    assert settings.lake.buckets == ["raw", "curated"]


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    write(tmp_path, '[warehouse]\nuri = "duckdb:///from-file.duckdb"\n[project]\nname = "f"\n')
    assert load_settings(tmp_path, env={}).warehouse.uri == "duckdb:///from-file.duckdb"
    env = {"LAKELET__WAREHOUSE__URI": "duckdb:///from-env.duckdb", "OTHER": "x"}
    assert load_settings(tmp_path, env=env).warehouse.uri == "duckdb:///from-env.duckdb"
    settings = load_settings(
        tmp_path, env=env, overrides={"warehouse.uri": "duckdb:///from-flag.duckdb"}
    )
    assert settings.warehouse.uri == "duckdb:///from-flag.duckdb"
    assert settings.project.name == "f"


def test_env_values_are_typed_like_toml(tmp_path: Path) -> None:
    write(tmp_path, '[crawlers.sales]\npath = "raw/sales/"\n')
    env = {"LAKELET__CRAWLERS__SALES__ON_ARRIVAL": "true", "LAKELET__LAKE__BUCKETS": '["a1", "b2"]'}
    settings = load_settings(tmp_path, env=env)
    assert settings.crawlers["sales"].on_arrival is True
    assert settings.lake.buckets == ["a1", "b2"]


def test_named_sections(tmp_path: Path) -> None:
    write(
        tmp_path,
        '[crawlers.sales]\npath = "raw/sales/"\ndatabase = "raw"\n'
        '[jobs.daily]\nsql = "jobs/daily.sql"\noutput = "curated.daily"\nmode = "append"\n',
    )
    settings = load_settings(tmp_path, env={})
    assert settings.crawlers["sales"].path == "raw/sales/"
    assert settings.jobs["daily"].mode == "append"


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[warehouse]\nurl = "x"\n', ["'warehouse.url'", "did you mean 'uri'", "lakelet.toml"]),
        ('[warehuose]\nuri = "x"\n', ["'warehuose'", "did you mean 'warehouse'"]),
        ('[crawlers.s]\npath = "raw/"\ndatabse = "raw"\n', ["crawlers.s.databse", "'database'"]),
        ('[crawlers.s]\ndatabase = "raw"\n', ["crawlers.s", "missing required key 'path'"]),
        ('[crawlers.s]\npath = "r/"\non_arrival = "yes"\n', ["on_arrival", "true or false"]),
        ('[jobs.j]\nsql = "a.sql"\noutput = "c.t"\nmode = "upsert"\n', ["'upsert'", "'append'"]),
        ("[lake\nroot = 1", ["not valid TOML"]),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, text: str, fragments: list[str]) -> None:
    write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, env={})
    for fragment in fragments:
        assert fragment in str(info.value)
    assert info.value.exit_code == 2


def test_bad_env_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"environment variable LAKELET__WAREHOUSE__URL: unknown setting "
        r"'warehouse\.url'; did you mean 'uri'",
    ):
        load_settings(tmp_path, env={"LAKELET__WAREHOUSE__URL": "x"})
    with pytest.raises(ConfigError, match="LAKELET__SECTION__KEY"):
        load_settings(tmp_path, env={"LAKELET__WAREHOUSE": "x"})


def test_crawler_policies_and_classifiers(tmp_path: Path) -> None:
    write(
        tmp_path,
        '[classifiers.pipes]\nkind = "delimited"\ndelimiter = "|"\nheader = "absent"\n'
        '[crawlers.logs]\npath = "raw/logs/"\non_change = "fail"\nclassifiers = ["pipes"]\n',
    )
    settings = load_settings(tmp_path, env={})
    assert settings.crawlers["logs"].on_change == "fail"
    assert settings.classifiers["pipes"].header == "absent"
    write(tmp_path, '[crawlers.logs]\npath = "raw/logs/"\nclassifiers = ["pipe"]\n')
    with pytest.raises(ConfigError, match=r"crawlers\.logs\.classifiers"):
        load_settings(tmp_path, env={})


def test_job_quality_rules(tmp_path: Path) -> None:
    write(
        tmp_path,
        '[jobs.daily]\nsql = "d.sql"\noutput = "curated.d"\n'
        "[[jobs.daily.quality]]\nrule = 'IsComplete \"machine_id\"'\n"
        '[[jobs.daily.quality]]\nrule = "RowCount > 0"\naction = "fail"\n',
    )
    rules = load_settings(tmp_path, env={}).jobs["daily"].quality
    assert [(r.rule, r.action) for r in rules] == [
        ('IsComplete "machine_id"', None),
        ("RowCount > 0", "fail"),
    ]
    write(
        tmp_path,
        '[jobs.d]\nsql = "d.sql"\noutput = "c.d"\n'
        '[[jobs.d.quality]]\nrule = "x"\naction = "stop"\n',
    )
    with pytest.raises(ConfigError, match="'stop' is not one of"):
        load_settings(tmp_path, env={})


def test_a_settings_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "lakelet.toml").write_bytes(b'[project]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(tmp_path, env={})


def test_a_database_that_cannot_be_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lakelet.cli.main import main

    assert main(["init", str(tmp_path / "p")]) == 0
    args = ["-C", str(tmp_path / "p"), "--set", "catalog.uri=sqlite:////nonexistent/dir/x.db"]
    assert main([*args, "tables"]) == 2
    assert "cannot open the database" in capsys.readouterr().err
