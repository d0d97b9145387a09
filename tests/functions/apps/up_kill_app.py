"""The kill-and-restart test's app: an idempotent handler of object-created events.

Every delivery is appended to ``$UP_OUT/deliveries.log`` (at least once: a key may
come twice). The effect is a file ``$UP_OUT/done/<hash>`` holding the key, created
atomically and only if absent (``os.link`` fails on an existing name), so a key
delivered again changes nothing; ``processed.log`` gets the key only when this
delivery created the file, so a key in it twice means the effect happened twice.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import lakelet

app = lakelet.App("up-kill")


@app.route("/health")
def health(event: Any, context: Any) -> dict[str, bool]:
    return {"ok": True}


@app.on_object_created(bucket="raw", prefix="in/", timeout_s=1)
def record(event: Any, context: Any) -> str:
    key = unquote_plus(event["Records"][0]["s3"]["object"]["key"])
    out = Path(os.environ["UP_OUT"])
    with (out / "deliveries.log").open("a", encoding="utf-8") as log:
        log.write(key + "\n")
    time.sleep(0.2)  # work in progress: a kill now leaves the event in flight, undone
    done = out / "done" / hashlib.sha256(key.encode()).hexdigest()
    staged = done.with_name(f"{done.name}.{context.aws_request_id}")
    staged.write_text(key, encoding="utf-8")
    try:
        os.link(staged, done)
    except FileExistsError:
        return "already done"
    finally:
        staged.unlink()
    with (out / "processed.log").open("a", encoding="utf-8") as log:
        log.write(key + "\n")
    return "done"
