"""An app whose module fails to import where ``RT_BREAK`` is set (in the zygote)."""

from __future__ import annotations

import os
from typing import Any

import lakelet

if os.environ.get("RT_BREAK"):
    raise ImportError("the database driver is missing")

app = lakelet.App("rt_broken")


@app.function()
def handler(event: Any, context: Any) -> str:
    return "imported fine"
