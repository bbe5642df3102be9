"""Windows event evidence from exported logs: RasClient attempts, NPS decisions, IKEEXT/SSTP errors.

Readers stream `.evtx` files (the `evtx` package), `wevtutil qe /f:xml` exports and Event Viewer CSV exports
into one `RawEvent` shape; `EventsAnalysis` keeps only the relevant events and counts, and builds the
`EventsReport` (the JSON contract of `vpndoctor events --json`). No printing here.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import stat
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TextIO
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET  # type: ignore[import-untyped]
from defusedxml import DefusedXmlException
from pydantic import BaseModel, ConfigDict

from vpndoctor import __version__, errorcodes
from vpndoctor.errors import LocalEnvironmentError, UsageError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

Format = Literal["evtx", "xml", "csv"]
Outcome = Literal["connected", "disconnected", "failed", "incomplete"]

RASCLIENT = "RasClient"
SECURITY_AUDITING = "Microsoft-Windows-Security-Auditing"
NPS_GRANTED, NPS_DENIED = 6272, 6273
# Providers whose errors and warnings are worth showing next to the RasClient story (server side too).
OTHER_PROVIDER_HINTS = ("ikeext", "sstpsvc", "rassstp", "remoteaccess", "rasman")
IPSEC_AUDIT_FAILURES = {
    4653: "IPsec main mode negotiation failed",
    4654: "IPsec quick mode negotiation failed",
}

# RasClient event IDs -> the stage of a connection attempt. 20221-20225 and the failure events 20220/20227
# are Microsoft's ("RAS Connection Establishment"); 20226 (terminated, with a reason code) follows the
# RasClient message text; 20276 is the authentication mismatch the Always On VPN troubleshooting page ties to
# error 812. Any other RasClient event joins its attempt's timeline as "event N".
RAS_STAGES: dict[int, str] = {
    20220: "failed",
    20221: "dialing",
    20222: "connecting device",
    20223: "device connected",
    20224: "link established",
    20225: "connected",
    20226: "disconnected",
    20227: "failed",
    20276: "authentication protocol mismatch",
}
FAILURE_EVENTS = frozenset({20220, 20227})

MAX_DETAIL = 1000  # NPS and other-provider records kept in full; beyond that only counted
MAX_STEPS = 100  # per attempt: a CoId reused for hours must not grow without bound
_CONSECUTIVE_EVTX_ERRORS = 10_000  # a file that only fails is not worth iterating forever

STDIN = "-"  # the FILE that names standard input
_SNIFF_BYTES = 4096
# evtx seeks in its input, so EVTX from a pipe is first copied to an unnamed temporary file, up to this size.
MAX_EVTX_SPOOL_BYTES = 4 << 30
# What a hostile export can make the readers hold; past a bound the file is refused with one line.
MAX_XML_DEPTH = 64  # elements deep (an event's <Data> is at 3): every open element is held until it ends
# A tag with its attributes, a comment, a CDATA section or a processing instruction is handed to the parser
# whole (expat 2.5 scans an unfinished one again from its start on every feed: quadratic time), so it is
# held in memory whole: up to this many characters.
MAX_XML_MARKUP_CHARS = 1 << 20
# One <Event> is held until its end tag, and text until the next tag; a real event is a few KB (an EVTX
# record fits in a 64 KiB chunk).
MAX_XML_EVENT_CHARS = 4 << 20
MAX_XML_EVENT_ELEMENTS = 10_000
MAX_CSV_LINE_CHARS = 1 << 20  # the csv module bounds a field (128 K characters) but reads a line whole first

_GUID = r"\{?([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\}?"
_GUID_RE = re.compile(rf"(?:CoId=)?{_GUID}", re.IGNORECASE)
_COID_TEXT_RE = re.compile(rf"CoId={_GUID}", re.IGNORECASE)
_CODE = r"[-+]?(?:0x[0-9A-Fa-f]+|[0-9]+)"
# Microsoft's RasClient message texts, with CoId= prefix removed (the CSV export only has these).
_RAS_TEXT: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.DOTALL)
    for p in (
        r"The user (?P<user>.+?) dialed a connection named (?P<conn>.+?) which has (?:failed|terminated)\. "
        rf"The (?:error|reason) code returned on (?:failure|termination) is (?P<code>{_CODE})",
        r"The user (?P<user>.+?) has dialed a connection named (?P<conn>.+?) to the Remote Access Server",
        r"The user (?P<user>.+?) is trying to establish a link to the Remote Access Server for the "
        r"connection named (?P<conn>.+?) using",
        r"The user (?P<user>.+?) has started dialing an? .*?connection profile named (?P<conn>.+?)\. "
        r"The connection settings",
        r"The user (?P<user>.+?) has successfully established a link",
        r"has been established by user (?P<user>.+?)\.?\s*$",
        rf"The connection to (?P<server>.+?) made using device .+? was terminated\. The error code "
        rf"returned on failure is (?P<code>{_CODE})",
    )
)
_ERROR_CODE_TEXT_RE = re.compile(rf"error code returned on failure is ({_CODE})", re.IGNORECASE)
_NPS_TEXT = {
    "user": re.compile(r"Fully Qualified Account Name:[ \t]*([^\r\n\t]*)"),
    "reason_code": re.compile(r"Reason Code:[ \t]*([0-9]+)"),
    "reason": re.compile(r"Reason:[ \t]*([^\r\n]*)"),
    "network_policy": re.compile(r"Network Policy Name:[ \t]*([^\r\n\t]*)"),
    "connection_request_policy": re.compile(r"(?:Connection Request|Proxy) Policy Name:[ \t]*([^\r\n\t]*)"),
    "client_ip": re.compile(r"Client IP Address:[ \t]*([^\r\n\t]*)"),
    "calling_station": re.compile(r"Calling Station Identifier:[ \t]*([^\r\n\t]*)"),
    "authentication_type": re.compile(r"Authentication Type:[ \t]*([^\r\n\t]*)"),
    "eap_type": re.compile(r"EAP Type:[ \t]*([^\r\n\t]*)"),
}
_CSV_HEADER = ("level", "date and time", "source", "event id", "task category")
_CSV_LEVELS = {"critical": 1, "error": 2, "warning": 3, "information": 4, "verbose": 5}
# Event Viewer writes the viewer's locale; these are the layouts seen in English-language exports.
_CSV_TIME_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
)
_ROOT = "vpndoctor-events"


# ---------------------------------------------------------------------------------------------------------
# One record, whatever the file format
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawEvent:
    provider: str
    event_id: int
    time: datetime | None  # aware (UTC) from EVTX/XML; naive local time from CSV exports
    level: int | None
    record_id: int | None
    computer: str | None
    data: tuple[str, ...] = ()  # unnamed <Data> values, in order (RasClient insertion strings)
    named: tuple[tuple[str, str], ...] = ()  # <Data Name="..."> values (Security auditing)
    message: str | None = None  # rendered text (CSV exports, RenderedXml)

    def get(self, name: str) -> str | None:
        for key, value in self.named:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class ReadWarning:
    text: str


@dataclass(frozen=True)
class FileInfo:
    path: str
    format: Format


# ---------------------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------------------


class _Chained(io.RawIOBase):
    """The sniffer's bytes, then the rest of the source: a pipe cannot be reopened or rewound."""

    def __init__(
        self, label: str, head: bytes, read: Callable[[int], bytes], close: Callable[[], None]
    ) -> None:
        super().__init__()
        self._label = label
        self._head = head
        self._read = read
        self._close = close

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            data, self._head = self._head[: len(view)], self._head[len(view) :]
        else:
            data = _read_some(self._read, len(view), self._label)
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._close()
        super().close()


