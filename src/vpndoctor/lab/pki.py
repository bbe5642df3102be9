"""The lab's certificate authority: issues the server certificate that the lab's strongSwan IKEv2
responders and SSTP servers present, optionally with one deliberate defect, so that every certificate
check in vpndoctor can be proven to catch the defect it is written for.
"""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from vpndoctor.certs import UPN_OID

__all__ = [
    "CERTIFICATE_DEFECTS",
    "CLIENT_CERTIFICATE_DEFECTS",
    "CertificateDefect",
    "ClientCertificateDefect",
    "ConnectPki",
    "ConnectPkiFiles",
    "DirectAccessPki",
    "DirectAccessPkiFiles",
    "IKE_INTERMEDIATE_OID",
    "REVOCATION_MODES",
    "LabPki",
    "LabPkiFiles",
    "RevocationPki",
    "RevocationPkiFiles",
    "RevocationUrls",
    "make_client_cert",
    "make_connect_pki",
    "make_directaccess_pki",
    "make_lab_pki",
    "make_revocation_pki",
    "revocation_urls",
]

CertificateDefect = Literal[
    "valid", "expired", "not-yet-valid", "wrong-name", "no-serverauth-eku", "untrusted-ca"
]
CERTIFICATE_DEFECTS: tuple[str, ...] = (
    "valid",
    "expired",
    "not-yet-valid",
    "wrong-name",
    "no-serverauth-eku",
    "untrusted-ca",
)

ClientCertificateDefect = Literal["valid", "expired", "no-clientauth-eku", "foreign-ca", "wrong-subject"]
CLIENT_CERTIFICATE_DEFECTS: tuple[str, ...] = (
    "valid",
    "expired",
    "no-clientauth-eku",
    "foreign-ca",
    "wrong-subject",
)

#: "IP security IKE intermediate" EKU; Windows IKEv2 clients (Always On VPN device/user tunnels) want it
#: next to serverAuth on the gateway certificate.
IKE_INTERMEDIATE_OID = ObjectIdentifier("1.3.6.1.5.5.8.2.2")

CA_COMMON_NAME = "vpndoctor lab CA"
ROGUE_CA_COMMON_NAME = "vpndoctor rogue CA"
WRONG_NAME_PREFIX = "wrong-"
# The ADC scenarios: client certificates (DirectAccess computer certificates) come from their own CA, which
# the ADC names in its CertificateRequest; a second, untrusted CA issues the certificate that must be refused.
DA_CA_COMMON_NAME = "vpndoctor DirectAccess CA"
WRONG_CLIENT_CA_COMMON_NAME = "vpndoctor wrong client CA"
DA_CLIENT_NAME = "client1.lab.test"
# The `connect` scenarios' client certificates: a CA nobody in the lab trusts issues the "foreign-ca" ones.
FOREIGN_CA_COMMON_NAME = "vpndoctor foreign CA"

_CA_LIFETIME = timedelta(days=3650)
_LEAF_LIFETIME = timedelta(days=365)
_BACKDATE = timedelta(days=1)

_KeyRole = Literal[
    "ca",
    "rogue-ca",
    "server",
    "client",
    "da-ca",
    "wrong-client-ca",
    "nps",
    "user",
    "machine",
    "foreign-ca",
    "issuing-ca",
]

# RSA key generation dominates the cost of building a PKI (tens to hundreds of milliseconds per 2048-bit
# key, seconds for 4096). A test run or a lab bring-up builds one PKI per scenario/defect, so keys are
# generated once per (key_bits, role) and reused for the life of the process: six PKIs cost three keys
# (CA, server, rogue CA) instead of eighteen. Reusing the CA key across PKIs is harmless in a throw-away
# lab; the rogue CA has its own role, so "untrusted-ca" still fails to chain to the trusted CA.
_KEY_CACHE: dict[tuple[int, str], rsa.RSAPrivateKey] = {}
_KEY_CACHE_LOCK = threading.Lock()


def _cached_key(key_bits: int, role: _KeyRole) -> rsa.RSAPrivateKey:
    with _KEY_CACHE_LOCK:
        key = _KEY_CACHE.get((key_bits, role))
        if key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=key_bits)
            _KEY_CACHE[(key_bits, role)] = key
        return key


