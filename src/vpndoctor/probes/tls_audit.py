"""`vpndoctor tls`: run the audit plan of `vpndoctor.tls.audit` against one endpoint over `vpndoctor.net.tcp`.

Raw-hello jobs send our own ClientHellos; stack jobs drive the `ssl` module's TLS engine through a MemoryBIO
over the same TCP client (so sockets stay in net/ and every wait has the audit's deadline). At most
`concurrency` connections are open at once; when the total deadline passes, running jobs end in ERROR
(timeout) and jobs not yet started in NOT_SCHEDULED. The result is an `AuditObservation` for the pure checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import os
import ssl
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.x509.oid import NameOID

from vpndoctor.errors import UsageError
from vpndoctor.hostport import HostPort, parse_host_port
from vpndoctor.net.resolve import resolve_one
from vpndoctor.net.tcp import (
    ConnectRefused,
    ConnectTimeout,
    TcpConnection,
    TcpError,
    Unreachable,
)
from vpndoctor.observations.tls import MAX_ANSWER_BYTES, AuditObservation, OversizedAnswer
from vpndoctor.probes.revocation import check_revocation
from vpndoctor.tls.audit import (
    VERSION_NAMES,
    AuditPlanner,
    ErrorReason,
    HelloJob,
    Job,
    JobResult,
    JobStatus,
    StackJob,
    StackOutcome,
    answer_complete,
    combine,
    interpret_answer,
    prepare_hello,
)
from vpndoctor.tls.errors import TlsDecodeError
from vpndoctor.tls.hello import HandshakeType, Version
from vpndoctor.tls.records import RecordBuffer
from vpndoctor.trust import trust_anchors

DEFAULT_PORT = 443
HTTP_READ_BYTES = 8192
# OpenSSL's reason when a handshake message passes its own limit (the certificate list: 100 KiB by default).
SSL_SIZE_FAILURE = "EXCESSIVE_MESSAGE_SIZE"


# The audit's target: `vpndoctor.hostport`'s result (host as given, IPv6 without brackets).
Endpoint = HostPort


def parse_endpoint(text: str, default_port: int = DEFAULT_PORT) -> Endpoint:
    """HOST, HOST:PORT, an IPv6 literal alone, [IPv6] or [IPv6]:PORT. Raises UsageError."""
    return parse_host_port(text, default_port)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass
class AuditRequest:
    target: str
    sni: str | None = None
    ca_files: list[str] = field(default_factory=list)
    timeout_s: float = 10.0
    concurrency: int = 8
    client_cert: str | None = None
    client_key: str | None = None
    address: str | None = None  # probe this address (already resolved and vetted) instead of resolving


# ------------------------------------------------------------------------------------------- stack


def _stack_context(max_version: Version, *, tickets: bool, cert: tuple[str, str] | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # we observe; the checks judge the certificate
    # As permissive as the local OpenSSL allows, so that NULL-only and legacy servers can be handshaked too.
    ctx.set_ciphers("ALL:eNULL:@SECLEVEL=0")
    with contextlib.suppress(ValueError, ssl.SSLError), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated, and exactly what an audit needs
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2 if max_version == Version.TLS1_2 else ssl.TLSVersion.TLSv1_3
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET
    if cert is not None:
        ctx.load_cert_chain(cert[0], cert[1])
    return ctx


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLZeroReturnError | ssl.SSLEOFError):
        return "closed"
    reason = getattr(exc, "reason", None)
    return str(reason) if reason else (str(exc) or type(exc).__name__)


class _Pipe:
    """An ssl.SSLObject over a TcpConnection: the ssl module as a sans-I/O TLS engine."""

    def __init__(self, conn: TcpConnection, obj: ssl.SSLObject, inc: ssl.MemoryBIO, out: ssl.MemoryBIO):
        self.conn, self.obj, self.inc, self.out = conn, obj, inc, out
        self.bytes_in = 0

    async def flush(self, deadline: float) -> None:
        data = self.out.read()
        if data:
            await self.conn.send(data, timeout_s=max(0.05, deadline - time.monotonic()))

    async def pump(self, deadline: float) -> bool:
        """Feed the next chunk from the peer into the engine; False when the peer closed."""
        chunk = await self.conn.receive(timeout_s=deadline - time.monotonic())
        if not chunk:
            self.inc.write_eof()
            return False
        self.bytes_in += len(chunk)
        self.inc.write(chunk)
        return True

    async def handshake(self, deadline: float) -> str | None:
        """None on success, else ssl's reason (or closed/reset/timeout)."""
        while True:
            try:
                self.obj.do_handshake()
            except ssl.SSLWantReadError:
                await self.flush(deadline)
                try:
                    if not await self.pump(deadline):
                        continue  # the engine turns EOF into an SSLEOFError on the next call
                except ConnectTimeout:
                    return "timeout"
                except TcpError as exc:
                    return exc.kind
            except ssl.SSLError as exc:
                with contextlib.suppress(TcpError):
                    await self.flush(deadline)
                return _ssl_reason(exc)
            else:
                await self.flush(deadline)
                return None

    async def read_some(self, until: Callable[[bytes], bool], wait_until: float) -> tuple[bytes, str | None]:
        """Application data until `until(data)`, close, error or `wait_until`; (data, failure or None)."""
        data = b""
        while not until(data) and len(data) < HTTP_READ_BYTES:
            try:
                chunk = self.obj.read(HTTP_READ_BYTES)
            except ssl.SSLWantReadError:
                await self.flush(wait_until)
                try:
                    if not await self.pump(wait_until):
                        continue
                except ConnectTimeout:
                    return data, None
                except TcpError as exc:
                    return data, exc.kind
                continue
            except ssl.SSLError as exc:
                reason = _ssl_reason(exc)
                return data, None if (reason == "closed" and data) else reason
            if not chunk:
                return data, None if data else "closed"
            data += chunk
        return data, None