@dataclass
class _Input:
    """One FILE, opened once: `head` is its first bytes (for the sniffer) and `stream` starts at byte 0."""

    label: str  # for errors: the path as given, or "stdin"
    name: str  # for warnings: the file's name
    suffix: str
    head: bytes
    stream: io.BufferedReader[_Chained]
    fd: int | None  # our descriptor of a regular file, in which evtx may seek

    def close(self) -> None:
        self.stream.close()


def _open_input(path: Path) -> _Input:
    """Open FILE ("-": stdin) and read its head without waiting on a FIFO that has no writer or a terminal."""
    if str(path) == STDIN:
        return _open_stdin()
    label = str(path)
    try:
        # Without O_NONBLOCK, opening a FIFO waits for a writer: forever if none comes.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise UsageError(f"{label}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{label}: {exc.strerror}") from None
    return _from_fd(fd, label, path.name, path.suffix.lower(), by_path=True)


def _open_stdin() -> _Input:
    try:
        fd = os.dup(sys.stdin.fileno())  # our own descriptor: closing it leaves sys.stdin alone
    except (AttributeError, ValueError, OSError):
        # No descriptor behind sys.stdin (an embedding application, a test runner): read the object itself.
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:
            raise UsageError("stdin: not open") from None
        read: Callable[[int], bytes] = stdin.read
        head = _read_head(read, "stdin", _SNIFF_BYTES)
        stream = io.BufferedReader(_Chained("stdin", head, read, lambda: None))
        return _Input("stdin", "stdin", "", head, stream, None)
    return _from_fd(fd, "stdin", "stdin", "", by_path=False)


def _from_fd(fd: int, label: str, name: str, suffix: str, by_path: bool) -> _Input:
    def read(size: int) -> bytes:
        return os.read(fd, size)

    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise UsageError(f"{label}: is a directory")
        if os.isatty(fd):
            raise UsageError(f"{label}: is a terminal (name an exported log, or pipe one in)")
        first = b""
        if by_path and stat.S_ISFIFO(mode):
            first = _first_from_fifo(fd, label)
        if by_path and not stat.S_ISCHR(mode):
            # A character device stays non-blocking: one with nothing to give fails instead of waiting.
            os.set_blocking(fd, True)
        head = first + _read_head(read, label, _SNIFF_BYTES - len(first))
    except BaseException:
        os.close(fd)
        raise
    stream = io.BufferedReader(_Chained(label, head, read, lambda: os.close(fd)), 64 * 1024)
    return _Input(label, name, suffix, head, stream, fd if by_path and stat.S_ISREG(mode) else None)


def _first_from_fifo(fd: int, label: str) -> bytes:
    # Opened without blocking, a FIFO that no writer holds open reads as empty: refuse it rather than wait.
    # A writer that is there but has not written yet reads as "would block": wait for it like any pipe.
    try:
        first = os.read(fd, _SNIFF_BYTES)
    except BlockingIOError:
        return b""
    except OSError as exc:
        raise UsageError(f"{label}: {exc.strerror}") from None
    if not first:
        raise UsageError(
            f"{label}: a FIFO or pipe with no writer and nothing to read (start the writer first)"
        )
    return first


def _read_head(read: Callable[[int], bytes], label: str, size: int) -> bytes:
    # A pipe hands over what its writer wrote so far: read on until the sniffer has its bytes or the end.
    parts: list[bytes] = []
    while size > 0 and (chunk := _read_some(read, size, label)):
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def _read_some(read: Callable[[int], bytes], size: int, label: str) -> bytes:
    try:
        return read(size)
    except BlockingIOError:
        raise UsageError(f"{label}: nothing to read yet, and reading would block") from None
    except OSError as exc:
        raise UsageError(f"{label}: {exc.strerror or exc}") from None


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


