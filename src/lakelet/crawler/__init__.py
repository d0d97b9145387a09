"""The crawler room: schema on read over files in the lake.

A crawler (``[crawlers.NAME]`` in ``lakelet.toml``, or a path on the command line)
lists files through the object store, groups them into tables by folder, infers each
table's format, dialect, schema and Hive partitions, and records a new catalog version
of every table whose definition changed.
"""

from lakelet.crawler.crawler import Progress, crawler_spec, run_crawler
from lakelet.crawler.report import CrawlReport, TableReport
from lakelet.crawler.undo import undo_crawl

__all__ = [
    "CrawlReport",
    "Progress",
    "TableReport",
    "crawler_spec",
    "run_crawler",
    "undo_crawl",
]
