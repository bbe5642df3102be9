"""`vpndoctor scan` against the lab's fleet (`scan_vips`: 198.18.0.0/22 and 2001:db8:118::/118 on the edge,
every address DNATed to the VIP and so to the real strongSwan responders), through the real command line in
the client namespace. Each scan runs twice in a row with the same facts, and vici is asked afterwards that
no IKE SA (established or half-open) is left on either backend. The rate cap is checked against what the
edge's nftables counter saw and against a capture (tcpdump) read back by tshark, second by second.
"""

from __future__ import annotations

import ipaddress
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.helpers import need, scenarios
from tests.lab.test_connect_probe import ike_sas, no_sa_left
from vpndoctor.lab import topology as t
from vpndoctor.lab.handle import Lab
from vpndoctor.net.scan import default_burst

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schema" / "scan.json").read_text())
STRICT = Path(__file__).resolve().parent / "scenarios"
ROUNDS = pytest.mark.parametrize("round_", [1, 2], ids=["first", "again"])
RATE = 250  # datagrams a second: what the lab's two shared cores let the responders answer without COOKIEs
FIRST: dict[str, dict[str, Any]] = {}  # facts of each test's first round, by test name


def scan(lab: Lab, tmp_path: Path, *args: str, timeout_s: float = 300) -> tuple[int, list[dict[str, Any]]]:
    out = tmp_path / f"scan-{time.monotonic_ns()}.jsonl"
    argv = [sys.executable, "-m", "vpndoctor", "scan", *args, "--output", str(out), "--quiet"]
    proc = lab.run("client", *argv, timeout_s=timeout_s)
    assert "Traceback" not in proc.stderr, proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    for record in records:
        jsonschema.validate(record, SCHEMA)
    return proc.returncode, records