def read_evtx(source: _Input) -> Iterator[RawEvent | ReadWarning]:
    try:
        import evtx  # the Rust parser is only needed for .evtx input
    except ImportError:
        raise LocalEnvironmentError("reading .evtx files needs the evtx package (pip install evtx)") from None

    fh = _seekable(source)
    try:
        try:
            parser = evtx.PyEvtxParser(fh)
        except (OSError, RuntimeError, ValueError) as exc:
            raise UsageError(f"{source.label}: not a readable EVTX file ({_first_line(exc)})") from None
        yield from _evtx_records(parser, source.name)
    finally:
        fh.close()


def _seekable(source: _Input) -> IO[bytes]:
    if source.fd is not None:
        os.lseek(source.fd, 0, os.SEEK_SET)
        return open(source.fd, "rb", closefd=False)  # noqa: SIM115 -- closed by read_evtx
    # A pipe: copy it to an unnamed temporary file (on disk, not in memory) that evtx can seek in.
    spool = tempfile.TemporaryFile()  # noqa: SIM115 -- returned open
    try:
        size = 0
        while chunk := source.stream.read(1 << 20):
            size += len(chunk)
            if size > MAX_EVTX_SPOOL_BYTES:
                raise UsageError(
                    f"{source.label}: EVTX from a pipe over {MAX_EVTX_SPOOL_BYTES >> 30} GiB (name the file)"
                )
            spool.write(chunk)
        spool.seek(0)
    except OSError as exc:
        spool.close()
        raise LocalEnvironmentError(
            f"cannot copy EVTX from {source.label} to a temporary file: {exc}"
        ) from None
    except BaseException:
        spool.close()
        raise
    return spool


def _evtx_records(parser: Any, name: str) -> Iterator[RawEvent | ReadWarning]:
    records = parser.records_json()
    damaged = 0
    chunks: set[int] = set()
    first_error = ""
    consecutive = 0
    while consecutive < _CONSECUTIVE_EVTX_ERRORS:
        try:
            record = next(records)
        except StopIteration:
            break
        except RuntimeError as exc:
            # The parser reports a corrupt chunk and then continues with the next one.
            text = _first_line(exc)
            damaged += 1
            first_error = first_error or text
            if m := re.search(r"chunk number (\d+)", text):
                chunks.add(int(m.group(1)))
            consecutive += 1
            continue
        consecutive = 0
        if isinstance(record, dict):
            event = _from_evtx_json(record)
            if event is not None:
                yield event
    if damaged:
        where = f" (chunk {', '.join(map(str, sorted(chunks)))})" if chunks else ""
        reason = first_error.rsplit(": ", 1)[-1]
        yield ReadWarning(f"{name}: skipped {damaged} damaged part(s){where}, read the rest: {reason}")


def _from_evtx_json(record: Mapping[str, Any]) -> RawEvent | None:
    try:
        doc = json.loads(record["data"])
    except (KeyError, TypeError, ValueError):
        return None
    event = doc.get("Event") if isinstance(doc, dict) else None
    if not isinstance(event, dict):
        return None
    system = event.get("System") or {}
    provider = _attr(system.get("Provider"), "Name") or ""
    event_id = _int(_text(system.get("EventID")))
    if event_id is None:
        return None
    data, named = _json_event_data(event.get("EventData"))
    user_named = _json_flatten(event.get("UserData"))
    record_id = _int(_text(system.get("EventRecordID"))) or _int(str(record.get("event_record_id", "")))
    return RawEvent(
        provider=provider,
        event_id=event_id,
        time=_parse_system_time(_attr(system.get("TimeCreated"), "SystemTime")),
        level=_int(_text(system.get("Level"))),
        record_id=record_id,
        computer=_text(system.get("Computer")),
        data=data,
        named=named + user_named,
    )


def _attr(node: Any, name: str) -> str | None:
    if isinstance(node, dict):
        attrs = node.get("#attributes")
        if isinstance(attrs, dict) and attrs.get(name) is not None:
            return str(attrs[name])
    return None


def _text(node: Any) -> str | None:
    if node is None:
        return None
    if isinstance(node, dict):
        return _text(node.get("#text"))
    if isinstance(node, list):
        return " ".join(t for t in (_text(n) for n in node) if t)
    return str(node)


def _json_event_data(node: Any) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """evtx's JSON: unnamed <Data> become Data.#text (a list when several); named ones become keys."""
    if not isinstance(node, dict):
        return (), ()
    data: list[str] = []
    named: list[tuple[str, str]] = []
    for key, value in node.items():
        if key in ("#attributes", "Binary"):
            continue
        if key == "Data":
            inner = value.get("#text") if isinstance(value, dict) else value
            items = inner if isinstance(inner, list) else [inner]
            data.extend("" if v is None else (_text(v) or "") for v in items)
        elif key != "#text":
            named.append((key, _text(value) or ""))
    return tuple(data), tuple(named)


def _json_flatten(node: Any) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []

    def walk(n: Any) -> None:
        if isinstance(n, dict):
            for k, v in n.items():
                if k.startswith("#"):
                    continue
                if isinstance(v, dict | list):
                    walk(v)
                elif v is not None:
                    out.append((k, str(v)))

    walk(node)
    return tuple(out)


