"""Hand-built IKEv2 messages and payloads: round trips, exact bytes, strict bounds, error offsets."""

from __future__ import annotations

import hashlib
import random
import struct

import pytest

from tests.ike import SPI_I, SPI_R, sample_auth_request, sample_response_header, sample_sa_init
from vpndoctor.errors import VpndoctorError
from vpndoctor.ike.constants import (
    AuthMethod,
    CertEncoding,
    CfgAttr,
    CfgType,
    DhGroup,
    EapCode,
    EapType,
    EncrId,
    ExchangeType,
    HashAlgorithm,
    IdType,
    IntegId,
    NotifyType,
    PayloadType,
    PrfId,
    ProtocolId,
    TransformType,
    TsType,
    name_of,
)
from vpndoctor.ike.errors import MalformedMessage, NotIKEv2, UnsupportedCriticalPayload
from vpndoctor.ike.message import (
    HEADER_BYTES,
    INITIATOR,
    RESPONSE,
    VERSION,
    Header,
    Message,
    decode_message,
    decode_payload_chain,
    encode_payload_chain,
    peek_version,
    sk_payload_offset,
    strip_non_esp_marker,
    summary,
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
    Reader,
    SaPayload,
    TrafficSelector,
    Transform,
    TsPayload,
    UnknownPayload,
    VendorIdPayload,
)
from vpndoctor.ike.vendor_ids import MD5_PREIMAGES, describe


def _message(*payloads: Payload, exchange: int = ExchangeType.IKE_AUTH, flags: int = INITIATOR) -> Message:
    header = Header(spi_i=SPI_I, spi_r=SPI_R, exchange=exchange, flags=flags, message_id=7)
    return Message(header=header, payloads=payloads)


def _raw_message(chain: bytes, first: int, *, length: int | None = None) -> bytes:
    """A header (with a chosen length field) in front of hand-written payload bytes."""
    total = HEADER_BYTES + len(chain) if length is None else length
    header = SPI_I + SPI_R + bytes([first, 0x20, ExchangeType.IKE_SA_INIT, INITIATOR])
    return header + struct.pack("!II", 0, total) + chain


def _generic(next_payload: int, body: bytes, *, flags: int = 0, length: int | None = None) -> bytes:
    return (
        bytes([next_payload, flags]) + struct.pack("!H", 4 + len(body) if length is None else length) + body
    )


def _decode_only_malformed(data: bytes) -> Message | None:
    """Decode, accepting only success or MalformedMessage (anything else fails the test)."""
    try:
        return decode_message(data)
    except MalformedMessage as exc:
        assert isinstance(exc.offset, int) and exc.offset >= 0
        assert str(exc).startswith(f"offset {exc.offset}: expected ")
        return None


# --- every payload, both ways ------------------------------------------------------------------------------

ALL_PAYLOADS: list[Payload] = [
    SaPayload(
        (
            Proposal(
                1,
                ProtocolId.IKE,
                b"",
                (
                    Transform(TransformType.ENCR, EncrId.AES_GCM_16, key_length=256),
                    Transform(TransformType.PRF, PrfId.HMAC_SHA2_384),
                    Transform(
                        TransformType.DH, DhGroup.ECP_384, attributes=((99, 7), (100, b"\x01\x02\x03"))
                    ),
                ),
            ),
            Proposal(
                2,
                ProtocolId.ESP,
                b"\xde\xad\xbe\xef",
                (
                    Transform(TransformType.ENCR, EncrId.DES3),
                    Transform(TransformType.INTEG, IntegId.HMAC_SHA1_96),
                    Transform(TransformType.ESN, 0),
                ),
            ),
        )
    ),
    KePayload(DhGroup.CURVE25519, bytes(32)),
    IdPayload(IdType.FQDN, b"vpn.example.com", responder=False),
    IdPayload(IdType.DER_ASN1_DN, b"\x30\x00", responder=True),
    CertPayload(CertEncoding.X509_SIGNATURE, b"\x30\x82\x01\x00"),
    CertReqPayload(CertEncoding.X509_SIGNATURE, bytes(40)),
    AuthPayload(AuthMethod.DIGITAL_SIGNATURE, b"\x0f" + bytes(20)),
    NoncePayload(bytes(range(16))),
    NotifyPayload(NotifyType.REKEY_SA, ProtocolId.ESP, b"\x01\x02\x03\x04", b""),
    NotifyPayload(NotifyType.INVALID_KE_PAYLOAD, data=b"\x00\x13"),
    DeletePayload(ProtocolId.ESP, 4, (b"\x00\x00\x00\x01", b"\x00\x00\x00\x02")),
    DeletePayload(ProtocolId.IKE, 0, ()),
    VendorIdPayload(b"FLEXVPN-SUPPORTED"),
    TsPayload(
        (
            TrafficSelector(TsType.IPV4_ADDR_RANGE, 0, 0, 65535, bytes(4), b"\xff" * 4),
            TrafficSelector(TsType.IPV6_ADDR_RANGE, 17, 500, 500, bytes(16), b"\xff" * 16),
        ),
        responder=False,
    ),
    TsPayload(
        (TrafficSelector(TsType.IPV4_ADDR_RANGE, 6, 443, 443, b"\x0a\0\0\0", b"\x0a\0\0\xff"),),
        responder=True,
    ),
    CpPayload(CfgType.REQUEST, ((CfgAttr.INTERNAL_IP4_ADDRESS, b""), (CfgAttr.INTERNAL_IP6_DNS, b""))),
    EapPayload(EapCode.REQUEST, 1, EapType.IDENTITY, b""),
    EapPayload(EapCode.RESPONSE, 2, EapType.MSCHAPV2, b"\x02\x02\x00\x3f"),
    EapPayload(EapCode.SUCCESS, 3, None, b""),
    UnknownPayload(PayloadType.GSPM, False, b"password method data"),
]


