"""`wevtutil qe LOG /f:xml` exports: <Event> elements without a common root, parsed incrementally with
defusedxml (no DTDs, no entities), within bounds on what a hostile export can make the reader hold.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import TextIO
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET  # type: ignore[import-untyped]
from defusedxml import DefusedXmlException

from vpndoctor.errors import UsageError
from vpndoctor.windows.events.records import RawEvent, ReadWarning, _int, _parse_system_time
from vpndoctor.windows.events.source import _SNIFF_BYTES, _encoding, _Input

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
_ROOT = "vpndoctor-events"


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
