"""Fragment reassembly: any order, duplicates, overlaps (first copy wins), what an incomplete datagram
reports, and bounded memory under a flood of distinct keys."""

from __future__ import annotations

import itertools

import pytest

from tests.capture import writer as w
from vpndoctor.capture.ip import Packet, parse_ip
from vpndoctor.capture.reassembly import Incomplete, Reassembled, Reassembler

PAYLOAD = bytes(range(256)) * 4  # 1024 bytes of IKE-ish UDP payload
DATAGRAM = w.udp(500, 4500, PAYLOAD)  # 1032 bytes after the IP header


def v4_frags(data: bytes = DATAGRAM, size: int = 400, ident: int = 7, ts: float = 0.0) -> list[Packet]:
    out = []
    for off in range(0, len(data), size):
        chunk = data[off : off + size]
        pkt = parse_ip(w.ipv4(chunk, ident=ident, frag_offset=off, more=off + size < len(data)), ts)
        assert pkt is not None
        out.append(pkt)
    return out


def v6_frags(data: bytes = DATAGRAM, size: int = 400, ident: int = 9) -> list[Packet]:
    out = []
    for off in range(0, len(data), size):
        more = off + size < len(data)
        pkt = parse_ip(w.ipv6(w.frag6(17, off, more, ident) + data[off : off + size], next_header=44))
        assert pkt is not None
        out.append(pkt)
    return out


def run(pkts: list[Packet], r: Reassembler | None = None) -> list[Packet | Reassembled | Incomplete]:
    r = r or Reassembler()
    out: list[Packet | Reassembled | Incomplete] = []
    for p in pkts:
        out += r.feed(p)
    return out + list(r.flush())


def only_reassembled(events: list[Packet | Reassembled | Incomplete]) -> Reassembled:
    assert len(events) == 1 and isinstance(events[0], Reassembled), events
    return events[0]


@pytest.mark.parametrize("maker", [v4_frags, v6_frags], ids=["ipv4", "ipv6"])
def test_any_order(maker: object) -> None:
    frags = maker()  # type: ignore[operator]
    for order in itertools.permutations(frags):
        done = only_reassembled(run(list(order)))
        p = done.packet
        assert done.fragment_count == 3 and p.fragments == 3 and p.ip_fragmented
        assert (p.sport, p.dport, p.udp_payload) == (500, 4500, PAYLOAD)


def test_unfragmented_packets_pass_through() -> None:
    pkt = parse_ip(w.ipv4(DATAGRAM))
    assert run([pkt]) == [pkt]  # type: ignore[list-item]


def test_ipv6_fragmentable_part_with_destination_options() -> None:
    data = w.ext(17) + DATAGRAM
    frags = []
    for off in range(0, len(data), 520):
        more = off + 520 < len(data)
        pkt = parse_ip(w.ipv6(w.frag6(60, off, more, 1) + data[off : off + 520], next_header=44))
        assert pkt is not None
        frags.append(pkt)
    p = only_reassembled(run(frags)).packet
    assert (p.proto, p.sport, p.udp_payload) == (17, 500, PAYLOAD)


def test_duplicates_are_harmless() -> None:
    a, b, c = v4_frags()
    done = only_reassembled(run([a, b, b, a, c]))
    assert done.packet.udp_payload == PAYLOAD and done.fragment_count == 5


def test_overlap_first_copy_wins() -> None:
    a, b, c = v4_frags()
    forged = parse_ip(w.ipv4(b"\xee" * 400, ident=7, frag_offset=200, more=True))
    assert forged is not None
    done = only_reassembled(run([a, forged, b, c]))
    # forged covered 200..600: 200..400 came after `a` (a wins), 400..600 arrived before `b` (forged wins).
    got = done.packet.payload
    assert got[:400] == DATAGRAM[:400] and got[400:600] == b"\xee" * 200 and got[600:] == DATAGRAM[600:]