@pytest.mark.parametrize("payload", ALL_PAYLOADS, ids=lambda p: type(p).__name__)
def test_payload_body_round_trip(payload: Payload) -> None:
    body = payload.encode_body()
    decoded = type(payload).decode_body(
        body, payload_type=payload.payload_type, next_payload=0, critical=getattr(payload, "critical", False)
    )
    assert decoded == payload


@pytest.mark.parametrize("payload", ALL_PAYLOADS, ids=lambda p: type(p).__name__)
def test_payload_in_message_round_trip(payload: Payload) -> None:
    msg = _message(payload, NotifyPayload(NotifyType.INITIAL_CONTACT))
    assert decode_message(msg.encode()) == msg


def test_every_known_payload_type_has_a_class_and_decodes_to_it() -> None:
    for ptype, cls in PAYLOAD_CLASSES.items():
        matching = [p for p in ALL_PAYLOADS if p.payload_type == ptype]
        if ptype in (PayloadType.SK, PayloadType.SKF):
            continue  # covered below: they must be last
        assert matching and all(isinstance(p, cls) for p in matching), name_of(PayloadType, ptype)


def test_whole_message_round_trip_and_header_fields() -> None:
    msg = sample_sa_init()
    data = msg.encode()
    decoded = decode_message(data)
    assert decoded == msg
    assert decoded.encode() == data
    assert decoded.header.length == len(data)
    assert decoded.header.next_payload == PayloadType.SA
    assert decoded.header.is_initiator and not decoded.header.is_response
    assert (decoded.header.major, decoded.header.minor) == (2, 0)
    assert data[:16] == SPI_I + bytes(8)
    assert data[16:20] == bytes([PayloadType.SA, 0x20, ExchangeType.IKE_SA_INIT, 0x08])
    assert struct.unpack("!II", data[20:28]) == (0, len(data))


def test_lengths_and_next_payloads_are_computed_not_trusted() -> None:
    msg = sample_sa_init()
    lying = Message(
        header=Header(
            spi_i=SPI_I,
            spi_r=bytes(8),
            next_payload=PayloadType.EAP,
            exchange=34,
            flags=INITIATOR,
            message_id=0,
            length=9999,
        ),
        payloads=msg.payloads,
    )
    assert lying.encode() == msg.encode()
    assert lying == msg  # next_payload and length take no part in equality


def test_known_bytes_of_an_sa_payload_from_tcpdumps_capture() -> None:
    # ikev2four.pcap frame 1 (tcpdump tests/), SA payload as printed in ikev2fourv4.out; 12 transforms.
    wire = bytes.fromhex(
        "22000078000000740101000c0300000c0100000c800e00800300000c0100000c800e01000300000c0100000c800e00c0"
        "03000008010000030300000802000002030000080200000103000008020000040300000803000002030000080300000103"
        "000008030000050300000804000002000000080400000e"
    )
    t = TransformType
    sa = SaPayload(
        (
            Proposal(
                1,
                ProtocolId.IKE,
                b"",
                (
                    Transform(t.ENCR, EncrId.AES_CBC, 128),
                    Transform(t.ENCR, EncrId.AES_CBC, 256),
                    Transform(t.ENCR, EncrId.AES_CBC, 192),
                    Transform(t.ENCR, EncrId.DES3),
                    Transform(t.PRF, PrfId.HMAC_SHA1),
                    Transform(t.PRF, PrfId.HMAC_MD5),
                    Transform(t.PRF, PrfId.AES128_XCBC),
                    Transform(t.INTEG, IntegId.HMAC_SHA1_96),
                    Transform(t.INTEG, IntegId.HMAC_MD5_96),
                    Transform(t.INTEG, IntegId.AES_XCBC_96),
                    Transform(t.DH, DhGroup.MODP_1024),
                    Transform(t.DH, DhGroup.MODP_2048),
                ),
            ),
        )
    )
    chain_type, chain = encode_payload_chain((sa, KePayload(2, b"")))
    assert chain_type == PayloadType.SA
    assert chain[: len(wire)] == wire
    assert SaPayload.decode_body(wire[4:]) == sa
    assert sa.proposals[0].description.startswith("IKE:AES_CBC_128/AES_CBC_256/AES_CBC_192/3DES/HMAC_SHA1/")


