"""The TLS endpoint audit as a sans-I/O plan: which connections to make, and what their answers mean.

sslyze-style: every job is one connection; the planner hands out jobs as earlier answers make them
meaningful, the driver (`vpndoctor.probes.tls_audit`) runs them concurrently, and each ends COMPLETED,
ERROR (with a reason) or NOT_SCHEDULED (the deadline came first), so one bad connection never aborts the
audit. `combine()` turns the results into facts, purely.

Raw-hello jobs (our own ClientHellos, `vpndoctor.tls.hello`): one per protocol version offering every suite
of that version; for each accepted version, the remaining suites split into partitions that are
eliminated concurrently (offer all, drop the one chosen, repeat until the server refuses); then two
hellos offering the accepted suites in opposite orders reveal whether the server imposes its own order,
and if it does one more elimination chain over the accepted suites yields that order. Stack jobs use a
real TLS stack (the `ssl` module): a full handshake without a client certificate (optional or required?),
with the user's certificate, with a throwaway self-signed one (is any certificate accepted?), and session
resumption by session id and by ticket (the one kind of job that takes two connections, one after the other).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from vpndoctor.tls import suites as S
from vpndoctor.tls.errors import TlsDecodeError
from vpndoctor.tls.hello import (
    GROUP_SECP256R1,
    GROUP_X25519,
    CertificateRequest,
    ExtensionType,
    FlightStatus,
    Version,
    build_client_hello,
    parse_server_flight,
)
from vpndoctor.tls.tls13 import PrivateKey, Tls13Status, read_tls13_flight

VERSION_NAMES: dict[Version, str] = {
    Version.SSLv3: "SSLv3",
    Version.TLS1_0: "TLSv1.0",
    Version.TLS1_1: "TLSv1.1",
    Version.TLS1_2: "TLSv1.2",
    Version.TLS1_3: "TLSv1.3",
}
ALL_VERSIONS = tuple(VERSION_NAMES)
MAX_HELLO_JOBS = 600  # a server that "accepts" everything cannot make the audit run forever
DEFAULT_PARTITIONS = 6

# Suites that only TLS 1.2 defines (SHA-2 MACs, AEAD); offering them in older hellos only lengthens them.
_TLS12_ONLY = frozenset(
    v
    for v, n in S.SUITES.items()
    if any(m in n for m in ("_SHA256", "_SHA384", "_GCM_", "_CCM", "_CHACHA20_"))
)


def suites_for(version: Version) -> tuple[int, ...]:
    """Every suite in the table a hello for `version` can usefully offer (signalling values excluded)."""
    if version == Version.TLS1_3:
        return tuple(sorted(S.TLS13))
    pool = [v for v in sorted(S.SUITES) if v not in S.TLS13 and not S.is_signalling(v) and v != 0x0000]
    if version < Version.TLS1_2:
        pool = [v for v in pool if v not in _TLS12_ONLY]
    return tuple(pool)


class JobStatus(Enum):
    COMPLETED = "completed"
    ERROR = "error"
    NOT_SCHEDULED = "not_scheduled"


class ErrorReason(Enum):
    TIMEOUT = "timeout"  # no (complete) answer before the deadline
    REFUSED = "refused"  # TCP connection refused
    UNREACHABLE = "unreachable"
    RESET = "reset"  # TCP reset
    CLOSED = "closed"  # closed in the middle of a message
    MALFORMED = "malformed"  # bytes that are not well-formed TLS
    NOT_TLS = "not_tls"  # the peer speaks another protocol (HTTP, SSH, ...)
    OVERSIZED = "oversized"  # more bytes than any first flight needs
    LOCAL = "local"  # our side could not do it (e.g. the ssl module refused)


HelloPurpose = Literal["version", "enumerate", "preference", "order"]
StackPurpose = Literal["no-cert", "client-cert", "foreign-cert", "resume-id", "resume-ticket"]


@dataclass(frozen=True)
class HelloJob:
    id: int
    purpose: HelloPurpose
    version: Version
    suites: tuple[int, ...]
    chain: int = 0  # elimination chain this job belongs to (per version)


@dataclass(frozen=True)
class StackJob:
    id: int
    purpose: StackPurpose
    max_version: Version  # TLS1_2 or TLS1_3


Job = HelloJob | StackJob


@dataclass(frozen=True)
class HelloOutcome:
    """What one raw ClientHello got back, interpreted."""

    kind: Literal["server_hello", "alert", "closed", "sslv2"]
    version: int | None = None
    suite: int | None = None
    alert: str | None = None
    certificates: tuple[bytes, ...] = ()
    certificate_request: CertificateRequest | None = None
    handshake_types: tuple[int, ...] = ()
    session_id: bytes = b""
    ticket_extension: bool = False  # the server echoed session_ticket (it will issue a ticket)
    decrypted: bool = False  # TLS 1.3: the encrypted part of the flight was read


@dataclass(frozen=True)
class StackOutcome:
    """A handshake by a real TLS stack (the ssl module), then a small HTTP request where relevant."""

    handshake_ok: bool
    version: str | None = None
    cipher: str | None = None
    failure: str | None = None  # ssl's reason, e.g. TLSV1_ALERT_CERTIFICATE_REQUIRED, or "closed"
    after_handshake_failure: str | None = None  # an alert/close right after the handshake (TLS 1.3 style)
    http_status: int | None = None
    http_text: str = ""  # status line and the start of the body, for evidence
    resumed: bool | None = None  # resumption jobs: the second connection resumed the first one's session
    ticket_received: bool | None = None
    session_id_received: bool | None = None
    peer_certificate: bytes | None = None


@dataclass(frozen=True)
class JobResult:
    job: Job
    status: JobStatus
    outcome: HelloOutcome | StackOutcome | None = None
    reason: ErrorReason | None = None
    detail: str = ""
    elapsed_s: float = 0.0


# --------------------------------------------------------------------------------------- raw hellos


@dataclass(frozen=True)
class PreparedHello:
    wire: bytes
    client_hello_message: bytes  # the handshake message, header included (the TLS 1.3 transcript needs it)
    version: Version
    private_keys: dict[int, PrivateKey]


def _key_share_extension(keys: dict[int, PrivateKey]) -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec, x25519
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    shares = b""
    for group, key in keys.items():
        if isinstance(key, x25519.X25519PrivateKey):
            pub = key.public_key().public_bytes_raw()
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            pub = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        else:  # pragma: no cover - the type admits nothing else
            continue
        shares += group.to_bytes(2, "big") + len(pub).to_bytes(2, "big") + pub
    return len(shares).to_bytes(2, "big") + shares


def prepare_hello(
    job: HelloJob,
    server_name: str | None,
    random: bytes,
    x25519_key: PrivateKey,
    p256_key: PrivateKey,
) -> PreparedHello:
    """The bytes of one job's ClientHello. TLS 1.3 hellos carry X25519 and P-256 key shares, so that almost
    every server answers with a ServerHello (not a HelloRetryRequest) whose flight we can decrypt."""
    keys: dict[int, PrivateKey] = {}
    extensions: list[tuple[int, bytes]] = []
    x_pub = None
    if job.version == Version.TLS1_3:
        keys = {GROUP_X25519: x25519_key, GROUP_SECP256R1: p256_key}
        extensions.append((ExtensionType.KEY_SHARE, _key_share_extension(keys)))
        from cryptography.hazmat.primitives.asymmetric import x25519

        assert isinstance(x25519_key, x25519.X25519PrivateKey)
        x_pub = x25519_key.public_key().public_bytes_raw()
    wire = build_client_hello(
        job.version, job.suites, server_name, random, extensions=extensions, x25519_public_key=x_pub
    )
    message = _handshake_bytes(wire)
    if job.version != Version.SSLv3 and 0xFF < len(message) < 0x200:
        # Some F5 BIG-IP versions hang on ClientHellos of 256-511 bytes; pad them to 512 with the RFC 7685
        # padding extension, as OpenSSL and browsers do (the partition hellos often fall in that range).
        pad = 0x200 - len(message)
        pad = pad - 4 if pad >= 5 else 1
        extensions.append((EXT_PADDING, b"\x00" * pad))
        wire = build_client_hello(
            job.version, job.suites, server_name, random, extensions=extensions, x25519_public_key=x_pub
        )
        message = _handshake_bytes(wire)
    return PreparedHello(wire, message, job.version, keys)


EXT_PADDING = 21


def _handshake_bytes(wire: bytes) -> bytes:
    message = b""
    pos = 0
    while pos + 5 <= len(wire):
        n = int.from_bytes(wire[pos + 3 : pos + 5], "big")
        message += wire[pos + 5 : pos + 5 + n]
        pos += 5 + n
    return message


def answer_complete(prepared: PreparedHello, data: bytes) -> bool:
    """Whether `data` holds all a hello's answer can tell us (or is already broken beyond repair)."""
    try:
        flight = parse_server_flight(data)
        if flight.status == FlightStatus.ENCRYPTED:
            return read_tls13_flight(data, prepared.client_hello_message, prepared.private_keys).status != (
                Tls13Status.INCOMPLETE
            )
        return flight.status != FlightStatus.INCOMPLETE
    except TlsDecodeError:
        return True


