"""EAP-TLS (RFC 5216), peer side, for `EapPeer`: the TLS 1.2 handshake with our client certificate carried
in EAP-TLS fragments, the server certificate verified against the given anchors, and the MSK of RFC 5216
§2.3. The TLS stack and how the key material is obtained: `vpndoctor.eap.tlslayer`.

The conversation: Start (S flag) -> ClientHello; the server's flight (fragmented, each fragment ACKed) ->
our Certificate, ClientKeyExchange, CertificateVerify, Finished (fragmented, each fragment sent on the
server's ACK); the server's Finished -> an empty response (ACK); then EAP-Success, which `EapPeer` accepts
only once the handshake is complete (the server proved it holds the key of a certificate we trust).
A server that refuses our certificate sends a TLS alert, which we ACK (RFC 5216 §2.1.3) before its
EAP-Failure; a server certificate we refuse makes us send our alert instead.
"""

from __future__ import annotations

from vpndoctor.eap.errors import EapError, EapProtocolError
from vpndoctor.eap.method import EapEvent, MethodStep
from vpndoctor.eap.tlslayer import (
    ALERTS,
    FLAG_START,
    FRAGMENT_BYTES,
    TlsAlert,
    TlsClient,
    TlsFramer,
)
from vpndoctor.ike.constants import EapType

__all__ = ["EapTlsMethod", "TlsPhase"]


class TlsPhase:
    """The TLS handshake inside a TLS-based EAP method (EAP-TLS, and PEAP's phase 1)."""

    def __init__(self, tls: TlsClient, framer: TlsFramer, name: str) -> None:
        self.tls = tls
        self.framer = framer
        self.name = name
        self.started = False
        self.failure: str | None = None
        self._cert_reported = False
        self._alerts_reported: set[tuple[bool, int]] = set()

    def events(self) -> list[EapEvent]:
        out: list[EapEvent] = []
        if not self._cert_reported and self.tls.server_chain:
            event = self.tls.certificate_event()
            if event is not None:
                out.append(event)
                self._cert_reported = True
        for sent, code in ((False, self.tls.alert_received), (True, self.tls.alert_sent)):
            if code is not None and (sent, code) not in self._alerts_reported:
                self._alerts_reported.add((sent, code))
                out.append(TlsAlert(sent, code, ALERTS.get(code, f"alert {code}")))
        return out

    def handshake(self, flags: int, message: bytes | None) -> tuple[bytes | None, bool]:
        """One step of the handshake: (Type-Data to answer with, or None for nothing; whether the handshake
        is now complete). `message` is a whole TLS message (b"" for an ACK), None while fragments come."""
        if flags & FLAG_START:
            if self.started:
                raise EapProtocolError(f"{self.name}: a second Start in one conversation")
            self.started = True
            return self.framer.send(self.tls.start()), False
        if not self.started:
            raise EapProtocolError(f"{self.name}: TLS data before the Start")
        if message is None:
            return self.framer.ack(), False
        if message == b"":
            if self.framer.sending:
                return self.framer.next_fragment(), False
            raise EapProtocolError(f"{self.name}: an empty request while we had nothing to send")
        out = self.tls.receive(message)
        if self.tls.failed is not None:
            self.failure = self.tls.failed
            if self.tls.alert_received is not None or not out:
                return self.framer.ack(), False  # RFC 5216 §2.1.3: ACK the server's alert
            return self.framer.send(out), False  # our alert: we refuse the server
        if out:
            return self.framer.send(out), self.tls.established
        return self.framer.ack(), self.tls.established


class EapTlsMethod:
    """EAP-TLS with a client certificate (`TlsClient` built with `chain_pem` and `key_pem`)."""

    eap_type: int = EapType.TLS

    def __init__(self, tls: TlsClient, *, fragment_bytes: int = FRAGMENT_BYTES) -> None:
        self._phase = TlsPhase(tls, TlsFramer(fragment_bytes=fragment_bytes), "EAP-TLS")
        self._msk: bytes | None = None
        self._failure: str | None = None
        self._done = False

    def __repr__(self) -> str:
        return f"EapTlsMethod(done={self._done}, failed={self._failure is not None})"

    @property
    def tls(self) -> TlsClient:
        return self._phase.tls

    @property
    def succeeded(self) -> bool:
        return self._done and self._msk is not None

    @property
    def failure_reason(self) -> str | None:
        if self._failure is None and self.certificate_refused:
            return (
                "the EAP server ended EAP-TLS right after our certificate, where its Finished was due: it "
                "refused the certificate"
            )
        return self._failure

    @property
    def certificate_refused(self) -> bool:
        """Our whole flight with the client certificate is out, the server's Finished never came (an
        EAP-Failure, or an alert, is all a server that refuses the certificate sends: FreeRADIUS sends the
        failure without an alert)."""
        tls = self.tls
        if tls.alert_received is not None and tls.client_certificate:
            return True
        return (
            tls.client_certificate
            and bool(tls.server_chain)
            and tls.cert_problem is None
            and not tls.established
            and tls.failed is None
            and tls.flights_sent >= 2
            and not self._phase.framer.sending
        )

    def msk(self) -> bytes | None:
        return self._msk if self.succeeded else None

    def process(self, identifier: int, type_data: bytes) -> MethodStep:
        if self._failure is not None and not self._phase.framer.sending:
            # After our alert or the server's, anything but EAP-Failure gets an ACK.
            return MethodStep(self._phase.framer.ack())
        try:
            flags, message = self._phase.framer.parse(type_data)
            reply, complete = self._phase.handshake(flags, message)
        except EapError as exc:
            self._failure = self._failure or f"EAP-TLS: {exc}"
            raise
        if self._phase.failure is not None:
            self._failure = self._phase.failure
        if complete and not self._done:
            material = self.tls.key_material()
            if material is None:
                self._failure = self.tls.failed or "EAP-TLS: no key material from the handshake"
            else:
                self._msk = material[:64]
                self._done = True
        events = self._phase.events()
        if complete and self._done:
            events.append(self.tls.handshake_event())
            self.tls.close()
        return MethodStep(reply, tuple(events))
