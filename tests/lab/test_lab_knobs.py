"""Each scenario knob has its effect, shown with tools nobody here wrote: ike-scan, ping, dig, openssl,
conntrack, and strongSwan itself (as responder and as the lab's reference client)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import need, scenarios
from vpndoctor.lab import topology as t
from vpndoctor.lab.client import LabClient
from vpndoctor.lab.handle import Lab

pytestmark = pytest.mark.lab

VIP = t.VIP4


def ike_scan(lab: Lab, *extra: str, target: str = VIP) -> str:
    need("ike-scan")
    # Three tries with a short timeout: "no answer" then costs about 2 s.
    proc = lab.run("client", "ike-scan", "--ikev2", "--sport=0", "--retry=3", "--timeout=400", *extra, target)
    return proc.stdout


def answered(output: str) -> bool:
    return "IKEv2 SA_INIT Handshake returned" in output or "Notify message" in output


def tls_handshake(lab: Lab, target: str = VIP, timeout_s: int = 4) -> subprocess.CompletedProcess[str]:
    need("openssl")
    return lab.run(
        "client",
        "timeout",
        str(timeout_s),
        "openssl",
        "s_client",
        "-connect",
        f"{target}:443",
        "-servername",
        t.SERVER_NAME,
        "-CAfile",
        lab.info.ca_file,
        "-verify_return_error",
        input_text="",
        timeout_s=timeout_s + 5,
    )


def ping(lab: Lab, *args: str, target: str = VIP) -> subprocess.CompletedProcess[str]:
    need("ping")
    return lab.run("client", "ping", "-n", *args, target, timeout_s=60)


def dig(lab: Lab, rtype: str = "A") -> subprocess.CompletedProcess[str]:
    need("dig")
    return lab.run("client", "dig", "+time=2", "+tries=1", t.SERVER_NAME, rtype)


def connect(lab: Lab, **kw: object) -> tuple[bool, str]:
    client = LabClient(lab.prefix, **kw).start()  # type: ignore[arg-type]
    try:
        result = client.initiate(timeout_s=12)
        return result.established, result.output
    finally:
        client.stop()


# ---------------------------------------------------------------------------------------------------
# healthy: every path works


@scenarios("healthy")
def test_healthy_every_service_answers(lab: Lab) -> None:
    assert answered(ike_scan(lab)), "UDP 500"
    assert answered(ike_scan(lab, "--nat-t")), "UDP 4500"
    proc = tls_handshake(lab)
    assert proc.returncode == 0 and "Verify return code: 0 (ok)" in proc.stdout, proc.stdout[-500:]
    assert ping(lab, "-c", "2", "-W", "2").returncode == 0
    assert ping(lab, "-6", "-c", "2", "-W", "2", target=t.VIP6).returncode == 0


@scenarios("healthy")
def test_healthy_ipv6_end_to_end(lab: Lab) -> None:
    ok, output = connect(lab, remote=t.VIP6)
    assert ok, output
    assert f"from {t.CLIENT6}[" in lab.charon_log("vpn1") + lab.charon_log("vpn2")
    proc = tls_handshake(lab, target=f"[{t.VIP6}]")
    assert proc.returncode == 0 and "Verify return code: 0 (ok)" in proc.stdout, proc.stdout[-500:]
    aaaa = dig(lab, "AAAA")
    assert "status: NOERROR" in aaaa.stdout


@scenarios("healthy")
def test_healthy_sstp_endpoint_answers_duplex_post(lab: Lab) -> None:
    request = (
        "SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\n"
        f"Host: {t.SERVER_NAME}\r\nContent-Length: 18446744073709551615\r\n"
        "SSTPCORRELATIONID: {11111111-2222-3333-4444-555555555555}\r\n\r\n"
    )
    proc = lab.run(
        "client",
        "timeout",
        "4",
        "openssl",
        "s_client",
        "-quiet",
        "-ign_eof",
        "-connect",
        f"{VIP}:443",
        "-servername",
        t.SERVER_NAME,
        "-CAfile",
        lab.info.ca_file,
        input_text=request,
        timeout_s=10,
    )
    assert "HTTP/1.1 200 OK" in proc.stdout, proc.stdout + proc.stderr
    assert "SSTP-Server" in proc.stdout


@scenarios("healthy")
def test_healthy_dns_answers_vip_v4_and_v6(lab: Lab) -> None:
    a = dig(lab, "A")
    assert "status: NOERROR" in a.stdout and re.search(rf"\sA\s+{re.escape(t.VIP4)}\b", a.stdout), a.stdout
    aaaa = dig(lab, "AAAA")
    assert re.search(rf"\sAAAA\s+{re.escape(t.VIP6)}\b", aaaa.stdout), aaaa.stdout
    assert " aa" in a.stdout.split("flags:")[1].split(";")[0], "dnsmasq answers authoritatively"


@scenarios("healthy")
def test_healthy_strongswan_client_establishes_and_server_splits_large_message(lab: Lab) -> None:
    ok, output = connect(lab)
    assert ok, output
    assert "EAP_MSCHAPV2 succeeded" in output
    logs = lab.charon_log("vpn1") + lab.charon_log("vpn2")
    # The IKE_AUTH response carries the certificate: larger than fragment_size, so charon splits it.
    assert re.search(r"splitting IKE message \(\d+ bytes\) into \d+ fragments", logs), logs[-2000:]


@scenarios("healthy")
def test_healthy_fragmented_datagram_crosses(lab: Lab) -> None:
    assert ping(lab, "-c", "2", "-W", "2", "-s", "3000").returncode == 0
    assert send_big_udp(lab) is True


def send_big_udp(lab: Lab, size: int = 3000) -> bool:
    """A 3000-byte UDP datagram (IP-fragmented on a 1500-byte path) from client to vpn1, received by a
    listener in vpn1's namespace."""
    listener = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            lab.ns("vpn1"),
            sys.executable,
            "-c",
            "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 5555));"
            "print('ready', flush=True); s.settimeout(3);\n"
            "try:\n  d,a=s.recvfrom(65535); print(len(d))\nexcept OSError: print('timeout')",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "ready"
        lab.run(
            "client",
            sys.executable,
            "-c",
            "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
            f"s.sendto(b'x'*{size}, ('{t.BACKEND4['vpn1']}', 5555))",
        )
        out, _ = listener.communicate(timeout=10)
    finally:
        listener.kill()
        listener.wait()
    return out.strip() == str(size)


