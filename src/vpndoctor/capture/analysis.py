"""`vpndoctor capture`: read a capture, collect its conversations (`capture.conversations`), judge them
(`checks.capture`) and put the report together (`capture.model.CaptureReport`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from vpndoctor.capture.conversations import collect, conversation_report
from vpndoctor.capture.model import CaptureReport
from vpndoctor.capture.reader import open_capture
from vpndoctor.checks.capture import capture_findings, capture_verdict

if TYPE_CHECKING:
    # --keys only: the decryptor brings in cryptography's X.509, ~0.2 s of start-up for every other run
    from vpndoctor.capture.decrypt import KeyTable

__all__ = ["analyse"]


def analyse(
    path_or_stream: str | Path | BinaryIO, *, name: str, keys: KeyTable | None = None
) -> CaptureReport:
    """Analyse one pcap/pcapng capture (a path, "-" for standard input, or an open binary stream);
    `keys` decrypts the SK/SKF payloads of the IKE SAs it lists.

    Raises CaptureError when the capture cannot be opened or read."""
    if isinstance(path_or_stream, str | Path):
        stream = open_capture(path_or_stream)
        try:
            return _analyse_stream(stream, name, keys)
        finally:
            if str(path_or_stream) != "-":
                stream.close()
    return _analyse_stream(path_or_stream, name, keys)


def _analyse_stream(stream: BinaryIO, name: str, keys: KeyTable | None) -> CaptureReport:
    decryptor = None
    if keys is not None:
        from vpndoctor.capture.decrypt import Decryptor

        decryptor = Decryptor(keys)
    seen = collect(stream, decryptor)
    findings = capture_findings(seen.conversations, seen.esp)
    return CaptureReport(
        file=name,
        packets=seen.packets,
        ike_messages=seen.ike_messages,
        conversations=[conversation_report(c, seen.first_ts) for c in seen.conversations],
        findings=findings,
        verdict=capture_verdict(findings, seen.ike_messages, len(seen.conversations)),
        warnings=seen.warnings,
        tcp_flows=seen.tcp_flows,
        tcp_flows_beyond_cap=seen.tcp_flows_beyond_cap,
        packets_by_kind=seen.packets_by_kind,
    )