def test_known_bytes_of_simple_payloads() -> None:
    assert KePayload(19, b"\xaa\xbb").encode_body() == bytes.fromhex("00130000aabb")
    assert IdPayload(IdType.FQDN, b"west", responder=False).encode_body() == bytes.fromhex("0200000077657374")
    assert AuthPayload(AuthMethod.SHARED_KEY, b"\x01").encode_body() == bytes.fromhex("0200000001")
    assert NotifyPayload(NotifyType.COOKIE, data=b"\x01").encode_body() == bytes.fromhex("0000400601")
    assert NotifyPayload(NotifyType.REKEY_SA, 3, b"\x00\x00\x00\x09").encode_body() == bytes.fromhex(
        "0304400900000009"
    )
    assert DeletePayload(3, 4, (b"\x00\x00\x00\x09",)).encode_body() == bytes.fromhex("0304000100000009")
    ts = TrafficSelector(TsType.IPV4_ADDR_RANGE, 0, 0, 65535, b"\x0a\x00\x00\x00", b"\x0a\x00\x00\xff")
    assert ts.encode() == bytes.fromhex("070000100000ffff0a0000000a0000ff")
    cp = CpPayload(CfgType.REQUEST, ((CfgAttr.INTERNAL_IP4_ADDRESS, b""),))
    assert cp.encode_body() == bytes.fromhex("0100000000010000")
    assert EapPayload(EapCode.SUCCESS, 5, None, b"").encode_body() == bytes.fromhex("03050004")
    assert EapPayload(EapCode.RESPONSE, 5, EapType.IDENTITY, b"u").encode_body() == bytes.fromhex(
        "020500060175"
    )
    assert EncryptedFragmentPayload(35, 1, 3, b"\xee").encode_body() == bytes.fromhex("00010003ee")


# --- encrypted payloads --------------------------------------------------------------------------------


def test_sk_payload_carries_first_inner_type_and_must_be_last() -> None:
    msg = sample_auth_request()
    data = msg.encode()
    assert data[28] == PayloadType.IDi  # the SK generic header's Next Payload
    assert decode_message(data) == msg
    assert sk_payload_offset(data) == 28
    with pytest.raises(ValueError, match="must be the last payload"):
        _message(EncryptedPayload(35, b"x"), NoncePayload(b"n")).encode()
    trailing = data + b"\x00\x00\x00\x04"
    trailing = trailing[:24] + struct.pack("!I", len(trailing)) + trailing[28:]
    trailing = trailing[:30] + struct.pack("!H", len(data) - 28) + trailing[32:]
    with pytest.raises(MalformedMessage) as err:
        decode_message(trailing)
    assert err.value.offset == len(data)
    assert "SK payload (it must be last)" in err.value.expected


def test_skf_fields_and_offset() -> None:
    frag = EncryptedFragmentPayload(PayloadType.IDi, 2, 5, bytes(40))
    msg = _message(NotifyPayload(NotifyType.INITIAL_CONTACT), frag)
    data = msg.encode()
    assert decode_message(data) == msg
    assert sk_payload_offset(data) == 28 + 8
    assert summary(decode_message(data)) == "IKE_AUTH request 7 [ N(INIT_CONTACT) SKF(2/5) ]"


def test_sk_payload_offset_needs_an_encrypted_payload() -> None:
    with pytest.raises(MalformedMessage, match="an SK or SKF payload"):
        sk_payload_offset(sample_sa_init().encode())
    broken = _raw_message(_generic(PayloadType.SK, b"", length=2), PayloadType.NONCE)
    with pytest.raises(MalformedMessage) as err:
        sk_payload_offset(broken)
    assert err.value.offset == 30


def test_decode_payload_chain_offsets_are_shifted() -> None:
    first, plain = encode_payload_chain((IdPayload(IdType.FQDN, b"a", responder=False), AuthPayload(2, b"x")))
    assert first == PayloadType.IDi
    assert decode_payload_chain(first, plain) == (
        IdPayload(IdType.FQDN, b"a", responder=False),
        AuthPayload(2, b"x"),
    )
    with pytest.raises(MalformedMessage) as err:
        decode_payload_chain(first, plain[:-1], base_offset=1000)
    assert err.value.offset == 1000 + 9
    assert encode_payload_chain(()) == (PayloadType.NONE, b"")
    assert decode_payload_chain(PayloadType.NONE, b"") == ()
    with pytest.raises(MalformedMessage, match="end of payload chain"):
        decode_payload_chain(PayloadType.NONE, b"\x00", base_offset=60)


# --- bounds: truncation and corruption never escape as anything but MalformedMessage ---------------------