def read_xml(source: _Input) -> Iterator[RawEvent | ReadWarning]:
    """`wevtutil qe LOG /f:xml` output: <Event> elements without a common root, parsed incrementally.

    Only the <Event> being read is held: any element outside an event is dropped once it ends.
    """
    label = source.label
    stream = _RootedXml(io.TextIOWrapper(source.stream, encoding=_encoding(source.head), newline=""), label)
    stack: list[Element] = []  # the open elements; stack[0] is the synthetic root
    event_at: int | None = None  # where the outermost open <Event> is in the stack
    event_elements = 0
    seen_event = False
    try:
        for kind, elem in SafeET.iterparse(stream, events=("start", "end"), forbid_dtd=True):
            if kind == "start":
                if len(stack) > MAX_XML_DEPTH:
                    raise UsageError(
                        f"{label}: XML nested deeper than {MAX_XML_DEPTH} elements "
                        f"(by line {stream.lines_read})"
                    )
                stack.append(elem)
                if event_at is not None:
                    event_elements += 1
                    if event_elements > MAX_XML_EVENT_ELEMENTS:
                        raise UsageError(
                            f"{label}: more than {MAX_XML_EVENT_ELEMENTS} elements in one <Event> "
                            f"(by line {stream.lines_read})"
                        )
                    continue
                if _local(elem.tag) == "Event":
                    event_at, event_elements = len(stack) - 1, 0
                stream.holding_nothing()
                continue
            stack.pop()
            if event_at == len(stack):
                event_at = None
            is_event = _local(elem.tag) == "Event"
            event = _from_xml(elem) if is_event else None
            if is_event or event_at is None:
                # Drop what was parsed so memory stays flat however long the export is.
                elem.clear()
                if stack:
                    stack[-1].remove(elem)
            if event_at is None:
                stream.holding_nothing()
            if is_event:
                seen_event = True
                if event is not None:
                    yield event
    except ParseError as exc:
        raise UsageError(f"{label}: truncated or malformed XML ({_xml_position(exc, stream)})") from None
    except DefusedXmlException as exc:
        raise UsageError(f"{label}: refused XML with DTD or entities ({type(exc).__name__})") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{label}: not UTF-8/UTF-16 text ({exc.reason})") from None
    if not seen_event:
        raise UsageError(f"{label}: XML without <Event> elements (expected `wevtutil qe ... /f:xml` output)")


def _xml_position(exc: ParseError, stream: _RootedXml) -> str:
    line, column = getattr(exc, "position", (0, 0))
    if stream.exhausted and line >= stream.lines_read:
        return f"the file ends inside an element, line {line}"
    return f"{str(exc).split(':')[0]} at line {line}, column {column}"


# One markup item, or a run of text. An unfinished item matches none of the markup branches (the tag branch
# lets a quoted value hold '>'), which is how the reader knows to read on before handing it over.
_XML_ITEM = r"""
      [^<]+
    | <!--.*?-->
    | <!\[CDATA\[.*?]]>
    | <\?.*?\?>
    | <!(?!--|\[CDATA\[)[^>]*>
    | <(?![!?])[^"'>]*(?:(?:"[^"]*"|'[^']*')[^"'>]*)*>
"""
_XML_ONE_ITEM = re.compile(_XML_ITEM, re.VERBOSE | re.DOTALL)
_XML_WHOLE_ITEMS = re.compile(f"(?:{_XML_ITEM})*", re.VERBOSE | re.DOTALL)


class _RootedXml:
    """A file-like view of an XML export with a synthetic root around it (wevtutil writes no root).

    It hands the parser pieces that end between markup items: expat 2.5 scans an unfinished tag, comment or
    processing instruction again from its start on every feed, so one split over many reads took quadratic
    time. It also refuses input past the MAX_XML_* bounds on what it and the reader hold.
    """

    read_chars = 16 * 1024  # per read of the file, and per piece of text handed to the parser

    def __init__(self, fh: TextIO, label: str) -> None:
        self._fh = fh
        self._label = label
        self._buf = ""  # read from the file, handed over up to _pos
        self._pos = 0
        self._state = 0  # 0 not started, 1 body, 2 closing tag sent, 3 done
        self.exhausted = False
        self.lines_read = 1
        self.chars_fed = 0
        self.held_from = 0  # chars_fed when the reader last held nothing but the open elements

    def holding_nothing(self) -> None:
        self.held_from = self.chars_fed

    def read(self, size: int = -1) -> str:
        if self._state == 0:
            self._state = 1
            head = self._fh.read(max(self.read_chars, _SNIFF_BYTES))
            self._buf = _strip_declaration(head.lstrip("\ufeff"))
            # The root tag shares line 1 with the first event so parser line numbers match the file's.
            return f"<{_ROOT}>"
        if self._state == 1:
            piece = self._next_piece(min(size, self.read_chars) if size > 0 else self.read_chars)
            if piece:
                self.lines_read += piece.count("\n")
                self.chars_fed += len(piece)
                return piece
            self._fh.close()
            self.exhausted = True
            self._state = 2
            return f"</{_ROOT}>"
        self._state = 3
        return ""

    def _next_piece(self, size: int) -> str:
        """Whole items up to `size` characters, or one longer item; "" at the end of the file."""
        if self.chars_fed - self.held_from > MAX_XML_EVENT_CHARS:
            raise UsageError(
                f"{self._label}: more than {MAX_XML_EVENT_CHARS >> 20} MiB in one <Event> or between two "
                f"tags (by line {self.lines_read})"
            )
        while True:
            buf, pos = self._buf, self._pos
            end = self._whole_items_end(buf, pos, min(len(buf), pos + size))
            if end == pos and (item := _XML_ONE_ITEM.match(buf, pos)):
                end = item.end()
            if end - pos > MAX_XML_MARKUP_CHARS or (end == pos and len(buf) - pos > MAX_XML_MARKUP_CHARS):
                raise UsageError(
                    f"{self._label}: XML markup (a tag, comment, CDATA section or processing instruction) "
                    f"longer than {MAX_XML_MARKUP_CHARS >> 20} MiB at line {self.lines_read}"
                )
            if end > pos:
                self._pos = end
                return buf[pos:end]
            # An unfinished item at `pos`: read at least as much again as it has, so that matching it anew
            # after each read costs linear time in all.
            more = self._fh.read(max(self.read_chars, len(buf) - pos))
            if not more:
                self._buf, self._pos = "", 0
                return buf[pos:]  # the file ends, perhaps inside markup: the parser says where
            self._buf, self._pos = buf[pos:] + more, 0

    @staticmethod
    def _whole_items_end(buf: str, pos: int, stop: int) -> int:
        """Where the whole items in buf[pos:stop] end (`pos` is between items)."""
        if buf.find("<!", pos, stop) < 0 and buf.find("<?", pos, stop) < 0:
            # Only tags and text, as wevtutil writes: a '<' can only start a tag (not even a quoted value
            # holds one), so every item before the last '<' is whole. No '<' at all: text, whole anywhere.
            last = buf.rfind("<", pos, stop)
            return stop if last < 0 else last
        whole = _XML_WHOLE_ITEMS.match(buf, pos, stop)
        return whole.end() if whole else pos


