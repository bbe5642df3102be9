"""The lab's DirectAccess IP-HTTPS ADC (nginx and HAProxy, NetScaler recipe) and its variants, checked from
the client namespace through the edge with tools nobody here wrote: openssl s_client, sslscan, dig; and the
override hook that runs user-supplied nginx/HAProxy/nftables configurations in the lab's place."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TEST_PREFIX
from tests.helpers import need, scenarios
from vpndoctor.errors import LabError
from vpndoctor.lab import adc
from vpndoctor.lab import topology as t
from vpndoctor.lab.client import LabClient
from vpndoctor.lab.handle import Lab
from vpndoctor.lab.pki import DirectAccessPkiFiles
from vpndoctor.lab.runner import STATE_ROOT, existing_namespaces, lab_down, lab_status, lab_up
from vpndoctor.lab.scenario import AdcKnobs, load_scenario

pytestmark = pytest.mark.lab

# The real IP-HTTPS request ([MS-IPHTTPS] 4.1), with its 2**64-1 Content-Length.
IPHTTPS_REQUEST = (
    f"POST /IPHTTPS HTTP/1.1\r\nHost: {t.DA_NAME}\r\nContent-Length: 18446744073709551615\r\n\r\n"
)
NULL_FIRST = "NULL-SHA:ECDHE-RSA-AES128-SHA:@SECLEVEL=0"  # what a Windows 8+ client offers first
STAND_IN = "DirectAccess stand-in on vpn"


@dataclass(frozen=True)
class Expect:
    implementation: str
    client_auth: str  # required | optional | off
    null: bool
    tls10: bool


VARIANTS = {
    "iphttps-adc-nginx": Expect("nginx", "required", True, False),
    "iphttps-adc-haproxy": Expect("haproxy", "required", True, False),
    "adc-client-auth-optional": Expect("nginx", "optional", True, False),
    "adc-client-auth-off": Expect("haproxy", "off", True, False),
    "adc-null-missing": Expect("nginx", "required", False, False),
    "adc-tls10-on": Expect("haproxy", "required", True, True),
    "adc-client-auth-optional-haproxy": Expect("haproxy", "optional", True, False),
    "adc-client-auth-off-nginx": Expect("nginx", "off", True, False),
    "adc-null-missing-haproxy": Expect("haproxy", "required", False, False),
    "adc-tls10-on-nginx": Expect("nginx", "required", True, True),
    "iphttps-adc-wan-slow": Expect("nginx", "required", True, False),
}
ALL = tuple(VARIANTS)


def expect(lab: Lab) -> Expect:
    return VARIANTS[lab.scenario.name]


def pki(lab: Lab, name: str) -> str:
    assert lab.info.da_pki_dir is not None
    return str(Path(lab.info.da_pki_dir) / name)


def s_client(
    lab: Lab,
    *,
    cert: str | None = None,
    cipher: str = NULL_FIRST,
    target: str = t.DA_VIP4,
    port: int = t.DA_PORT,
    role: str = "client",
    extra: tuple[str, ...] = (),
    request: str = IPHTTPS_REQUEST,
) -> str:
    """openssl s_client sends `request` and prints what comes back; stdout + stderr."""
    need("openssl")
    argv = [
        "timeout",
        "6",
        "openssl",
        "s_client",
        "-connect",
        f"[{target}]:{port}" if ":" in target else f"{target}:{port}",
        "-servername",
        t.DA_NAME,
        "-CAfile",
        lab.info.ca_file,
        "-cipher",
        cipher,
        "-ign_eof",
        *extra,
    ]
    if cert:
        argv += ["-cert", pki(lab, f"{cert}.pem"), "-key", pki(lab, f"{cert}.key")]
    proc = lab.run(role, *argv, input_text=request, timeout_s=12)
    return proc.stdout + proc.stderr


def got_200(output: str) -> bool:
    server = f"Server: Microsoft-HTTPAPI/2.0 (vpndoctor lab {STAND_IN}"
    return "HTTP/1.1 200 OK" in output and server in output


def negotiated(output: str) -> str | None:
    m = re.search(r"Cipher is (\S+)", output)
    return m.group(1) if m and m.group(1) != "(NONE)" else None


def wait_for_log(path: Path, needle: str, before: int, timeout_s: float = 3.0) -> str:
    """Daemons write a connection's log line when it ends, maybe just after the client is gone."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        if text.count(needle) > before or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def log_count(path: Path, needle: str) -> int:
    return path.read_text(errors="replace").count(needle) if path.exists() else 0


