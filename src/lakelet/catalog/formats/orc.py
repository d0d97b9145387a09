"""ORC files → Arrow through pyarrow, one stripe at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import pyarrow as pa

from lakelet.errors import CrawlError


def read_orc(stream: IO[bytes]) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    import pyarrow.orc as orc

    try:
        file = orc.ORCFile(stream)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CrawlError(f"not a readable ORC file: {exc}") from exc

    def batches() -> Iterator[pa.RecordBatch]:
        for index in range(file.nstripes):
            yield file.read_stripe(index)

    return file.schema, batches()
