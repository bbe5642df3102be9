"""Through the tunnel, against the lab's real strongSwan responders (kernel-libipsec: userspace ESP, TUN)
and the inside network behind them (the kernel's ICMP and TCP, dnsmasq for the internal zone): `vpndoctor
connect --ping/--resolve/--tcp/--mtu/--rekey` from the client namespace, each verdict twice in a row (what
the first run leaves - leases, SAs - must not change the second). The gateways' own view is the oracle for
what crossed: the inside host's nftables counters, its dnsmasq log, charon's log of the rekeys; and tshark,
given our ESP keys (--esp-keys-out), decrypts the capture on the gateway's outside link and must see what
we sent and received."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import need, scenarios
from tests.lab.test_capture_lab import tcpdump
from tests.lab.test_connect_probe import connect, ike_sas, no_sa_left
from vpndoctor.esp.sa import EspTransform
from vpndoctor.ike.constants import EncrId, IntegId
from vpndoctor.lab import topology as t
from vpndoctor.lab.handle import Lab

pytestmark = pytest.mark.lab

ROUNDS = pytest.mark.parametrize("round_", [1, 2], ids=["first", "again"])
INSIDE = t.INSIDE4
ALL_PROBES = (
    "--ping", INSIDE,
    "--resolve", t.INSIDE_NAME,
    "--tcp", f"{INSIDE}:{t.INSIDE_TCP_PORT}",
    "--tcp", f"{INSIDE}:{t.INSIDE_CLOSED_PORT}",
    "--mtu",
)  # fmt: skip


def findings(data: Any) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in data["findings"]}


def tunnel_of(data: Any) -> Any:
    assert data["connected"] is True, data["failure"]
    tun = data["tunnel"]
    assert tun is not None and tun["skipped"] is None, tun
    assert tun["esp_errors"] == [], tun["esp_errors"]
    return tun


def outer_fits(size: int, transform: EspTransform, path_mtu: int = 1500) -> bool:
    return size + transform.overhead_bytes(size) + 28 <= path_mtu


@scenarios("tunnel-healthy")
@ROUNDS
def test_healthy_tunnel_reaches_the_inside(lab: Lab, tmp_path: Path, round_: int) -> None:
    before = lab.counters(t.INSIDE_HOST)
    code, data = connect(lab, tmp_path, t.EAP_PASSWORD, *ALL_PROBES)
    assert code == 0, data
    tun = tunnel_of(data)
    assert tun["inner_address"] == data["config"]["ipv4"][0] and tun["dns_server"] == INSIDE
    (ping,) = tun["ping"]
    assert (ping["outcome"], ping["received"]) == ("reply", 3) and len(ping["rtt_ms"]) == 3
    (answer,) = tun["resolve"]
    assert (answer["outcome"], answer["addresses"]) == ("answer", [INSIDE])
    open_, closed = tun["tcp"]
    assert open_["outcome"] == "open" and open_["mss_bytes"] == 1460  # dnsmasq's SYN-ACK on a 1500 link
    assert closed["outcome"] == "refused"  # the inside kernel's RST
    mtu = tun["mtu"]
    gcm = EspTransform(EncrId.AES_GCM_16, 256)
    assert tun["esp_proposal"] == "aes256gcm16"
    # the largest inner packet whose ESP-in-UDP packet still fits the 1500-byte WAN path with DF
    size = mtu["tunnel_mtu_bytes"]
    assert outer_fits(size, gcm) and not outer_fits(size + 1, gcm), mtu
    assert mtu["tcp_mss_bytes"] == size - 40 and mtu["outer_df"] is True
    assert mtu["probes_sent"] <= 12 and mtu["frag_needed_seen"] is False
    f = findings(data)
    for fid in ("tunnel.reachability", "tunnel.dns", "tunnel.mtu"):
        assert f[fid]["status"] == "pass", f[fid]
    # the inside host saw our packets from the pool address, and dnsmasq our query
    after = lab.counters(t.INSIDE_HOST)
    assert after["from_pools"] >= before["from_pools"] + 3 + 1 + 2
    log = (lab.workdir / "inside-dnsmasq.log").read_text()
    assert f"query[A] {t.INSIDE_NAME} from {tun['inner_address']}" in log
    assert data["left_sa_on_server"] is False
    no_sa_left(lab)


@scenarios("tunnel-healthy")
@pytest.mark.parametrize("esp", ["aes256-sha1", "aes128-sha256"])
def test_aes_cbc_with_hmac_through_strongswan(lab: Lab, tmp_path: Path, esp: str) -> None:
    code, data = connect(lab, tmp_path, t.EAP_PASSWORD, "--esp-proposal", esp, "--ping", INSIDE, "--mtu")
    assert code == 0, data
    tun = tunnel_of(data)
    assert tun["esp_proposal"] == esp
    assert tun["ping"][0]["received"] == 3
    integ = IntegId.HMAC_SHA1_96 if esp.endswith("sha1") else IntegId.HMAC_SHA2_256_128
    cbc = EspTransform(EncrId.AES_CBC, int(esp[3:6]), integ)
    size = tun["mtu"]["tunnel_mtu_bytes"]
    assert outer_fits(size, cbc) and not outer_fits(size + 1, cbc)


@scenarios("tunnel-healthy")
@ROUNDS
def test_rekey_and_dpd_keep_the_tunnel(lab: Lab, tmp_path: Path, round_: int) -> None:
    keys = tmp_path / "esp_sa"
    code, data = connect(
        lab, tmp_path, t.EAP_PASSWORD, "--ping", INSIDE, "--rekey", "--esp-keys-out", str(keys)
    )
    assert code == 0, data
    rekey = tunnel_of(data)["rekey"]
    assert rekey["pfs_group"] is None  # Windows' default PfsGroup: none
    # the rekeyed CHILD_SA's rows follow the first ones, so that tshark decrypts what came after the rekey
    spis = [row.split(",")[3].strip('"') for row in keys.read_text().splitlines()]
    assert spis[2:] == [f"0x{rekey['new_spi_r']}", f"0x{rekey['new_spi_i']}"], spis
    assert [rekey[k]["outcome"] for k in ("dpd", "child", "ike")] == ["ok", "ok", "ok"], rekey
    assert rekey["new_spi_i"] != data["tunnel"]["spi_i"]
    assert rekey["traffic_after"]["received"] == 3
    assert findings(data)["tunnel.rekey"]["status"] == "pass"
    logs = "".join(lab.charon_log(b) for b in t.BACKENDS)
    assert f"SPIs {rekey['new_spi_r']}_i {rekey['new_spi_i']}_o" in logs  # charon installed the new pair
    assert "rekeyed between" in logs
    summaries = [d["summary"] for d in data["datagrams"]]
    assert any(s.startswith("CREATE_CHILD_SA response") for s in summaries)
    assert summaries[-1].startswith("INFORMATIONAL response 0")  # the Delete went on the new IKE SA
    no_sa_left(lab)


@scenarios("tunnel-healthy")
def test_tshark_decrypts_our_esp(lab: Lab, tmp_path: Path) -> None:
    """tshark, given the CHILD_SA keys we wrote (Wireshark's esp_sa table), decrypts the capture on each
    gateway's outside link: our echo requests and DNS query, the gateway's replies, SPIs and sequence
    numbers as we counted them."""
    need("tshark")
    keys = tmp_path / "esp_sa"
    pcaps = {b: tmp_path / f"{b}.pcap" for b in t.BACKENDS}
    with tcpdump(lab, "vpn1", pcaps["vpn1"]), tcpdump(lab, "vpn2", pcaps["vpn2"]):
        code, data = connect(
            lab, tmp_path, t.EAP_PASSWORD, "--ping", INSIDE, "--resolve", t.INSIDE_NAME,
            "--esp-keys-out", str(keys),
        )  # fmt: skip
    assert code == 0, data
    tun = tunnel_of(data)
    assert keys.stat().st_mode & 0o777 == 0o600
    rows = keys.read_text().splitlines()
    assert len(rows) == 2 and all(r.startswith('"IPv4","*","*","0x') for r in rows)
    secrets = [f.strip('"')[2:] for r in rows for f in r.split(",")[5::2] if f.strip('"').startswith("0x")]
    assert len(secrets) == 2 and all(len(k) == 72 for k in secrets)  # AES-256 key + salt, each direction
    assert not any(k in json.dumps(data) for k in secrets)  # the keys only ever go to the file asked for
    seen: list[list[str]] = []
    for pcap in pcaps.values():
        argv = [
            "tshark", "-n", "-r", str(pcap), "-o", "esp.enable_encryption_decode:TRUE",
            *[x for row in rows for x in ("-o", f"uat:esp_sa:{row}")],
            "-Y", "esp", "-T", "fields", "-E", "separator=|",
            "-e", "esp.spi", "-e", "esp.sequence", "-e", "ip.src", "-e", "ip.dst", "-e", "icmp.type",
            "-e", "dns.qry.name", "-e", "dns.a",
        ]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        seen += [line.split("|") for line in proc.stdout.splitlines() if line]
    inner = tun["inner_address"]
    spi_out, spi_in = f"0x{tun['spi_r']}", f"0x{tun['spi_i']}"
    ours = [r for r in seen if r[0] == spi_out]
    theirs = [r for r in seen if r[0] == spi_in]
    # what we sent: 3 echo requests and one query from the pool address, sequence numbers 1..4
    assert [r[1] for r in ours] == ["1", "2", "3", "4"], seen
    assert all(r[2].endswith(f",{inner}") and r[3].endswith(f",{INSIDE}") for r in ours)
    assert [r[4] for r in ours[:3]] == ["8", "8", "8"] and ours[3][5] == t.INSIDE_NAME
    # what came back and we accepted: 3 echo replies and the answer, decrypted by tshark the same way
    assert len(theirs) == tun["packets_received"] == 4
    assert [r[4] for r in theirs[:3]] == ["0", "0", "0"] and theirs[3][6] == INSIDE
    assert tun["packets_sent"] == 4


@scenarios("inside-route-missing")
@ROUNDS
def test_inside_route_missing(lab: Lab, tmp_path: Path, round_: int) -> None:
    before = lab.counters(t.INSIDE_HOST)["from_pools"]
    code, data = connect(lab, tmp_path, t.EAP_PASSWORD, "--ping", INSIDE, "--probe-timeout-s", "1")
    assert code == 0, data  # the tunnel is up: connect itself succeeded
    tun = tunnel_of(data)
    assert tun["ping"][0]["outcome"] == "timeout" and tun["packets_received"] == 0
    f = findings(data)["tunnel.reachability"]
    assert f["status"] == "fail" and "no route back" in f["detail"], f
    assert "route back to the VPN client address pool" in f["remedy"]
    # the requests did arrive inside: the forward path works, the way back is what is missing
    assert lab.counters(t.INSIDE_HOST)["from_pools"] >= before + 3
    no_sa_left(lab)


@scenarios("inner-mtu-reduced")
@ROUNDS
def test_inner_mtu_reduced(lab: Lab, tmp_path: Path, round_: int) -> None:
    code, data = connect(lab, tmp_path, t.EAP_PASSWORD, "--ping", INSIDE, "--mtu")
    assert code == 0, data
    mtu = tunnel_of(data)["mtu"]
    assert mtu["tunnel_mtu_bytes"] == 1300 and mtu["tcp_mss_bytes"] == 1260, mtu
    assert mtu["frag_needed_seen"] is True
    assert any(p["result"] == "frag-needed" and p["next_hop_mtu"] == 1300 for p in mtu["probes"])
    assert mtu["probes_sent"] <= 12
    f = findings(data)["tunnel.mtu"]
    assert f["status"] == "warn" and "1400" in f["detail"] and "MSS" in f["remedy"], f


@scenarios("tunnel-dns-unreachable")
@ROUNDS
def test_tunnel_dns_unreachable(lab: Lab, tmp_path: Path, round_: int) -> None:
    before = lab.counters(t.INSIDE_HOST)["dns_queries"]
    code, data = connect(
        lab, tmp_path, t.EAP_PASSWORD, "--ping", INSIDE, "--resolve", t.INSIDE_NAME, "--probe-timeout-s", "1"
    )
    assert code == 0, data
    tun = tunnel_of(data)
    assert tun["ping"][0]["outcome"] == "reply"
    assert tun["resolve"][0]["outcome"] == "timeout" and tun["resolve"][0]["attempts"] == 2
    f = findings(data)
    assert f["tunnel.reachability"]["status"] == "pass"
    assert f["tunnel.dns"]["status"] == "fail" and "drops the pool" in f["tunnel.dns"]["detail"]
    assert lab.counters(t.INSIDE_HOST)["dns_queries"] >= before + 2  # they arrived and were dropped


@scenarios("rekey-pfs-mismatch")
@ROUNDS
def test_rekey_pfs_mismatch(lab: Lab, tmp_path: Path, round_: int) -> None:
    code, data = connect(lab, tmp_path, t.EAP_PASSWORD, "--ping", INSIDE, "--rekey")
    assert code == 0, data  # IKE_AUTH's CHILD_SA comes up: no DH applies there
    rekey = tunnel_of(data)["rekey"]
    assert (rekey["child"]["outcome"], rekey["child"]["notify"]) == ("refused", "NO_PROPOSAL_CHOSEN")
    assert rekey["ike"]["outcome"] == "ok" and rekey["traffic_after"]["received"] == 3  # the old SA lives
    f = findings(data)["tunnel.rekey"]
    assert f["status"] == "fail" and "PfsGroup" in f["remedy"], f
    logs = "".join(lab.charon_log(b) for b in t.BACKENDS)
    assert "no acceptable proposal found" in logs or "NO_PROPOSAL_CHOSEN" in logs
    no_sa_left(lab)


@scenarios("rekey-pfs-mismatch")
def test_rekey_with_the_gateways_pfs_group_passes(lab: Lab, tmp_path: Path) -> None:
    """The remedy, proved: the same gateway rekeys when the profile's PfsGroup matches its group."""
    code, data = connect(
        lab, tmp_path, t.EAP_PASSWORD, "--ping", INSIDE, "--rekey", "--pfs-group", "modp2048"
    )
    assert code == 0, data
    rekey = tunnel_of(data)["rekey"]
    assert rekey["pfs_group"] == "MODP_2048" and rekey["child"]["outcome"] == "ok", rekey
    assert findings(data)["tunnel.rekey"]["status"] == "pass"


@scenarios("tunnel-healthy")
def test_terminal_report_shows_the_tunnel(lab: Lab, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text(t.EAP_PASSWORD + "\n")
    secret.chmod(0o600)
    import sys

    proc = lab.run(
        "client", sys.executable, "-m", "vpndoctor", "connect", t.VIP4, "--user", t.EAP_USER,
        "--password-file", str(secret), "--ca", lab.info.ca_file, "--ping", INSIDE, "--resolve",
        t.INSIDE_NAME, timeout_s=90,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "tunnel: from 203.0.113." in out and "tunnel.reachability" in out and "tunnel.dns" in out
    assert t.EAP_PASSWORD not in out + proc.stderr
    json.dumps(out)  # plain text


def diagnose(lab: Lab, tmp_path: Path) -> dict[str, Any]:
    secret = tmp_path / "pw"
    secret.write_text(t.EAP_PASSWORD + "\n")
    secret.chmod(0o600)
    import sys

    proc = lab.run(
        "client", sys.executable, "-m", "vpndoctor", "diagnose", t.SERVER_NAME, "--ca", lab.info.ca_file,
        "--resolver", t.DNS4, "--user", t.EAP_USER, "--password-file", str(secret), "--timeout-s", "30",
        "--json", timeout_s=120,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr and t.EAP_PASSWORD not in proc.stdout + proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


@scenarios("tunnel-healthy")
def test_diagnose_with_credentials_adds_passing_tunnel_findings(lab: Lab, tmp_path: Path) -> None:
    report = diagnose(lab, tmp_path)
    f = findings(report)
    for fid in ("tunnel.reachability", "tunnel.dns", "tunnel.mtu", "tunnel.rekey"):
        assert f[fid]["status"] == "pass", f[fid]
    assert not [c for c in report["verdict"]["root_causes"] if c.startswith("tunnel.")]
    no_sa_left(lab)


@scenarios("inside-route-missing")
@ROUNDS
def test_diagnose_names_the_missing_route(lab: Lab, tmp_path: Path, round_: int) -> None:
    report = diagnose(lab, tmp_path)
    f = findings(report)
    assert f["child_sa.established"]["status"] == "pass"
    assert f["tunnel.reachability"]["status"] == "fail" and f["tunnel.dns"]["status"] == "fail"
    assert "tunnel.mtu" not in f  # no MTU search towards a host that never answered
    assert report["verdict"]["status"] == "problems"
    assert "tunnel.reachability" in report["verdict"]["root_causes"]
    assert "inside hosts do not answer through the tunnel" in report["verdict"]["summary"]
    no_sa_left(lab)


@scenarios("healthy")
def test_no_child_sa_skips_the_asked_tunnel_probes(lab: Lab, tmp_path: Path) -> None:
    """The healthy responders cannot install a CHILD_SA (no userspace ESP): the tunnel probes asked for
    are reported as skipped, naming why, and the connect's own verdict stands."""
    # This lab is shared with other tests of `healthy`; some leave half-open SAs that end after 30 s.
    for _ in range(200):
        if ike_sas(lab) == 0:
            break
        time.sleep(0.2)
    code, data = connect(
        lab, tmp_path, t.EAP_PASSWORD, "--ping", INSIDE, "--resolve", t.INSIDE_NAME, "--rekey"
    )
    assert code == 1 and data["error_notify"] == "NO_PROPOSAL_CHOSEN", data
    tun = data["tunnel"]
    assert tun["asked"] == ["ping", "resolve", "rekey"] and "NO_PROPOSAL_CHOSEN" in tun["skipped"]
    f = findings(data)
    assert [f[i]["status"] for i in ("tunnel.reachability", "tunnel.dns")] == ["skip", "skip"]
    assert f["tunnel.rekey"]["status"] == "skip" and "tunnel.mtu" not in f
    no_sa_left(lab)