_OTHER_PROTOCOLS = (b"HTTP/", b"SSH-", b"220 ", b"<", b"+OK", b"* OK")


def not_tls_reason(data: bytes) -> str | None:
    """A short description when the first bytes are plainly another protocol, else None."""
    if any(data.startswith(p) for p in _OTHER_PROTOCOLS):
        line = data.split(b"\n", 1)[0][:60].decode("latin-1").strip()
        return f"the server speaks another protocol, not TLS: {line!r}"
    return None


def interpret_answer(
    prepared: PreparedHello, data: bytes, end: str
) -> tuple[HelloOutcome | None, ErrorReason | None, str]:
    """What the bytes a server sent for one hello mean: an outcome, or an error reason with a detail.

    `end` is how reading stopped (done, closed, reset, cap, timeout; see `vpndoctor.net.tcp`).
    """
    if not data:
        if end == "closed":
            return HelloOutcome("closed"), None, ""
        if end == "reset":
            return None, ErrorReason.RESET, "connection reset before any answer"
        return None, ErrorReason.TIMEOUT, "no answer"
    other = not_tls_reason(data)
    if other is not None:
        return None, ErrorReason.NOT_TLS, other
    try:
        flight = parse_server_flight(data)
        if flight.status == FlightStatus.ENCRYPTED:
            return _interpret13(prepared, data, end)
    except TlsDecodeError as exc:
        if end == "cap":
            return None, ErrorReason.OVERSIZED, f"more than {len(data)} bytes without a complete flight"
        return None, ErrorReason.MALFORMED, f"not well-formed TLS: {exc}"
    if flight.status == FlightStatus.INCOMPLETE:
        partial = flight.server_hello
        if partial is not None and end in ("closed", "reset"):
            # Some servers drop the connection right after ServerHello for suites they cannot finish.
            return HelloOutcome("server_hello", partial.version, partial.cipher_suite), None, ""
        reason = {
            "cap": ErrorReason.OVERSIZED,
            "reset": ErrorReason.RESET,
            "closed": ErrorReason.CLOSED,
        }.get(end, ErrorReason.TIMEOUT)
        return None, reason, f"incomplete answer ({len(data)} bytes, then {end})"
    if flight.status == FlightStatus.ALERT:
        assert flight.alert is not None
        return HelloOutcome("alert", alert=flight.alert.description_name), None, ""
    if flight.status == FlightStatus.SSLV2:
        v2 = flight.sslv2_server_hello
        return HelloOutcome("sslv2", version=v2.version if v2 else None), None, ""
    hello = flight.server_hello
    assert hello is not None
    if flight.status == FlightStatus.HELLO_RETRY:
        return HelloOutcome("server_hello", hello.version, hello.cipher_suite, decrypted=False), None, ""
    return (
        HelloOutcome(
            "server_hello",
            hello.version,
            hello.cipher_suite,
            certificates=flight.certificates,
            certificate_request=flight.certificate_request,
            handshake_types=flight.handshake_types,
            session_id=hello.session_id,
            ticket_extension=hello.extension(ExtensionType.SESSION_TICKET) is not None,
        ),
        None,
        "",
    )


