"""The lab PKI's deliberate certificate defects, checked with the real openssl command line."""

from __future__ import annotations

import shutil
import stat
import subprocess
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vpndoctor.lab.pki import (
    CERTIFICATE_DEFECTS,
    CLIENT_CERTIFICATE_DEFECTS,
    IKE_INTERMEDIATE_OID,
    CertificateDefect,
    ClientCertificateDefect,
    ConnectPkiFiles,
    DirectAccessPki,
    DirectAccessPkiFiles,
    LabPki,
    LabPkiFiles,
    make_client_cert,
    make_connect_pki,
    make_directaccess_pki,
    make_lab_pki,
)

SERVER = "vpn.lab.test"
EXTRA = "vpn-alt.lab.test"
IP = "192.0.2.10"

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl command line tool not installed")


def _now() -> datetime:
    # openssl checks validity against the wall clock, so the PKI must be anchored at the real "now".
    return datetime.now(UTC)


def _pki(defect: str) -> LabPki:
    return make_lab_pki(SERVER, defect, now=_now(), extra_names=[EXTRA], ip_addresses=[IP])


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *map(str, args)], capture_output=True, text=True, timeout=30, check=False)


def _verify(ca: Path, cert: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _openssl("verify", *extra, "-CAfile", ca, cert)


def _out(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


@pytest.fixture(params=CERTIFICATE_DEFECTS)
def written(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[LabPki, LabPkiFiles]:
    pki = _pki(request.param)
    return pki, pki.write(tmp_path / "pki")


# --- API shape -------------------------------------------------------------------------------------------


def test_defect_tuple_matches_literal() -> None:
    assert typing.get_args(CertificateDefect) == CERTIFICATE_DEFECTS
    assert CERTIFICATE_DEFECTS[0] == "valid"


def test_unknown_defect_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"unknown certificate defect 'bogus'; expected one of: valid, "):
        make_lab_pki(SERVER, "bogus", now=_now())


def test_keys_are_cached_per_role() -> None:
    a, b = _pki("valid"), _pki("expired")
    assert a.server_key_pem == b.server_key_pem
    assert a.ca_key_pem == b.ca_key_pem
    rogue = _pki("untrusted-ca")
    assert rogue.issuer_cert_pem != rogue.ca_cert_pem
    rogue_issuer = x509.load_pem_x509_certificate(rogue.issuer_cert_pem)
    ca = x509.load_pem_x509_certificate(rogue.ca_cert_pem)
    assert rogue_issuer.public_key() != ca.public_key()
    assert rogue_issuer.subject.rfc4514_string() == "CN=vpndoctor rogue CA"


def test_certificate_shapes_valid() -> None:
    now = _now()
    pki = make_lab_pki(SERVER, now=now, extra_names=[EXTRA], ip_addresses=[IP])
    assert pki.defect == "valid" and pki.server_name == SERVER
    assert pki.issuer_cert_pem == pki.ca_cert_pem
    ca = x509.load_pem_x509_certificate(pki.ca_cert_pem)
    cert = x509.load_pem_x509_certificate(pki.server_cert_pem)

    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "vpndoctor lab CA"
    ca_bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert ca_bc.critical and ca_bc.value.ca
    ca_ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ca_ku.key_cert_sign and ca_ku.crl_sign and not ca_ku.digital_signature
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ca.not_valid_after_utc - ca.not_valid_before_utc == timedelta(days=3651)

    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SERVER
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [SERVER, EXTRA]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [IP]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, IKE_INTERMEDIATE_OID]
    assert IKE_INTERMEDIATE_OID.dotted_string == "1.3.6.1.5.5.8.2.2"
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.key_encipherment and not ku.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048
    start = now.replace(microsecond=0)
    assert cert.not_valid_before_utc == start - timedelta(days=1)
    assert cert.not_valid_after_utc == start + timedelta(days=365)
    cert.verify_directly_issued_by(ca)


def test_validity_windows_of_time_defects() -> None:
    now = datetime(2030, 6, 1, 12, 0, 0, 500_000, tzinfo=UTC)
    start = now.replace(microsecond=0)
    expired = x509.load_pem_x509_certificate(make_lab_pki(SERVER, "expired", now=now).server_cert_pem)
    assert (expired.not_valid_before_utc, expired.not_valid_after_utc) == (
        start - timedelta(days=30),
        start - timedelta(days=1),
    )
    early = x509.load_pem_x509_certificate(make_lab_pki(SERVER, "not-yet-valid", now=now).server_cert_pem)
    assert (early.not_valid_before_utc, early.not_valid_after_utc) == (
        start + timedelta(days=30),
        start + timedelta(days=395),
    )


def test_wrong_name_names_nothing_requested() -> None:
    pki = _pki("wrong-name")
    cert = x509.load_pem_x509_certificate(pki.server_cert_pem)
    assert cert.subject.rfc4514_string() == "CN=wrong-vpn.lab.test"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["wrong-vpn.lab.test"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [IP]


# --- files -----------------------------------------------------------------------------------------------


def test_written_files(written: tuple[LabPki, LabPkiFiles]) -> None:
    pki, files = written
    for path in (files.ca_key, files.server_key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in (files.ca_cert, files.issuer_cert, files.server_cert, files.server_chain):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    names = [files.ca_cert, files.ca_key, files.issuer_cert, files.server_cert, files.server_key]
    assert [p.name for p in names] == ["ca.pem", "ca.key", "issuer.pem", "server.pem", "server.key"]
    assert files.server_chain.name == "server-chain.pem"
    assert all(p.parent == files.directory for p in [*names, files.server_chain])
    assert files.server_chain.read_bytes() == pki.server_cert_pem + pki.issuer_cert_pem
    assert files.server_key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    assert files.ca_key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_write_tightens_existing_key_file(tmp_path: Path) -> None:
    key = tmp_path / "server.key"
    key.write_bytes(b"old")
    key.chmod(0o644)
    _pki("valid").write(tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


# --- the real openssl ------------------------------------------------------------------------------------

VERIFY_ERRORS = {
    "expired": "certificate has expired",
    "not-yet-valid": "certificate is not yet valid",
    "untrusted-ca": "unable to get local issuer certificate",
}


@needs_openssl
def test_openssl_verify_against_trusted_ca(written: tuple[LabPki, LabPkiFiles]) -> None:
    pki, files = written
    proc = _verify(files.ca_cert, files.server_cert)
    if pki.defect in ("valid", "wrong-name", "no-serverauth-eku"):
        assert proc.returncode == 0, _out(proc)
        assert f"{files.server_cert}: OK" in proc.stdout
    else:
        assert proc.returncode != 0, _out(proc)
        assert VERIFY_ERRORS[pki.defect] in _out(proc)


@needs_openssl
def test_openssl_verify_purpose_sslserver(written: tuple[LabPki, LabPkiFiles]) -> None:
    pki, files = written
    proc = _verify(files.ca_cert, files.server_cert, "-purpose", "sslserver")
    if pki.defect in ("valid", "wrong-name"):
        assert proc.returncode == 0, _out(proc)
    else:
        assert proc.returncode != 0, _out(proc)
    if pki.defect == "no-serverauth-eku":
        assert "unsuitable certificate purpose" in _out(proc)


@needs_openssl
def test_openssl_x509_strict_accepts_valid_chain(tmp_path: Path) -> None:
    files = _pki("valid").write(tmp_path)
    # -x509_strict also insists on RFC 5280 details (AKI/SKI present, CA basicConstraints critical, ...).
    proc = _verify(files.ca_cert, files.server_cert, "-x509_strict", "-purpose", "sslserver")
    assert proc.returncode == 0, _out(proc)


@needs_openssl
def test_openssl_untrusted_ca_is_a_real_chain(tmp_path: Path) -> None:
    files = _pki("untrusted-ca").write(tmp_path)
    assert _verify(files.ca_cert, files.server_cert).returncode != 0
    proc = _verify(files.issuer_cert, files.server_cert, "-purpose", "sslserver")
    assert proc.returncode == 0, _out(proc)
    subject = _openssl("x509", "-in", files.issuer_cert, "-noout", "-subject")
    assert "vpndoctor rogue CA" in subject.stdout


@needs_openssl
@pytest.mark.parametrize("defect", ["valid", "wrong-name"])
def test_openssl_checkhost(defect: str, tmp_path: Path) -> None:
    files = _pki(defect).write(tmp_path)
    proc = _openssl("x509", "-in", files.server_cert, "-noout", "-checkhost", SERVER, "-checkip", IP)
    assert proc.returncode == 0, _out(proc)
    if defect == "valid":
        assert f"Hostname {SERVER} does match certificate" in proc.stdout
    else:
        assert f"Hostname {SERVER} does NOT match certificate" in proc.stdout
        wrong = _openssl("x509", "-in", files.server_cert, "-noout", "-checkhost", f"wrong-{SERVER}")
        assert f"Hostname wrong-{SERVER} does match certificate" in wrong.stdout
    # IP SANs are kept for every defect.
    assert f"IP {IP} does match certificate" in proc.stdout


@needs_openssl
@pytest.mark.parametrize(
    ("defect", "expires"), [("valid", False), ("expired", True), ("not-yet-valid", False)]
)
def test_openssl_checkend(defect: str, expires: bool, tmp_path: Path) -> None:
    files = _pki(defect).write(tmp_path)
    proc = _openssl("x509", "-in", files.server_cert, "-noout", "-checkend", "0")
    assert (proc.returncode != 0) == expires, _out(proc)


@needs_openssl
@pytest.mark.parametrize("defect", ["valid", "no-serverauth-eku"])
def test_openssl_eku_text(defect: str, tmp_path: Path) -> None:
    files = _pki(defect).write(tmp_path)
    proc = _openssl("x509", "-in", files.server_cert, "-noout", "-ext", "extendedKeyUsage")
    assert proc.returncode == 0, _out(proc)
    if defect == "valid":
        assert "TLS Web Server Authentication" in proc.stdout
        # OpenSSL 3.0 has no name for the IKE-intermediate OID and prints it dotted; newer releases may
        # name it, so accept either.
        ike_spellings = ("1.3.6.1.5.5.8.2.2", "IKE Intermediate", "ipsec IKE")
        assert any(s in proc.stdout for s in ike_spellings), proc.stdout
    else:
        assert "TLS Web Client Authentication" in proc.stdout
        assert "TLS Web Server Authentication" not in proc.stdout


@needs_openssl
def test_openssl_key_matches_certificate(tmp_path: Path) -> None:
    files = _pki("valid").write(tmp_path)
    cert_pub = _openssl("x509", "-in", files.server_cert, "-noout", "-pubkey")
    key_pub = _openssl("pkey", "-in", files.server_key, "-pubout")
    assert cert_pub.returncode == 0 and key_pub.returncode == 0
    assert cert_pub.stdout == key_pub.stdout


# --- client certificate ----------------------------------------------------------------------------------


def test_client_cert_shape() -> None:
    pki = _pki("valid")
    cert_pem, key_pem = make_client_cert(pki, "alice@lab.test", now=_now())
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice@lab.test"
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["alice@lab.test"]
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(pki.ca_cert_pem))
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert key_pem != pki.server_key_pem


@needs_openssl
def test_client_cert_verifies_against_lab_ca(tmp_path: Path) -> None:
    # Issued by the trusted lab CA even when the server cert of this PKI came from the rogue CA.
    pki = _pki("untrusted-ca")
    files = pki.write(tmp_path)
    cert_pem, _ = make_client_cert(pki, "device01", now=_now())
    client = tmp_path / "client.pem"
    client.write_bytes(cert_pem)
    assert _verify(files.ca_cert, client, "-purpose", "sslclient").returncode == 0
    assert _verify(files.ca_cert, client, "-purpose", "sslserver").returncode != 0
    eku = _openssl("x509", "-in", client, "-noout", "-ext", "extendedKeyUsage")
    assert "TLS Web Client Authentication" in eku.stdout


# --- the DirectAccess ADC's certificates -------------------------------------------------------------------

DA_NAME = "da.lab.test"
DA_IP = "203.0.113.20"


def _da(tmp_path: Path, defect: str = "valid") -> tuple[DirectAccessPki, DirectAccessPkiFiles, LabPkiFiles]:
    lab = _pki(defect)
    lab_files = lab.write(tmp_path)
    da = make_directaccess_pki(lab, DA_NAME, now=_now(), ip_addresses=[DA_IP, "2001:db8:113::20"])
    return da, da.write(tmp_path), lab_files


def test_directaccess_files_and_modes(tmp_path: Path) -> None:
    da, files, _ = _da(tmp_path)
    assert files == DirectAccessPkiFiles.at(tmp_path)
    secret = (files.server_key, files.server_haproxy, files.client_key, files.wrong_client_key)
    public = (files.da_ca_cert, files.server_cert, files.server_chain, files.client_cert, files.wrong_ca_cert)
    for path in secret:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in (*public, files.wrong_client_cert):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert files.server_haproxy.read_bytes() == da.server_cert_pem + da.lab_ca_cert_pem + da.server_key_pem
    assert [p.name for p in public] == [
        "da-ca.pem",
        "da-server.pem",
        "da-server-chain.pem",
        "da-client.pem",
        "da-wrong-ca.pem",
    ]


def test_directaccess_certificate_shapes(tmp_path: Path) -> None:
    da, _, _ = _da(tmp_path)
    da_ca = x509.load_pem_x509_certificate(da.da_ca_cert_pem)
    wrong = x509.load_pem_x509_certificate(da.wrong_ca_cert_pem)
    assert da_ca.subject.rfc4514_string() == "CN=vpndoctor DirectAccess CA"
    assert wrong.subject.rfc4514_string() == "CN=vpndoctor wrong client CA"
    assert da_ca.public_key() != wrong.public_key()
    for pem in (da.client_cert_pem, da.wrong_client_cert_pem):
        cert = x509.load_pem_x509_certificate(pem)
        assert cert.subject.rfc4514_string() == "CN=client1.lab.test"
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    x509.load_pem_x509_certificate(da.client_cert_pem).verify_directly_issued_by(da_ca)
    x509.load_pem_x509_certificate(da.wrong_client_cert_pem).verify_directly_issued_by(wrong)
    server = x509.load_pem_x509_certificate(da.server_cert_pem)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [DA_NAME]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [DA_IP, "2001:db8:113::20"]
    with pytest.raises(ValueError, match="server_name"):
        make_directaccess_pki(_pki("valid"), "", now=_now())


@needs_openssl
def test_directaccess_chains_with_openssl(tmp_path: Path) -> None:
    _, files, lab_files = _da(tmp_path)
    # client certificates: each verifies only against its own CA, and only as a client
    assert _verify(files.da_ca_cert, files.client_cert, "-purpose", "sslclient").returncode == 0
    assert _verify(files.da_ca_cert, files.client_cert, "-purpose", "sslserver").returncode != 0
    assert _verify(lab_files.ca_cert, files.client_cert).returncode != 0
    assert _verify(files.da_ca_cert, files.wrong_client_cert).returncode != 0
    assert _verify(files.wrong_ca_cert, files.wrong_client_cert, "-purpose", "sslclient").returncode == 0
    # the IP-HTTPS server certificate chains to the lab CA, names da.lab.test and the VIP
    proc = _verify(lab_files.ca_cert, files.server_cert, "-x509_strict", "-purpose", "sslserver")
    assert proc.returncode == 0, _out(proc)
    check = _openssl("x509", "-in", files.server_cert, "-noout", "-checkhost", DA_NAME, "-checkip", DA_IP)
    assert f"Hostname {DA_NAME} does match" in check.stdout and f"IP {DA_IP} does match" in check.stdout
    # the HAProxy bundle's key belongs to its certificate
    key_pub = _openssl("pkey", "-in", files.server_haproxy, "-pubout")
    cert_pub = _openssl("x509", "-in", files.server_haproxy, "-noout", "-pubkey")
    assert key_pub.returncode == 0 and key_pub.stdout == cert_pub.stdout


@needs_openssl
def test_directaccess_server_cert_stays_valid_whatever_the_lab_defect(tmp_path: Path) -> None:
    # The lab's `certificate` knob breaks vpn.lab.test's certificate, not the ADC's.
    _, files, lab_files = _da(tmp_path, "untrusted-ca")
    proc = _verify(lab_files.ca_cert, files.server_cert, "-purpose", "sslserver")
    assert proc.returncode == 0, _out(proc)


# --- the `connect` scenarios: RADIUS server certificate and client certificates ---------------------------

USER = "dave@lab.test"
DEVICE = "device1.lab.test"
NPS = "nps.lab.test"


def _connect(tmp_path: Path, defect: str = "valid", lab_defect: str = "valid") -> ConnectPkiFiles:
    lab = _pki(lab_defect)
    lab.write(tmp_path)
    pki = make_connect_pki(lab, now=_now(), defect=defect, user=USER, device=DEVICE, nps_name=NPS)
    return pki.write(tmp_path)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_client_defect_tuple_matches_literal() -> None:
    assert typing.get_args(ClientCertificateDefect) == CLIENT_CERTIFICATE_DEFECTS
    from vpndoctor.lab import scenario

    assert typing.get_args(scenario.ClientCertificateDefect) == CLIENT_CERTIFICATE_DEFECTS
    with pytest.raises(ValueError, match="unknown client certificate defect 'bogus'"):
        make_connect_pki(_pki("valid"), now=_now(), defect="bogus", user=USER, device=DEVICE, nps_name=NPS)


def test_connect_files_modes_and_shapes(tmp_path: Path) -> None:
    files = _connect(tmp_path)
    assert files == ConnectPkiFiles.at(tmp_path)
    for key in (files.nps_key, files.user_key, files.machine_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    user, machine, nps = _cert(files.user_cert), _cert(files.machine_cert), _cert(files.nps_cert)
    for cert in (user, machine, nps):
        cert.verify_directly_issued_by(ca)
    assert _cn(user) == USER and _cn(machine) == DEVICE and _cn(nps) == NPS
    san = user.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == [USER]
    san = machine.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [DEVICE]
    for cert in (user, machine):
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert list(nps.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert files.nps_chain.read_bytes() == files.nps_cert.read_bytes() + (tmp_path / "ca.pem").read_bytes()
    # three different keys: the user's, the machine's, the RADIUS server's
    keys = {p.read_bytes() for p in (files.user_key, files.machine_key, files.nps_key)}
    assert len(keys) == 3


def test_connect_certs_come_from_the_trusted_ca_whatever_the_server_defect(tmp_path: Path) -> None:
    files = _connect(tmp_path, lab_defect="untrusted-ca")
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    _cert(files.machine_cert).verify_directly_issued_by(ca)
    _cert(files.nps_cert).verify_directly_issued_by(ca)


@needs_openssl
@pytest.mark.parametrize("defect", CLIENT_CERTIFICATE_DEFECTS)
def test_openssl_judges_client_certificate_defects(defect: str, tmp_path: Path) -> None:
    files = _connect(tmp_path, defect)
    ca = tmp_path / "ca.pem"
    for cert in (files.user_cert, files.machine_cert):
        proc = _verify(ca, cert, "-purpose", "sslclient")
        if defect in ("valid", "wrong-subject"):
            assert proc.returncode == 0, _out(proc)
        else:
            assert proc.returncode != 0, _out(proc)
            expected = {
                "expired": "certificate has expired",
                "no-clientauth-eku": "unsuitable certificate purpose",
                "foreign-ca": "unable to get local issuer certificate",
            }[defect]
            assert expected in _out(proc)
    nps = _verify(ca, files.nps_cert, "-purpose", "sslserver")
    assert nps.returncode == 0, _out(nps)  # the RADIUS server's certificate never carries the defect
    machine = _cert(files.machine_cert)
    assert _cn(machine) == ("wrong-" + DEVICE if defect == "wrong-subject" else DEVICE)
    assert _cn(_cert(files.user_cert)) == USER
    if defect == "foreign-ca":
        foreign = _verify(files.foreign_ca_cert, files.machine_cert, "-purpose", "sslclient")
        assert foreign.returncode == 0, _out(foreign)
