"""The capture fast path and its worker process change nothing: every public capture and random mixes of
synthetic traffic (ESP, ESP-in-UDP, IKE with lost IP fragments and timeouts, TCP 443 flows with hellos, VLAN,
IPv6, snapped packets, time going backwards) give the same report read exactly (every packet as a `Packet`),
with the fast path, and with the file split between two processes at any record boundary (or at a wrong
guess, which must be noticed)."""

from __future__ import annotations

import io
import json
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.capture import writer as w
from tests.capture.test_analysis import auth, sa_init_request, sa_init_response
from vpndoctor.capture import analysis, conversations, fastpath, worker
from vpndoctor.capture.reader import CaptureError
from vpndoctor.cli.output import to_json
from vpndoctor.tls.hello import Version, build_client_hello

CLIENT = bytes([10, 0, 0, 1])
SERVER = bytes([10, 0, 0, 2])


@pytest.fixture(autouse=True, params=["c", "python"])
def walk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with the record walk in C (`_scan.c`) and with its pure-Python twin."""
    if request.param == "c":
        assert fastpath.native is not None, "the C walk was not built (gcc and Python's headers missing?)"
    else:
        monkeypatch.setattr(fastpath, "native", None)
    return str(request.param)


def exact_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastpath.FastPath, "pcap_records", lambda self, buf, pos, *args: pos)
    monkeypatch.setattr(fastpath.FastPath, "pcapng_blocks", lambda self, buf, pos, *args: pos)
    monkeypatch.setattr(fastpath.FastPath, "start_split", lambda self, *args: None)


def report_json(path: Path, mode: str, monkeypatch: pytest.MonkeyPatch, split_at: int | None = None) -> str:
    with monkeypatch.context() as m:
        if mode == "exact":
            exact_only(m)
        elif mode == "fast":
            m.setattr(fastpath.FastPath, "start_split", lambda self, *args: None)
        elif mode == "split":
            m.setattr(fastpath, "PARALLEL_MIN_BYTES", 0)
            if split_at is not None:
                m.setattr(worker, "_find_boundary", lambda *args: split_at)
        elif mode == "split-tight":  # a worker that runs out of room for keys and deferred records
            m.setattr(fastpath, "PARALLEL_MIN_BYTES", 0)
            m.setattr(worker, "_WORKER_MAX_KEYS", 2)
            m.setattr(worker, "_WORKER_MAX_DEFERRED", 5)
            m.setattr(worker, "_WORKER_STEP_BYTES", 2000)
        elif mode == "stream":  # not a mapped file: the fast path on the chunked reader
            return to_json(analysis.analyse(io.BytesIO(path.read_bytes()), name="x"))
        return to_json(analysis.analyse(path, name="x"))


# -- synthetic traffic -------------------------------------------------------------------------------------


def tcp(sport: int, dport: int, seq: int, flags: int, payload: bytes = b"", ack: int = 0) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, flags, 65535, 0, 0) + payload


def esp(spi: int, seq: int, size: int) -> bytes:
    return struct.pack("!II", spi, seq) + bytes(size)


CLIENT_HELLO = build_client_hello(Version.TLS1_2, [0x003B, 0xC02F], "vpn.example.test", bytes(32))
# a TLS 1.2 ServerHello record choosing TLS_RSA_WITH_NULL_SHA256
SERVER_HELLO = bytes([22, 3, 3, 0, 42, 2, 0, 0, 38, 3, 3]) + bytes(32) + b"\x00\x00\x3b\x00"


class Traffic:
    """A random but reproducible mix, as pcap records (seconds, microseconds, frame, original length)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.t = 1_700_000_000.0
        self.records: list[tuple[int, int, bytes, int]] = []
        self.flows: dict[int, list[int]] = {}  # client port -> [client seq, server seq]
        self.ident = 1

    def add(self, frame: bytes, orig: int | None = None) -> None:
        rng = self.rng
        step = rng.choice([0.0001] * 30 + [0.5, 31.0, -2.0])  # timeouts and time going backwards
        self.t = max(self.t + step, 1_600_000_000.0)
        sec = int(self.t)
        usec = int((self.t - sec) * 1e6)
        if rng.random() < 0.02:  # a fraction out of range, as a damaged or hostile file may have
            usec += rng.choice([1_000_000, 45_000_000])
        self.records.append((sec, usec, frame, orig or len(frame)))

    def v4(self, payload: bytes, proto: int, to_server: bool = True, **kw: object) -> bytes:
        src, dst = (CLIENT, SERVER) if to_server else (SERVER, CLIENT)
        self.ident += 1
        return w.ether(w.ipv4(payload, src=src, dst=dst, proto=proto, ident=self.ident, **kw))  # type: ignore[arg-type]

    def step(self) -> None:
        rng = self.rng
        kind = rng.choice(
            ["esp"] * 8 + ["natt"] * 3 + ["tcp"] * 8
            + ["keepalive", "ike", "ikefrag", "vlan", "v6", "snapped", "udp", "arp", "tcp80", "gre"]
            + ["v6"] * 4
        )  # fmt: skip
        to_server = rng.random() < 0.5
        if kind == "esp":
            self.add(
                self.v4(esp(rng.choice([1, 2, 3, 0x4000]), 7, rng.choice([20, 120, 1300])), 50, to_server)
            )
        elif kind == "natt":
            body = esp(rng.choice([5, 6]), 1, rng.choice([20, 500]))
            self.add(self.v4(w.udp(4500, 4500, body), 17, to_server))
        elif kind == "keepalive":
            self.add(self.v4(w.udp(4500, 4500, b"\xff"), 17, to_server))
        elif kind == "ike":
            msg = rng.choice(
                [sa_init_request(), sa_init_response(), auth(response=False), auth(response=True)]
            )
            self.add(self.v4(w.udp(500, 500, msg), 17, to_server))
        elif kind == "ikefrag":  # a big IKE_AUTH, sometimes with its second fragment lost
            datagram = w.udp(4500, 4500, b"\0\0\0\0" + auth(response=False, size=2000))
            ident = self.ident = self.ident + 1
            self.add(w.ether(w.ipv4(datagram[:1480], src=CLIENT, dst=SERVER, ident=ident, more=True)))
            if rng.random() < 0.6:
                self.step()  # something in between
                self.add(
                    w.ether(w.ipv4(datagram[1480:], src=CLIENT, dst=SERVER, ident=ident, frag_offset=1480))
                )
        elif kind == "tcp":
            port = rng.choice([40001, 40002, 40003, 40004])
            if port not in self.flows or rng.random() < 0.02:
                self.flows[port] = [1000, 5000]
                self.add(self.v4(tcp(port, 443, 999, 0x02), 6))
                self.add(self.v4(tcp(443, port, 4999, 0x12), 6, False))
                return
            seqs = self.flows[port]
            what = rng.choice(["hello", "data", "data", "ack", "fin", "rst"])
            if what == "hello" and rng.random() < 0.5:
                self.add(self.v4(tcp(443, port, seqs[1], 0x18, SERVER_HELLO), 6, False))
                seqs[1] += len(SERVER_HELLO)
            elif what == "hello":
                self.add(self.v4(tcp(port, 443, seqs[0], 0x18, CLIENT_HELLO), 6))
                seqs[0] += len(CLIENT_HELLO)
            elif what == "data":
                data = bytes([23, 3, 3]) + bytes(rng.choice([100, 1400]))
                side = 0 if to_server else 1
                sport, dport = (port, 443) if to_server else (443, port)
                self.add(self.v4(tcp(sport, dport, seqs[side], 0x10, data), 6, to_server))
                seqs[side] += len(data)
            elif what == "ack":
                self.add(self.v4(tcp(port, 443, seqs[0], 0x10), 6))
            else:
                self.add(self.v4(tcp(port, 443, seqs[0], 0x11 if what == "fin" else 0x04), 6))
        elif kind == "vlan":
            self.add(w.ether(w.ipv4(esp(1, 1, 100), proto=50, src=CLIENT, dst=SERVER), vlans=(5,)))
        elif kind == "v6":
            self.v6(to_server)
        elif kind == "snapped":
            frame = self.v4(tcp(40001, 443, 1, 0x10, bytes(1000)), 6)
            self.add(frame[: rng.choice([40, 54, 60, 100])], len(frame))
        elif kind == "udp":
            self.add(self.v4(w.udp(53, 5353, bytes(rng.choice([0, 30]))), 17, to_server))
        elif kind == "arp":
            self.add(b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + bytes(46))
        elif kind == "tcp80":
            self.add(self.v4(tcp(40000, 80, 1, 0x10, bytes(50)), 6))
        else:
            self.add(self.v4(bytes(40), 47))

    def v6(self, to_server: bool) -> None:
        """IPv6: ESP, ESP-in-UDP, a TCP 443 flow with hellos and data, other traffic, extension headers."""
        rng = self.rng
        a, b = bytes(15) + b"\x01", bytes(15) + b"\x02"
        src, dst = (a, b) if to_server else (b, a)
        what = rng.choice(["esp", "esp", "natt", "tcp", "tcp", "tcp", "ext", "icmp", "udp", "short"])
        if what == "esp":
            self.add(
                w.ether(
                    w.ipv6(
                        esp(rng.choice([9, 10]), 1, rng.choice([64, 900])), next_header=50, src=src, dst=dst
                    )
                )
            )
        elif what == "natt":
            self.add(w.ether(w.ipv6(w.udp(4500, 4500, esp(11, 1, 100)), next_header=17, src=src, dst=dst)))
        elif what == "udp":
            self.add(w.ether(w.ipv6(w.udp(53, 53, bytes(30)), next_header=17, src=src, dst=dst)))
        elif what == "icmp":
            self.add(w.ether(w.ipv6(bytes(40), next_header=58, src=src, dst=dst)))
        elif what == "ext":
            self.add(w.ether(w.ipv6(w.ext(50) + esp(9, 2, 64), next_header=0, src=src, dst=dst)))
        elif what == "short":
            self.add(w.ether(w.ipv6(esp(9, 3, 4), next_header=50, src=src, dst=dst)))
        else:
            port = 40100
            if port not in self.flows or rng.random() < 0.05:
                self.flows[port] = [1000, 5000]
                self.add(w.ether(w.ipv6(tcp(port, 443, 999, 0x02), next_header=6, src=a, dst=b)))
                self.add(w.ether(w.ipv6(tcp(443, port, 4999, 0x12), next_header=6, src=b, dst=a)))
                self.add(
                    w.ether(w.ipv6(tcp(port, 443, 1000, 0x18, CLIENT_HELLO), next_header=6, src=a, dst=b))
                )
                self.add(
                    w.ether(w.ipv6(tcp(443, port, 5000, 0x18, SERVER_HELLO), next_header=6, src=b, dst=a))
                )
                self.flows[port] = [1000 + len(CLIENT_HELLO), 5000 + len(SERVER_HELLO)]
                return
            seqs = self.flows[port]
            data = bytes([23, 3, 3]) + bytes(rng.choice([0, 100, 1200]))
            sport, dport = (port, 443) if to_server else (443, port)
            self.add(
                w.ether(
                    w.ipv6(
                        tcp(sport, dport, seqs[0 if to_server else 1], 0x10, data),
                        next_header=6,
                        src=src,
                        dst=dst,
                    )
                )
            )
            seqs[0 if to_server else 1] += len(data)

    def pcap(self, n: int, link_type: int = 1) -> bytes:
        while len(self.records) < n:
            self.step()
        out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, link_type)]
        for sec, usec, frame, orig in self.records:
            if link_type != 1:  # the same packets captured with tcpdump -i any: Linux cooked headers
                frame, orig = cooked(frame, link_type), orig + (2 if link_type == 113 else 6)
            out.append(struct.pack("<IIII", sec, usec, len(frame), orig) + frame)
        return b"".join(out)

    def pcapng(self, n: int) -> bytes:
        """The same traffic as pcapng: Ethernet on interfaces 0 (microseconds) and 2 (nanoseconds), raw IP on
        interface 1; a second section halfway, big-endian (read by the exact path only)."""
        while len(self.records) < n:
            self.step()
        out = [w.shb(), w.idb(1), w.idb(101), w.idb(1, tsresol=9)]
        for i, (sec, usec, frame, orig) in enumerate(self.records):
            order = ">" if i >= n // 2 else "<"
            if i == n // 2:
                out += [
                    w.shb(">"),
                    w.idb(1, order=">"),
                    w.idb(101, order=">"),
                    w.idb(1, tsresol=9, order=">"),
                ]
            iface = self.rng.choice([0, 0, 0, 2, 1])
            if iface == 1:  # raw IP: drop the Ethernet header (an ARP frame stays as it is: not IP)
                frame = frame[14:] if frame[12:14] in (b"\x08\x00", b"\x86\xdd") else frame
                orig -= 14
            units = sec * 1_000_000 + usec if iface != 2 else (sec * 1_000_000 + usec) * 1000
            out.append(w.epb(iface, units, frame, orig=max(orig, len(frame)), order=order))
        return b"".join(out)


