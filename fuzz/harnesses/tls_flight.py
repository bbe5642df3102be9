"""What a server sends back to one of the audit's raw ClientHellos (tls/audit.py `interpret_answer`, which
runs tls/hello.py `parse_server_flight` and, for TLS 1.3, tls/tls13.py `read_tls13_flight`), for each kind
of hello and each way the read can end; `answer_complete` is the read loop's test on the same bytes."""

from __future__ import annotations

import contextlib

from fuzz.harnesses._tls import HELLOS
from vpndoctor.tls.audit import answer_complete, interpret_answer
from vpndoctor.tls.errors import TlsDecodeError
from vpndoctor.tls.hello import parse_server_flight

OURS = (TlsDecodeError,)
MAX_LEN = 20000
_ENDS = ("done", "closed", "reset", "cap", "timeout")


def one_input(data: bytes) -> None:
    if not data:
        return
    prepared = HELLOS[data[0] % len(HELLOS)]
    end = _ENDS[(data[0] >> 2) % len(_ENDS)]
    answer = data[1:]
    interpret_answer(prepared, answer, end)
    answer_complete(prepared, answer)
    with contextlib.suppress(TlsDecodeError):
        parse_server_flight(answer)