def test_missing_middle() -> None:
    a, _b, c = v4_frags()
    [inc] = run([a, c])
    assert isinstance(inc, Incomplete)
    assert (inc.first_seen, inc.last_seen, inc.missing_ranges) == (True, True, ((400, 800),))
    assert inc.bytes_seen == 400 + len(DATAGRAM) - 800 and inc.reason == "end_of_capture"


def test_first_fragment_only() -> None:
    a, _b, _c = v4_frags()
    [inc] = run([a])
    assert isinstance(inc, Incomplete)
    assert (inc.first_seen, inc.last_seen, inc.missing_ranges, inc.bytes_seen) == (
        True,
        False,
        ((400, None),),
        400,
    )


def test_last_fragment_only() -> None:
    *_, c = v4_frags()
    [inc] = run([c])
    assert isinstance(inc, Incomplete)
    assert (inc.first_seen, inc.last_seen, inc.missing_ranges) == (False, True, ((0, 800),))


def test_timeout_in_capture_time() -> None:
    a, b, c = v4_frags()
    r = Reassembler()
    assert r.feed(a) == []
    later = parse_ip(w.ipv4(b"x", ident=99), ts=31.0)
    assert later is not None
    events = r.feed(later)
    assert isinstance(events[0], Incomplete) and events[0].reason == "timeout" and events[1] is later
    assert len(r) == 0


def test_too_many_fragments_and_too_large() -> None:
    many = [parse_ip(w.ipv4(b"12345678", ident=5, frag_offset=0, more=True)) for _ in range(65)]
    events = run([p for p in many if p])
    assert [e.reason for e in events if isinstance(e, Incomplete)] == ["too_many_fragments"]
    huge = parse_ip(w.ipv4(b"x" * 16, ident=6, frag_offset=65528, more=False))
    assert huge is not None
    [inc] = run([huge])
    assert isinstance(inc, Incomplete) and inc.reason == "too_large"


def test_flood_of_distinct_keys_stays_bounded() -> None:
    r = Reassembler()
    evicted = 0
    peak = 0
    for ident in range(10_000):
        pkt = parse_ip(w.ipv4(b"y" * 64, ident=ident, frag_offset=0, more=True), ts=ident * 0.001)
        assert pkt is not None
        evicted += sum(isinstance(e, Incomplete) for e in r.feed(pkt))
        peak = max(peak, len(r))
    assert peak == 1024 and evicted == 10_000 - 1024
    assert len(r.flush()) == 1024 and len(r) == 0


def test_ipv4_and_ipv6_with_same_id_do_not_mix() -> None:
    events = run(v4_frags(ident=9) + v6_frags(ident=9))
    assert sum(isinstance(e, Reassembled) for e in events) == 2


def test_end_to_end_from_a_capture_file() -> None:
    import io

    from vpndoctor.capture.ip import packet_from_frame
    from vpndoctor.capture.reader import CaptureReader

    frags = [w.ipv4(DATAGRAM[off : off + 504], ident=3, frag_offset=off, more=off + 504 < len(DATAGRAM))
             for off in range(0, len(DATAGRAM), 504)]  # fmt: skip
    lone = w.ipv4(DATAGRAM[:504], ident=4, more=True)  # first fragment only: the rest was dropped on the path
    data = w.pcap([(10, i, w.ether(ip)) for i, ip in enumerate([frags[2], lone, frags[0], frags[1]])])
    r = Reassembler()
    events: list[Packet | Reassembled | Incomplete] = []
    for frame in CaptureReader(io.BytesIO(data)).frames():
        pkt = packet_from_frame(frame)
        assert pkt is not None
        events += r.feed(pkt)
    events += r.flush()
    done, inc = events
    assert isinstance(done, Reassembled) and done.packet.udp_payload == PAYLOAD and done.fragment_count == 3
    assert isinstance(inc, Incomplete) and inc.first_seen and not inc.last_seen and inc.key[3] == 4