def test_every_truncation_of_a_valid_sa_init_is_malformed() -> None:
    data = sample_sa_init().encode()
    for n in range(len(data)):
        with pytest.raises(MalformedMessage):
            decode_message(data[:n])


def test_every_truncation_with_a_consistent_header_length_is_malformed() -> None:
    # Fix the header length so the payload walker, not the header check, meets the truncation.
    data = sample_sa_init().encode()
    for n in range(HEADER_BYTES, len(data)):
        cut = data[:24] + struct.pack("!I", n) + data[28:n]
        with pytest.raises(MalformedMessage) as err:
            decode_message(cut)
        assert HEADER_BYTES <= err.value.offset <= n


def test_random_byte_flips_raise_only_malformed() -> None:
    rng = random.Random(7296)
    for base in (sample_sa_init().encode(), sample_auth_request().encode(), _message(*ALL_PAYLOADS).encode()):
        for _ in range(1500):
            mutated = bytearray(base)
            for _ in range(rng.randint(1, 4)):
                pos = rng.randrange(HEADER_BYTES - 11, len(mutated))
                mutated[pos] = rng.randrange(256)
            mutated[17] = 0x20  # keep it IKEv2 so the walk happens
            if rng.random() < 0.7:
                mutated[24:28] = struct.pack("!I", len(mutated))
            _decode_only_malformed(bytes(mutated))


def test_every_single_byte_value_at_every_position_of_a_small_message() -> None:
    base = _message(
        SaPayload((Proposal(1, 1, b"", (Transform(1, 12, 128), Transform(4, 19))),)),
        CpPayload(1, ((1, b""),)),
        TsPayload((TrafficSelector(7, 0, 0, 65535, bytes(4), bytes(4)),), responder=False),
        EapPayload(2, 1, 1, b"me"),
    ).encode()
    for pos in range(HEADER_BYTES, len(base)):
        for value in range(256):
            mutated = bytearray(base)
            mutated[pos] = value
            _decode_only_malformed(bytes(mutated))


# --- bad lengths, with the offset named -------------------------------------------------------------------


def test_error_message_format_for_a_payload_longer_than_the_message() -> None:
    chain = _generic(PayloadType.NONE, bytes(8), length=40)
    with pytest.raises(MalformedMessage) as err:
        decode_message(_raw_message(chain, PayloadType.SA))
    assert str(err.value) == "offset 28: expected 40-byte SA payload, 12 bytes left"
    assert err.value.offset == 28
    assert err.value.expected == "40-byte SA payload"
    assert isinstance(err.value, VpndoctorError)


@pytest.mark.parametrize("length", [0, 1, 2, 3])
def test_payload_length_below_four(length: int) -> None:
    chain = _generic(PayloadType.NONE, b"", length=length) + bytes(4)
    with pytest.raises(MalformedMessage) as err:
        decode_message(_raw_message(chain, PayloadType.NONCE))
    assert err.value.offset == 30
    assert err.value.found == f"found {length}"


def test_missing_generic_header_and_trailing_bytes() -> None:
    chain = _generic(PayloadType.NONCE, b"abcd")  # says another Nonce follows, but nothing does
    with pytest.raises(MalformedMessage) as err:
        decode_message(_raw_message(chain, PayloadType.NONCE))
    assert (err.value.offset, err.value.expected) == (36, "4-byte generic header of NONCE payload")
    chain = _generic(PayloadType.NONE, b"abcd") + b"\x00\x00"
    with pytest.raises(MalformedMessage) as err:
        decode_message(_raw_message(chain, PayloadType.NONCE))
    assert err.value.offset == 36 and "end of payload chain" in err.value.expected


def test_header_length_must_match_the_datagram() -> None:
    data = sample_sa_init().encode()
    with pytest.raises(MalformedMessage) as err:
        decode_message(data + b"\x00")
    assert err.value.offset == len(data) and err.value.found == "1 byte left"
    with pytest.raises(MalformedMessage) as err:
        decode_message(data[:24] + struct.pack("!I", len(data) + 5) + data[28:])
    assert err.value.offset == 24
    with pytest.raises(MalformedMessage):
        decode_message(data[:24] + struct.pack("!I", 27) + data[28:])
    with pytest.raises(MalformedMessage) as err:
        decode_message(data[:20])
    assert err.value.offset == 0


def _sa_chain(proposal: bytes) -> bytes:
    return _raw_message(_generic(PayloadType.NONE, proposal), PayloadType.SA)


def _transform(
    ttype: int, tid: int, attrs: bytes = b"", *, marker: int = 0, length: int | None = None
) -> bytes:
    size = 8 + len(attrs) if length is None else length
    return bytes([marker, 0]) + struct.pack("!HBBH", size, ttype, 0, tid) + attrs


def _proposal(
    transforms: bytes, count: int, *, marker: int = 0, length: int | None = None, spi: bytes = b""
) -> bytes:
    size = 8 + len(spi) + len(transforms) if length is None else length
    return bytes([marker, 0]) + struct.pack("!HBBBB", size, 1, 1, len(spi), count) + spi + transforms


