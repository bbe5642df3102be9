"""Event Viewer "Save as CSV" exports: Level, Date and Time, Source, Event ID, Task Category, then the
rendered message; dates in the layouts English-language exports use.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import TextIO

from vpndoctor.errors import UsageError
from vpndoctor.windows.events.records import RawEvent, ReadWarning, _int
from vpndoctor.windows.events.source import _encoding, _Input

MAX_CSV_LINE_CHARS = 1 << 20  # the csv module bounds a field (128 K characters) but reads a line whole first
_CSV_LEVELS = {"critical": 1, "error": 2, "warning": 3, "information": 4, "verbose": 5}
# Event Viewer writes the viewer's locale; these are the layouts seen in English-language exports.
_CSV_TIME_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
)


def read_csv(source: _Input) -> Iterator[RawEvent | ReadWarning]:
    """Event Viewer "Save as CSV": Level, Date and Time, Source, Event ID, Task Category, then the message."""
    label = source.label
    bad_rows = 0
    bad_times = 0
    try:
        with io.TextIOWrapper(source.stream, encoding=_encoding(source.head), newline="") as fh:
            reader = csv.reader(_csv_lines(fh, label))
            header = next(reader, None)
            if header is None:
                raise UsageError(f"{label}: empty CSV file")
            for row in reader:
                if not row or not any(cell.strip() for cell in row):
                    continue
                event_id = _int(row[3]) if len(row) >= 5 else None
                if event_id is None:
                    bad_rows += 1
                    continue
                when = _parse_csv_time(row[1])
                if when is None and row[1].strip():
                    bad_times += 1
                yield RawEvent(
                    provider=row[2].strip(),
                    event_id=event_id,
                    time=when,
                    level=_CSV_LEVELS.get(row[0].strip().casefold()),
                    record_id=None,
                    computer=None,
                    message=",".join(row[5:]) if len(row) > 5 else None,
                )
    except csv.Error as exc:
        raise UsageError(f"{label}: malformed CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{label}: not UTF-8/UTF-16 text ({exc.reason})") from None
    if bad_rows:
        yield ReadWarning(f"{source.name}: skipped {bad_rows} CSV row(s) without a numeric Event ID")
    if bad_times:
        yield ReadWarning(f"{source.name}: {bad_times} row(s) with a date/time in an unknown layout")


def _csv_lines(fh: TextIO, label: str) -> Iterator[str]:
    while line := fh.readline(MAX_CSV_LINE_CHARS + 1):
        if len(line) > MAX_CSV_LINE_CHARS:
            raise UsageError(f"{label}: a CSV line longer than {MAX_CSV_LINE_CHARS >> 20} MiB")
        yield line


def _parse_csv_time(value: str) -> datetime | None:
    v = " ".join(value.split())
    for fmt in _CSV_TIME_FORMATS:
        try:
            return datetime.strptime(v, fmt)
        except ValueError:
            continue
    return None