def _interpret13(
    prepared: PreparedHello, data: bytes, end: str
) -> tuple[HelloOutcome | None, ErrorReason | None, str]:
    try:
        flight = read_tls13_flight(data, prepared.client_hello_message, prepared.private_keys)
    except TlsDecodeError as exc:
        # The ServerHello itself was fine (parse_server_flight read it): keep the version and suite.
        hello = parse_server_flight(data).server_hello
        if hello is None:
            raise
        return HelloOutcome("server_hello", hello.version, hello.cipher_suite), None, f"TLS 1.3: {exc}"
    hello = flight.server_hello or parse_server_flight(data).server_hello
    if hello is None:  # the caller found a ServerHello; a flight that lost it is a decode failure
        raise TlsDecodeError(0, "a TLS 1.3 ServerHello")
    complete = flight.status in (Tls13Status.COMPLETE, Tls13Status.ALERT)
    return (
        HelloOutcome(
            "server_hello",
            hello.version,
            hello.cipher_suite,
            certificates=flight.certificates,
            certificate_request=flight.certificate_request,
            handshake_types=flight.handshake_types,
            decrypted=complete,
        ),
        None,
        "" if complete else f"TLS 1.3 flight {flight.status.value} ({end})",
    )


# ------------------------------------------------------------------------------------------ planner


