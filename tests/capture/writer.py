"""A tiny pcap / pcapng writer and packet builders for the capture tests (test-only: the product never
writes captures)."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path


def captures_dir() -> Path | None:
    candidates = [Path(__file__).resolve().parents[3] / "shared" / "captures" / "public"]
    env = os.environ.get("VPNDOCTOR_SHARED")
    if env:
        candidates += [Path(env) / "captures" / "public", Path(env)]
    return next((c for c in candidates if (c / "ikev2four.pcap").is_file()), None)


CAPTURES = captures_dir()
TSHARK = shutil.which("tshark")


def pcap(
    packets: list[tuple[int, int, bytes]],
    *,
    link_type: int = 1,
    order: str = "<",
    nanos: bool = False,
    snaplen: int = 65535,
    origlens: list[int] | None = None,
) -> bytes:
    """packets: (seconds, fraction in micro- or nanoseconds, data)."""
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, link_type)]
    for i, (sec, frac, data) in enumerate(packets):
        orig = origlens[i] if origlens else len(data)
        out.append(struct.pack(order + "IIII", sec, frac, len(data), orig) + data)
    return b"".join(out)


def _pad(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


def block(block_type: int, body: bytes, order: str = "<") -> bytes:
    body = _pad(body)
    total = len(body) + 12
    return struct.pack(order + "II", block_type, total) + body + struct.pack(order + "I", total)


def option(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + _pad(value)


def shb(order: str = "<", options: bytes = b"") -> bytes:
    body = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1) + options
    return block(0x0A0D0D0A, body, order)


def idb(link_type: int, *, snaplen: int = 0, tsresol: int | None = None, order: str = "<") -> bytes:
    opts = b""
    if tsresol is not None:
        opts = option(9, bytes([tsresol]), order) + option(0, b"", order)
    return block(1, struct.pack(order + "HHI", link_type, 0, snaplen) + opts, order)


def epb(iface: int, ts_units: int, data: bytes, *, orig: int | None = None, order: str = "<") -> bytes:
    body = struct.pack(
        order + "IIIII",
        iface,
        ts_units >> 32,
        ts_units & 0xFFFFFFFF,
        len(data),
        len(data) if orig is None else orig,
    )
    return block(6, body + _pad(data) + option(1, b"comment", order) + option(0, b"", order), order)


def spb(data: bytes, *, orig: int | None = None, order: str = "<") -> bytes:
    return block(3, struct.pack(order + "I", len(data) if orig is None else orig) + data, order)


# -- packet builders ----------------------------------------------------------------------------------------


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ipv4(
    payload: bytes,
    *,
    src: bytes = bytes([10, 0, 0, 1]),
    dst: bytes = bytes([10, 0, 0, 2]),
    proto: int = 17,
    ident: int = 1,
    frag_offset: int = 0,
    more: bool = False,
    options: bytes = b"",
) -> bytes:
    ihl = (20 + len(options)) // 4
    frag = (frag_offset // 8) | (0x2000 if more else 0)
    head = struct.pack(
        "!BBHHHBBH", 0x40 | ihl, 0, 20 + len(options) + len(payload), ident, frag, 64, proto, 0
    )
    return head + src + dst + options + payload


def ipv6(
    payload: bytes,
    *,
    next_header: int = 17,
    src: bytes = bytes(15) + b"\x01",
    dst: bytes = bytes(15) + b"\x02",
) -> bytes:
    return struct.pack("!IHBB", 0x60000000, len(payload), next_header, 64) + src + dst + payload


def ext(next_header: int, body_len_units: int = 0) -> bytes:
    """A hop-by-hop / routing / destination-options header of (units+1)*8 bytes."""
    return bytes([next_header, body_len_units]) + bytes(6 + 8 * body_len_units)


def frag6(next_header: int, offset: int, more: bool, ident: int) -> bytes:
    return struct.pack("!BBHI", next_header, 0, offset | (1 if more else 0), ident)


def ether(ip: bytes, vlans: tuple[int, ...] = ()) -> bytes:
    ethertype = 0x86DD if ip[0] >> 4 == 6 else 0x0800
    head = b"\x02" * 6 + b"\x04" * 6
    tpids = [0x88A8] + [0x8100] * (len(vlans) - 1) if vlans else []
    for tpid, vid in zip(tpids, vlans, strict=True):
        head += struct.pack("!HH", tpid, vid)
    return head + struct.pack("!H", ethertype) + ip


def sll(ip: bytes) -> bytes:
    ethertype = 0x86DD if ip[0] >> 4 == 6 else 0x0800
    return struct.pack("!HHH", 0, 1, 6) + b"\x02" * 6 + b"\0\0" + struct.pack("!H", ethertype) + ip


def sll2(ip: bytes) -> bytes:
    ethertype = 0x86DD if ip[0] >> 4 == 6 else 0x0800
    return struct.pack("!HHIHBB", ethertype, 0, 2, 1, 0, 6) + b"\x02" * 6 + b"\0\0" + ip


def null(ip: bytes, family: int, order: str = "<") -> bytes:
    return struct.pack(order + "I", family) + ip