def facts(records: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    keys = ("result", "responded", "error_notify", "ke_group_requested", "proposal")
    keys += ("fragmentation_supported",)
    return {r["target"]: tuple(r[k] for k in keys) for r in records}


def same_as_first(name: str, round_: int, records: list[dict[str, Any]]) -> None:
    if round_ == 1:
        FIRST[name] = facts(records)
    elif name in FIRST:
        assert facts(records) == FIRST[name], "the second scan saw other facts than the first"


def addresses(cidr: str) -> set[str]:
    return {str(a) for a in ipaddress.ip_network(cidr)}


def sent_by_edge(lab: Lab) -> int:
    return lab.counters("edge")["scan_vips_udp"]


@scenarios("scan-vips")
@ROUNDS
def test_fleet_of_1024_all_accept_and_nothing_is_left(lab: Lab, tmp_path: Path, round_: int) -> None:
    before = sent_by_edge(lab)
    t0 = time.monotonic()
    code, records = scan(lab, tmp_path, t.SCAN_VIPS4, "--rate", str(RATE), "--concurrency", "256")
    elapsed = time.monotonic() - t0
    assert code == 0
    assert {r["target"] for r in records} == addresses(t.SCAN_VIPS4) and len(records) == 1024
    assert Counter(r["result"] for r in records) == {"accepted": 1024}, Counter(r["result"] for r in records)
    # The responders' first proposal with Windows' offer: AES-256/SHA-256/MODP-2048.
    assert {r["ke_group_requested"] for r in records} == {"MODP_2048"}
    assert all(r["responded"] and r["rtt_ms"] is None or r["rtt_ms"] >= 0 for r in records)
    assert not any(r["left_half_open"] for r in records)
    sent = sum(r["datagrams_sent"] for r in records)
    assert sent_by_edge(lab) - before == sent, "the edge counted other datagrams than the scan reports"
    assert sent <= RATE * elapsed + default_burst(RATE), (sent, elapsed)
    no_sa_left(lab)
    same_as_first("fleet4", round_, records)


@scenarios("scan-vips")
@ROUNDS
def test_ipv6_fleet_accepts(lab: Lab, tmp_path: Path, round_: int) -> None:
    cidr = "2001:db8:118::/120"
    code, records = scan(lab, tmp_path, cidr, "--rate", str(RATE))
    assert code == 0
    assert {r["target"] for r in records} == addresses(cidr)
    assert Counter(r["result"] for r in records) == {"accepted": 256}
    no_sa_left(lab)
    same_as_first("fleet6", round_, records)


@scenarios("scan-vips")
@ROUNDS
def test_details_reads_the_full_answer_and_ends_each_sa(lab: Lab, tmp_path: Path, round_: int) -> None:
    cidr = "198.18.1.0/28"
    code, records = scan(lab, tmp_path, cidr, "--details", "--concurrency", "2", "--rate", "100")
    assert code == 0
    assert {r["target"] for r in records} == addresses(cidr)
    for r in records:
        assert r["result"] == "answered", r
        assert r["proposal"] == "aes256-sha256-modp2048"
        assert r["fragmentation_supported"] is True
        # The fleet is DNATed (and the edge may move our source port): NAT detection must say so.
        assert r["nat_detected"] is True
        assert r["left_half_open"] is False
        assert r["datagrams_sent"] >= 3  # stateless probe, full IKE_SA_INIT, the IKE_AUTH that ends it
    no_sa_left(lab)
    same_as_first("details", round_, records)


@scenarios("scan-vips")
def test_rate_cap_holds_in_every_second(lab: Lab, tmp_path: Path) -> None:
    need("tcpdump")
    tshark = need("tshark")
    pcap = tmp_path / "scan.pcap"
    rate = 300
    dump = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            lab.ns("client"),
            "tcpdump",
            "--immediate-mode",
            "-i",
            "eth0",
            "-U",
            "-w",
            str(pcap),
            "udp and dst port 500",
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert dump.stderr is not None
        assert "listening on" in dump.stderr.readline()
        code, records = scan(lab, tmp_path, t.SCAN_VIPS4, "--rate", str(rate), "--concurrency", "1024")
        time.sleep(0.5)
    finally:
        dump.send_signal(signal.SIGTERM)
        dump.wait(timeout=20)
    assert code == 0 and len(records) == 1024
    proc = subprocess.run(
        [tshark, "-r", str(pcap), "-T", "fields", "-e", "frame.time_epoch"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    times = sorted(float(x) for x in proc.stdout.split())
    assert len(times) == sum(r["datagrams_sent"] for r in records)
    worst, j = 0, 0
    for i, start in enumerate(times):  # the busiest one-second window
        while j < len(times) and times[j] < start + 1.0:
            j += 1
        worst = max(worst, j - i)
    assert worst <= rate + default_burst(rate), worst
    assert worst >= rate * 0.5, f"the scan ran far below its cap ({worst} in the busiest second)"
    no_sa_left(lab)


@scenarios("scan-vips")
def test_interrupted_scan_resumes_without_repeating_a_target(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "resumable.jsonl"
    argv = ["ip", "netns", "exec", lab.ns("client"), sys.executable, "-m", "vpndoctor", "scan", t.SCAN_VIPS4,
            "--rate", "100", "--output", str(out), "--quiet"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stderr
    first = [json.loads(line) for line in out.read_text().splitlines()]  # every line whole
    assert 0 < len(first) < 1024
    argv2 = [sys.executable, "-m", "vpndoctor", "scan", t.SCAN_VIPS4, "--rate", str(RATE),
             "--output", str(out), "--resume", "--quiet"]  # fmt: skip
    done = lab.run("client", *argv2, timeout_s=300)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    targets = [r["target"] for r in records]
    assert len(targets) == len(set(targets)) == 1024
    assert set(targets) == addresses(t.SCAN_VIPS4)
    assert {r["result"] for r in records} == {"accepted"}
    no_sa_left(lab)


@pytest.mark.parametrize("lab", [str(STRICT / "scan-vips-block-udp-500.yaml")], indirect=True, ids=["block"])
@ROUNDS
def test_blocked_udp_500_is_no_answer(lab: Lab, tmp_path: Path, round_: int) -> None:
    cidr = "198.18.2.0/27"
    code, records = scan(lab, tmp_path, cidr, "--timeout-s", "0.3", "--retries", "1", "--rate", str(RATE))
    assert code == 1  # nothing answered
    assert {r["target"] for r in records} == addresses(cidr)
    for r in records:
        assert (r["result"], r["responded"], r["datagrams_sent"]) == ("no-answer", False, 2), r
    assert ike_sas(lab) == 0
    same_as_first("blocked", round_, records)


@pytest.mark.parametrize(
    "lab", [str(STRICT / "scan-vips-proposals-mismatch.yaml")], indirect=True, ids=["mismatch"]
)
@ROUNDS
def test_proposal_mismatch_is_refused(lab: Lab, tmp_path: Path, round_: int) -> None:
    cidr = "198.18.3.0/26"
    code, records = scan(lab, tmp_path, cidr, "--rate", str(RATE))
    assert code == 0
    assert {r["target"] for r in records} == addresses(cidr)
    for r in records:
        assert (r["result"], r["error_notify"]) == ("refused", "NO_PROPOSAL_CHOSEN"), r
    # The responders' own proposal is named when we offer it: accepted, in its group.
    code, records = scan(lab, tmp_path, "198.18.3.0/30", "--proposal", "aes256-sha512-modp4096")
    assert {(r["result"], r["ke_group_requested"]) for r in records} == {("accepted", "MODP_4096")}
    no_sa_left(lab)
    same_as_first("mismatch", round_, records)


@scenarios("scan-vips")
@ROUNDS
def test_probe_diagnose_judges_each_target(lab: Lab, tmp_path: Path, round_: int) -> None:
    code, records = scan(
        lab, tmp_path, t.SERVER_NAME, "198.18.0.7", "--probe", "diagnose", "--ca", lab.info.ca_file,
        "--concurrency", "2", "--timeout-s", "20",
    )  # fmt: skip
    assert code == 0
    by_target = {r["target"]: r for r in records}
    assert set(by_target) == {t.SERVER_NAME, "198.18.0.7"}
    named = by_target[t.SERVER_NAME]
    assert (named["result"], named["verdict"], named["failing"]) == ("diagnosed", "healthy", []), named
    assert named["address"] == t.VIP4 and named["proposal"] == "aes256-sha256-modp2048"
    assert named["datagrams_sent"] > 0
    assert {f["id"] for f in named["findings"]} >= {"ike.udp500.reachable", "cert.trust", "lb.port-affinity"}
    # By address the certificate cannot match a name: the diagnosis says so, the rest is healthy.
    fleet = by_target["198.18.0.7"]
    assert (fleet["verdict"], fleet["failing"]) == ("problems", ["cert.name"]), fleet
    assert not any(r["left_half_open"] for r in records)
    no_sa_left(lab)
    same_as_first("diagnose", round_, records)


@scenarios("scan-vips")
def test_uncapped_scan_tells_throttling_from_silence(lab: Lab, tmp_path: Path) -> None:
    """Uncapped, the one charon behind the fleet sheds us (COOKIEs, then its per-IP half-open limit): the
    targets it dropped are `throttled`, never `no-answer`, and nothing is left on it afterwards."""
    code, records = scan(lab, tmp_path, t.SCAN_VIPS4, "--rate", "0", "--concurrency", "1024")
    assert code == 0 and len(records) == 1024
    results = Counter(r["result"] for r in records)
    assert set(results) <= {"accepted", "throttled"}, results
    if results["throttled"]:
        assert all(r["cookie"] and r["responded"] for r in records if r["result"] == "throttled")
        logs = lab.charon_log("vpn1") + lab.charon_log("vpn2")
        assert "half-open IKE_SA limit" in logs
    no_sa_left(lab)