@dataclass(frozen=True)
class LabPkiFiles:
    """Paths written by :meth:`LabPki.write`."""

    directory: Path
    ca_cert: Path  # ca.pem: the trust anchor probes are given
    ca_key: Path  # ca.key (0600)
    issuer_cert: Path  # issuer.pem: the CA that really signed server.pem
    server_cert: Path  # server.pem
    server_key: Path  # server.key (0600, PKCS#8, unencrypted)
    server_chain: Path  # server-chain.pem: server.pem + issuer.pem


@dataclass(frozen=True)
class LabPki:
    """A lab CA plus one server certificate carrying ``defect``."""

    ca_cert_pem: bytes  # the lab CA that probes are told to trust (trust anchor)
    ca_key_pem: bytes
    issuer_cert_pem: bytes  # the CA that signed the server cert; a separate rogue CA for "untrusted-ca"
    server_cert_pem: bytes
    server_key_pem: bytes  # PKCS#8, unencrypted
    server_name: str
    defect: str

    def write(self, directory: Path) -> LabPkiFiles:
        """Write the PEM files into ``directory`` (created if needed); private keys get mode 0600."""
        directory.mkdir(parents=True, exist_ok=True)
        files = LabPkiFiles(
            directory=directory,
            ca_cert=directory / "ca.pem",
            ca_key=directory / "ca.key",
            issuer_cert=directory / "issuer.pem",
            server_cert=directory / "server.pem",
            server_key=directory / "server.key",
            server_chain=directory / "server-chain.pem",
        )
        _write_file(files.ca_cert, self.ca_cert_pem, 0o644)
        _write_file(files.ca_key, self.ca_key_pem, 0o600)
        _write_file(files.issuer_cert, self.issuer_cert_pem, 0o644)
        _write_file(files.server_cert, self.server_cert_pem, 0o644)
        _write_file(files.server_key, self.server_key_pem, 0o600)
        _write_file(files.server_chain, self.server_cert_pem + self.issuer_cert_pem, 0o644)
        return files


def _write_file(path: Path, data: bytes, mode: int) -> None:
    # Create with the final mode so a key is never readable by others, even briefly; fchmod as well
    # because O_CREAT's mode is filtered by the umask and ignored for an existing file.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            fd = -1
            handle.write(data)
    finally:
        if fd != -1:
            os.close(fd)


