"""IKEv2 fragment reassembly (ike/fragments.py `FragmentReassembler`, RFC 7383): a sequence of fragments
(number, total, first inner type, arrival time, plaintext) in any order, duplicated or inconsistent, against
a model of what the reassembled chain must be; the whole chain is then decoded."""

from __future__ import annotations

import contextlib

from fuzz.harnesses._util import Bytes
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.fragments import FragmentReassembler
from vpndoctor.ike.message import decode_payload_chain

OURS = (MalformedMessage,)


def one_input(data: bytes) -> None:
    r = Bytes(data)
    reasm = FragmentReassembler(max_fragments=1 + r.u8() % 64, max_total_bytes=64 + r.u16(), timeout_s=30.0)
    parts: dict[int, bytes] = {}
    first_inner = 0
    now = 0.0
    error: MalformedMessage | None = None
    while r.left:
        number, total, inner = r.u8(), r.u8(), r.u8()
        if number & 0x80:  # now and then a number beyond one byte
            number = (number & 0x7F) << 8 | r.u8()
        now += r.u8() / 4
        plaintext = r.take(r.u8())
        try:
            whole = reasm.add(number, total, inner, plaintext, now)
        except MalformedMessage as exc:
            assert error is None or exc is error, "a second, different error after the first"
            error = exc
            continue
        assert error is None, "add() succeeded after an error (errors must be sticky)"
        if number not in parts and 1 <= number <= total:
            parts[number] = plaintext
            if number == 1:
                first_inner = inner
        if whole is None:
            continue
        assert reasm.complete
        assert sorted(parts) == list(range(1, total + 1)), f"complete with parts {sorted(parts)} of {total}"
        assert whole == (first_inner, b"".join(parts[n] for n in sorted(parts))), "reassembled wrongly"
        with contextlib.suppress(MalformedMessage):
            decode_payload_chain(*whole)
        parts.clear()