def _http_done(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            try:
                return len(body) >= int(line.split(b":", 1)[1].strip())
            except ValueError:
                return True
    return len(body) > 0


def _http_status(data: bytes) -> tuple[int | None, str]:
    first = data.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    parts = first.split(" ", 2)
    status = (
        int(parts[1]) if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit() else None
    )
    body = data.partition(b"\r\n\r\n")[2][:400].decode("latin-1", "replace")
    text = " ".join((first + " " + _strip_tags(body)).split())
    return status, text[:300]


def _strip_tags(html: str) -> str:
    out, inside = [], False
    for ch in html:
        if ch == "<":
            inside = True
        elif ch == ">":
            inside = False
            out.append(" ")
        elif not inside:
            out.append(ch)
    return "".join(out)


@dataclass
class _Runner:
    address: str
    port: int
    sni: str | None
    deadline: float
    x25519_key: x25519.X25519PrivateKey
    p256_key: ec.EllipticCurvePrivateKey
    client_cert: tuple[str, str] | None
    foreign_cert: tuple[str, str] | None
    connections: int = 0
    open_now: int = 0
    max_open: int = 0
    connect_times: list[float] = field(default_factory=list)
    oversized: list[OversizedAnswer] = field(default_factory=list)
    # Versions whose certificate chain one hello result already holds: combine() reads one chain per
    # version, and hundreds of copies of a large one (a hello per suite) were most of the audit's memory.
    chain_kept: set[Version] = field(default_factory=set)

    async def connect(self) -> TcpConnection:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ConnectTimeout("deadline reached")
        conn = await TcpConnection.open(self.address, self.port, timeout_s=left)
        self.connections += 1
        self.connect_times.append(conn.connect_s)
        return conn

    def _post_wait(self) -> float:
        """How long to wait for an answer after a handshake (an HTTP reply, a TLS 1.3 alert, tickets)."""
        rtt = min(self.connect_times) if self.connect_times else 0.05
        return min(max(0.3, 8 * rtt), 2.0)

    async def run(self, job: Job) -> JobResult:
        t0 = time.monotonic()
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        try:
            if isinstance(job, HelloJob):
                result = await self._hello(job)
            else:
                result = await self._stack(job)
        except ConnectRefused as exc:
            result = JobResult(job, JobStatus.ERROR, reason=ErrorReason.REFUSED, detail=str(exc))
        except Unreachable as exc:
            result = JobResult(job, JobStatus.ERROR, reason=ErrorReason.UNREACHABLE, detail=str(exc))
        except ConnectTimeout as exc:
            result = JobResult(job, JobStatus.ERROR, reason=ErrorReason.TIMEOUT, detail=str(exc))
        except TcpError as exc:
            reason = ErrorReason.CLOSED if exc.kind == "closed" else ErrorReason.RESET
            result = JobResult(job, JobStatus.ERROR, reason=reason, detail=str(exc))
        except TlsDecodeError as exc:
            result = JobResult(job, JobStatus.ERROR, reason=ErrorReason.MALFORMED, detail=str(exc))
        except (ssl.SSLError, OSError, ValueError) as exc:
            # The ssl module or the kernel refused something on our side; one job fails, the audit goes on.
            result = JobResult(
                job, JobStatus.ERROR, reason=ErrorReason.LOCAL, detail=f"{type(exc).__name__}: {exc}"
            )
        finally:
            self.open_now -= 1
        return JobResult(
            result.job, result.status, result.outcome, result.reason, result.detail, time.monotonic() - t0
        )

    async def _hello(self, job: HelloJob) -> JobResult:
        prepared = prepare_hello(job, self.sni, os.urandom(32), self.x25519_key, self.p256_key)
        conn = await self.connect()
        try:
            await conn.send(prepared.wire, timeout_s=max(0.05, self.deadline - time.monotonic()))
            got = await conn.read_until(
                lambda d: answer_complete(prepared, d), deadline=self.deadline, max_bytes=MAX_ANSWER_BYTES
            )
        finally:
            conn.close()
        if got.end == "cap":
            self.oversized.append(_capped(job, got.data))
        outcome, reason, detail = interpret_answer(prepared, got.data, got.end)
        if outcome is None:
            return JobResult(job, JobStatus.ERROR, reason=reason, detail=detail)
        if outcome.certificates:
            if outcome.version == job.version and job.version not in self.chain_kept:
                self.chain_kept.add(job.version)
            else:
                outcome = replace(outcome, certificates=())
        return JobResult(job, JobStatus.COMPLETED, outcome, detail=detail)

    def _note_ssl_limit(self, job: StackJob, failure: str | None, pipe: _Pipe) -> None:
        if failure is not None and SSL_SIZE_FAILURE in failure:
            name = VERSION_NAMES[job.max_version]
            self.oversized.append(OversizedAnswer(job.id, name, "ssl", None, pipe.bytes_in))

    async def _stack(self, job: StackJob) -> JobResult:
        # Resumption needs a full handshake first: where a certificate is required, only the user's gets one.
        cert = {
            "client-cert": self.client_cert,
            "foreign-cert": self.foreign_cert,
            "resume-id": self.client_cert,
            "resume-ticket": self.client_cert,
        }.get(job.purpose)
        try:
            ctx = _stack_context(job.max_version, tickets=job.purpose != "resume-id", cert=cert)
        except (ssl.SSLError, OSError, ValueError) as exc:
            return JobResult(job, JobStatus.ERROR, reason=ErrorReason.LOCAL, detail=f"ssl: {exc}")
        if job.purpose in ("resume-id", "resume-ticket"):
            return await self._resume(job, ctx)
        conn = await self.connect()
        try:
            pipe = self._pipe(conn, ctx, None)
            failure = await pipe.handshake(self.deadline)
            self._note_ssl_limit(job, failure, pipe)
            if failure is not None:
                return self._done(job, StackOutcome(False, failure=failure))
            obj = pipe.obj
            peer = obj.getpeercert(binary_form=True)
            cipher = obj.cipher()
            version = obj.version()
            host = self.sni or (f"[{self.address}]" if ":" in self.address else self.address)
            request = f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vpndoctor\r\nConnection: close\r\n\r\n"
            after: str | None = None
            data = b""
            try:
                obj.write(request.encode())
                await pipe.flush(self.deadline)
                wait_until = min(self.deadline, time.monotonic() + self._post_wait())
                data, after = await pipe.read_some(_http_done, wait_until)
            except ssl.SSLError as exc:
                after = _ssl_reason(exc)
            except TcpError as exc:
                after = exc.kind
            status, text = _http_status(data) if data else (None, "")
            if after in ("closed", "reset") and not data:
                # Closing on our request without a word is a refusal (nginx `ssl_verify_client on` in front
                # of a proxy does this); TLS 1.3 servers that check certificates after the handshake alert.
                after = "closed"
            elif after in ("closed", "reset", "timeout"):
                after = None
            return self._done(
                job,
                StackOutcome(
                    True,
                    version=version,
                    cipher=cipher[0] if cipher else None,
                    after_handshake_failure=after,
                    http_status=status,
                    http_text=text,
                    peer_certificate=peer,
                ),
            )
        finally:
            conn.close()

    async def _resume(self, job: StackJob, ctx: ssl.SSLContext) -> JobResult:
        conn = await self.connect()
        try:
            pipe = self._pipe(conn, ctx, None)
            failure = await pipe.handshake(self.deadline)
            self._note_ssl_limit(job, failure, pipe)
            if failure is not None:
                return self._done(job, StackOutcome(False, failure=failure))
            version = pipe.obj.version()
            if version == "TLSv1.3":
                # TLS 1.3 tickets come after the handshake: read briefly for them.
                wait_until = min(self.deadline, time.monotonic() + self._post_wait())
                obj = pipe.obj
                await pipe.read_some(
                    lambda _d: obj.session is not None and obj.session.has_ticket, wait_until
                )
            session = pipe.obj.session
        finally:
            conn.close()
        if session is None:
            return self._done(job, StackOutcome(True, version=version, resumed=False))
        has_ticket = session.has_ticket
        has_id = bool(session.id)
        if job.purpose == "resume-ticket" and not has_ticket:
            return self._done(job, StackOutcome(True, version=version, resumed=False, ticket_received=False))
        conn = await self.connect()
        try:
            pipe = self._pipe(conn, ctx, session)
            failure = await pipe.handshake(self.deadline)
            self._note_ssl_limit(job, failure, pipe)
            resumed = failure is None and pipe.obj.session_reused
        finally:
            conn.close()
        return self._done(
            job,
            StackOutcome(
                True,
                version=version,
                failure=failure,
                resumed=resumed,
                ticket_received=has_ticket,
                session_id_received=has_id,
            ),
        )

    def _pipe(self, conn: TcpConnection, ctx: ssl.SSLContext, session: ssl.SSLSession | None) -> _Pipe:
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        sni = self.sni if self.sni and not _is_ip(self.sni) else None
        obj = ctx.wrap_bio(inc, out, server_side=False, server_hostname=sni, session=session)
        return _Pipe(conn, obj, inc, out)

    @staticmethod
    def _done(job: StackJob, outcome: StackOutcome) -> JobResult:
        if not outcome.handshake_ok and outcome.failure == "timeout":
            return JobResult(
                job, JobStatus.ERROR, reason=ErrorReason.TIMEOUT, detail="TLS handshake timed out"
            )
        return JobResult(job, JobStatus.COMPLETED, outcome)


def _capped(job: HelloJob, data: bytes) -> OversizedAnswer:
    """What a hello's answer cut at MAX_ANSWER_BYTES was: the handshake message it was in the middle of, and
    the length that message announced (TLS <= 1.2; a TLS 1.3 flight is encrypted past its ServerHello)."""
    message = announced = None
    buf = RecordBuffer(max_bytes=2**24 + len(data))  # `data` is capped already; let any length be announced
    with contextlib.suppress(TlsDecodeError):
        buf.feed(data)
        pending = buf.pending_handshake
        if pending is not None:
            kind, announced = pending
            try:
                message = HandshakeType(kind).name.lower().replace("_", " ")
            except ValueError:
                message = f"type {kind}"
    return OversizedAnswer(
        job.id, VERSION_NAMES[job.version], "cap", MAX_ANSWER_BYTES, len(data), message, announced
    )


def _throwaway_certificate(directory: Path) -> tuple[str, str]:
    """A self-signed client certificate no server's CA list names: a server that accepts it accepts any."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vpndoctor foreign client (not trusted)")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "foreign.pem", directory / "foreign.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


def check_client_certificate(cert: str | None, key: str | None) -> tuple[str, str] | None:
    """--client-cert/--client-key: both or neither, and loadable (UsageError otherwise)."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise UsageError("--client-cert and --client-key go together")
    for p in (cert, key):
        if not Path(p).is_file():
            raise UsageError(f"cannot read {p}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(f"--client-cert {cert} / --client-key {key}: cannot load them ({exc})") from None
    return cert, key


async def run_audit(req: AuditRequest) -> AuditObservation:
    endpoint = parse_endpoint(req.target)
    client_cert = check_client_certificate(req.client_cert, req.client_key)
    anchors, anchor_source = trust_anchors(req.ca_files)
    started = datetime.datetime.now(datetime.UTC)
    t0 = time.monotonic()
    deadline = t0 + req.timeout_s
    address = req.address or await resolve_one(endpoint.host, timeout_s=req.timeout_s)
    sni = req.sni if req.sni is not None else (None if endpoint.is_ip else endpoint.host)
    planner = AuditPlanner(client_cert=client_cert is not None)
    with tempfile.TemporaryDirectory(prefix="vpndoctor-tls-") as tmp:
        runner = _Runner(
            address,
            endpoint.port,
            sni,
            deadline,
            x25519.X25519PrivateKey.generate(),
            ec.generate_private_key(ec.SECP256R1()),
            client_cert,
            _throwaway_certificate(Path(tmp)),
        )
        await _drive(planner, runner, req.concurrency, deadline)
    facts = combine(planner)
    # What the certificates point at (CRL, OCSP, AIA), within what is left of the deadline.
    revocation = (
        await check_revocation(facts.certificates, anchors, deadline_at=deadline)
        if facts.certificates
        else None
    )
    refused = [r for r in planner.results if r.reason in (ErrorReason.REFUSED, ErrorReason.UNREACHABLE)]
    connect_error = None
    if runner.connections == 0:
        first = refused[0].detail if refused else f"no TCP connection within {req.timeout_s:g} s"
        connect_error = first
    return AuditObservation(
        target=req.target,
        host=endpoint.host,
        address=address,
        port=endpoint.port,
        sni=sni,
        started_at=started.isoformat(),
        duration_s=time.monotonic() - t0,
        facts=facts,
        results=list(planner.results),
        anchors=anchors,
        anchor_source=anchor_source,
        connect_error=connect_error,
        client_cert_given=client_cert is not None,
        connections=runner.connections,
        max_concurrent=runner.max_open,
        round_trip_s=min(runner.connect_times) if runner.connect_times else None,
        oversized=sorted(runner.oversized, key=lambda o: o.job_id),
        revocation=revocation,
    )


async def _drive(planner: AuditPlanner, runner: _Runner, concurrency: int, deadline: float) -> None:
    """Run the planner's jobs, at most `concurrency` at once, until it is finished or the deadline."""
    waiting: list[Job] = []
    running: dict[asyncio.Task[JobResult], Job] = {}
    while True:
        waiting.extend(planner.next_jobs())
        while waiting and len(running) < concurrency and time.monotonic() < deadline:
            job = waiting.pop(0)
            running[asyncio.create_task(runner.run(job))] = job
        if not running:
            break
        left = deadline - time.monotonic()
        done, _ = await asyncio.wait(
            running, timeout=max(0.0, left) + 0.05, return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            job = running.pop(task)
            planner.job_done(task.result())
        if time.monotonic() >= deadline and running:
            for task, job in running.items():
                task.cancel()
                planner.job_done(
                    JobResult(
                        job, JobStatus.ERROR, reason=ErrorReason.TIMEOUT, detail="total deadline reached"
                    )
                )
            await asyncio.gather(*running, return_exceptions=True)
            running.clear()
    for job in waiting:
        planner.results.append(JobResult(job, JobStatus.NOT_SCHEDULED, detail="deadline reached first"))
    planner.not_scheduled()


def audit(req: AuditRequest) -> AuditObservation:
    return asyncio.run(run_audit(req))