def _utc(moment: datetime) -> datetime:
    """Normalise to an aware UTC datetime with whole seconds (X.509 times have no fractions)."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.replace(microsecond=0)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _make_ca(common_name: str, key: rsa.RSAPrivateKey, now: datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def _make_leaf(
    *,
    subject_cn: str,
    public_key: rsa.RSAPublicKey,
    issuer_cert: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    not_before: datetime,
    not_after: datetime,
    ekus: Sequence[ObjectIdentifier],
    san: Sequence[x509.GeneralName],
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
        .issuer_name(issuer_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(_rsa_public_key(issuer_cert)),
            critical=False,
        )
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _rsa_public_key(cert: x509.Certificate) -> rsa.RSAPublicKey:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError(f"expected an RSA certificate, got {type(key).__name__}")
    return key


def _check_defect(defect: str) -> CertificateDefect:
    if defect not in CERTIFICATE_DEFECTS:
        raise ValueError(
            f"unknown certificate defect {defect!r}; expected one of: {', '.join(CERTIFICATE_DEFECTS)}"
        )
    return cast(CertificateDefect, defect)


def make_lab_pki(
    server_name: str,
    defect: str = "valid",
    *,
    now: datetime,
    key_bits: int = 2048,
    extra_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
) -> LabPki:
    """Build the lab CA and a server certificate for ``server_name`` carrying ``defect``.

    ``now`` anchors every validity period (naive datetimes are taken as UTC). ``extra_names`` become
    extra DNS SANs and ``ip_addresses`` IP SANs. For "wrong-name" the only DNS name (CN and SAN) is
    ``wrong-<server_name>``: ``extra_names`` are left out so that no requested name matches, while IP
    SANs are kept.
    """
    checked = _check_defect(defect)
    if not server_name:
        raise ValueError("server_name must not be empty")
    moment = _utc(now)
    ips = [ipaddress.ip_address(address) for address in ip_addresses]

    ca_key = _cached_key(key_bits, "ca")
    ca_cert = _make_ca(CA_COMMON_NAME, ca_key, moment)
    if checked == "untrusted-ca":
        issuer_key = _cached_key(key_bits, "rogue-ca")
        issuer_cert = _make_ca(ROGUE_CA_COMMON_NAME, issuer_key, moment)
    else:
        issuer_key, issuer_cert = ca_key, ca_cert

    if checked == "expired":
        not_before, not_after = moment - timedelta(days=30), moment - timedelta(days=1)
    elif checked == "not-yet-valid":
        not_before, not_after = moment + timedelta(days=30), moment + timedelta(days=395)
    else:
        not_before, not_after = moment - _BACKDATE, moment + _LEAF_LIFETIME

    if checked == "wrong-name":
        dns_names = [WRONG_NAME_PREFIX + server_name]
    else:
        dns_names = [server_name, *(name for name in extra_names if name != server_name)]
    san: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    san.extend(x509.IPAddress(ip) for ip in ips)

    ekus: list[ObjectIdentifier]
    if checked == "no-serverauth-eku":
        ekus = [ExtendedKeyUsageOID.CLIENT_AUTH]
    else:
        ekus = [ExtendedKeyUsageOID.SERVER_AUTH, IKE_INTERMEDIATE_OID]

    server_key = _cached_key(key_bits, "server")
    server_cert = _make_leaf(
        subject_cn=dns_names[0],
        public_key=server_key.public_key(),
        issuer_cert=issuer_cert,
        issuer_key=issuer_key,
        not_before=not_before,
        not_after=not_after,
        ekus=ekus,
        san=san,
    )
    return LabPki(
        ca_cert_pem=_cert_pem(ca_cert),
        ca_key_pem=_key_pem(ca_key),
        issuer_cert_pem=_cert_pem(issuer_cert),
        server_cert_pem=_cert_pem(server_cert),
        server_key_pem=_key_pem(server_key),
        server_name=server_name,
        defect=checked,
    )


def make_client_cert(pki: LabPki, common_name: str, *, now: datetime) -> tuple[bytes, bytes]:
    """Issue a client certificate (EKU clientAuth) from the lab CA; returns (cert PEM, PKCS#8 key PEM).

    A common name containing "@" is also put in the SAN as an e-mail address (the usual EAP-TLS identity).
    """
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert_pem)
    ca_key = serialization.load_pem_private_key(pki.ca_key_pem, password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey):
        raise TypeError(f"expected an RSA lab CA key, got {type(ca_key).__name__}")
    moment = _utc(now)
    client_key = _cached_key(ca_key.key_size, "client")
    san: list[x509.GeneralName] = [x509.RFC822Name(common_name)] if "@" in common_name else []
    cert = _make_leaf(
        subject_cn=common_name,
        public_key=client_key.public_key(),
        issuer_cert=ca_cert,
        issuer_key=ca_key,
        not_before=moment - _BACKDATE,
        not_after=moment + _LEAF_LIFETIME,
        ekus=[ExtendedKeyUsageOID.CLIENT_AUTH],
        san=san,
    )
    return _cert_pem(cert), _key_pem(client_key)


def _issue_client(
    ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey, common_name: str, moment: datetime
) -> tuple[bytes, bytes]:
    client_key = _cached_key(ca_key.key_size, "client")
    san: list[x509.GeneralName] = [x509.RFC822Name(common_name)] if "@" in common_name else []
    if "@" not in common_name and "." in common_name:
        san = [x509.DNSName(common_name)]
    cert = _make_leaf(
        subject_cn=common_name,
        public_key=client_key.public_key(),
        issuer_cert=ca_cert,
        issuer_key=ca_key,
        not_before=moment - _BACKDATE,
        not_after=moment + _LEAF_LIFETIME,
        ekus=[ExtendedKeyUsageOID.CLIENT_AUTH],
        san=san,
    )
    return _cert_pem(cert), _key_pem(client_key)


@dataclass(frozen=True)
class DirectAccessPkiFiles:
    """Paths written by :meth:`DirectAccessPki.write` (well-known names: override configs rely on them)."""

    directory: Path
    da_ca_cert: Path  # da-ca.pem: the CA the ADC demands client certificates from
    server_cert: Path  # da-server.pem: the IP-HTTPS name, issued by the lab CA
    server_key: Path  # da-server.key (0600)
    server_chain: Path  # da-server-chain.pem: certificate + lab CA
    server_haproxy: Path  # da-server-haproxy.pem: chain + key in one file, as HAProxy's `crt` wants (0600)
    client_cert: Path  # da-client.pem: issued by the DirectAccess CA
    client_key: Path  # da-client.key (0600)
    wrong_ca_cert: Path  # da-wrong-ca.pem
    wrong_client_cert: Path  # da-client-wrong.pem: issued by the wrong CA
    wrong_client_key: Path  # da-client-wrong.key (0600)

    @classmethod
    def at(cls, directory: Path) -> DirectAccessPkiFiles:
        """The well-known file names in ``directory`` (a lab's `pki/`)."""
        return cls(
            directory=directory,
            da_ca_cert=directory / "da-ca.pem",
            server_cert=directory / "da-server.pem",
            server_key=directory / "da-server.key",
            server_chain=directory / "da-server-chain.pem",
            server_haproxy=directory / "da-server-haproxy.pem",
            client_cert=directory / "da-client.pem",
            client_key=directory / "da-client.key",
            wrong_ca_cert=directory / "da-wrong-ca.pem",
            wrong_client_cert=directory / "da-client-wrong.pem",
            wrong_client_key=directory / "da-client-wrong.key",
        )


@dataclass(frozen=True)
class DirectAccessPki:
    """The ADC's certificates: the IP-HTTPS server certificate (from the lab CA), the DirectAccess client CA
    and a client certificate from it, and a client certificate from a CA the ADC does not trust."""

    lab_ca_cert_pem: bytes
    da_ca_cert_pem: bytes
    server_cert_pem: bytes
    server_key_pem: bytes
    client_cert_pem: bytes
    client_key_pem: bytes
    wrong_ca_cert_pem: bytes
    wrong_client_cert_pem: bytes
    wrong_client_key_pem: bytes

    def write(self, directory: Path) -> DirectAccessPkiFiles:
        directory.mkdir(parents=True, exist_ok=True)
        files = DirectAccessPkiFiles.at(directory)
        chain = self.server_cert_pem + self.lab_ca_cert_pem
        _write_file(files.da_ca_cert, self.da_ca_cert_pem, 0o644)
        _write_file(files.server_cert, self.server_cert_pem, 0o644)
        _write_file(files.server_key, self.server_key_pem, 0o600)
        _write_file(files.server_chain, chain, 0o644)
        _write_file(files.server_haproxy, chain + self.server_key_pem, 0o600)
        _write_file(files.client_cert, self.client_cert_pem, 0o644)
        _write_file(files.client_key, self.client_key_pem, 0o600)
        _write_file(files.wrong_ca_cert, self.wrong_ca_cert_pem, 0o644)
        _write_file(files.wrong_client_cert, self.wrong_client_cert_pem, 0o644)
        _write_file(files.wrong_client_key, self.wrong_client_key_pem, 0o600)
        return files


def make_directaccess_pki(
    pki: LabPki,
    server_name: str,
    *,
    now: datetime,
    ip_addresses: Sequence[str] = (),
    client_name: str = DA_CLIENT_NAME,
) -> DirectAccessPki:
    """The ADC scenarios' certificates. The server certificate is always valid and issued by the lab CA
    (``pki``'s trust anchor, whatever defect ``pki`` carries); the two client CAs are new, with key sizes
    following the lab CA's."""
    if not server_name:
        raise ValueError("server_name must not be empty")
    moment = _utc(now)
    lab_ca = x509.load_pem_x509_certificate(pki.ca_cert_pem)
    lab_key = serialization.load_pem_private_key(pki.ca_key_pem, password=None)
    if not isinstance(lab_key, rsa.RSAPrivateKey):
        raise TypeError(f"expected an RSA lab CA key, got {type(lab_key).__name__}")
    bits = lab_key.key_size
    server_key = _cached_key(bits, "server")
    san: list[x509.GeneralName] = [x509.DNSName(server_name)]
    san.extend(x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses)
    server = _make_leaf(
        subject_cn=server_name,
        public_key=server_key.public_key(),
        issuer_cert=lab_ca,
        issuer_key=lab_key,
        not_before=moment - _BACKDATE,
        not_after=moment + _LEAF_LIFETIME,
        ekus=[ExtendedKeyUsageOID.SERVER_AUTH],
        san=san,
    )
    da_key = _cached_key(bits, "da-ca")
    da_ca = _make_ca(DA_CA_COMMON_NAME, da_key, moment)
    wrong_key = _cached_key(bits, "wrong-client-ca")
    wrong_ca = _make_ca(WRONG_CLIENT_CA_COMMON_NAME, wrong_key, moment)
    client_cert, client_key = _issue_client(da_ca, da_key, client_name, moment)
    wrong_cert, wrong_client_key = _issue_client(wrong_ca, wrong_key, client_name, moment)
    return DirectAccessPki(
        lab_ca_cert_pem=pki.ca_cert_pem,
        da_ca_cert_pem=_cert_pem(da_ca),
        server_cert_pem=_cert_pem(server),
        server_key_pem=_key_pem(server_key),
        client_cert_pem=client_cert,
        client_key_pem=client_key,
        wrong_ca_cert_pem=_cert_pem(wrong_ca),
        wrong_client_cert_pem=wrong_cert,
        wrong_client_key_pem=wrong_client_key,
    )


# --- the `connect` scenarios: the RADIUS server's certificate and the client certificates -------------------


@dataclass(frozen=True)
class ConnectPkiFiles:
    """Paths written by :meth:`ConnectPki.write` (well-known names in a lab's `pki/`)."""

    directory: Path
    nps_cert: Path  # nps.pem: the RADIUS server's EAP-TLS/PEAP certificate, from the lab CA
    nps_key: Path  # nps.key (0600)
    nps_chain: Path  # nps-chain.pem: certificate + lab CA
    user_cert: Path  # user.pem: the EAP-TLS user certificate
    user_key: Path  # user.key (0600)
    machine_cert: Path  # machine.pem: the device tunnel's machine certificate
    machine_key: Path  # machine.key (0600)
    foreign_ca_cert: Path  # foreign-ca.pem: issues the client certificates of the "foreign-ca" defect

    @classmethod
    def at(cls, directory: Path) -> ConnectPkiFiles:
        return cls(
            directory=directory,
            nps_cert=directory / "nps.pem",
            nps_key=directory / "nps.key",
            nps_chain=directory / "nps-chain.pem",
            user_cert=directory / "user.pem",
            user_key=directory / "user.key",
            machine_cert=directory / "machine.pem",
            machine_key=directory / "machine.key",
            foreign_ca_cert=directory / "foreign-ca.pem",
        )


@dataclass(frozen=True)
class ConnectPki:
    """The certificates a real client and the NPS stand-in need: the RADIUS server certificate (always
    valid, from the lab CA) and a user and a machine certificate carrying the client-certificate defect."""

    lab_ca_cert_pem: bytes
    nps_cert_pem: bytes
    nps_key_pem: bytes
    user_cert_pem: bytes
    user_key_pem: bytes
    machine_cert_pem: bytes
    machine_key_pem: bytes
    foreign_ca_cert_pem: bytes
    defect: str

    def write(self, directory: Path) -> ConnectPkiFiles:
        directory.mkdir(parents=True, exist_ok=True)
        files = ConnectPkiFiles.at(directory)
        _write_file(files.nps_cert, self.nps_cert_pem, 0o644)
        _write_file(files.nps_key, self.nps_key_pem, 0o600)
        _write_file(files.nps_chain, self.nps_cert_pem + self.lab_ca_cert_pem, 0o644)
        _write_file(files.user_cert, self.user_cert_pem, 0o644)
        _write_file(files.user_key, self.user_key_pem, 0o600)
        _write_file(files.machine_cert, self.machine_cert_pem, 0o644)
        _write_file(files.machine_key, self.machine_key_pem, 0o600)
        _write_file(files.foreign_ca_cert, self.foreign_ca_cert_pem, 0o644)
        return files


def _der_utf8_string(text: str) -> bytes:
    """A DER UTF8String (tag 12), the value of a UPN otherName."""
    data = text.encode("utf-8")
    if len(data) < 128:
        return bytes([12, len(data)]) + data
    size = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
    return bytes([12, 0x80 | len(size)]) + size + data


def make_connect_pki(
    pki: LabPki,
    *,
    now: datetime,
    defect: str = "valid",
    user: str,
    device: str,
    nps_name: str,
    key_bits: int = 2048,
) -> ConnectPki:
    """Issue the RADIUS server certificate for ``nps_name`` (serverAuth) and the client certificates from
    the lab CA (``pki``'s trust anchor, whatever defect its server certificate carries).

    The user certificate names ``user`` (CN, and an RFC 822 SAN when it contains "@": the identity
    strongSwan's EAP-TLS looks for), the machine certificate names ``device`` (CN and DNS SAN), both with
    the clientAuth EKU. ``defect``: "expired" (both ended yesterday), "no-clientauth-eku" (both carry
    serverAuth instead), "foreign-ca" (both issued by a CA nobody in the lab trusts), "wrong-subject" (the
    machine certificate names ``wrong-<device>``; the user certificate stays valid).
    """
    if defect not in CLIENT_CERTIFICATE_DEFECTS:
        raise ValueError(
            f"unknown client certificate defect {defect!r}; expected one of: "
            f"{', '.join(CLIENT_CERTIFICATE_DEFECTS)}"
        )
    if not (user and device and nps_name):
        raise ValueError("user, device and nps_name must not be empty")
    moment = _utc(now)
    lab_ca = x509.load_pem_x509_certificate(pki.ca_cert_pem)
    lab_key = serialization.load_pem_private_key(pki.ca_key_pem, password=None)
    if not isinstance(lab_key, rsa.RSAPrivateKey):
        raise TypeError(f"expected an RSA lab CA key, got {type(lab_key).__name__}")
    foreign_key = _cached_key(key_bits, "foreign-ca")
    foreign_ca = _make_ca(FOREIGN_CA_COMMON_NAME, foreign_key, moment)

    nps_key = _cached_key(key_bits, "nps")
    nps = _make_leaf(
        subject_cn=nps_name,
        public_key=nps_key.public_key(),
        issuer_cert=lab_ca,
        issuer_key=lab_key,
        not_before=moment - _BACKDATE,
        not_after=moment + _LEAF_LIFETIME,
        ekus=[ExtendedKeyUsageOID.SERVER_AUTH],
        san=[x509.DNSName(nps_name)],
    )

    issuer_cert, issuer_key = (foreign_ca, foreign_key) if defect == "foreign-ca" else (lab_ca, lab_key)
    if defect == "expired":
        not_before, not_after = moment - timedelta(days=30), moment - timedelta(days=1)
    else:
        not_before, not_after = moment - _BACKDATE, moment + _LEAF_LIFETIME
    no_eku = defect == "no-clientauth-eku"
    ekus = [ExtendedKeyUsageOID.SERVER_AUTH if no_eku else ExtendedKeyUsageOID.CLIENT_AUTH]
    machine_name = WRONG_NAME_PREFIX + device if defect == "wrong-subject" else device

    def issue(role: _KeyRole, cn: str, san: list[x509.GeneralName]) -> tuple[bytes, bytes]:
        key = _cached_key(key_bits, role)
        cert = _make_leaf(
            subject_cn=cn,
            public_key=key.public_key(),
            issuer_cert=issuer_cert,
            issuer_key=issuer_key,
            not_before=not_before,
            not_after=not_after,
            ekus=ekus,
            san=san,
        )
        return _cert_pem(cert), _key_pem(key)

    # As AD's User template issues it: the UPN in the SAN (what Windows EAP-TLS and NPS map the account by),
    # and the RFC 822 name strongSwan's EAP-TLS looks the identity up by.
    user_san: list[x509.GeneralName] = (
        [x509.OtherName(x509.ObjectIdentifier(UPN_OID), _der_utf8_string(user)), x509.RFC822Name(user)]
        if "@" in user
        else []
    )
    user_cert, user_key = issue("user", user, user_san)
    machine_cert, machine_key = issue("machine", machine_name, [x509.DNSName(machine_name)])
    return ConnectPki(
        lab_ca_cert_pem=pki.ca_cert_pem,
        nps_cert_pem=_cert_pem(nps),
        nps_key_pem=_key_pem(nps_key),
        user_cert_pem=user_cert,
        user_key_pem=user_key,
        machine_cert_pem=machine_cert,
        machine_key_pem=machine_key,
        foreign_ca_cert_pem=_cert_pem(foreign_ca),
        defect=defect,
    )


# --- revocation: an intermediate CA, CDP/AIA/OCSP URLs, the CRLs and the OCSP responder's index ------------

REVOCATION_MODES: tuple[str, ...] = (
    "none",
    "ok",
    "cdp-unreachable",
    "crl-expired",
    "revoked",
    "ocsp-down",
    "aia-intermediate",
)
ISSUING_CA_COMMON_NAME = "vpndoctor lab issuing CA"
# AD CS publishes an LDAP CDP first by default; clients outside the domain cannot reach it.
_LDAP_CDP = (
    "ldap:///CN=vpndoctor%20lab%20issuing%20CA,CN=pki,CN=CDP,CN=Public%20Key%20Services,CN=Services,"
    "CN=Configuration,DC=lab,DC=test?certificateRevocationList?base?objectClass=cRLDistributionPoint"
)


@dataclass(frozen=True)
class RevocationUrls:
    """What the certificates name: the server certificate's CDP, OCSP and caIssuers URLs, and the
    intermediate's CDP."""

    crl: tuple[str, ...]
    ocsp: tuple[str, ...]
    ca_issuers: tuple[str, ...]
    intermediate_crl: tuple[str, ...]


def revocation_urls(
    mode: str, *, crl_host: str, ocsp_host: str, ocsp_port: int, internal_host: str
) -> RevocationUrls:
    """The URLs the lab's certificates carry for `mode` (see scenario.RevocationMode)."""
    public_crl = (f"http://{crl_host}/issuing.crl",)
    ocsp = (f"http://{ocsp_host}:{ocsp_port}/",)
    aia = (f"http://{crl_host}/issuing.crt",)
    root_crl = (f"http://{crl_host}/root.crl",)
    if mode == "cdp-unreachable":
        internal = f"http://{internal_host}"
        return RevocationUrls(
            (_LDAP_CDP, f"{internal}/issuing.crl"), (), (f"{internal}/issuing.crt",), root_crl
        )
    if mode == "crl-expired":
        return RevocationUrls(public_crl, (), aia, root_crl)
    return RevocationUrls(public_crl, ocsp, aia, root_crl)


@dataclass(frozen=True)
class RevocationPkiFiles:
    """Paths written by :meth:`RevocationPki.write`."""

    www: Path  # what the crl host's web server serves: root.crl, issuing.crl, issuing.crt, root.crt
    ocsp_index: Path  # the OCSP responder's `openssl ca` index
    issuing_cert: Path  # the intermediate (the responder signs as it)
    issuing_key: Path  # (0600)


@dataclass(frozen=True)
class RevocationPki:
    """The lab PKI of a revocation scenario: the server certificate issued by an intermediate CA (itself
    issued by the lab CA, the trust anchor), with CDP/AIA URLs per `mode`; the CRLs the crl host publishes
    and the index its OCSP responder answers from."""

    lab: LabPki  # issuer_cert_pem: the intermediate; ca_cert_pem: the lab CA (trust anchor)
    mode: str
    urls: RevocationUrls
    server_chain_pem: bytes  # what the servers send: leaf + intermediate, the leaf alone for aia-intermediate
    issuing_key_pem: bytes
    published: dict[str, bytes]  # file name on the crl host -> content
    ocsp_index: str

    def write(self, pki_dir: Path, www: Path, ocsp_dir: Path) -> tuple[LabPkiFiles, RevocationPkiFiles]:
        files = self.lab.write(pki_dir)
        _write_file(files.server_chain, self.server_chain_pem, 0o644)
        www.mkdir(parents=True, exist_ok=True)
        os.chmod(www, 0o755)
        for name, data in self.published.items():
            _write_file(www / name, data, 0o644)
        ocsp_dir.mkdir(parents=True, exist_ok=True)
        rev = RevocationPkiFiles(
            www=www,
            ocsp_index=ocsp_dir / "index.txt",
            issuing_cert=ocsp_dir / "issuing.pem",
            issuing_key=ocsp_dir / "issuing.key",
        )
        _write_file(rev.ocsp_index, self.ocsp_index.encode(), 0o644)
        _write_file(ocsp_dir / "index.txt.attr", b"unique_subject = no\n", 0o644)
        _write_file(rev.issuing_cert, self.lab.issuer_cert_pem, 0o644)
        _write_file(rev.issuing_key, self.issuing_key_pem, 0o600)
        return files, rev


def _uri_points(urls: Sequence[str]) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None) for u in urls]
    )


