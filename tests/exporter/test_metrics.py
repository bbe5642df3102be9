"""The exposition: every metric the exporter writes parses with prometheus-client's own parser and is
documented in README."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from vpndoctor.checks.model import finding
from vpndoctor.exporter.config import ExporterConfig, IkeModule
from vpndoctor.exporter.metrics import Outcome, exposition
from vpndoctor.exporter.service import Exporter

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def full_outcome() -> Outcome:
    return Outcome(
        module="m",
        prober="tls",
        target="vpn.example.com",
        address="203.0.113.1",
        started_at="now",
        success=True,
        duration_s=0.5,
        stage="tls",
        round_trips=3,
        cert_not_after_s=1.8e9,
        fragmentation=True,
        nat_detected=False,
        tls_versions={"TLSv1.2": True, "TLSv1.0": False},
        null_suites=0,
        client_auth="required",
        findings=[finding("tls.reachable", "pass", "ok"), finding("tls.null-suites", "warn", "x")],
    )


def test_probe_metrics_parse_and_are_documented() -> None:
    families = {f.name: f for f in text_string_to_metric_families(exposition(full_outcome()).decode())}
    assert {
        "probe_success",
        "probe_duration_seconds",
        "vpndoctor_finding",
        "vpndoctor_tls_client_auth",
    } <= set(families)
    for name in families:
        assert f"`{name}" in README, f"{name} is not documented in README"
    findings = {(s.labels["id"], s.labels["status"]) for s in families["vpndoctor_finding"].samples}
    assert findings == {("tls.reachable", "pass"), ("tls.null-suites", "warn")}
    auth = {s.labels["mode"]: s.value for s in families["vpndoctor_tls_client_auth"].samples}
    assert auth == {"none": 0, "optional": 0, "required": 1, "unknown": 0}


def test_a_bare_outcome_writes_only_what_was_learnt() -> None:
    bare = Outcome(module="m", prober="ike", target="t", address=None, started_at="now")
    names = {f.name for f in text_string_to_metric_families(exposition(bare).decode())}
    assert names == {
        "probe_success",
        "probe_duration_seconds",
        "vpndoctor_probe_throttled",
        "vpndoctor_stage_reached",
    }


def test_exporter_metrics_are_documented() -> None:
    exp = Exporter("x.yml", ExporterConfig(modules={"m": IkeModule(prober="ike")}))
    names = {m.name for m in exp.registry.collect()}
    ours = {n for n in names if n.startswith("vpndoctor_")}
    assert len(ours) >= 10
    for name in ours:
        base = re.sub(r"_(total|created)$", "", name)
        assert f"`{base}" in README or f"`{name}" in README, f"{name} is not documented in README"
