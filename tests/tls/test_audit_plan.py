"""The audit planner and `combine`, pure: an in-memory model of a server answers each job (as aioquic tests
its connection against an in-memory peer), so every branch of the plan runs deterministically."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from hypothesis import given, settings
from hypothesis import strategies as st

from vpndoctor.errors import UsageError
from vpndoctor.probes.tls_audit import Endpoint, parse_endpoint
from vpndoctor.tls import suites as S
from vpndoctor.tls.audit import (
    ALL_VERSIONS,
    AuditPlanner,
    ErrorReason,
    HelloJob,
    HelloOutcome,
    Job,
    JobResult,
    JobStatus,
    PreparedHello,
    StackJob,
    StackOutcome,
    answer_complete,
    combine,
    interpret_answer,
    prepare_hello,
    refused,
    suites_for,
)
from vpndoctor.tls.hello import CertificateRequest, Version, parse_client_hello


@dataclass
class ModelServer:
    """Accepts `accepted[version]`; picks by its own order (`server_order`) or the client's."""

    accepted: dict[Version, list[int]]
    server_order: bool = False
    cert_request: CertificateRequest | None = None
    no_cert: StackOutcome = field(default_factory=lambda: StackOutcome(True, version="TLSv1.2"))
    broken_versions: set[Version] = field(default_factory=set)
    seen: list[Job] = field(default_factory=list)

    def answer(self, job: Job) -> JobResult:
        self.seen.append(job)
        if isinstance(job, StackJob):
            if job.purpose == "no-cert":
                return JobResult(job, JobStatus.COMPLETED, self.no_cert)
            if job.max_version == Version.TLS1_2 and not any(v <= Version.TLS1_2 for v in self.accepted):
                return JobResult(
                    job, JobStatus.COMPLETED, StackOutcome(False, failure="UNSUPPORTED_PROTOCOL")
                )
            return JobResult(job, JobStatus.COMPLETED, StackOutcome(True, version="TLSv1.2", resumed=True))
        if job.version in self.broken_versions:
            return JobResult(job, JobStatus.ERROR, reason=ErrorReason.RESET, detail="reset")
        mine = self.accepted.get(job.version, [])
        if self.server_order:
            pick = next((s for s in mine if s in job.suites), None)
        else:
            pick = next((s for s in job.suites if s in mine), None)
        if pick is None:
            return JobResult(job, JobStatus.COMPLETED, HelloOutcome("alert", alert="handshake_failure"))
        return JobResult(
            job,
            JobStatus.COMPLETED,
            HelloOutcome(
                "server_hello",
                job.version,
                pick,
                certificates=(b"leaf",),
                certificate_request=self.cert_request,
            ),
        )


def run(server: ModelServer, **kw: object) -> AuditPlanner:
    planner = AuditPlanner(**kw)  # type: ignore[arg-type]
    rounds = 0
    while not planner.finished:
        jobs = planner.next_jobs()
        assert jobs, "a planner that is not finished must have work out"
        for job in jobs:  # one "round" of concurrent connections
            planner.job_done(server.answer(job))
        rounds += 1
        assert rounds < 500
    return planner


TLS12 = [0xC02F, 0xC030, 0xC013, 0x002F, 0x0035, 0x0002, 0x003B]


def test_enumerates_exactly_the_accepted_suites_per_version() -> None:
    server = ModelServer({Version.TLS1_2: TLS12, Version.TLS1_0: [0x002F, 0x0002], Version.TLS1_3: [0x1301]})
    facts = combine(run(server))
    assert facts.versions == {
        "SSLv3": False,
        "TLSv1.0": True,
        "TLSv1.1": False,
        "TLSv1.2": True,
        "TLSv1.3": True,
    }
    assert set(facts.suites["TLSv1.2"]) == set(TLS12)
    assert facts.suites["TLSv1.0"] == [0x0002, 0x002F]
    assert facts.suites["TLSv1.3"] == [0x1301]
    assert facts.null_suites == [0x0002, 0x003B]
    assert facts.server_preference["TLSv1.2"] is False  # the model follows the client's order
    # every suite offered to a version is one that version can carry
    for job in server.seen:
        if isinstance(job, HelloJob):
            assert set(job.suites) <= set(suites_for(job.version))


def test_server_order_is_recovered() -> None:
    server = ModelServer({Version.TLS1_2: TLS12}, server_order=True)
    facts = combine(run(server))
    assert facts.server_preference["TLSv1.2"] is True
    assert facts.suites["TLSv1.2"] == TLS12


def test_partitions_keep_the_number_of_sequential_rounds_low() -> None:
    many = sorted(v for v in suites_for(Version.TLS1_2))[:60]
    server = ModelServer({Version.TLS1_2: many})
    planner = AuditPlanner(partitions=6)
    rounds = 0
    while not planner.finished:
        for job in planner.next_jobs():
            planner.job_done(server.answer(job))
        rounds += 1
    facts = combine(planner)
    assert set(facts.suites["TLSv1.2"]) == set(many)
    # 1 version round + ~60/6 elimination rounds + preference: far fewer than 60 sequential connections
    assert rounds <= 60 // 6 + 5


