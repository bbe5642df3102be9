"""Event Viewer "Save as CSV" exports (windows/events/csv_reader.py `read_csv`, through `analyse` to the JSON
report): message texts in every RasClient/NPS layout, local date formats, odd encodings."""

from __future__ import annotations

from fuzz.harnesses._events import OURS, analyse_file

__all__ = ["OURS", "one_input"]
MAX_LEN = 16384


def one_input(data: bytes) -> None:
    analyse_file("events.csv", data)
