"""`vpndoctor scan`: many gateways at once, politely, one record per target.

`--probe ike` drives the stateless IKE_SA_INIT of `ike/scanprobe.py` over `net/scan.py` (one socket per
address family, one token bucket for every datagram, answers matched by SPI): INVALID_KE_PAYLOAD naming one
of our groups says "accepted", NO_PROPOSAL_CHOSEN "refused", and neither leaves an SA on the server. With
`details`, each accepted target then gets the `ike` probe's full IKE_SA_INIT in the group it asked for
(`run_ike_probe(stop_after="sa-init")`) for the chosen proposal, IKEv2 fragmentation, NAT detection and
Vendor IDs; that probe ends the half-open SA it creates with an IKE_AUTH the server must refuse. Its
datagrams take tokens from the same bucket, and it counts against the same concurrency cap.

`--probe diagnose` runs `run_diagnose` per target, `concurrency` at once, each with a share of the rate.
Targets are pulled from an iterator as places free up: memory does not grow with their number.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from vpndoctor.errors import VpndoctorError
from vpndoctor.ike.constants import DhGroup
from vpndoctor.ike.proposals import ProposalSpec
from vpndoctor.ike.scanprobe import NONCE_BYTES, SPI_BYTES, ScanTemplate
from vpndoctor.net.polite import Politeness
from vpndoctor.net.resolve import resolve_one
from vpndoctor.net.scan import DONE, IGNORE, Done, Ignore, TokenBucket, UdpScanner
from vpndoctor.observations.scan import ScanRecord

if TYPE_CHECKING:
    from vpndoctor.observations.diagnose import DiagnoseObservations, DiagnoseRequest

Emit = Callable[[ScanRecord], None]
RESOLVE_TIMEOUT_S = 5.0
RESOLVE_AHEAD = 64  # names resolved at once, ahead of their turn


@dataclass(frozen=True)
class IkeScanSettings:
    proposals: tuple[ProposalSpec, ...]
    proposal_texts: tuple[str, ...]
    port: int = 500
    rate_pps: float | None = 1000.0
    concurrency: int = 1000
    tries: int = 3  # transmissions per request, the first included
    rto_s: float = 0.5  # the first retransmission timeout (doubling after each)
    details: bool = False
    cookie_rounds: int = 1  # COOKIE demands answered per target; 0: a COOKIE ends the probe ("cookie")


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class _IkeConversation:
    """One target's stateless IKE_SA_INIT (and a COOKIE round or two)."""

    def __init__(
        self,
        target: str,
        address: str,
        settings: IkeScanSettings,
        template: ScanTemplate,
        done: Callable[[_IkeConversation, ScanRecord], None],
    ) -> None:
        self.target = target
        self.remote = (address, settings.port)
        self.key = os.urandom(SPI_BYTES)
        self._nonce = os.urandom(NONCE_BYTES)
        self._template = template
        self._done = done
        self._local: tuple[str, int] = ("0.0.0.0", 0)
        self._started_at = _now_iso()
        self._t0 = time.monotonic()
        self._cookie_rounds = 0
        self._max_cookie_rounds = settings.cookie_rounds
        self.sent_count = 0
        self.rtt_s: float | None = None

    def start(self, local: tuple[str, int]) -> bytes:
        self._local = local
        return self._template.request(self.key, self._nonce, local, self.remote)

    def sent(self, now: float) -> None:
        self.sent_count += 1

    def _record(self, now: float, result: str, **fields: object) -> ScanRecord:
        return ScanRecord(
            target=self.target,
            address=self.remote[0],
            port=self.remote[1],
            probe="ike",
            result=result,  # type: ignore[arg-type]
            cookie=self._cookie_rounds > 0,
            rtt_ms=None if self.rtt_s is None else round(self.rtt_s * 1000, 3),
            datagrams_sent=self.sent_count,
            started_at=self._started_at,
            duration_s=round(now - self._t0, 3),
            **fields,  # type: ignore[arg-type]
        )

    def answer(self, data: bytes, now: float, rtt_s: float | None) -> bytes | Ignore | Done:
        ans = self._template.parse(data, self.key)
        if ans is None:
            return IGNORE
        if self.rtt_s is None and rtt_s is not None:
            self.rtt_s = rtt_s
        if ans.kind == "cookie":
            if self._max_cookie_rounds == 0:
                self._cookie_rounds = 1
                self._done(self, self._record(now, "cookie", responded=True, vendor_ids=list(ans.vendor_ids)))
                return DONE
            if self._cookie_rounds >= self._max_cookie_rounds:
                self._done(self, self._record(now, "error", responded=True, error="COOKIE demanded again"))
                return DONE
            self._cookie_rounds += 1
            return self._template.request(self.key, self._nonce, self._local, self.remote, cookie=ans.cookie)
        if ans.kind == "sa":
            proposal = None
            if ans.suite is not None:
                from vpndoctor.probes.ike import _proposal_text

                s = ans.suite
                proposal = _proposal_text(s.encr, s.encr_key_bits, s.prf, s.integ, s.dh)
            record = self._record(
                now,
                "answered",
                responded=True,
                proposal=proposal,
                fragmentation_supported=ans.fragmentation_supported,
                vendor_ids=list(ans.vendor_ids),
                left_half_open=True,
            )
        else:
            record = self._record(
                now,
                ans.kind,
                responded=True,
                error_notify=ans.error_notify,
                ke_group_requested=ans.ke_group_requested,
                vendor_ids=list(ans.vendor_ids),
            )
        self._done(self, record)
        return DONE

    def gave_up(self, now: float, reason: str | None) -> None:
        if reason is None and self._cookie_rounds:
            # A COOKIE, then silence: the gateway sheds our IKE_SA_INITs (its DoS limits), it is not down.
            self._done(self, self._record(now, "throttled", responded=True))
        elif reason is None:
            self._done(self, self._record(now, "no-answer", responded=False))
        else:
            self._done(self, self._record(now, "local-error", responded=False, error=reason))