def cooked(frame: bytes, link_type: int) -> bytes:
    ethertype, rest = frame[12:14], frame[14:]
    if link_type == 113:
        return struct.pack("!HHH", 0, 1, 6) + b"\x02" * 6 + b"\0\0" + ethertype + rest
    return ethertype + b"\0\0" + struct.pack("!IHBB", 2, 1, 0, 6) + b"\x02" * 6 + b"\0\0" + rest


def offsets(data: bytes) -> Iterator[int]:
    at = 24
    while at < len(data):
        yield at
        at += 16 + struct.unpack_from("<I", data, at + 8)[0]


# -- tests -------------------------------------------------------------------------------------------------


@pytest.mark.skipif(w.CAPTURES is None, reason="public captures not available")
@pytest.mark.parametrize(
    "name", sorted(p.name for p in (w.CAPTURES.iterdir() if w.CAPTURES else []) if ".pcap" in p.name)
)
def test_public_captures_same_every_way(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert w.CAPTURES is not None
    path = w.CAPTURES / name
    want = report_json(path, "exact", monkeypatch)
    for mode in ("fast", "split", "stream"):
        assert report_json(path, mode, monkeypatch) == want, mode


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), n=st.integers(50, 400))
def test_random_traffic_same_every_way(
    seed: int, n: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = Traffic(seed).pcap(n)
    path = tmp_path / f"mix-{seed}-{n}.pcap"
    path.write_bytes(data)
    want = report_json(path, "exact", monkeypatch)
    for mode in ("fast", "split", "split-tight", "stream"):
        assert report_json(path, mode, monkeypatch) == want, mode


def test_split_at_every_record_and_at_wrong_guesses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = Traffic(7).pcap(120)
    path = tmp_path / "mix.pcap"
    path.write_bytes(data)
    want = report_json(path, "exact", monkeypatch)
    bounds = list(offsets(data))
    for at in bounds[1:]:
        assert report_json(path, "split", monkeypatch, split_at=at) == want, at
    for at in (bounds[5] + 3, bounds[60] + 17, len(data) - 5):  # inside a packet: noticed, read on alone
        assert report_json(path, "split", monkeypatch, split_at=at) == want, at


def test_split_file_with_damage_at_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = Traffic(11).pcap(150)
    for cut in (len(data) - 3, len(data) - 20, len(data) - 700):
        path = tmp_path / f"cut-{cut}.pcap"
        path.write_bytes(data[:cut])
        want = report_json(path, "exact", monkeypatch)
        assert report_json(path, "split", monkeypatch) == want
        assert report_json(path, "fast", monkeypatch) == want
    lying = bytearray(data)
    struct.pack_into("<I", lying, list(offsets(data))[100] + 8, 300_000)
    path = tmp_path / "lying.pcap"
    path.write_bytes(bytes(lying))
    for mode in ("exact", "fast", "split"):
        with pytest.raises(CaptureError, match="300000 captured bytes"):
            report_json(path, mode, monkeypatch)


def test_fast_path_settles_most_packets(tmp_path: Path) -> None:
    """Not a timing test: that bulk ESP and TLS data really go the fast way (the point of it)."""
    data = Traffic(3).pcap(2000)
    path = tmp_path / "mix.pcap"
    path.write_bytes(data)
    seen = []
    original = conversations.packet_from_frame
    try:
        conversations.packet_from_frame = lambda f: seen.append(f) or original(f)  # type: ignore[assignment]
        report = analysis.analyse(path, name="x")
    finally:
        conversations.packet_from_frame = original
    assert report.packets == 2000
    assert len(seen) < 2000 * 0.45, len(seen)
    assert sum(report.packets_by_kind.values()) == report.packets


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), n=st.integers(50, 300))
def test_random_pcapng_same_every_way(
    seed: int, n: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / f"mix-{seed}-{n}.pcapng"
    path.write_bytes(Traffic(seed).pcapng(n))
    want = report_json(path, "exact", monkeypatch)
    for mode in ("fast", "stream"):
        assert report_json(path, mode, monkeypatch) == want, mode


def test_pcapng_damage_same_every_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = Traffic(5).pcapng(200)
    for cut in (len(data) - 3, len(data) - 30, len(data) // 3):
        path = tmp_path / f"cut-{cut}.pcapng"
        path.write_bytes(data[:cut])
        assert report_json(path, "fast", monkeypatch) == report_json(path, "exact", monkeypatch)


@pytest.mark.parametrize("link_type", [113, 276], ids=["sll", "sll2"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_linux_cooked_same_every_way(
    link_type: int, seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / f"cooked-{link_type}-{seed}.pcap"
    path.write_bytes(Traffic(seed).pcap(400, link_type))
    want = report_json(path, "exact", monkeypatch)
    assert json.loads(want)["packets_by_kind"].get("esp", 0) > 50
    for mode in ("fast", "split", "split-tight", "stream"):
        assert report_json(path, mode, monkeypatch) == want, mode
