"""Drive an SSTP client handshake ([MS-SSTP]) over `net.tls_stream` and record what happened: TLS, the
SSTP_DUPLEX_POST answer, the reply to a Call Connect Request (PPP), and a clean Call Abort.

The client stops where a Windows client would start PPP authentication: it never sends credentials and
never completes Call Connected. Every wait is bounded by one deadline; every failure is a one-line `error`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from datetime import UTC, datetime
from typing import Literal

from cryptography import x509

from vpndoctor import __version__
from vpndoctor.errors import VpndoctorError
from vpndoctor.net.resolve import resolve_one
from vpndoctor.net.tls_stream import TlsClientConfig, TlsStream, TlsStreamError
from vpndoctor.observations.sstp import (
    MessageInfo,
    NakStatus,
    Reached,
    SstpObservation,
    Stage,
    TlsInfo,
)
from vpndoctor.probes.ike import describe_certificate
from vpndoctor.probes.revocation import check_revocation
from vpndoctor.sstp.errors import MalformedHttp, MalformedMessage
from vpndoctor.sstp.http import ResponseReader, sstp_request
from vpndoctor.sstp.messages import (
    ControlMessage,
    DataPacket,
    MessageType,
    PacketReader,
    call_abort,
    call_connect_request,
    encode_packet,
    hash_names,
)
from vpndoctor.trust import load_trust_anchors

MAX_TRANSCRIPT = 200
TEARDOWN_WAIT_S = 1.0


async def run_sstp_probe(
    target: str,
    *,
    port: int = 443,
    address: str | None = None,
    sni: str | None = None,
    ca_files: list[str] | None = None,
    anchors: list[x509.Certificate] | None = None,
    timeout_s: float = 5.0,
    deadline_at: float | None = None,
    correlation_id: uuid.UUID | None = None,
    revocation: bool = True,
) -> SstpObservation:
    """The SSTP handshake up to CALL_CONNECT_ACK/NAK, then (`revocation`) the revocation of the TLS chain;
    never raises for the peer's faults."""
    if anchors is None:
        anchors = load_trust_anchors(ca_files) if ca_files else []
    session = _Session(target, port, sni or target, anchors, timeout_s, deadline_at)
    await session.run(address, correlation_id or uuid.uuid4())
    obs = session.observation(address)
    if revocation and session.chain:
        checked = await check_revocation(session.chain, anchors, deadline_at=session.deadline)
        obs = obs.model_copy(update={"revocation": checked})
    return obs