def test_sa_proposal_length_longer_than_the_sa_payload() -> None:
    prop = _proposal(_transform(1, 12), 1, length=40)
    with pytest.raises(MalformedMessage) as err:
        decode_message(_sa_chain(prop))
    assert (err.value.offset, err.value.expected) == (32, "40-byte proposal")


def test_sa_proposal_length_shorter_than_its_transforms() -> None:
    prop = _proposal(_transform(1, 12, marker=3) + _transform(2, 5), 2, length=16)
    with pytest.raises(MalformedMessage) as err:
        decode_message(_sa_chain(prop))
    assert err.value.offset == 48  # the first transform says more follow, but the proposal has ended
    assert err.value.expected == "8-byte transform substructure"


def test_sa_proposal_with_bytes_after_the_last_transform() -> None:
    prop = _proposal(_transform(1, 12) + b"\x00\x00\x00\x00", 1)
    with pytest.raises(MalformedMessage) as err:
        decode_message(_sa_chain(prop))
    assert (err.value.offset, err.value.expected) == (48, "end of proposal")


def test_sa_transform_count_disagrees() -> None:
    prop = _proposal(_transform(1, 12, marker=3) + _transform(2, 5), 3)
    with pytest.raises(MalformedMessage) as err:
        decode_message(_sa_chain(prop))
    assert err.value.offset == 39 and err.value.found == "found 2"


def test_sa_bad_substructure_markers() -> None:
    with pytest.raises(MalformedMessage, match="proposal marker 0 .last. or 2"):
        decode_message(_sa_chain(_proposal(_transform(1, 12), 1, marker=3)))
    with pytest.raises(MalformedMessage, match="transform marker 0 .last. or 3"):
        decode_message(_sa_chain(_proposal(_transform(1, 12, marker=2), 1)))
    more_than_there_is = _proposal(_transform(1, 12), 1, marker=2)
    with pytest.raises(MalformedMessage, match="8-byte proposal substructure, 0 bytes left"):
        decode_message(_sa_chain(more_than_there_is))


def test_transform_length_below_eight() -> None:
    prop = _proposal(_transform(1, 12, length=6) + b"\x00\x00", 1)
    with pytest.raises(MalformedMessage) as err:
        decode_message(_sa_chain(prop))
    assert (err.value.offset, err.value.found) == (42, "found 6")


def test_transform_attributes_tv_and_tlv() -> None:
    tv = struct.pack("!HH", 0x8000 | 14, 256)
    tlv = struct.pack("!HH", 200, 3) + b"abc"
    other_tv = struct.pack("!HH", 0x8000 | 17, 5)
    msg = decode_message(_sa_chain(_proposal(_transform(1, 12, tv + tlv + other_tv), 1)))
    sa = msg.first(SaPayload)
    assert sa is not None
    transform = sa.proposals[0].transforms[0]
    assert transform.key_length == 256
    assert transform.attributes == ((200, b"abc"), (17, 5))
    assert transform.name == "AES_CBC_256"


def test_transform_attribute_errors() -> None:
    key_in_tlv = struct.pack("!HH", 14, 2) + b"\x01\x00"
    with pytest.raises(MalformedMessage, match="key length attribute in TV format") as err:
        decode_message(_sa_chain(_proposal(_transform(1, 12, key_in_tlv), 1)))
    assert err.value.offset == 48
    twice = struct.pack("!HHHH", 0x800E, 128, 0x800E, 256)
    with pytest.raises(MalformedMessage, match="at most one key length"):
        decode_message(_sa_chain(_proposal(_transform(1, 12, twice), 1)))
    tlv_too_long = struct.pack("!HH", 200, 9) + b"abc"
    with pytest.raises(MalformedMessage) as err:
        decode_message(_sa_chain(_proposal(_transform(1, 12, tlv_too_long), 1)))
    assert (err.value.offset, err.value.expected) == (52, "9-byte value of transform attribute 200")
    half_attribute = b"\x80\x0e"
    with pytest.raises(MalformedMessage, match="4-byte transform attribute, 2 bytes left"):
        decode_message(_sa_chain(_proposal(_transform(1, 12, half_attribute), 1)))


