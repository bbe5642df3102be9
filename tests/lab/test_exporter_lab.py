"""`vpndoctor exporter` scraped by a real Prometheus (Debian's package) in the lab.

Two exporters, an "outside" one in the client's namespace and an "inside" one on the internal services
host (where the lab's DNS runs), are scraped by one Prometheus (its own data directory, 1-2 s intervals,
a free port, killed by pid) with the multi-target relabelling of deploy/prometheus and a `location` label
per exporter; the shipped alert rules are loaded. The results are read back through Prometheus' HTTP API:
each verdict must hold on at least two scrapes in a row (our own leftovers never become a finding).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import need, scenarios
from vpndoctor.checks import ids
from vpndoctor.lab import topology as t
from vpndoctor.lab.handle import Lab

pytestmark = pytest.mark.lab

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
INSIDE_ROLE = "dns"  # the internal services host: the VPN seen from the corporate network


def free_port(lab: Lab, role: str, address: str) -> int:
    code = f"import socket; s=socket.socket(); s.bind(({address!r}, 0)); print(s.getsockname()[1])"
    proc = lab.run(role, sys.executable, "-c", code)
    return int(proc.stdout.strip())


def http_get(
    lab: Lab, role: str, url: str, *extra: str, timeout_s: float = 30
) -> subprocess.CompletedProcess[str]:
    return lab.run(role, "curl", "-sS", "-m", str(int(timeout_s)), *extra, url, timeout_s=timeout_s + 5)


def wait_http(lab: Lab, role: str, url: str, what: str, timeout_s: float = 60) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if http_get(lab, role, url, "-f", timeout_s=5).returncode == 0:
            return
        time.sleep(0.5)
    pytest.fail(f"{what} did not answer {url} within {timeout_s:g} s")


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> str:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        return self.log.read_text(errors="replace")


def start(lab: Lab, role: str, argv: list[str], log: Path) -> Proc:
    fh = log.open("wb")
    popen = subprocess.Popen(
        ["ip", "netns", "exec", lab.ns(role), *argv], stdout=fh, stderr=subprocess.STDOUT
    )
    fh.close()
    return Proc(popen, log)


def exporter_config(lab: Lab, path: Path) -> Path:
    ca = lab.info.ca_file
    config = {
        "modules": {
            "diagnose": {"prober": "diagnose", "ca": [ca], "resolvers": [t.DNS4], "timeout_s": 30},
            "ike": {"prober": "ike", "ca": [ca], "timeout_s": 10},
            "tls": {"prober": "tls", "ca": [ca], "timeout_s": 10},
        },
        "dns": {"server": t.DNS4},
        "allow": {"names": [t.SERVER_NAME], "cidrs": ["203.0.113.0/24", "2001:db8:113::/48"]},
        # One probe per job may run against the gateway at once (three jobs): the per-target cap is the
        # load test's subject; here a diagnose must not crowd out the IKE scrape of the same moment.
        "limits": {"timeout_offset_s": 0.5, "max_probes_per_target": 3},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def prometheus_config(path: Path, exporters: dict[str, str]) -> Path:
    def job(name: str, module: str, interval: str, timeout: str) -> dict[str, Any]:
        return {
            "job_name": name,
            "metrics_path": "/probe",
            "params": {"module": [module]},
            "scrape_interval": interval,
            "scrape_timeout": timeout,
            "static_configs": [
                {"targets": [t.SERVER_NAME], "labels": {"location": where, "__exporter": address}}
                for where, address in exporters.items()
            ],
            "relabel_configs": [
                {"source_labels": ["__address__"], "target_label": "__param_target"},
                {"source_labels": ["__param_target"], "target_label": "instance"},
                {"source_labels": ["__exporter"], "target_label": "__address__"},
            ],
        }

    config = {
        "global": {"scrape_interval": "2s", "evaluation_interval": "1s"},
        "rule_files": [str(DEPLOY / "vpndoctor-alerts.yml")],
        "scrape_configs": [
            job("vpndoctor_diagnose", "diagnose", "4s", "4s"),
            job("vpndoctor_ike", "ike", "3s", "3s"),
            job("vpndoctor_tls", "tls", "3s", "3s"),
            {
                "job_name": "vpndoctor_exporter",
                "static_configs": [{"targets": [a], "labels": {"location": w}} for w, a in exporters.items()],
            },
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return path


class Prometheus:
    def __init__(self, lab: Lab, port: int) -> None:
        self.lab, self.port = lab, port

    def query(self, q: str) -> list[dict[str, Any]]:
        proc = http_get(
            self.lab,
            "client",
            f"http://127.0.0.1:{self.port}/api/v1/query",
            "--get",
            "--data-urlencode",
            f"query={q}",
        )
        answer = json.loads(proc.stdout)
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def by_location(self, q: str) -> dict[str, float]:
        return {r["metric"].get("location", ""): float(r["value"][1]) for r in self.query(q)}

    def wait_for(self, q: str, what: str, timeout_s: float = 120) -> list[dict[str, Any]]:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            result = self.query(q)
            if result:
                return result
            time.sleep(1)
        pytest.fail(f"Prometheus never saw {what} ({q}) within {timeout_s:g} s")


@pytest.fixture
def monitored(lab: Lab, tmp_path: Path) -> Iterator[Prometheus]:
    need("prometheus")
    need("curl")
    config = exporter_config(lab, tmp_path / "exporter.yml")
    out_port = free_port(lab, "client", "127.0.0.1")
    in_port = free_port(lab, INSIDE_ROLE, t.DNS4)
    exporters = {"outside": f"127.0.0.1:{out_port}", "inside": f"{t.DNS4}:{in_port}"}
    procs: list[Proc] = []
    # The inside host resolves through the lab's DNS, as a corporate host does (`ip netns exec` mounts this
    # file over /etc/resolv.conf); the client's namespace has its own from the lab already.
    resolv = Path("/etc/netns") / lab.ns(INSIDE_ROLE) / "resolv.conf"
    made_resolv = not resolv.exists()
    if made_resolv:
        resolv.parent.mkdir(parents=True, exist_ok=True)
        resolv.write_text(f"nameserver {t.DNS4}\n")
    try:
        for where, role in (("outside", "client"), ("inside", INSIDE_ROLE)):
            argv = [
                sys.executable,
                "-m",
                "vpndoctor",
                "exporter",
                "--config",
                str(config),
                "--listen",
                exporters[where],
            ]
            procs.append(start(lab, role, argv, tmp_path / f"exporter-{where}.log"))
            wait_http(lab, "client", f"http://{exporters[where]}/-/healthy", f"the {where} exporter")
        prom_config = prometheus_config(tmp_path / "prometheus.yml", exporters)
        check = subprocess.run(
            [need("promtool"), "check", "config", str(prom_config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        prom_port = free_port(lab, "client", "127.0.0.1")
        argv = [
            "prometheus",
            f"--config.file={prom_config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--log.level=warn",
        ]
        procs.append(start(lab, "client", argv, tmp_path / "prometheus.log"))
        wait_http(lab, "client", f"http://127.0.0.1:{prom_port}/-/ready", "Prometheus")
        yield Prometheus(lab, prom_port)
    finally:
        logs = {p.log.name: p.stop() for p in reversed(procs)}
        if made_resolv:
            resolv.unlink(missing_ok=True)
            if not any(resolv.parent.iterdir()):
                resolv.parent.rmdir()
        for name, text in logs.items():
            assert "Traceback" not in text, f"{name}:\n{text}"


def settled(prom: Prometheus, job: str, scrapes: int = 2) -> None:
    """Both locations' `job` scrapes have been answered at least `scrapes` times."""
    q = f'count_over_time(probe_success{{job="{job}"}}[10m]) >= {scrapes}'
    end = time.monotonic() + 180
    while time.monotonic() < end:
        if set(prom.by_location(q)) == {"inside", "outside"}:
            return
        time.sleep(1)
    pytest.fail(f"{job}: not two answered scrapes per location: {prom.query(q)}")


