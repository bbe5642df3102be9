"""TCP 443 flow summaries on a real capture: tcpdump on the loopback of a private network namespace while
openssl s_client talks to openssl s_server (TLS 1.3 with SNI, TLS 1.2 with a NULL suite), a cleartext SSTP
and IP-HTTPS request line, and a refused connection; checked against tshark's dissection of the same file."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vpndoctor.capture.analysis import analyse
from vpndoctor.capture.model import CaptureReport, TcpFlow
from vpndoctor.tls.suites import name_of as suite_name

# Root and a namespace of its own: a lab test (skipped without root outside CI, a failure in CI).
pytestmark = pytest.mark.lab

NS = f"{os.environ.get('VPNDOCTOR_TEST_PREFIX', 'vdt')}-tcpcap"
SSTP_LINE = "SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1"
IPHTTPS_LINE = "POST /IPHTTPS HTTP/1.1"
NULL_SUITE = "NULL-SHA256:@SECLEVEL=0"


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (a private network namespace and tcpdump)"
    for tool in ("ip", "tcpdump", "openssl", "tshark"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (scripts/install-deps.sh installs it)"
    return None


def ns(*cmd: str) -> list[str]:
    return ["ip", "netns", "exec", NS, *cmd]


def wait_for_line(proc: subprocess.Popen[bytes], stream: str, needle: bytes, timeout_s: float) -> None:
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    deadline = time.monotonic() + timeout_s
    seen = b""
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} never printed {needle!r}: {seen[-300:]!r}")
        ready, _, _ = select.select([pipe], [], [], left)
        if ready:
            seen += os.read(pipe.fileno(), 4096)


def tls_session(workdir: Path, server_args: list[str], client_args: list[str]) -> None:
    server = subprocess.Popen(
        ns("openssl", "s_server", "-accept", "443", "-naccept", "1", "-cert", str(workdir / "cert.pem"),
           "-key", str(workdir / "key.pem"), *server_args),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_line(server, "stdout", b"ACCEPT", 20)
        client = subprocess.run(
            ns("openssl", "s_client", "-connect", "127.0.0.1:443", *client_args),
            input=b"hello through the tunnel\n", capture_output=True, timeout=30,
        )  # fmt: skip
        assert b"Cipher is" in client.stdout or b"Cipher    :" in client.stdout, client.stdout[-500:]
        server.wait(timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


CLEAR_TEXT = r"""
import socket, sys, threading
line, answer = sys.argv[1].encode(), sys.argv[2].encode()
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 443)); srv.listen(1); srv.settimeout(20)
def serve():
    conn, _ = srv.accept(); conn.settimeout(20)
    conn.recv(4096); conn.sendall(answer + b"\r\nContent-Length: 0\r\n\r\n"); conn.close()
t = threading.Thread(target=serve); t.start()
c = socket.create_connection(("127.0.0.1", 443), timeout=20)
c.sendall(line + b"\r\nHost: vpn.example.test\r\nContent-Length: 18446744073709551615\r\n\r\n")
c.recv(4096); c.close(); t.join(20)
"""

REFUSED = r"""
import socket
try:
    socket.create_connection(("127.0.0.1", 443), timeout=5)
except ConnectionRefusedError:
    pass
