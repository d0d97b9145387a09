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


def test_table_quality_rules(tmp_path: Path) -> None:
    write(
        tmp_path,
        '[tables."curated.daily_sales"]\n'
        'quality = [{ rule = \'IsComplete "machine"\' }, { rule = "RowCount > 0", '
        'action = "fail" }]\n',
    )
    rules = load_settings(tmp_path, env={}).tables["curated.daily_sales"].quality
    assert [(r.rule, r.action) for r in rules] == [
        ('IsComplete "machine"', None),
        ("RowCount > 0", "fail"),
    ]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ('[tables."daily_sales"]', r'tables\."daily_sales": invalid table name'),
        ('[tables."curated.Daily"]', r'tables\."curated.Daily": invalid table name'),
        ('[tables." curated.daily"]', r"write the table name as 'curated.daily'"),
        (
            '[tables."curated.daily"]\nquality = [{ rule = "RowCount >" }]',
            r'lakelet.toml: tables\."curated.daily"\.quality\[0\]: .* at column',
        ),
        (
            '[tables."curated.daily"]\nquality = [{ rule = "RowCount > 0", '
            'action = "quarantine" }]',
            r"quality\[0\]: .*'quarantine' needs a row rule",
        ),
        ('[tables."curated.daily"]\nrules = []', "unknown setting 'tables.curated.daily.rules'"),
    ],
)
def test_bad_table_sections_are_named(tmp_path: Path, section: str, message: str) -> None:
    write(tmp_path, section + "\n")
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, env={})


def test_flatten_child_table_options(tmp_path: Path) -> None:
    write(
        tmp_path,
        '[jobs.j]\noutput = "curated.j"\n[[jobs.j.steps]]\npython = "m:f"\n'
        '[[jobs.j.steps]]\nbuiltin = "flatten"\narrays = "child_tables"\nkey = "id"\n',
    )
    step = load_settings(tmp_path, env={}).jobs["j"].steps[1]
    assert (step.arrays, step.key) == ("child_tables", "id")


# --- [functions] ----------------------------------------------------------------------


def test_functions_defaults(tmp_path: Path) -> None:
    functions = load_settings(tmp_path, env={}).functions
    assert functions.app is None
    assert functions.max_concurrency == 10
    assert (functions.region, functions.account_id) == ("us-east-1", "123456789012")
    assert functions.gateway.max_body_bytes == 6 * 1024 * 1024  # Lambda's payload limit
    assert functions.gateway.cors_origins == []
    assert functions.settings == {} and functions.queues == {}


def test_functions_sections(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
[functions]
app = "app:app"
idle_timeout_s = 60
max_concurrency = 4
region = "eu-west-1"
account_id = "111122223333"

[functions.settings.purchase]
memory_mb = 512
timeout_s = 10
reserved_concurrency = 2
retries = 0
dead_letter_queue = "purchases-failed"
environment = { STAGE = "dev" }

[functions.gateway]
port = 3000
cors_origins = ["http://localhost:5173"]
jwt_issuer = "https://issuer.example"
jwt_audience = "vending"
jwks_file = "jwks.json"
throttle_rate = 5
throttle_burst = 10

[functions.queues.orders]
visibility_timeout_s = 45
max_receive_count = 3
dead_letter = "orders-dlq"
""",
    )
    functions = load_settings(tmp_path, env={}).functions
    assert functions.app == "app:app"
    assert functions.idle_timeout_s == 60.0 and isinstance(functions.idle_timeout_s, float)
    assert (functions.max_concurrency, functions.region) == (4, "eu-west-1")
    purchase = functions.settings["purchase"]
    assert (purchase.memory_mb, purchase.timeout_s, purchase.retries) == (512, 10.0, 0)
    assert purchase.environment == {"STAGE": "dev"}
    gateway = functions.gateway
    assert (gateway.port, gateway.cors_origins) == (3000, ["http://localhost:5173"])
    assert gateway.jwt_audience == ["vending"]
    assert (gateway.throttle_rate, gateway.throttle_burst) == (5.0, 10)
    orders = functions.queues["orders"]
    assert (orders.visibility_timeout_s, orders.max_receive_count) == (45.0, 3)
    assert orders.dead_letter == "orders-dlq"


def test_api_keys_come_from_the_environment(tmp_path: Path) -> None:
    env = {
        "LAKELET__FUNCTIONS__GATEWAY__API_KEYS": '["k1", "k2"]',
        "LAKELET__FUNCTIONS__MAX_CONCURRENCY": "3",
    }
    functions = load_settings(tmp_path, env=env).functions
    assert functions.gateway.api_keys == ["k1", "k2"]
    assert functions.max_concurrency == 3


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[functions]\napp = "app"\n', ["functions.app = 'app'", "'module:attribute'"]),
        ("[functions]\nmax_concurrency = 0\n", ["functions.max_concurrency = 0", "at least 1"]),
        ('[functions]\nregion = "europe"\n', ["functions.region = 'europe'"]),
        ('[functions]\naccount_id = "1234"\n', ["functions.account_id", "12 digits"]),
        ("[functions.gateway]\nprot = 1\n", ["'functions.gateway.prot'", "did you mean 'port'"]),
        ("[functions.gateway]\nport = 70000\n", ["functions.gateway.port = 70000", "0 to 65535"]),
        ("[functions.gateway]\nthrottle_rate = 0\n", ["functions.gateway.throttle_rate"]),
        ('[functions.gateway]\ncors_methods = ["FETCH"]\n', ["cors_methods: 'FETCH'"]),
        (
            '[functions.gateway]\njwks_url = "https://x"\njwks_file = "j.json"\n',
            ["jwks_url and jwks_file"],
        ),
        (
            "[functions.settings.purchase]\nmemory_mb = 64\n",
            ["functions.settings.purchase.memory_mb = 64", "128 to 10240"],
        ),
        (
            '[functions.settings.purchase]\ntimeout_s = "3"\n',
            ["functions.settings.purchase.timeout_s must be a number"],
        ),
        ("[functions.settings.purchase]\ntimeout_s = 901\n", ["timeout_s = 901.0"]),
        ("[functions.settings.purchase]\nretries = 3\n", ["retries = 3", "0 to 2"]),
        (
            "[functions.settings.purchase]\nenvironment = { N = 1 }\n",
            ["functions.settings.purchase.environment.N = 1", "must be a string"],
        ),
        (
            '[functions.settings.purchase]\nenvironment = { AWS_REGION = "x" }\n',
            ["environment.AWS_REGION", "Lambda reserves"],
        ),
        ('[functions.settings."bad name"]\n', ["settings.bad name"]),
        (
            "[functions.queues.orders]\nmax_receive_count = 3\n",
            ["functions.queues.orders.max_receive_count and dead_letter", "needs both"],
        ),
        (
            '[functions.queues.orders]\nmax_receive_count = 3\ndead_letter = "orders"\n',
            ["functions.queues.orders.dead_letter = 'orders'", "its own dead-letter queue"],
        ),
        (
            "[functions.queues.orders]\nvisibility_timeout_s = 50000\n",
            ["visibility_timeout_s = 50000.0", "0 to 43200"],
        ),
    ],
)
def test_bad_functions_settings_name_the_key(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, env={})
    for fragment in fragments:
        assert fragment in str(info.value)
    assert "lakelet.toml" in str(info.value)


def test_a_bad_functions_value_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    env = {"LAKELET__FUNCTIONS__GATEWAY__PORT": "-1"}
    with pytest.raises(ConfigError, match="environment variable LAKELET__FUNCTIONS__GATEWAY__PORT"):
        load_settings(tmp_path, env=env)