@scenarios("healthy")
def test_prometheus_scrapes_a_healthy_gateway_from_two_places(monitored: Prometheus) -> None:
    prom = monitored
    for job in ("vpndoctor_diagnose", "vpndoctor_ike", "vpndoctor_tls"):
        settled(prom, job)
        # Every answered scrape said success, from both places (min over the window: not just the last one).
        assert prom.by_location(f'min_over_time(probe_success{{job="{job}"}}[10m])') == {
            "inside": 1.0,
            "outside": 1.0,
        }, (
            job,
            [
                (r["metric"]["location"], r["metric"]["id"])
                for r in prom.query(f'max_over_time(vpndoctor_finding{{job="{job}",status="fail"}}[10m])')
            ],
        )
    assert prom.by_location('min_over_time(up{job="vpndoctor_diagnose"}[10m])') == {
        "inside": 1.0,
        "outside": 1.0,
    }
    assert not prom.query('vpndoctor_finding{status="fail"}')
    passing = prom.query(
        f'vpndoctor_finding{{job="vpndoctor_diagnose",id="{ids.LB_PORT_AFFINITY}",status="pass"}}'
    )
    assert {r["metric"]["location"] for r in passing} == {"inside", "outside"}
    assert prom.by_location('vpndoctor_ike_fragmentation_supported{job="vpndoctor_ike"}') == {
        "inside": 1.0,
        "outside": 1.0,
    }
    assert prom.by_location('vpndoctor_stage_reached{job="vpndoctor_ike",stage="IKE_AUTH"}') == {
        "inside": 1.0,
        "outside": 1.0,
    }
    # The lab's server certificate: valid for a while yet, the same seen from both places.
    not_after = prom.by_location('vpndoctor_cert_not_after_timestamp_seconds{job="vpndoctor_ike"}')
    assert len(set(not_after.values())) == 1 and min(not_after.values()) > time.time() + 86400
    assert prom.by_location('vpndoctor_tls_version_accepted{job="vpndoctor_tls",version="TLSv1.2"}') == {
        "inside": 1.0,
        "outside": 1.0,
    }
    # Prometheus' own view: every scrape came back within its timeout, no answer was late.
    for job, timeout in (("vpndoctor_diagnose", 4), ("vpndoctor_ike", 3), ("vpndoctor_tls", 3)):
        worst = prom.by_location(f'max_over_time(scrape_duration_seconds{{job="{job}"}}[10m])')
        assert worst and max(worst.values()) < timeout, (job, worst)
    assert prom.by_location("vpndoctor_exporter_late_answers_total") == {"inside": 0.0, "outside": 0.0}
    assert not prom.query('ALERTS{alertname=~"Vpn.*"}')


