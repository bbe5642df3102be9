"""What the CHILD_SA needs from the codec: ESP proposals in strongSwan syntax (and Windows' default offer),
the suite a responder chose, KEYMAT (RFC 7296 §2.17) checked against the standard library's hmac, and the
IKE SA key line `vpndoctor capture --keys` reads."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from vpndoctor.capture.decrypt import WIRESHARK_ENCR, WIRESHARK_INTEG, parse_keys
from vpndoctor.ike.constants import DhGroup, EncrId, IntegId, PrfId, ProtocolId, TransformType
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.keys import (
    _WIRESHARK_ENCR_NAMES,
    _WIRESHARK_INTEG_NAMES,
    CipherSuite,
    UnsupportedSuite,
    derive_child_keys,
    derive_ike_keys,
    esp_key_bytes,
    wireshark_key_line,
)
from vpndoctor.ike.payloads import Proposal, Transform
from vpndoctor.ike.proposals import (
    WINDOWS_ESP_PROPOSALS,
    ProposalSyntaxError,
    esp_offered,
    esp_suite_from_proposal,
    parse_esp_proposal,
)


def test_windows_default_offer() -> None:
    specs = [parse_esp_proposal(p) for p in WINDOWS_ESP_PROPOSALS]
    assert [s.encr for s in specs] == [
        ((EncrId.AES_CBC, 256),),
        ((EncrId.AES_CBC, 128),),
        ((EncrId.DES3, None),),
        ((EncrId.DES, None),),
        ((EncrId.NULL, None),),
        ((EncrId.AES_GCM_16, 256),),
    ]
    assert all(s.integ == (IntegId.HMAC_SHA1_96,) for s in specs[:5]) and specs[5].integ == ()
    assert all(s.dh == () and s.esn == (0,) for s in specs)  # no PFS, no extended sequence numbers


@pytest.mark.parametrize(
    ("text", "transforms"),
    [
        ("aes256-sha1", [(1, 12, 256), (3, 2, None), (5, 0, None)]),
        ("aes256gcm16", [(1, 20, 256), (5, 0, None)]),
        (
            "aes128-aes256-sha256-sha1",
            [(1, 12, 128), (1, 12, 256), (3, 12, None), (3, 2, None), (5, 0, None)],
        ),
        (
            "aes128-sha256-modp2048-esn-noesn",
            [(1, 12, 128), (3, 12, None), (4, 14, None), (5, 1, None), (5, 0, None)],
        ),
    ],
)
def test_esp_proposal_syntax(text: str, transforms: list[tuple[int, int, int | None]]) -> None:
    proposal = parse_esp_proposal(text).to_proposal(3, b"\x01\x02\x03\x04")
    assert (proposal.number, proposal.protocol, proposal.spi) == (3, ProtocolId.ESP, b"\x01\x02\x03\x04")
    assert [(t.type, t.id, t.key_length) for t in proposal.transforms] == transforms


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("aes256-prfsha256", "unknown algorithm 'prfsha256'"),
        ("sha1", "needs an encryption"),
        ("aes256", "needs an integrity"),
        ("aes256gcm16-sha1", "AEAD cipher takes no integrity"),
        ("aes256gcm16-aes256-sha1", "mixes AEAD"),
    ],
)
def test_bad_esp_proposals(text: str, message: str) -> None:
    with pytest.raises(ProposalSyntaxError, match=message):
        parse_esp_proposal(text)


def chosen(*transforms: tuple[int, int, int | None], spi: bytes = b"\xaa\xbb\xcc\xdd") -> Proposal:
    return Proposal(1, ProtocolId.ESP, spi, tuple(Transform(t, i, k) for t, i, k in transforms))


def test_the_chosen_suite_and_whether_we_offered_it() -> None:
    specs = tuple(parse_esp_proposal(p) for p in WINDOWS_ESP_PROPOSALS)
    gcm = esp_suite_from_proposal(chosen((1, EncrId.AES_GCM_16, 256), (5, 0, None)))
    assert (gcm.text, gcm.integ, gcm.esn) == ("aes256gcm16", None, False) and esp_offered(specs, gcm)
    cbc = esp_suite_from_proposal(
        chosen((1, EncrId.AES_CBC, 128), (3, IntegId.HMAC_SHA1_96, None), (5, 0, None))
    )
    assert cbc.text == "aes128-sha1" and esp_offered(specs, cbc)
    sha256 = esp_suite_from_proposal(chosen((1, EncrId.AES_CBC, 256), (3, IntegId.HMAC_SHA2_256_128, None)))
    assert sha256.text == "aes256-sha256" and not esp_offered(specs, sha256)
    pfs = esp_suite_from_proposal(
        chosen((1, EncrId.AES_CBC, 256), (3, IntegId.HMAC_SHA1_96, None), (4, DhGroup.MODP_2048, None))
    )
    assert pfs.text == "aes256-sha1-modp2048" and not esp_offered(specs, pfs)  # a group we never offered
    esn = esp_suite_from_proposal(chosen((1, EncrId.AES_GCM_16, 256), (5, 1, None)))
    assert esn.text == "aes256gcm16-esn" and not esp_offered(specs, esn)


@pytest.mark.parametrize(
    ("proposal", "expected"),
    [
        (chosen((3, 2, None)), "exactly one encryption"),
        (chosen((1, 12, 256), (1, 12, 128)), "exactly one encryption"),
        (chosen((1, 12, 256), (3, 2, None), (3, 12, None)), "at most one"),
        (chosen((1, 12, 256), spi=b"\x01\x02"), "4-byte ESP SPI"),
        (Proposal(1, ProtocolId.AH, b"1234", (Transform(TransformType.INTEG, 2),)), "ESP proposal"),
    ],
)
def test_a_chosen_esp_proposal_that_is_no_choice(proposal: Proposal, expected: str) -> None:
    with pytest.raises(MalformedMessage, match=expected):
        esp_suite_from_proposal(proposal)


def prf_plus_reference(key: bytes, seed: bytes, length: int) -> bytes:
    out, block, n = b"", b"", 1
    while len(out) < length:
        block = hmac.new(key, block + seed + bytes([n]), hashlib.sha256).digest()
        out, n = out + block, n + 1
    return out[:length]


@pytest.mark.parametrize(
    ("encr", "bits", "integ", "sizes"),
    [
        (EncrId.AES_GCM_16, 256, None, (36, 0)),  # 32-byte key + 4-byte salt (RFC 4106)
        (EncrId.AES_CBC, 128, IntegId.HMAC_SHA1_96, (16, 20)),
        (EncrId.DES3, None, IntegId.HMAC_SHA1_96, (24, 20)),
        (EncrId.DES, None, IntegId.HMAC_SHA1_96, (8, 20)),
        (EncrId.NULL, None, IntegId.HMAC_SHA2_256_128, (0, 32)),
    ],
)
def test_keymat_is_prf_plus_of_sk_d_in_rfc_order(
    encr: int, bits: int | None, integ: int | None, sizes: tuple[int, int]
) -> None:
    assert esp_key_bytes(encr, bits, integ) == sizes
    e, a = sizes
    sk_d, ni, nr = b"\x11" * 32, b"\x22" * 32, b"\x33" * 24
    keys = derive_child_keys(PrfId.HMAC_SHA2_256, sk_d, ni, nr, e, a)
    stream = prf_plus_reference(sk_d, ni + nr, 2 * (e + a))
    assert keys.encr_i + keys.integ_i + keys.encr_r + keys.integ_r == stream
    assert (len(keys.encr_i), len(keys.integ_i), len(keys.encr_r), len(keys.integ_r)) == (e, a, e, a)
    assert repr(keys) == "ChildKeys(<secret>)"


def test_esp_key_sizes_we_do_not_know() -> None:
    with pytest.raises(UnsupportedSuite):
        esp_key_bytes(EncrId.AES_CTR, 128, IntegId.HMAC_SHA1_96)
    with pytest.raises(UnsupportedSuite):
        esp_key_bytes(EncrId.AES_CBC, 128, IntegId.AES_XCBC_96)


def test_our_wireshark_names_are_the_ones_capture_reads() -> None:
    for (encr, bits), name in _WIRESHARK_ENCR_NAMES.items():
        assert WIRESHARK_ENCR[name] == (encr, bits)
    for integ, name in _WIRESHARK_INTEG_NAMES.items():
        assert WIRESHARK_INTEG[name] == (IntegId.NONE if integ is None else integ, True)


@pytest.mark.parametrize(
    "suite",
    [
        CipherSuite(EncrId.AES_CBC, 256, PrfId.HMAC_SHA2_256, IntegId.HMAC_SHA2_256_128, DhGroup.MODP_2048),
        CipherSuite(EncrId.AES_GCM_16, 256, PrfId.HMAC_SHA2_384, None, DhGroup.ECP_384),
        CipherSuite(EncrId.DES3, None, PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96, DhGroup.MODP_1024),
    ],
)
def test_the_key_line_round_trips_through_capture(suite: CipherSuite) -> None:
    spi_i, spi_r = bytes(range(8)), bytes(range(8, 16))
    keys = derive_ike_keys(suite, b"\x42" * 32, b"\x01" * 32, b"\x02" * 32, spi_i, spi_r)
    table = parse_keys(wireshark_key_line(suite, keys, spi_i, spi_r))
    sent = table.lookup(spi_i, spi_r, True)
    received = table.lookup(spi_i, spi_r, False)
    assert sent is not None and received is not None
    assert sent.keys.encr == keys.sk_ei and received.keys.encr == keys.sk_er
    assert (sent.keys.integ or b"") == keys.sk_ai and (received.keys.integ or b"") == keys.sk_ar
    assert (sent.suite.encr, sent.suite.integ) == (suite.encr, suite.integ)