@dataclass
class _Chain:
    version: Version
    candidates: list[int]
    accepted: list[int] = field(default_factory=list)
    done: bool = False


@dataclass
class _VersionState:
    version: Version
    first: HelloJob | None = None
    answered: bool = False
    accepted: bool = False
    chosen: list[int] = field(default_factory=list)  # accepted suites, in discovery order
    chains: list[_Chain] = field(default_factory=list)
    errors: int = 0
    preference: bool | None = None
    pref_results: dict[int, int | None] = field(default_factory=dict)  # job id -> suite chosen
    order: list[int] = field(default_factory=list)  # server order, when it has one
    order_chain: _Chain | None = None


class AuditPlanner:
    """Hands out jobs; `job_done` feeds results back. Nothing here does I/O."""

    def __init__(
        self,
        *,
        versions: Sequence[Version] = ALL_VERSIONS,
        partitions: int = DEFAULT_PARTITIONS,
        client_cert: bool = False,
        max_hello_jobs: int = MAX_HELLO_JOBS,
    ) -> None:
        self._next_id = 0
        self._partitions = max(1, partitions)
        self._max_hello_jobs = max_hello_jobs
        self._hello_jobs = 0
        self._ready: list[Job] = []
        self._running: set[int] = set()
        self._chain_of: dict[int, _Chain] = {}
        self.results: list[JobResult] = []
        self.versions: dict[Version, _VersionState] = {v: _VersionState(v) for v in versions}
        self._stack_followups_done = False
        self._client_cert = client_cert
        for v in versions:
            job = self._hello("version", v, suites_for(v))
            self.versions[v].first = job
        self._stack("no-cert", Version.TLS1_3)
        if client_cert:
            self._stack("client-cert", Version.TLS1_3)
        # Resumption takes two sequential connections: start at once, at TLS 1.2 (session ids exist only up
        # to TLS 1.2, and they are what an ADC's SSLSESSION persistence keys on); a TLS 1.3-only server gets
        # a TLS 1.3 ticket job once the versions are known.
        self._stack("resume-id", Version.TLS1_2)
        self._stack("resume-ticket", Version.TLS1_2)

    # -- job creation
    def _hello(
        self, purpose: HelloPurpose, version: Version, offered: Iterable[int], chain: int = 0
    ) -> HelloJob:
        job = HelloJob(self._next_id, purpose, version, tuple(offered), chain)
        self._next_id += 1
        self._hello_jobs += 1
        self._ready.append(job)
        return job

    def _stack(self, purpose: StackPurpose, max_version: Version) -> StackJob:
        job = StackJob(self._next_id, purpose, max_version)
        self._next_id += 1
        self._ready.append(job)
        return job

    # -- driver interface
    def next_jobs(self) -> list[Job]:
        """Jobs that may start now (each is handed out once)."""
        jobs, self._ready = self._ready, []
        self._running.update(j.id for j in jobs)
        return jobs

    @property
    def finished(self) -> bool:
        return not self._ready and not self._running

    def job_done(self, result: JobResult) -> None:
        self.results.append(result)
        self._running.discard(result.job.id)
        job = result.job
        if isinstance(job, HelloJob):
            self._hello_done(job, result)
        self._maybe_follow_up()

    def not_scheduled(self) -> list[JobResult]:
        """Mark every job not yet handed out as NOT_SCHEDULED (the deadline came)."""
        jobs, self._ready = self._ready, []
        out = [JobResult(j, JobStatus.NOT_SCHEDULED, detail="deadline reached first") for j in jobs]
        self.results.extend(out)
        return out

    # -- logic
    def _budget_left(self) -> bool:
        return self._hello_jobs < self._max_hello_jobs

    def _hello_done(self, job: HelloJob, result: JobResult) -> None:
        st = self.versions[job.version]
        outcome = result.outcome if isinstance(result.outcome, HelloOutcome) else None
        ok = (
            result.status == JobStatus.COMPLETED
            and outcome is not None
            and outcome.kind == "server_hello"
            and outcome.version == job.version
            and outcome.suite in job.suites
        )
        if result.status == JobStatus.ERROR:
            st.errors += 1
        if job.purpose == "version":
            st.answered = result.status == JobStatus.COMPLETED
            if not ok or outcome is None or outcome.suite is None:
                return
            st.accepted = True
            st.chosen.append(outcome.suite)
            rest = [s for s in job.suites if s != outcome.suite]
            n = min(self._partitions, len(rest))
            for i in range(n):
                part = rest[i::n]
                chain = _Chain(job.version, part)
                st.chains.append(chain)
                self._continue(chain)
            self._maybe_preference(st)
        elif job.purpose == "enumerate":
            chain = self._chain_of.pop(job.id)
            if ok and outcome is not None and outcome.suite is not None:
                st.chosen.append(outcome.suite)
                chain.candidates.remove(outcome.suite)
                self._continue(chain)
            else:
                chain.done = True
            self._maybe_preference(st)
        elif job.purpose == "preference":
            st.pref_results[job.id] = outcome.suite if ok and outcome is not None else None
            self._maybe_order(st)
        elif job.purpose == "order":
            chain = self._chain_of.pop(job.id)
            if ok and outcome is not None and outcome.suite is not None:
                st.order.append(outcome.suite)
                chain.candidates.remove(outcome.suite)
                if len(chain.candidates) == 1:
                    st.order.append(chain.candidates[0])
                    chain.done = True
                else:
                    self._continue(chain, "order")
            else:
                chain.done = True

    def _continue(self, chain: _Chain, purpose: HelloPurpose = "enumerate") -> None:
        if not chain.candidates or not self._budget_left():
            chain.done = True
            return
        job = self._hello(purpose, chain.version, chain.candidates)
        self._chain_of[job.id] = chain

    def _maybe_preference(self, st: _VersionState) -> None:
        if any(not c.done for c in st.chains) or st.pref_results or st.preference is not None:
            return
        if len(st.chosen) < 2 or self._hello_jobs + 2 > self._max_hello_jobs:
            return
        ordered = sorted(st.chosen)
        a = self._hello("preference", st.version, ordered)
        b = self._hello("preference", st.version, list(reversed(ordered)))
        st.pref_results = {a.id: -1, b.id: -1}

    def _maybe_order(self, st: _VersionState) -> None:
        if any(v == -1 for v in st.pref_results.values()):
            return
        picks = list(st.pref_results.values())
        ordered = sorted(st.chosen)
        if None in picks:
            st.preference = None
            return
        if picks[0] == picks[1]:
            st.preference = True
            top = picks[0]
            assert top is not None
            st.order = [top]
            rest = [s for s in ordered if s != top]
            if len(rest) == 1:
                st.order.append(rest[0])
                return
            chain = _Chain(st.version, rest)
            st.order_chain = chain
            self._continue(chain, "order")
        elif picks[0] == ordered[0] and picks[1] == ordered[-1]:
            st.preference = False
        else:
            st.preference = None

    def _maybe_follow_up(self) -> None:
        """Once every version's first answer is in: resumption, and the foreign-certificate test."""
        if self._stack_followups_done:
            return
        if any(st.first is not None and st.first.id in self._running for st in self.versions.values()):
            return
        self._stack_followups_done = True
        accepted = [v for v, st in self.versions.items() if st.accepted]
        if not accepted:
            return
        if Version.TLS1_3 in accepted and not any(v <= Version.TLS1_2 for v in accepted):
            self._stack("resume-ticket", Version.TLS1_3)
        if any(_request_of(r) is not None for r in self.results):
            self._stack("foreign-cert", Version.TLS1_3)