@scenarios("error-809-fragments")
def test_prometheus_sees_error_809_and_the_alert_fires(monitored: Prometheus) -> None:
    prom = monitored
    settled(prom, "vpndoctor_diagnose")
    fail = prom.by_location(
        f'min_over_time(vpndoctor_finding{{job="vpndoctor_diagnose",id="{ids.PATH_IP_FRAGMENTS}",status="fail"}}[10m])'
    )
    success = prom.by_location('max_over_time(probe_success{job="vpndoctor_diagnose"}[10m])')
    print(f"path.ip-fragments fail by location: {fail}; diagnose success by location: {success}")
    assert "outside" in fail, prom.query(f'vpndoctor_finding{{id="{ids.PATH_IP_FRAGMENTS}"}}')
    frag = prom.query(
        f'vpndoctor_finding{{job="vpndoctor_diagnose",location="outside",'
        f'id="{ids.IKE_FRAGMENTATION_SUPPORTED}",status="fail"}}'
    )
    assert frag
    assert prom.by_location(
        'max_over_time(probe_success{job="vpndoctor_diagnose",location="outside"}[10m])'
    ) == {"outside": 0.0}
    # The shipped rule matches the live series (pending: its `for` is 10 minutes).
    alerts = prom.wait_for(
        'ALERTS{alertname="VpnIkeFragmentationMissingWhileFragmentsDropped",location="outside"}',
        "the fragmentation alert",
    )
    assert alerts[0]["metric"]["alertstate"] in ("pending", "firing")
    assert prom.wait_for(
        'ALERTS{alertname="VpnGatewayDown",job="vpndoctor_diagnose",location="outside"}',
        "the gateway-down alert",
    )


