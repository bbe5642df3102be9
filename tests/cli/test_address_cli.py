"""`vpndoctor address` and `vpndoctor isatap prefix`: output and JSON through a small app registering the
commands as cli.py does, and every bad input through the real `main()`: one line, exit 2, no traceback."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import typer
from typer.testing import CliRunner

from tests.windows.test_addresses import (
    GET_NETIPADDRESS_LIST,
    IPCONFIG_ALL,
    IPCONFIG_VISTA_LINK_LOCAL_ONLY,
    NO_ISATAP,
)
from vpndoctor.cli.app import app as vpndoctor_app
from vpndoctor.windows.addresses import AddressReport
from vpndoctor.windows.ipconfig import IsatapReport

ISATAP = "2001:db8:1:8000:0:5efe:10.0.0.5"
PRIVATE96 = "2001:db8:1:8000:0:5efe::/96"
PUBLIC96 = "2001:db8:1:8000:200:5efe::/96"
RDP = "Remote Desktop - User Mode (TCP-In)"
ICMP = "File and Printer Sharing (Echo Request - ICMPv6-In)"

# The real entry point, with its one-line error handling.
MAIN = """
import sys
sys.argv[0] = "vpndoctor"
from vpndoctor.cli import main
main()
"""


def make_app() -> typer.Typer:
    return vpndoctor_app


def invoke(*args: str, stdin: str | None = None) -> str:
    result = CliRunner().invoke(make_app(), list(args), input=stdin)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines()]


# ----------------------------------------------------------------------------------------------- address


def test_address_table_teredo() -> None:
    out = invoke("address", "2001:0000:4136:e378:8000:63bf:3fff:fdd2")
    assert "Teredo client at 192.0.2.45:40000" in out
    for expected in ("teredo", "65.54.227.120", "192.0.2.45", "40000", "0x8000", "2001::/32"):
        assert expected in out
    assert "cone" in out and "yes" in out


def test_address_table_ipv4_shows_its_isatap_form() -> None:
    out = invoke("address", "10.0.0.5")
    assert "fe80::5efe:10.0.0.5" in out and "2002:a00:5::/48" in out


def test_address_json_is_one_object_valid_against_the_model_schema() -> None:
    out = invoke("address", "fe80::5efe:10.0.0.5%12", "--json")
    assert len(out.strip().splitlines()) == 1
    data = json.loads(out)
    jsonschema.validate(data, AddressReport.model_json_schema())
    assert data["kind"] == "isatap-link-local"
    assert data["embedded_ipv4"] == "10.0.0.5"
    assert data["details"]["zone"] == "12"
    assert data["details"]["u_bit"] is False


# ----------------------------------------------------------------------------------------- isatap prefix


def test_isatap_prefix_default_rule() -> None:
    out = lines(invoke("isatap", "prefix", ISATAP))
    assert f"ISATAP address {ISATAP}" in out
    assert PRIVATE96 in out
    assert PUBLIC96 not in out
    assert (
        f'Set-NetFirewallRule -DisplayName "{RDP}" -RemoteAddress {PRIVATE96} -Profile Private,Public' in out
    )
    assert f'netsh advfirewall firewall set rule name="{RDP}" new remoteip={PRIVATE96}' in out


def test_isatap_prefix_public_ipv4_and_several_rules() -> None:
    out = lines(invoke("isatap", "prefix", ISATAP, "--public-ipv4", "--rule", RDP, "--rule", ICMP))
    assert PRIVATE96 in out and PUBLIC96 in out
    both = f"{PRIVATE96},{PUBLIC96}"
    commands = [line for line in out if line.startswith(("Set-NetFirewallRule ", "netsh advfirewall"))]
    assert commands == [
        f'Set-NetFirewallRule -DisplayName "{RDP}" -RemoteAddress {both} -Profile Private,Public',
        f'Set-NetFirewallRule -DisplayName "{ICMP}" -RemoteAddress {both} -Profile Private,Public',
        f'netsh advfirewall firewall set rule name="{RDP}" new remoteip={both}',
        f'netsh advfirewall firewall set rule name="{ICMP}" new remoteip={both}',
    ]


def test_isatap_prefix_rule_names_with_markup_and_quotes_print_verbatim() -> None:
    out = lines(invoke("isatap", "prefix", ISATAP, "--rule", "[bold]Admin's $rule[/bold]"))
    assert (
        "Get-NetFirewallRule | Where-Object DisplayName -eq '[bold]Admin''s $rule[/bold]' |"
        f" Set-NetFirewallRule -RemoteAddress {PRIVATE96} -Profile Private,Public"
    ) in out


def test_isatap_prefix_json() -> None:
    out = invoke("isatap", "prefix", "2001:db8:1:8000:200:5efe:131.107.0.1", "--json", "--public-ipv4")
    data = json.loads(out)
    jsonschema.validate(data, IsatapReport.model_json_schema())
    assert data["source"] == "argument"
    assert data["addresses"] == ["2001:db8:1:8000:200:5efe:131.107.0.1"]
    assert data["embedded_ipv4"] == ["131.107.0.1"]
    assert data["prefixes"] == [PRIVATE96, PUBLIC96]
    assert data["rules"] == [RDP]
    assert data["adapters"] == []
    assert len(data["powershell"]) == len(data["netsh"]) == 1


def test_isatap_prefix_from_ipconfig_file(tmp_path: Path) -> None:
    path = tmp_path / "ipconfig-all.txt"
    path.write_text(IPCONFIG_ALL.replace("\n", "\r\n"), encoding="utf-16")  # PowerShell 5.1 `>`
    data = json.loads(invoke("isatap", "prefix", "--from-ipconfig", str(path), "--json"))
    jsonschema.validate(data, IsatapReport.model_json_schema())
    assert data["source"] == str(path)
    assert data["addresses"] == [ISATAP]
    assert data["prefixes"] == [PRIVATE96]
    assert [(a["name"], a["media_disconnected"]) for a in data["adapters"]] == [
        ("isatap.corp.example.com", False),
        ("isatap.{5D8B3A6E-1F2C-4E7A-9B0D-3C4E5F6A7B8C}", True),
    ]
    assert data["adapters"][0]["isatap_addresses"] == [ISATAP]
    text = lines(invoke("isatap", "prefix", "--from-ipconfig", str(path)))
    assert "adapter isatap.{5D8B3A6E-1F2C-4E7A-9B0D-3C4E5F6A7B8C}: media disconnected" in text
    assert PRIVATE96 in text


def test_isatap_prefix_from_stdin_get_netipaddress() -> None:
    out = lines(
        invoke("isatap", "prefix", "--from-ipconfig", "-", "--public-ipv4", stdin=GET_NETIPADDRESS_LIST)
    )
    assert PRIVATE96 in out and PUBLIC96 in out
    assert any(line.startswith("netsh advfirewall firewall set rule") for line in out)


# ------------------------------------------------------------------------------------ bad input, real main


def run_main(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", MAIN, *args], capture_output=True, text=True, input=stdin, timeout=60
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("ipconfig")
    samples = {"none": NO_ISATAP, "link-local": IPCONFIG_VISTA_LINK_LOCAL_ONLY, "all": IPCONFIG_ALL}
    for name, text in samples.items():
        (root / f"{name}.txt").write_text(text)
    return {name: str(root / f"{name}.txt") for name in samples} | {"missing": str(root / "missing.txt")}


BAD = [
    (["address", "isatap.corp.example.com"], "isatap.corp.example.com is not an IP address"),
    (["address", "2001:db8:1:8000::/64"], "2001:db8:1:8000::/64 is a /64 prefix, not an address"),
    (["address", "fe80::1%"], "bad zone index"),
    (
        ["isatap", "prefix", "2001:db8::1"],
        "2001:db8::1 is not an ISATAP address (interface id 0000:0000:0000:0001);"
        " expected prefix::0:5efe:a.b.c.d",
    ),
    (["isatap", "prefix", "10.0.0.5"], "10.0.0.5 is an IPv4 address; expected an ISATAP IPv6 address"),
    (["isatap", "prefix", "fe80::5efe:10.0.0.5"], "is a link-local ISATAP address"),
    (["isatap", "prefix", "2001:db8:1:8000::/64"], "is a /64 prefix, not an address"),
    (["isatap", "prefix"], "give an ISATAP address (prefix::0:5efe:a.b.c.d) or --from-ipconfig FILE"),
    (["isatap", "prefix", ISATAP, "--from-ipconfig", "{all}"], "not both"),
    (
        ["isatap", "prefix", "--from-ipconfig", "{missing}"],
        "cannot read {missing}: No such file or directory",
    ),
    (
        ["isatap", "prefix", "--from-ipconfig", "{none}"],
        "no ISATAP adapter found in {none}; expected 'Tunnel adapter isatap...' sections from ipconfig /all",
    ),
    (
        ["isatap", "prefix", "--from-ipconfig", "{link-local}"],
        "no ISATAP adapter has a routable ISATAP address"
        " (Local Area Connection* 8: only fe80::5efe:192.168.1.20)",
    ),
    (["isatap", "prefix", "--from-ipconfig", "-"], "no ISATAP adapter found in stdin"),
    (["isatap", "prefix", ISATAP, "--rule", 'Say "hi"'], "netsh cannot be given safely"),
    (["isatap", "prefix", ISATAP, "--rule", ""], "empty firewall rule name"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_one_line_exit_2(files: dict[str, str], args: list[str], message: str) -> None:
    proc = run_main(*(a.format(**files) for a in args), stdin="Windows IP Configuration\n")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("vpndoctor: error: ")
    assert message.format(**files) in proc.stderr


def test_real_main_success_path() -> None:
    proc = run_main("isatap", "prefix", ISATAP, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["prefixes"] == [PRIVATE96]


# ------------------------------------------------------------------- hostile --from-ipconfig sources

MAX_MIB = 4  # MAX_IPCONFIG_BYTES, as the README states it


def _limit_memory() -> None:
    # Before the fix /dev/zero was read whole: fail at 1 GiB instead of taking the machine's memory.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def run_main_from(stdin: int | None, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", MAIN, *args],
        stdin=subprocess.DEVNULL if stdin is None else stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        preexec_fn=_limit_memory,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("vpndoctor: error: "), proc.stderr
    assert message in proc.stderr, proc.stderr


def test_from_ipconfig_larger_than_the_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(IPCONFIG_ALL.encode() + b" " * (MAX_MIB * 1024 * 1024))
    proc = run_main_from(None, "isatap", "prefix", "--from-ipconfig", str(big))
    assert_one_line_error(proc, f"{big}: larger than {MAX_MIB} MiB")
    # Just under the limit is read (and parsed in time).
    big.write_bytes(IPCONFIG_ALL.encode() + b" " * (MAX_MIB * 1024 * 1024 - len(IPCONFIG_ALL)))
    proc = run_main_from(None, "isatap", "prefix", "--from-ipconfig", str(big), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["prefixes"] == [PRIVATE96]


def test_from_ipconfig_dev_zero_is_refused_at_the_limit() -> None:
    started = time.monotonic()
    proc = run_main_from(None, "isatap", "prefix", "--from-ipconfig", "/dev/zero")
    assert_one_line_error(proc, f"/dev/zero: larger than {MAX_MIB} MiB")
    with open("/dev/zero", "rb") as zero:
        proc = run_main_from(zero.fileno(), "isatap", "prefix", "--from-ipconfig", "-")
    assert_one_line_error(proc, f"stdin: larger than {MAX_MIB} MiB")
    assert time.monotonic() - started < 30


def test_from_ipconfig_fifo_without_a_writer_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "ipconfig.fifo"
    os.mkfifo(fifo)
    proc = run_main_from(None, "isatap", "prefix", "--from-ipconfig", str(fifo), timeout_s=20)
    assert_one_line_error(proc, f"{fifo}: a FIFO with no writer")


def test_from_ipconfig_fifo_with_a_writer_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "ipconfig.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as fh:  # waits for the reader, as a shell redirection does
            time.sleep(0.5)  # the reader finds a writer but no data yet: it must wait, not refuse
            fh.write(IPCONFIG_ALL.encode())

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        proc = run_main_from(None, "isatap", "prefix", "--from-ipconfig", str(fifo), "--json", timeout_s=20)
    finally:
        if writer.is_alive():  # the reader never opened it: let the writer go
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        writer.join(5)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["prefixes"] == [PRIVATE96]