def test_id_short_ts_delete_eap_cp_errors() -> None:
    cases: list[tuple[int, bytes, int, str]] = [
        (PayloadType.IDi, b"\x01", 32, "4-byte ID header (type, reserved)"),
        (
            PayloadType.TSi,
            b"\x02\x00\x00\x00" + bytes.fromhex("070000100000ffff0000000000000000"),
            52,
            "8-byte traffic selector header",
        ),
        (
            PayloadType.TSi,
            b"\x01\x00\x00\x00" + bytes.fromhex("07000018000000000000000000000000" + "00" * 8),
            38,
            "selector length 16 for IPV4_ADDR_RANGE",
        ),
        (PayloadType.DELETE, bytes.fromhex("0304000200000001"), 36, "2 SPIs of 4 bytes (8 bytes)"),
        (PayloadType.EAP, bytes.fromhex("02010009017573"), 34, "EAP length 7 (the payload's)"),
        (PayloadType.EAP, bytes.fromhex("01010004"), 36, "EAP type for code REQUEST"),
        (
            PayloadType.CP,
            bytes.fromhex("01000000000100040a00"),
            40,
            "4-byte value of configuration attribute",
        ),
        (PayloadType.NOTIFY, bytes.fromhex("030440090000"), 36, "4-byte SPI"),
        (PayloadType.KE, bytes.fromhex("0013"), 32, "4-byte KE header (group, reserved)"),
        (PayloadType.SKF, bytes.fromhex("0001"), 32, "4-byte SKF header (fragment number, total)"),
    ]
    for ptype, body, offset, expected in cases:
        with pytest.raises(MalformedMessage) as err:
            decode_message(_raw_message(_generic(PayloadType.NONE, body), ptype))
        assert (err.value.offset, err.value.expected) == (offset, expected), name_of(PayloadType, ptype)


# --- unknown and critical payloads, IKEv1 ----------------------------------------------------------------


def test_critical_unknown_payload_is_rejected_with_its_type() -> None:
    chain = _generic(PayloadType.NONE, b"\x01") + b""
    chain = _generic(99, b"nonce-data-here!") + _generic(PayloadType.NONE, b"xyz", flags=0x80)
    with pytest.raises(UnsupportedCriticalPayload) as err:
        decode_message(_raw_message(chain, PayloadType.NONCE))
    assert err.value.payload_type == 99
    assert err.value.offset == 28 + 20
    assert isinstance(err.value, MalformedMessage)
    # Known-but-unimplemented types count as unsupported too.
    with pytest.raises(UnsupportedCriticalPayload) as err:
        decode_message(_raw_message(_generic(0, b"", flags=0x80), PayloadType.GSPM))
    assert err.value.payload_type == PayloadType.GSPM


def test_non_critical_unknown_payload_is_kept_and_re_encoded() -> None:
    chain = _generic(99, b"nonce-data-here!") + _generic(PayloadType.NONE, b"xyz", flags=0x7F)
    msg = decode_message(_raw_message(chain, PayloadType.NONCE))
    assert msg.payloads == (NoncePayload(b"nonce-data-here!"), UnknownPayload(99, False, b"xyz"))
    kept = _message(UnknownPayload(200, True, b"raw"))
    with pytest.raises(UnsupportedCriticalPayload):
        decode_message(kept.encode())
    assert kept.encode()[28:32] == bytes([0, 0x80, 0, 7])


def test_reserved_bits_are_ignored_on_decode_and_zero_on_encode() -> None:
    chain = _generic(PayloadType.NONE, bytes.fromhex("02ffffff77657374"), flags=0x7F)
    msg = decode_message(_raw_message(chain, PayloadType.IDi))
    assert msg.payloads == (IdPayload(IdType.FQDN, b"west", responder=False),)
    assert msg.encode()[28:] == bytes.fromhex("0000000c0200000077657374")


def test_known_payload_with_critical_bit_is_accepted() -> None:
    # ikev2pI2.pcap (tcpdump tests/) sets C on SA, Nonce and SK; the bit means nothing for understood types.
    chain = _generic(PayloadType.NONE, b"0123456789abcdef", flags=0x80)
    assert decode_message(_raw_message(chain, PayloadType.NONCE)).payloads == (
        NoncePayload(b"0123456789abcdef"),
    )


def test_ikev1_header_is_reported_as_ikev1() -> None:
    data = bytearray(sample_sa_init().encode())
    data[17] = 0x10
    with pytest.raises(NotIKEv2) as err:
        decode_message(bytes(data))
    assert (err.value.major_version, err.value.minor_version) == (1, 0)
    assert err.value.offset == 17
    assert "IKEv1" in str(err.value)
    assert peek_version(bytes(data)) == (1, 0)
    assert peek_version(sample_sa_init().encode()) == (2, 0)
    data[17] = 0x30
    with pytest.raises(NotIKEv2) as err:
        decode_message(bytes(data))
    assert err.value.major_version == 3
    with pytest.raises(MalformedMessage):
        peek_version(b"\x00" * 17)


# --- helpers: notify, vendor ids, non-ESP marker, message accessors, summary ---------------------------


def test_invalid_ke_payload_group() -> None:
    notify = NotifyPayload.invalid_ke(DhGroup.ECP_384)
    msg = Message(header=sample_response_header(), payloads=(notify,))
    decoded = decode_message(msg.encode())
    got = decoded.notify(NotifyType.INVALID_KE_PAYLOAD)
    assert got is not None
    assert got.invalid_ke_group == 20
    assert got.is_error and got.name == "INVALID_KE_PAYLOAD"
    assert NotifyPayload(NotifyType.INVALID_KE_PAYLOAD, data=b"\x00").invalid_ke_group is None
    assert NotifyPayload(NotifyType.COOKIE, data=b"\x00\x14").invalid_ke_group is None
    assert not NotifyPayload(NotifyType.COOKIE).is_error
    assert NotifyPayload(16999).name == "NOTIFY_16999"


