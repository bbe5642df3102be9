"""Many small UDP request/answer conversations at once: what `vpndoctor scan` sends and receives.

One nonblocking, unconnected UDP socket per address family (ephemeral port, bound lazily) carries every
target's datagrams; one reader callback per socket drains what arrives and hands each datagram to the
conversation whose key (for IKE: the initiator SPI, the first 8 bytes) it starts with, if it came from
that conversation's remote address and port. One loop sends: new conversations up to `concurrency` at once,
retransmissions on each conversation's timer (exponential backoff), every datagram - retransmissions
included - paced by one token bucket of `rate_pps`. Memory holds only the conversations in flight: targets
are pulled from an iterator as places free up.

The conversations themselves (what to send, what an answer means) live above net/: this module only moves
bytes and keeps time.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import ipaddress
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from vpndoctor.net.udp import NetworkError

Address = tuple[str, int]

MAX_DATAGRAM_BYTES = 65535
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
READ_BATCH = 512  # datagrams drained per readable callback before the loop gets a turn


class Ignore:
    """`Conversation.answer` result: not an answer we take (a stray or malformed datagram)."""


class Done:
    """`Conversation.answer` result: the conversation is over."""


IGNORE = Ignore()
DONE = Done()


class Conversation(Protocol):
    """One target's exchange. `key` is what every answer starts with."""

    key: bytes
    remote: Address

    def start(self, local: Address) -> bytes:
        """The first request; `local` is our address and port towards `remote`."""
        ...

    def answer(self, data: bytes, now: float, rtt_s: float | None) -> bytes | Ignore | Done:
        """A datagram from `remote` starting with `key`. `rtt_s` is the round trip when the request was
        sent once (Karn's rule), else None. Returns a new request (sent at once, with its own retries),
        IGNORE, or DONE."""
        ...

    def sent(self, now: float) -> None:
        """One datagram of this conversation went out (a first transmission or a retransmission)."""
        ...

    def gave_up(self, now: float, reason: str | None) -> None:
        """No answer after every transmission (`reason` None), or a local error sending (`reason`)."""
        ...


@dataclass
class _Active:
    conv: Conversation
    request: bytes
    attempts: int = 0
    sent_at: float = 0.0
    generation: int = 0  # a new request (after a COOKIE) makes older timers stale


