"""`vpndoctor connect` beside the lab's own strongSwan client, EAP-MSCHAPv2 user tunnels: in each scenario
both dial the same gateway as the same user with the same offer, and must stop at the same stage for the same
reason (the device tunnel and EAP-TLS/PEAP have their own side-by-side tests: test_connect_device.py,
test_connect_eap.py). Each comparison runs twice in the same lab, and no IKE SA of ours is left behind.

The lab client names its stages after its charon's log: `eap` (the gateway asked for EAP), `authenticated`
(IKE SA up, CHILD_SA refused) and `child_sa`; `connect` names the exchange it stopped in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import scenarios
from tests.lab.test_connect_probe import connect, ike_sas, no_sa_left
from vpndoctor.lab import topology as t
from vpndoctor.lab.client import DialResult, LabClient, Tunnel
from vpndoctor.lab.handle import Lab

pytestmark = pytest.mark.lab

ORACLE_STAGE = {"eap": "EAP", "authenticated": "CHILD_SA", "child_sa": "CHILD_SA", "ike_sa_init": "IKE_AUTH"}
# The classic Windows offer (no AES-GCM), as `connect --esp-proposal` and as the lab client's proposals.
CLASSIC = ("aes256-sha1", "aes128-sha1", "3des-sha1")
WITH_GCM = "aes256gcm16-aes128gcm16, aes256-sha1, aes128-sha1, 3des-sha1"


@pytest.fixture
def client(lab: Lab) -> Iterator[LabClient]:
    c = LabClient(lab.prefix, userspace_esp=True).start()
    try:
        yield c
    finally:
        c.hangup()
        c.stop()


def dial(client: LabClient, tunnel: Tunnel, timeout_s: float = 20.0) -> DialResult:
    r = client.dial(tunnel, timeout_s=timeout_s)
    client.hangup(r.name)
    return r


def same_outcome(ours: Any, oracle: DialResult) -> None:
    """The same stage, and the same reason to stop there (or none)."""
    assert ORACLE_STAGE.get(oracle.stage) == ours["stage_reached"], (oracle.summary(), ours["failure"])
    assert oracle.child_established == ours["connected"]
    if oracle.error == "EAP_FAILURE":
        assert ours["cause"] == "eap-failure", ours["failure"]
    elif oracle.error == "TIMEOUT":
        assert ours["cause"] == "no-answer", ours["failure"]
    else:
        assert oracle.error == ours["error_notify"], (oracle.summary(), ours["failure"])
    if oracle.child_established:
        assert tuple(ours["child_sa"]["ts_r"]) == oracle.remote_ts


def wait_no_sa(lab: Lab, seconds: float = 40.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while ike_sas(lab) and time.monotonic() < deadline:
        time.sleep(0.2)


CASES = {
    # name: (user, password given to both, extra connect args, the lab client's offer or None for its default)
    "right-password": ("bob", t.RADIUS_USERS["bob"], (), WITH_GCM),
    "wrong-password": ("bob", "not-the-password", (), WITH_GCM),
    "unknown-user": ("mallory", "whatever-Passw0rd", (), WITH_GCM),
    "local-user": (t.EAP_USER, t.EAP_PASSWORD, (), WITH_GCM),
}


@scenarios("eap-radius")
@pytest.mark.parametrize("case", list(CASES))
def test_eap_radius_as_windows_and_as_the_oracle(
    lab: Lab, client: LabClient, tmp_path: Path, case: str
) -> None:
    user, password, extra, offer = CASES[case]
    tunnel = (
        Tunnel.local_user(password=password, esp_proposals=offer)
        if user == t.EAP_USER
        else Tunnel.radius_user(user, password=password, esp_proposals=offer)
    )
    for _ in range(2):
        code, ours = connect(lab, tmp_path, password, *extra, user=user)
        no_sa_left(lab)
        oracle = dial(client, tunnel)
        same_outcome(ours, oracle)
        assert (code == 0) == (case in ("right-password", "local-user"))
        if case in ("wrong-password", "unknown-user"):
            assert ours["windows_error"]["code"] == 691
    wait_no_sa(lab)


@scenarios("child-proposal-mismatch")
def test_child_proposal_mismatch_as_windows_and_as_the_oracle(
    lab: Lab, client: LabClient, tmp_path: Path
) -> None:
    classic_args = [a for p in CLASSIC for a in ("--esp-proposal", p)]
    for _ in range(2):
        # The classic offer: both refused at the CHILD_SA with NO_PROPOSAL_CHOSEN (13868 for Windows).
        code, ours = connect(lab, tmp_path, t.RADIUS_USERS["bob"], *classic_args, user="bob")
        oracle = dial(client, Tunnel.radius_user("bob", esp_proposals=", ".join(CLASSIC)))
        same_outcome(ours, oracle)
        assert code == 1 and ours["windows_error"]["code"] == 13868
        # With AES-GCM-256 offered (Windows 10 1803 and later), both get the CHILD_SA.
        code, ours = connect(lab, tmp_path, t.RADIUS_USERS["bob"], user="bob")
        oracle = dial(client, Tunnel.radius_user("bob", esp_proposals=WITH_GCM))
        same_outcome(ours, oracle)
        assert code == 0
        no_sa_left(lab)


@scenarios("split-tunnel")
def test_split_tunnel_as_windows_and_as_the_oracle(lab: Lab, client: LabClient, tmp_path: Path) -> None:
    for _ in range(2):
        code, ours = connect(lab, tmp_path, t.RADIUS_USERS["bob"], user="bob")
        oracle = dial(client, Tunnel.radius_user("bob", esp_proposals=WITH_GCM))
        same_outcome(ours, oracle)
        assert code == 0 and tuple(ours["child_sa"]["ts_r"]) == t.SPLIT_TUNNEL_NETS
        no_sa_left(lab)


@scenarios("pool-exhausted")
def test_pool_exhausted_as_windows_and_as_the_oracle(lab: Lab, client: LabClient, tmp_path: Path) -> None:
    # bob holds the pool's one address through the lab client (one charon per namespace: the same client
    # then dials carol beside it)
    first = client.dial(Tunnel.radius_user("bob", esp_proposals=WITH_GCM))
    assert first.stage == "child_sa", first.log[-3000:]
    for _ in range(2):
        code, ours = connect(lab, tmp_path, t.RADIUS_USERS["carol"], user="carol")
        oracle = dial(client, Tunnel.radius_user("carol", esp_proposals=WITH_GCM))
        same_outcome(ours, oracle)
        assert code == 1 and ours["error_notify"] == "INTERNAL_ADDRESS_FAILURE"
        assert ours["windows_error"]["code"] == 720
    client.hangup(first.name)
    wait_no_sa(lab)
    assert ike_sas(lab) == 0


@scenarios("radius-down")
def test_radius_down_as_windows_and_as_the_oracle(lab: Lab, client: LabClient, tmp_path: Path) -> None:
    """The gateway goes silent after the EAP identity: the lab client's charon, retransmitting, hears nothing
    in 20 s; `connect` with a Windows-like 6 s wait neither (809). (Waiting 30 s, `connect` gets the late
    EAP-Failure strongSwan sends when its RADIUS retries end: test_connect_probe.py.)"""
    for _ in range(2):
        wait_no_sa(lab, 60.0)  # strongSwan queues a RADIUS request behind those still being retried
        code, ours = connect(lab, tmp_path, t.RADIUS_USERS["bob"], "--timeout-s", "6", user="bob")
        oracle = dial(client, Tunnel.radius_user("bob", esp_proposals=WITH_GCM))
        same_outcome(ours, oracle)
        assert code == 1 and ours["windows_error"]["code"] == 809 and ours["eap_requests"] == ["IDENTITY"]
        assert oracle.eap_methods == ("EAP_IDENTITY",)
    wait_no_sa(lab, 90.0)
    assert ike_sas(lab) == 0
