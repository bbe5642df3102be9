"""`vpndoctor cert` through the real `vpndoctor.cli.main()` in a subprocess: PEM (with a private key beside
the certificate), DER and PKCS#12 (password from --password-env, and never echoed), the JSON against
schema/cert.json, exit codes 0/1/2, and bad inputs (garbage, missing, a directory, a FIFO, too big) as one
line on stderr with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.checks.test_cert_lint import ISSUING, ISSUING_KEY, KEY, ROOT, _der_len, make, user

MAIN = "import sys; sys.argv[0] = 'vpndoctor'; from vpndoctor.cli import main; main()"
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schema" / "cert.json").read_text())
PASSWORD = "correct-horse S3cret!"
# The CLI judges at the real time: certificates valid around it.
NOW = datetime.now(UTC)
VALID = {"not_before": NOW - timedelta(days=10), "not_after": NOW + timedelta(days=300)}


def vpndoctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", MAIN, "cert", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "120", "TERM": "dumb", **(env or {})},
    )


def pem(*objs: Any) -> bytes:
    return b"".join(o.public_bytes(serialization.Encoding.PEM) for o in objs)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    alice = user(**VALID)
    key_pem = KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    out = {
        "user.pem": pem(alice) + key_pem,
        "user.der": alice.public_bytes(serialization.Encoding.DER),
        "issuing.pem": pem(ISSUING),
        "root.pem": pem(ROOT),
        "user.pfx": pkcs12.serialize_key_and_certificates(
            b"alice", KEY, alice, [ISSUING], serialization.BestAvailableEncryption(PASSWORD.encode())
        ),
        "expired-device.pem": pem(
            make(
                cn="pc1.corp.example",
                dns=["pc1.corp.example"],
                not_before=NOW - timedelta(days=400),
                not_after=NOW - timedelta(days=2),
            )
        ),
    }
    paths = {}
    for name, data in out.items():
        (tmp_path / name).write_bytes(data)
        paths[name] = tmp_path / name
    return paths


def one_line_error(proc: subprocess.CompletedProcess[str], contains: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith("vpndoctor: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert contains in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_pem_with_key_and_intermediate_json(files: dict[str, Path]) -> None:
    proc = vpndoctor(
        str(files["user.pem"]), str(files["issuing.pem"]), "--ca", str(files["root.pem"]), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["files"][0] == {
        "path": str(files["user.pem"]),
        "format": "pem",
        "certificates": 1,
        "private_key": True,
    }
    (cert,) = report["certificates"]
    assert cert["purpose"] == "user" and cert["purpose_from"] == "eku" and cert["chain_complete"] is True
    assert {f["id"]: f["status"] for f in cert["findings"]}["cert.lint.upn"] == "pass"
    assert report["verdict"]["status"] == "healthy"
    assert "PRIVATE KEY" not in proc.stdout  # the key is noted, never printed


def test_pem_terminal(files: dict[str, Path]) -> None:
    proc = vpndoctor(str(files["user.pem"]), str(files["issuing.pem"]), "--ca", str(files["root.pem"]))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "cert.lint.chain" in proc.stdout and "verdict: healthy" in proc.stdout
    assert "user (from its EKUs)" in proc.stdout


def test_der(files: dict[str, Path]) -> None:
    proc = vpndoctor(str(files["user.der"]), "--for", "user", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["files"][0]["format"] == "der" and report["purpose"] == "user"
    statuses = {f["id"]: f["status"] for f in report["certificates"][0]["findings"]}
    assert statuses["cert.lint.chain"] == "skip"  # no --ca, no issuer among the inputs: not judged


def test_pkcs12_with_password_env(files: dict[str, Path]) -> None:
    env = {"CERT_PW": PASSWORD}
    args = [str(files["user.pfx"]), "--ca", str(files["root.pem"]), "--password-env", "CERT_PW"]
    proc = vpndoctor(*args, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["files"] == [
        {"path": str(files["user.pfx"]), "format": "pkcs12", "certificates": 2, "private_key": True}
    ]
    assert [c["source"] for c in report["certificates"]] == [f"{files['user.pfx']}#1"]
    assert report["certificates"][0]["chain_complete"] is True  # the intermediate came in the PKCS#12
    terminal = vpndoctor(*args, env=env)
    assert terminal.returncode == 0, terminal.stderr
    for out in (proc.stdout, proc.stderr, terminal.stdout, terminal.stderr):
        assert PASSWORD not in out and "S3cret" not in out


def test_pkcs12_wrong_or_missing_password(files: dict[str, Path]) -> None:
    wrong = vpndoctor(str(files["user.pfx"]), "--password-env", "CERT_PW", env={"CERT_PW": "not-it-S3cret"})
    one_line_error(wrong, "wrong password (from $CERT_PW)")
    assert "not-it" not in wrong.stderr
    one_line_error(vpndoctor(str(files["user.pfx"])), "--password-env VAR")
    one_line_error(vpndoctor(str(files["user.pfx"]), "--password-env", "UNSET_VAR"), "UNSET_VAR is not set")


def test_problems_exit_1_and_validate(files: dict[str, Path]) -> None:
    proc = vpndoctor(
        str(files["expired-device.pem"]),
        "--ca",
        str(files["root.pem"]),
        "--for",
        "device",
        "--name",
        "pc9.corp.example",
        "--json",
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["verdict"]["root_causes"] == ["cert.lint.validity", "cert.lint.chain", "cert.lint.name"]


def test_garbage_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.cer"
    garbage.write_bytes(bytes(range(256)) * 8)
    one_line_error(vpndoctor(str(garbage)), "not a certificate")
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    one_line_error(vpndoctor(str(broken)), "does not parse as X.509")


def _duplicate_extension_der() -> bytes:
    """A certificate that parses until its extensions are read: two SANs (an IssuerAltName whose OID was
    turned into the SAN's in the TBS, signed again by hand)."""
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(KEY.public_key())
        .serial_number(9)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("a.example")]), critical=False)
        .add_extension(x509.IssuerAlternativeName([x509.DNSName("a.example")]), critical=False)
        .sign(ISSUING_KEY, hashes.SHA256())
    )
    tbs = cert.tbs_certificate_bytes.replace(bytes.fromhex("0603551d12"), bytes.fromhex("0603551d11"))
    signature = ISSUING_KEY.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    bits = b"\x03" + _der_len(len(signature) + 1) + b"\x00" + signature
    body = tbs + bytes.fromhex("300d06092a864886f70d01010b0500") + bits
    return b"\x30" + _der_len(len(body)) + body


def test_malformed_extensions_are_one_line(tmp_path: Path) -> None:
    dup = tmp_path / "dup.der"
    dup.write_bytes(_duplicate_extension_der())
    one_line_error(vpndoctor(str(dup)), "certificate 1 is malformed: Duplicate 2.5.29.17 extension")


def test_missing_file(tmp_path: Path) -> None:
    one_line_error(vpndoctor(str(tmp_path / "nope.pem")), "No such file or directory")


def test_directory_fifo_and_big_file(tmp_path: Path) -> None:
    one_line_error(vpndoctor(str(tmp_path)), "a directory")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    one_line_error(vpndoctor(str(fifo)), "a FIFO")
    big = tmp_path / "big.pem"
    big.write_bytes(b"\0" * ((1 << 20) + 1))
    one_line_error(vpndoctor(str(big)), "larger than 1 MiB")


def test_only_ca_certificates(files: dict[str, Path]) -> None:
    one_line_error(vpndoctor(str(files["root.pem"])), "no end-entity certificate")