def _strip_declaration(text: str) -> str:
    stripped = text.lstrip()
    if stripped.startswith("<?xml"):
        end = stripped.find("?>")
        if end >= 0:
            return stripped[end + 2 :]
    return text


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(elem: Element, name: str) -> Element | None:
    for c in elem:
        if _local(c.tag) == name:
            return c
    return None


def _from_xml(elem: Element) -> RawEvent | None:
    system = _child(elem, "System")
    if system is None:
        return None
    provider_el = _child(system, "Provider")
    provider = (provider_el.get("Name") if provider_el is not None else None) or ""
    id_el = _child(system, "EventID")
    event_id = _int(id_el.text if id_el is not None else None)
    if event_id is None:
        return None
    time_el = _child(system, "TimeCreated")
    data: list[str] = []
    named: list[tuple[str, str]] = []
    event_data = _child(elem, "EventData")
    if event_data is not None:
        for d in event_data:
            if _local(d.tag) != "Data":
                continue
            name = d.get("Name")
            value = (d.text or "").strip()
            if name:
                named.append((name, value))
            else:
                data.append(value)
    user_data = _child(elem, "UserData")
    if user_data is not None:
        named.extend(
            (_local(n.tag), (n.text or "").strip()) for n in user_data.iter() if len(n) == 0 and n.text
        )
    message = None
    rendering = _child(elem, "RenderingInfo")
    if rendering is not None:
        msg_el = _child(rendering, "Message")
        message = msg_el.text if msg_el is not None else None

    def text_of(name: str) -> str | None:
        el = _child(system, name)
        return el.text.strip() if el is not None and el.text else None

    return RawEvent(
        provider=provider,
        event_id=event_id,
        time=_parse_system_time(time_el.get("SystemTime") if time_el is not None else None),
        level=_int(text_of("Level")),
        record_id=_int(text_of("EventRecordID")),
        computer=text_of("Computer"),
        data=tuple(data),
        named=tuple(named),
        message=message,
    )


def read_csv(source: _Input) -> Iterator[RawEvent | ReadWarning]:
    """Event Viewer "Save as CSV": Level, Date and Time, Source, Event ID, Task Category, then the message."""
    label = source.label
    bad_rows = 0
    bad_times = 0
    try:
        with io.TextIOWrapper(source.stream, encoding=_encoding(source.head), newline="") as fh:
            reader = csv.reader(_csv_lines(fh, label))
            header = next(reader, None)
            if header is None:
                raise UsageError(f"{label}: empty CSV file")
            for row in reader:
                if not row or not any(cell.strip() for cell in row):
                    continue
                event_id = _int(row[3]) if len(row) >= 5 else None
                if event_id is None:
                    bad_rows += 1
                    continue
                when = _parse_csv_time(row[1])
                if when is None and row[1].strip():
                    bad_times += 1
                yield RawEvent(
                    provider=row[2].strip(),
                    event_id=event_id,
                    time=when,
                    level=_CSV_LEVELS.get(row[0].strip().casefold()),
                    record_id=None,
                    computer=None,
                    message=",".join(row[5:]) if len(row) > 5 else None,
                )
    except csv.Error as exc:
        raise UsageError(f"{label}: malformed CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{label}: not UTF-8/UTF-16 text ({exc.reason})") from None
    if bad_rows:
        yield ReadWarning(f"{source.name}: skipped {bad_rows} CSV row(s) without a numeric Event ID")
    if bad_times:
        yield ReadWarning(f"{source.name}: {bad_times} row(s) with a date/time in an unknown layout")


def _csv_lines(fh: TextIO, label: str) -> Iterator[str]:
    while line := fh.readline(MAX_CSV_LINE_CHARS + 1):
        if len(line) > MAX_CSV_LINE_CHARS:
            raise UsageError(f"{label}: a CSV line longer than {MAX_CSV_LINE_CHARS >> 20} MiB")
        yield line


def _encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if len(head) >= 2 and head[1] == 0 and head[0] != 0:
        return "utf-16-le"  # PowerShell redirection without a BOM
    return "utf-8"


_UTC_FIRST = datetime.min.replace(tzinfo=UTC)
_UTC_LAST = datetime.max.replace(tzinfo=UTC)


def _parse_system_time(value: str | None) -> datetime | None:
    if not value:
        return None
    v = value.strip().replace("Z", "+00:00")
    # Windows writes 7 or 9 fractional digits; Python takes up to 6.
    v = re.sub(r"(\.\d{6})\d+", r"\1", v)
    try:
        t = datetime.fromisoformat(v)
    except ValueError:
        return None
    return _to_utc(t) if t.tzinfo else t.replace(tzinfo=UTC)


def _to_utc(t: datetime) -> datetime:
    try:
        return t.astimezone(UTC)
    except OverflowError:
        # Year 1 east of UTC or 9999 west of it is outside datetime's calendar in UTC: keep the event, at
        # the calendar's edge, rather than lose it (or stop the whole file with a traceback).
        return _UTC_FIRST if t.year == 1 else _UTC_LAST


def _parse_csv_time(value: str) -> datetime | None:
    v = " ".join(value.split())
    for fmt in _CSV_TIME_FORMATS:
        try:
            return datetime.strptime(v, fmt)
        except ValueError:
            continue
    return None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------------------