class TokenBucket:
    """At most `rate_per_s` tokens a second on average, `burst` at once."""

    def __init__(self, rate_per_s: float, burst: float, clock: Callable[[], float]) -> None:
        if rate_per_s <= 0:
            raise ValueError("the packet rate must be positive")
        self.rate = rate_per_s
        self.burst = max(1.0, burst)
        self._tokens = 1.0  # start almost empty: a scan's first second holds the cap too
        self._clock = clock
        self._at = clock()

    def wait_s(self) -> float:
        """0 when a token is available now (and takes it), else how long until one is."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


def default_burst(rate_pps: float) -> float:
    """A small burst (20 ms of the rate, 1 to 64 datagrams): the cap holds over any window of a second."""
    return min(64.0, max(1.0, rate_pps / 50.0))


class UdpScanner:
    def __init__(
        self,
        *,
        rate_pps: float | None,
        concurrency: int,
        tries: int,
        rto_s: float,
        backoff: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrency < 1 or tries < 1 or rto_s <= 0:
            raise ValueError("concurrency and tries must be at least 1, the retransmit timeout positive")
        self.concurrency = concurrency
        self.tries = tries
        self.rto_s = rto_s
        self.backoff = backoff
        self._clock = clock
        self.bucket = TokenBucket(rate_pps, default_burst(rate_pps), clock) if rate_pps else None
        self._sockets: dict[int, socket.socket] = {}
        self._active: dict[bytes, _Active] = {}
        self._timers: list[tuple[float, int, bytes, int]] = []
        self._seq = 0
        self._sendq: deque[bytes] = deque()
        self._waker: asyncio.Future[None] | None = None
        self._stopping = False
        self.datagrams_sent = 0
        self.datagrams_received = 0
        self.datagrams_ignored = 0
        self._route_cache: dict[str, str] = {}
        self._key_sizes: tuple[int, ...] = ()
        # Work in flight outside this scanner that counts against `concurrency` (set by the caller).
        self.busy: Callable[[], int] = lambda: 0

    # -- sockets -------------------------------------------------------------------------------------

    def _socket(self, family: int) -> socket.socket:
        sock = self._sockets.get(family)
        if sock is not None:
            return sock
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:
            raise NetworkError(f"cannot open a UDP socket: {exc.strerror or exc}") from None
        try:
            sock.setblocking(False)
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER_BYTES)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        except OSError as exc:
            sock.close()
            raise NetworkError(f"cannot bind a UDP socket: {exc.strerror or exc}") from None
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable, sock)
        self._sockets[family] = sock
        return sock

    def _local_address(self, remote: Address, sock: socket.socket) -> Address:
        """Our source address towards `remote` (as routing picks it) and the scan socket's port."""
        port = int(sock.getsockname()[1])
        source = self._route_cache.get(remote[0])
        if source is None:
            with socket.socket(sock.family, socket.SOCK_DGRAM) as probe:
                try:
                    probe.connect(remote)  # no datagram is sent: only the route is looked up
                    source = str(probe.getsockname()[0])
                except OSError:
                    source = "::" if sock.family == socket.AF_INET6 else "0.0.0.0"
            if len(self._route_cache) > 4096:
                self._route_cache.clear()
            self._route_cache[remote[0]] = source
        return source, port

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._sockets.values():
            loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()

    # -- receiving -----------------------------------------------------------------------------------

    def _readable(self, sock: socket.socket) -> None:
        for _ in range(READ_BATCH):
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # an ICMP error queued on the socket: the target's timer decides
            self.datagrams_received += 1
            self._dispatch(data, str(addr[0]), int(addr[1]))
        self._wake()

    def _dispatch(self, data: bytes, host: str, port: int) -> None:
        for size in self._key_sizes:
            active = self._active.get(data[:size])
            if active is not None:
                break
        else:
            self.datagrams_ignored += 1
            return
        remote = active.conv.remote
        if port != remote[1] or (host != remote[0] and _normal(host) != remote[0]):
            self.datagrams_ignored += 1
            return
        now = self._clock()
        rtt = now - active.sent_at if active.attempts == 1 else None
        result = active.conv.answer(data, now, rtt)
        if isinstance(result, Ignore):
            self.datagrams_ignored += 1
        elif isinstance(result, Done):
            del self._active[active.conv.key]
        else:
            active.request = result
            active.attempts = 0
            active.generation += 1
            self._sendq.append(active.conv.key)

    # -- the loop ------------------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._waker is not None and not self._waker.done():
            self._waker.set_result(None)

    async def _sleep(self, timeout_s: float | None) -> None:
        loop = asyncio.get_running_loop()
        self._waker = loop.create_future()
        handle = loop.call_later(timeout_s, self._wake) if timeout_s is not None else None
        try:
            await self._waker
        finally:
            self._waker = None
            if handle is not None:
                handle.cancel()

    def poke(self) -> None:
        """Something the loop waits for changed (a place freed outside the scanner)."""
        self._wake()

    def stop(self) -> None:
        """Send nothing new: conversations in flight get their answers or time out (Ctrl-C's first step)."""
        self._stopping = True
        self._wake()

    async def run(self, conversations: AsyncIterator[Conversation]) -> None:
        """Until every conversation from the iterator is over (or, after `stop()`, those in flight)."""
        exhausted = False
        try:
            while True:
                while (
                    not exhausted
                    and not self._stopping
                    and len(self._active) + self.busy() < self.concurrency
                ):
                    try:
                        conv = await anext(conversations)
                    except StopAsyncIteration:
                        exhausted = True
                        break
                    self._admit(conv)
                self._expire()
                wait = self._send()
                if (exhausted or self._stopping) and not self._active:
                    return
                if self._timers:
                    timer_wait = max(0.0, self._timers[0][0] - self._clock())
                    wait = timer_wait if wait is None else min(wait, timer_wait)
                if wait is None or wait > 0:
                    await self._sleep(wait)
        finally:
            self.close()

    def _admit(self, conv: Conversation) -> None:
        if conv.key in self._active:
            raise ValueError("two conversations with one key")
        family = socket.AF_INET6 if ":" in conv.remote[0] else socket.AF_INET
        sock = self._socket(family)
        request = conv.start(self._local_address(conv.remote, sock))
        if len(conv.key) not in self._key_sizes:
            self._key_sizes = tuple(sorted({*self._key_sizes, len(conv.key)}))
        self._active[conv.key] = _Active(conv, request)
        self._sendq.append(conv.key)

    def _expire(self) -> None:
        now = self._clock()
        while self._timers and self._timers[0][0] <= now:
            _, _, key, generation = heapq.heappop(self._timers)
            active = self._active.get(key)
            if active is None or active.generation != generation:
                continue
            if active.attempts >= self.tries:
                del self._active[key]
                active.conv.gave_up(now, None)
            else:
                self._sendq.append(key)

    def _send(self) -> float | None:
        """Send what the rate allows; how long until the next token when datagrams wait, else None."""
        while self._sendq:
            key = self._sendq[0]
            active = self._active.get(key)
            if active is None:
                self._sendq.popleft()
                continue
            if self.bucket is not None:
                wait = self.bucket.wait_s()
                if wait > 0:
                    # Sleep for a few tokens at once (within the burst): one loop turn per datagram at a
                    # high rate costs more CPU than the datagrams themselves.
                    return max(wait, min(0.005, (self.bucket.burst - 1) / self.bucket.rate / 4))
            self._sendq.popleft()
            remote = active.conv.remote
            sock = self._sockets[socket.AF_INET6 if ":" in remote[0] else socket.AF_INET]
            try:
                sock.sendto(active.request, remote)
            except (BlockingIOError, InterruptedError):
                self._sendq.appendleft(key)  # the socket buffer is full: a moment for the kernel
                return 0.001
            except OSError as exc:
                del self._active[key]
                active.conv.gave_up(self._clock(), exc.strerror or str(exc))
                continue
            now = self._clock()
            self.datagrams_sent += 1
            active.attempts += 1
            active.sent_at = now
            active.conv.sent(now)
            self._seq += 1
            due = now + self.rto_s * self.backoff ** (active.attempts - 1)
            heapq.heappush(self._timers, (due, self._seq, key, active.generation))
        return None


def _normal(host: str) -> str:
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    return host
