"""Binary `.evtx` logs, through the `evtx` package's parser (imported only when one is read) and our reading
of the JSON it makes of each record; a pipe is first copied to a temporary file, as evtx seeks.

The parser is native code that Python cannot interrupt, and a damaged file can make it spin without end
(found by the events_evtx fuzzer: a 70 KB file kept it busy for minutes). So it runs in a forked child that
sends the records back in batches; when the child sends nothing for `EVTX_STALL_S` seconds it is killed,
what was read is kept, and a warning says where the parser stopped.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from multiprocessing.connection import Connection
from typing import IO, Any

from vpndoctor.errors import LocalEnvironmentError, UsageError
from vpndoctor.windows.events.records import RawEvent, ReadWarning, _int, _parse_system_time
from vpndoctor.windows.events.source import _Input

_CONSECUTIVE_EVTX_ERRORS = 10_000  # a file that only fails is not worth iterating forever
# evtx seeks in its input, so EVTX from a pipe is first copied to an unnamed temporary file, up to this size.
MAX_EVTX_SPOOL_BYTES = 4 << 30
# A 64 KiB chunk parses in milliseconds; a parser that sends nothing for this long is stuck.
EVTX_STALL_S = 10.0
_BATCH = 256  # records per message from the parsing child
# The fuzzing harness turns this off under libFuzzer, whose own -timeout catches a spinning parser: a child
# per input would make a million inputs take days. Everything else keeps the child.
ISOLATE = True


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


def _parse_in_child(parser: Any, conn: Connection | _Inline) -> None:
    """The child's side: ("rec", [json text, ...]) batches and ("err", text) for each damaged part, then
    ("end", None)."""
    batch: list[str] = []
    records = parser.records_json()
    consecutive = 0
    while consecutive < _CONSECUTIVE_EVTX_ERRORS:
        try:
            record = next(records)
        except StopIteration:
            break
        except RuntimeError as exc:
            # The parser reports a corrupt chunk and then continues with the next one.
            if batch:
                conn.send(("rec", batch))
                batch = []
            conn.send(("err", _first_line(exc)))
            consecutive += 1
            continue
        consecutive = 0
        if isinstance(record, dict) and isinstance(record.get("data"), str):
            batch.append(record["data"])
            if len(batch) >= _BATCH:
                conn.send(("rec", batch))
                batch = []
    if batch:
        conn.send(("rec", batch))
    conn.send(("end", None))


def _child_main(parser: Any, conn: Connection) -> None:
    try:
        _parse_in_child(parser, conn)
    except (BrokenPipeError, KeyboardInterrupt):  # the parent stopped reading
        pass
    finally:
        conn.close()


class _Inline:
    """The child's protocol in this process (ISOLATE off): the messages _parse_in_child sends, in a list."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Any]] = []

    def send(self, message: tuple[str, Any]) -> None:
        self.messages.append(message)


def _evtx_records(parser: Any, name: str) -> Iterator[RawEvent | ReadWarning]:
    if not ISOLATE:
        inline = _Inline()
        _parse_in_child(parser, inline)
        yield from _read_messages(iter(inline.messages), name, stalled=False)
        return
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child_main, args=(parser, sender), daemon=True)
    child.start()
    sender.close()
    stalled = False

    def received() -> Iterator[tuple[str, Any]]:
        nonlocal stalled
        while True:
            if not receiver.poll(EVTX_STALL_S):
                stalled = True
                return
            try:
                yield receiver.recv()
            except EOFError:  # the child died without a word (killed, out of memory)
                stalled = True
                return

    try:
        yield from _read_messages(received(), name, stalled=lambda: stalled)
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join(5)


def _read_messages(
    messages: Iterator[tuple[str, Any]], name: str, stalled: Callable[[], bool] | bool
) -> Iterator[RawEvent | ReadWarning]:
    damaged = 0
    chunks: set[int] = set()
    first_error = ""
    for kind, value in messages:
        if kind == "end":
            break
        if kind == "err":
            damaged += 1
            first_error = first_error or value
            if m := re.search(r"chunk number (\d+)", value):
                chunks.add(int(m.group(1)))
            continue
        for data in value:
            event = _from_evtx_json({"data": data})
            if event is not None:
                yield event
    if damaged:
        where = f" (chunk {', '.join(map(str, sorted(chunks)))})" if chunks else ""
        reason = first_error.rsplit(": ", 1)[-1]
        yield ReadWarning(f"{name}: skipped {damaged} damaged part(s){where}, read the rest: {reason}")
    if stalled if isinstance(stalled, bool) else stalled():
        yield ReadWarning(
            f"{name}: the EVTX parser stopped making progress (nothing for {EVTX_STALL_S:g} s: a damaged "
            "or hostile file); the records before that point were read"
        )


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