# ---------------------------------------------------------------------------------------------------
# blocked ports


@scenarios("block-udp-500")
def test_block_udp_500(lab: Lab) -> None:
    def reached_500() -> int:
        counters = lab.counters("lb")
        return counters.get("vpn1_udp500", 0) + counters.get("vpn2_udp500", 0)

    # Counted around our own probes: other tests sharing this lab reach UDP 500 from the inside (an exporter
    # on the dns host), which the edge's block does not concern.
    before = reached_500()
    assert not answered(ike_scan(lab))
    assert answered(ike_scan(lab, "--nat-t")), "UDP 4500 is still open"
    assert tls_handshake(lab).returncode == 0, "TCP 443 is still open"
    assert reached_500() == before, "UDP 500 from the client reached a backend"


@scenarios("block-udp-4500")
def test_block_udp_4500(lab: Lab) -> None:
    assert answered(ike_scan(lab))
    assert not answered(ike_scan(lab, "--nat-t"))
    # The load balancer's DNAT makes the server look NATed, so the client floats to 4500: an 809.
    ok, output = connect(lab)
    assert not ok and "peer not responding" in output, output


@scenarios("block-tcp-443")
def test_block_tcp_443(lab: Lab) -> None:
    assert tls_handshake(lab).returncode != 0
    assert answered(ike_scan(lab))


# ---------------------------------------------------------------------------------------------------
# fragments and MTU


@scenarios("fragments-drop")
def test_fragments_drop_but_ikev2_fragmentation_saves_the_handshake(lab: Lab) -> None:
    assert ping(lab, "-c", "2", "-W", "1", "-s", "1000").returncode == 0, "unfragmented traffic passes"
    assert ping(lab, "-c", "2", "-W", "1", "-s", "3000").returncode != 0
    assert send_big_udp(lab) is False
    counters = lab.counters("edge")
    assert counters["frag4_dropped"] >= 2
    ok, output = connect(lab)
    assert ok, output


