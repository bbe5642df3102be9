"""`vpndoctor ike` end to end on loopback against the scripted responder: exit codes, JSON that matches
the schema kept in the repo, hostile servers ending in a typed outcome within the deadline, and bad input
ending in one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from tests.ike.responder import UdpResponderThread
from vpndoctor.ike import initiator as ini

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schema" / "ike.json"
CLI = [sys.executable, "-m", "vpndoctor", "ike"]


def run(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL
    )


def probe(server: UdpResponderThread, *extra: str) -> tuple[int, dict[str, object], float]:
    start = time.monotonic()
    proc = run(
        "127.0.0.1", "--port", str(server.port), "--natt-port", str(server.natt_port), "--json", *extra
    )
    elapsed = time.monotonic() - start
    assert "Traceback" not in proc.stderr, proc.stderr
    obs = json.loads(proc.stdout)
    jsonschema.validate(obs, json.loads(SCHEMA_PATH.read_text()))
    return proc.returncode, obs, elapsed


def test_normal_server_exit_0_and_schema_valid() -> None:
    with UdpResponderThread("normal") as server:
        code, obs, _ = probe(server)
    assert code == 0
    assert obs["reached"] == "IKE_AUTH" and obs["auth_verified"] is True and obs["eap_type"] == "MSCHAPV2"
    assert obs["idr"] == "hostile.test"
    assert obs["round_trips"] == 4
    assert [d["dir"] for d in obs["datagrams"]][:2] == ["out", "in"]


def test_terminal_output() -> None:
    with UdpResponderThread("normal") as server:
        proc = run("127.0.0.1", "--port", str(server.port), "--natt-port", str(server.natt_port))
    assert proc.returncode == 0
    assert (
        "reached IKE_AUTH" in proc.stdout
        and "MSCHAPV2" in proc.stdout
        and "IKE_SA_INIT request 0" in proc.stdout
    )


def test_error_notify_exit_1() -> None:
    with UdpResponderThread("no-proposal") as server:
        code, obs, _ = probe(server)
    assert code == 1 and obs["error_notify"] == "NO_PROPOSAL_CHOSEN"


def test_no_server_exit_3_within_deadline() -> None:
    with UdpResponderThread("normal") as server:
        port = server.port
    # The server is gone: nothing answers (ICMP port unreachable on loopback, or silence).
    start = time.monotonic()
    proc = run("127.0.0.1", "--port", str(port), "--natt-port", str(port + 1), "--json", "--timeout-s", "3")
    assert time.monotonic() - start < 10
    assert proc.returncode == 3, proc.stderr
    assert json.loads(proc.stdout)["timeout_exchange"] == "IKE_SA_INIT"


@pytest.mark.parametrize(
    "behaviour",
    ["truncated", "bad-lengths", "wrong-spi", "garbage", "oversized", "silent-auth", "endless-fragments"],
)
def test_hostile_server(behaviour: str) -> None:
    with UdpResponderThread(behaviour) as server:
        code, obs, elapsed = probe(server, "--timeout-s", "3")
    assert elapsed < 10, "the deadline holds whatever the server does"
    assert code in (1, 3), obs
    assert obs["reached"] != "IKE_AUTH"
    assert obs["timeout_exchange"] or obs["peer_error"], obs
    assert len(obs["datagrams"]) <= 2000


def test_flood_transcript_is_bounded_in_json_and_terminal() -> None:
    # A peer answering each datagram with 2,000 different garbage datagrams: the probe stops at its deadline,
    # and what it keeps and prints is bounded too (it printed ~1,500-2,000 rows, taking the run 1.5-2 s past
    # the deadline). Rows, not seconds, are asserted: interpreter start-up alone takes up to a second here.
    with UdpResponderThread("flood") as server:
        code, obs, _ = probe(server, "--timeout-s", "3")
        proc = run(
            "127.0.0.1", "--port", str(server.port), "--natt-port", str(server.natt_port), "--timeout-s", "3"
        )
    assert code == 3 and obs["timeout_exchange"] == "IKE_SA_INIT"
    rows = obs["datagrams"]
    assert isinstance(rows, list) and len(rows) <= 200
    assert [d["dir"] for d in rows[:2]] == ["out", "in"]  # the checks read the first request and answer
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    ladder = [line for line in proc.stdout.splitlines() if " <- " in line or " -> " in line]
    assert 2 <= len(ladder) <= 200
    assert "more datagrams, not kept in the transcript" in proc.stdout
    assert isinstance(obs["datagrams_dropped"], int) and obs["datagrams_dropped"] > 0
    assert len(rows) <= ini.MAX_TRANSCRIPT
    assert sum(1 for d in rows if "ignored" in d["summary"]) <= ini.MAX_IGNORED_ROWS


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["127.0.0.1", "--proposal", "aes256-md4-modp2048"], "unknown algorithm 'md4'"),
        (["127.0.0.1", "--proposal", "aes256-sha256-modp2048", "--group", "19"], "--group 19"),
        (["127.0.0.1", "--ca", "/nonexistent/ca.pem"], "cannot read CA file"),
        (["127.0.0.1", "--timeout-s", "0"], "--timeout-s"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], expected: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_not_a_certificate(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("hello")
    proc = run("127.0.0.1", "--ca", str(bad))
    assert proc.returncode == 2 and "not a PEM or DER certificate" in proc.stderr