# What one relevant event says
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RasEvent:
    time: datetime | None
    event_id: int
    stage: str
    coid: str | None
    user: str | None
    connection: str | None
    code: int | None  # the error code (20220/20227) or termination reason (20226)
    order: int  # position in the input, for a stable timeline when times tie


@dataclass(frozen=True)
class NpsEvent:
    time: datetime | None
    event_id: int
    granted: bool
    user: str | None
    reason_code: int | None
    reason: str | None
    network_policy: str | None
    connection_request_policy: str | None
    client_ip: str | None
    calling_station: str | None
    authentication_type: str | None
    eap_type: str | None


@dataclass(frozen=True)
class OtherEvent:
    time: datetime | None
    provider: str
    event_id: int
    level: int | None
    text: str


def ras_event(ev: RawEvent, order: int) -> RasEvent:
    """Read CoId, user, connection and code from a RasClient event: message text when there is one
    (CSV, RenderedXml), else the insertion strings {CoId, user, connection, code} Microsoft documents."""
    stage = RAS_STAGES.get(ev.event_id, f"event {ev.event_id}")
    coid = user = conn = None
    code: int | None = None
    fields = list(ev.data)
    if fields and (m := _GUID_RE.fullmatch(fields[0].strip())):
        coid = m.group(1).upper()
        fields = fields[1:]
    if ev.event_id in (20222, 20225, 20226, 20227) and len(fields) >= 2:
        user, conn = fields[0], fields[1]
    elif ev.event_id in (20221, 20223, 20224) and fields:
        user = fields[0]
    if ev.event_id in (20226, 20227) and len(fields) >= 3:
        code = _code(fields[2])
    elif ev.event_id == 20220 and fields:
        code = _code(fields[-1])
    if ev.message:
        text = ev.message.strip()
        if m := _COID_TEXT_RE.search(text):
            coid = coid or m.group(1).upper()
            text = text[m.end() :].lstrip(": ")
        for pattern in _RAS_TEXT:
            if mt := pattern.search(text):
                groups = mt.groupdict()
                user = groups.get("user") or user
                conn = groups.get("conn") or conn
                if groups.get("code"):
                    code = _code(groups["code"])
                break
        if code is None and ev.event_id in FAILURE_EVENTS and (mc := _ERROR_CODE_TEXT_RE.search(text)):
            code = _code(mc.group(1))
    return RasEvent(
        time=ev.time,
        event_id=ev.event_id,
        stage=stage,
        coid=coid,
        user=_clean(user),
        connection=_clean(conn),
        code=code,
        order=order,
    )


def nps_event(ev: RawEvent) -> NpsEvent:
    values: dict[str, str | None] = {}
    if ev.named:
        user = ev.get("FullyQualifiedSubjectUserName")
        if not _clean(user):
            name, domain = _clean(ev.get("SubjectUserName")), _clean(ev.get("SubjectDomainName"))
            user = f"{domain}\\{name}" if name and domain else name
        values = {
            "user": user,
            "reason_code": ev.get("ReasonCode"),
            "reason": ev.get("Reason"),
            "network_policy": ev.get("NetworkPolicyName"),
            "connection_request_policy": ev.get("ProxyPolicyName"),
            "client_ip": ev.get("ClientIPAddress"),
            "calling_station": ev.get("CallingStationID"),
            "authentication_type": ev.get("AuthenticationType"),
            "eap_type": ev.get("EAPType"),
        }
    elif ev.message:
        for key, pattern in _NPS_TEXT.items():
            m = pattern.search(ev.message)
            values[key] = m.group(1) if m else None
    return NpsEvent(
        time=ev.time,
        event_id=ev.event_id,
        granted=ev.event_id == NPS_GRANTED,
        user=_clean(values.get("user")),
        reason_code=_int(values.get("reason_code")),
        reason=_clean(values.get("reason")),
        network_policy=_clean(values.get("network_policy")),
        connection_request_policy=_clean(values.get("connection_request_policy")),
        client_ip=_clean(values.get("client_ip")),
        calling_station=_clean(values.get("calling_station")),
        authentication_type=_clean(values.get("authentication_type")),
        eap_type=_clean(values.get("eap_type")),
    )


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    v = " ".join(value.split())
    return None if v in ("", "-") else v


def _code(text: str) -> int | None:
    try:
        return errorcodes.parse_code(text.strip().rstrip("."))
    except UsageError:
        return None


def is_other_relevant(ev: RawEvent) -> bool:
    if ev.provider.casefold() == SECURITY_AUDITING.casefold():
        return ev.event_id in IPSEC_AUDIT_FAILURES
    name = ev.provider.casefold()
    # Errors and warnings only: these services log every successful negotiation too.
    return any(h in name for h in OTHER_PROVIDER_HINTS) and (ev.level is None or 1 <= ev.level <= 3)


def other_event(ev: RawEvent) -> OtherEvent:
    if ev.message:
        text = ev.message
    else:
        parts = list(ev.data) + [f"{k}={v}" for k, v in ev.named if v and v != "-"]
        text = "; ".join(parts)
        if ev.event_id in IPSEC_AUDIT_FAILURES and ev.provider.casefold() == SECURITY_AUDITING.casefold():
            text = f"{IPSEC_AUDIT_FAILURES[ev.event_id]}: {text}"
    text = " ".join(text.split())
    return OtherEvent(ev.time, ev.provider, ev.event_id, ev.level, text[:300])


# ---------------------------------------------------------------------------------------------------------
# The report (JSON contract of `vpndoctor events --json`)
# ---------------------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeInfo(_Model):
    code: int
    hex: str
    name: str | None
    meaning: str | None


class CodeCount(_Model):
    code: int
    hex: str
    name: str | None
    meaning: str | None
    count: int


class NameCount(_Model):
    name: str
    attempts: int
    failures: int