def backend_log(lab: Lab) -> str:
    return "".join(
        Path(lab.info.workdir, f"da-{b}.log").read_text(errors="replace")
        for b in t.BACKENDS[: lab.scenario.backends]
    )


# ---------------------------------------------------------------------------------------------------
# every variant


@scenarios(*ALL)
def test_right_ca_certificate_reaches_the_directaccess_server_through_null_reencryption(lab: Lab) -> None:
    e = expect(lab)
    needle = '"POST /IPHTTPS HTTP/1.1"'
    before = backend_log(lab).count(needle)
    out = s_client(lab, cert="da-client")
    assert got_200(out), out[-1500:]
    # The front end gives a NULL-first client NULL when it has it, else the recipe's ECDHE suite.
    assert negotiated(out) == ("NULL-SHA" if e.null else "ECDHE-RSA-AES128-SHA"), out[-1500:]
    # The DirectAccess server accepts nothing but NULL suites: its own log shows how the ADC reached it.
    deadline = time.monotonic() + 3
    while backend_log(lab).count(needle) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [ln for ln in backend_log(lab).splitlines() if needle in ln]
    assert len(lines) == before + 1, lines
    assert re.search(r" TLSv1\.2 NULL-SHA(256)? 200 ", lines[-1]), lines[-1]


@scenarios(*ALL)
def test_client_without_certificate(lab: Lab) -> None:
    e = expect(lab)
    access = Path(lab.info.workdir, "adc-access.log")
    before = log_count(access, "client_verify=NONE")
    out = s_client(lab)
    if e.client_auth != "required":
        assert got_200(out), out[-1500:]
        return
    assert "HTTP/1.1" not in out, out[-1500:]
    # (s_client prints "Cipher is ..." either way: a TLS 1.2 client has sent its Finished before it reads
    # the server's verdict.)
    if e.implementation == "haproxy":
        # `verify required`: SSL_VERIFY_FAIL_IF_NO_PEER_CERT, the handshake itself fails.
        assert "alert handshake failure" in out, out[-1500:]
    else:
        # nginx `ssl_verify_client on` completes the handshake, then closes without a byte of data.
        assert " alert " not in out, out[-1500:]
        log = wait_for_log(access, "client_verify=NONE", before)
        assert log.count("client_verify=NONE") == before + 1, log


@scenarios(*ALL)
def test_certificate_from_the_wrong_ca_is_refused(lab: Lab) -> None:
    e = expect(lab)
    access = Path(lab.info.workdir, "adc-access.log")
    before = log_count(access, "client_verify=FAILED")
    out = s_client(lab, cert="da-client-wrong")
    if e.client_auth == "off":
        # No CertificateRequest, so the client never sends its certificate.
        assert got_200(out), out[-1500:]
        return
    assert "HTTP/1.1" not in out, out[-1500:]
    if e.implementation == "haproxy":
        assert "alert unknown ca" in out, out[-1500:]
    else:
        log = wait_for_log(access, "client_verify=FAILED", before)
        assert log.count("client_verify=FAILED") == before + 1, log


