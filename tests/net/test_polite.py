"""The politeness budget (net/polite.py): places, priorities, deadlines, leaks and the rate cap, on the
asyncio loop with no sockets."""

from __future__ import annotations

import asyncio
import time

import pytest

from vpndoctor.net.polite import Politeness

A = "203.0.113.10"


def test_never_more_places_than_the_budget_and_depths_chain() -> None:
    async def scenario() -> tuple[int, list[int]]:
        p = Politeness(max_half_open=2)
        busy = 0
        peak = 0
        depths: list[int] = []

        async def probe(rts: int) -> None:
            nonlocal busy, peak
            slot = await p.acquire(A, time.monotonic() + 5)
            assert slot is not None
            busy += 1
            peak = max(peak, busy)
            depths.append(slot.depth)
            await asyncio.sleep(0.001)
            busy -= 1
            slot.depth_end = slot.depth + rts
            slot.release()

        await asyncio.gather(*(probe(2) for _ in range(6)))
        assert p.stats(A)["peak_half_open"] == 2
        return peak, sorted(depths)

    peak, depths = asyncio.run(scenario())
    assert peak == 2
    assert depths == [0, 0, 2, 2, 4, 4]  # six 2-round-trip probes on two places: 6 round trips deep


def test_priority_then_order_of_asking() -> None:
    async def scenario() -> list[str]:
        p = Politeness(max_half_open=1)
        first = await p.acquire(A, time.monotonic() + 5)
        assert first is not None
        order: list[str] = []

        async def waiter(name: str, priority: int) -> None:
            slot = await p.acquire(A, time.monotonic() + 5, priority)
            assert slot is not None
            order.append(name)
            slot.release()

        tasks = [asyncio.ensure_future(waiter(n, pr)) for n, pr in (("late", 2), ("a", 1), ("b", 1))]
        await asyncio.sleep(0)
        first.release()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == ["a", "b", "late"]


def test_deadline_gives_none_and_cancelling_a_waiter_leaks_nothing() -> None:
    async def scenario() -> None:
        p = Politeness(max_half_open=1)
        held = await p.acquire(A, time.monotonic() + 5)
        assert held is not None
        assert await p.acquire(A, time.monotonic() + 0.01) is None
        waiting = asyncio.ensure_future(p.acquire(A, time.monotonic() + 5))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        held.release()
        again = await p.acquire(A, time.monotonic() + 0.1)
        assert again is not None  # the cancelled waiter took no place with it

    asyncio.run(scenario())


def test_a_leaked_place_stays_taken_for_the_hold_time() -> None:
    async def scenario() -> None:
        p = Politeness(max_half_open=1, hold_s=0.05)
        slot = await p.acquire(A, time.monotonic() + 5)
        assert slot is not None
        slot.leak()
        assert await p.acquire(A, time.monotonic() + 0.01) is None
        assert await p.acquire(A, time.monotonic() + 1) is not None
        assert p.stats(A)["unconfirmed_ends"] == 1

    asyncio.run(scenario())


def test_lowering_to_one_place() -> None:
    async def scenario() -> None:
        p = Politeness(max_half_open=2)
        one = await p.acquire(A, time.monotonic() + 1)
        p.lower(A)
        assert await p.acquire(A, time.monotonic() + 0.01) is None
        assert one is not None
        one.release()
        assert await p.acquire(A, time.monotonic() + 0.1) is not None
        assert p.stats(A)["lowered_to_one"] is True

    asyncio.run(scenario())


def test_rate_cap_on_a_fake_clock() -> None:
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    async def scenario() -> None:
        p = Politeness(rate_pps=10, burst=3, clock=lambda: now[0], sleep=fake_sleep)
        for _ in range(13):
            await p.pace(A)
        assert p.stats(A)["datagrams_sent"] == 13

    asyncio.run(scenario())
    # 3 at once, then one every 0.1 s: 10 more take 1 s.
    assert now[0] == pytest.approx(1.0)


def test_retransmit_timeout_from_the_measured_round_trip() -> None:
    p = Politeness()
    assert p.retransmit_timeout_s(A, 0.5) == 0.5  # nothing measured yet
    p.note_rtt(A, 0.05)
    assert p.retransmit_timeout_s(A, 0.5) == pytest.approx(0.25)
    p.note_rtt(A, 0.001)
    assert p.retransmit_timeout_s(A, 0.5) == 0.25  # floor
    with pytest.raises(ValueError):
        Politeness(max_half_open=0)