class TimeBucket(_Model):
    period: str  # YYYY-MM-DD or YYYY-MM-DDTHH, in the time basis of the input (UTC for EVTX/XML)
    attempts: int
    failures: int


class TimelineStep(_Model):
    time: str | None
    event_id: int
    stage: str
    code: int | None


class Attempt(_Model):
    coid: str | None
    user: str | None
    connection: str | None
    started: str | None
    ended: str | None
    duration_s: float | None
    outcome: Outcome
    error: CodeInfo | None  # the failure's code (20220/20227) with its catalogue meaning
    steps: list[TimelineStep]
    steps_dropped: int


class RasSummary(_Model):
    attempts: int
    connected: int  # connected, whether or not a disconnect followed
    failed: int
    incomplete: int
    failures_by_code: list[CodeCount]
    by_connection: list[NameCount]
    by_user: list[NameCount]
    by_day: list[TimeBucket]
    by_hour: list[TimeBucket]


class NpsRecord(_Model):
    time: str | None
    event_id: int
    result: Literal["granted", "denied"]
    user: str | None
    reason_code: int | None
    reason: str | None  # the text in the event
    reason_meaning: str | None  # the catalogue's meaning of reason_code
    network_policy: str | None
    connection_request_policy: str | None
    client_ip: str | None
    calling_station: str | None
    authentication_type: str | None
    eap_type: str | None


class NpsSummary(_Model):
    granted: int
    denied: int
    denied_by_reason: list[CodeCount]
    denied_by_user: list[NameCount]
    records: list[NpsRecord]  # at most MAX_DETAIL, oldest first
    records_dropped: int


class OtherRecord(_Model):
    time: str | None
    provider: str
    event_id: int
    level: int | None
    text: str


class ProviderCount(_Model):
    provider: str
    count: int


class FileSummary(_Model):
    path: str
    format: Format
    records: int
    relevant: int


class EventsReport(_Model):
    tool: dict[str, str]
    files: list[FileSummary]
    warnings: list[str]
    records: int
    rasclient_events: int
    attempts: list[Attempt]  # oldest first
    summary: RasSummary
    nps: NpsSummary
    other_events: list[OtherRecord]  # IKEEXT / SSTP / RemoteAccess errors and IPsec audit failures
    other_events_total: int
    providers: list[ProviderCount]  # every provider seen, most frequent first


@dataclass
class _AttemptState:
    key: str
    events: list[RasEvent] = field(default_factory=list)
    dropped: int = 0


class EventsAnalysis:
    """Accumulates events from any number of files; keeps relevant events and counts, nothing else."""

    def __init__(self) -> None:
        self._files: list[FileSummary] = []
        self._warnings: list[str] = []
        self._providers: Counter[str] = Counter()
        self._records = 0
        self._ras_events = 0
        self._attempts: dict[str, _AttemptState] = {}
        self._anonymous = 0
        self._nps: list[NpsEvent] = []
        self._nps_granted = 0
        self._nps_denied = 0
        self._nps_by_reason: Counter[int] = Counter()
        self._nps_denied_users: Counter[str] = Counter()
        self._other: list[OtherEvent] = []
        self._other_total = 0

    def add_file(self, info: FileInfo, items: Iterable[RawEvent | ReadWarning]) -> None:
        records = relevant = 0
        for item in items:
            if isinstance(item, ReadWarning):
                self._warnings.append(item.text)
                continue
            records += 1
            relevant += self.add(item)
        self._files.append(
            FileSummary(path=info.path, format=info.format, records=records, relevant=relevant)
        )

    def add(self, ev: RawEvent) -> bool:
        """Take one record; True when it was relevant (and kept)."""
        self._records += 1
        self._providers[ev.provider or "(none)"] += 1
        provider = ev.provider.casefold()
        if provider == RASCLIENT.casefold():
            self._add_ras(ras_event(ev, self._ras_events))
            self._ras_events += 1
            return True
        if provider == SECURITY_AUDITING.casefold() and ev.event_id in (NPS_GRANTED, NPS_DENIED):
            self._add_nps(nps_event(ev))
            return True
        if is_other_relevant(ev):
            self._other_total += 1
            if len(self._other) < MAX_DETAIL:
                self._other.append(other_event(ev))
            return True
        return False

    def _add_ras(self, ev: RasEvent) -> None:
        if ev.coid:
            key = ev.coid
        else:
            # Without a CoId nothing ties events together: each one is its own attempt.
            self._anonymous += 1
            key = f"#{self._anonymous}"
        state = self._attempts.setdefault(key, _AttemptState(key))
        if len(state.events) < MAX_STEPS:
            state.events.append(ev)
        else:
            state.dropped += 1

    def _add_nps(self, ev: NpsEvent) -> None:
        if ev.granted:
            self._nps_granted += 1
        else:
            self._nps_denied += 1
            if ev.reason_code is not None:
                self._nps_by_reason[ev.reason_code] += 1
            self._nps_denied_users[ev.user or "(unknown)"] += 1
        if len(self._nps) < MAX_DETAIL:
            self._nps.append(ev)

    def report(self) -> EventsReport:
        attempts = sorted(
            (_attempt(s) for s in self._attempts.values()),
            key=lambda a: (a.started is None, a.started or ""),
        )
        return EventsReport(
            tool={"name": "vpndoctor", "version": __version__},
            files=list(self._files),
            warnings=list(self._warnings),
            records=self._records,
            rasclient_events=self._ras_events,
            attempts=attempts,
            summary=_summary(attempts),
            nps=self._nps_summary(),
            other_events=[
                OtherRecord(
                    time=_iso(o.time), provider=o.provider, event_id=o.event_id, level=o.level, text=o.text
                )
                for o in sorted(self._other, key=_time_key)
            ],
            other_events_total=self._other_total,
            providers=[ProviderCount(provider=p, count=n) for p, n in _ranked(self._providers)],
        )

    def _nps_summary(self) -> NpsSummary:
        records = [
            NpsRecord(
                time=_iso(e.time),
                event_id=e.event_id,
                result="granted" if e.granted else "denied",
                user=e.user,
                reason_code=e.reason_code,
                reason=e.reason,
                reason_meaning=_nps_meaning(e.reason_code),
                network_policy=e.network_policy,
                connection_request_policy=e.connection_request_policy,
                client_ip=e.client_ip,
                calling_station=e.calling_station,
                authentication_type=e.authentication_type,
                eap_type=e.eap_type,
            )
            for e in sorted(self._nps, key=_time_key)
        ]
        by_reason = []
        for code, n in _ranked(self._nps_by_reason):
            entry = errorcodes.lookup_nps(code)
            by_reason.append(
                CodeCount(
                    code=code,
                    hex=errorcodes.forms(code).hex,
                    name=entry.name if entry else None,
                    meaning=entry.meaning if entry else None,
                    count=n,
                )
            )
        return NpsSummary(
            granted=self._nps_granted,
            denied=self._nps_denied,
            denied_by_reason=by_reason,
            denied_by_user=[
                NameCount(name=u, attempts=n, failures=n) for u, n in _ranked(self._nps_denied_users)
            ],
            records=records,
            records_dropped=self._nps_granted + self._nps_denied - len(records),
        )


