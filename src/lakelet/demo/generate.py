"""Generated vending-machine data for the reference scenario, with a known set of faults.

Everything derives from one seed, so a run is reproducible byte for byte. Sales are
date-partitioned CSV (``raw/sales/date=YYYY-MM-DD/…csv``), the machine register is one
JSON-lines file (``raw/machines/machines.jsonl``). A handful of rows are broken on
purpose, each declared in :attr:`Dataset.malformed` with its file, line and kind, so the
pipeline's rejects can be reconciled against what was injected.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

RAW_BUCKET = "raw"
SALES_PREFIX = "sales/"
MACHINES_KEY = "machines/machines.jsonl"
DEFAULT_END = date(2026, 11, 27)

SALES_COLUMNS = (
    "transaction_id",
    "sold_at",
    "machine_id",
    "sku",
    "product",
    "category",
    "quantity",
    "unit_price",
    "payment_method",
)

CENT = Decimal("0.01")
FIVE_CENTS = Decimal("0.05")


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    list_price: Decimal
    popularity: float


@dataclass(frozen=True)
class Machine:
    machine_id: str
    city: str
    site: str
    installed: date
    lat: float
    lon: float

    def to_json(self) -> dict[str, Any]:
        return {
            "machine_id": self.machine_id,
            "city": self.city,
            "site": self.site,
            "installed": self.installed.isoformat(),
            "location": {"lat": self.lat, "lon": self.lon},
        }


@dataclass(frozen=True)
class Sale:
    transaction_id: str
    sold_at: datetime
    machine_id: str
    product: Product
    quantity: int
    unit_price: Decimal
    payment_method: str

    def fields(self) -> list[str]:
        return [
            self.transaction_id,
            self.sold_at.isoformat(timespec="seconds"),
            self.machine_id,
            self.product.sku,
            self.product.name,
            self.product.category,
            str(self.quantity),
            str(self.unit_price),
            self.payment_method,
        ]


@dataclass(frozen=True)
class GeneratedFile:
    """One object to land: ``data_rows`` counts every line after the header."""

    bucket: str
    key: str
    content: bytes
    data_rows: int

    @property
    def location(self) -> str:
        return f"{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Malformation:
    """A row broken on purpose; ``line`` is 1-based and counts the header line."""

    bucket: str
    key: str
    line: int
    kind: str
    description: str

    @property
    def location(self) -> str:
        return f"{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Dataset:
    """What the generator wrote: files, declared malformed rows, and the reference data."""

    seed: int
    start: date
    end: date
    machines: tuple[Machine, ...]
    products: tuple[Product, ...]
    files: tuple[GeneratedFile, ...]
    malformed: tuple[Malformation, ...] = field(default_factory=tuple)

    def files_under(self, prefix: str, bucket: str = RAW_BUCKET) -> list[GeneratedFile]:
        return [f for f in self.files if f.bucket == bucket and f.key.startswith(prefix)]

    def rows_under(self, prefix: str, bucket: str = RAW_BUCKET) -> int:
        return sum(f.data_rows for f in self.files_under(prefix, bucket))

    def malformed_under(self, prefix: str, bucket: str = RAW_BUCKET) -> list[Malformation]:
        return [m for m in self.malformed if m.bucket == bucket and m.key.startswith(prefix)]

    def manifest(self) -> dict[str, Any]:
        """A JSON-ready description of the files and faults, without the contents."""
        return {
            "seed": self.seed,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "machines": len(self.machines),
            "products": len(self.products),
            "files": [
                {"file": f.location, "bytes": len(f.content), "rows": f.data_rows}
                for f in self.files
            ],
            "malformed": [
                {"file": m.location, "line": m.line, "kind": m.kind, "description": m.description}
                for m in self.malformed
            ],
        }


# (name, category, list price, relative popularity)
PRODUCTS: tuple[tuple[str, str, str, float], ...] = (
    ("Still Water 0.5L", "water", "1.50", 9.0),
    ("Still Water 1L", "water", "2.00", 4.0),
    ("Sparkling Water 0.5L", "water", "1.60", 5.0),
    ("Water, Lemon & Lime 0.5L", "water", "1.80", 3.0),
    ("Cola 0.33L", "soda", "2.00", 8.0),
    ("Cola Zero 0.33L", "soda", "2.00", 7.0),
    ("Cola 0.5L", "soda", "2.60", 5.0),
    ("Orange Soda 0.33L", "soda", "1.90", 3.5),
    ("Lemon Soda 0.33L", "soda", "1.90", 3.0),
    ("Ginger Ale 0.33L", "soda", "2.10", 1.5),
    ("Root Beer 0.33L", "soda", "2.10", 1.0),
    ("Tonic Water 0.2L", "soda", "1.70", 0.8),
    ("Orange Juice 0.33L", "juice", "2.50", 3.5),
    ("Apple Juice 0.33L", "juice", "2.40", 3.0),
    ("Multivitamin Juice 0.33L", "juice", "2.60", 1.8),
    ("Tomato Juice 0.2L", "juice", "2.20", 0.6),
    ("Energy Drink 0.25L", "energy", "2.80", 4.5),
    ("Energy Drink Sugar-Free 0.25L", "energy", "2.80", 2.5),
    ("Energy Drink 0.5L", "energy", "3.60", 2.0),
    ("Iced Coffee 0.25L", "coffee", "3.20", 3.0),
    ("Cold Brew 0.25L", "coffee", "3.80", 1.5),
    ("Espresso Can 0.15L", "coffee", "3.00", 1.2),
    ("Iced Tea Peach 0.5L", "tea", "2.30", 4.0),
    ("Iced Tea Lemon 0.5L", "tea", "2.30", 3.5),
    ("Green Tea 0.5L", "tea", "2.50", 2.0),
    ("Matcha Latte 0.25L", "tea", "4.00", 0.9),
    ("Isotonic Orange 0.5L", "sports", "2.70", 2.5),
    ("Isotonic Berry 0.5L", "sports", "2.70", 2.0),
    ("Protein Shake Chocolate 0.33L", "sports", "3.90", 1.3),
    ("Coconut Water 0.33L", "sports", "3.40", 1.0),
)

# (city, latitude, longitude)
CITIES: tuple[tuple[str, float, float], ...] = (
    ("Lyon", 45.764, 4.836),
    ("Berlin", 52.520, 13.405),
    ("Madrid", 40.417, -3.704),
    ("Milan", 45.464, 9.190),
    ("Amsterdam", 52.368, 4.904),
    ("Vienna", 48.208, 16.373),
    ("Lisbon", 38.722, -9.139),
)

# site type → (mean sales per day, price factor, weekend factor, cash share)
SITES: dict[str, tuple[int, str, float, float]] = {
    "airport": (70, "1.25", 1.1, 0.10),
    "station": (62, "1.10", 0.9, 0.25),
    "office": (45, "1.00", 0.25, 0.15),
    "university": (50, "0.95", 0.3, 0.25),
    "hospital": (48, "1.00", 0.9, 0.30),
    "gym": (34, "1.05", 1.3, 0.20),
    "mall": (58, "1.10", 1.4, 0.30),
}

PAYMENT_METHODS = ("card", "mobile", "cash", "voucher")
MIN_ROWS_FOR_FAULT = 40


def generate(
    *,
    seed: int = 7,
    days: int = 14,
    machines: int = 20,
    end: date = DEFAULT_END,
    malformed: bool = True,
) -> Dataset:
    """Generate ``days`` days of sales ending on ``end`` for ``machines`` machines."""
    if days < 1:
        raise ValueError("days must be at least 1")
    if machines < 1:
        raise ValueError("machines must be at least 1")
    rng = random.Random(seed)
    products = _products()
    start = end - timedelta(days=days - 1)
    fleet = _machines(rng, machines, start)
    day_files: list[tuple[str, list[Sale]]] = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        sales = _day_sales(rng, day, fleet, products)
        folder = f"{SALES_PREFIX}date={day.isoformat()}/"
        cut = datetime.combine(day, time(14, 0))
        early = [s for s in sales if s.sold_at < cut]
        if offset % 4 == 2 and 0 < len(early) < len(sales):
            # Some days arrive as two uploads, one early in the afternoon, one at night.
            day_files.append((f"{folder}sales-1.csv", early))
            day_files.append((f"{folder}sales-2.csv", sales[len(early) :]))
        else:
            day_files.append((f"{folder}sales.csv", sales))
    rows = {key: [s.fields() for s in sales] for key, sales in day_files}
    lines = {key: [_csv_line(fields) for fields in day] for key, day in rows.items()}
    faults = _inject_sales_faults(rng, rows, lines) if malformed else []
    header = _csv_line(list(SALES_COLUMNS))
    files = [
        GeneratedFile(RAW_BUCKET, key, "".join([header, *day]).encode("utf-8"), len(day))
        for key, day in lines.items()
    ]
    machine_lines = [json.dumps(m.to_json()) for m in fleet]
    if malformed:
        line, text = _broken_machine_line(fleet)
        machine_lines.insert(line - 1, text)
        faults.append(
            Malformation(
                RAW_BUCKET,
                MACHINES_KEY,
                line,
                "invalid_json",
                "a record cut off mid-write (unterminated string)",
            )
        )
    machines_bytes = ("\n".join(machine_lines) + "\n").encode("utf-8")
    files.append(GeneratedFile(RAW_BUCKET, MACHINES_KEY, machines_bytes, len(machine_lines)))
    return Dataset(
        seed=seed,
        start=start,
        end=end,
        machines=tuple(fleet),
        products=tuple(products),
        files=tuple(files),
        malformed=tuple(faults),
    )


def _products() -> list[Product]:
    return [
        Product(f"SKU-{i:03d}", name, category, Decimal(price), popularity)
        for i, (name, category, price, popularity) in enumerate(PRODUCTS, start=1)
    ]


def _machines(rng: random.Random, count: int, first_day: date) -> list[Machine]:
    site_names = list(SITES)
    fleet = []
    for i in range(1, count + 1):
        city, lat, lon = CITIES[(i - 1) % len(CITIES)]
        site = site_names[(i * 3 + (i - 1) // len(CITIES)) % len(site_names)]
        installed = first_day - timedelta(days=rng.randint(60, 1500))
        fleet.append(
            Machine(
                machine_id=f"VM-{i:03d}",
                city=city,
                site=site,
                installed=installed,
                lat=round(lat + rng.uniform(-0.05, 0.05), 5),
                lon=round(lon + rng.uniform(-0.05, 0.05), 5),
            )
        )
    return fleet


def _day_sales(
    rng: random.Random, day: date, fleet: Sequence[Machine], products: Sequence[Product]
) -> list[Sale]:
    weights = [p.popularity for p in products]
    weekend = day.weekday() >= 5
    sales: list[Sale] = []
    for machine in fleet:
        mean, price_factor, weekend_factor, cash_share = SITES[machine.site]
        volume = mean * (weekend_factor if weekend else 1.0) * rng.uniform(0.75, 1.25)
        count = max(1, round(volume))
        times = sorted(_sale_time(rng, day) for _ in range(count))
        payments = {
            "card": 0.50 - cash_share / 2,
            "mobile": 0.45 - cash_share / 2,
            "cash": cash_share,
            "voucher": 0.05,
        }
        for seq, sold_at in enumerate(times, start=1):
            product = rng.choices(products, weights)[0]
            quantity = rng.choices((1, 2, 3), (0.86, 0.11, 0.03))[0]
            sales.append(
                Sale(
                    transaction_id=f"T{day:%Y%m%d}-{machine.machine_id[3:]}-{seq:04d}",
                    sold_at=sold_at,
                    machine_id=machine.machine_id,
                    product=product,
                    quantity=quantity,
                    unit_price=_price(product.list_price, price_factor),
                    payment_method=rng.choices(PAYMENT_METHODS, list(payments.values()))[0],
                )
            )
    sales.sort(key=lambda s: (s.sold_at, s.transaction_id))
    return sales


def _sale_time(rng: random.Random, day: date) -> datetime:
    """Sales cluster around lunch and the evening commute, between 06:00 and 23:00."""
    hour = rng.triangular(6.0, 23.0, 13.0) if rng.random() < 0.6 else rng.uniform(15.0, 20.0)
    seconds = int(hour * 3600)
    return datetime.combine(day, time()) + timedelta(seconds=seconds)


def _price(list_price: Decimal, factor: str) -> Decimal:
    """Site prices are the list price times the site factor, rounded to 5 cents."""
    raw = list_price * Decimal(factor) / FIVE_CENTS
    return (raw.quantize(Decimal(1), rounding=ROUND_HALF_UP) * FIVE_CENTS).quantize(CENT)


# kind → how a good row is broken
FAULTS: tuple[tuple[str, str], ...] = (
    ("too_many_fields", "product name with an unquoted comma"),
    ("too_few_fields", "row cut short after the quantity"),
    ("non_numeric_quantity", "quantity written as a word"),
    ("non_numeric_price", "unit price with a currency suffix"),
    ("bad_timestamp", "sold_at is not a valid timestamp"),
    ("too_few_fields", "payment method missing"),
    ("non_numeric_quantity", "quantity left as a placeholder"),
)


def _inject_sales_faults(
    rng: random.Random, rows: dict[str, list[list[str]]], lines: dict[str, list[str]]
) -> list[Malformation]:
    """Break one row per fault kind, each in a different file of enough rows.

    One fault per file keeps every column's type inferable: a crawler tolerates a stray
    bad value in a column, not several (see the crawler's majority rule). So a small
    dataset with fewer such files than fault kinds gets fewer faults. A broken row
    replaces the sale it garbles, so a file keeps its row count.
    """
    eligible = [key for key in sorted(rows) if len(rows[key]) >= MIN_ROWS_FOR_FAULT]
    faults = []
    for (kind, description), key in zip(FAULTS, rng.sample(eligible, len(eligible)), strict=False):
        # Not in the first quarter of a file, where readers sample to sniff the dialect.
        index = rng.randrange(len(rows[key]) // 4, len(rows[key]))
        lines[key][index] = _broken_line(kind, description, rows[key][index])
        faults.append(Malformation(RAW_BUCKET, key, index + 2, kind, description))
    return faults


def _broken_line(kind: str, description: str, fields: list[str]) -> str:
    """One CSV line holding ``fields`` broken as ``kind`` says."""
    broken = list(fields)
    product = SALES_COLUMNS.index("product")
    quantity = SALES_COLUMNS.index("quantity")
    price = SALES_COLUMNS.index("unit_price")
    sold_at = SALES_COLUMNS.index("sold_at")
    if kind == "too_many_fields":
        # An upstream writer that does not quote: the comma splits the name in two.
        head, _, tail = broken[product].partition(" ")
        broken[product] = f"{head}, {tail}"
        return ",".join(broken) + "\n"
    if kind == "too_few_fields":
        cut = quantity + 1 if "quantity" in description else len(broken) - 1
        return _csv_line(broken[:cut])
    if kind == "non_numeric_quantity":
        broken[quantity] = "two" if "word" in description else "?"
    elif kind == "non_numeric_price":
        broken[price] = f"{broken[price]} EUR"
    elif kind == "bad_timestamp":
        broken[sold_at] = broken[sold_at][:10] + "T25:61:00"
    else:
        raise ValueError(f"unknown fault kind {kind!r}")
    return _csv_line(broken)


def _broken_machine_line(fleet: Sequence[Machine]) -> tuple[int, str]:
    """A retired machine's record, cut off mid-write; it sold nothing in the period."""
    record = json.dumps(
        {
            "machine_id": f"VM-{len(fleet) + 1:03d}",
            "city": "Lisbon",
            "site": "station",
            "installed": "2019-03-01",
            "location": {"lat": 38.71, "lon": -9.14},
        }
    )
    return (len(fleet) + 2) // 2, record[: len(record) // 2]


def _csv_line(fields: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue()
