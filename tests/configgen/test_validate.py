"""The validator checks every emitted NetScaler, tmsh, KEMP, PowerShell, netsh and ProfileXML line against
the table of documented commands (configgen/data/commands.yaml): all generated output passes, and a
deliberately typo'd command, parameter or value is rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpndoctor.configgen import generate
from vpndoctor.configgen.model import load_deployment
from vpndoctor.configgen.recipes import TARGETS
from vpndoctor.configgen.validate import VALIDATED_TARGETS, table, validate

HERE = Path(__file__).parent
INPUTS = sorted(p.stem for p in (HERE / "inputs").glob("*.yaml"))


def _text(target: str, name: str = "full") -> str:
    return generate(target, load_deployment(str(HERE / "inputs" / f"{name}.yaml")))


@pytest.mark.parametrize("name", INPUTS)
@pytest.mark.parametrize("target", VALIDATED_TARGETS)
def test_generated_output_is_documented(target: str, name: str) -> None:
    assert validate(target, _text(target, name)) == []


@pytest.mark.parametrize("target", VALIDATED_TARGETS)
def test_every_recipe_alone_is_documented(target: str) -> None:
    d = load_deployment(str(HERE / "inputs" / "full.yaml"))
    for recipe in TARGETS[target]:
        assert validate(target, generate(target, d, [recipe])) == [], recipe


# (target, text in the generated output, its typo, what the complaint must mention)
TYPOS = [
    (
        "netscaler",
        "-persistenceType SOURCEIP",
        "-persistanceType SOURCEIP",
        "unknown parameter -persistanceType",
    ),
    ("netscaler", "-clientCert Mandatory", "-clientCert Mandatroy", "'Mandatroy'"),
    ("netscaler", "-cipherName SSL3-NULL-SHA", "-cipherName SSL3-NUL-SHA", "unknown cipher"),
    ("netscaler", "add lb group", "add lb grup", "unknown NetScaler command"),
    ("netscaler", "SSL_BRIDGE 443", "SSL-BRIDGE 443", "'SSL-BRIDGE'"),
    ("netscaler", "-crlCheck Optional", "-crlcheck Optinal", "'Optinal'"),
    ("f5", "match-across-services enabled", "match-accross-services enabled", "unknown property"),
    ("f5", "peer-cert-mode require", "peer-cert-mode required", "'required'"),
    ("f5", "{ type none }", "{ type nothing }", "'nothing'"),
    ("f5", "context clientside", "context client-side", "'client-side'"),
    ("f5", "no-sslv3", "no-sslv3.0", "'no-sslv3.0'"),
    (
        "f5",
        "create ltm persistence source-addr",
        "create ltm persistence source-address",
        "unknown tmsh component",
    ),
    ("kemp", "FollowVSID=", "FollowVsId=", "unknown parameter 'FollowVsId'"),
    ("kemp", "Persist=src", "Persist=source", "'source'"),
    ("kemp", "SSLReencrypt=1", "SSLReEncrypt=1", "unknown parameter"),
    ("kemp", "kemp_api addrs", "kemp_api addrealserver", "unknown KEMP API command"),
    ("windows", "-PfsGroup PFS2048", "-PFSGroups PFS2048", "unknown parameter -PFSGroups"),
    ("windows", "-IntegrityCheckMethod SHA256", "-IntegrityCheckMethod SHA-256", "'SHA-256'"),
    ("windows", "-Direction Inbound", "-Direction Inbund", "'Inbund'"),
    ("windows", "-Name EnableServerFragmentation", "-Name EnableServerFragmentaton", "registry value"),
    (
        "windows",
        "Set-VpnAuthProtocol -RootCertificateNameToAccept",
        "Set-VpnAuthProtocol -RootCertificateName",
        "unknown parameter",
    ),
    ("windows", "<IntegrityCheckMethod>SHA256<", "<IntegrityCheckMethod>SHA1<", "'SHA1'"),
    ("windows", "<DHGroup>Group14</DHGroup>", "<DhGroup>Group14</DhGroup>", "unknown element"),
    ("windows", "<DHGroup>Group14</DHGroup>", "<DHGroup>Group14</DhGroup>", "not well-formed"),
    ("windows", "new remoteip=", "new remoteaddress=", "unknown key 'remoteaddress'"),
    ("windows", "dir=in", "dir=inbound", "'inbound'"),
    ("windows", "| Out-Null }", "| Out-Nul }", "undocumented cmdlet 'Out-Nul'"),
    ("windows", "(Test-Path -Path", "(Test-Path -LiteralPat", "unknown parameter -LiteralPat"),
]


@pytest.mark.parametrize(("target", "good", "bad", "complaint"), TYPOS)
def test_a_typo_is_rejected(target: str, good: str, bad: str, complaint: str) -> None:
    text = _text(target)
    assert good in text, "the typo test must change something the generator really emits"
    problems = validate(target, text.replace(good, bad, 1))
    assert problems, f"{bad!r} was not caught"
    assert any(complaint in p for p in problems), problems


def test_every_table_entry_cites_a_vendor_page() -> None:
    t = table()
    sources = [c["source"] for c in t["netscaler"]["commands"].values()]
    sources += [c["source"] for c in t["f5"]["commands"].values()]
    sources += [c["source"] for c in t["kemp"]["commands"].values()]
    sources += [c["source"] for c in t["powershell"]["cmdlets"].values()]
    sources += [r["source"] for r in t["powershell"]["registry"]]
    sources += [t["netsh"]["source"], t["profilexml"]["source"], t["netscaler"]["cipher_names"]["source"]]
    assert sources and all(s.startswith("https://") for s in sources)
