"""net/scan.py on loopback: retransmissions with backoff until the tries run out, the concurrency cap, the
token bucket, and answers from the wrong address or with an unknown key ignored."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator

from vpndoctor.net.scan import DONE, IGNORE, Done, Ignore, TokenBucket, UdpScanner


class Conv:
    def __init__(self, remote: tuple[str, int], log: dict[str, list[object]]) -> None:
        self.key = os.urandom(8)
        self.remote = remote
        self.log = log
        self.sends: list[float] = []

    def start(self, local: tuple[str, int]) -> bytes:
        self.log["local"].append(local)
        return self.key + b"request"

    def answer(self, data: bytes, now: float, rtt_s: float | None) -> bytes | Ignore | Done:
        if data.endswith(b"junk"):
            return IGNORE
        self.log["answered"].append((self.key, rtt_s))
        return DONE

    def sent(self, now: float) -> None:
        self.sends.append(now)

    def gave_up(self, now: float, reason: str | None) -> None:
        self.log["gave_up"].append((self.key, reason, list(self.sends)))


async def convs(items: list[Conv]) -> AsyncIterator[Conv]:
    for c in items:
        yield c


def test_silence_retransmits_with_backoff_then_gives_up() -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    log: dict[str, list[object]] = {"local": [], "answered": [], "gave_up": []}
    items = [Conv(sink.getsockname(), log) for _ in range(3)]
    scanner = UdpScanner(rate_pps=None, concurrency=10, tries=3, rto_s=0.05)
    asyncio.run(scanner.run(convs(items)))
    sink.close()
    assert len(log["gave_up"]) == 3 and scanner.datagrams_sent == 9
    for _, reason, sends in log["gave_up"]:  # type: ignore[misc]
        assert reason is None and len(sends) == 3
        assert sends[2] - sends[1] >= 1.8 * (sends[1] - sends[0]) > 0  # doubling


def test_answers_are_matched_by_key_and_address_and_the_caps_hold() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.setblocking(False)
    decoy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    log: dict[str, list[object]] = {"local": [], "answered": [], "gave_up": []}
    items = [Conv(server.getsockname(), log) for _ in range(30)]
    in_flight: list[int] = []

    async def serve(scanner: UdpScanner) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data, addr = server.recvfrom(2048)
            except BlockingIOError:
                await asyncio.sleep(0.002)
                continue
            in_flight.append(len(scanner._active))
            decoy.sendto(data[:8] + b"from elsewhere", addr)  # right key, wrong source: ignored
            server.sendto(data[:8] + b"junk", addr)  # ignored by the conversation
            server.sendto(os.urandom(8) + b"answer", addr)  # unknown key
            loop.call_later(0.02, server.sendto, data[:8] + b"answer", addr)

    async def main() -> UdpScanner:
        scanner = UdpScanner(rate_pps=50, concurrency=4, tries=2, rto_s=1.0)
        task = asyncio.create_task(serve(scanner))
        t0 = time.monotonic()
        await scanner.run(convs(items))
        task.cancel()
        scanner.wall = time.monotonic() - t0  # type: ignore[attr-defined]
        return scanner

    scanner = asyncio.run(main())
    server.close()
    decoy.close()
    assert len(log["answered"]) == 30 and not log["gave_up"]
    assert scanner.datagrams_sent == 30 and scanner.datagrams_ignored == 90
    assert max(in_flight) <= 4
    assert scanner.wall >= (30 - 1) / 50  # type: ignore[attr-defined]
    assert all(local[0] == "127.0.0.1" for local in log["local"])  # type: ignore[index]


def test_token_bucket() -> None:
    now = [0.0]
    bucket = TokenBucket(10.0, 2.0, lambda: now[0])
    assert bucket.wait_s() == 0.0
    assert abs(bucket.wait_s() - 0.1) < 1e-9
    now[0] = 10.0
    assert bucket.wait_s() == 0.0 and bucket.wait_s() == 0.0  # a burst of 2 after a long pause
    assert bucket.wait_s() > 0