@scenarios(*ALL)
def test_ca_names_advertised(lab: Lab) -> None:
    out = s_client(lab, cert="da-client")
    if expect(lab).client_auth == "off":
        assert "No client certificate CA names sent" in out, out[-1500:]
        return
    names = out.split("Acceptable client certificate CA names", 1)[1].split("Client Certificate Types", 1)[0]
    assert names.split() == ["CN", "=", "vpndoctor", "DirectAccess", "CA"], names


def sslscan(lab: Lab, *, cert: str | None) -> str:
    need("sslscan")
    certs = [f"--certs={pki(lab, cert + '.pem')}", f"--pk={pki(lab, cert + '.key')}"] if cert else []
    argv = ["sslscan", "--no-colour", "--show-client-cas", *certs, f"--sni-name={t.DA_NAME}"]
    return lab.run("client", *argv, f"{t.DA_VIP4}:{t.DA_PORT}", timeout_s=30).stdout


def accepted_suites(sslscan_output: str) -> set[tuple[str, str]]:
    found = re.findall(r"^(?:Preferred|Accepted)\s+(TLSv1\.\d)\s+\d+ bits\s+(\S+)", sslscan_output, re.M)
    return set(found)


@scenarios(*ALL)
def test_sslscan_sees_the_recipe(lab: Lab) -> None:
    e = expect(lab)
    # With the right client certificate, so that a front end that aborts certificate-less handshakes
    # (HAProxy `verify required`, like NetScaler's Mandatory) can be enumerated too.
    out = sslscan(lab, cert="da-client")
    versions = dict(re.findall(r"^(SSLv[23]|TLSv1\.[0-3])\s+(enabled|disabled)", out, re.M))
    assert versions == {
        "SSLv2": "disabled",
        "SSLv3": "disabled",
        "TLSv1.0": "enabled" if e.tls10 else "disabled",
        "TLSv1.1": "enabled" if e.tls10 else "disabled",
        "TLSv1.2": "enabled",
        "TLSv1.3": "disabled",
    }, out
    accepted = accepted_suites(out)
    suites = {"ECDHE-RSA-AES128-SHA", "NULL-SHA"} if e.null else {"ECDHE-RSA-AES128-SHA"}
    versions_on = ("TLSv1.0", "TLSv1.1", "TLSv1.2") if e.tls10 else ("TLSv1.2",)
    assert accepted == {(v, c) for v in versions_on for c in suites}, out
    cas = out.split("Acceptable client certificate CA names:", 1)
    if e.client_auth == "off":
        assert len(cas) == 1 or "vpndoctor" not in cas[1], out
    else:
        assert cas[1].split() == ["/CN=vpndoctor", "DirectAccess", "CA"], out


@scenarios("iphttps-adc-nginx", "iphttps-adc-haproxy")
def test_sslscan_without_a_client_certificate(lab: Lab) -> None:
    """What an auditor without a DirectAccess certificate sees: nginx completes certificate-less handshakes
    (and closes afterwards), so sslscan lists its suites and CA names; HAProxy aborts them, and sslscan
    2.0.7 then reports no suite, no certificate and no CA names at all, though the CertificateRequest
    that names the CA went by in every attempt (a raw prober reads it from the first flight)."""
    out = sslscan(lab, cert=None)
    if expect(lab).implementation == "nginx":
        assert accepted_suites(out) == {("TLSv1.2", "ECDHE-RSA-AES128-SHA"), ("TLSv1.2", "NULL-SHA")}, out
        assert "/CN=vpndoctor DirectAccess CA" in out, out
    else:
        assert accepted_suites(out) == set(), out
        assert "Certificate information cannot be retrieved" in out and "DirectAccess CA" not in out, out
        # the CA names were on the wire all the same:
        assert "CN = vpndoctor DirectAccess CA" in s_client(lab)


