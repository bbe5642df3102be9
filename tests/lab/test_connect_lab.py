"""The lab side of `connect`: an RRAS-shaped gateway handing EAP to an NPS stand-in (FreeRADIUS) over
RADIUS, dialled by the lab's own strongSwan client the way a Windows client dials - user tunnels with
EAP-MSCHAPv2 (RADIUS and local users) and EAP-TLS, a device tunnel with a machine certificate, a virtual
IPv4 and IPv6 address and DNS from the configuration payload, and a CHILD_SA (in strongSwan's userspace ESP:
this kernel has no ESP). Every verdict is measured twice in the same lab: what the first dial leaves
behind (leases, SAs, RADIUS sessions) must not change the second's outcome."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from tests.helpers import need, scenarios
from vpndoctor.lab import radius
from vpndoctor.lab import topology as t
from vpndoctor.lab.client import DialResult, LabClient, Tunnel
from vpndoctor.lab.handle import Lab
from vpndoctor.lab.strongswan import POOLS

pytestmark = pytest.mark.lab

ROUNDS = pytest.mark.parametrize("round_", [1, 2], ids=["first", "again"])
FULL_TUNNEL = ("0.0.0.0/0", "::/0")


@pytest.fixture
def client(lab: Lab) -> Iterator[LabClient]:
    c = LabClient(lab.prefix, userspace_esp=True).start()
    try:
        yield c
    finally:
        c.hangup()
        c.stop()


def in_pool(address: str) -> bool:
    pools = [ipaddress.ip_network(p) for b in t.BACKENDS for p in POOLS[b]]
    return any(ipaddress.ip_address(address) in net for net in pools)


def assert_full_tunnel_up(r: DialResult) -> None:
    assert (r.stage, r.error) == ("child_sa", None), r.log[-3000:]
    assert r.ike_established and r.child_established
    v4 = [a for a in r.virtual_ips if ":" not in a]
    v6 = [a for a in r.virtual_ips if ":" in a]
    assert len(v4) == 1 and len(v6) == 1 and all(in_pool(a) for a in r.virtual_ips), r.virtual_ips
    assert set(r.dns) == {t.DNS4, t.DNS6}, r.dns
    # The DNS suffix arrives (INTERNAL_DNS_DOMAIN); strongSwan's client has no handler that would keep it.
    assert "INTERNAL_DNS_DOMAIN" in r.unhandled
    assert set(r.local_ts) == {f"{v4[0]}/32", f"{v6[0]}/128"}
    assert r.remote_ts == FULL_TUNNEL


def radius_log(lab: Lab) -> str:
    return lab.log("radius")


# --- eap-radius: the healthy RRAS + NPS shape --------------------------------------------------------------


@scenarios("eap-radius")
@ROUNDS
def test_radius_user_gets_addresses_dns_and_child_sa(lab: Lab, client: LabClient, round_: int) -> None:
    before = lab.counters("dns")["radius_auth"]
    r = client.dial(Tunnel.radius_user("bob"))
    assert_full_tunnel_up(r)
    assert r.eap_methods == ("EAP_IDENTITY", "EAP_MSCHAPV2")
    assert lab.counters("dns")["radius_auth"] > before, "the gateway asked RADIUS"
    assert radius_log(lab).count("Login OK: [bob]") >= round_
    logs = lab.charon_log("vpn1") + lab.charon_log("vpn2")
    assert "selected peer config 'aovpn-radius'" in logs and "CHILD_SA aovpn-radius{" in logs


@scenarios("eap-radius")
@ROUNDS
def test_radius_eap_tls_user_certificate(lab: Lab, client: LabClient, round_: int) -> None:
    assert lab.info.user_cert and lab.info.user_key
    r = client.dial(Tunnel.eap_tls(lab.info.user_cert, lab.info.user_key))
    assert_full_tunnel_up(r)
    # The RADIUS server offers MSCHAPv2 first; the client NAKs to EAP-TLS.
    assert r.eap_methods == ("EAP_IDENTITY", "EAP_MSCHAPV2", "EAP_TLS")
    assert radius_log(lab).count(f"Login OK: [{t.EAP_TLS_USER}]") >= round_


@scenarios("eap-radius")
@ROUNDS
def test_device_tunnel_machine_certificate(lab: Lab, client: LabClient, round_: int) -> None:
    assert lab.info.machine_cert and lab.info.machine_key
    r = client.dial(Tunnel.device(lab.info.machine_cert, lab.info.machine_key))
    assert_full_tunnel_up(r)
    assert r.eap_methods == ()
    logs = lab.charon_log("vpn1") + lab.charon_log("vpn2")
    assert "CHILD_SA aovpn-device{" in logs


@scenarios("eap-radius")
@ROUNDS
def test_local_user_beside_radius(lab: Lab, client: LabClient, round_: int) -> None:
    before = lab.counters("dns")["radius_auth"]
    r = client.dial(Tunnel.local_user())
    assert_full_tunnel_up(r)
    assert lab.counters("dns")["radius_auth"] == before, "the local user never reaches RADIUS"


@scenarios("eap-radius")
@ROUNDS
@pytest.mark.parametrize(
    ("user", "password", "methods", "logged"),
    [
        ("bob", "wrong-password", ("EAP_IDENTITY", "EAP_MSCHAPV2"), "Login incorrect (mschap"),
        ("nobody", "whatever", ("EAP_IDENTITY", "EAP_MSCHAPV2"), "Login incorrect"),
        # The network policy refuses the identity before any method starts.
        (t.RADIUS_DENIED_USER, t.RADIUS_DENIED_PASSWORD, ("EAP_IDENTITY",), radius.DENIED_MESSAGE),
    ],
    ids=["wrong-password", "unknown-user", "denied-by-policy"],
)
def test_radius_refusals_are_eap_failures(
    lab: Lab,
    client: LabClient,
    round_: int,
    user: str,
    password: str,
    methods: tuple[str, ...],
    logged: str,
) -> None:
    r = client.dial(Tunnel.radius_user(user, password))
    assert (r.stage, r.error) == ("eap", "EAP_FAILURE"), r.log[-3000:]
    assert r.eap_methods == methods
    assert not r.ike_established and r.virtual_ips == ()
    assert f"{logged}" in radius_log(lab) and f"[{user}]" in radius_log(lab)


@scenarios("eap-radius")
@ROUNDS
def test_peap_and_mschapv2_at_the_radius_level(lab: Lab, round_: int) -> None:
    """PEAP-MSCHAPv2 (strongSwan has no PEAP client): wpa_supplicant's eapol_test, from a VPN server's
    namespace, with that server's RADIUS secret - what the gateway would relay."""
    need(radius.EAPOL_TEST)
    verdicts = {}
    for label, method, password in (
        ("peap", "PEAP", t.RADIUS_USERS["bob"]),
        ("peap-wrong", "PEAP", "wrong-password"),
        ("mschapv2", "MSCHAPV2", t.RADIUS_USERS["carol"]),
    ):
        user = "carol" if method == "MSCHAPV2" else "bob"
        conf = lab.workdir / f"eapol-{label}.conf"
        ca = lab.workdir / "pki" / "ca.pem"
        conf.write_text(radius.eapol_test_conf(method, user, ca_file=ca, password=password))
        proc = lab.run("vpn1", *radius.eapol_test_command(conf), timeout_s=30)
        verdicts[label] = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    assert verdicts == {"peap": "SUCCESS", "peap-wrong": "FAILURE", "mschapv2": "SUCCESS"}, verdicts
    assert "via TLS tunnel" in radius_log(lab)  # PEAP's inner MSCHAPv2 ran in the inner-tunnel server


