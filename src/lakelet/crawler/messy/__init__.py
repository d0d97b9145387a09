"""Messy CSV read automatically: encoding, dialect, layout, lenient parsing.

The public entry point is :func:`lakelet.crawler.messy.reader.read_csv_bytes` (and
``read_csv_file``); every decision it takes carries its reason, for ``--explain``.
"""