@scenarios(*ALL)
def test_tls10_handshake(lab: Lab) -> None:
    e = expect(lab)
    out = s_client(lab, cert="da-client", cipher="ECDHE-RSA-AES128-SHA:@SECLEVEL=0", extra=("-tls1",))
    assert got_200(out) is e.tls10, out[-1500:]
    # s_client prints the version it tried even when the server refused it: only a cipher means success.
    tls10 = negotiated(out) == "ECDHE-RSA-AES128-SHA" and "Protocol  : TLSv1\n" in out
    assert tls10 is e.tls10, out[-1500:]


# ---------------------------------------------------------------------------------------------------
# the pieces, once per implementation


@scenarios("iphttps-adc-nginx", "iphttps-adc-haproxy")
def test_directaccess_server_stand_in_accepts_only_null_suites(lab: Lab) -> None:
    backend = t.BACKEND4["vpn1"]
    ok = s_client(lab, target=backend, port=t.DA_BACKEND_PORT, role="lb", cipher="NULL-SHA:@SECLEVEL=0")
    assert got_200(ok) and negotiated(ok) == "NULL-SHA", ok[-1500:]
    for cipher, extra in (("AES128-SHA:ECDHE-RSA-AES128-SHA", ()), ("ALL:@SECLEVEL=0", ("-tls1_3",))):
        refused = s_client(lab, target=backend, port=t.DA_BACKEND_PORT, role="lb", cipher=cipher, extra=extra)
        assert "HTTP/1.1" not in refused and negotiated(refused) is None, refused[-1500:]
    other = s_client(
        lab,
        target=backend,
        port=t.DA_BACKEND_PORT,
        role="lb",
        cipher="NULL-SHA:@SECLEVEL=0",
        request="GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    assert "HTTP/1.1 404" in other, other[-1500:]


@scenarios("iphttps-adc-nginx", "iphttps-adc-haproxy")
def test_session_ids_resume_through_the_front_end(lab: Lab) -> None:
    """What SSL-session persistence relies on: a client resuming its session by session ID."""
    out = s_client(lab, cert="da-client", extra=("-reconnect", "-no_ticket"), request="")
    assert out.count("Reused, ") >= 4, out[-2000:]


@scenarios("iphttps-adc-wan-slow")
def test_slow_wan_delays_the_adc(lab: Lab) -> None:
    started = time.monotonic()
    out = s_client(lab, cert="da-client")
    assert got_200(out), out[-1500:]
    # TCP handshake, two TLS 1.2 round trips, the request: at least four 50 ms round trips.
    assert time.monotonic() - started >= 0.2
    assert "client_verify=SUCCESS" in lab.log("adc-access")
    assert lab.da_file("da-client.pem").exists()


@scenarios("iphttps-adc-nginx", "iphttps-adc-haproxy")
def test_adc_over_ipv6_dns_and_status(lab: Lab) -> None:
    out = s_client(lab, cert="da-client", target=t.DA_VIP6)
    assert got_200(out), out[-1500:]
    dig = lab.run("client", "dig", "+short", "+time=2", "+tries=1", t.DA_NAME, "A")
    assert dig.stdout.split() == [t.DA_VIP4], dig.stdout
    dig6 = lab.run("client", "dig", "+short", "+time=2", "+tries=1", t.DA_NAME, "AAAA")
    assert dig6.stdout.split() == [t.DA_VIP6], dig6.stdout
    status = lab_status(lab.prefix)
    procs = {p["name"]: p for p in status["processes"]}
    front = f"adc-{expect(lab).implementation}"
    for name in (front, "da-vpn1", "da-vpn2"):
        assert procs[name]["alive"], procs
    assert list(status["info"]["da_addresses"]) == [t.DA_VIP4, t.DA_VIP6]


# ---------------------------------------------------------------------------------------------------
# the override hook (issue 7's closed loop): own prefix, so the session's `lab` can stay up meanwhile

OVERRIDE_PREFIX = f"{TEST_PREFIX}o"[:8]


@pytest.fixture
def own_lab() -> Iterator[str]:
    lab_down(OVERRIDE_PREFIX)
    try:
        yield OVERRIDE_PREFIX
    finally:
        lab_down(OVERRIDE_PREFIX)


def _generated_nginx(state: Path) -> str:
    files = adc.AdcFiles(
        lab_ca=state / "pki" / "ca.pem", pki=DirectAccessPkiFiles.at(state / "pki"), workdir=state
    )
    return adc.nginx_adc_conf(AdcKnobs(), files, 2)


def test_override_adc_without_null_to_the_backend_cannot_pass(own_lab: str, tmp_path: Path) -> None:
    """The negative proof: the same nginx ADC re-encrypting with AES instead of NULL gets nothing through."""
    state = STATE_ROOT / own_lab
    conf = tmp_path / "adc-aes.conf"
    conf.write_text(_generated_nginx(state).replace(adc.BACKEND_CIPHERS, "AES128-SHA:AES256-SHA"))
    lab_up(load_scenario("healthy"), own_lab, {"adc-nginx": str(conf)})
    lab = Lab(own_lab)
    out = s_client(lab, cert="da-client")
    assert negotiated(out) == "NULL-SHA" and "HTTP/1.1" not in out, out[-1500:]
    errors = Path(state, "adc-nginx-error.log").read_text()
    assert "SSL_do_handshake() failed" in errors and "while SSL handshaking to upstream" in errors, errors
    # The DirectAccess servers saw the ADC's AES-only ClientHellos and refused them.
    log = wait_for_log(Path(state, "da-vpn1.log"), "SSL handshake failure", 0) + backend_log(lab)
    assert "SSL handshake failure" in log and "POST /IPHTTPS" not in log, log


IKE_NGINX = """# user-supplied nginx stream UDP load balancer for IKEv2 (500 + 4500, same backend per client)
worker_processes 1;
events {{ worker_connections 256; }}
stream {{
  upstream ike500  {{ hash $remote_addr; server {b1}:500;  server {b2}:500; }}
  upstream ike4500 {{ hash $remote_addr; server {b1}:4500; server {b2}:4500; }}
  server {{ listen {vip}:500 udp;  proxy_pass ike500;  proxy_timeout 30s; }}
  server {{ listen {vip}:4500 udp; proxy_pass ike4500; proxy_timeout 30s; }}
}}
"""

USER_ADC_HAPROXY = """# user-supplied HAProxy ADC (IP-HTTPS offload + preauthentication)
global
  log stdout format raw local0 info
defaults
  mode tcp
  log global
  timeout connect 5s
  timeout client 1m
  timeout server 1m
frontend da
  bind {vip}:443 ssl crt {pki}/da-server-haproxy.pem ca-file {pki}/da-ca.pem verify required \
ciphers NULL-SHA:ECDHE-RSA-AES128-SHA:@SECLEVEL=0 ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2
  default_backend das
backend das
  server vpn2 {b2}:8443 ssl ca-file {pki}/ca.pem verify required verifyhost {name} \
ciphers NULL-SHA256:NULL-SHA:@SECLEVEL=0 ssl-max-ver TLSv1.2
"""

USER_EDGE_NFT = """flush ruleset
table inet user_edge {
  counter tls_in { }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "eth-wan" tcp dport 443 counter name tls_in
  }
}
"""

USER_LB_NFT = """flush ruleset
table inet user_lb {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
  }
}
"""


def test_overrides_replace_the_adc_the_ike_lb_and_both_rulesets(own_lab: str, tmp_path: Path) -> None:
    state = STATE_ROOT / own_lab
    files = {
        "adc-haproxy": USER_ADC_HAPROXY.format(
            vip=t.DA_VIP4, pki=state / "pki", b2=t.BACKEND4["vpn2"], name=t.DA_NAME
        ),
        "lb-nginx": IKE_NGINX.format(vip=t.VIP4, b1=t.BACKEND4["vpn1"], b2=t.BACKEND4["vpn2"]),
        "edge-nft": USER_EDGE_NFT,
        "lb-nft": USER_LB_NFT,
    }
    overrides = {}
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(text)
        overrides[name] = str(path)
    info = lab_up(load_scenario("healthy"), own_lab, overrides)
    assert info.da_addresses == (t.DA_VIP4, t.DA_VIP6)
    lab = Lab(own_lab)

    out = s_client(lab, cert="da-client")
    assert got_200(out) and "stand-in on vpn2" in out, out[-1500:]
    # HAProxy's default server preference picks the first suite of *its* list: NULL-SHA here.
    assert negotiated(out) == "NULL-SHA", out[-1500:]
    assert "alert handshake failure" in s_client(lab)

    # The IKE UDP LB is nginx now: the lab's own lb rules are gone, and a real client still gets through.
    tables = lab.run("lb", "nft", "list", "tables").stdout.split()
    assert tables == ["table", "inet", "user_lb"], tables
    client = LabClient(own_lab).start()
    try:
        result = client.initiate(timeout_s=15)
    finally:
        client.stop()
    assert result.established, result.output[-2000:]
    charon = lab.charon_log("vpn1") + lab.charon_log("vpn2")
    assert re.search(r"received packet: from 192\.0\.2\.(17|21)\[\d+\]", charon), "nginx relays, not DNAT"
    assert lab.counters("edge")["tls_in"] > 0

    status = lab_status(own_lab)
    assert status["overrides"] == overrides
    names = {p["name"] for p in status["processes"] if p["alive"]}
    assert {"adc-haproxy", "lb-nginx", "da-vpn1", "da-vpn2"} <= names


@pytest.mark.parametrize(
    ("name", "text", "complaint"),
    [
        ("adc-nginx", "events {}\nstream { server { listen 1.2.3.4:443; bogus_directive on; } }\n", "nginx"),
        ("adc-haproxy", "frontend x\n  bind :443 ssl crt /nonexistent.pem\n", "haproxy"),
        ("lb-nft", "table inet t { chain c { nonsense } }\n", "nft"),
        ("adc-nginx", "pid /tmp/x.pid;\nevents {}\n", "nginx"),
    ],
)
def test_bad_override_is_one_clear_error_and_leaves_nothing(
    own_lab: str, tmp_path: Path, name: str, text: str, complaint: str
) -> None:
    path = tmp_path / "bad.conf"
    path.write_text(text)
    with pytest.raises(LabError) as caught:
        lab_up(load_scenario("healthy"), own_lab, {name: str(path)})
    message = str(caught.value)
    assert "\n" not in message and f"override {name}" in message and f"rejected by {complaint}" in message
    assert existing_namespaces(own_lab) == []
    kept = STATE_ROOT / f"{own_lab}.failed"  # what lab_up keeps of a failed build, for the post-mortem
    assert (kept / "state.json").exists()
    shutil.rmtree(kept)


def test_cli_override_and_adc_line(own_lab: str, tmp_path: Path) -> None:
    import sys

    vpndoctor = [sys.executable, "-m", "vpndoctor"]
    bad = subprocess.run(
        [*vpndoctor, "lab", "up", "--prefix", own_lab, "--override", "adc-nginx"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "expected NAME=FILE" in bad.stderr and "Traceback" not in bad.stderr
    edge = tmp_path / "edge.nft"
    edge.write_text(USER_EDGE_NFT)
    up = subprocess.run(
        [*vpndoctor, "lab", "up", "--prefix", own_lab, "-s", "iphttps-adc-haproxy"]
        + ["--override", f"edge-nft={edge}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert up.returncode == 0, up.stderr
    assert f"{t.DA_NAME}  ->  {t.DA_VIP4}" in up.stdout
    lab = Lab(own_lab)
    assert got_200(s_client(lab, cert="da-client"))
    assert set(lab.counters("edge")) == {"tls_in"}, "the user's edge ruleset replaced the lab's"
