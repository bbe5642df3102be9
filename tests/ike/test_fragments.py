"""IKEv2 fragmentation (RFC 7383): build, protect, unprotect and reassemble in any order with duplicates;
every datagram within the size asked; the reassembler's limits on count, bytes, numbering and time."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpndoctor.ike.constants import EncrId, ExchangeType, IntegId, PayloadType, PrfId
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.fragments import (
    FragmentReassembler,
    ReassemblyError,
    build_fragments,
    max_fragment_plaintext_bytes,
)
from vpndoctor.ike.keys import CipherSuite, DirectionKeys, derive_ike_keys
from vpndoctor.ike.message import Header, decode_message
from vpndoctor.ike.payloads import EncryptedFragmentPayload
from vpndoctor.ike.sk import unprotect


def counter_rng(seed: bytes) -> Callable[[int], bytes]:
    state = {"n": 0}

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            state["n"] += 1
            out += hashlib.sha256(seed + state["n"].to_bytes(8, "big")).digest()
        return out[:n]

    return rng


SUITES = {
    "aes256-sha256": CipherSuite(EncrId.AES_CBC, 256, PrfId.HMAC_SHA2_256, IntegId.HMAC_SHA2_256_128, 14),
    "3des-sha1": CipherSuite(EncrId.DES3, None, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, 2),
    "aes256gcm16": CipherSuite(EncrId.AES_GCM_16, 256, PrfId.HMAC_SHA2_384, None, 20),
}
HEADER = Header(
    spi_i=bytes(range(8)),
    spi_r=bytes(range(8, 16)),
    next_payload=PayloadType.SKF,
    exchange=ExchangeType.IKE_AUTH,
    flags=0x20,
    message_id=1,
)
# A CERT-sized inner chain: what makes IKE_AUTH exceed the path MTU with 3072-bit RSA certificates.
PLAINTEXT = bytes(range(256)) * 14


def keys_for(suite: CipherSuite) -> DirectionKeys:
    keys = derive_ike_keys(suite, b"g" * 32, b"n" * 32, b"m" * 32, HEADER.spi_i, HEADER.spi_r)
    return keys.responder()


def wire_overhead(ip_version: int, natt: bool) -> int:
    return (20 if ip_version == 4 else 40) + 8 + (4 if natt else 0)


def receive(
    datagrams: list[bytes], keys: DirectionKeys, suite: CipherSuite, order: list[int]
) -> tuple[int, bytes]:
    reassembler = FragmentReassembler()
    result = None
    for index in order:
        raw = datagrams[index]
        (payload,) = decode_message(raw).payloads
        assert isinstance(payload, EncryptedFragmentPayload)
        first, part = unprotect(raw, keys, suite)
        assert first == payload.first_inner
        done = reassembler.add(payload.fragment_number, payload.total_fragments, first, part, now=0.0)
        if done is not None:
            assert result is None, "completed twice"
            result = done
    assert result is not None and reassembler.complete
    return result


@pytest.mark.parametrize("name", list(SUITES))
@pytest.mark.parametrize(
    ("max_bytes", "ip_version", "natt"), [(576, 4, True), (1280, 6, True), (1500, 4, False)]
)
def test_build_then_reassemble_shuffled_with_duplicates(
    name: str, max_bytes: int, ip_version: int, natt: bool
) -> None:
    suite = SUITES[name]
    keys = keys_for(suite)
    datagrams = build_fragments(
        HEADER,
        PayloadType.IDr,
        PLAINTEXT,
        keys,
        suite,
        counter_rng(b"r"),
        max_bytes,
        ip_version=ip_version,
        natt=natt,
    )
    assert len(datagrams) > 1
    for number, raw in enumerate(datagrams, start=1):
        on_wire = len(raw) + wire_overhead(ip_version, natt)
        assert on_wire <= max_bytes
        if number < len(datagrams):  # all but the last are filled to within one cipher block
            assert on_wire > max_bytes - suite.block_bytes
        assert raw[16] == PayloadType.SKF
        assert raw[28] == (PayloadType.IDr if number == 1 else 0)  # RFC 7383 §2.5
    order = list(range(len(datagrams))) * 2
    random.Random(7).shuffle(order)
    assert receive(datagrams, keys, suite, order) == (PayloadType.IDr, PLAINTEXT)
    assert receive(datagrams, keys, suite, list(reversed(range(len(datagrams))))) == (
        PayloadType.IDr,
        PLAINTEXT,
    )


def test_room_per_fragment() -> None:
    suite = SUITES["aes256-sha256"]
    # 1500 - 20 IP - 8 UDP - 4 marker - 28 IKE - 8 SKF - 16 IV - 16 ICV = 1400: 87 blocks, 1392 - 1 pad length
    assert max_fragment_plaintext_bytes(suite, 1500) == 1391
    gcm = SUITES["aes256gcm16"]
    # 1280 - 40 - 8 - 28 - 8 - 8 IV - 16 ICV = 1172, minus the pad length byte
    assert max_fragment_plaintext_bytes(gcm, 1280, ip_version=6, natt=False) == 1171


def test_empty_and_small_plaintexts_make_one_fragment() -> None:
    suite = SUITES["aes256gcm16"]
    keys = keys_for(suite)
    for plaintext in (b"", b"x"):
        (raw,) = build_fragments(HEADER, PayloadType.EAP, plaintext, keys, suite, counter_rng(b"e"), 1280)
        assert unprotect(raw, keys, suite) == (PayloadType.EAP, plaintext)
        (payload,) = decode_message(raw).payloads
        assert isinstance(payload, EncryptedFragmentPayload)
        assert (payload.fragment_number, payload.total_fragments) == (1, 1)


def test_impossible_sizes() -> None:
    suite = SUITES["aes256-sha256"]
    keys = keys_for(suite)
    with pytest.raises(ValueError):
        build_fragments(HEADER, 0, b"abc", keys, suite, counter_rng(b"s"), 100)
    with pytest.raises(ValueError):
        build_fragments(HEADER, 0, b"abc", keys, suite, counter_rng(b"s"), 1280, ip_version=5)


# --- the reassembler


def test_reassembly_in_any_order_with_duplicates_and_late_copies() -> None:
    r = FragmentReassembler()
    assert r.add(3, 3, 0, b"C", now=1.0) is None
    assert r.add(3, 3, 0, b"C", now=1.1) is None  # duplicate ignored
    assert r.add(1, 3, PayloadType.IDr, b"A", now=1.2) is None
    assert (r.total, r.received, r.complete) == (3, 2, False)
    assert r.add(2, 3, 0, b"B", now=1.3) == (PayloadType.IDr, b"ABC")
    assert r.complete and not r.expired(1000.0)
    assert r.add(2, 3, 0, b"B", now=1.4) is None  # a retransmission after completion


@settings(max_examples=200, deadline=None)
@given(total=st.integers(1, 20), data=st.data())
def test_any_arrival_order_reassembles(total: int, data: st.DataObject) -> None:
    parts = [bytes([n]) * n for n in range(1, total + 1)]
    order = data.draw(st.lists(st.integers(0, total - 1), max_size=3 * total))
    order += data.draw(st.permutations(range(total)))
    r = FragmentReassembler()
    results = []
    for index in order:
        done = r.add(index + 1, total, PayloadType.CERT if index == 0 else 0, parts[index], now=0.0)
        if done is not None:
            results.append(done)
    assert results == [(PayloadType.CERT, b"".join(parts))]


def test_total_changing_is_an_error_and_sticky() -> None:
    r = FragmentReassembler()
    r.add(1, 4, PayloadType.IDr, b"a", now=0.0)
    with pytest.raises(ReassemblyError) as info:
        r.add(2, 5, 0, b"b", now=0.0)
    assert isinstance(info.value, MalformedMessage)
    with pytest.raises(ReassemblyError):  # sticky, even for a well-formed fragment
        r.add(2, 4, 0, b"b", now=0.0)


@pytest.mark.parametrize(("number", "total"), [(0, 3), (4, 3), (1, 0), (65535, 65535), (1, 65)])
def test_bad_numbering(number: int, total: int) -> None:
    with pytest.raises(ReassemblyError):
        FragmentReassembler(max_fragments=64).add(number, total, 0, b"x", now=0.0)


def test_fragment_count_limit() -> None:
    r = FragmentReassembler(max_fragments=4)
    with pytest.raises(ReassemblyError):
        r.add(1, 5, 0, b"x", now=0.0)
    ok = FragmentReassembler(max_fragments=4)
    for n in range(1, 4):
        assert ok.add(n, 4, 0, b"x", now=0.0) is None
    assert ok.add(4, 4, 0, b"x", now=0.0) == (0, b"xxxx")


def test_byte_limit() -> None:
    r = FragmentReassembler(max_total_bytes=1000)
    r.add(1, 3, 0, bytes(600), now=0.0)
    r.add(2, 3, 0, bytes(400), now=0.0)  # exactly at the limit
    with pytest.raises(ReassemblyError):
        r.add(3, 3, 0, b"!", now=0.0)


def test_timeout() -> None:
    r = FragmentReassembler(timeout_s=5.0)
    assert not r.expired(100.0)  # nothing received, nothing to expire
    r.add(1, 2, 0, b"a", now=100.0)
    assert not r.expired(105.0)
    assert r.expired(105.5)
    with pytest.raises(ReassemblyError):
        r.add(2, 2, 0, b"b", now=105.5)