def test_signature_hash_algorithms() -> None:
    notify = NotifyPayload(NotifyType.SIGNATURE_HASH_ALGORITHMS, data=bytes.fromhex("0001000200030004"))
    assert notify.signature_hash_algorithms == (
        HashAlgorithm.SHA1,
        HashAlgorithm.SHA2_256,
        HashAlgorithm.SHA2_384,
        HashAlgorithm.SHA2_512,
    )
    assert NotifyPayload(NotifyType.SIGNATURE_HASH_ALGORITHMS, data=b"\x00").signature_hash_algorithms is None


def test_certreq_authority_hashes() -> None:
    hashes = (bytes(20), b"\x01" * 20)
    assert CertReqPayload(CertEncoding.X509_SIGNATURE, b"".join(hashes)).authority_hashes == hashes
    assert CertReqPayload(CertEncoding.X509_SIGNATURE, bytes(21)).authority_hashes is None


def test_identity_and_selector_rendering() -> None:
    assert IdPayload(IdType.IPV4_ADDR, b"\xc0\x00\x02\x01", responder=False).display == "ipv4:192.0.2.1"
    assert IdPayload(IdType.FQDN, b"vpn.example.com", responder=True).display == "fqdn:vpn.example.com"
    assert IdPayload(IdType.KEY_ID, b"\x01", responder=True).display == "key_id:01"
    ts = TrafficSelector(TsType.IPV6_ADDR_RANGE, 0, 0, 65535, bytes(16), b"\xff" * 16)
    assert str(ts.start_ip) == "::" and str(ts.end_ip) == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"


def test_vendor_id_names() -> None:
    for preimage, vid in MD5_PREIMAGES.items():
        assert hashlib.md5(preimage).digest() == vid, preimage  # noqa: S324 - that is how the IDs are made
        assert describe(vid) is not None
    assert describe(bytes.fromhex("882fe56d6fd20dbc2251613b2ebe5beb")) == "strongSwan"
    ms = bytes.fromhex("1e2b516905991c7d7c96fcbfb587e461") + b"\x00\x00\x00\x08"
    assert describe(ms) == "MS NT5 ISAKMPOAKLEY v8 (Windows Server 2008 R2)"
    assert describe(ms[:-1] + b"\x09") == "MS NT5 ISAKMPOAKLEY v9"
    assert describe(bytes.fromhex("4048b7d56ebce88525e7de7f00d6c2d3c0000000")) == "FRAGMENTATION"
    assert VendorIdPayload(b"CISCO-DELETE-REASON").name == "Cisco Delete Reason"
    assert VendorIdPayload(b"unknown").name is None


def test_strip_non_esp_marker() -> None:
    ike = sample_sa_init().encode()
    assert strip_non_esp_marker(b"\x00\x00\x00\x00" + ike) == ike
    assert strip_non_esp_marker(b"\xf4\xdc\x0a\xe5" + bytes(20)) is None  # ESP SPI
    assert strip_non_esp_marker(b"\xff") is None  # NAT-keepalive (RFC 3948 section 2.3)
    assert strip_non_esp_marker(b"\x00\x00") is None


def test_message_accessors() -> None:
    msg = sample_sa_init()
    assert isinstance(msg.payload(PayloadType.KE), KePayload)
    assert msg.payload(PayloadType.EAP) is None
    assert len(msg.payloads_of(PayloadType.NOTIFY)) == 3 == len(msg.notifies)
    assert msg.first(NoncePayload) == NoncePayload(bytes(range(32)))
    assert msg.first(EapPayload) is None
    frag = msg.notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED)
    assert frag is not None and frag.data == b""
    assert msg.notify(NotifyType.COOKIE) is None


def test_header_flags_and_validation() -> None:
    header = sample_response_header()
    assert header.is_response and not header.is_initiator
    assert (INITIATOR, VERSION, RESPONSE) == (0x08, 0x10, 0x20)
    assert header.encode(100)[16:] == bytes([0, 0x20, 34, 0x20, 0, 0, 0, 0, 0, 0, 0, 100])
    with pytest.raises(ValueError):
        Header(spi_i=b"short", spi_r=bytes(8), exchange=34, flags=0, message_id=0)
    with pytest.raises(ValueError):
        Header(spi_i=bytes(8), spi_r=bytes(8), exchange=34, flags=0, message_id=1 << 32)