LOAD_CLIENT = r"""
import asyncio, json, random, sys, time
import aiohttp

port, rounds, per_round, timeout = (int(a) if i < 3 else float(a) for i, a in enumerate(sys.argv[1:5]))
targets = sys.argv[5].split(",")
modules = sys.argv[6].split(",")

async def one(session, module, target):
    t0 = time.monotonic()
    url = f"http://127.0.0.1:{port}/probe"
    try:
        async with session.get(url, params={"module": module, "target": target},
                               headers={"X-Prometheus-Scrape-Timeout-Seconds": str(timeout)},
                               timeout=aiohttp.ClientTimeout(total=timeout * 3)) as r:
            body = await r.text()
            ok = "probe_success 1.0" in body
            throttled = "vpndoctor_probe_throttled 1.0" in body
            return {"status": r.status, "s": time.monotonic() - t0, "ok": ok, "throttled": throttled}
    except Exception as exc:
        return {"status": 0, "s": time.monotonic() - t0, "error": repr(exc)}

async def main():
    random.seed(7)
    async with aiohttp.ClientSession() as session:
        for _ in range(rounds):
            jobs = [one(session, random.choice(modules), random.choice(targets)) for _ in range(per_round)]
            print(json.dumps(await asyncio.gather(*jobs)), flush=True)
            await asyncio.sleep(0.5)
            sys.stdin.readline()  # the test measures the exporter between rounds

asyncio.run(main())
"""


