"""Which incoming column types an existing DuckDB column accepts without loss.

Appending or merging into a table keeps the table's types (schema on write), so each
incoming column must convert to its target column exactly: the same type, or a wider
one (``INTEGER`` into ``BIGINT``, ``DECIMAL(10,2)`` into ``DECIMAL(18,4)``, ``FLOAT`` into
``DOUBLE``, seconds into microseconds). Anything else (text into numbers, doubles into
integers or decimals) would be a silent coercion and is refused. Types are compared by
the names DuckDB reports (``DESCRIBE``), so nested types must match exactly.
"""

from __future__ import annotations

import re

# Integer types by (signed, bytes, decimal digits of the largest value). A value fits a
# type of the same signedness and at least as many bytes, or a larger signed type.
_INTEGERS: dict[str, tuple[bool, int, int]] = {
    "TINYINT": (True, 1, 3),
    "SMALLINT": (True, 2, 5),
    "INTEGER": (True, 4, 10),
    "BIGINT": (True, 8, 19),
    "HUGEINT": (True, 16, 39),
    "UTINYINT": (False, 1, 3),
    "USMALLINT": (False, 2, 5),
    "UINTEGER": (False, 4, 10),
    "UBIGINT": (False, 8, 20),
    "UHUGEINT": (False, 16, 39),
}
# Integers whose every value a DOUBLE represents exactly (53-bit mantissa).
_DOUBLE_EXACT_BYTES = 4
_TIMESTAMPS = ["TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP", "TIMESTAMP_NS"]
_DECIMAL_RE = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


def widens(source: str, target: str) -> bool:
    """True if every ``source`` value is stored unchanged in a ``target`` column."""
    source, target = source.upper(), target.upper()
    if source == target:
        return True
    if source in _INTEGERS:
        return _integer_widens(source, target)
    if source == "FLOAT":
        return target == "DOUBLE"
    if source in _TIMESTAMPS and target in _TIMESTAMPS:
        return _TIMESTAMPS.index(source) <= _TIMESTAMPS.index(target)
    if source == "TIME" and target == "TIME_NS":
        return True
    if (src := _decimal(source)) and (dst := _decimal(target)):
        precision, scale = src
        precision_to, scale_to = dst
        return scale_to >= scale and precision_to - scale_to >= precision - scale
    return False


def _integer_widens(source: str, target: str) -> bool:
    signed, size, digits = _INTEGERS[source]
    if target in _INTEGERS:
        signed_to, size_to, _ = _INTEGERS[target]
        if signed == signed_to:
            return size_to >= size
        return signed_to and size_to > size
    if target == "DOUBLE":
        return size <= _DOUBLE_EXACT_BYTES
    if decimal := _decimal(target):
        precision, scale = decimal
        return precision - scale >= digits
    return False


def _decimal(name: str) -> tuple[int, int] | None:
    match = _DECIMAL_RE.match(name)
    return (int(match.group(1)), int(match.group(2))) if match else None