@scenarios("error-809-fragments")
def test_fragments_dropped_without_server_fragmentation_is_error_809(lab: Lab) -> None:
    ok, output = connect(lab)
    assert not ok and "peer not responding" in output, output
    logs = lab.charon_log("vpn1") + lab.charon_log("vpn2")
    assert "splitting IKE message" not in logs
    assert lab.counters("edge")["frag4_dropped"] > 0


@scenarios("server-fragmentation-off")
def test_server_fragmentation_off_sends_unfragmented_ike(lab: Lab) -> None:
    ok, output = connect(lab)
    assert ok, output  # fragments pass in this scenario, so the large IKE_AUTH arrives in IP fragments
    logs = lab.charon_log("vpn1") + lab.charon_log("vpn2")
    assert "splitting IKE message" not in logs
    sizes = [int(n) for n in re.findall(r"sending packet: from \S+\[4500\] to \S+ \((\d+) bytes\)", logs)]
    assert max(sizes) > 1280, sizes


@scenarios("path-mtu-1280")
def test_path_mtu(lab: Lab) -> None:
    # 1252 + 8 (ICMP) + 20 (IPv4) = 1280 fits; one byte more does not, and DF forbids fragmenting it.
    assert ping(lab, "-c", "1", "-W", "2", "-M", "do", "-s", "1252").returncode == 0
    too_big = ping(lab, "-c", "2", "-W", "2", "-M", "do", "-s", "1253")
    assert too_big.returncode != 0
    assert re.search(r"[Ff]rag needed|mtu *= *1280|[Mm]essage too long", too_big.stdout + too_big.stderr)
    assert ping(lab, "-c", "1", "-W", "2", "-s", "3000").returncode == 0, "fragmented traffic passes"


# ---------------------------------------------------------------------------------------------------
# load balancer affinity

PAIRS = 30


def send_pairs(lab: Lab, pairs: int = PAIRS) -> list[tuple[str, str]]:
    """One client address opens `pairs` UDP 500 flows and as many UDP 4500 flows; returns, per pair, the
    backends the load balancer chose for its 500 and its 4500 flow (read from the lb's conntrack)."""
    need("conntrack")
    lab.run("lb", "conntrack", "-F")
    script = (
        "import socket\n"
        f"for i in range({pairs}):\n"
        "    for base, port in ((40000, 500), (41000, 4500)):\n"
        "        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "        s.bind(('0.0.0.0', base + i))\n"
        # a non-ESP marker for 4500, then a too-short IKE header: the backends ignore it
        f"        s.sendto((b'\\0\\0\\0\\0' if port == 4500 else b'') + b'\\1' * 8, ('{VIP}', port))\n"
        "        s.close()\n"
    )
    proc = lab.run("client", sys.executable, "-c", script)
    assert proc.returncode == 0, proc.stderr
    by_port = {(f.client_port, f.vip_port): lab.backend_name(f.backend) for f in lab.flows("udp")}
    return [(by_port[(40000 + i, 500)], by_port[(41000 + i, 4500)]) for i in range(pairs)]


@scenarios("healthy")
def test_source_address_affinity_keeps_a_client_on_one_backend(lab: Lab) -> None:
    pairs = send_pairs(lab)
    assert all(a == b for a, b in pairs), pairs


@scenarios("lb-per-service")
def test_per_service_scheduling_splits_a_client_across_backends(lab: Lab) -> None:
    before = lab.counters("lb")
    pairs = send_pairs(lab)
    split = [p for p in pairs if p[0] != p[1]]
    assert split, pairs  # 30 pairs: the chance of no split with a fair coin is 2**-30
    assert {b for p in pairs for b in p} == {"vpn1", "vpn2"}
    after = lab.counters("lb")
    new = sum(after[k] - before[k] for k in ("vpn1_udp500", "vpn2_udp500"))
    assert new == PAIRS


@scenarios("lb-single-backend")
def test_single_backend_takes_every_flow(lab: Lab) -> None:
    pairs = send_pairs(lab, 10)
    assert all(p == ("vpn1", "vpn1") for p in pairs), pairs
    assert lab.run("vpn2", "ss", "-Hlun", "sport = :500").stdout.strip() == "", "no charon on vpn2"


# ---------------------------------------------------------------------------------------------------
# DNS


