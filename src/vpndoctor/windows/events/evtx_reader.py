"""Binary `.evtx` logs, through the `evtx` package's parser (imported only when one is read) and our reading
of the JSON it makes of each record; a pipe is first copied to a temporary file, as evtx seeks.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from typing import IO, Any

from vpndoctor.errors import LocalEnvironmentError, UsageError
from vpndoctor.windows.events.records import RawEvent, ReadWarning, _int, _parse_system_time
from vpndoctor.windows.events.source import _Input

_CONSECUTIVE_EVTX_ERRORS = 10_000  # a file that only fails is not worth iterating forever
# evtx seeks in its input, so EVTX from a pipe is first copied to an unnamed temporary file, up to this size.
MAX_EVTX_SPOOL_BYTES = 4 << 30


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
