"""Windows event evidence from exported logs: RasClient attempts, NPS decisions, IKEEXT/SSTP errors.

Readers stream `.evtx` files (the `evtx` package), `wevtutil qe /f:xml` exports and Event Viewer CSV exports
into one `RawEvent` shape; `EventsAnalysis` keeps only the relevant events and counts, and builds the
`EventsReport` (the JSON contract of `vpndoctor events --json`). No printing here.

The modules, each importing only those listed after it:
- `report`: `EventsAnalysis`, `analyse` and the `EventsReport` models;
- `meaning`: what one relevant event says (`ras_event`, `nps_event`, `other_event`);
- `readers`: the format sniffer and `read_file`, over one reader per format:
  `evtx_reader`, `xml_reader`, `csv_reader`;
- `source`: opening a FILE (path, FIFO or stdin) once, with its first bytes for the sniffer;
- `records`: `RawEvent`, `ReadWarning`, `FileInfo` and the value parsers they all share.
"""

from __future__ import annotations

from vpndoctor.windows.events.csv_reader import MAX_CSV_LINE_CHARS, read_csv
from vpndoctor.windows.events.evtx_reader import MAX_EVTX_SPOOL_BYTES, read_evtx
from vpndoctor.windows.events.meaning import (
    FAILURE_EVENTS,
    IPSEC_AUDIT_FAILURES,
    NPS_DENIED,
    NPS_GRANTED,
    OTHER_PROVIDER_HINTS,
    RAS_STAGES,
    RASCLIENT,
    SECURITY_AUDITING,
    NpsEvent,
    OtherEvent,
    RasEvent,
    is_other_relevant,
    nps_event,
    other_event,
    ras_event,
)
from vpndoctor.windows.events.readers import detect_format, read_file
from vpndoctor.windows.events.records import FileInfo, Format, RawEvent, ReadWarning
from vpndoctor.windows.events.report import (
    MAX_DETAIL,
    MAX_STEPS,
    Attempt,
    CodeCount,
    CodeInfo,
    EventsAnalysis,
    EventsReport,
    FileSummary,
    NameCount,
    NpsRecord,
    NpsSummary,
    OtherRecord,
    Outcome,
    ProviderCount,
    RasSummary,
    TimeBucket,
    TimelineStep,
    analyse,
)
from vpndoctor.windows.events.source import STDIN
from vpndoctor.windows.events.xml_reader import (
    MAX_XML_DEPTH,
    MAX_XML_EVENT_CHARS,
    MAX_XML_EVENT_ELEMENTS,
    MAX_XML_MARKUP_CHARS,
    read_xml,
)

__all__ = [
    "FAILURE_EVENTS",
    "IPSEC_AUDIT_FAILURES",
    "MAX_CSV_LINE_CHARS",
    "MAX_DETAIL",
    "MAX_EVTX_SPOOL_BYTES",
    "MAX_STEPS",
    "MAX_XML_DEPTH",
    "MAX_XML_EVENT_CHARS",
    "MAX_XML_EVENT_ELEMENTS",
    "MAX_XML_MARKUP_CHARS",
    "NPS_DENIED",
    "NPS_GRANTED",
    "OTHER_PROVIDER_HINTS",
    "RASCLIENT",
    "RAS_STAGES",
    "SECURITY_AUDITING",
    "STDIN",
    "Attempt",
    "CodeCount",
    "CodeInfo",
    "EventsAnalysis",
    "EventsReport",
    "FileInfo",
    "FileSummary",
    "Format",
    "NameCount",
    "NpsEvent",
    "NpsRecord",
    "NpsSummary",
    "OtherEvent",
    "OtherRecord",
    "Outcome",
    "ProviderCount",
    "RasEvent",
    "RasSummary",
    "RawEvent",
    "ReadWarning",
    "TimeBucket",
    "TimelineStep",
    "analyse",
    "detect_format",
    "is_other_relevant",
    "nps_event",
    "other_event",
    "ras_event",
    "read_csv",
    "read_evtx",
    "read_file",
    "read_xml",
]