@scenarios("dns-wrong")
def test_dns_wrong_answers_another_address(lab: Lab) -> None:
    a = dig(lab)
    assert re.search(rf"\sA\s+{re.escape(t.WRONG4)}\b", a.stdout), a.stdout
    assert not answered(ike_scan(lab, target=t.WRONG4))


@scenarios("dns-nxdomain")
def test_dns_nxdomain(lab: Lab) -> None:
    a = dig(lab)
    assert "status: NXDOMAIN" in a.stdout, a.stdout
    assert "aa" in a.stdout.split("flags:")[1].split(";")[0]


@scenarios("edge-dnat")
def test_edge_dnat_publishes_public_vip(lab: Lab) -> None:
    a = dig(lab)
    assert re.search(rf"\sA\s+{re.escape(t.PUBLIC_VIP4)}\b", a.stdout), a.stdout
    assert answered(ike_scan(lab, target=t.PUBLIC_VIP4))
    assert tls_handshake(lab, target=t.PUBLIC_VIP4).returncode == 0


# ---------------------------------------------------------------------------------------------------
# certificates: what the TLS endpoint serves (the same certificate strongSwan uses), checked by openssl


def served_certificate(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> str:
    proc = lab.run(
        "client",
        "timeout",
        "4",
        "openssl",
        "s_client",
        "-connect",
        f"{VIP}:443",
        "-servername",
        t.SERVER_NAME,
        input_text="",
        timeout_s=10,
    )
    match = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", proc.stdout, re.S)
    assert match, proc.stdout + proc.stderr
    path = tmp_path_factory.mktemp("cert") / "served.pem"
    path.write_text(match.group(0) + "\n")
    return str(path)


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=20)