def rss_and_fds(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:")))
    return rss_kb * 1024, len(os.listdir(f"/proc/{pid}/fd"))


@scenarios("healthy")
def test_exporter_under_a_scrape_storm(lab: Lab, tmp_path: Path) -> None:
    """Rounds of 60 concurrent scrapes (4 modules x 3 spellings of the lab's gateway): every one answered
    within its deadline, the caps never exceeded (the exporter's high-water marks, and strongSwan's own
    count of our half-open SAs through vici), RSS and open fds flat from round to round."""
    from vpndoctor.lab.vici_watch import HalfOpenWatch

    ca = lab.info.ca_file
    caps = {"max_concurrent_probes": 4, "max_probes_per_target": 2, "max_half_open": 2, "max_pps": 50}
    config = {
        "modules": {
            "ike": {"prober": "ike", "ca": [ca]},
            "ike_stateless": {"prober": "ike", "stateless": True},
            "sstp": {"prober": "sstp", "ca": [ca]},
            "tls": {"prober": "tls", "ca": [ca], "concurrency": 2},
        },
        "dns": {"server": t.DNS4},
        "limits": caps,
    }
    path = tmp_path / "exporter.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port(lab, "client", "127.0.0.1")
    exporter = start(
        lab,
        "client",
        [
            sys.executable,
            "-m",
            "vpndoctor",
            "exporter",
            "--config",
            str(path),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        tmp_path / "exporter.log",
    )
    rounds, per_round, timeout_s = 6, 60, 5.0
    targets = [t.SERVER_NAME, t.VIP4, t.VIP6]
    client = None
    try:
        wait_http(lab, "client", f"http://127.0.0.1:{port}/-/healthy", "the exporter")
        script = tmp_path / "load.py"
        script.write_text(LOAD_CLIENT)
        argv = [
            sys.executable,
            str(script),
            str(port),
            str(rounds),
            str(per_round),
            str(timeout_s),
            ",".join(targets),
            ",".join(config["modules"]),
        ]  # type: ignore[arg-type]
        client = subprocess.Popen(
            ["ip", "netns", "exec", lab.ns("client"), *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdin is not None and client.stdout is not None
        samples: list[tuple[int, int]] = []
        answers: list[dict[str, Any]] = []
        with HalfOpenWatch(lab.workdir) as watch:
            for _ in range(rounds):
                line = client.stdout.readline()
                assert line, "the load client died"
                answers += json.loads(line)
                time.sleep(1.0)  # let the last connections close
                samples.append(rss_and_fds(exporter.popen.pid))
                client.stdin.write("\n")
                client.stdin.flush()
        client.wait(30)
        metrics = http_get(lab, "client", f"http://127.0.0.1:{port}/metrics").stdout
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        log = exporter.stop()
    assert "Traceback" not in log, log

    def metric(name: str) -> float:
        return float(next(ln.split()[-1] for ln in metrics.splitlines() if ln.startswith(name + " ")))

    assert len(answers) == rounds * per_round
    bad = [a for a in answers if a["status"] != 200]
    assert not bad, bad[:5]
    slowest = max(a["s"] for a in answers)
    assert slowest < timeout_s, f"a scrape took {slowest:.2f} s, beyond its {timeout_s:g} s deadline"
    assert metric("vpndoctor_exporter_late_answers_total") == 0
    assert sum(a["ok"] for a in answers) >= len(answers) * 0.9, [a for a in answers if not a["ok"]][:5]
    # The caps: the exporter's high-water marks, and strongSwan's own count of our half-open SAs (a budget of
    # max_half_open per address: the VIP's IPv4 and IPv6 addresses are two).
    assert metric("vpndoctor_exporter_probes_in_flight_max") <= caps["max_concurrent_probes"]
    assert metric("vpndoctor_exporter_probes_per_target_max") <= caps["max_probes_per_target"]
    assert watch.peak - watch.before <= 2 * caps["max_half_open"], (watch.before, watch.peak)
    # No leak: after the first two rounds (imports, caches, the allocator's arenas), memory and fds flat.
    rss = [s[0] for s in samples]
    fds = [s[1] for s in samples]
    assert max(rss[2:]) - rss[1] < 8 * 1024 * 1024, [r // 1024 for r in rss]
    assert max(fds[1:]) - min(fds[1:]) <= 2, fds
    print(
        f"scrapes {len(answers)}, slowest {slowest:.2f} s, rss MiB {[r >> 20 for r in rss]}, fds {fds}, "
        f"half-open peak {watch.peak - watch.before}, "
        f"in-flight max {metric('vpndoctor_exporter_probes_in_flight_max')}, "
        f"coalesced {metric('vpndoctor_exporter_coalesced_total')}"
    )


@scenarios("block-udp-500")
def test_prometheus_sees_udp_500_blocked_at_the_edge(monitored: Prometheus) -> None:
    """The edge firewall drops UDP 500: from outside the IKE probe reaches no stage and diagnose names
    ike.udp500.reachable; from inside (behind the edge) the gateway answers."""
    prom = monitored
    settled(prom, "vpndoctor_ike")
    settled(prom, "vpndoctor_diagnose")
    ike_ok = prom.by_location('max_over_time(probe_success{job="vpndoctor_ike"}[10m])')
    stage = prom.by_location('max_over_time(vpndoctor_stage_reached{job="vpndoctor_ike",stage="none"}[10m])')
    udp500 = prom.by_location(
        f'min_over_time(vpndoctor_finding{{job="vpndoctor_diagnose",id="{ids.IKE_UDP500_REACHABLE}",status="fail"}}[10m])'
    )
    inside_ok = prom.by_location('min_over_time(probe_success{job="vpndoctor_ike",location="inside"}[10m])')
    print(f"ike success {ike_ok}, stage none {stage}, udp500 fail {udp500}, inside min {inside_ok}")
    assert ike_ok["outside"] == 0.0 and stage["outside"] == 1.0
    assert "outside" in udp500
    assert inside_ok == {"inside": 1.0}
    assert "inside" not in udp500
    assert prom.wait_for(
        'ALERTS{alertname="VpnGatewayDown",job="vpndoctor_ike",location="outside"}', "gateway down"
    )
    assert not prom.query('ALERTS{alertname="VpnGatewayDown",job="vpndoctor_ike",location="inside"}')


def scrape(lab: Lab, port: int, module: str, target: str, timeout_s: float = 10) -> dict[str, float]:
    proc = http_get(
        lab,
        "client",
        f"http://127.0.0.1:{port}/probe?module={module}&target={target}",
        "-H",
        f"X-Prometheus-Scrape-Timeout-Seconds: {timeout_s:g}",
        timeout_s=timeout_s + 5,
    )
    out: dict[str, float] = {}
    for line in proc.stdout.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


@scenarios("iphttps-adc-nginx", "adc-null-missing")
def test_iphttps_and_tls_modules_against_the_directaccess_adc(lab: Lab, tmp_path: Path) -> None:
    """The DirectAccess ADC (nginx): client certificates required in both scenarios; a NULL suite is
    negotiated (iphttps) and accepted (tls) only where the scenario offers one. Twice each."""
    null_offered = lab.scenario.name == "iphttps-adc-nginx"
    assert lab.info.da_pki_dir is not None
    pki = Path(lab.info.da_pki_dir)
    modules = {
        "iphttps": {
            "prober": "iphttps",
            "ca": [lab.info.ca_file, str(pki / "ca.pem")]
            if (pki / "ca.pem").exists()
            else [lab.info.ca_file],
            "client_cert": str(pki / "da-client.pem"),
            "client_key": str(pki / "da-client.key"),
        },
        "tls": {"prober": "tls", "ca": [lab.info.ca_file], "concurrency": 2},
    }
    path = tmp_path / "exporter.yml"
    path.write_text(yaml.safe_dump({"modules": modules, "dns": {"server": t.DNS4}}))
    port = free_port(lab, "client", "127.0.0.1")
    exporter = start(
        lab,
        "client",
        [
            sys.executable,
            "-m",
            "vpndoctor",
            "exporter",
            "--config",
            str(path),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        tmp_path / "exporter.log",
    )
    try:
        wait_http(lab, "client", f"http://127.0.0.1:{port}/-/healthy", "the exporter")
        for _ in range(2):
            ip = scrape(lab, port, "iphttps", t.DA_NAME)
            assert ip['vpndoctor_stage_reached{stage="http"}'] == 1.0, ip
            assert ip['vpndoctor_tls_client_auth{mode="required"}'] == 1.0, ip
            assert ip["vpndoctor_tls_null_suites_accepted"] == (1.0 if null_offered else 0.0), ip
            null_status = "pass" if null_offered else "warn"
            assert (
                ip[f'vpndoctor_finding{{id="{ids.IPHTTPS_NULL_ENCRYPTION}",status="{null_status}"}}'] == 1.0
            ), ip
            tls = scrape(lab, port, "tls", t.DA_NAME, timeout_s=20)
            assert tls['vpndoctor_tls_client_auth{mode="required"}'] == 1.0, tls
            assert (tls["vpndoctor_tls_null_suites_accepted"] > 0) is null_offered, tls
            assert tls['vpndoctor_tls_version_accepted{version="TLSv1.2"}'] == 1.0, tls
    finally:
        log = exporter.stop()
    assert "Traceback" not in log, log