def analyse(paths: Iterable[Path]) -> EventsReport:
    """Read every file (format by content) and build the report; a bad file stops with a UsageError."""
    analysis = EventsAnalysis()
    for path in paths:
        fmt, records = read_file(path)
        analysis.add_file(FileInfo(str(path), fmt), records)
    return analysis.report()


def _attempt(state: _AttemptState) -> Attempt:
    events = sorted(state.events, key=lambda e: (e.time is None, _utc_naive(e.time), e.order))
    failures = [e for e in events if e.event_id in FAILURE_EVENTS]
    ids = {e.event_id for e in events}
    outcome: Outcome
    if failures:
        outcome = "failed"
    elif 20226 in ids:
        outcome = "disconnected"
    elif 20225 in ids:
        outcome = "connected"
    else:
        outcome = "incomplete"
    error = None
    if failures and failures[-1].code is not None:
        error = _code_info(failures[-1].code)
    timed = [e for e in events if e.time is not None]
    first, last = (timed[0], timed[-1]) if timed else (None, None)
    duration = (
        (_utc_naive(last.time) - _utc_naive(first.time)).total_seconds()
        if first and last and timed[1:]
        else None
    )
    return Attempt(
        coid=None if state.key.startswith("#") else state.key,
        user=next((e.user for e in events if e.user), None),
        connection=next((e.connection for e in events if e.connection), None),
        started=_iso(first.time) if first else None,
        ended=_iso(last.time) if last else None,
        duration_s=duration,
        outcome=outcome,
        error=error,
        steps=[
            TimelineStep(time=_iso(e.time), event_id=e.event_id, stage=e.stage, code=e.code) for e in events
        ],
        steps_dropped=state.dropped,
    )


def _summary(attempts: list[Attempt]) -> RasSummary:
    failed = [a for a in attempts if a.outcome == "failed"]
    by_code: Counter[int] = Counter(a.error.code for a in failed if a.error)
    codes = []
    for code, n in _ranked(by_code):
        info = _code_info(code)
        codes.append(CodeCount(code=code, hex=info.hex, name=info.name, meaning=info.meaning, count=n))
    return RasSummary(
        attempts=len(attempts),
        connected=sum(a.outcome in ("connected", "disconnected") for a in attempts),
        failed=len(failed),
        incomplete=sum(a.outcome == "incomplete" for a in attempts),
        failures_by_code=codes,
        by_connection=_name_counts(attempts, lambda a: a.connection),
        by_user=_name_counts(attempts, lambda a: a.user),
        by_day=_buckets(attempts, 10),
        by_hour=_buckets(attempts, 13),
    )


def _name_counts(attempts: list[Attempt], key: Callable[[Attempt], str | None]) -> list[NameCount]:
    total: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for a in attempts:
        name = key(a) or "(unknown)"
        total[name] += 1
        failed[name] += a.outcome == "failed"
    return [NameCount(name=n, attempts=c, failures=failed[n]) for n, c in _ranked(total)]


def _buckets(attempts: list[Attempt], width: int) -> list[TimeBucket]:
    total: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for a in attempts:
        if a.started is None:
            continue
        period = a.started[:width]
        total[period] += 1
        failed[period] += a.outcome == "failed"
    return [TimeBucket(period=p, attempts=total[p], failures=failed[p]) for p in sorted(total)]


def _code_info(code: int) -> CodeInfo:
    entry = errorcodes.lookup(code)
    return CodeInfo(
        code=code,
        hex=errorcodes.forms(code).hex,
        name=entry.name if entry else None,
        meaning=entry.meaning if entry else None,
    )


def _nps_meaning(code: int | None) -> str | None:
    entry = errorcodes.lookup_nps(code) if code is not None else None
    return entry.meaning if entry else None


_EPOCH = datetime(1970, 1, 1)


def _utc_naive(t: datetime | None) -> datetime:
    # CSV exports carry local naive times, EVTX/XML aware UTC ones: compare them on one (naive) axis.
    if t is None:
        return _EPOCH
    return _to_utc(t).replace(tzinfo=None) if t.tzinfo else t


def _time_key(e: NpsEvent | OtherEvent) -> tuple[bool, str]:
    return (e.time is None, _iso(e.time) or "")


def _iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    if t.tzinfo is not None:
        t = _to_utc(t).replace(tzinfo=None)
        return t.isoformat(timespec="seconds") + "Z"
    return t.isoformat(timespec="seconds")


def _ranked(counter: Counter[Any]) -> list[tuple[Any, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
