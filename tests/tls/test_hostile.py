"""`vpndoctor tls` against hostile or broken servers on loopback: each ends in a clear one-line error for the
endpoint, within the deadline, without a traceback, with the right exit code. Also SSLv3 detection against a
minimal SSLv3 server (Debian's OpenSSL has no SSLv3 at all, so no real daemon here can accept it)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives import serialization

from tests.tls.openssl_server import free_port, make_pki
from tests.tls.servers import Handler, HostileServer, big_certificate, tls12_certificate_server
from vpndoctor.checks.tls import judge
from vpndoctor.probes.tls_audit import AuditRequest, audit
from vpndoctor.tls.hello import HandshakeType, parse_client_hello
from vpndoctor.tls.records import RecordBuffer

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schema" / "tls.json").read_text())


def vpndoctor_tls(*args: str, timeout_s: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "vpndoctor", "tls", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "COLUMNS": "200"},
    )
    return proc, time.monotonic() - t0


def serve(handler: Handler) -> Iterator[HostileServer]:
    server = HostileServer(handler)
    try:
        yield server
    finally:
        server.stop()


async def _read_hello(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(5)
    return header + await reader.readexactly(int.from_bytes(header[3:5], "big"))


def _rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_hello(reader)
    writer.write(b"\x00\x01\x02 this is not TLS \xff" * 20)
    await writer.drain()
    await asyncio.sleep(5)


async def reset_mid_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_hello(reader)
    writer.write(b"\x16\x03\x03\x00\x4a\x02\x00\x00\x46\x03\x03" + b"\x11" * 10)  # a ServerHello, cut short
    await writer.drain()
    await asyncio.sleep(0.05)
    _rst(writer)


async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_hello(reader)
    await asyncio.sleep(60)


async def oversized_record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _read_hello(reader)
    writer.write(b"\x16\x03\x03\xff\xff" + b"\x00" * 4096)  # a 65535-byte record: beyond 2^14 + 2048
    await writer.drain()
    await asyncio.sleep(5)


async def endless_handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Well-formed records of one ServerHello that claims 200 KB and never ends: the byte cap must stop it.
    await _read_hello(reader)
    writer.write(b"\x16\x03\x03\x40\x00" + b"\x02\x03\x0d\x40" + b"\x00" * (0x4000 - 4))
    for _ in range(40):
        writer.write(b"\x16\x03\x03\x40\x00" + b"\x00" * 0x4000)
        await writer.drain()
    await asyncio.sleep(5)


async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(4096)
    writer.write(
        b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()


async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(4096)
    writer.close()


CASES = {
    # name: (handler, exit code, words in the one-line error)
    "garbage": (garbage, 1, "not well-formed TLS"),
    "reset": (reset_mid_handshake, 1, "reset"),
    "stall": (stall, 3, "stays silent"),
    "oversized-record": (oversized_record, 1, "not well-formed TLS"),
    "endless-handshake": (endless_handshake, 1, "no TLS"),
    "http": (http, 1, "speaks another protocol, not TLS: 'HTTP/1.1 400 Bad Request'"),
    "close": (close_at_once, 1, "closed every connection"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_server_gives_one_clear_line(case: str) -> None:
    handler, code, words = CASES[case]
    for server in serve(handler):
        proc, elapsed = vpndoctor_tls(f"127.0.0.1:{server.port}", "--timeout-s", "2", "--json")
        assert proc.returncode == code, proc.stderr
        assert "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], proc.stderr
        report = json.loads(proc.stdout)
        jsonschema.validate(report, SCHEMA)
        assert report["error"] and words in report["error"]
        assert report["findings"][0]["id"] == "tls.reachable" and report["findings"][0]["status"] == "fail"
        assert all(f["status"] == "skip" for f in report["findings"][1:])
        assert not any(report["versions"].values())
        # within the deadline (plus interpreter start-up on a busy machine)
        assert report["duration_s"] < 3.0 and elapsed < 2 + 10


def test_stall_respects_a_short_deadline_in_terminal_mode() -> None:
    for server in serve(stall):
        proc, _ = vpndoctor_tls(f"127.0.0.1:{server.port}", "--timeout-s", "0.5")
        assert proc.returncode == 3 and "Traceback" not in proc.stderr
        assert "stays silent" in proc.stdout and "stays silent" in proc.stderr


def test_refused_port_is_unreachable() -> None:
    port = free_port()
    proc, _ = vpndoctor_tls(f"127.0.0.1:{port}", "--json", "--timeout-s", "3")
    assert proc.returncode == 3, proc.stderr
    assert "connection refused" in proc.stderr and "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert report["error"].startswith("unreachable") and report["jobs"]["connections"] == 0


def test_ipv6_literal_refused() -> None:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            port = s.getsockname()[1]
    except OSError:
        pytest.skip("no IPv6 loopback")
    proc, _ = vpndoctor_tls(f"[::1]:{port}", "--json", "--timeout-s", "3")
    assert proc.returncode == 3 and json.loads(proc.stdout)["address"] == "::1"


# ------------------------------------------------------------------------------------- SSLv3


def sslv3_server(cert_der: bytes) -> Handler:
    """Answers an SSLv3 ClientHello like an SSLv3-only server of old: ServerHello (0x0300) with the first
    offered suite it knows, Certificate, ServerHelloDone; anything else gets a protocol_version alert."""
    mine = [0x000A, 0x002F]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        events = RecordBuffer().feed(await _read_hello(reader))
        hello = parse_client_hello(events[0].body)  # type: ignore[union-attr]
        if hello.legacy_version != 0x0300:
            writer.write(b"\x15\x03\x00\x00\x02\x02\x46")
            await writer.drain()
            return
        pick = next((s for s in hello.cipher_suites if s in mine), None)
        if pick is None:
            writer.write(b"\x15\x03\x00\x00\x02\x02\x28")
            await writer.drain()
            return
        sh = b"\x03\x00" + b"\x42" * 32 + b"\x00" + pick.to_bytes(2, "big") + b"\x00"
        cert = len(cert_der).to_bytes(3, "big") + cert_der
        cert = len(cert).to_bytes(3, "big") + cert
        msgs = b"".join(
            bytes([t]) + len(b).to_bytes(3, "big") + b
            for t, b in (
                (HandshakeType.SERVER_HELLO, sh),
                (HandshakeType.CERTIFICATE, cert),
                (HandshakeType.SERVER_HELLO_DONE, b""),
            )
        )
        writer.write(b"\x16\x03\x00" + len(msgs).to_bytes(2, "big") + msgs)
        await writer.drain()
        await asyncio.sleep(0.5)

    return handler


def test_sslv3_server_is_detected(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    from cryptography import x509

    der = x509.load_pem_x509_certificate(pki.cert_pem.read_bytes()).public_bytes(serialization.Encoding.DER)
    for server in serve(sslv3_server(der)):
        proc, _ = vpndoctor_tls(
            f"127.0.0.1:{server.port}", "--json", "--timeout-s", "5", "--sni", "sstp.test"
        )
        assert proc.returncode == 1, proc.stderr
        report = json.loads(proc.stdout)
        jsonschema.validate(report, SCHEMA)
        assert report["versions"] == {
            "SSLv3": True,
            "TLSv1.0": False,
            "TLSv1.1": False,
            "TLSv1.2": False,
            "TLSv1.3": False,
        }
        assert set(report["suites"]["SSLv3"]) == {
            "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
            "TLS_RSA_WITH_AES_128_CBC_SHA",
        }
        status = {f["id"]: f["status"] for f in report["findings"]}
        assert status["tls.protocol.sslv3"] == "fail" and status["tls.protocol.tls12"] == "fail"
        assert status["tls.suites.weak"] == "warn"  # 3DES
        assert (
            report["certificate"]["subject"] == "CN=sstp.test,C=DE"
            and report["certificate"]["seen_in"] == "SSLv3"
        )
        assert "tls.protocol.sslv3" in report["verdict"]["root_causes"]


def test_deadline_leaves_later_jobs_not_scheduled() -> None:
    # One connection at a time to a server that never answers: the first job holds the only slot until the
    # total deadline, so the rest of the plan is reported NOT_SCHEDULED, not silently dropped.
    for server in serve(stall):
        proc, _ = vpndoctor_tls(
            f"127.0.0.1:{server.port}", "--timeout-s", "1", "--concurrency", "1", "--json"
        )
        report = json.loads(proc.stdout)
        assert proc.returncode == 3 and not report["complete"]
        assert report["jobs"]["not_scheduled"] >= 5 and report["jobs"]["error"] >= 1
        assert report["jobs"]["max_concurrent"] == 1 and report["duration_s"] < 2.0
        reasons = {e["status"] for e in report["errors"]}
        assert reasons == {"error", "not_scheduled"}
        assert server.connections == 1


# ------------------------------------------------------------------------------ oversized certificates


def test_certificate_past_the_cap_makes_the_audit_incomplete_not_healthy(tmp_path: Path) -> None:
    # A 200 KB certificate extension: the TLS 1.2 answer passes the 128 KiB cap on a first flight, so TLS
    # 1.2 and every tls.certificate.* check are unknown. Nothing else fails: it used to be "healthy", exit 0.
    der = big_certificate(200_000, tmp_path)
    for server in serve(tls12_certificate_server(der)):
        proc, _ = vpndoctor_tls(f"127.0.0.1:{server.port}", "--json", "--timeout-s", "10")
        report = json.loads(proc.stdout)
        jsonschema.validate(report, SCHEMA)
        assert proc.returncode == 1, report["verdict"]
        assert report["verdict"]["status"] == "problems" and not report["complete"]
        assert report["verdict"]["root_causes"] == ["tls.audit.complete"]
        finding = next(f for f in report["findings"] if f["id"] == "tls.audit.complete")
        assert finding["status"] == "fail" and finding["remedy"]
        assert "131072-byte cap" in finding["detail"] and "131072 bytes read" in finding["detail"]
        first = finding["evidence"]["oversized"][0]
        assert finding["evidence"]["answer_cap_bytes"] == 131072 == first["bytes_read"]
        assert first["version"] == "TLSv1.2" and first["message"] == "certificate"
        assert first["announced_bytes"] > 200_000
        assert "the server certificate" in finding["detail"] and report["certificate"] is None


def test_large_certificate_on_every_hello_stays_small_in_memory(tmp_path: Path) -> None:
    # 100 KB certificate (under the cap) sent to each of ~250 hellos, 8 connections at a time: the audit's
    # memory must not grow with the number of answers. It peaked at ~126 MB (tracemalloc; ~200 MB RSS):
    # a copy of the chain in every hello result, and asyncio formatting the repr of the whole observation
    # when asyncio.run() ended. Bounds are loose: a few MB are expected either way.
    der = big_certificate(100_000, tmp_path)
    for server in serve(tls12_certificate_server(der)):
        tracemalloc.start()
        try:
            obs = audit(AuditRequest(f"127.0.0.1:{server.port}", timeout_s=30))
            kept, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert len(obs.results) >= 200 and obs.facts.certificates == (der,)
        assert peak < 32_000_000, f"peak {peak / 1e6:.1f} MB"
        assert kept < 10_000_000, f"kept {kept / 1e6:.1f} MB"
        report = judge(obs)
        assert report.complete and report.certificate is not None
        assert next(f for f in report.findings if f.id == "tls.audit.complete").status == "pass"
