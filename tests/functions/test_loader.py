"""Loading ``[functions] app`` from the project folder, and the file's per-function
overrides; every mistake is a ConfigError naming the key and the file."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakelet.errors import ConfigError
from lakelet.functions import App
from lakelet.functions.loader import load_app
from lakelet.project import Project

APP = """\
import lakelet

app = lakelet.App("vending")
other = 42


@app.route("/purchase", methods=["POST"], memory_mb=256)
def purchase(event, context):
    return {"statusCode": 200}


@app.on_queue("orders", environment={"MODE": "app", "KEEP": "yes"})
def fulfil(event, context):
    return None
"""


@pytest.fixture(autouse=True)
def isolated_imports() -> Iterator[None]:
    """Each test's app module is forgotten afterwards, with the folder it came from."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def project(tmp_path: Path, toml: str, files: dict[str, str] | None = None) -> Project:
    folder = tmp_path / "p"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lakelet.toml").write_text(textwrap.dedent(toml), encoding="utf-8")
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return Project.open(folder, env={})


def test_the_app_is_imported_from_the_project_folder(tmp_path: Path) -> None:
    app = load_app(project(tmp_path, '[functions]\napp = "shop:app"\n', {"shop.py": APP}))
    assert isinstance(app, App)
    assert app.name == "vending"
    assert sorted(app.functions) == ["fulfil", "purchase"]
    assert app.get("purchase").memory_mb == 256
    assert app.get("purchase").handler_ref == "shop:purchase"
    assert str(tmp_path / "p") in sys.path  # so forked workers find handler_ref too


def test_a_module_in_a_package_and_a_dotted_attribute(tmp_path: Path) -> None:
    files = {
        "svc/__init__.py": "",
        "svc/api.py": APP + "\nclass Holder:\n    app = app\n",
    }
    app = load_app(project(tmp_path, '[functions]\napp = "svc.api:Holder.app"\n', files))
    assert app.name == "vending"


def test_overrides_from_the_file_win_over_the_decorators(tmp_path: Path) -> None:
    toml = """\
        [functions]
        app = "shop2:app"
        [functions.settings.purchase]
        timeout_s = 10
        reserved_concurrency = 2
        [functions.settings.fulfil]
        retries = 0
        dead_letter_queue = "orders-failed"
        environment = { MODE = "file", EXTRA = "1" }
    """
    loaded = load_app(project(tmp_path, toml, {"shop2.py": APP}))
    purchase = loaded.get("purchase")
    assert purchase.timeout_s == 10.0
    assert purchase.reserved_concurrency == 2
    assert purchase.memory_mb == 256  # not overridden: the decorator's value stays
    fulfil = loaded.get("fulfil")
    assert fulfil.retries == 0
    assert fulfil.dead_letter_queue == "orders-failed"
    assert fulfil.environment == {"MODE": "file", "KEEP": "yes", "EXTRA": "1"}
    original = sys.modules["shop2"].app
    assert original.get("purchase").timeout_s == 3.0  # the module's App is untouched
    assert loaded.routes == original.routes


def test_two_projects_with_the_same_module_name_get_their_own_app(tmp_path: Path) -> None:
    one = project(tmp_path / "1", '[functions]\napp = "app:app"\n', {"app.py": APP})
    other = APP.replace('App("vending")', 'App("kiosk")')
    two = project(tmp_path / "2", '[functions]\napp = "app:app"\n', {"app.py": other})
    assert load_app(one).name == "vending"
    assert load_app(two).name == "kiosk"


@pytest.mark.parametrize(
    ("toml", "files", "fragments"),
    [
        ("[project]\nname = 'x'\n", {}, ["[functions] app is not set", "lakelet.toml"]),
        (
            '[functions]\napp = "missing_mod:app"\n',
            {},
            ["no module 'missing_mod'", "functions.app", "lakelet.toml"],
        ),
        (
            '[functions]\napp = "shop3:ap"\n',
            {"shop3.py": APP},
            ["has no attribute 'ap'", "it defines App(s): app"],
        ),
        (
            '[functions]\napp = "shop4:other"\n',
            {"shop4.py": APP},
            ["of type int, not a lakelet.App"],
        ),
        (
            '[functions]\napp = "shop5:app"\n[functions.settings.purchse]\ntimeout_s = 1\n',
            {"shop5.py": APP},
            ["[functions.settings.purchse]", "no function 'purchse'", "did you mean 'purchase'"],
        ),
        (
            '[functions]\napp = "broken:app"\n',
            {"broken.py": "import lakelet\napp = lakelet.App('x'\n"},
            ["broken.py, line", "syntax error"],
        ),
        (
            '[functions]\napp = "needs:app"\n',
            {"needs.py": "import not_installed_anywhere\n"},
            ["importing the app module 'needs' failed", "not_installed_anywhere", "needs.py"],
        ),
        (
            '[functions]\napp = "raises:app"\n',
            {"raises.py": "x = 1 / 0\n"},
            ["raised ZeroDivisionError", "raises.py, line 1"],
        ),
        (
            '[functions]\napp = "dup:app"\n',
            {"dup.py": APP + "\n@app.function()\ndef purchase(event, context):\n    pass\n"},
            ["function 'purchase' is registered twice"],
        ),
    ],
)
def test_mistakes_are_config_errors_that_say_what_to_fix(
    tmp_path: Path, toml: str, files: dict[str, str], fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        load_app(project(tmp_path, toml, files))
    for fragment in fragments:
        assert fragment in str(info.value)
    assert info.value.exit_code == 2