def _aia(ocsp_urls: Sequence[str], ca_issuers: Sequence[str]) -> x509.AuthorityInformationAccess:
    from cryptography.x509.oid import AuthorityInformationAccessOID as Aia

    return x509.AuthorityInformationAccess(
        [x509.AccessDescription(Aia.OCSP, x509.UniformResourceIdentifier(u)) for u in ocsp_urls]
        + [x509.AccessDescription(Aia.CA_ISSUERS, x509.UniformResourceIdentifier(u)) for u in ca_issuers]
    )


def _crl(
    issuer: x509.Certificate,
    key: rsa.RSAPrivateKey,
    *,
    this_update: datetime,
    next_update: datetime,
    number: int,
    revoked: Sequence[x509.RevokedCertificate] = (),
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(_rsa_public_key(issuer)), critical=False
        )
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _index_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%y%m%d%H%M%SZ")


def make_revocation_pki(
    pki: LabPki,
    mode: str,
    *,
    now: datetime,
    urls: RevocationUrls,
) -> RevocationPki:
    """Re-issue ``pki``'s server certificate from a new intermediate CA (signed by ``pki``'s lab CA), with the
    revocation URLs of ``mode``, and build what the crl host publishes: the lab CA's CRL (root.crl), the
    intermediate's (issuing.crl: listing the server certificate for "revoked", past its nextUpdate for
    "crl-expired"), the intermediate for AIA (issuing.crt, DER) and the OCSP responder's index."""
    if mode not in REVOCATION_MODES or mode == "none":
        raise ValueError(
            f"unknown revocation mode {mode!r}; expected one of: {', '.join(REVOCATION_MODES[1:])}"
        )
    if pki.defect != "valid":
        raise ValueError("revocation scenarios need the valid server certificate")
    moment = _utc(now)
    root = x509.load_pem_x509_certificate(pki.ca_cert_pem)
    root_key = serialization.load_pem_private_key(pki.ca_key_pem, password=None)
    if not isinstance(root_key, rsa.RSAPrivateKey):
        raise TypeError(f"expected an RSA lab CA key, got {type(root_key).__name__}")
    bits = root_key.key_size
    issuing_key = _cached_key(bits, "issuing-ca")
    issuing_public = issuing_key.public_key()
    issuing = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUING_CA_COMMON_NAME)]))
        .issuer_name(root.subject)
        .public_key(issuing_public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - _BACKDATE)
        .not_valid_after(moment + _CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(issuing_public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(_rsa_public_key(root)), critical=False
        )
        .add_extension(_uri_points(urls.intermediate_crl), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    old = x509.load_pem_x509_certificate(pki.server_cert_pem)
    server_key = serialization.load_pem_private_key(pki.server_key_pem, password=None)
    if not isinstance(server_key, rsa.RSAPrivateKey):
        raise TypeError(f"expected an RSA server key, got {type(server_key).__name__}")
    san = old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ekus = old.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(issuing.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - _BACKDATE)
        .not_valid_after(moment + _LEAF_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(old.extensions.get_extension_for_class(x509.KeyUsage).value, critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuing_public), critical=False)
        .add_extension(san, critical=False)
        .add_extension(_uri_points(urls.crl), critical=False)
    )
    if urls.ocsp or urls.ca_issuers:
        builder = builder.add_extension(_aia(urls.ocsp, urls.ca_issuers), critical=False)
    server = builder.sign(issuing_key, hashes.SHA256())

    revoked_at = moment - timedelta(hours=1)
    entries = []
    if mode == "revoked":
        entries.append(
            x509.RevokedCertificateBuilder()
            .serial_number(server.serial_number)
            .revocation_date(revoked_at)
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    if mode == "crl-expired":
        this_update, next_update = moment - timedelta(days=10), moment - timedelta(days=3)
    else:
        this_update, next_update = moment - timedelta(hours=1), moment + timedelta(days=7)
    published = {
        "root.crl": _crl(
            root,
            root_key,
            this_update=moment - timedelta(hours=1),
            next_update=moment + timedelta(days=7),
            number=1,
        ),
        "issuing.crl": _crl(
            issuing, issuing_key, this_update=this_update, next_update=next_update, number=2, revoked=entries
        ),
        "issuing.crt": issuing.public_bytes(serialization.Encoding.DER),
        "root.crt": root.public_bytes(serialization.Encoding.DER),
    }
    serial = f"{server.serial_number:X}"
    serial = serial if len(serial) % 2 == 0 else "0" + serial
    subject = "/CN=" + str(server.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    expiry = _index_time(server.not_valid_after_utc)
    if mode == "revoked":
        line = f"R\t{expiry}\t{_index_time(revoked_at)},keyCompromise\t{serial}\tunknown\t{subject}\n"
    else:
        line = f"V\t{expiry}\t\t{serial}\tunknown\t{subject}\n"
    server_pem, issuing_pem = _cert_pem(server), _cert_pem(issuing)
    lab = LabPki(
        ca_cert_pem=pki.ca_cert_pem,
        ca_key_pem=pki.ca_key_pem,
        issuer_cert_pem=issuing_pem,
        server_cert_pem=server_pem,
        server_key_pem=pki.server_key_pem,
        server_name=pki.server_name,
        defect=pki.defect,
    )
    return RevocationPki(
        lab=lab,
        mode=mode,
        urls=urls,
        server_chain_pem=server_pem if mode == "aia-intermediate" else server_pem + issuing_pem,
        issuing_key_pem=_key_pem(issuing_key),
        published=published,
        ocsp_index=line,
    )
