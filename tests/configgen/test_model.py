"""The input model: the example `config init` writes validates, bad input is one clear line naming the
field (exit 2 from the CLI), and the IKE policy is spelled right in both Windows dialects: the ProfileXML
suite vpndoctor generates is read back by `diagnose --profile`'s parser as the very proposal the server
policy describes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vpndoctor.configgen.crypto import IkePolicy
from vpndoctor.configgen.example import EXAMPLE
from vpndoctor.configgen.model import deployment_from_data, load_deployment
from vpndoctor.errors import UsageError
from vpndoctor.windows.profile import parse_profile_xml

BASE = {
    "name": "vpn.example.com",
    "vip": "203.0.113.10",
    "servers": [{"name": "vpn1", "address": "192.0.2.18"}],
    "certificates": {"server": {"name": "srv"}, "ca": {"name": "ca"}},
}


def _with(**changes: object) -> dict[str, object]:
    return {**BASE, **changes}


def test_example_validates() -> None:
    d = deployment_from_data(yaml.safe_load(EXAMPLE))
    assert d.name == "vpn.example.com" and len(d.servers) == 2 and d.protocols == ["ikev2", "sstp"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(vip="203.0.113"), "vip: '203.0.113' is not an IP address"),
        (_with(vip="2001:db8::1"), "vip: 2001:db8::1 is not an IPv4 address"),
        (_with(servers=[]), "servers: List should have at least 1 item"),
        (_with(servers=[{"name": "vpn1", "adress": "192.0.2.1"}]), "servers[0].adress: unknown key"),
        (_with(servers=[{"name": "1bad", "address": "192.0.2.1"}]), "servers[0].name: '1bad'"),
        (_with(protocols=["ikev3"]), "protocols[0]: Input should be 'ikev2', 'sstp' or 'iphttps'"),
        (_with(protocols=["sstp", "iphttps"]), "iphttps.vip: SSTP and IP-HTTPS both need TCP 443"),
        (_with(vip6="2001:db8::10"), "vip6 is set, so every server needs address6"),
        (
            _with(timeouts={"ike_affinity_s": 5}),
            "timeouts.ike_affinity_s: Input should be greater than or equal",
        ),
        (_with(windows={"ike_policy": {"encryption": "AES512"}}), "windows.ike_policy.encryption: 'AES512'"),
        (
            _with(windows={"ike_policy": {"esp_cipher": "GCMAES256", "esp_integrity": "SHA256128"}}),
            "with AES-GCM both must name the same GCM transform",
        ),
        (_with(windows={"isatap": {"addresses": ["2001:db8::1"]}}), "is not an ISATAP address"),
        (
            _with(certificates={"server": {"name": "s", "cert_file": "rel/x.pem"}, "ca": {"name": "c"}}),
            "certificates.server.cert_file",
        ),
        ({k: v for k, v in BASE.items() if k != "certificates"}, "certificates: required but missing"),
        ([1, 2], "expected a YAML mapping"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(data: object, message: str) -> None:
    with pytest.raises(UsageError) as exc:
        deployment_from_data(data, "in.yaml")
    text = str(exc.value)
    assert message in text and "\n" not in text and text.startswith("in.yaml: ")


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        load_deployment(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(UsageError, match=r"bad.yaml: line \d+"):
        load_deployment(str(bad))
    bomb = tmp_path / "bomb.yaml"
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    bomb.write_text("\n".join(lines) + "\n")
    with pytest.raises(UsageError, match="aliases"):
        load_deployment(str(bomb))
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: " + "[" * 100000 + "]" * 100000 + "\n")
    with pytest.raises(UsageError, match="nested 100000 deep"):
        load_deployment(str(deep))
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage\xc3")
    with pytest.raises(UsageError):
        load_deployment(str(binary))


@pytest.mark.parametrize(
    ("policy", "proposal"),
    [
        ({}, "aes128-sha256-modp2048"),
        ({"encryption": "AES256", "integrity": "SHA1", "dh_group": "Group2"}, "aes256-sha1-modp1024"),
        (
            {
                "encryption": "GCMAES256",
                "integrity": "SHA384",
                "dh_group": "ECP384",
                "esp_cipher": "GCMAES256",
                "esp_integrity": "GCMAES256",
                "pfs_group": "ECP384",
            },
            "aes256gcm16-prfsha384-ecp384",
        ),
        (
            {"encryption": "aes_gcm_128", "integrity": "sha196", "dh_group": "ecp256"},
            "aes128gcm16-prfsha1-ecp256",
        ),
    ],
)
def test_profile_suite_matches_server_policy(policy: dict[str, str], proposal: str) -> None:
    p = IkePolicy.model_validate(policy)
    assert p.strongswan_proposal() == proposal
    xml = f"<VPNProfile><NativeProfile>{p.cryptography_suite_xml()}</NativeProfile></VPNProfile>"
    suite = parse_profile_xml(xml).cryptography_suite
    assert suite is not None and suite.ike_proposal() == proposal


def test_dialects_differ_where_windows_does() -> None:
    p = IkePolicy.model_validate({"encryption": "GCMAES128", "integrity": "SHA1", "dh_group": "ECP256"})
    assert p.cmdlet_values()["EncryptionMethod"] == "GCMAES128"
    assert p.csp_values()["EncryptionMethod"] == "AES_GCM_128"
    assert p.cmdlet_values()["IntegrityCheckMethod"] == "SHA1"
    assert p.csp_values()["IntegrityCheckMethod"] == "SHA196"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vpndoctor", "config", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_init_then_generate(tmp_path: Path) -> None:
    out = tmp_path / "in.yaml"
    assert _cli("init", "-o", str(out)).returncode == 0
    again = _cli("init", "-o", str(out))
    assert again.returncode == 2 and "exists" in again.stderr
    proc = _cli("netscaler", "--input", str(out), "--recipe", "ikev2-lb")
    assert proc.returncode == 0, proc.stderr
    assert "set lb group lbg_ikev2 -persistenceType SOURCEIP -timeout 60" in proc.stdout
    assert "SSL_BRIDGE" not in proc.stdout
    target = tmp_path / "f5.txt"
    assert _cli("f5", "-i", str(out), "-o", str(target)).returncode == 0
    assert "match-across-services enabled" in target.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["haproxy", "--recipe", "ikev2-lb"], "HAProxy does not balance UDP"),
        (
            ["nginx", "--recipe", "iphttps-offload"],
            "does not apply to this input: iphttps is not among protocols",
        ),
        (["f5", "--recipe", "no-such"], "unknown recipe 'no-such'"),
        (["windows", "--recipe", "isatap-firewall"], "windows.isatap is not set"),
    ],
)
def test_cli_recipe_errors(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "in.yaml"
    out.write_text(EXAMPLE)
    proc = _cli(*args[:1], "--input", str(out), *args[1:])
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_cli_bad_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: vpn.example.com\nvip: 203.0.113.10\nservers: [{name: a, address: nope}]\n")
    proc = _cli("kemp", "--input", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.startswith("vpndoctor: error: ") and "servers[0].address" in proc.stderr


def test_cli_flags_instead_of_or_over_a_file(tmp_path: Path) -> None:
    proc = _cli(
        "netscaler",
        "--name",
        "vpn.example.com",
        "--vip",
        "203.0.113.10",
        "--server",
        "vpn1=192.0.2.18",
        "--server",
        "vpn2=192.0.2.22,2001:db8::22",
        "--cert",
        "vpncert",
        "--ca",
        "rootca",
        "--protocols",
        "ikev2",
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "add server vpn2 192.0.2.22" in proc.stdout
        and "add lb vserver vs_ike4500 UDP 203.0.113.10 4500" in proc.stdout
    )
    out = tmp_path / "in.yaml"
    out.write_text(EXAMPLE)
    over = _cli("netscaler", "-i", str(out), "--vip", "198.51.100.99", "--protocols", "ikev2")
    assert (
        over.returncode == 0 and "UDP 198.51.100.99 500" in over.stdout and "203.0.113.10" not in over.stdout
    )
    win7 = _cli("haproxy", "-i", str(out), "--protocols", "iphttps", "--windows7")
    assert "ssl-min-ver TLSv1.0" in win7.stdout and "ECDHE-RSA-AES128-SHA" in win7.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --input FILE"),
        (["--server", "vpn1"], "--server vpn1: expected NAME=IPV4"),
        (["--vip", "203.0.113.10"], "command line: name: required but missing"),
    ],
)
def test_cli_flag_errors(args: list[str], message: str) -> None:
    proc = _cli("f5", *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


# --- scalars PyYAML turns into a ValueError traceback, and sources that never end ------------------------


@pytest.mark.parametrize(
    ("scalar", "message"),
    [
        ("1" * 5000, "line 4: an integer of 5000 characters (at most 100 here)"),  # past int()'s 4300 digits
        ("-" + "1_0" * 2200, "line 4: an integer of 6601 characters"),  # 4400 digits once "_" is dropped
        ("1" * 4400 + ":30", "line 4: an integer of 4403 characters"),  # YAML 1.1 base 60
        ("2024-13-45", "line 4: month must be in 1..12"),  # a timestamp PyYAML cannot make a date of
    ],
    ids=["5000-digits", "underscores", "sexagesimal", "bad-date"],
)
def test_yaml_scalars_that_python_refuses_are_one_line_errors(
    tmp_path: Path, scalar: str, message: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"name: vpn.example.com\nvip: 203.0.113.10\ntimeouts:\n  ike_affinity_s: {scalar}\n")
    with pytest.raises(UsageError) as exc:
        load_deployment(str(bad))
    text = str(exc.value)
    assert text.startswith(f"{bad}:") and message in text and "\n" not in text
    assert len(text) < 300


def test_cli_yaml_integer_of_5000_digits_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: vpn.example.com\nvip: " + "1" * 5000 + "\n")
    proc = _cli("haproxy", "--input", str(bad))
    assert proc.returncode == 2, proc.stderr[-500:]
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"vpndoctor: error: {bad}: line 2: an integer of 5000 characters")


def test_ordinary_integers_still_load(tmp_path: Path) -> None:
    good = tmp_path / "in.yaml"
    good.write_text(EXAMPLE)
    load_deployment(str(good))
    assert yaml.safe_load("a: " + "9" * 100)["a"] == int("9" * 100)  # the bound is ours, not PyYAML's


def test_cli_input_fifo_without_a_writer_exits_2_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    proc = subprocess.run(
        [sys.executable, "-m", "vpndoctor", "config", "haproxy", "--input", str(fifo)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"vpndoctor: error: {fifo}: a FIFO with no writer")


@pytest.mark.parametrize("port", ["\u0663\u0663\u0668\u0669", "3389\u00b2", "33_89"])
def test_new_rule_ports_are_ascii_digits(port: str) -> None:
    # `\d` takes Arabic-Indic digits (and int() converts them), which would reach the PowerShell verbatim.
    isatap = {"addresses": ["2001:db8:1:8000:0:5efe:10.0.0.5"], "new_rules": [f"tcp/{port}"]}
    with pytest.raises(UsageError, match="expected 'tcp/PORT' or 'udp/PORT'"):
        deployment_from_data(_with(windows={"isatap": isatap}), "in.yaml")
    isatap["new_rules"] = ["tcp/3389"]
    deployment_from_data(_with(windows={"isatap": isatap}), "in.yaml")
