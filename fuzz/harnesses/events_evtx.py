"""Binary .evtx logs (windows/events/evtx_reader.py `read_evtx`: the `evtx` package's parser, then our
reading of its JSON, through `analyse` to the JSON report): damaged headers, chunks and records.

Under libFuzzer (atheris imported) the parser runs in this process (`evtx_reader.ISOLATE` off): the watchdog
child `vpndoctor events` forks for each file would make a million inputs take days, and libFuzzer's own
-timeout is what catches a parser that spins (it found hang-c53e732f1cde6dc2). Such a hang is the evtx
package's, contained in vpndoctor by the watchdog: HANG_CONTAINED tells fuzz/run.py to keep the input as
fuzz/crashes/events_evtx/hang-* and go on with the inputs left. The replay in the test suite keeps the child,
with a 2 s stall (vpndoctor waits 10 s), so each kept hang input must end with the warning.
"""

from __future__ import annotations

import sys

from fuzz.harnesses._events import OURS, analyse_file
from vpndoctor.windows.events import evtx_reader

__all__ = ["OURS", "one_input"]
MAX_LEN = 72 * 1024
HANG_CONTAINED = True

if "atheris" in sys.modules:
    evtx_reader.ISOLATE = False
else:
    evtx_reader.EVTX_STALL_S = 2.0


def one_input(data: bytes) -> None:
    analyse_file("events.evtx", data)
