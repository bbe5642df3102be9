"""`vpndoctor explain` and `vpndoctor events` as a user runs them: output, JSON and exit codes.

The commands are registered on a tiny typer app exactly as cli.py registers them; exit code 2 for bad input
comes from cli.main's handling of VpndoctorError, mirrored in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.windows.test_events import (
    ALICE,
    COID_B,
    JOSE,
    csv_rows,
    event_xml,
    nps_named,
    sample,
    scenario_events,
    write_csv,
    write_xml,
)
from vpndoctor.cli.app import app
from vpndoctor.errors import UsageError
from vpndoctor.windows.events import SECURITY_AUDITING, EventsReport

REPO = Path(__file__).resolve().parents[2]

# The real entry point: a VpndoctorError becomes one line on stderr and exit status 2.
MAIN = """
import sys
sys.argv[0] = "vpndoctor"
from vpndoctor.cli import main
main()
"""

runner = CliRunner()


def run_main(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", MAIN, *args], capture_output=True, text=True, timeout=120, cwd=REPO
    )


# --- explain ----------------------------------------------------------------------------------------------


def test_explain_809() -> None:
    result = runner.invoke(app, ["explain", "809"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "ERROR_VPN_TIMEOUT" in out and "Usual causes" in out and "What to check" in out
    assert "$ vpndoctor diagnose NAME" in out and "Fix" in out
    assert "https://learn.microsoft.com/" in out


@pytest.mark.parametrize("form", ["0x80092013", "-2146885613", "2148081683", "CRYPT_E_REVOCATION_OFFLINE"])
def test_explain_forms_of_one_code(form: str) -> None:
    result = runner.invoke(app, ["explain", form, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["entry"]["name"] == "CRYPT_E_REVOCATION_OFFLINE"
    assert doc["forms"]["hex"] == "0x80092013" and doc["forms"]["signed"] == -2146885613
    assert doc["entry"]["source"].startswith("https://")


def test_explain_nps() -> None:
    result = runner.invoke(app, ["explain", "--nps", "16"])
    assert result.exit_code == 0, result.output
    assert "NPS reason code 16" in result.stdout and "credentials mismatch" in result.stdout
    doc = json.loads(runner.invoke(app, ["explain", "--nps", "66", "--json"]).stdout)
    assert doc["kind"] == "nps_reason_code" and doc["entry"]["code"] == 66


def test_explain_unknown_code_exits_1_and_still_decodes() -> None:
    result = runner.invoke(app, ["explain", "0x8007FFFF"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "vpndoctor: no entry for 0x8007FFFF (decimal 2148007935, hex 0x8007FFFF, signed -2146959361, "
        "Win32 65535)"
    )
    result = runner.invoke(app, ["explain", "12345", "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["entry"] is None and doc["forms"]["hex"] == "0x3039"
    result = runner.invoke(app, ["explain", "--nps", "999"])
    assert result.exit_code == 1 and "no NPS reason code 999" in result.stderr


def test_explain_bad_input_is_a_usage_error() -> None:
    result = runner.invoke(app, ["explain", "not-a-code"])
    assert isinstance(result.exception, UsageError)
    assert "\n" not in str(result.exception)
    proc = run_main("explain", "not-a-code")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("vpndoctor: error: 'not-a-code'")


# --- events -----------------------------------------------------------------------------------------------


def test_events_xml_terminal_output(tmp_path: Path) -> None:
    result = runner.invoke(app, ["events", str(write_xml(tmp_path, scenario_events()))])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "6 connection attempt(s)" in out and "4 failed" in out
    assert "Failures by error code" in out and "ERROR_VPN_TIMEOUT" in out and "0x80092013" in out
    assert "NPS" in out and "Denials by reason code" in out
    assert "IKEEXT" in out
    assert result.stderr == ""


def test_events_json_is_one_events_report(tmp_path: Path) -> None:
    xml = write_xml(tmp_path, scenario_events())
    csv_file = write_csv(tmp_path, csv_rows())
    result = runner.invoke(app, ["events", str(xml), str(csv_file), "--json"])
    assert result.exit_code == 0, result.output
    report = EventsReport.model_validate_json(result.stdout)
    assert [f.format for f in report.files] == ["xml", "csv"]
    # The same CoIds in both exports fold into the same attempts.
    assert report.summary.attempts == 6
    b = next(a for a in report.attempts if a.coid == COID_B.strip("{}"))
    assert b.user == JOSE and b.error is not None and b.error.name == "CRYPT_E_REVOCATION_OFFLINE"
    assert {u.name for u in report.summary.by_user} >= {ALICE, JOSE}
    assert report.nps.denied == 3  # two 6273 in the XML, one in the CSV


def test_events_real_application_log() -> None:
    result = runner.invoke(app, ["events", str(sample("Application_no_crc32.evtx"))])
    assert result.exit_code == 0, result.output
    assert "No RasClient events" in result.stdout
    assert "Providers seen" in result.stdout and "Microsoft-Windows-Security-SPP" in result.stdout
    doc = json.loads(
        runner.invoke(app, ["events", "--json", str(sample("Application_no_crc32.evtx"))]).stdout
    )
    assert doc["rasclient_events"] == 0 and doc["providers"]


def test_events_bad_chunk_is_one_warning_line() -> None:
    proc = run_main("events", str(sample("sample_with_a_bad_chunk_magic.evtx")))
    assert proc.returncode == 0, proc.stderr
    warnings = proc.stderr.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("vpndoctor: warning: sample_with_a_bad_chunk_magic")
    assert "Read 270 records" in proc.stdout.replace("\n", " ")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (None, None, "no such file"),
        ("notes.txt", "just some text\n", "unknown format"),
        ("cut.xml", None, "truncated or malformed XML"),
    ],
)
def test_events_bad_input_exits_2_with_one_line(
    tmp_path: Path, name: str | None, content: str | None, message: str
) -> None:
    if name is None:
        path = tmp_path / "missing.evtx"
    elif content is None:
        full = write_xml(tmp_path, scenario_events(), name=name)
        path = full
        path.write_bytes(full.read_bytes()[:-200])
    else:
        path = tmp_path / name
        path.write_text(content)
    proc = run_main("events", str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


# --- events: hostile and unusual input ----------------------------------------------------------------


def test_events_time_beyond_the_utc_calendar_exits_0(tmp_path: Path) -> None:
    ras = event_xml("RasClient", 20227, "9999-12-31T23:59:59-05:00", 1, (COID_B, JOSE, "VPN", "809"), level=2)
    nps = event_xml(SECURITY_AUDITING, 6273, "0001-01-01T00:00:00+05:00", 2, named=nps_named(JOSE, 16, "x"))
    path = write_xml(tmp_path, [ras, nps])
    result = runner.invoke(app, ["events", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 failed" in result.stdout and "NPS" in result.stdout
    report = EventsReport.model_validate_json(runner.invoke(app, ["events", "--json", str(path)]).stdout)
    assert report.attempts[0].started == "9999-12-31T23:59:59Z"
    assert report.nps.records[0].time == "0001-01-01T00:00:00Z"


def run_piped(data: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", MAIN, *args], input=data, capture_output=True, timeout=120, cwd=REPO
    )


def _xml_bytes(tmp_path: Path, encoding: str) -> bytes:
    return write_xml(tmp_path, scenario_events(), encoding=encoding).read_bytes()


def _csv_bytes(tmp_path: Path, encoding: str) -> bytes:
    return write_csv(tmp_path, csv_rows(), encoding=encoding).read_bytes()


@pytest.mark.parametrize(
    ("arg", "kind", "encoding", "fmt"),
    [
        ("/dev/stdin", "xml", "utf-8", "xml"),
        ("/dev/stdin", "xml", "utf-16", "xml"),
        ("/dev/stdin", "csv", "utf-8-sig", "csv"),
        ("-", "xml", "utf-16-le", "xml"),
        ("-", "csv", "utf-16", "csv"),
    ],
)
def test_events_reads_a_pipe(tmp_path: Path, arg: str, kind: str, encoding: str, fmt: str) -> None:
    data = _xml_bytes(tmp_path, encoding) if kind == "xml" else _csv_bytes(tmp_path, encoding)
    proc = run_piped(data, "events", "--json", arg)
    assert proc.returncode == 0, proc.stderr
    report = EventsReport.model_validate_json(proc.stdout)
    assert [f.format for f in report.files] == [fmt] and report.files[0].path == arg
    assert report.summary.attempts == (6 if kind == "xml" else 4)


def test_events_reads_evtx_from_a_pipe() -> None:
    # evtx seeks in its input: a pipe is copied to an unnamed temporary file first.
    proc = run_piped(sample("sample_with_a_bad_chunk_magic.evtx").read_bytes(), "events", "-")
    assert proc.returncode == 0, proc.stderr
    assert "Read 270 records" in proc.stdout.decode().replace("\n", " ")
    assert proc.stderr.decode().startswith("vpndoctor: warning: stdin: skipped")


def test_events_fifo_without_a_writer_exits_2_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", MAIN, "events", str(fifo)],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("vpndoctor events blocked on a FIFO without a writer")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "no writer" in proc.stderr, proc.stderr


def test_events_fifo_with_a_writer_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    data = _xml_bytes(tmp_path, "utf-8")

    def write() -> None:
        with open(fifo, "wb") as fh:  # blocks until vpndoctor opens the other end
            fh.write(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    time.sleep(0.2)  # the writer is waiting in open(), as `cat export.xml > fifo` would
    proc = run_main("events", str(fifo))
    writer.join(10)
    assert proc.returncode == 0, proc.stderr
    assert "6 connection attempt(s)" in proc.stdout