class _SharedPoliteness(Politeness):
    """The `ike` probe's per-target budget, its datagrams also paced by the scan's one token bucket."""

    def __init__(self, bucket: TokenBucket | None, **kwargs: float) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._bucket = bucket

    async def pace(self, address: str) -> None:
        await super().pace(address)
        if self._bucket is not None:
            while (wait := self._bucket.wait_s()) > 0:
                await asyncio.sleep(wait)


async def resolve_target(target: str) -> tuple[str | None, str | None]:
    """(address, None), or (None, why it did not resolve)."""
    try:
        return await resolve_one(target, timeout_s=RESOLVE_TIMEOUT_S), None
    except VpndoctorError as exc:
        return None, str(exc)


def _unresolved(target: str, port: int, probe: str, why: str) -> ScanRecord:
    return ScanRecord(
        target=target,
        address=None,
        port=port,
        probe=probe,  # type: ignore[arg-type]
        result="unresolved",
        responded=False,
        error=why,
        started_at=_now_iso(),
        duration_s=0.0,
    )


async def scan_ike(targets: Iterable[str], settings: IkeScanSettings, emit: Emit) -> UdpScanner:
    """Probe every target; `emit` gets each record as its target finishes. Cancel the task to stop: the
    records emitted so far stand, those in flight are lost (a resumed scan probes them again)."""
    template = ScanTemplate(settings.proposals, os.urandom)
    scanner = UdpScanner(
        rate_pps=settings.rate_pps,
        concurrency=settings.concurrency,
        tries=settings.tries,
        rto_s=settings.rto_s,
    )
    details: set[asyncio.Task[None]] = set()
    polite = _SharedPoliteness(scanner.bucket, max_half_open=1, rate_pps=100.0, burst=4)

    async def detail(record: ScanRecord) -> None:
        from vpndoctor.probes.ike import run_ike_probe

        try:
            group = _group_number(record.ke_group_requested)
            budget_s = settings.rto_s * (2**settings.tries) + 1.0
            obs = await run_ike_probe(
                record.target,
                address=record.address,
                port=settings.port,
                proposals=list(settings.proposal_texts),
                group=group,
                stop_after="sa-init",
                timeout_s=budget_s,
                retransmit_timeout_s=settings.rto_s,
                retransmit_tries=settings.tries,
                politeness=polite,
                fragmentation=True,
            )
            update: dict[str, object] = {
                "left_half_open": obs.left_half_open,
                "duration_s": round(record.duration_s + obs.duration_s, 3),
            }
            if obs.proposal is not None:
                update.update(
                    result="answered",
                    proposal=obs.proposal.text,
                    fragmentation_supported=obs.fragmentation_supported,
                    nat_detected=obs.nat_detected,
                    vendor_ids=sorted({*record.vendor_ids, *obs.vendor_ids}),
                    cookie=record.cookie or obs.cookie_rounds > 0,
                )
            elif obs.error_notify is not None:
                update["error_notify"] = obs.error_notify
            update["datagrams_sent"] = record.datagrams_sent + sum(
                d.repeat for d in obs.datagrams if d.dir == "out"
            )
            record = record.model_copy(update=update)
        except VpndoctorError as exc:
            record = record.model_copy(update={"error": f"details: {exc}"})
        emit(record)

    def done(conv: _IkeConversation, record: ScanRecord) -> None:
        if settings.details and record.result == "accepted" and record.address is not None:
            task = asyncio.get_running_loop().create_task(detail(record))
            details.add(task)

            def finished(t: asyncio.Task[None]) -> None:
                details.discard(t)
                scanner.poke()

            task.add_done_callback(finished)
            return
        emit(record)

    scanner.busy = lambda: len(details)

    async def conversations() -> AsyncIterator[_IkeConversation]:
        # Names are resolved up to RESOLVE_AHEAD at once, ahead of their turn (a list of names that time
        # out must not take 5 s each); targets still start in the order given.
        ahead: deque[tuple[str, str | asyncio.Task[tuple[str | None, str | None]]]] = deque()
        source = iter(targets)
        exhausted = False
        try:
            while True:
                while not exhausted and len(ahead) < RESOLVE_AHEAD:
                    target = next(source, None)
                    if target is None:
                        exhausted = True
                        break
                    literal = _literal(target)
                    ahead.append((target, literal or asyncio.ensure_future(resolve_target(target))))
                if not ahead:
                    return
                target, item = ahead.popleft()
                if isinstance(item, str):
                    address: str | None = item
                else:
                    address, why = await item
                    if address is None:
                        emit(_unresolved(target, settings.port, "ike", why or "did not resolve"))
                        continue
                assert address is not None
                yield _IkeConversation(target, address, settings, template, done)
        finally:
            for _, item in ahead:
                if not isinstance(item, str):
                    item.cancel()

    try:
        await scanner.run(conversations())
        while details:
            await asyncio.wait(set(details))
    finally:
        for task in details:
            task.cancel()
    return scanner


