"""From one probe's observation and report to the metrics of its `/probe` answer (pure).

`Outcome` is what the exporter keeps of a probe (for the metrics, the `/` page and the HTML report);
`outcome_*` build it from each prober's observation and judged report; `exposition` writes it in the
Prometheus text format through prometheus-client's own encoder (a throwaway registry per scrape, as
blackbox_exporter does). Every metric is documented in README ("monitoring").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vpndoctor.checks.model import DiagnoseReport, Finding
from vpndoctor.checks.sstp import IphttpsReport, SstpReport
from vpndoctor.checks.tls import TlsReport
from vpndoctor.observations.diagnose import DiagnoseObservations
from vpndoctor.observations.ike import CertificateInfo, IkeObservation

# The stages each prober can reach, in order (vpndoctor_stage_reached is a state set over them).
STAGES: dict[str, tuple[str, ...]] = {
    "ike": ("none", "IKE_SA_INIT", "IKE_AUTH"),
    "diagnose": ("none", "IKE_SA_INIT", "IKE_AUTH"),
    "sstp": ("none", "tcp", "tls", "http", "sstp"),
    "iphttps": ("none", "tcp", "tls", "http"),
    "tls": ("none", "tls"),
}
CLIENT_AUTH_MODES = ("none", "optional", "required", "unknown")


@dataclass
class Outcome:
    module: str
    prober: str
    target: str
    address: str | None
    started_at: str
    success: bool = False
    duration_s: float = 0.0
    stage: str = "none"
    summary: str = ""  # one line for the / page
    error: str | None = None  # the probe could not run (or not to its end): why
    throttled: bool = False  # the politeness budget had no place before the deadline
    round_trips: int | None = None
    cert_not_after_s: float | None = None
    fragmentation: bool | None = None
    nat_detected: bool | None = None
    tls_versions: dict[str, bool] = field(default_factory=dict)
    null_suites: int | None = None
    client_auth: str | None = None
    findings: list[Finding] = field(default_factory=list)
    report: Any = None  # the judged report (or the IKE observation), for the HTML page


def _ts(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _cert_ts(cert: CertificateInfo | None) -> float | None:
    return _ts(cert.not_after) if cert is not None else None


def outcome_ike(base: Outcome, obs: IkeObservation, success: bool) -> Outcome:
    # A stateless probe's IKE_SA_INIT is answered (INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN) without an SA.
    base.stage = "IKE_SA_INIT" if obs.reached == "none" and obs.stateless_answer else obs.reached
    base.success = success
    base.round_trips = obs.round_trips
    base.fragmentation = obs.fragmentation_supported if obs.reached != "none" else None
    base.nat_detected = obs.nat_detected if obs.reached != "none" else None
    base.cert_not_after_s = _cert_ts(obs.certificate)
    base.throttled = obs.throttled is not None and obs.reached == "none" and not obs.datagrams
    base.report = obs
    bits = [f"reached {obs.reached}"]
    if obs.error_notify:
        bits.append(obs.error_notify)
    if obs.timeout_exchange:
        bits.append(f"no answer to {obs.timeout_exchange}")
    if obs.stateless_answer:
        bits.append(f"proposals {obs.stateless_answer}")
    if obs.throttled:
        bits.append(obs.throttled)
    base.summary = "; ".join(bits)
    return base


def _fail_summary(findings: list[Finding], fallback: str) -> str:
    failing = [f.id for f in findings if f.status == "fail"]
    return ("failing: " + ", ".join(failing)) if failing else fallback


def outcome_sstp(base: Outcome, report: SstpReport) -> Outcome:
    base.stage = report.reached
    base.findings = list(report.findings)
    base.success = report.reached != "none" and not any(f.status == "fail" for f in report.findings)
    base.round_trips = report.round_trips
    base.cert_not_after_s = _cert_ts(report.tls.certificate if report.tls else None)
    base.report = report
    base.summary = _fail_summary(base.findings, f"reached {report.reached}")
    return base


def outcome_iphttps(base: Outcome, report: IphttpsReport) -> Outcome:
    order = STAGES["iphttps"]
    reached = max((a.reached for a in report.attempts), key=order.index, default="none")
    base.stage = reached
    base.findings = list(report.findings)
    base.success = reached != "none" and not any(f.status == "fail" for f in report.findings)
    base.round_trips = report.round_trips
    cert = next((a.tls.certificate for a in report.attempts if a.tls and a.tls.certificate), None)
    base.cert_not_after_s = _cert_ts(cert)
    base.null_suites = 1 if report.null_encryption else 0
    base.client_auth = report.client_auth
    base.report = report
    base.summary = _fail_summary(base.findings, f"reached {reached}; client auth {report.client_auth}")
    return base


def outcome_tls(base: Outcome, report: TlsReport) -> Outcome:
    base.stage = "tls" if report.error is None else "none"
    base.findings = list(report.findings)
    base.success = report.error is None and report.verdict.status == "healthy"
    base.cert_not_after_s = _ts(report.certificate.not_after) if report.certificate else None
    base.tls_versions = dict(report.versions)
    base.null_suites = len(report.null_suites)
    base.client_auth = report.client_auth
    base.round_trips = None
    base.report = report
    base.summary = report.error or _fail_summary(base.findings, "healthy")
    return base


def outcome_diagnose(base: Outcome, obs: DiagnoseObservations, report: DiagnoseReport) -> Outcome:
    main = obs.ike_main
    base.stage = main.reached if main is not None else "none"
    base.findings = list(report.findings)
    base.success = report.verdict.status == "healthy"
    base.round_trips = report.round_trips
    if main is not None and main.reached != "none":
        base.fragmentation = main.fragmentation_supported
        base.nat_detected = main.nat_detected
    cert = main.certificate if main is not None else None
    if cert is None and obs.sstp is not None and obs.sstp.tls is not None:
        cert = obs.sstp.tls.certificate
    base.cert_not_after_s = _cert_ts(cert)
    base.report = report
    base.summary = _fail_summary(base.findings, "healthy")
    return base


class _Once(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def _gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    g = GaugeMetricFamily(name, doc, labels=list(labels or {}))
    g.add_metric(list((labels or {}).values()), value)
    return g


def families(o: Outcome) -> list[Metric]:
    out: list[Metric] = [
        _gauge(
            "probe_success",
            "1 when the probe succeeded (see README for what success means per prober)",
            1.0 if o.success else 0.0,
        ),
        _gauge("probe_duration_seconds", "How long the probe took, in seconds", o.duration_s),
        _gauge(
            "vpndoctor_probe_throttled",
            "1 when the politeness budget or the caps left no room to probe "
            "before the deadline (nothing or not everything was sent)",
            1.0 if o.throttled else 0.0,
        ),
    ]
    stages = STAGES.get(o.prober, ("none",))
    g = GaugeMetricFamily(
        "vpndoctor_stage_reached",
        "The furthest stage the probe reached (state set: 1 for that stage, 0 for the others)",
        labels=["stage"],
    )
    for s in stages:
        g.add_metric([s], 1.0 if s == o.stage else 0.0)
    out.append(g)
    if o.round_trips is not None:
        out.append(
            _gauge(
                "vpndoctor_round_trips",
                "Sequential round trips on the probe's critical path",
                float(o.round_trips),
            )
        )
    if o.fragmentation is not None:
        out.append(
            _gauge(
                "vpndoctor_ike_fragmentation_supported",
                "1 when the gateway announced IKEv2 fragmentation (RFC 7383, IKEV2_FRAGMENTATION_SUPPORTED)",
                float(o.fragmentation),
            )
        )
    if o.nat_detected is not None:
        out.append(
            _gauge(
                "vpndoctor_ike_nat_detected",
                "1 when NAT detection (RFC 7296 2.23) found a NAT between the exporter and the gateway",
                float(o.nat_detected),
            )
        )
    if o.cert_not_after_s is not None:
        out.append(
            _gauge(
                "vpndoctor_cert_not_after_timestamp_seconds",
                "The gateway certificate's notAfter, seconds since the Unix epoch",
                o.cert_not_after_s,
            )
        )
    if o.tls_versions:
        g = GaugeMetricFamily(
            "vpndoctor_tls_version_accepted",
            "1 when the endpoint accepted a handshake at this protocol version",
            labels=["version"],
        )
        for version, ok in sorted(o.tls_versions.items()):
            g.add_metric([version], 1.0 if ok else 0.0)
        out.append(g)
    if o.null_suites is not None:
        out.append(
            _gauge(
                "vpndoctor_tls_null_suites_accepted",
                "NULL-encryption cipher suites the endpoint accepted (IP-HTTPS: 1 when one was negotiated)",
                float(o.null_suites),
            )
        )
    if o.client_auth is not None:
        g = GaugeMetricFamily(
            "vpndoctor_tls_client_auth",
            "TLS client-certificate authentication mode (state set)",
            labels=["mode"],
        )
        for mode in CLIENT_AUTH_MODES:
            g.add_metric([mode], 1.0 if mode == o.client_auth else 0.0)
        out.append(g)
    if o.findings:
        g = GaugeMetricFamily(
            "vpndoctor_finding",
            "One series per finding: its id (checks/ids.py) and "
            "status (pass, warn, fail, skip, error); the value is always 1",
            labels=["id", "status"],
        )
        for f in o.findings:
            g.add_metric([f.id, f.status], 1.0)
        out.append(g)
    return out


def exposition(o: Outcome) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Once(families(o)))
    return generate_latest(registry)
