"""The politeness budget: how much of a gateway's patience one vpndoctor run may use.

IKEv2 responders protect themselves against floods of half-open SAs (strongSwan by default demands a
COOKIE once 3 SAs from one address are half-open and ignores that address from 5 on; Windows IKEEXT and
cloud gateways have limits of their own). A probe that trips them gets silence and would report a fault
that is not there. So, per target address:

- at most `max_half_open` IKE SAs of ours exist on the server at once. A place is taken before every
  IKE_SA_INIT - also a stateless one: the responder creates an SA for it while it decides, and counts it
  (seen through vici) - and given back only when the server has dropped the SA (it answered the request
  that ends it, or refused the IKE_SA_INIT). An SA whose end was never confirmed keeps its place for
  `hold_s` (strongSwan's default `half_open_timeout`), i.e. for the rest of a run: the budget shrinks, it
  is never exceeded. Places go to waiters by priority, then in order of asking.
- an IKE_SA_INIT answered only after a retransmission while we held another SA: the gateway may have
  dropped it for our other SA (a limit below our budget); from then on we hold one SA at a time.
- at most `rate_pps` datagrams per second (token bucket, `burst` at once).

Only `net/` opens sockets; this module only decides when they may be used.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

DEFAULT_MAX_HALF_OPEN = 2
DEFAULT_RATE_PPS = 100.0
DEFAULT_BURST = 20
HALF_OPEN_HOLD_S = 30.0


@dataclass
class _Target:
    in_use: int = 0
    leaked: int = 0
    peak: int = 0
    limit: int = DEFAULT_MAX_HALF_OPEN
    cookie_seen: bool = False
    lowered: bool = False
    waiters: list[tuple[int, int, asyncio.Future[None]]] = field(default_factory=list)
    tokens: float = float(DEFAULT_BURST)
    refilled_at: float = 0.0
    sent: int = 0
    free_depths: list[int] = field(default_factory=list)  # critical-path depth of each free place
    rtt_s: float | None = None  # smallest IKE_SA_INIT round trip seen


class Slot:
    """One place in a target's budget; `release()` or `leak()` exactly once."""

    def __init__(self, budget: Politeness, address: str, depth: int) -> None:
        self._budget = budget
        self.address = address
        self._done = False
        # Round trips on the critical path before this place was free, and after its holder is done:
        # how a run counts sequential round trips when probes wait for each other's places.
        self.depth = depth
        self.depth_end = depth

    def release(self) -> None:
        if not self._done:
            self._done = True
            self._budget._give_back(self.address, self.depth_end)

    def leak(self) -> None:
        """The server may still hold the SA: keep the place for `hold_s`."""
        if not self._done:
            self._done = True
            self._budget._leak(self.address, self.depth_end)


class Politeness:
    def __init__(
        self,
        *,
        max_half_open: int = DEFAULT_MAX_HALF_OPEN,
        rate_pps: float = DEFAULT_RATE_PPS,
        burst: int = DEFAULT_BURST,
        hold_s: float = HALF_OPEN_HOLD_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_half_open < 1:
            raise ValueError("the half-open budget must be at least 1")
        if rate_pps <= 0:
            raise ValueError("the packet rate must be positive")
        self.max_half_open = max_half_open
        self.rate_pps = rate_pps
        self.burst = max(1, burst)
        self.hold_s = hold_s
        self._clock = clock
        self._sleep = sleep
        self._targets: dict[str, _Target] = {}
        self._seq = itertools.count()

    def _t(self, address: str) -> _Target:
        t = self._targets.get(address)
        if t is None:
            t = _Target(limit=self.max_half_open, tokens=float(self.burst), refilled_at=self._clock())
            t.free_depths = [0] * self.max_half_open
            self._targets[address] = t
        return t

    # -- half-open SAs -------------------------------------------------------------------------------

    async def acquire(self, address: str, deadline_at: float, priority: int = 0) -> Slot | None:
        """A place for one more SA, or None when the deadline (time.monotonic) passes first.
        Lower `priority` values are served first."""
        t = self._t(address)
        if t.in_use >= t.limit or t.waiters:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (priority, next(self._seq), future)
            heapq.heappush(t.waiters, entry)
            try:
                await asyncio.wait_for(asyncio.shield(future), timeout=max(0.0, deadline_at - self._clock()))
            except (TimeoutError, asyncio.CancelledError) as exc:
                if future.done():  # granted at the last moment: hand it on
                    t.in_use -= 1
                    self._wake(t)
                else:
                    future.cancel()
                    t.waiters.remove(entry)
                    heapq.heapify(t.waiters)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return None
        else:
            t.in_use += 1
        t.peak = max(t.peak, t.in_use)
        depth = min(t.free_depths, default=0)
        if t.free_depths:
            t.free_depths.remove(depth)
        return Slot(self, address, depth)

    def _give_back(self, address: str, depth: int) -> None:
        t = self._t(address)
        t.in_use -= 1
        t.free_depths.append(depth)
        self._wake(t)

    def _wake(self, t: _Target) -> None:
        while t.waiters and t.in_use < t.limit:
            _, _, future = heapq.heappop(t.waiters)
            if not future.done():
                t.in_use += 1  # the place passes straight to the waiter
                future.set_result(None)

    def _leak(self, address: str, depth: int) -> None:
        t = self._t(address)
        t.leaked += 1
        with contextlib.suppress(RuntimeError):  # no loop any more: the run is over
            asyncio.get_running_loop().call_later(self.hold_s, self._give_back, address, depth)

    def cookie_demanded(self, address: str) -> None:
        """The server counts our half-open SAs against a cookie threshold (noted; a cookie costs a round
        trip, not a place)."""
        self._t(address).cookie_seen = True

    def lower(self, address: str) -> None:
        """The gateway seems to drop IKE_SA_INITs while another SA of ours is half-open: one at a time."""
        t = self._t(address)
        t.lowered = True
        t.limit = 1

    # -- round trips -----------------------------------------------------------------------------------

    def note_rtt(self, address: str, rtt_s: float) -> None:
        t = self._t(address)
        t.rtt_s = rtt_s if t.rtt_s is None else min(t.rtt_s, rtt_s)

    def retransmit_timeout_s(self, address: str, default_s: float, floor_s: float = 0.25) -> float:
        """Four round trips once one was measured (a lost answer then costs little), else `default_s`."""
        rtt = self._t(address).rtt_s
        return default_s if rtt is None else min(default_s, max(floor_s, 4 * rtt))

    # -- packet rate ---------------------------------------------------------------------------------

    async def pace(self, address: str) -> None:
        """Wait until one more datagram to `address` fits the rate cap. The token is taken at once (the
        balance may go negative), so concurrent senders queue behind each other without re-checking."""
        t = self._t(address)
        now = self._clock()
        t.tokens = min(float(self.burst), t.tokens + (now - t.refilled_at) * self.rate_pps)
        t.refilled_at = now
        t.tokens -= 1.0
        t.sent += 1
        if t.tokens < 0:
            await self._sleep(-t.tokens / self.rate_pps)

    # -- what the evidence says ----------------------------------------------------------------------

    def stats(self, address: str) -> dict[str, object]:
        t = self._t(address)
        return {
            "max_half_open": self.max_half_open,
            "limit_now": t.limit,
            "peak_half_open": t.peak,
            "unconfirmed_ends": t.leaked,
            "cookie_demanded": t.cookie_seen,
            "lowered_to_one": t.lowered,
            "datagrams_sent": t.sent,
            "rate_cap_pps": self.rate_pps,
        }
