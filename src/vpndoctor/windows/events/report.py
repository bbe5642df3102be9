"""The report (JSON contract of `vpndoctor events --json`): `EventsAnalysis` keeps only the relevant events
and counts from any number of files, groups RasClient events into attempts by CoId and builds the
`EventsReport`; `analyse` does it for a list of files. No printing here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from vpndoctor import __version__
from vpndoctor.windows import errorcodes
from vpndoctor.windows.events.meaning import (
    FAILURE_EVENTS,
    NPS_DENIED,
    NPS_GRANTED,
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
from vpndoctor.windows.events.readers import read_file
from vpndoctor.windows.events.records import FileInfo, Format, RawEvent, ReadWarning, _to_utc

Outcome = Literal["connected", "disconnected", "failed", "incomplete"]

MAX_DETAIL = 1000  # NPS and other-provider records kept in full; beyond that only counted
MAX_STEPS = 100  # per attempt: a CoId reused for hours must not grow without bound


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


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
