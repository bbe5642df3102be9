"""The stateless IKE_SA_INIT of `vpndoctor scan`, sans-I/O: one template per scan, one request per target.

The request is the initiator's stateless probe (see `initiator.py`): the proposals a Windows client offers,
with a KE payload of a group none of them names. A responder answers INVALID_KE_PAYLOAD naming the group of
the proposal it chose ("accepted": RFC 7296 1.2, 2.7), NO_PROPOSAL_CHOSEN ("refused") or a COOKIE (RFC 7296
2.6, answered once by echoing it); none of these creates an SA, so a scan leaves nothing behind. The probe
never completes the exchange, so one key-exchange value serves the whole scan: the message is encoded once
by the codec and each target's request only patches the SPI, the nonce and the two NAT detection hashes
(a few hundred nanoseconds instead of a full encode). Answers are decoded by the codec (`decode_message`).
"""

from __future__ import annotations

import hashlib
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from vpndoctor.ike.constants import DhGroup, ExchangeType, HashAlgorithm, NotifyType, name_of
from vpndoctor.ike.dh import new_key_exchange
from vpndoctor.ike.errors import MalformedMessage
from vpndoctor.ike.initiator import FLAG_INITIATOR, FLAG_RESPONSE, stateless_ke_group
from vpndoctor.ike.keys import CipherSuite
from vpndoctor.ike.message import Header, Message, decode_message
from vpndoctor.ike.payloads import KePayload, NoncePayload, NotifyPayload, Payload, SaPayload, VendorIdPayload
from vpndoctor.ike.proposals import ProposalSpec, offered, suite_from_proposal
from vpndoctor.ike.vendor_ids import describe as describe_vendor_id

Address = tuple[str, int]
Rng = Callable[[int], bytes]

SPI_BYTES = 8
NONCE_BYTES = 32
_HASH_BYTES = 20
_ZERO_SPI = b"\x00" * SPI_BYTES


def nat_hash(spi_i: bytes, address: Address) -> bytes:
    """RFC 7296 2.23: SHA-1(SPIi | SPIr | IP | port), SPIr zero in the request."""
    host = address[0]
    ip = socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    return hashlib.sha1(spi_i + _ZERO_SPI + ip + struct.pack("!H", address[1])).digest()


@dataclass(frozen=True)
class ScanAnswer:
    """What one IKE_SA_INIT answer says (a field None when the answer does not tell)."""

    kind: str  # "accepted" | "refused" | "cookie" | "error" | "sa" (a full answer: the server holds an SA)
    spi_r: bytes
    error_notify: str | None = None
    ke_group_requested: str | None = None  # INVALID_KE_PAYLOAD's group: the chosen proposal's group
    cookie: bytes | None = None
    vendor_ids: tuple[str, ...] = ()
    suite: CipherSuite | None = None  # kind "sa" only: the proposal the server chose
    fragmentation_supported: bool | None = None  # kind "sa" only
    notifies: tuple[str, ...] = field(default=())