# --- radius-down: configured, not running -----------------------------------------------------------------


@scenarios("radius-down")
@ROUNDS
def test_radius_down_gateway_goes_silent_after_eap_identity(lab: Lab, client: LabClient, round_: int) -> None:
    before = lab.counters("dns")["radius_auth"]
    r = client.dial(Tunnel.radius_user("bob"))
    assert (r.stage, r.error) == ("eap", "TIMEOUT"), r.log[-3000:]
    assert r.eap_methods == ("EAP_IDENTITY",)
    assert r.last_request == "IKE_AUTH request 2 [ EAP/RES/ID ]" and not r.answered
    assert lab.counters("dns")["radius_auth"] > before, "the gateway did ask RADIUS (dropped silently)"


@scenarios("radius-down")
@ROUNDS
def test_radius_down_leaves_device_tunnel_and_local_user_up(lab: Lab, client: LabClient, round_: int) -> None:
    assert lab.info.machine_cert and lab.info.machine_key
    assert_full_tunnel_up(client.dial(Tunnel.device(lab.info.machine_cert, lab.info.machine_key)))
    assert_full_tunnel_up(client.dial(Tunnel.local_user()))


# --- pool-exhausted ---------------------------------------------------------------------------------------


@scenarios("pool-exhausted")
@ROUNDS
def test_pool_exhausted_second_user_gets_internal_address_failure(
    lab: Lab, client: LabClient, round_: int
) -> None:
    first = client.dial(Tunnel.radius_user("bob"))
    assert first.stage == "child_sa" and len(first.virtual_ips) == 2, first.log[-3000:]
    second = client.dial(Tunnel.radius_user("carol"))
    assert (second.stage, second.error) == ("authenticated", "INTERNAL_ADDRESS_FAILURE"), second.log[-3000:]
    assert second.ike_established and not second.child_established and second.virtual_ips == ()
    logs = lab.charon_log("vpn1") + lab.charon_log("vpn2")
    assert "is full, unable to assign address" in logs