def test_a_version_whose_every_attempt_fails_is_unknown_not_false() -> None:
    server = ModelServer({Version.TLS1_2: TLS12}, broken_versions={Version.TLS1_1})
    facts = combine(run(server))
    assert facts.versions["TLSv1.1"] is None and facts.versions["TLSv1.2"] is True
    assert any(r.reason == ErrorReason.RESET for r in facts.errors)


def test_a_server_answering_another_version_does_not_count_for_the_offered_one() -> None:
    class Downgrader(ModelServer):
        def answer(self, job: Job) -> JobResult:
            if isinstance(job, HelloJob) and job.version == Version.TLS1_2:
                return JobResult(
                    job, JobStatus.COMPLETED, HelloOutcome("server_hello", Version.TLS1_0, 0x002F)
                )
            return super().answer(job)

    facts = combine(run(Downgrader({Version.TLS1_0: [0x002F]})))
    assert facts.versions["TLSv1.2"] is False and facts.versions["TLSv1.0"] is True


def test_job_budget_bounds_a_server_that_accepts_everything() -> None:
    everything = {v: list(suites_for(v)) for v in ALL_VERSIONS}
    server = ModelServer(everything)
    planner = run(server, max_hello_jobs=40)
    assert sum(isinstance(j, HelloJob) for j in server.seen) <= 40
    assert combine(planner).versions["TLSv1.2"] is True


def test_not_scheduled_jobs_are_reported() -> None:
    planner = AuditPlanner()
    jobs = planner.next_jobs()
    for job in jobs[:2]:
        planner.job_done(JobResult(job, JobStatus.ERROR, reason=ErrorReason.TIMEOUT))
    planner._ready.extend(jobs[2:])  # handed back unstarted, as the driver does at the deadline
    out = planner.not_scheduled()
    assert len(out) == len(jobs) - 2 and all(r.status == JobStatus.NOT_SCHEDULED for r in out)


CR = CertificateRequest((1,), (0x0401,), ("CN=DA CA",), (b"",))


@pytest.mark.parametrize(
    ("request_seen", "no_cert", "expected", "enforced"),
    [
        (False, StackOutcome(True, version="TLSv1.2", http_status=200), "none", None),
        (True, StackOutcome(True, version="TLSv1.2", http_status=200), "optional", None),
        (True, StackOutcome(False, failure="SSLV3_ALERT_HANDSHAKE_FAILURE"), "required", "tls"),
        (
            True,
            StackOutcome(
                True, version="TLSv1.3", after_handshake_failure="TLSV13_ALERT_CERTIFICATE_REQUIRED"
            ),
            "required",
            "tls",
        ),
        (
            True,
            StackOutcome(
                True,
                version="TLSv1.2",
                http_status=400,
                http_text="HTTP/1.1 400 Bad Request No required SSL certificate was sent",
            ),
            "required",
            "http",
        ),
        (True, StackOutcome(True, version="TLSv1.2", after_handshake_failure="closed"), "required", "http"),
        # nothing requested: a failing stack handshake is another problem, not client authentication
        (False, StackOutcome(False, failure="NO_CIPHERS_AVAILABLE"), "none", None),
        (False, StackOutcome(True, version="TLSv1.2", after_handshake_failure="closed"), "none", None),
    ],
)
def test_client_auth_classification(
    request_seen: bool, no_cert: StackOutcome, expected: str, enforced: str | None
) -> None:
    server = ModelServer(
        {Version.TLS1_2: [0x002F]}, cert_request=CR if request_seen else None, no_cert=no_cert
    )
    facts = combine(run(server))
    assert facts.client_auth == expected and facts.client_auth_enforced_by == enforced
    assert facts.client_ca_names == (["CN=DA CA"] if request_seen else [])
    foreign = any(isinstance(j, StackJob) and j.purpose == "foreign-cert" for j in server.seen)
    assert foreign == request_seen


def test_refused_reads_http_refusals_only_when_they_name_the_certificate() -> None:
    assert refused(StackOutcome(True, http_status=400, http_text="400 Bad Request: bad Host")) is None
    assert refused(StackOutcome(True, http_status=400, http_text="400 The SSL certificate error")) == "http"
    assert refused(StackOutcome(False, failure="closed")) == "tls"


def test_resumption_follows_the_lowest_version_with_session_ids() -> None:
    server = ModelServer({Version.TLS1_3: [0x1301]})
    facts = combine(run(server))
    resume = [j for j in server.seen if isinstance(j, StackJob) and j.purpose.startswith("resume")]
    # TLS 1.3 only: the TLS 1.2 attempts fail, a TLS 1.3 ticket job follows; session ids do not exist there
    assert sorted((j.purpose, j.max_version) for j in resume) == [
        ("resume-id", Version.TLS1_2),
        ("resume-ticket", Version.TLS1_2),
        ("resume-ticket", Version.TLS1_3),
    ]
    assert facts.resumption_session_id is None and facts.resumption_ticket is True
    server = ModelServer({Version.TLS1_2: [0x002F]})
    facts = combine(run(server))
    resume = [j for j in server.seen if isinstance(j, StackJob) and j.purpose.startswith("resume")]
    assert sorted(j.purpose for j in resume) == ["resume-id", "resume-ticket"]
    assert all(j.max_version == Version.TLS1_2 for j in resume)
    assert facts.resumption_session_id is True and facts.resumption_ticket is True


