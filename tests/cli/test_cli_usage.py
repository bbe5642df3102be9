"""Usage errors through the real `vpndoctor.cli.main()`: the README promises one line on stderr and exit 2,
where typer would draw a four-line rich box; --help, --version and a bare group still print their help."""

from __future__ import annotations

import subprocess
import sys

import pytest

# As the console script runs it: argv[0] "vpndoctor" registers only the command asked for.
MAIN = "import sys; sys.argv[0] = 'vpndoctor'; from vpndoctor.cli import main; main()"


def vpndoctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", MAIN, *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "80", "TERM": "xterm-256color", "FORCE_COLOR": "1"},
    )


USAGE_ERRORS = [
    (["events"], "Missing argument 'FILE...'. (try 'vpndoctor events --help')"),
    (["events", "--bogus", "x.evtx"], "No such option: --bogus (try 'vpndoctor events --help')"),
    (["nosuch"], "No such command 'nosuch'. (try 'vpndoctor --help')"),
    (
        ["isatap", "prefix", "--from-ipconfig"],
        "Option '--from-ipconfig' requires an argument. (try 'vpndoctor isatap prefix --help')",
    ),
    (["explain", "809", "810"], "Got unexpected extra argument(s) (810) (try 'vpndoctor explain --help')"),
    (
        ["config", "haproxy", "--windows7", "--bogus"],
        "No such option: --bogus (try 'vpndoctor config haproxy --help')",
    ),
    (
        ["lab", "down", "--prefix"],
        "Option '--prefix' requires an argument. (try 'vpndoctor lab down --help')",
    ),
]


@pytest.mark.parametrize(("args", "message"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_usage_error_is_one_line_exit_2(args: list[str], message: str) -> None:
    proc = vpndoctor(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == f"vpndoctor: error: {message}\n"


def test_bad_value_names_the_parameter_on_one_line() -> None:
    proc = vpndoctor("ike", "vpn.example.com", "--port", "nope")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("vpndoctor: error: Invalid value for")
    assert "'--port'" in proc.stderr and proc.stderr.endswith("(try 'vpndoctor ike --help')\n")


@pytest.mark.parametrize("args", [["--help"], ["events", "--help"], ["isatap", "prefix", "--help"]])
def test_help_still_prints_and_exits_0(args: list[str]) -> None:
    proc = vpndoctor(*args)
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout and proc.stderr == ""


def test_version_exits_0() -> None:
    proc = vpndoctor("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("vpndoctor ") and proc.stderr == ""


@pytest.mark.parametrize("args", [[], ["lab"], ["isatap"]])
def test_a_bare_group_prints_its_help(args: list[str]) -> None:
    # click's no_args_is_help: the help on stdout and exit 2, as before; no error line added to it.
    proc = vpndoctor(*args)
    assert proc.returncode == 2
    assert "Usage:" in proc.stdout and "vpndoctor: error" not in proc.stderr + proc.stdout


def test_our_own_errors_are_unchanged() -> None:
    proc = vpndoctor("explain", "not-a-code")
    assert proc.returncode == 2 and proc.stderr.startswith(
        "vpndoctor: error: 'not-a-code': not an error code"
    )
    proc = vpndoctor("explain", "12345")
    assert proc.returncode == 1  # typer.Exit(1) from a command keeps its code
