"""CREATE_CHILD_SA for rekeying (ike/rekey.py): the request payloads RFC 7296 §1.3.2/§1.3.3 ask for, the
answer read (error notify, malformed, PFS), and the rekeyed IKE SA's key schedule (§2.18) - computed here
independently with the standard library's hmac. The end-to-end oracle is the lab's strongSwan, which
answers our requests on the rekeyed SAs (tests/lab/test_tunnel_lab.py)."""

from __future__ import annotations

import hashlib
import hmac

from vpndoctor.ike import rekey as rk
from vpndoctor.ike.constants import DhGroup, EncrId, IntegId, NotifyType, PrfId, ProtocolId, TransformType
from vpndoctor.ike.dh import new_key_exchange
from vpndoctor.ike.keys import CipherSuite, IkeKeys
from vpndoctor.ike.payloads import KePayload, NoncePayload, NotifyPayload, Proposal, SaPayload, TsPayload
from vpndoctor.ike.proposals import EspSuite


def rng(n: int) -> bytes:
    return bytes((7 * i + 3) & 0xFF for i in range(n))


ESP = EspSuite(encr=EncrId.AES_GCM_16, encr_key_bits=256, integ=None, dh=None, esn=False)


def test_child_rekey_request_without_and_with_pfs() -> None:
    plain = rk.child_rekey_request(ESP, b"\xaa\xbb\xcc\xdd", (), (), None, rng)
    kinds = [type(p).__name__ for p in plain.payloads]
    assert kinds == ["NotifyPayload", "SaPayload", "NoncePayload", "TsPayload", "TsPayload"]
    notify = plain.payloads[0]
    assert isinstance(notify, NotifyPayload)
    assert (notify.type, notify.protocol, notify.spi) == (
        NotifyType.REKEY_SA,
        ProtocolId.ESP,
        b"\xaa\xbb\xcc\xdd",
    )
    sa = plain.payloads[1]
    assert isinstance(sa, SaPayload)
    (proposal,) = sa.proposals
    assert proposal.protocol == ProtocolId.ESP and len(proposal.spi) == 4
    assert not [t for t in proposal.transforms if t.type == TransformType.DH]
    pfs = rk.child_rekey_request(ESP, b"\xaa\xbb\xcc\xdd", (), (), DhGroup.MODP_2048, rng)
    dh = [
        t.id
        for p in pfs.payloads
        if isinstance(p, SaPayload)
        for t in p.proposals[0].transforms
        if t.type == 4
    ]
    assert dh == [DhGroup.MODP_2048] and any(isinstance(p, KePayload) for p in pfs.payloads)
    assert isinstance(pfs.payloads[-1], TsPayload) and pfs.payloads[-1].responder


def test_answers() -> None:
    request = rk.child_rekey_request(ESP, b"\x01\x02\x03\x04", (), (), None, rng)
    refused = rk.read_answer(request, (NotifyPayload(type=NotifyType.NO_PROPOSAL_CHOSEN),), spi_bytes=4)
    assert refused.error == "NO_PROPOSAL_CHOSEN"
    assert rk.read_answer(request, (), spi_bytes=4).detail is not None
    good = (
        SaPayload(proposals=(Proposal(1, ProtocolId.ESP, b"\x05\x06\x07\x08", ()),)),
        NoncePayload(data=b"n" * 32),
    )
    answer = rk.read_answer(request, good, spi_bytes=4)
    assert (answer.error, answer.detail, answer.spi_r, answer.shared) == (
        None,
        None,
        b"\x05\x06\x07\x08",
        b"",
    )
    assert rk.read_answer(request, good, spi_bytes=8).detail is not None  # an IKE SPI was expected
    pfs = rk.child_rekey_request(ESP, b"\x01\x02\x03\x04", (), (), DhGroup.ECP_256, rng)
    assert "KE" in (rk.read_answer(pfs, good, spi_bytes=4).detail or "")  # PFS asked, no KE answered
    peer = new_key_exchange(DhGroup.ECP_256, lambda n: b"\x11" * n)
    with_ke = (*good, KePayload(group=DhGroup.ECP_256, data=peer.public_bytes()))
    assert pfs.ke is not None
    assert rk.read_answer(pfs, with_ke, spi_bytes=4).shared == peer.shared_secret(pfs.ke.public_bytes())


def test_rekeyed_ike_keys_rfc7296_2_18() -> None:
    suite = CipherSuite(
        EncrId.AES_CBC, 256, PrfId.HMAC_SHA2_256, IntegId.HMAC_SHA2_256_128, DhGroup.MODP_2048
    )
    old = IkeKeys(b"d" * 32, b"a" * 32, b"b" * 32, b"e" * 32, b"f" * 32, b"p" * 32, b"q" * 32)
    shared, ni, nr, si, sr = b"g" * 256, b"i" * 32, b"r" * 32, b"I" * 8, b"R" * 8
    new = rk.rekeyed_ike_keys(suite, old, shared, ni, nr, si, sr)
    skeyseed = hmac.new(old.sk_d, shared + ni + nr, hashlib.sha256).digest()
    stream, block, n = b"", b"", 1
    while len(stream) < 32 * 7:
        block = hmac.new(skeyseed, block + ni + nr + si + sr + bytes([n]), hashlib.sha256).digest()
        stream += block
        n += 1
    assert new == IkeKeys(*(stream[i * 32 : (i + 1) * 32] for i in range(7)))
