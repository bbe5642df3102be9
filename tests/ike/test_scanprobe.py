"""The scan's stateless IKE_SA_INIT template: each target's copy decodes with the codec and carries its own
SPI, nonce and RFC 7296 2.23 NAT detection hashes; answers are read as the initiator reads them, and what is
not an answer to us is ignored."""

from __future__ import annotations

import hashlib
import os
import struct

import pytest

from vpndoctor.ike.constants import ExchangeType, NotifyType
from vpndoctor.ike.message import Header, Message, decode_message
from vpndoctor.ike.payloads import KePayload, NoncePayload, NotifyPayload, SaPayload, VendorIdPayload
from vpndoctor.ike.proposals import DEFAULT_PROPOSALS, parse_proposal
from vpndoctor.ike.scanprobe import ScanTemplate

SPECS = tuple(parse_proposal(p) for p in DEFAULT_PROPOSALS)
LOCAL, REMOTE = ("198.51.100.10", 40000), ("198.18.0.1", 500)


def template() -> ScanTemplate:
    return ScanTemplate(SPECS, os.urandom)


def answer(
    spi_i: bytes, *payloads: object, flags: int = 0x20, exchange: int = ExchangeType.IKE_SA_INIT
) -> bytes:
    header = Header(
        spi_i=spi_i, spi_r=b"\0" * 8, next_payload=0, exchange=exchange, flags=flags, message_id=0
    )
    return Message(header=header, payloads=tuple(payloads)).encode()  # type: ignore[arg-type]


def test_each_request_is_a_whole_ike_sa_init_with_its_own_spi_nonce_and_nat_hashes() -> None:
    t = template()
    spi, nonce = os.urandom(8), os.urandom(32)
    msg = decode_message(t.request(spi, nonce, LOCAL, REMOTE))
    assert msg.header.spi_i == spi and msg.header.exchange == ExchangeType.IKE_SA_INIT
    sa = next(p for p in msg.payloads if isinstance(p, SaPayload))
    assert len(sa.proposals) == len(SPECS)
    ke = next(p for p in msg.payloads if isinstance(p, KePayload))
    assert ke.group == t.group == 5  # MODP-1536: no default proposal names it
    assert all(t.group not in s.dh for s in SPECS)
    assert next(p for p in msg.payloads if isinstance(p, NoncePayload)).data == nonce
    notifies = {p.type: p.data for p in msg.payloads if isinstance(p, NotifyPayload)}
    src = hashlib.sha1(spi + b"\0" * 8 + bytes([198, 51, 100, 10]) + struct.pack("!H", 40000)).digest()
    dst = hashlib.sha1(spi + b"\0" * 8 + bytes([198, 18, 0, 1]) + struct.pack("!H", 500)).digest()
    assert notifies[NotifyType.NAT_DETECTION_SOURCE_IP] == src
    assert notifies[NotifyType.NAT_DETECTION_DESTINATION_IP] == dst
    assert NotifyType.IKEV2_FRAGMENTATION_SUPPORTED in notifies
    # the same KE value for every target of the scan; nothing else shared
    other = decode_message(t.request(os.urandom(8), os.urandom(32), LOCAL, REMOTE))
    assert next(p for p in other.payloads if isinstance(p, KePayload)).data == ke.data


def test_a_cookie_goes_first_and_the_rest_is_unchanged() -> None:
    t = template()
    spi, nonce = os.urandom(8), os.urandom(32)
    plain = decode_message(t.request(spi, nonce, LOCAL, REMOTE))
    cookie = decode_message(t.request(spi, nonce, LOCAL, REMOTE, cookie=b"c" * 16))
    first = cookie.payloads[0]
    assert isinstance(first, NotifyPayload) and first.type == NotifyType.COOKIE and first.data == b"c" * 16
    assert cookie.payloads[1:] == plain.payloads


def test_answers() -> None:
    t = template()
    spi = os.urandom(8)
    ke = t.parse(answer(spi, NotifyPayload(type=NotifyType.INVALID_KE_PAYLOAD, data=b"\x00\x0e")), spi)
    assert ke is not None and (ke.kind, ke.ke_group_requested) == ("accepted", "MODP_2048")
    odd = t.parse(answer(spi, NotifyPayload(type=NotifyType.INVALID_KE_PAYLOAD, data=b"\x00\x10")), spi)
    assert odd is not None and (odd.kind, odd.error_notify) == ("error", "INVALID_KE_PAYLOAD")
    npc = t.parse(answer(spi, NotifyPayload(type=NotifyType.NO_PROPOSAL_CHOSEN)), spi)
    assert npc is not None and (npc.kind, npc.error_notify) == ("refused", "NO_PROPOSAL_CHOSEN")
    cookie = t.parse(answer(spi, NotifyPayload(type=NotifyType.COOKIE, data=b"x" * 8)), spi)
    assert cookie is not None and (cookie.kind, cookie.cookie) == ("cookie", b"x" * 8)
    vid = bytes.fromhex("882fe56d6fd20dbc2251613b2ebe5beb")
    with_vid = t.parse(
        answer(
            spi, VendorIdPayload(data=vid), NotifyPayload(type=NotifyType.INVALID_KE_PAYLOAD, data=b"\0\x13")
        ),
        spi,
    )
    assert with_vid is not None and with_vid.vendor_ids == ("strongSwan",)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 27,
        os.urandom(300),
        answer(b"O" * 8, NotifyPayload(type=NotifyType.NO_PROPOSAL_CHOSEN)),  # another SPI
        answer(b"S" * 8, NotifyPayload(type=NotifyType.NO_PROPOSAL_CHOSEN), flags=0x08),  # a request
        answer(b"S" * 8, NotifyPayload(type=NotifyType.NO_PROPOSAL_CHOSEN), exchange=ExchangeType.IKE_AUTH),
    ],
)
def test_what_is_not_our_answer_is_ignored(data: bytes) -> None:
    assert template().parse(data, b"S" * 8) is None


def test_a_ke_group_from_the_proposals_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be in an offered proposal"):
        ScanTemplate(SPECS, os.urandom, ke_group=14)
