"""`vpndoctor scan` through the real command line against the scripted IKEv2 responder on loopback (the
lab tests meet real strongSwan): what each answer becomes, the rate cap, CSV, --resume after a torn line and
after Ctrl-C, and one-line usage errors."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.ike import responder
from vpndoctor.net.scan import default_burst

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schema" / "scan.json").read_text())


class UdpResponderThread(responder.UdpResponderThread):
    """The scripted responder, waiting on both sockets at once (the base class polls each in turn with a
    0.1 s timeout: about ten datagrams a second, too few for a scan)."""

    def _serve(self) -> None:
        import select

        while not self._stop.is_set():
            ready, _, _ = select.select(self.socks, [], [], 0.1)
            for s in ready:
                i = self.socks.index(s)
                try:
                    data, addr = s.recvfrom(65535)
                except OSError:
                    continue
                self.received += 1
                try:
                    replies = self.responder.handle(data, natt=i == 1)
                except Exception as exc:  # noqa: BLE001 - a test responder logs what it cannot handle
                    self.errors.append(repr(exc))
                    continue
                for r in replies:
                    s.sendto(b"\x00\x00\x00\x00" + r if i == 1 else r, addr)


def run(*args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpndoctor", "scan", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, COLUMNS="200"),
    )


def records(path: Path) -> list[dict[str, Any]]:
    out = [json.loads(line) for line in path.read_text().splitlines()]
    for r in out:
        jsonschema.validate(r, SCHEMA)
    return out


def targets_file(tmp_path: Path, n: int, address: str = "127.0.0.1") -> Path:
    path = tmp_path / "targets.txt"
    path.write_text("# the same responder, many times\n\n" + "".join(f"{address}  # n\n" for _ in range(n)))
    return path


@pytest.mark.parametrize(
    ("behaviour", "result", "extra"),
    [
        ("normal", "accepted", {"ke_group_requested": "MODP_2048", "cookie": False, "datagrams_sent": 1}),
        ("cookie", "accepted", {"ke_group_requested": "MODP_2048", "cookie": True, "datagrams_sent": 2}),
        ("no-proposal", "refused", {"error_notify": "NO_PROPOSAL_CHOSEN", "datagrams_sent": 1}),
        ("invalid-ke", "accepted", {"ke_group_requested": "ECP_256"}),
        ("garbage", "no-answer", {"responded": False, "datagrams_sent": 2}),
    ],
)
def test_answers_become_records(tmp_path: Path, behaviour: str, result: str, extra: dict[str, Any]) -> None:
    out = tmp_path / "out.jsonl"
    with UdpResponderThread(behaviour) as server:
        proc = run(f"@{targets_file(tmp_path, 20)}", "--port", str(server.port), "--output", str(out),
                   "--timeout-s", "1", "--retries", "1", "--rate", "0")  # fmt: skip
        assert not server.errors
    assert proc.returncode == (1 if result == "no-answer" else 0), proc.stderr
    assert proc.stderr == ""  # not a terminal: no progress
    got = records(out)
    assert len(got) == 20
    for r in got:
        assert r["result"] == result and r["target"] == "127.0.0.1" and r["port"] == server.port
        assert not r["left_half_open"]
        for key, value in extra.items():
            assert r[key] == value, (key, r)
    assert len({r["started_at"] for r in got}) >= 1


def test_rate_cap_counts_every_datagram(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    rate, n = 40, 60
    with UdpResponderThread("normal") as server:
        t0 = time.monotonic()
        proc = run(f"@{targets_file(tmp_path, n)}", "--port", str(server.port), "--output", str(out),
                   "--rate", str(rate))  # fmt: skip
        wall = time.monotonic() - t0
        received = server.received
    assert proc.returncode == 0, proc.stderr
    got = records(out)
    assert received == sum(r["datagrams_sent"] for r in got) >= n
    assert wall >= (received - default_burst(rate)) / rate


def test_csv_has_a_header_and_a_row_per_target(tmp_path: Path) -> None:
    with UdpResponderThread("normal") as server:
        proc = run("127.0.0.1", "127.0.0.1/32", "--port", str(server.port), "--csv")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["result"] for r in rows] == ["accepted", "accepted"]
    assert rows[0]["vendor_ids"] == "" and rows[0]["responded"] == "True"


def test_resume_cuts_a_torn_line_and_skips_done_targets(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with UdpResponderThread("normal") as server:
        assert run("127.0.0.8/30", "--port", str(server.port), "--output", str(out), "--timeout-s", "0.1",
                   "--retries", "0").returncode == 1  # fmt: skip
        first = records(out)
        assert {r["result"] for r in first} == {"no-answer"}  # nothing listens on 127.0.0.8-11
        out.write_text(out.read_text() + '{"target": "127.0.0.1", "addr')  # a run killed mid-line
        proc = run("127.0.0.8/30", "127.0.0.1", "--port", str(server.port), "--output", str(out), "--resume",
                   "--timeout-s", "0.1", "--retries", "0")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = records(out)
    assert [r["target"] for r in got] == [r["target"] for r in first] + ["127.0.0.1"]
    assert got[-1]["result"] == "accepted"


def test_ctrl_c_leaves_a_valid_resumable_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    args = ["127.0.0.0/26", "--port", "9", "--output", str(out), "--rate", "20", "--timeout-s", "0.1",
            "--retries", "0"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "vpndoctor", "scan", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stderr and len(stderr.strip().splitlines()) == 1
    first = records(out)
    assert 0 < len(first) < 64
    proc2 = run(*args[:-6], "--output", str(out), "--resume", "--rate", "0", "--timeout-s", "0.1",
                "--retries", "0")  # fmt: skip
    assert proc2.returncode == 1, proc2.stderr  # nothing listens: none answered
    targets = [r["target"] for r in records(out)]
    assert len(targets) == len(set(targets)) == 64


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no targets"),
        (["10.0.0.0/8"], "more than 65536 targets"),
        (["192.0.2.0/33"], "is not a CIDR"),
        (["bad name"], "not a host name or address"),
        (["@/nonexistent/list"], "cannot read /nonexistent/list"),
        (["192.0.2.1", "--rate", "-1"], "--rate must be"),
        (["192.0.2.1", "--concurrency", "0"], "--concurrency must be"),
        (["192.0.2.1", "--resume"], "--resume needs --output"),
        (["192.0.2.1", "--probe", "nmap"], "--probe nmap: expected ike or diagnose"),
        (["192.0.2.1", "--proposal", "aes999-md7"], "--proposal"),
        (["192.0.2.1", "--details", "--probe", "diagnose"], "--details goes with --probe ike"),
        (["2001:db8::/64"], "more than 65536 targets"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout == ""


def test_a_bad_line_in_a_file_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("192.0.2.1\n# fine\n198.51.100.0/24\nnot/a/cidr\n")
    proc = run("--file", str(path))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"vpndoctor: error: {path}:4: 'not/a/cidr' is not a CIDR (e.g. 192.0.2.0/24 or 2001:db8::/120)"
    )


def test_targets_expand_in_order_and_lazily(tmp_path: Path) -> None:
    from vpndoctor.cli.scan import Targets

    path = tmp_path / "t.txt"
    path.write_text("vpn.example.com  # a name stays a name\n\n[2001:db8::1]\n192.0.2.4/31\n")
    plan = Targets(["198.51.100.0/30", f"@{path}", "2001:DB8::A"], [], max_targets=100)
    assert plan.total == 4 + 1 + 1 + 2 + 1
    assert list(plan) == [
        "198.51.100.0", "198.51.100.1", "198.51.100.2", "198.51.100.3",
        "vpn.example.com", "2001:db8::1", "192.0.2.4", "192.0.2.5", "2001:db8::a",
    ]  # fmt: skip
    big = Targets(["10.0.0.0/16"], [], max_targets=65536)
    first = iter(big)
    assert next(first) == "10.0.0.0" and next(first) == "10.0.0.1"  # no list of 65,536 made first


def test_names_resolve_ahead_and_an_unknown_one_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "names.txt"
    path.write_text("nosuch1.invalid\nlocalhost\nnosuch2.invalid\n")
    out = tmp_path / "out.jsonl"
    with UdpResponderThread("normal") as server:
        proc = run(f"@{path}", "--port", str(server.port), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    got = {r["target"]: r for r in records(out)}
    assert got["localhost"]["result"] == "accepted" and got["localhost"]["address"] == "127.0.0.1"
    for name in ("nosuch1.invalid", "nosuch2.invalid"):
        assert got[name]["result"] == "unresolved" and got[name]["address"] is None
        assert got[name]["error"].startswith(f"cannot resolve {name}")
