"""Group a Spark result as an Iceberg table's partition spec does, one value per file.

pyiceberg's ``add_files`` gives a file its partition from the file's column bounds: it
takes the transform of the lowest and of the highest value and refuses the file when
they differ. So every file must hold rows of one partition, and nulls apart from
values (bounds ignore nulls). Spark writes a file per value of the columns a write is
partitioned by, and drops those columns from the files: each partition field becomes
a helper column, a Spark expression equal for the rows the transform puts together.

Only transforms that keep order can be told from bounds: identity, year, month, day,
hour and truncate. ``bucket`` and ``void`` cannot (pyiceberg refuses them), nor can a
field whose source is nested or missing from the result: such a job writes through
pyiceberg as before.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

DAY_MICROS = 86_400_000_000
HOUR_MICROS = 3_600_000_000
HELPER = "__lakelet_partition_{}"


def partition_keys(table: Any, columns: list[str]) -> list[str] | None:
    """Spark SQL expressions over the result's ``columns`` that together tell the
    table's partitions apart (none for an unpartitioned table), or ``None`` when the
    spec has a field they cannot express."""
    spec = table.spec()
    schema = table.schema()
    by_name = {c.lower(): c for c in columns}
    keys: list[str] = []
    for field in spec.fields:
        source = schema.find_field(field.source_id)
        name = schema.find_column_name(field.source_id)
        column = by_name.get(name.lower()) if name else None
        if column is None:  # nested, dropped, or not in the result
            return None
        key = transform_keys(field.transform, source.field_type, _quote(column))
        if key is None:
            return None
        keys.extend(key)
    return keys


def transform_keys(transform: Any, source_type: Any, column: str) -> list[str] | None:
    """Expressions equal exactly for the values ``transform`` maps to one partition."""
    from pyiceberg import transforms as t
    from pyiceberg import types

    if isinstance(transform, t.IdentityTransform):
        return [column]
    if isinstance(transform, t.TruncateTransform):
        return _truncate(transform.width, source_type, column)
    if not isinstance(
        transform, (t.YearTransform, t.MonthTransform, t.DayTransform, t.HourTransform)
    ):
        return None  # bucket, void: a file's bounds cannot tell its partition
    utc = isinstance(source_type, types.TimestamptzType)
    if isinstance(source_type, types.DateType):
        day = column
    elif isinstance(source_type, types.TimestampType):
        day = f"CAST({column} AS DATE)"  # wall clock, whatever the session's time zone
    elif utc:  # Iceberg counts days and hours of UTC
        day = f"date_from_unix_date(CAST(floor(unix_micros({column}) / {DAY_MICROS}) AS INT))"
    else:
        return None
    if isinstance(transform, t.YearTransform):
        return [f"year({day})"]
    if isinstance(transform, t.MonthTransform):
        return [f"trunc({day}, 'MM')"]
    if isinstance(transform, t.DayTransform):
        return [day]
    if utc:
        return [f"floor(unix_micros({column}) / {HOUR_MICROS})"]
    if isinstance(source_type, types.TimestampType):
        return [day, f"hour({column})"]
    return None


def _truncate(width: int, source_type: Any, column: str) -> list[str] | None:
    from pyiceberg import types

    if isinstance(source_type, (types.IntegerType, types.LongType)):
        return [f"{column} - pmod({column}, {width})"]
    if isinstance(source_type, (types.StringType, types.BinaryType)):
        return [f"substring({column}, 1, {width})"]  # code points; bytes for binary
    if isinstance(source_type, types.DecimalType):  # the unscaled value is truncated
        step = Decimal(width).scaleb(-source_type.scale)
        unit = f"CAST('{step}' AS DECIMAL(38, {source_type.scale}))"
        return [f"{column} - pmod({column}, {unit})"]
    return None


def _quote(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"