# --- child-proposal-mismatch ------------------------------------------------------------------------------


@scenarios("child-proposal-mismatch")
@ROUNDS
def test_child_proposal_mismatch(lab: Lab, client: LabClient, round_: int) -> None:
    r = client.dial(Tunnel.radius_user("bob"))
    assert (r.stage, r.error) == ("authenticated", "NO_PROPOSAL_CHOSEN"), r.log[-3000:]
    assert r.ike_established and not r.child_established and r.notifies == ("NO_PROPOSAL_CHOSEN",)
    client.hangup(r.name)
    # The same user offering what the gateway wants gets the CHILD_SA: it is the ESP proposal, nothing else.
    ok = client.dial(Tunnel.radius_user("bob", esp_proposals="aes256gcm16"))
    assert ok.stage == "child_sa", ok.log[-3000:]


# --- split-tunnel -----------------------------------------------------------------------------------------


@scenarios("split-tunnel")
@ROUNDS
def test_split_tunnel_narrows_traffic_selectors(lab: Lab, client: LabClient, round_: int) -> None:
    assert lab.info.machine_cert and lab.info.machine_key
    for tunnel in (Tunnel.radius_user("bob"), Tunnel.device(lab.info.machine_cert, lab.info.machine_key)):
        r = client.dial(tunnel)
        assert r.stage == "child_sa", r.log[-3000:]
        assert r.remote_ts == t.SPLIT_TUNNEL_NETS  # asked for 0.0.0.0/0 and ::/0, narrowed
        assert {"INTERNAL_IP4_SUBNET", "INTERNAL_IP6_SUBNET"} <= set(r.unhandled)


# --- client certificate defects (for `connect` to present later): what this gateway and NPS make of them ----


CERT_VERDICTS = {
    # scenario: (EAP-TLS user tunnel, device tunnel), as (stage, error)
    "client-cert-expired": (("eap", "EAP_FAILURE"), ("ike_sa_init", "AUTHENTICATION_FAILED")),
    # FreeRADIUS checks the purpose (OpenSSL: unsuitable certificate purpose); strongSwan checks no EKU.
    "client-cert-no-clientauth-eku": (("eap", "EAP_FAILURE"), ("child_sa", None)),
    "client-cert-foreign-ca": (("eap", "EAP_FAILURE"), ("ike_sa_init", "AUTHENTICATION_FAILED")),
    # Neither side ties the machine certificate's subject to anything: a client-side check.
    "machine-cert-wrong-subject": (("child_sa", None), ("child_sa", None)),
}


@scenarios(*CERT_VERDICTS)
@ROUNDS
def test_client_certificate_defects(lab: Lab, client: LabClient, round_: int) -> None:
    info = lab.info
    assert info.user_cert and info.user_key and info.machine_cert and info.machine_key
    want_tls, want_device = CERT_VERDICTS[lab.scenario.name]
    tls = client.dial(Tunnel.eap_tls(info.user_cert, info.user_key))
    assert (tls.stage, tls.error) == want_tls, tls.log[-3000:]
    device = client.dial(Tunnel.device(info.machine_cert, info.machine_key))
    assert (device.stage, device.error) == want_device, device.log[-3000:]
