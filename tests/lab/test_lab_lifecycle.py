"""`lab up` / `lab down` / `lab status` / `lab exec` through the real CLI: nothing is left behind, a
crashed lab is detected and cleaned, and misuse ends in one line and exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from vpndoctor.lab.runner import NETNS_ETC, STATE_ROOT, LabState

pytestmark = pytest.mark.lab

PREFIX = "vdlc"
CLI = [sys.executable, "-m", "vpndoctor"]


def cli(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout_s, env=env, stdin=subprocess.DEVNULL
    )


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith(f"{PREFIX}-")}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[-1][:1] != "Z"


def host_veths() -> set[str]:
    out = subprocess.run(
        ["ip", "-o", "link", "show", "type", "veth"], capture_output=True, text=True, timeout=10
    ).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


@pytest.fixture
def clean() -> object:
    cli("lab", "down", "--prefix", PREFIX)
    yield None
    cli("lab", "down", "--prefix", PREFIX)


def test_up_status_exec_down_leaves_nothing(clean: object) -> None:
    veths_before = host_veths()
    up = cli("lab", "up", "--prefix", PREFIX, "--scenario", "healthy", "--json")
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    assert info["addresses"] == ["203.0.113.10", "2001:db8:113::10"]
    assert Path(info["ca_file"]).read_text().startswith("-----BEGIN CERTIFICATE-----")

    status = cli("lab", "status", "--prefix", PREFIX, "--json")
    assert status.returncode == 0
    st = json.loads(status.stdout)
    assert st["up"] and st["scenario"] == "healthy"
    names = {p["name"] for p in st["processes"]}
    assert {"dnsmasq", "wan", "charon-vpn1", "charon-vpn2", "sstpd-vpn1", "sstpd-vpn2"} <= names
    assert all(p["alive"] for p in st["processes"])
    pids = [p["pid"] for p in st["processes"]]
    assert len(namespaces()) == 7

    ex = cli("lab", "exec", "--prefix", PREFIX, "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0")
    assert ex.returncode == 0 and "198.51.100.10/24" in ex.stdout
    assert cli("lab", "exec", "--prefix", PREFIX, "--", "false").returncode == 1, "exit status passes through"

    connect = cli("lab", "connect", "--prefix", PREFIX, "--timeout-s", "10")
    assert connect.returncode == 0 and "IKE SA established" in connect.stdout, connect.stdout + connect.stderr

    again = cli("lab", "up", "--prefix", PREFIX)
    assert again.returncode == 2 and "already exists" in again.stderr

    down = cli("lab", "down", "--prefix", PREFIX)
    assert down.returncode == 0, down.stderr
    assert namespaces() == set()
    assert not any(alive(p) for p in pids)
    assert host_veths() == veths_before
    assert not (NETNS_ETC / f"{PREFIX}-client").exists()
    assert not (STATE_ROOT / PREFIX).exists()
    twice = cli("lab", "down", "--prefix", PREFIX)
    assert twice.returncode == 0 and "nothing to remove" in twice.stdout
    assert cli("lab", "status", "--prefix", PREFIX).returncode == 1


def test_crashed_lab_is_detected_and_cleaned(clean: object) -> None:
    assert cli("lab", "up", "--prefix", PREFIX).returncode == 0
    state = LabState.load(PREFIX)
    assert state is not None
    pids = [p.pid for p in state.processes]
    # A crash that lost the state file: only the namespaces and their processes remain.
    (STATE_ROOT / PREFIX / "state.json").unlink()
    st = json.loads(cli("lab", "status", "--prefix", PREFIX, "--json").stdout)
    assert st["up"] is False and st["leftover"] is True
    down = cli("lab", "down", "--prefix", PREFIX)
    assert down.returncode == 0
    assert namespaces() == set()
    assert not any(alive(p) for p in pids)


def test_interrupted_up_leaves_nothing(clean: object) -> None:
    proc = subprocess.Popen(
        [*CLI, "lab", "up", "--prefix", PREFIX],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    # Let it get part-way (namespaces exist), then interrupt it like Ctrl-C.
    deadline = 200
    while not namespaces() and deadline:
        subprocess.run(["sleep", "0.02"])
        deadline -= 1
    assert namespaces(), "lab up never got as far as creating namespaces"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in err
    assert namespaces() == set()


def test_errors_are_one_line_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nfragments: sometimes\nunknown_knob: 1\n")
    cases = [
        (["lab", "up", "--prefix", PREFIX, "--scenario", "no-such-scenario"], "unknown scenario"),
        (["lab", "up", "--prefix", PREFIX, "--scenario", str(bad)], "fragments"),
        (["lab", "up", "--prefix", "Bad_Prefix!"], "bad lab prefix"),
        (["lab", "exec", "--prefix", PREFIX, "--in", "mars", "--", "true"], "unknown lab host"),
        (["lab", "exec", "--prefix", PREFIX, "--", "true"], "run `vpndoctor lab up` first"),
    ]
    for args, expected in cases:
        proc = cli(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert expected in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "unknown_knob" in cli("lab", "up", "--prefix", PREFIX, "--scenario", str(bad)).stderr


def test_not_root_is_a_clear_error() -> None:
    proc = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            *CLI,
            "lab",
            "up",
            "--prefix",
            PREFIX,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
    )
    assert proc.returncode == 2, proc.stderr
    assert "needs root" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_package_is_named(tmp_path: Path) -> None:
    # A PATH where everything but nft is found: preflight must name the Debian package.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("ip", "dnsmasq", "pppd", "unshare", "mount", "ss"):
        for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
            if Path(d, tool).exists():
                (bindir / tool).symlink_to(Path(d, tool))
                break
    proc = cli("lab", "up", "--prefix", PREFIX, env=dict(os.environ, PATH=str(bindir)))
    assert proc.returncode == 2
    assert "missing Debian package(s): nftables" in proc.stderr, proc.stderr