def _request_of(result: JobResult) -> CertificateRequest | None:
    if isinstance(result.outcome, HelloOutcome):
        return result.outcome.certificate_request
    return None


# ------------------------------------------------------------------------------------------ combine


ClientAuth = Literal["none", "optional", "required"]


@dataclass(frozen=True)
class AuditFacts:
    versions: dict[str, bool | None]  # None: could not tell (every attempt failed)
    suites: dict[str, list[int]]  # per version name, server order when it has one
    server_preference: dict[str, bool | None]
    null_suites: list[int]
    certificate_request_seen: bool
    client_ca_names: list[str]
    client_auth: ClientAuth
    client_auth_enforced_by: Literal["tls", "http"] | None
    client_auth_known: bool  # False when the no-certificate handshake could not be made
    no_cert: StackOutcome | None
    client_cert: StackOutcome | None
    foreign_cert: StackOutcome | None
    resumption_session_id: bool | None
    resumption_ticket: bool | None
    certificates: tuple[bytes, ...]  # the chain, leaf first, from the highest version that sent one
    certificate_version: str | None
    tls_answered: bool  # some job got a TLS answer (ServerHello or alert)
    errors: list[JobResult]


def _stack_outcome(results: list[JobResult], purpose: StackPurpose) -> StackOutcome | None:
    """The outcome of the stack job for `purpose`; of several (a TLS 1.3 retry), the one that got through."""
    found = [
        r.outcome
        for r in sorted(results, key=lambda r: -r.job.id)
        if isinstance(r.job, StackJob) and r.job.purpose == purpose and isinstance(r.outcome, StackOutcome)
    ]
    return next((o for o in found if o.handshake_ok), found[0] if found else None)