@scenarios("healthy")
def test_valid_certificate(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    cert = served_certificate(lab, tmp_path_factory)
    assert openssl("verify", "-CAfile", lab.info.ca_file, "-purpose", "sslserver", cert).returncode == 0
    assert "does match" in openssl("x509", "-in", cert, "-noout", "-checkhost", t.SERVER_NAME).stdout
    assert openssl("x509", "-in", cert, "-noout", "-checkend", "0").returncode == 0


@scenarios("cert-expired")
def test_expired_certificate(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    cert = served_certificate(lab, tmp_path_factory)
    assert openssl("x509", "-in", cert, "-noout", "-checkend", "0").returncode != 0
    assert (
        "certificate has expired"
        in openssl("verify", "-CAfile", lab.info.ca_file, cert).stderr
        + openssl("verify", "-CAfile", lab.info.ca_file, cert).stdout
    )
    ok, output = connect(lab)
    assert not ok, "strongSwan refuses an expired server certificate"


@scenarios("cert-not-yet-valid")
def test_not_yet_valid_certificate(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    cert = served_certificate(lab, tmp_path_factory)
    out = openssl("verify", "-CAfile", lab.info.ca_file, cert)
    assert out.returncode != 0 and "not yet valid" in out.stdout + out.stderr


@scenarios("cert-wrong-name")
def test_wrong_name_certificate(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    cert = served_certificate(lab, tmp_path_factory)
    assert "does NOT match" in openssl("x509", "-in", cert, "-noout", "-checkhost", t.SERVER_NAME).stdout
    assert openssl("verify", "-CAfile", lab.info.ca_file, cert).returncode == 0, "chain itself is fine"


@scenarios("cert-no-serverauth-eku")
def test_certificate_without_server_auth_eku(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    cert = served_certificate(lab, tmp_path_factory)
    assert openssl("verify", "-CAfile", lab.info.ca_file, cert).returncode == 0
    bad = openssl("verify", "-CAfile", lab.info.ca_file, "-purpose", "sslserver", cert)
    assert bad.returncode != 0 and "unsuitable certificate purpose" in bad.stdout + bad.stderr
    eku = openssl("x509", "-in", cert, "-noout", "-ext", "extendedKeyUsage").stdout
    assert "TLS Web Server Authentication" not in eku and "TLS Web Client Authentication" in eku


@scenarios("cert-untrusted-ca")
def test_untrusted_ca_certificate(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> None:
    cert = served_certificate(lab, tmp_path_factory)
    out = openssl("verify", "-CAfile", lab.info.ca_file, cert)
    assert out.returncode != 0 and "unable to get local issuer certificate" in out.stdout + out.stderr
    ok, output = connect(lab)
    assert not ok, output


# ---------------------------------------------------------------------------------------------------
# proposals and cookies


@scenarios("proposals-windows-default")
def test_windows_default_proposal_only(lab: Lab) -> None:
    ok, output = connect(lab, proposals="aes256-sha256-modp2048")
    assert not ok and "NO_PROPOSAL_CHOSEN" in output, output
    ok, output = connect(lab, proposals="3des-sha1-modp1024")
    assert ok, output
    assert "IKE:3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024" in lab.charon_log("vpn1") + lab.charon_log(
        "vpn2"
    )


@scenarios("proposals-ecp384-only")
def test_ecp384_only_demands_another_key_exchange(lab: Lab) -> None:
    ok, output = connect(lab, proposals="aes256gcm16-prfsha384-ecp256-ecp384")
    assert ok, output
    assert "it requested ECP_384" in output, output
    logs = lab.charon_log("vpn1") + lab.charon_log("vpn2")
    assert "DH group ECP_256 unacceptable, requesting ECP_384" in logs


@scenarios("cookies-always")
def test_cookies_always(lab: Lab) -> None:
    # ike-scan never completes the exchange, so its first SA stays half-open and the next one gets a COOKIE.
    first = ike_scan(lab)
    second = ike_scan(lab)
    assert "COOKIE" in first + second or "16390" in first + second, first + second
    ok, output = connect(lab)
    assert ok, output  # strongSwan's client answers the cookie challenge


@scenarios("healthy")
def test_cookies_follow_strongswans_default_threshold(lab: Lab) -> None:
    """The responders run charon's shipped DoS limits: a COOKIE exactly when the client already has
    `cookie_threshold_ip` (3) half-open SAs there (ike-scan leaves one per run; the lb sends all of one
    client's flows to one backend). Earlier tests may have left some: the count is read through vici."""
    from vpndoctor.lab.vici_watch import HalfOpenWatch

    for _ in range(4):
        with HalfOpenWatch(lab.workdir) as watch:
            pass
        out = ike_scan(lab)
        cookie = "COOKIE" in out or "16390" in out
        assert cookie == (watch.before >= 3), (watch.before, out)
        if cookie:
            break


# ---------------------------------------------------------------------------------------------------
# NAT and the WAN


@scenarios("nat-client")
def test_client_behind_nat(lab: Lab) -> None:
    ok, output = connect(lab)
    assert ok, output
    logs = lab.charon_log("vpn1") + lab.charon_log("vpn2")
    assert f"received packet: from {t.EDGE_LB4}[" in logs, "the server sees the NAT's address"
    assert f"from {t.CLIENT4}[" not in logs
    assert re.search(r"sending packet: from \S+\[4500\]", logs), "the exchange floated to UDP 4500"


@scenarios("healthy")
def test_healthy_server_sees_client_address(lab: Lab) -> None:
    ok, output = connect(lab)
    assert ok, output
    assert f"received packet: from {t.CLIENT4}[" in lab.charon_log("vpn1") + lab.charon_log("vpn2")


def avg_rtt_ms(output: str) -> float:
    match = re.search(r"= [\d.]+/([\d.]+)/", output)
    assert match, output
    return float(match.group(1))


@scenarios("wan-slow")
def test_wan_rtt(lab: Lab) -> None:
    proc = ping(lab, "-c", "5", "-i", "0.2", "-W", "3")
    assert proc.returncode == 0
    assert 150 <= avg_rtt_ms(proc.stdout) < 400, proc.stdout


@scenarios("healthy")
def test_healthy_wan_is_fast(lab: Lab) -> None:
    proc = ping(lab, "-c", "5", "-i", "0.2", "-W", "3")
    assert avg_rtt_ms(proc.stdout) < 50, proc.stdout


@scenarios("wan-lossy")
def test_wan_loss(lab: Lab) -> None:
    proc = ping(lab, "-c", "200", "-i", "0.01", "-W", "1")
    match = re.search(r"(\d+(?:\.\d+)?)% packet loss", proc.stdout)
    assert match, proc.stdout
    # 10 % each way: about 19 % of echo exchanges fail.
    assert 7 <= float(match.group(1)) <= 35, proc.stdout