class ScanTemplate:
    """The scan's one IKE_SA_INIT, built once; `request()` makes each target's copy."""

    def __init__(
        self,
        proposals: tuple[ProposalSpec, ...],
        rng: Rng,
        *,
        fragmentation: bool = True,
        ke_group: int | None = None,
    ) -> None:
        if not proposals:
            raise ValueError("at least one IKE proposal is needed")
        self.proposals = proposals
        self.group = ke_group if ke_group is not None else stateless_ke_group(proposals)
        if any(self.group in p.dh for p in proposals):
            raise ValueError("the stateless probe's KE group must not be in an offered proposal")
        self.fragmentation = fragmentation
        self._ke_data = new_key_exchange(self.group, rng).public_bytes()  # one per scan, never used further
        # Placeholders, found again in the encoded bytes: distinct random values cannot clash.
        self._spi, self._nonce = rng(SPI_BYTES), rng(NONCE_BYTES)
        self._src, self._dst = rng(_HASH_BYTES), rng(_HASH_BYTES)
        self._bytes = self._encode(None, self._spi, self._nonce, self._src, self._dst)
        self._nonce_at = self._bytes.index(self._nonce)
        self._src_at = self._bytes.index(self._src)
        self._dst_at = self._bytes.index(self._dst)
        if self._bytes[:SPI_BYTES] != self._spi:
            raise AssertionError("the IKE header starts with the initiator SPI")

    def _encode(self, cookie: bytes | None, spi: bytes, nonce: bytes, src: bytes, dst: bytes) -> bytes:
        payloads: list[Payload] = []
        if cookie is not None:
            payloads.append(NotifyPayload(type=NotifyType.COOKIE, data=cookie))
        payloads.append(
            SaPayload(proposals=tuple(s.to_proposal(i + 1) for i, s in enumerate(self.proposals)))
        )
        payloads.append(KePayload(group=self.group, data=self._ke_data))
        payloads.append(NoncePayload(data=nonce))
        payloads.append(NotifyPayload(type=NotifyType.NAT_DETECTION_SOURCE_IP, data=src))
        payloads.append(NotifyPayload(type=NotifyType.NAT_DETECTION_DESTINATION_IP, data=dst))
        if self.fragmentation:
            payloads.append(NotifyPayload(type=NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))
        hashes = (HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512, HashAlgorithm.SHA1)
        payloads.append(
            NotifyPayload(
                type=NotifyType.SIGNATURE_HASH_ALGORITHMS, data=b"".join(struct.pack("!H", h) for h in hashes)
            )
        )
        header = Header(
            spi_i=spi,
            spi_r=_ZERO_SPI,
            next_payload=0,
            exchange=ExchangeType.IKE_SA_INIT,
            flags=FLAG_INITIATOR,
            message_id=0,
        )
        return Message(header=header, payloads=tuple(payloads)).encode()

    def request(
        self, spi_i: bytes, nonce: bytes, local: Address, remote: Address, cookie: bytes | None = None
    ) -> bytes:
        """This target's IKE_SA_INIT: `spi_i` and `nonce` fresh per target, NAT detection for `local` (our
        address and port towards `remote`) and `remote`."""
        if len(spi_i) != SPI_BYTES or len(nonce) != NONCE_BYTES:
            raise ValueError("an 8-byte SPI and a 32-byte nonce are needed")
        src, dst = nat_hash(spi_i, local), nat_hash(spi_i, remote)
        if cookie is not None:  # rare: a new encode, the COOKIE notify first (RFC 7296 2.6)
            return self._encode(cookie, spi_i, nonce, src, dst)
        b = bytearray(self._bytes)
        b[:SPI_BYTES] = spi_i
        b[self._nonce_at : self._nonce_at + NONCE_BYTES] = nonce
        b[self._src_at : self._src_at + _HASH_BYTES] = src
        b[self._dst_at : self._dst_at + _HASH_BYTES] = dst
        return bytes(b)

    def parse(self, data: bytes, spi_i: bytes) -> ScanAnswer | None:
        """The answer to our request with `spi_i`, or None when `data` is not one (malformed, not a response,
        another exchange or SPI): such datagrams are ignored, never trusted."""
        try:
            msg = decode_message(data)
        except MalformedMessage:
            return None
        h = msg.header
        if (
            h.spi_i != spi_i
            or not h.flags & FLAG_RESPONSE
            or h.exchange != ExchangeType.IKE_SA_INIT
            or h.message_id != 0
        ):
            return None
        notifies = [p for p in msg.payloads if isinstance(p, NotifyPayload)]
        vids = tuple(
            describe_vendor_id(p.data) or p.data.hex() for p in msg.payloads if isinstance(p, VendorIdPayload)
        )
        names = tuple(name_of(NotifyType, n.type) for n in notifies)
        sa = next((p for p in msg.payloads if isinstance(p, SaPayload)), None)
        cookie = next((n for n in notifies if n.type == NotifyType.COOKIE), None)
        if cookie is not None and sa is None:
            return ScanAnswer("cookie", h.spi_r, cookie=cookie.data, vendor_ids=vids, notifies=names)
        invalid_ke = next((n for n in notifies if n.type == NotifyType.INVALID_KE_PAYLOAD), None)
        if invalid_ke is not None:
            group = struct.unpack("!H", invalid_ke.data[:2])[0] if len(invalid_ke.data) >= 2 else 0
            ours = any(group in p.dh for p in self.proposals)
            return ScanAnswer(
                "accepted" if ours else "error",
                h.spi_r,
                error_notify=None if ours else "INVALID_KE_PAYLOAD",
                ke_group_requested=name_of(DhGroup, group),
                vendor_ids=vids,
                notifies=names,
            )
        errors = [n for n in notifies if n.type < 16384]
        if errors:
            error = name_of(NotifyType, errors[0].type)
            kind = "refused" if errors[0].type == NotifyType.NO_PROPOSAL_CHOSEN else "error"
            return ScanAnswer(kind, h.spi_r, error_notify=error, vendor_ids=vids, notifies=names)
        suite: CipherSuite | None = None
        if sa is not None and len(sa.proposals) == 1 and offered(self.proposals, sa.proposals[0]):
            try:
                suite = suite_from_proposal(sa.proposals[0])
            except (MalformedMessage, ValueError):
                suite = None
        # A full answer although our KE group is in no proposal: the server holds a half-open SA now.
        return ScanAnswer(
            "sa",
            h.spi_r,
            vendor_ids=vids,
            suite=suite,
            fragmentation_supported=NotifyType.IKEV2_FRAGMENTATION_SUPPORTED in [n.type for n in notifies],
            notifies=names,
        )
