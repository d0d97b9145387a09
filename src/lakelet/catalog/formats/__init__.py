"""File formats DuckDB cannot read by itself here (Avro, ORC), read into Arrow.

DuckDB's avro and orc extensions cannot be downloaded on offline machines, so these
readers go through fastavro and pyarrow and hand DuckDB Arrow data instead.
"""

from lakelet.catalog.formats.avro import avro_arrow_schema, read_avro
from lakelet.catalog.formats.orc import read_orc
from lakelet.catalog.formats.types import duckdb_columns

__all__ = ["avro_arrow_schema", "duckdb_columns", "read_avro", "read_orc"]
