"""`vpndoctor connect` against the lab's real strongSwan responders (through the edge and the load balancer),
driven through the real command line from the client namespace: the local EAP-MSCHAPv2 user (topology
EAP_USER) with the right password, a wrong one and an unknown user, each twice in a row, and vici asked
afterwards that no IKE SA of ours is left on either backend.

The `healthy` responders cannot install a CHILD_SA (the lab's kernel has no ESP and they run without
strongSwan's userspace ESP), so with the right password the IKE SA comes up, the server hands out its pool
addresses and refuses the CHILD_SA with NO_PROPOSAL_CHOSEN - which its log explains. The RRAS-shaped scenarios
(`rras: yes`) install CHILD_SAs in userspace ESP: there the same command reaches the tunnel.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.helpers import scenarios
from tests.lab.test_capture_lab import tcpdump
from vpndoctor.lab import topology as t
from vpndoctor.lab.handle import Lab
from vpndoctor.lab.strongswan import POOLS

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schema" / "connect.json").read_text())
ROUNDS = pytest.mark.parametrize("round_", [1, 2], ids=["first", "again"])


def connect(lab: Lab, tmp_path: Path, password: str, *args: str, user: str = t.EAP_USER) -> tuple[int, Any]:
    secret = tmp_path / "password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    argv = [
        sys.executable,
        "-m",
        "vpndoctor",
        "connect",
        t.VIP4,
        "--user",
        user,
        "--password-file",
        str(secret),
        "--ca",
        lab.info.ca_file,
        "--json",
        *args,
    ]
    proc = lab.run("client", *argv, timeout_s=90)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert password not in proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    jsonschema.validate(data, SCHEMA)
    return proc.returncode, data


def ike_sas(lab: Lab) -> int:
    """IKE SAs (established and half-open) both backends hold, through vici."""
    import vici  # type: ignore[import-untyped]  # the lab's extra dependency

    total = 0
    for backend in t.BACKENDS:
        path = lab.workdir / backend / "charon.vici"
        if not path.exists():
            continue
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5.0)
            sock.connect(str(path))
            total += int(vici.Session(sock).stats()["ikesas"]["total"])
    return total


def no_sa_left(lab: Lab) -> None:
    for _ in range(20):  # the Delete's answer is on its way before charon has destroyed the SA
        if ike_sas(lab) == 0:
            return
        time.sleep(0.05)
    assert ike_sas(lab) == 0, "an IKE SA of ours is left on a backend"


def in_pool(address: str) -> bool:
    pools = [ipaddress.ip_network(p) for b in t.BACKENDS for p in POOLS[b]]
    return any(ipaddress.ip_address(address.split("/")[0]) in net for net in pools)


def charon_logs(lab: Lab) -> str:
    return "".join(lab.charon_log(b) for b in t.BACKENDS)


def assert_ike_sa_up(data: Any) -> None:
    stages = {s["stage"]: s["result"] for s in data["stages"]}
    assert stages == {"IKE_SA_INIT": "ok", "IKE_AUTH": "ok", "EAP": "ok", "CHILD_SA": stages["CHILD_SA"]}
    assert data["server_auth_verified"] is True and data["idr"] == t.SERVER_NAME
    assert data["certificate"]["trusted"] is True
    assert data["eap_requests"] == ["IDENTITY", "MSCHAPV2", "MSCHAPV2"]
    assert data["auth_result"] == "success"
    assert data["ike_sa_established"] is True and data["responder_auth_verified"] is True
    assert data["left_sa_on_server"] is False


@scenarios("healthy")
@ROUNDS
def test_right_password_ike_sa_up_child_sa_refused_by_a_kernel_without_esp(
    lab: Lab, tmp_path: Path, round_: int
) -> None:
    code, data = connect(lab, tmp_path, t.EAP_PASSWORD)
    assert code == 1, data
    assert_ike_sa_up(data)
    assert data["stage_reached"] == "CHILD_SA" and data["connected"] is False
    assert data["error_notify"] == "NO_PROPOSAL_CHOSEN"
    assert data["windows_error"]["code"] == 13868
    # the addresses come all the same (the CFG_REPLY rides with the refusal); the healthy pools give no DNS
    v4, v6 = data["config"]["ipv4"], data["config"]["ipv6"]
    assert len(v4) == 1 and len(v6) == 1 and all(in_pool(a) for a in v4 + v6), data["config"]
    assert data["config"]["dns"] == []
    logs = charon_logs(lab)
    assert "selected proposal: ESP:AES_GCM_16_256/NO_EXT_SEQ" in logs  # it liked what Windows offers
    assert "unable to install inbound and outbound IPsec SA (SAD) in kernel" in logs
    assert "failed to establish CHILD_SA, keeping IKE_SA" in logs
    # our Delete ended the established IKE SA: the last exchange, and nothing is left
    assert data["datagrams"][-2]["summary"].startswith("INFORMATIONAL request 6 [ D ]")
    assert data["datagrams"][-1]["summary"].startswith("INFORMATIONAL response 6")
    assert data["round_trips"] == 7
    no_sa_left(lab)


@scenarios("healthy")
@ROUNDS
def test_wrong_password_ends_in_eap_with_691(lab: Lab, tmp_path: Path, round_: int) -> None:
    code, data = connect(lab, tmp_path, "not-" + t.EAP_PASSWORD)
    assert code == 1, data
    assert (data["stage_reached"], data["cause"], data["auth_result"]) == ("EAP", "eap-failure", "failure")
    assert data["mschapv2_error"] == 691 and data["windows_error"]["code"] == 691
    assert data["ike_sa_established"] is False and data["left_sa_on_server"] is False
    assert {f["id"]: f["status"] for f in data["findings"]}["auth.eap"] == "fail"
    no_sa_left(lab)


@scenarios("healthy")
@ROUNDS
def test_unknown_user_is_the_same_691(lab: Lab, tmp_path: Path, round_: int) -> None:
    code, data = connect(lab, tmp_path, t.EAP_PASSWORD, user="mallory")
    assert code == 1, data
    assert (data["stage_reached"], data["cause"]) == ("EAP", "eap-failure")
    assert data["mschapv2_error"] == 691 and data["windows_error"]["code"] == 691
    assert "no EAP key found for hosts 'vpn.lab.test' - 'mallory'" in charon_logs(lab)
    no_sa_left(lab)


@scenarios("healthy")
def test_keys_out_decrypts_our_own_capture(lab: Lab, tmp_path: Path) -> None:
    """The IKE SA keys written by --keys-out are the table `vpndoctor capture --keys` reads: a capture of the
    connection taken in the client namespace decrypts with them, every encrypted message authenticated."""
    keys = tmp_path / "keys.csv"
    with tcpdump(lab, "client", tmp_path / "connect.pcap") as pcap:
        code, data = connect(lab, tmp_path, t.EAP_PASSWORD, "--keys-out", str(keys))
    assert data["keys_out"] == str(keys) and (keys.stat().st_mode & 0o077) == 0
    proc = subprocess.run(
        [sys.executable, "-m", "vpndoctor", "capture", str(pcap), "--keys", str(keys), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    (conv,) = json.loads(proc.stdout)["conversations"]
    assert (conv["spi_i"], conv["spi_r"]) == (data["spi_i"], data["spi_r"])
    encrypted = [m for m in conv["messages"] if {"SK", "SKF"} & set(m["payloads"])]
    assert len(encrypted) >= 12  # IKE_AUTH 1-5 and the INFORMATIONAL, both ways (fragments counted apart)
    assert all(m["decrypted"]["integrity"] == "verified" for m in encrypted), encrypted
    decrypted = [p for m in encrypted for p in m["decrypted"]["payloads"]]
    assert {"EAP", "AUTH", "DELETE"} <= set(decrypted), decrypted
    no_sa_left(lab)


# --- the RRAS-shaped gateway (rras: yes): CHILD_SAs install in userspace ESP ------------------------------

FULL_TUNNEL = ["0.0.0.0/0", "::/0"]


def assert_connected(data: Any) -> None:
    assert_ike_sa_up(data)
    assert (data["stage_reached"], data["connected"], data["windows_error"]) == ("CHILD_SA", True, None)
    child, cfg = data["child_sa"], data["config"]
    assert child["esp_proposal"] == "aes256gcm16"  # the gateway's first choice among what Windows offers
    assert child["ts_r"] == FULL_TUNNEL
    v4, v6 = cfg["ipv4"], cfg["ipv6"]
    assert len(v4) == 1 and len(v6) == 1 and all(in_pool(a) for a in v4 + v6), cfg
    assert child["ts_i"] == [f"{v4[0]}/32", f"{v6[0].split('/')[0]}/128"]
    assert set(cfg["dns"]) == {t.DNS4, t.DNS6} and cfg["dns_suffix"] == [t.DNS_SUFFIX]
    assert {f["status"] for f in data["findings"]} == {"pass"}, data["findings"]


@scenarios("eap-radius")
@ROUNDS
@pytest.mark.parametrize("user", [t.EAP_USER, "bob"], ids=["local-user", "radius-user"])
def test_rras_gateway_user_reaches_the_child_sa(lab: Lab, tmp_path: Path, round_: int, user: str) -> None:
    password = t.EAP_PASSWORD if user == t.EAP_USER else t.RADIUS_USERS[user]
    code, data = connect(lab, tmp_path, password, user=user)
    assert code == 0, data
    assert_connected(data)
    logs = charon_logs(lab)
    conn = "aovpn" if user == t.EAP_USER else "aovpn-radius"
    assert f"selected peer config '{conn}'" in logs and f"CHILD_SA {conn}{{" in logs
    no_sa_left(lab)


@scenarios("eap-radius")
@ROUNDS
def test_rras_gateway_radius_refusal_is_691(lab: Lab, tmp_path: Path, round_: int) -> None:
    code, data = connect(lab, tmp_path, "not-the-password", user="bob")
    assert code == 1, data
    assert (data["stage_reached"], data["cause"], data["windows_error"]["code"]) == (
        "EAP",
        "eap-failure",
        691,
    )
    # through RADIUS the refusal is a bare EAP-Failure (Access-Reject), without an MS-CHAPv2 E= code
    assert data["mschapv2_error"] is None
    no_sa_left(lab)


@scenarios("radius-down")
def test_radius_down_is_809_at_eap_or_a_late_691(lab: Lab, tmp_path: Path) -> None:
    """A Windows client that waits longer than strongSwan's RADIUS retries (about 14 s) gets the EAP-Failure
    the gateway sends then (691, late); one that gives up first sees a timeout at EAP (809). The late one
    goes first: strongSwan queues a RADIUS request behind those still being retried, so it also waits until
    the SAs of earlier attempts in this lab (other tests' clients giving up after 7 s) have ended."""
    for _ in range(200):
        if ike_sas(lab) == 0:
            break
        time.sleep(0.2)
    code, data = connect(lab, tmp_path, t.RADIUS_USERS["bob"], user="bob")
    assert code == 1, data
    assert (data["stage_reached"], data["cause"]) == ("EAP", "eap-failure")
    assert data["eap_wait_s"] > 10 and data["windows_error"]["code"] == 691
    assert "RADIUS" in data["windows_error"]["why"]
    assert data["left_sa_on_server"] is False
    for _ in range(2):
        code, data = connect(lab, tmp_path, t.RADIUS_USERS["bob"], "--timeout-s", "6", user="bob")
        assert code == 1, data
        assert (data["stage_reached"], data["cause"]) == ("EAP", "no-answer")
        assert data["windows_error"]["code"] == 809 and data["eap_requests"] == ["IDENTITY"]
        assert "RADIUS" in {f["id"]: f for f in data["findings"]}["auth.eap"]["remedy"]
    for _ in range(100):  # the SAs of the attempts we gave up on end with strongSwan's RADIUS give-up
        if ike_sas(lab) == 0:
            break
        time.sleep(0.2)
    assert ike_sas(lab) == 0


@scenarios("pool-exhausted")
def test_pool_exhausted_is_720_at_child_sa(lab: Lab, tmp_path: Path) -> None:
    from vpndoctor.lab.client import LabClient, Tunnel

    holder = LabClient(lab.prefix, userspace_esp=True).start()
    try:
        first = holder.dial(Tunnel.radius_user("bob"))
        assert first.stage == "child_sa", first.log[-3000:]
        for _ in range(2):
            code, data = connect(lab, tmp_path, t.RADIUS_USERS["carol"], user="carol")
            assert code == 1, data
            assert (data["stage_reached"], data["error_notify"]) == ("CHILD_SA", "INTERNAL_ADDRESS_FAILURE")
            assert data["ike_sa_established"] is True and data["windows_error"]["code"] == 720
            assert data["left_sa_on_server"] is False
        holder.hangup(first.name)
    finally:
        holder.stop()
    code, data = connect(lab, tmp_path, t.RADIUS_USERS["carol"], user="carol")
    assert code == 0, data  # the address is free again
    no_sa_left(lab)


@scenarios("child-proposal-mismatch")
def test_child_proposal_mismatch_is_13868_for_the_classic_offer(lab: Lab, tmp_path: Path) -> None:
    classic = [
        "--esp-proposal",
        "aes256-sha1",
        "--esp-proposal",
        "aes128-sha1",
        "--esp-proposal",
        "3des-sha1",
    ]
    for _ in range(2):
        code, data = connect(lab, tmp_path, t.RADIUS_USERS["bob"], *classic, user="bob")
        assert code == 1, data
        assert (data["stage_reached"], data["error_notify"]) == ("CHILD_SA", "NO_PROPOSAL_CHOSEN")
        assert data["windows_error"]["code"] == 13868 and data["ike_sa_established"] is True
        no_sa_left(lab)
    # Windows 10 1803+ also offers AES-GCM-256, which this gateway takes
    code, data = connect(lab, tmp_path, t.RADIUS_USERS["bob"], user="bob")
    assert code == 0 and data["child_sa"]["esp_proposal"] == "aes256gcm16", data
