"""A tiny scripted EAP-MSCHAPv2 authenticator for tests, built on the package's own primitives and packet
classes. Interoperability with independent implementations rests on the RFC vectors (test_vectors.py) and,
later, on the lab's strongSwan; this authenticator exists to drive the peer through every path, including the
ones a real server takes only when misconfigured or hostile (a wrong S=, an EAP-Success too early)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vpndoctor.eap import mschapv2 as m
from vpndoctor.eap.packets import (
    decode_eap,
    encode_failure,
    encode_request,
    encode_success,
)
from vpndoctor.ike.constants import EapCode, EapType


@dataclass
class Authenticator:
    """The server side. `failure` set (e.g. (691, False)): the Response is refused with that E= and R=.
    `tamper_s`: the Success request carries a wrong S=. `nul_terminated`: the Success message ends with a NUL,
    as strongSwan's does."""

    users: dict[str, str]
    challenge: bytes = bytes(range(16))
    name: bytes = b"NPS01"
    mschapv2_id: int = 0x42
    failure: tuple[int, bool] | None = None
    tamper_s: bool = False
    nul_terminated: bool = False
    success_message: str = "Welcome to NPS"
    identifier: int = 1
    msk: bytes | None = None
    received_identity: bytes | None = None
    log: list[str] = field(default_factory=list)

    def identity_request(self) -> bytes:
        return encode_request(self.identifier, EapType.IDENTITY, b"")

    def challenge_request(self) -> bytes:
        body = m.ChallengeRequest(self.mschapv2_id, self.challenge, self.name).encode()
        return encode_request(self.identifier, EapType.MSCHAPV2, body)

    def handle(self, packet: bytes) -> bytes:
        eap = decode_eap(packet)
        assert eap.code == EapCode.RESPONSE and eap.identifier == self.identifier, eap
        self.identifier = (self.identifier + 1) % 256
        if eap.eap_type == EapType.IDENTITY:
            self.received_identity = eap.data
            self.log.append("identity")
            return self.challenge_request()
        if eap.eap_type == EapType.NAK:  # a peer that wants another method: this server runs MSCHAPv2 only
            self.log.append(f"nak-{eap.data.hex()}")
            return encode_failure(self.identifier)
        assert eap.eap_type == EapType.MSCHAPV2, eap
        response = m.decode_response(eap.data)
        if isinstance(response, m.TerseResponse):
            self.log.append(f"terse-{response.opcode}")
            if response.opcode == m.OpCode.SUCCESS:
                return encode_success(self.identifier)
            return encode_failure(self.identifier)
        self.log.append("response")
        name = response.name.decode()
        nt_hash = m.nt_password_hash(self.users[name.rpartition("\\")[2]])
        expected = m.generate_nt_response(self.challenge, response.peer_challenge, response.name, nt_hash)
        if self.failure is not None or expected != response.nt_response:
            error, retriable = self.failure or (691, False)
            failure = m.FailureRequest(
                self.mschapv2_id,
                error,
                retriable,
                bytes(16) if retriable else None,
                3,
                "Authentication failure",
            )
            return encode_request(self.identifier, EapType.MSCHAPV2, failure.encode())
        s_value = m.generate_authenticator_response(
            nt_hash, response.nt_response, response.peer_challenge, self.challenge, response.name
        )
        if self.tamper_s:
            s_value = bytes([s_value[0] ^ 1]) + s_value[1:]
        self.msk = m.msk(nt_hash, response.nt_response)
        body = m.SuccessRequest(self.mschapv2_id, s_value, self.success_message).encode()
        if self.nul_terminated:
            body = body[:2] + (int.from_bytes(body[2:4], "big") + 1).to_bytes(2, "big") + body[4:] + b"\x00"
        return encode_request(self.identifier, EapType.MSCHAPV2, body)