def _literal(target: str) -> str | None:
    with contextlib.suppress(OSError):
        socket.inet_pton(socket.AF_INET, target)  # the common case, fast: a dotted quad is canonical
        return target
    try:
        return str(ipaddress.ip_address(target.strip("[]")))
    except ValueError:
        return None


def _group_number(name: str | None) -> int | None:
    if name is None:
        return None
    try:
        return int(DhGroup[name])
    except KeyError:
        return None


async def scan_diagnose(
    targets: Iterable[str],
    template: DiagnoseRequest,
    concurrency: int,
    done: Callable[[str, DiagnoseObservations | None, str | None], None],
) -> None:
    """A diagnosis per target, `concurrency` at once; `done(target, observations, error)` as each ends."""
    from vpndoctor.observations.diagnose import DiagnoseRequest
    from vpndoctor.probes.diagnose import run_diagnose

    sem = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()

    async def one(target: str) -> None:
        try:
            address = _literal(target)
            req = DiagnoseRequest(
                name=target,
                address=address,
                resolvers=template.resolvers,
                expect_ips=template.expect_ips,
                ca_files=template.ca_files,
                protocols=template.protocols,
                profile_proposal=template.profile_proposal,
                timeout_s=template.timeout_s,
                max_half_open=template.max_half_open,
                rate_pps=template.rate_pps,
            )
            try:
                obs = await run_diagnose(req)
            except VpndoctorError as exc:
                done(target, None, str(exc))
                return
            done(target, obs, None)
        finally:
            sem.release()

    try:
        for target in targets:
            await sem.acquire()
            task = asyncio.get_running_loop().create_task(one(target))
            running.add(task)
            task.add_done_callback(running.discard)
        while running:
            await asyncio.wait(set(running))
    finally:
        for task in running:
            task.cancel()
