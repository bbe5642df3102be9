"""One record, whatever the file format: the `RawEvent` every reader yields, its `ReadWarning` (damage that
was skipped) and `FileInfo`, and the few value parsers the readers and the analysis share (numbers, times).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Format = Literal["evtx", "xml", "csv"]


@dataclass(frozen=True)
class RawEvent:
    provider: str
    event_id: int
    time: datetime | None  # aware (UTC) from EVTX/XML; naive local time from CSV exports
    level: int | None
    record_id: int | None
    computer: str | None
    data: tuple[str, ...] = ()  # unnamed <Data> values, in order (RasClient insertion strings)
    named: tuple[tuple[str, str], ...] = ()  # <Data Name="..."> values (Security auditing)
    message: str | None = None  # rendered text (CSV exports, RenderedXml)

    def get(self, name: str) -> str | None:
        for key, value in self.named:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class ReadWarning:
    text: str


@dataclass(frozen=True)
class FileInfo:
    path: str
    format: Format


_UTC_FIRST = datetime.min.replace(tzinfo=UTC)
_UTC_LAST = datetime.max.replace(tzinfo=UTC)


def _parse_system_time(value: str | None) -> datetime | None:
    if not value:
        return None
    v = value.strip().replace("Z", "+00:00")
    # Windows writes 7 or 9 fractional digits; Python takes up to 6.
    v = re.sub(r"(\.\d{6})\d+", r"\1", v)
    try:
        t = datetime.fromisoformat(v)
    except ValueError:
        return None
    return _to_utc(t) if t.tzinfo else t.replace(tzinfo=UTC)


def _to_utc(t: datetime) -> datetime:
    try:
        return t.astimezone(UTC)
    except OverflowError:
        # Year 1 east of UTC or 9999 west of it is outside datetime's calendar in UTC: keep the event, at
        # the calendar's edge, rather than lose it (or stop the whole file with a traceback).
        return _UTC_FIRST if t.year == 1 else _UTC_LAST


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None
