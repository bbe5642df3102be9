"""vpndoctor.trust: --ca files and the system bundle, shared by ike, diagnose, tls, sstp and iphttps."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from vpndoctor.errors import UsageError
from vpndoctor.trust import load_trust_anchors, system_bundle, trust_anchors


def _ca(cn: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def test_pem_bundle_and_der_files(tmp_path: Path) -> None:
    a, b, c = _ca("A"), _ca("B"), _ca("C")
    pem = tmp_path / "two.pem"
    pem.write_bytes(a.public_bytes(serialization.Encoding.PEM) + b.public_bytes(serialization.Encoding.PEM))
    der = tmp_path / "one.der"
    der.write_bytes(c.public_bytes(serialization.Encoding.DER))
    assert load_trust_anchors([str(pem), str(der)]) == [a, b, c]
    anchors, source = trust_anchors([str(der)])
    assert anchors == [c] and source == "--ca"


@pytest.mark.parametrize("content", [None, b"not a certificate", b"-----BEGIN CERTIFICATE-----\nZm9v\n"])
def test_bad_ca_file_is_a_usage_error(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError) as exc:
        load_trust_anchors([str(path)])
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_one_bad_entry_in_a_system_bundle_costs_only_itself(tmp_path: Path) -> None:
    good = _ca("Good")
    broken = b"-----BEGIN CERTIFICATE-----\nMIIBroken\n-----END CERTIFICATE-----\n"
    bundle = tmp_path / "bundle.crt"
    bundle.write_bytes(broken + good.public_bytes(serialization.Encoding.PEM) + broken)
    assert system_bundle(bundle) == [good]
    assert system_bundle(tmp_path / "missing.crt") == []


def test_without_ca_files_the_system_store_is_named() -> None:
    anchors, source = trust_anchors([])
    assert source.startswith("the system store")
    if "none found" not in source:
        assert anchors, "a system bundle that exists yields anchors"
