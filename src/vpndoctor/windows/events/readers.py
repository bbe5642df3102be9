"""Readers: which format a FILE is in (EVTX by its magic, XML by its first tag, CSV by Event Viewer's
header) and its records, streamed by the reader of that format into one `RawEvent` shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from vpndoctor.errors import UsageError
from vpndoctor.windows.events.csv_reader import read_csv
from vpndoctor.windows.events.evtx_reader import read_evtx
from vpndoctor.windows.events.records import Format, RawEvent, ReadWarning
from vpndoctor.windows.events.source import _encoding, _Input, _open_input
from vpndoctor.windows.events.xml_reader import read_xml

_CSV_HEADER = ("level", "date and time", "source", "event id", "task category")


def detect_format(path: Path) -> Format:
    """EVTX by its magic, XML by its first tag, CSV by Event Viewer's header; anything else is refused."""
    source = _open_input(path)
    try:
        return _sniff(source)
    finally:
        source.close()


def _sniff(source: _Input) -> Format:
    head, label, suffix = source.head, source.label, source.suffix
    if not head:
        raise UsageError(f"{label}: empty file")
    if head.startswith(b"ElfFile\x00"):
        return "evtx"
    if suffix == ".evtx":
        raise UsageError(f"{label}: not an EVTX file (no ElfFile header)")
    text = head.decode(_encoding(head), errors="ignore").lstrip("\ufeff \t\r\n")
    if text.startswith("<"):
        return "xml"
    first = text.splitlines()[0] if text else ""
    fields = tuple(f.strip().strip('"').casefold() for f in first.split(","))
    if fields[:5] == _CSV_HEADER or (suffix == ".csv" and len(fields) >= 5):
        return "csv"
    raise UsageError(
        f"{label}: unknown format (expected .evtx, `wevtutil qe ... /f:xml` output or Event Viewer CSV)"
    )


def read_file(path: Path) -> tuple[Format, Iterator[RawEvent | ReadWarning]]:
    """The file's format and its records, streamed; damage that can be skipped comes out as a ReadWarning.

    The file is opened once and read once (it may be a pipe: "-" is stdin); the iterator closes it.
    """
    source = _open_input(path)
    try:
        fmt = _sniff(source)
    except BaseException:
        source.close()
        raise
    readers: dict[Format, Callable[[_Input], Iterator[RawEvent | ReadWarning]]] = {
        "evtx": read_evtx,
        "xml": read_xml,
        "csv": read_csv,
    }
    return fmt, _closing(source, readers[fmt](source))


def _closing(source: _Input, records: Iterator[RawEvent | ReadWarning]) -> Iterator[RawEvent | ReadWarning]:
    try:
        yield from records
    finally:
        source.close()
