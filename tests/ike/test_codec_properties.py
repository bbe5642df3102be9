"""Property tests: every payload and whole messages survive encode -> decode unchanged, and no input bytes,
random or mutated from valid encodings, make the decoder raise anything but MalformedMessage."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.ike import sample_auth_request, sample_sa_init
from vpndoctor.ike.constants import EapCode, PayloadType, TransformAttr, TsType
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.message import (
    HEADER_BYTES,
    Header,
    Message,
    decode_message,
    decode_payload_chain,
    encode_payload_chain,
    sk_payload_offset,
)
from vpndoctor.ike.payloads import (
    PAYLOAD_CLASSES,
    AuthPayload,
    CertPayload,
    CertReqPayload,
    CpPayload,
    DeletePayload,
    EapPayload,
    EncryptedFragmentPayload,
    EncryptedPayload,
    IdPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    TrafficSelector,
    Transform,
    TsPayload,
    UnknownPayload,
    VendorIdPayload,
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)


def blob(max_size: int = 48) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=max_size)


attr_types = st.integers(0, 0x7FFF).filter(lambda t: t != TransformAttr.KEY_LENGTH)
transforms = st.builds(
    Transform,
    type=u8,
    id=u16,
    key_length=st.none() | u16,
    attributes=st.lists(st.tuples(attr_types, u16 | blob(8)), max_size=3).map(tuple),
)
proposals = st.builds(
    Proposal,
    number=u8,
    protocol=u8,
    spi=st.sampled_from([b"", b"\x01\x02\x03\x04", bytes(range(8))]) | blob(12),
    transforms=st.lists(transforms, max_size=5).map(tuple),
)


@st.composite
def traffic_selectors(draw: st.DrawFn) -> TrafficSelector:
    ts_type = draw(st.sampled_from([TsType.IPV4_ADDR_RANGE, TsType.IPV6_ADDR_RANGE]) | u8)
    known: dict[int, int] = {TsType.IPV4_ADDR_RANGE: 4, TsType.IPV6_ADDR_RANGE: 16}
    size = known[ts_type] if ts_type in known else draw(st.integers(0, 20))
    addr = st.binary(min_size=size, max_size=size)
    return TrafficSelector(ts_type, draw(u8), draw(u16), draw(u16), draw(addr), draw(addr))


@st.composite
def deletes(draw: st.DrawFn) -> DeletePayload:
    spi_size = draw(st.sampled_from([0, 4, 8]) | st.integers(0, 16))
    spis = draw(st.lists(st.binary(min_size=spi_size, max_size=spi_size), max_size=4 if spi_size else 0))
    return DeletePayload(draw(u8), spi_size, tuple(spis))


@st.composite
def eaps(draw: st.DrawFn) -> EapPayload:
    code = draw(st.sampled_from(list(EapCode)) | u8)
    eap_type = None if code in (EapCode.SUCCESS, EapCode.FAILURE) else draw(u8)
    return EapPayload(code, draw(u8), eap_type, draw(blob()))


unknown_types = st.integers(1, 255).filter(lambda t: t not in PAYLOAD_CLASSES)

plain_payloads: st.SearchStrategy[Payload] = st.one_of(
    st.builds(SaPayload, st.lists(proposals, max_size=3).map(tuple)),
    st.builds(KePayload, u16, blob(64)),
    st.builds(IdPayload, u8, blob(), st.booleans()),
    st.builds(CertPayload, u8, blob()),
    st.builds(CertReqPayload, u8, blob()),
    st.builds(AuthPayload, u8, blob()),
    st.builds(NoncePayload, blob(64)),
    st.builds(NotifyPayload, u16, u8, blob(8), blob()),
    deletes(),
    st.builds(VendorIdPayload, blob()),
    st.builds(TsPayload, st.lists(traffic_selectors(), max_size=3).map(tuple), st.booleans()),
    st.builds(CpPayload, u8, st.lists(st.tuples(st.integers(0, 0x7FFF), blob(16)), max_size=4).map(tuple)),
    eaps(),
    st.builds(UnknownPayload, unknown_types, st.just(False), blob()),
)
encrypted_payloads: st.SearchStrategy[Payload] = st.one_of(
    st.builds(EncryptedPayload, u8, blob(96)),
    st.builds(EncryptedFragmentPayload, u8, u16, u16, blob(96)),
)


@st.composite
def chains(draw: st.DrawFn) -> tuple[Payload, ...]:
    payloads = draw(st.lists(plain_payloads, max_size=6))
    if draw(st.booleans()):
        payloads.append(draw(encrypted_payloads))
    return tuple(payloads)


headers = st.builds(
    Header,
    spi_i=st.binary(min_size=8, max_size=8),
    spi_r=st.binary(min_size=8, max_size=8),
    minor=st.integers(0, 15),
    exchange=u8,
    flags=u8,
    message_id=u32,
)
messages = st.builds(Message, header=headers, payloads=chains())


@given(plain_payloads | encrypted_payloads)
def test_payload_body_round_trip(payload: Payload) -> None:
    decoded = type(payload).decode_body(
        payload.encode_body(),
        payload_type=payload.payload_type,
        next_payload=payload.next_payload_field or 0,
        critical=isinstance(payload, UnknownPayload) and payload.critical,
    )
    assert decoded == payload


@given(messages)
@settings(max_examples=300)
def test_message_round_trip(msg: Message) -> None:
    data = msg.encode()
    decoded = decode_message(data)
    assert decoded == msg
    assert decoded.header.length == len(data)
    assert decoded.encode() == data
    if msg.payloads and isinstance(msg.payloads[-1], (EncryptedPayload, EncryptedFragmentPayload)):
        offset = sk_payload_offset(data)
        assert data[offset] == (msg.payloads[-1].next_payload_field or 0)


@given(chains(), st.integers(0, 10_000))
def test_chain_round_trip(payloads: tuple[Payload, ...], base: int) -> None:
    first, data = encode_payload_chain(payloads)
    assert decode_payload_chain(first, data, base_offset=base) == payloads


def _decodes_or_is_malformed(data: bytes) -> None:
    try:
        msg = decode_message(data)
    except MalformedMessage as exc:
        assert 0 <= exc.offset <= max(len(data), HEADER_BYTES)
        return
    # Whatever decodes must re-decode identically from its own encoding.
    assert decode_message(msg.encode()) == msg


@given(st.binary(max_size=400))
@example(b"")
@example(bytes(28))
def test_arbitrary_bytes(data: bytes) -> None:
    _decodes_or_is_malformed(data)


@given(st.binary(max_size=300), u8)
def test_arbitrary_bytes_behind_a_plausible_header(body: bytes, first: int) -> None:
    # Random bytes rarely pass the header checks; this puts them in front of the payload walker.
    header = bytes(16) + bytes([first, 0x20, 34, 0x08]) + struct.pack("!II", 0, HEADER_BYTES + len(body))
    _decodes_or_is_malformed(header + body)


@given(st.binary(max_size=300), st.sampled_from([int(t) for t in PayloadType]) | u8, st.integers(0, 100))
def test_arbitrary_payload_chain(data: bytes, first: int, base: int) -> None:
    try:
        decode_payload_chain(first, data, base_offset=base)
    except MalformedMessage as exc:
        assert base <= exc.offset <= base + len(data)


def _mutants() -> st.SearchStrategy[bytes]:
    valid = st.sampled_from([sample_sa_init().encode(), sample_auth_request().encode()]) | messages.map(
        lambda m: m.encode()
    )

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(draw(valid))
        for _ in range(draw(st.integers(1, 6))):
            op = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
            pos = draw(st.integers(HEADER_BYTES - 12, max(len(data), HEADER_BYTES)))
            if op == "flip" and pos < len(data):
                data[pos] ^= 1 << draw(st.integers(0, 7))
            elif op == "set" and pos < len(data):
                data[pos] = draw(u8)
            elif op == "cut":
                del data[pos:]
            elif op == "insert":
                data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
            elif op == "delete":
                del data[pos : pos + draw(st.integers(1, 8))]
        if len(data) >= HEADER_BYTES and draw(st.booleans()):
            data[24:28] = struct.pack("!I", len(data))  # keep the header length honest half the time
        return bytes(data)

    return mutate()


@given(_mutants())
@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_valid_messages(data: bytes) -> None:
    _decodes_or_is_malformed(data)
