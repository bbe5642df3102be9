"""`vpndoctor capture` through the real command line: JSON valid against schema/capture.json, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = Path(os.environ.get("VPNDOCTOR_SHARED", ROOT.parent / "shared")) / "captures" / "public"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpndoctor", "capture", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("name", ["ikev2four.pcap", "ikev2_nat_t.pcapng", "espudp1.pcap"])
def test_json_matches_schema(name: str) -> None:
    path = PUBLIC / name
    if not path.exists():
        pytest.skip(f"shared captures not found at {PUBLIC}")
    proc = run(str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, json.loads((ROOT / "schema" / "capture.json").read_text()))
    assert report["packets"] > 0


def test_terminal_output() -> None:
    path = PUBLIC / "ikev2four.pcap"
    if not path.exists():
        pytest.skip(f"shared captures not found at {PUBLIC}")
    proc = run(str(path))
    assert proc.returncode == 0 and "IKE_SA_INIT request 0" in proc.stdout and "verdict" in proc.stdout


def test_unreadable_file_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x00" * 100)
    for args in ([str(bad)], [str(tmp_path / "missing.pcap")]):
        proc = run(*args)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_big_file_without_the_c_walk_says_so(tmp_path: Path) -> None:
    """An installation built without a compiler reads at Python speed: a big capture gets a one-line note on
    stderr (and the same report); a small one, or one read with the C walk, gets none."""
    big = tmp_path / "big.pcap"
    with open(big, "wb") as f:  # a valid, empty pcap padded out to the size where the note starts
        f.write(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    small = tmp_path / "small.pcap"
    small.write_bytes(big.read_bytes())
    code = (
        "import sys; from vpndoctor.capture import fastpath; fastpath.native = None;"
        "fastpath.PARALLEL_MIN_BYTES = 30; sys.argv = ['vpndoctor', 'capture', '--json', sys.argv[1]];"
        "from vpndoctor.cli import main; main()"
    )
    with open(big, "ab") as f:
        f.write(bytes(16))  # one empty record: 40 bytes in all
    for path, noted in ((big, True), (small, False)):
        proc = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        assert ("C record walk is not built" in proc.stderr) is noted, proc.stderr
        assert json.loads(proc.stdout)["packets"] == (1 if noted else 0)
    proc = run(str(big), "--json")  # with the C walk: no note
    assert proc.returncode == 0 and "not built" not in proc.stderr


def test_read_error_is_one_line_exit_2() -> None:
    # /proc/self/mem opens but every read at offset 0 fails with EIO: an error during reading, not opening.
    if not Path("/proc/self/mem").exists():
        pytest.skip("no /proc")
    proc = run("/proc/self/mem")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "vpndoctor: error: cannot read the capture at byte 0: Input/output error" in proc.stderr


def test_fifo_without_a_writer_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "vpndoctor", "capture", str(fifo)],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("capture of a FIFO with no writer still blocked after 60 s")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "no writer" in proc.stderr


def test_fifo_with_a_writer_is_read(tmp_path: Path) -> None:
    path = PUBLIC / "ikev2four.pcap"
    if not path.exists():
        pytest.skip(f"shared captures not found at {PUBLIC}")
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)
    with subprocess.Popen(  # the usual order: the writer (tcpdump -w) first, blocked until we open
        ["sh", "-c", 'cat "$1" > "$2"', "sh", str(path), str(fifo)]
    ) as writer:
        proc = run(str(fifo), "--json")
        writer.wait(30)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["packets"] == json.loads(run(str(path), "--json").stdout)["packets"]


def test_gzip_bomb_is_one_line_exit_2(tmp_path: Path) -> None:
    import zlib

    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # 4 M empty pcap records, 64 MiB from about 62 KiB
    header = bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")
    bomb = comp.compress(header) + b"".join(comp.compress(bytes(1 << 20)) for _ in range(64)) + comp.flush()
    path = tmp_path / "bomb.pcap.gz"
    path.write_bytes(bomb)
    proc = run(str(path), "--json")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "decompression bomb" in proc.stderr and not proc.stdout