def refused_by_http(outcome: StackOutcome) -> bool:
    """nginx's `ssl_verify_client on` completes the TLS handshake and refuses at the HTTP layer (400 "No
    required SSL certificate was sent", or "The SSL certificate error" for a bad one)."""
    return outcome.http_status in (400, 403, 495, 496) and "certificate" in outcome.http_text.lower()


def refused(outcome: StackOutcome) -> Literal["tls", "http"] | None:
    """Whether (and where) the server refused this client: a failed handshake or a TLS alert right after it
    (TLS 1.3 servers check the client certificate after their Finished) is "tls"; a completed handshake
    followed by a refusal of the request is "http" (nginx `ssl_verify_client on` answers 400, or closes
    without a word when it proxies)."""
    after = outcome.after_handshake_failure
    if not outcome.handshake_ok or (after is not None and after != "closed"):
        return "tls"
    if after == "closed" or refused_by_http(outcome):
        return "http"
    return None


def combine(planner: AuditPlanner) -> AuditFacts:
    results = planner.results
    versions: dict[str, bool | None] = {}
    suites: dict[str, list[int]] = {}
    prefs: dict[str, bool | None] = {}
    for v, st in planner.versions.items():
        name = VERSION_NAMES[v]
        versions[name] = True if st.accepted else (False if st.answered else None)
        if st.preference and len(st.order) == len(set(st.chosen)):
            suites[name] = list(st.order)
        else:
            suites[name] = sorted(set(st.chosen))
        prefs[name] = st.preference if st.accepted else None
    null = sorted({s for lst in suites.values() for s in lst if S.is_null(s)})
    requests = [
        (r.job.version, r.outcome.certificate_request)
        for r in results
        if isinstance(r.job, HelloJob)
        and isinstance(r.outcome, HelloOutcome)
        and r.outcome.certificate_request is not None
    ]
    ca_names: list[str] = []
    for _, req in sorted(requests, key=lambda x: -x[0]):
        for n in req.certificate_authorities:
            if n not in ca_names:
                ca_names.append(n)
    no_cert = _stack_outcome(results, "no-cert")
    requested = bool(requests)
    enforced: Literal["tls", "http"] | None = None
    known = no_cert is not None
    if no_cert is not None and requested:
        # Only a server that asked for a certificate can be enforcing one: without a request, a failed or
        # dropped connection has another cause.
        enforced = refused(no_cert)
    client_auth: ClientAuth = "required" if enforced else ("optional" if requested else "none")
    certs: tuple[bytes, ...] = ()
    cert_version: str | None = None
    hellos = [
        (r.job, r.outcome)
        for r in results
        if isinstance(r.job, HelloJob) and isinstance(r.outcome, HelloOutcome)
    ]
    for job, outcome in sorted(hellos, key=lambda jo: (-jo[0].version, jo[0].id)):
        if outcome.certificates and outcome.version == job.version:
            certs, cert_version = outcome.certificates, VERSION_NAMES[job.version]
            break
    if not certs and no_cert is not None and no_cert.peer_certificate:
        certs, cert_version = (no_cert.peer_certificate,), no_cert.version
    resume_id = _stack_outcome(results, "resume-id")
    resume_ticket = _stack_outcome(results, "resume-ticket")
    answered = any(
        r.status == JobStatus.COMPLETED and isinstance(r.outcome, HelloOutcome) and r.outcome.kind != "closed"
        for r in results
    ) or any(isinstance(r.outcome, StackOutcome) and r.outcome.handshake_ok for r in results)
    return AuditFacts(
        versions=versions,
        suites=suites,
        server_preference=prefs,
        null_suites=null,
        certificate_request_seen=requested,
        client_ca_names=ca_names,
        client_auth=client_auth,
        client_auth_enforced_by=enforced,
        client_auth_known=known,
        no_cert=no_cert,
        client_cert=_stack_outcome(results, "client-cert"),
        foreign_cert=_stack_outcome(results, "foreign-cert"),
        resumption_session_id=resume_id.resumed if resume_id and resume_id.handshake_ok else None,
        resumption_ticket=resume_ticket.resumed if resume_ticket and resume_ticket.handshake_ok else None,
        certificates=certs,
        certificate_version=cert_version,
        tls_answered=answered,
        errors=[r for r in results if r.status != JobStatus.COMPLETED],
    )