class _Session:
    def __init__(
        self,
        target: str,
        port: int,
        name: str,
        anchors: list[x509.Certificate],
        timeout_s: float,
        deadline_at: float | None,
    ) -> None:
        self.t0 = time.monotonic()
        self.deadline = deadline_at if deadline_at is not None else self.t0 + timeout_s
        self.started_at = datetime.now(UTC).isoformat()
        self.target, self.port, self.name, self.anchors = target, port, name, anchors
        self.address: str | None = None
        self.reached: Reached = "none"
        self.error_stage: Stage | None = None
        self.error: str | None = None
        self.tls: TlsInfo | None = None
        self.http_status: int | None = None
        self.http_reason: str | None = None
        self.server_header: str | None = None
        self.call_connect: Literal["ack", "nak"] | None = None
        self.bitmask: int | None = None
        self.nonce_bytes: int | None = None
        self.nak_status: list[NakStatus] = []
        self.server_abort_status: str | None = None
        self.teardown: str | None = None
        self.ppp_frames = 0
        self.round_trips = 0
        self.messages: list[MessageInfo] = []
        self.notes: list[str] = []
        self.reader = PacketReader()
        self._pending = b""
        self.chain: tuple[bytes, ...] = ()  # the TLS chain as sent, for the revocation step

    # -- bookkeeping --
    def left(self) -> float:
        return self.deadline - time.monotonic()

    def log(self, direction: Literal["out", "in"], size: int, summary: str) -> None:
        if len(self.messages) < MAX_TRANSCRIPT:
            t = round(time.monotonic() - self.t0, 4)
            self.messages.append(MessageInfo(t=t, dir=direction, bytes=size, summary=summary))

    def fail(self, stage: Stage, text: str) -> None:
        self.error_stage, self.error = stage, text

    def observation(self, address: str | None) -> SstpObservation:
        return SstpObservation(
            tool={"name": "vpndoctor", "version": __version__},
            target=self.target,
            address=self.address or address,
            port=self.port,
            sni=sni_for(self.name),
            started_at=self.started_at,
            duration_s=round(time.monotonic() - self.t0, 4),
            reached=self.reached,
            error_stage=self.error_stage,
            error=self.error,
            tls=self.tls,
            http_status=self.http_status,
            http_reason=self.http_reason,
            server_header=self.server_header,
            call_connect=self.call_connect,
            crypto_binding_hash_bitmask=self.bitmask,
            crypto_binding_hashes=hash_names(self.bitmask) if self.bitmask is not None else [],
            nonce_bytes=self.nonce_bytes,
            nak_status=self.nak_status,
            server_abort_status=self.server_abort_status,
            teardown=self.teardown,
            ppp_frames_received=self.ppp_frames,
            round_trips=self.round_trips,
            messages=self.messages,
            notes=self.notes,
        )

    # -- the exchange --
    async def run(self, address: str | None, correlation_id: uuid.UUID) -> None:
        if address is None:
            try:
                address = await resolve_one(self.target, timeout_s=max(0.1, self.left()))
            except VpndoctorError as exc:
                self.fail("resolve", str(exc))
                return
        self.address = address
        stream = await self._handshake(address)
        if stream is None:
            return
        try:
            if await self._http(stream, correlation_id):
                await self._call_connect(stream)
        finally:
            stream.abort()

    async def _handshake(self, address: str) -> TlsStream | None:
        if self.left() <= 0:
            self.fail("connect", "no time left before connecting")
            return None
        config = TlsClientConfig(server_name=sni_for(self.name))
        try:
            stream = await TlsStream.connect(address, self.port, config, timeout_s=self.left())
        except TlsStreamError as exc:
            self.round_trips = 1 if exc.stage == "connect" else 2
            if exc.stage != "connect":
                self.reached = "tcp"
            self.fail("connect" if exc.stage == "connect" else "handshake", str(exc))
            return None
        info = stream.info
        self.chain = info.peer_chain_der
        self.reached = "tls"
        self.round_trips = 1 + (1 if info.version == "TLSv1.3" else 2)
        self.tls = TlsInfo(
            version=info.version,
            cipher=info.cipher,
            cipher_bits=info.cipher_bits,
            client_certificate_requested=info.certificate_requested,
            certificate=describe_certificate(info.peer_chain_der, self.anchors),
            connect_s=round(info.connect_s, 4),
            handshake_s=round(info.handshake_s, 4),
        )
        return stream

    async def _http(self, stream: TlsStream, correlation_id: uuid.UUID) -> bool:
        request = sstp_request(sni_for(self.name) or self.address or self.target, correlation_id, self.port)
        http = ResponseReader()
        response = None
        try:
            await stream.send(request, timeout_s=max(0.05, self.left()))
            self.log("out", len(request), request.split(b"\r\n", 1)[0].decode())
            while response is None:
                if self.left() <= 0:
                    self.fail("http", "no HTTP response to SSTP_DUPLEX_POST: timed out")
                    return False
                data = await stream.recv(timeout_s=self.left())
                if not data:
                    self.fail("http", "the server closed the connection without answering SSTP_DUPLEX_POST")
                    return False
                response = http.feed(data)
        except TlsStreamError as exc:
            self.fail("http", f"no HTTP response to SSTP_DUPLEX_POST: {_words(exc)}")
            return False
        except MalformedHttp as exc:
            self.fail("http", f"not an HTTP response to SSTP_DUPLEX_POST ({exc})")
            return False
        self.round_trips += 1
        self.http_status, self.http_reason = response.status, response.reason
        self.server_header = response.header("Server")
        self.log(
            "in",
            response.header_bytes,
            f"HTTP/{response.version} {response.status} {response.reason}".rstrip(),
        )
        if response.status != 200:
            self.fail(
                "http",
                f"the server answered SSTP_DUPLEX_POST with HTTP {response.status} "
                f"{response.reason}".rstrip(),
            )
            return False
        self.reached = "http"
        self.reader = PacketReader(base_offset=response.header_bytes)
        self._pending = http.rest
        return True

    async def _call_connect(self, stream: TlsStream) -> None:
        try:
            queue = self.reader.feed(self._pending)
            ccr = call_connect_request()
            await stream.send(ccr, timeout_s=max(0.05, self.left()))
            self.log("out", len(ccr), "CALL_CONNECT_REQUEST [protocol=PPP]")
            answer = await self._next_control(stream, queue, self.deadline)
        except TlsStreamError as exc:
            self.fail("sstp", f"no answer to CALL_CONNECT_REQUEST: {_words(exc)}")
            return
        except MalformedMessage as exc:
            self.fail("sstp", f"malformed SSTP from the server after HTTP 200 ({exc})")
            return
        if answer is None:
            self.fail("sstp", "the server closed the connection without answering CALL_CONNECT_REQUEST")
            return
        self.round_trips += 1
        if answer.msg_type == MessageType.CALL_CONNECT_ACK:
            self.reached, self.call_connect = "sstp", "ack"
            cbr = answer.crypto_binding_request
            if cbr is None:
                self.notes.append(
                    "CALL_CONNECT_ACK without a Crypto Binding Request attribute ([MS-SSTP] 2.2.10)"
                )
            else:
                self.bitmask, self.nonce_bytes = cbr.hash_bitmask, len(cbr.nonce)
                if cbr.nonce == bytes(len(cbr.nonce)):
                    self.notes.append("the crypto binding nonce is all zeros")
        elif answer.msg_type == MessageType.CALL_CONNECT_NAK:
            self.reached, self.call_connect = "sstp", "nak"
            self.nak_status = [
                NakStatus(attrib_id=s.attrib_id, status=s.status_name) for s in answer.status_infos
            ]
        elif answer.msg_type in (MessageType.CALL_ABORT, MessageType.CALL_DISCONNECT):
            self.server_abort_status = ",".join(s.status_name for s in answer.status_infos) or "no status"
            self.fail("sstp", f"the server answered CALL_CONNECT_REQUEST with {answer.summary()}")
            self.teardown = f"the server sent {answer.msg_type.name}"
            return
        else:
            self.fail("sstp", f"unexpected answer to CALL_CONNECT_REQUEST: {answer.summary()}")
            return
        await self._abort(stream)

    async def _next_control(
        self, stream: TlsStream, queue: list[ControlMessage | DataPacket], until: float
    ) -> ControlMessage | None:
        """The next control message, skipping data packets (the server's PPP LCP may come first)."""
        while True:
            while queue:
                packet = queue.pop(0)
                if isinstance(packet, DataPacket):
                    self.ppp_frames += 1
                    self.log("in", len(packet.payload) + 4, packet.summary())
                    continue
                self.log("in", len(encode_packet(packet)), packet.summary())
                return packet
            wait = until - time.monotonic()
            if wait <= 0:
                raise TlsStreamError("io", "timeout", "timed out")
            data = await stream.recv(timeout_s=wait)
            if not data:
                return None
            queue = self.reader.feed(data)

    async def _abort(self, stream: TlsStream) -> None:
        """Call Abort (we will not authenticate), then wait briefly for the server's own Abort or close."""
        until = min(self.deadline, time.monotonic() + TEARDOWN_WAIT_S)
        abort = call_abort()
        try:
            await stream.send(abort, timeout_s=max(0.05, until - time.monotonic()))
            self.log("out", len(abort), "CALL_ABORT")
            answer = await self._next_control(stream, [], until)
        except TlsStreamError as exc:
            self.teardown = f"CALL_ABORT sent; no answer ({_words(exc)})"
            return
        except MalformedMessage as exc:
            self.teardown = f"CALL_ABORT sent; the server answered with malformed SSTP ({exc})"
            return
        if answer is None:
            self.teardown = "CALL_ABORT sent; the server closed the connection"
        else:
            self.teardown = f"CALL_ABORT sent; the server answered {answer.msg_type.name}"
        await stream.close(timeout_s=min(0.5, max(0.05, self.left())))


def sni_for(name: str | None) -> str | None:
    if not name:
        return None
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return name
    return None


def _words(exc: TlsStreamError) -> str:
    return "timed out" if exc.kind == "timeout" else str(exc)


def exit_code(obs: SstpObservation) -> int:
    """0: CALL_CONNECT_ACK; 1: the server answered, but not with an ACK; 3: no TCP connection at all."""
    if obs.call_connect == "ack":
        return 0
    if obs.reached == "none":
        return 3
    return 1


def probe(target: str, **kwargs: object) -> SstpObservation:
    return asyncio.run(run_sstp_probe(target, **kwargs))  # type: ignore[arg-type]
