"""Binary .evtx logs (windows/events/evtx_reader.py `read_evtx`: the `evtx` package's parser, then our
reading of its JSON, through `analyse` to the JSON report): damaged headers, chunks and records."""

from __future__ import annotations

from fuzz.harnesses._events import OURS, analyse_file

__all__ = ["OURS", "one_input"]
MAX_LEN = 72 * 1024


def one_input(data: bytes) -> None:
    analyse_file("events.evtx", data)
