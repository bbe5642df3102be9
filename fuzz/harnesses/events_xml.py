"""`wevtutil qe /f:xml` exports (windows/events/xml_reader.py `read_xml`, through `analyse` to the JSON
report): events without a root, UTF-8 or UTF-16, RasClient and NPS content, DTDs and entities refused."""

from __future__ import annotations

from fuzz.harnesses._events import OURS, analyse_file

__all__ = ["OURS", "one_input"]
MAX_LEN = 16384


def one_input(data: bytes) -> None:
    analyse_file("events.xml", data)
