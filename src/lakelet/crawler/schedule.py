"""Schedules in AWS's syntax: ``rate(5 minutes)`` and six-field ``cron(...)``, in UTC.

``cron(minutes hours day-of-month month day-of-week year)`` as EventBridge reads it:
``*`` any, ``,`` lists, ``-`` ranges, ``/`` increments; month names ``JAN``–``DEC``;
day-of-week ``1``–``7`` = ``SUN``–``SAT``; ``?`` in exactly one of the two day fields;
``L`` (last day of the month; ``nL`` in day-of-week: the last such weekday), ``W``
(``15W``: the weekday nearest the 15th, within the month; ``LW`` the last weekday) and
``#`` (``2#3``: the third Monday). ``rate(1 minute)`` takes the singular unit, other
values the plural, as AWS requires, so a schedule moves to the cloud unchanged.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from lakelet.errors import ConfigError

RATE_RE = re.compile(r"^rate\(\s*(\d+)\s+([a-z]+)\s*\)$")
CRON_RE = re.compile(r"^cron\((.*)\)$")
UNITS = {"minute": 60, "hour": 3600, "day": 86400}
MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
FIELDS = (
    ("minutes", 0, 59),
    ("hours", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 1, 7),
    ("year", 1970, 2199),
)
SEARCH_DAYS = 366 * 8


class ScheduleError(ConfigError):
    """A ``rate(...)`` or ``cron(...)`` expression AWS would reject."""


@dataclass(frozen=True)
class Rate:
    seconds: int


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: str
    months: frozenset[int]
    weekdays: str
    years: frozenset[int]


Schedule = Rate | Cron


def parse_schedule(expression: str) -> Schedule:
    text = expression.strip()
    rate = RATE_RE.match(text)
    if rate:
        return _rate(expression, int(rate.group(1)), rate.group(2))
    cron = CRON_RE.match(text)
    if cron:
        return _cron(expression, cron.group(1).split())
    raise ScheduleError(
        f"schedule {expression!r}: expected rate(VALUE UNIT) such as rate(5 minutes), or "
        "cron(MIN HOUR DAY MONTH WEEKDAY YEAR) such as cron(0 12 * * ? *)"
    )


def next_fire(
    schedule: Schedule | str, after: datetime, *, last: datetime | None = None
) -> datetime:
    """The first firing strictly after ``after`` (UTC). A rate fires every interval from
    ``last`` (its previous run), or at once when it never ran."""
    if isinstance(schedule, str):
        schedule = parse_schedule(schedule)
    after = after.astimezone(UTC)
    if isinstance(schedule, Rate):
        if last is None:
            return after
        return last.astimezone(UTC) + timedelta(seconds=schedule.seconds)
    start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = start.date()
    for _ in range(SEARCH_DAYS):
        if _day_matches(schedule, day):
            for hour in sorted(schedule.hours):
                for minute in sorted(schedule.minutes):
                    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                    if moment >= start:
                        return moment
        day += timedelta(days=1)
    raise ScheduleError(f"schedule {schedule!r} never fires in the next {SEARCH_DAYS // 366} years")


def is_due(expression: str, last_run: datetime | None, now: datetime) -> bool:
    """Whether a schedule fired since ``last_run`` (a crawler that never ran is due)."""
    if last_run is None:
        return True
    return next_fire(expression, last_run, last=last_run) <= now


# --- parsing -------------------------------------------------------------------------


def _rate(expression: str, value: int, unit: str) -> Rate:
    singular = unit.rstrip("s")
    if singular not in UNITS:
        raise ScheduleError(
            f"schedule {expression!r}: unit {unit!r} is not minute(s), hour(s) or day(s)"
        )
    if value < 1:
        raise ScheduleError(f"schedule {expression!r}: the value must be a positive integer")
    expected = singular if value == 1 else f"{singular}s"
    if unit != expected:
        raise ScheduleError(
            f"schedule {expression!r}: AWS requires rate({value} {expected}) "
            "(singular unit for 1, plural otherwise)"
        )
    return Rate(value * UNITS[singular])


def _cron(expression: str, parts: list[str]) -> Cron:
    if len(parts) != len(FIELDS):
        raise ScheduleError(
            f"schedule {expression!r}: cron() takes 6 fields (minutes hours day-of-month "
            f"month day-of-week year), got {len(parts)}"
        )
    minutes, hours, days, months, weekdays, years = (p.upper() for p in parts)
    if (days == "?") == (weekdays == "?"):
        raise ScheduleError(
            f"schedule {expression!r}: exactly one of day-of-month and day-of-week must be "
            "'?' (for example cron(0 12 * * ? *) or cron(0 12 ? * MON-FRI *))"
        )
    cron = Cron(
        _values(expression, minutes, FIELDS[0]),
        _values(expression, hours, FIELDS[1]),
        days,
        _values(expression, months, FIELDS[3], MONTHS),
        weekdays,
        _values(expression, years, FIELDS[5]),
    )
    if days != "?":
        _check_days(expression, days)
    if weekdays != "?":
        _check_weekdays(expression, weekdays)
    return cron


def _values(
    expression: str,
    text: str,
    spec: tuple[str, int, int],
    names: dict[str, int] | None = None,
) -> frozenset[int]:
    """The values a field allows (``*``, lists, ranges, increments, names)."""
    label, low, high = spec
    result: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        try:
            step = int(step_text) if slash else 1
            if base in ("*", "?"):
                start, end = low, high
            elif "-" in base:
                first, last = base.split("-", 1)
                start, end = _number(first, names), _number(last, names)
            else:
                start = _number(base, names)
                end = high if slash else start
        except ValueError:
            raise ScheduleError(
                f"schedule {expression!r}: {label} field {text!r} is not valid"
            ) from None
        if not (low <= start <= high and low <= end <= high) or step < 1:
            raise ScheduleError(
                f"schedule {expression!r}: {label} field {text!r} is outside {low}-{high}"
            )
        if end < start:  # a range that wraps (FRI-MON, NOV-FEB)
            result.update(range(start, high + 1))
            result.update(range(low, end + 1))
        else:
            result.update(range(start, end + 1, step))
    return frozenset(result)


def _number(text: str, names: dict[str, int] | None) -> int:
    if names and text in names:
        return names[text]
    return int(text)


def _check_days(expression: str, days: str) -> None:
    for item in days.split(","):
        if item in ("L", "LW") or re.fullmatch(r"L-\d+", item) or re.fullmatch(r"\d+W", item):
            continue
        _values(expression, item, FIELDS[2])


def _check_weekdays(expression: str, weekdays: str) -> None:
    for item in weekdays.split(","):
        if re.fullmatch(r"[1-7A-Z]+#[1-5]", item) or re.fullmatch(r"[1-7A-Z]*L", item):
            head = item.split("#")[0].rstrip("L")
            if head:
                _values(expression, head, FIELDS[4], WEEKDAYS)
            continue
        _values(expression, item, FIELDS[4], WEEKDAYS)


# --- matching ------------------------------------------------------------------------


def _weekday(day: date) -> int:
    """AWS's day-of-week: 1 = Sunday … 7 = Saturday."""
    return (day.weekday() + 1) % 7 + 1


