"""The shipped Prometheus files, checked by Prometheus' own promtool: the scrape configuration, the alerting
rules, and the rules' unit tests (deploy/prometheus/vpndoctor-alerts.test.yml). The alerts name finding
ids that exist in checks/ids.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.helpers import need
from vpndoctor.checks import ids

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool(*args: str, cwd: Path = DEPLOY) -> subprocess.CompletedProcess[str]:
    return subprocess.run([need("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_promtool_check_config() -> None:
    proc = promtool("check", "config", "prometheus.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_check_rules() -> None:
    proc = promtool("check", "rules", "vpndoctor-alerts.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 6 rules found" in proc.stdout


def test_promtool_test_rules() -> None:
    proc = promtool("test", "rules", "vpndoctor-alerts.test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_test_rules_can_fail(tmp_path: Path) -> None:
    """The unit tests are not vacuous: with the affinity alert's finding id misspelt, they fail."""
    for name in ("vpndoctor-alerts.yml", "vpndoctor-alerts.test.yml"):
        shutil.copy(DEPLOY / name, tmp_path / name)
    rules = tmp_path / "vpndoctor-alerts.yml"
    rules.write_text(rules.read_text().replace('id="lb.port-affinity"', 'id="lb.affinity"'))
    proc = promtool("test", "rules", "vpndoctor-alerts.test.yml", cwd=tmp_path)
    assert proc.returncode != 0
    assert "VpnLoadBalancerAffinityBroken" in proc.stdout + proc.stderr


def test_alerts_name_real_finding_ids() -> None:
    rules = yaml.safe_load((DEPLOY / "vpndoctor-alerts.yml").read_text())
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    named = set(re.findall(r'id="([^"]+)"', exprs))
    known = {v for k, v in vars(ids).items() if k.isupper() and isinstance(v, str)}
    assert named and named <= known, named - known
    assert {ids.LB_PORT_AFFINITY, ids.PATH_IP_FRAGMENTS, ids.IKE_FRAGMENTATION_SUPPORTED} <= named


def test_systemd_unit_is_hardened() -> None:
    unit = (DEPLOY / "vpndoctor-exporter.service").read_text()
    for setting in (
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "--listen 127.0.0.1:",
    ):
        assert setting in unit, setting
    analyze = shutil.which("systemd-analyze")
    if analyze:
        proc = subprocess.run(
            [analyze, "verify", str(DEPLOY / "vpndoctor-exporter.service")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        # The only complaint allowed: the binary is absent here (it lives in /opt when installed).
        complaints = [ln for ln in proc.stderr.splitlines() if ln.strip() and "is not executable" not in ln]
        assert not complaints, proc.stderr
