"""What our EVTX reader makes of any JSON the evtx parser could hand it (windows/events/evtx_reader.py
`_from_evtx_json`): lists where dicts are expected, numbers for text, missing parts; each event then goes
through the analysis and the report, as a real record would."""

from __future__ import annotations

from vpndoctor.windows.events import EventsAnalysis
from vpndoctor.windows.events.evtx_reader import _from_evtx_json

OURS: tuple[type[BaseException], ...] = ()


def one_input(data: bytes) -> None:
    record = {"data": data.decode("utf-8", errors="replace"), "event_record_id": len(data)}
    event = _from_evtx_json(record)
    if event is None:
        return
    analysis = EventsAnalysis()
    analysis.add(event)
    analysis.report().model_dump_json()