def _day_matches(cron: Cron, day: date) -> bool:
    if day.year not in cron.years or day.month not in cron.months:
        return False
    if cron.days != "?":
        return any(_dom_item(item, day) for item in cron.days.split(","))
    return any(_dow_item(item, day) for item in cron.weekdays.split(","))


def _dom_item(item: str, day: date) -> bool:
    last = calendar.monthrange(day.year, day.month)[1]
    if item == "L":
        return day.day == last
    if item.startswith("L-"):
        return day.day == last - int(item[2:])
    if item == "LW":
        target = date(day.year, day.month, last)
        while target.weekday() >= 5:
            target -= timedelta(days=1)
        return day == target
    if item.endswith("W"):
        return day == _nearest_weekday(day.year, day.month, min(int(item[:-1]), last))
    return day.day in _values("", item, FIELDS[2])


def _nearest_weekday(year: int, month: int, dom: int) -> date:
    """The weekday nearest the given day, without leaving the month (Quartz's ``W``)."""
    target = date(year, month, dom)
    if target.weekday() == 5:  # Saturday → Friday, unless that leaves the month
        return target - timedelta(days=1) if dom > 1 else target + timedelta(days=2)
    if target.weekday() == 6:  # Sunday → Monday, unless that leaves the month
        last = calendar.monthrange(year, month)[1]
        return target + timedelta(days=1) if dom < last else target - timedelta(days=2)
    return target


def _dow_item(item: str, day: date) -> bool:
    weekday = _weekday(day)
    if "#" in item:
        head, nth = item.split("#")
        wanted = _values("", head, FIELDS[4], WEEKDAYS)
        return weekday in wanted and (day.day - 1) // 7 + 1 == int(nth)
    if item.endswith("L"):
        head = item[:-1]
        if not head:
            return weekday == 7  # L alone: the last day of the week, Saturday
        wanted = _values("", head, FIELDS[4], WEEKDAYS)
        last = calendar.monthrange(day.year, day.month)[1]
        return weekday in wanted and day.day + 7 > last
    return weekday in _values("", item, FIELDS[4], WEEKDAYS)