def test_null_group_names() -> None:
    assert {S.name_of(v) for v in (0x0001, 0x0002, 0x003B)} <= {S.name_of(v) for v in S.NULL}


@pytest.mark.parametrize(
    ("text", "endpoint"),
    [
        ("vpn.example.com", Endpoint("vpn.example.com", 443)),
        ("vpn.example.com:8443", Endpoint("vpn.example.com", 8443)),
        ("192.0.2.1", Endpoint("192.0.2.1", 443)),
        ("192.0.2.1:1", Endpoint("192.0.2.1", 1)),
        ("[2001:db8::1]:4443", Endpoint("2001:db8::1", 4443)),
        ("[2001:db8::1]", Endpoint("2001:db8::1", 443)),
        ("2001:db8::1", Endpoint("2001:db8::1", 443)),
    ],
)
def test_parse_endpoint(text: str, endpoint: Endpoint) -> None:
    assert parse_endpoint(text) == endpoint


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        "host:0",
        "host:65536",
        "host:x",
        "[2001:db8::1",
        "[nothost]:443",
        "[::1]x",
        "a b",
        "2001:db8::g",
    ],
)
def test_parse_endpoint_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_endpoint(text)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600), end=st.sampled_from(["done", "closed", "reset", "cap", "timeout"]))
def test_any_answer_is_an_outcome_or_an_error_reason(data: bytes, end: str) -> None:
    prepared = _prepared(Version.TLS1_2)
    outcome, reason, _ = interpret_answer(prepared, data, end)
    assert (outcome is None) != (reason is None)
    assert isinstance(answer_complete(prepared, data), bool)


@settings(max_examples=200, deadline=None)
@given(tail=st.binary(max_size=300))
def test_tls13_answers_with_garbage_after_a_server_hello(tail: bytes) -> None:
    prepared = _prepared(Version.TLS1_3)
    body = b"\x03\x03" + b"\x01" * 32 + b"\x00\x13\x01\x00" + b"\x00\x06" + b"\x00\x2b\x00\x02\x03\x04"
    hello = b"\x02" + len(body).to_bytes(3, "big") + body
    data = b"\x16\x03\x03" + len(hello).to_bytes(2, "big") + hello + tail
    outcome, reason, _ = interpret_answer(prepared, data, "closed")
    assert (outcome is None) != (reason is None)
    if outcome is not None:
        assert outcome.version == Version.TLS1_3 and outcome.suite == 0x1301 and not outcome.decrypted


def _prepared(version: Version) -> PreparedHello:
    job = HelloJob(0, "version", version, suites_for(version))
    return prepare_hello(job, "vpn.example.com", bytes(32), X_KEY, P_KEY)


X_KEY = x25519.X25519PrivateKey.from_private_bytes(bytes(range(32)))
P_KEY = ec.derive_private_key(7, ec.SECP256R1())


@pytest.mark.parametrize("count", range(20, 140, 7))
def test_hellos_never_fall_in_the_f5_length_gap(count: int) -> None:
    job = HelloJob(0, "enumerate", Version.TLS1_2, suites_for(Version.TLS1_2)[:count])
    prepared = prepare_hello(job, "vpn.example.com", bytes(32), X_KEY, P_KEY)
    assert not 0xFF < len(prepared.client_hello_message) < 0x200
    hello = parse_client_hello(prepared.client_hello_message[4:])
    assert hello.cipher_suites == job.suites


def test_a_warning_alert_before_the_server_hello_is_skipped() -> None:
    # Java and Apache servers answer an SNI they do not know with a warning unrecognized_name (112), then
    # carry on; only fatal alerts (and close_notify) end the flight.
    prepared = _prepared(Version.TLS1_2)
    body = b"\x03\x03" + b"\x01" * 32 + b"\x00\x00\x2f\x00"
    hello = b"\x02" + len(body).to_bytes(3, "big") + body
    done = b"\x0e\x00\x00\x00"
    flight = (
        b"\x15\x03\x03\x00\x02\x01\x70"
        + b"\x16\x03\x03"
        + len(hello + done).to_bytes(2, "big")
        + hello
        + done
    )
    outcome, reason, _ = interpret_answer(prepared, flight, "done")
    assert reason is None and outcome is not None
    assert (outcome.kind, outcome.version, outcome.suite) == ("server_hello", Version.TLS1_2, 0x002F)
    fatal = b"\x15\x03\x03\x00\x02\x02\x28"
    outcome, _, _ = interpret_answer(prepared, fatal, "closed")
    assert outcome is not None and outcome.kind == "alert" and outcome.alert == "handshake_failure"