"""


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = _missing()
    if reason:  # the lab marker already skipped without root; a missing tool is a broken install
        pytest.fail(reason)
    workdir = tmp_path_factory.mktemp("tcpcap")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=vpn.example.test", "-keyout", str(workdir / "key.pem"), "-out", str(workdir / "cert.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    subprocess.run(["ip", "netns", "del", NS], capture_output=True, timeout=10)
    subprocess.run(["ip", "netns", "add", NS], check=True, capture_output=True, timeout=10)
    pcap = workdir / "tls.pcap"
    dump: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(ns("ip", "link", "set", "lo", "up"), check=True, timeout=10)
        dump = subprocess.Popen(
            ns("tcpdump", "-i", "lo", "--immediate-mode", "-U", "-n", "-w", str(pcap), "tcp port 443"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        wait_for_line(dump, "stderr", b"listening on", 20)
        tls_session(workdir, ["-tls1_3"], ["-tls1_3", "-servername", "vpn.example.test"])
        tls_session(
            workdir,
            ["-tls1_2", "-cipher", NULL_SUITE],
            ["-tls1_2", "-cipher", NULL_SUITE, "-servername", "null.example.test"],
        )
        for line, answer in ((SSTP_LINE, "HTTP/1.1 200 OK"), (IPHTTPS_LINE, "HTTP/1.1 200 OK")):
            subprocess.run(ns(sys.executable, "-c", CLEAR_TEXT, line, answer), check=True, timeout=60)
        subprocess.run(ns(sys.executable, "-c", REFUSED), check=True, timeout=30)
        time.sleep(1.0)  # let tcpdump write the last packets (immediate mode, -U flushes per packet)
    finally:
        if dump is not None:
            dump.send_signal(signal.SIGINT)
            try:
                dump.wait(timeout=10)
            except subprocess.TimeoutExpired:
                dump.kill()
                dump.wait()
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, timeout=10)
    yield pcap


def tshark(pcap: Path, display_filter: str, *fields: str) -> list[list[str]]:
    args = ["tshark", "-r", str(pcap), "-Y", display_filter, "-T", "fields"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.fixture(scope="module")
def report(capture: Path) -> CaptureReport:
    return analyse(capture, name="tls.pcap")


def by_client_port(report: CaptureReport) -> dict[int, TcpFlow]:
    return {int(f.client.rsplit(":", 1)[1]): f for f in report.tcp_flows}


def test_flows_and_counts_match_tshark(capture: Path, report: CaptureReport) -> None:
    flows = by_client_port(report)
    assert len(flows) == 5 and all(f.server == "127.0.0.1:443" for f in flows.values())
    counts: dict[tuple[int, bool], list[int]] = {}
    for sport, dport, length in tshark(capture, "tcp", "tcp.srcport", "tcp.dstport", "tcp.len"):
        to_server = dport == "443"
        client = int(sport if to_server else dport)
        c = counts.setdefault((client, to_server), [0, 0])
        c[0] += 1
        c[1] += int(length)
    for port, flow in flows.items():
        assert [flow.packets_to_server, flow.bytes_to_server] == counts[(port, True)]
        assert [flow.packets_to_client, flow.bytes_to_client] == counts[(port, False)]
        assert flow.syn_seen
    assert report.packets_by_kind == {"tcp_443": report.packets}


def test_client_hellos_match_tshark(capture: Path, report: CaptureReport) -> None:
    flows = by_client_port(report)
    rows = tshark(
        capture, "tls.handshake.type == 1", "tcp.srcport", "tls.handshake.extensions_server_name",
        "tls.handshake.extensions.supported_version", "tls.handshake.version",
    )  # fmt: skip
    assert len(rows) == 2
    for port, sni, versions, legacy in rows:
        flow = flows[int(port)]
        assert flow.protocol == "tls" and flow.sni == sni
        names = {"0x0304": "TLS 1.3", "0x0303": "TLS 1.2", "0x0302": "TLS 1.1", "0x0301": "TLS 1.0"}
        # without supported_versions (a TLS 1.2-only client) the hello's own version is what it offers
        assert flow.offered_versions == [names[v] for v in (versions or legacy).split(",")]
    assert {f.sni for f in flows.values()} >= {"vpn.example.test", "null.example.test"}


def test_server_hellos_match_tshark(capture: Path, report: CaptureReport) -> None:
    flows = by_client_port(report)
    rows = tshark(
        capture, "tls.handshake.type == 2", "tcp.dstport", "tls.handshake.ciphersuite",
        "tls.handshake.extensions.supported_version", "tls.handshake.version",
    )  # fmt: skip
    assert len(rows) == 2
    seen = set()
    for port, suite, supported, legacy in rows:
        flow = flows[int(port)]
        assert flow.cipher_suite == suite_name(int(suite, 16))
        version = supported or legacy
        assert flow.version == {"0x0304": "TLS 1.3", "0x0303": "TLS 1.2"}[version]
        seen.add((flow.version, flow.cipher_suite))
        assert flow.http_request is None and flow.tunnel is None and flow.notes == []
    assert ("TLS 1.2", "TLS_RSA_WITH_NULL_SHA256") in seen
    assert any(v == "TLS 1.3" for v, _ in seen)


def test_cleartext_request_lines(report: CaptureReport) -> None:
    clear = [f for f in report.tcp_flows if f.protocol == "http"]
    assert [(f.http_request, f.tunnel, f.http_response) for f in clear] == [
        (SSTP_LINE, "sstp", "HTTP/1.1 200 OK"),
        (IPHTTPS_LINE, "ip-https", "HTTP/1.1 200 OK"),
    ]


def test_refused_connection_shows_the_reset(report: CaptureReport) -> None:
    last = report.tcp_flows[-1]
    assert last.protocol is None and last.resets_by_server == 1 and last.packets_to_client == 1
    assert last.packets_to_server == 1 and last.bytes_to_server == last.bytes_to_client == 0


def test_cli_json_has_tcp_flows(capture: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vpndoctor", "capture", "--json", str(capture)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert '"tunnel":"sstp"' in proc.stdout


def test_terminal_table(report: CaptureReport) -> None:
    from rich.console import Console

    from vpndoctor.report.capture_tcp import render_tcp_flows

    console = Console(record=True, width=250)
    render_tcp_flows(report, console)
    text = console.export_text()
    assert "TCP 443 flows (5)" in text
    assert "SNI vpn.example.test, offers TLS 1.3 -> TLS 1.3" in text
    assert "TLS_RSA_WITH_NULL_SHA256" in text
    assert f'SSTP "{SSTP_LINE}" -> "HTTP/1.1 200 OK"' in text
    assert "IP-HTTPS" in text and "reset by server x1" in text
