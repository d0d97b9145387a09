"""The catalog: Iceberg tables and crawled raw tables, by ``database.table`` name."""

from lakelet.catalog.catalog import Catalog, TableEntry, WriteResult
from lakelet.catalog.names import TableName
from lakelet.catalog.raw import Column, RawTable

__all__ = ["Catalog", "Column", "RawTable", "TableEntry", "TableName", "WriteResult"]