def test_dataclasses_refuse_values_that_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):
        Transform(1, 70000)
    with pytest.raises(ValueError, match="key_length"):
        Transform(1, 12, attributes=((14, 128),))
    with pytest.raises(ValueError):
        TrafficSelector(TsType.IPV4_ADDR_RANGE, 0, 0, 0, bytes(16), bytes(16))
    with pytest.raises(ValueError):
        DeletePayload(3, 4, (b"\x00",))
    with pytest.raises(ValueError):
        EapPayload(EapCode.SUCCESS, 1, EapType.IDENTITY, b"")
    with pytest.raises(ValueError):
        EapPayload(EapCode.REQUEST, 1, None, b"")
    with pytest.raises(ValueError):
        UnknownPayload(PayloadType.SA, False, b"")
    with pytest.raises(TypeError):
        NoncePayload("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="too long"):
        _message(NoncePayload(bytes(70000))).encode()


def test_reader_restrict_to_and_leftovers() -> None:
    r = Reader(b"\x01\x02\x03\x04", base_offset=10)
    with r.restrict_to(2, "pair"):
        assert r.u16("x") == 0x0102
    with pytest.raises(MalformedMessage) as err, r.restrict_to(2, "pair"):
        r.u8("x")
    assert (err.value.offset, err.value.expected) == (13, "end of pair")
    with pytest.raises(MalformedMessage) as err:
        Reader(b"\x01", base_offset=5).u32("length")
    assert str(err.value) == "offset 5: expected length, 1 byte left"


def test_name_of() -> None:
    assert name_of(NotifyType, 16430) == "IKEV2_FRAGMENTATION_SUPPORTED"
    assert name_of(NotifyType, 16999) == "NOTIFY_16999"
    assert name_of(EncrId, 3) == "3DES"
    assert name_of(PayloadType, 46) == "SK" and name_of(PayloadType, 49) == "GSPM"
    assert (int(PayloadType.SK), int(PayloadType.GSPM), int(PayloadType.SKF)) == (46, 49, 53)
    assert name_of(ExchangeType, 43) == "IKE_INTERMEDIATE"
    assert name_of(EapType, 26) == "MSCHAPV2"
    assert name_of(DhGroup, 99) == "DH_99"


def test_summary_lines() -> None:
    assert (
        summary(sample_sa_init())
        == "IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) N(FRAG_SUP) V ]"
    )
    assert summary(sample_auth_request()) == "IKE_AUTH request 1 [ SK ]"
    response = Message(header=sample_response_header(), payloads=(NotifyPayload.invalid_ke(19),))
    assert summary(response) == "IKE_SA_INIT response 0 [ N(INVAL_KE) ]"
    inner = Message(
        header=sample_response_header(ExchangeType.IKE_AUTH, 1),
        payloads=(
            IdPayload(IdType.FQDN, b"gw", responder=True),
            CertPayload(4, b""),
            AuthPayload(1, b""),
            CpPayload(
                CfgType.REPLY,
                ((CfgAttr.INTERNAL_IP4_ADDRESS, bytes(4)), (CfgAttr.INTERNAL_IP4_DNS, bytes(4))),
            ),
            TsPayload((), responder=False),
            TsPayload((), responder=True),
            NotifyPayload(NotifyType.MOBIKE_SUPPORTED),
            NotifyPayload(16999),
            EapPayload(EapCode.REQUEST, 1, EapType.IDENTITY, b""),
            EapPayload(EapCode.SUCCESS, 2, None, b""),
            EapPayload(EapCode.REQUEST, 3, EapType.PEAP, b""),
            DeletePayload(1, 0, ()),
            UnknownPayload(PayloadType.GSPM, False, b""),
            UnknownPayload(250, True, b""),
        ),
    )
    assert summary(inner) == (
        "IKE_AUTH response 1 [ IDr CERT AUTH CPRP(ADDR DNS) TSi TSr N(MOBIKE_SUP) N(16999) "
        "EAP/REQ/ID EAP/SUCC EAP/REQ/PEAP D GSPM PAYLOAD_250! ]"
    )
    assert summary(Message(header=sample_response_header(ExchangeType.INFORMATIONAL, 2), payloads=())) == (
        "INFORMATIONAL response 2 [ ]"
    )
    unknown_exchange = Message(
        header=Header(spi_i=SPI_I, spi_r=SPI_R, exchange=99, flags=INITIATOR, message_id=3), payloads=()
    )
    assert summary(unknown_exchange) == "EXCHANGE_99 request 3 [ ]"


def test_errors_survive_pickling_with_their_fields() -> None:
    import pickle

    for exc in (MalformedMessage(3, "x", "y"), UnsupportedCriticalPayload(5, 99), NotIKEv2(17, 1, 0)):
        copy = pickle.loads(pickle.dumps(exc))
        assert (type(copy), str(copy), copy.offset, copy.expected) == (
            type(exc),
            str(exc),
            exc.offset,
            exc.expected,
        )
    assert pickle.loads(pickle.dumps(UnsupportedCriticalPayload(5, 99))).payload_type == 99
    assert pickle.loads(pickle.dumps(NotIKEv2(17, 1, 0))).major_version == 1
