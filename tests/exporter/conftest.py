"""A real `vpndoctor exporter` process on loopback, and small real peers for it to probe: a UDP listener
that records what reaches it, and a tiny DNS server whose answers a test scripts (dnspython's codec)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.rdatatype
import dns.rrset
import pytest
import yaml


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class Answer:
    status: int
    body: str
    headers: dict[str, str]
    seconds: float


@dataclass
class Exporter:
    proc: subprocess.Popen[bytes]
    port: int
    config: Path
    log: Path
    scheme: str = "http"
    context: ssl.SSLContext | None = None

    def get(
        self, path: str, *, method: str = "GET", headers: dict[str, str] | None = None, timeout_s: float = 30
    ) -> Answer:
        req = urllib.request.Request(
            f"{self.scheme}://127.0.0.1:{self.port}{path}", method=method, headers=headers or {}
        )
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=timeout_s, context=self.context) as resp:
                body, status, hdrs = resp.read().decode(), resp.status, dict(resp.headers)
        except urllib.error.HTTPError as exc:
            body, status, hdrs = exc.read().decode(), exc.code, dict(exc.headers)
        return Answer(status, body, hdrs, time.monotonic() - t0)

    def metric(self, name: str, **labels: str) -> float:
        """One sample of the exporter's own /metrics (0 when the series does not exist yet)."""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        series = f"{name}{{{want}}}" if want else name
        for line in self.get("/metrics").body.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return 0.0

    def stop(self) -> str:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.log.read_text(errors="replace")


def start_exporter(
    tmp_path: Path,
    config: dict[str, object],
    *extra: str,
    scheme: str = "http",
    context: ssl.SSLContext | None = None,
    ready_headers: dict[str, str] | None = None,
) -> Exporter:
    path = tmp_path / "exporter.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp_path / "exporter.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vpndoctor",
                "exporter",
                "--config",
                str(path),
                "--listen",
                f"127.0.0.1:{port}",
                *extra,
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    exp = Exporter(proc, port, path, log, scheme, context)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"the exporter exited: {log.read_text()}")
        with contextlib.suppress(OSError):
            if exp.get("/-/healthy", headers=ready_headers, timeout_s=5).status == 200:
                return exp
        time.sleep(0.2)
    exp.stop()
    pytest.fail("the exporter did not come up within 60 s")


@pytest.fixture
def exporter_factory(tmp_path: Path) -> Iterator[object]:
    started: list[Exporter] = []

    def make(config: dict[str, object], *extra: str, **kw: object) -> Exporter:
        exp = start_exporter(tmp_path, config, *extra, **kw)  # type: ignore[arg-type]
        started.append(exp)
        return exp

    yield make
    for exp in started:
        text = exp.stop()
        assert "Traceback" not in text, text


class UdpSink:
    """A UDP socket that records every datagram (a gateway that never answers)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.received: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.received.append((peer[0], len(data)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@dataclass
class ScriptedDns:
    """A DNS server on loopback: the n-th A query for a name gets script[name][min(n, last)]; AAAA is
    empty."""

    script: dict[str, list[list[str]]]
    queries: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def a_queries(self, name: str) -> int:
        return sum(1 for n, t in self.queries if n == name and t == "A")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(wire)
            q = query.question[0]
            name = q.name.to_text(omit_final_dot=True)
            rtype = dns.rdatatype.to_text(q.rdtype)
            seen = self.a_queries(name)
            self.queries.append((name, rtype))
            response = dns.message.make_response(query)
            if rtype == "A" and name in self.script:
                answers = self.script[name][min(seen, len(self.script[name]) - 1)]
                if answers:
                    response.answer.append(dns.rrset.from_text_list(q.name, 0, "IN", "A", answers))
            self.sock.sendto(response.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
