"""Find a project's app (``[functions] app = "module:attribute"``) and apply its settings.

The module is imported with the project folder first on ``sys.path``, so ``app.py``
next to ``lakelet.toml`` is found the way Lambda finds a handler in its task root, and
workers forked later resolve every ``handler_ref`` the same way. Per-function
``[functions.settings.NAME]`` overrides win over the decorators' arguments.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from lakelet.config import CONFIG_FILE, FunctionSettingsSection, FunctionsSection
from lakelet.errors import ConfigError, LakeletError
from lakelet.functions.model import App, FunctionSpec

if TYPE_CHECKING:
    from lakelet.project import Project


def load_app(project: Project) -> App:
    """The project's :class:`App` with its ``lakelet.toml`` overrides applied."""
    section = project.settings.functions
    source = str(project.root / CONFIG_FILE)
    if section.app is None:
        raise ConfigError(
            f'{source}: [functions] app is not set; add app = "module:attribute" '
            '(for example app = "app:app" for app = lakelet.App(...) in app.py)'
        )
    app = import_app(section.app, project.root, source=source)
    return apply_settings(app, section, source=source)


def import_app(ref: str, root: Path, *, source: str = CONFIG_FILE) -> App:
    """Import ``module:attribute`` from ``root`` and check that it is an :class:`App`."""
    module_name, sep, attribute = ref.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"{source}: functions.app = {ref!r}: expected 'module:attribute'")
    module = _import(module_name, root.resolve(), source=source, ref=ref)
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            apps = [name for name, v in vars(module).items() if isinstance(v, App)]
            hint = f"; it defines App(s): {', '.join(apps)}" if apps else ""
            raise ConfigError(
                f"{source}: functions.app = {ref!r}: module {module_name!r} "
                f"({_file_of(module)}) has no attribute {attribute!r}{hint}"
            )
        value = getattr(value, part)
    if not isinstance(value, App):
        raise ConfigError(
            f"{source}: functions.app = {ref!r} refers to a value of type "
            f"{type(value).__name__}, not a lakelet.App; point it at the object made by "
            'app = lakelet.App("name")'
        )
    return value


def apply_settings(app: App, section: FunctionsSection, *, source: str = CONFIG_FILE) -> App:
    """A copy of ``app`` whose functions carry their ``[functions.settings.NAME]``
    overrides; the environment is merged, the file's values winning."""
    functions = dict(app.functions)
    for name, override in section.settings.items():
        spec = functions.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, list(functions), n=1, cutoff=0.5)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"the app's functions: {', '.join(sorted(functions)) or 'none'}"
            )
            raise ConfigError(
                f"{source}: [functions.settings.{name}]: app {app.name!r} has no function "
                f"{name!r}; {hint}"
            )
        functions[name] = _override(spec, override)
    return dataclasses.replace(app, functions=functions)


def _override(spec: FunctionSpec, override: FunctionSettingsSection) -> FunctionSpec:
    changes: dict[str, Any] = {
        f.name: getattr(override, f.name)
        for f in dataclasses.fields(override)
        if f.name != "environment" and getattr(override, f.name) is not None
    }
    if override.environment:
        changes["environment"] = {**spec.environment, **override.environment}
    return dataclasses.replace(spec, **changes)


def _import(module_name: str, root: Path, *, source: str, ref: str) -> ModuleType:
    if not sys.path or sys.path[0] != str(root):
        if str(root) in sys.path:
            sys.path.remove(str(root))
        sys.path.insert(0, str(root))
    _forget_foreign(module_name, root)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (
            module_name == exc.name or module_name.startswith(f"{exc.name}.")
        ):
            raise ConfigError(
                f"{source}: functions.app = {ref!r}: no module {module_name!r} in {root} "
                f"(looked for {module_name.replace('.', '/')}.py)"
            ) from None
        raise ConfigError(
            f"{source}: importing the app module {module_name!r} failed: {exc} "
            f"({_where(exc)}); install it or fix the import"
        ) from exc
    except SyntaxError as exc:
        raise ConfigError(
            f"{exc.filename}, line {exc.lineno}: syntax error in the app module: {exc.msg}"
        ) from None
    except LakeletError:
        raise  # a decorator's own error already says what is wrong and where
    except Exception as exc:
        raise ConfigError(
            f"{source}: importing the app module {module_name!r} raised "
            f"{type(exc).__name__}: {exc} ({_where(exc)})"
        ) from exc


def _forget_foreign(module_name: str, root: Path) -> None:
    """Drop a same-named module imported from elsewhere (another project opened
    earlier in this process), so the project's own file is the one imported."""
    top = module_name.split(".")[0]
    loaded = sys.modules.get(top)
    if loaded is None:
        return
    file = getattr(loaded, "__file__", None)
    if file is None:
        return  # built in: never the project's own
    path = Path(file).resolve()
    installed = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}
    if path.is_relative_to(root) or any(path.is_relative_to(p) for p in installed):
        return
    for name in [n for n in sys.modules if n == top or n.startswith(f"{top}.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def _file_of(module: ModuleType) -> str:
    return str(getattr(module, "__file__", None) or module.__name__)


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if "importlib" not in f.filename]
    frame = (user or frames)[-1] if frames else None
    return f"{frame.filename}, line {frame.lineno}" if frame else "at import"
