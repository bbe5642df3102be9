"""`vpndoctor ike` against real strongSwan responders in the lab (through the edge and the nftables load
balancer), driven through the real command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.helpers import scenarios
from vpndoctor.lab import topology as t
from vpndoctor.lab.handle import Lab

pytestmark = pytest.mark.lab


def ike(lab: Lab, *args: str, target: str = t.VIP4, user: str | None = None) -> tuple[int, dict[str, Any]]:
    prefix = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups"] if user else []
    argv = [
        *prefix,
        sys.executable,
        "-m",
        "vpndoctor",
        "ike",
        target,
        "--json",
        "--ca",
        lab.info.ca_file,
        "--timeout-s",
        "15",
        *args,
    ]
    proc = lab.run("client", *argv, timeout_s=60)
    assert proc.stdout.strip(), proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def assert_full_handshake(obs: dict[str, Any]) -> None:
    assert obs["reached"] == "IKE_AUTH", obs
    assert obs["error_notify"] is None
    assert obs["certificate"]["subject"] == f"CN={t.SERVER_NAME}"
    assert obs["certificate"]["trusted"] is True
    assert obs["auth_verified"] is True, obs["auth_reason"]
    assert obs["eap_type"] == "MSCHAPV2"
    assert obs["idr"] == t.SERVER_NAME


GROUP_PROPOSALS = {
    2: "aes256-sha1-modp1024",
    14: "aes256-sha256-modp2048",
    15: "aes256-sha256-modp3072",
    16: "aes256-sha512-modp4096",
    19: "aes128-sha256-ecp256",
    20: "aes256-sha384-ecp384",
    21: "aes256-sha512-ecp521",
    31: "aes128-sha256-x25519",
}


@scenarios("healthy")
@pytest.mark.parametrize("group", sorted(GROUP_PROPOSALS))
def test_full_handshake_per_group(lab: Lab, group: int) -> None:
    code, obs = ike(lab, "--proposal", GROUP_PROPOSALS[group])
    assert code == 0, obs
    assert_full_handshake(obs)
    assert obs["proposal"]["text"].endswith(GROUP_PROPOSALS[group].split("-")[-1])


@scenarios("healthy")
@pytest.mark.parametrize(
    "proposal",
    [
        "aes128-sha256-modp2048",
        "aes256gcm16-prfsha384-ecp384",
        "aes128gcm16-prfsha256-ecp256",
        "3des-sha1-modp1024",
    ],
)
def test_full_handshake_per_cipher(lab: Lab, proposal: str) -> None:
    code, obs = ike(lab, "--proposal", proposal)
    assert code == 0, obs
    assert_full_handshake(obs)
    assert obs["proposal"]["text"] == proposal


@scenarios("healthy")
def test_default_run_reports_everything(lab: Lab) -> None:
    code, obs = ike(lab)
    assert code == 0
    assert_full_handshake(obs)
    assert obs["fragmentation_supported"] is True
    assert "IKEV2_FRAGMENTATION_SUPPORTED" in obs["notifies"]
    # The load balancer's DNAT makes the responder's own address differ from the VIP: NAT seen, float to 4500.
    assert obs["nat_remote"] is True and obs["natt_used"] is True
    # The certificate-bearing IKE_AUTH response exceeds fragment_size (1280): it comes as SKF fragments.
    assert obs["response_fragments"] >= 2
    logs = lab.charon_log("vpn1") + lab.charon_log("vpn2")
    assert "splitting IKE message" in logs
    dirs = [d["dir"] for d in obs["datagrams"]]
    assert dirs[0] == "out" and "in" in dirs
    assert obs["round_trips"] >= 4  # SA_INIT, IKE_AUTH, EAP identity, the ending request
    # We are a polite client: the half-open SA is ended, not left to time out on the server. A Delete would
    # be ignored while the SA is half-open; an AUTH the server must refuse ends it.
    assert re.search(r"parsed IKE_AUTH request 3 \[ AUTH \]", logs), logs[-3000:]
    assert "generating IKE_AUTH response 3 [ N(AUTH_FAILED) ]" in logs
    assert obs["left_half_open"] is False


@scenarios("healthy")
def test_ipv6(lab: Lab) -> None:
    code, obs = ike(lab, target=t.VIP6)
    assert code == 0, obs
    assert_full_handshake(obs)


@scenarios("healthy")
def test_unprivileged_user_gets_the_same_result(lab: Lab) -> None:
    code, obs = ike(lab, user="nobody")
    assert code == 0, obs
    assert_full_handshake(obs)


@scenarios("healthy")
def test_forced_nat_floats_to_4500(lab: Lab) -> None:
    backend = t.BACKEND4["vpn1"]  # straight to a backend: no DNAT, so no NAT unless we force it
    code, obs = ike(lab, target=backend)
    assert code == 0 and obs["nat_detected"] is False and obs["natt_used"] is False, obs
    code, obs = ike(lab, "--force-nat", target=backend)
    assert code == 0 and obs["natt_used"] is True, obs
    assert any(d["port"] == 4500 and d["dir"] == "in" for d in obs["datagrams"])
    assert "remote host is behind NAT" in lab.charon_log("vpn1")


@scenarios("server-fragmentation-off")
def test_unfragmented_response_when_server_fragmentation_off(lab: Lab) -> None:
    code, obs = ike(lab)
    assert code == 0, obs
    assert obs["fragmentation_supported"] is False
    assert obs["response_fragments"] == 0
    big = [d for d in obs["datagrams"] if d["dir"] == "in" and d["size"] > 1280]
    assert big, obs["datagrams"]


@scenarios("error-809-fragments")
def test_error_809_signature(lab: Lab) -> None:
    code, obs = ike(lab)
    assert code == 1 and obs["reached"] == "IKE_SA_INIT", obs
    assert obs["timeout_exchange"] == "IKE_AUTH"
    assert obs["fragmentation_supported"] is False


@scenarios("fragments-drop")
def test_fragmentation_saves_the_handshake(lab: Lab) -> None:
    code, obs = ike(lab)
    assert code == 0, obs
    assert obs["response_fragments"] >= 2
    code, obs = ike(lab, "--no-fragmentation")
    assert code == 1 and obs["timeout_exchange"] == "IKE_AUTH", obs


@scenarios("cookies-always")
def test_cookie_demanded_and_answered(lab: Lab) -> None:
    # ike-scan leaves one SA half-open; from then on charon demands a cookie.
    lab.run("client", "ike-scan", "--ikev2", "--sport=0", "--retry=1", t.VIP4)
    code, obs = ike(lab)
    why = ("reached", "error_notify", "peer_error", "timeout_exchange", "cookie_rounds", "datagrams")
    assert code == 0, {k: obs[k] for k in why}
    assert obs["cookie_rounds"] >= 1
    assert_full_handshake(obs)


@scenarios("proposals-ecp384-only")
def test_invalid_ke_then_success(lab: Lab) -> None:
    code, obs = ike(lab)
    assert code == 0, obs
    assert obs["ke_group_requested"] == "ECP_384"
    assert obs["proposal"]["dh_group"] == "ECP_384"


@scenarios("proposals-windows-default")
def test_no_proposal_chosen(lab: Lab) -> None:
    code, obs = ike(lab, "--proposal", "aes256-sha256-modp2048")
    assert code == 1 and obs["error_notify"] == "NO_PROPOSAL_CHOSEN", obs
    assert obs["reached"] == "none"
    code, obs = ike(lab, "--proposal", "3des-sha1-modp1024")
    assert code == 0, obs


@scenarios("block-udp-500")
def test_no_answer_exit_3(lab: Lab) -> None:
    code, obs = ike(lab, "--timeout-s", "4")
    assert code == 3 and obs["reached"] == "none", obs
    assert obs["timeout_exchange"] == "IKE_SA_INIT"


@scenarios("cert-untrusted-ca")
def test_untrusted_certificate_reported(lab: Lab) -> None:
    code, obs = ike(lab)
    assert code == 0  # the exchange works; trust is a finding, not a protocol failure
    assert obs["certificate"]["trusted"] is False
    assert obs["auth_verified"] is True  # the server does hold the key of the certificate it sent


@scenarios("healthy")
def test_tshark_agrees_with_our_transcript(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    pcap = tmp_path_factory.mktemp("cap") / "ike.pcap"
    cap = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            lab.ns("client"),
            "tcpdump",
            "-i",
            "eth0",
            "-U",
            # Without immediate mode tcpdump may still hold the last datagrams in the kernel buffer when it is
            # stopped shortly after a short exchange, and they never reach the file.
            "--immediate-mode",
            "-w",
            str(pcap),
            "udp port 500 or udp port 4500",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Capture is running once a canary datagram shows up in the file (the pcap header alone is 24 bytes).
        for _ in range(100):
            lab.run(
                "client",
                sys.executable,
                "-c",
                "import socket; socket.socket(socket.AF_INET, "
                f"socket.SOCK_DGRAM).sendto(b'canary', ('{t.VIP4}', 500))",
            )
            time.sleep(0.1)
            if pcap.exists() and pcap.stat().st_size > 24:
                break
        code, obs = ike(lab)
        time.sleep(0.5)
    finally:
        cap.terminate()
        cap.wait(timeout=20)
    assert code == 0
    proc = subprocess.run(
        ["tshark", "-r", str(pcap), "-T", "json", "-Y", "isakmp"], capture_output=True, text=True, timeout=60
    )
    packets = json.loads(proc.stdout)
    theirs = []
    for p in packets:
        layers = p["_source"]["layers"]
        isakmp = layers["isakmp"]
        if str(isakmp.get("isakmp.ispi", "")).replace(":", "") != obs["spi_i"]:
            continue  # other IKE SAs of earlier tests (e.g. the server's liveness checks)
        theirs.append(
            (
                int(isakmp["isakmp.exchangetype"]),
                int(isakmp["isakmp.messageid"], 0),
                int(layers["udp"]["udp.length"]) - 8,
            )
        )
    ours = obs["datagrams"]
    assert len(theirs) == len(ours), (theirs, [(d["size"], d["summary"]) for d in ours])
    names = {34: "IKE_SA_INIT", 35: "IKE_AUTH", 37: "INFORMATIONAL"}
    for (exchange, message_id, size), d in zip(theirs, ours, strict=True):
        assert size == d["size"], (size, d)
        if "reassembled" in d["summary"] and not d["summary"].startswith(names[exchange]):
            continue  # the last fragment: our summary shows the reassembled message
        assert re.search(rf"{names[exchange]} (request|response) {message_id}\b", d["summary"]), (exchange, d)


@scenarios("healthy")
def test_name_resolved_through_lab_dns(lab: Lab) -> None:
    code, obs = ike(lab, target=t.SERVER_NAME)
    assert code == 0 and obs["address"] == t.VIP4, obs


@scenarios("dns-nxdomain")
def test_unresolvable_name_is_a_usage_error(lab: Lab) -> None:
    proc = lab.run("client", sys.executable, "-m", "vpndoctor", "ike", t.SERVER_NAME, "--json")
    assert proc.returncode == 2 and "cannot resolve" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
