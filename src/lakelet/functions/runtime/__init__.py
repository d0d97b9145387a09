"""The forked-worker functions runtime (see :mod:`lakelet.functions.runtime.invoker`).

Kept import-light: the zygote runs ``python -m lakelet.functions.runtime.zygote`` and
must not pay for SQLAlchemy or the pool to start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakelet.functions.runtime.invoker import Runtime, RuntimeOptions, open_runtime

__all__ = ["Runtime", "RuntimeOptions", "open_runtime"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from lakelet.functions.runtime import invoker

        return getattr(invoker, name)
    raise AttributeError(name)
