"""The KEMP output is a shell script of LoadMaster API calls: run it for real (sh, curl) against a stand-in
LoadMaster on loopback that records each request, and check the calls it makes - port following asks the
appliance for the UDP 500 service's Index and passes it as FollowVSID."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from vpndoctor.configgen import generate
from vpndoctor.configgen.model import Deployment

INDEX = 17  # what the stand-in answers for showvs


class _Recorder(BaseHTTPRequestHandler):
    calls: list[tuple[str, dict[str, str]]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        type(self).calls.append((parts.path, query))
        data = f'<Response stat="200" code="ok"><Success><Data><Index>{INDEX}</Index>'.encode()
        data += b"</Data></Success></Response>"
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


@pytest.fixture
def loadmaster(pki: Path) -> Iterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
    _Recorder.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "cert.pem", pki / "key.pem")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", _Recorder.calls
    finally:
        server.shutdown()
        server.server_close()


def test_kemp_script_runs(deployment: Deployment, tmp_path: Path, loadmaster: tuple[str, list]) -> None:
    if shutil.which("curl") is None or shutil.which("sh") is None:
        pytest.skip("needs sh and curl")
    address, calls = loadmaster
    script = tmp_path / "kemp.sh"
    script.write_text(generate("kemp", deployment))
    env = {**os.environ, "KEMP": address, "KEMP_USER": "bal", "KEMP_PASSWORD": "secret"}
    proc = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert all(path.startswith("/access/") for path, _ in calls)
    commands = [path.removeprefix("/access/") for path, _ in calls]
    assert {"addvs", "modvs", "addrs", "showvs", "modifycipherset"} <= set(commands)
    follow = [q for p, q in calls if p == "/access/modvs" and "FollowVSID" in q]
    assert [(q["vs"], q["port"], q["FollowVSID"]) for q in follow] == [
        ("203.0.113.10", "4500", str(INDEX)),
        ("2001:db8:113::10", "4500", str(INDEX)),
    ]
    looked_up = [q for p, q in calls if p == "/access/showvs"]
    assert [(q["vs"], q["port"], q["prot"]) for q in looked_up] == [
        ("203.0.113.10", "500", "udp"),
        ("2001:db8:113::10", "500", "udp"),
    ]
    reencrypt = [q for p, q in calls if p == "/access/modvs" and q.get("SSLReencrypt") == "1"]
    assert reencrypt and reencrypt[0]["vs"] == "203.0.113.11" and reencrypt[0]["CipherSet"] == "IPHTTPS_NULL"
    # every real server of every service, with the service's port
    assert sum(1 for p, _ in calls if p == "/access/addrs") == 2 * (1 + 2 * 2 + 2)


def test_kemp_script_refuses_without_address(deployment: Deployment, tmp_path: Path) -> None:
    script = tmp_path / "kemp.sh"
    script.write_text(generate("kemp", deployment))
    env = {k: v for k, v in os.environ.items() if k != "KEMP"}
    proc = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "set KEMP" in proc.stderr
