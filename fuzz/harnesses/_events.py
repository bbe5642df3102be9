"""The events harnesses' common step: one exported log, as `vpndoctor events` reads it, to the JSON report."""

from __future__ import annotations

from fuzz.harnesses._util import scratch_file
from vpndoctor.errors import UsageError
from vpndoctor.windows.events import analyse

OURS = (UsageError,)


def analyse_file(name: str, data: bytes) -> None:
    path = scratch_file(name, data)
    try:
        report = analyse([path])
    except UsageError:
        return
    report.model_dump_json()
