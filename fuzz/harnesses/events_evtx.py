"""Binary .evtx logs (windows/events/evtx_reader.py `read_evtx`: the `evtx` package's parser, then our
reading of its JSON, through `analyse` to the JSON report): damaged headers, chunks and records.

Under libFuzzer (atheris imported) the parser runs in this process (`evtx_reader.ISOLATE` off): the watchdog
child `vpndoctor events` forks for each file would make a million inputs take days, and libFuzzer's own
-timeout is what catches a parser that spins (it found hang-c53e732f1cde6dc2). The replay in the test suite
keeps the child, so that kept input ends after EVTX_STALL_S with a warning.
"""

from __future__ import annotations

import sys

from fuzz.harnesses._events import OURS, analyse_file
from vpndoctor.windows.events import evtx_reader

__all__ = ["OURS", "one_input"]
MAX_LEN = 72 * 1024

if "atheris" in sys.modules:
    evtx_reader.ISOLATE = False


def one_input(data: bytes) -> None:
    analyse_file("events.evtx", data)
