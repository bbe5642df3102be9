"""Reading the certificate files `vpndoctor cert` lints: PEM (one or many certificates, perhaps a private
key beside them), DER, PKCS#12 (.pfx/.p12) and PKCS#7 (.p7b), each into a `certs.CertificateFile`.

A certificate file is small: at most MAX_CERT_FILE_BYTES are read (`inputs.read_small_input`), and only
from a regular file (`-` is stdin) - a FIFO, a directory or a device is refused before it is opened. Every
failure is one line (UsageError, exit 2), never a traceback. A PKCS#12 password comes from an environment
variable (`password_from_env`), never from the command line; it is never put in a message, and a private key
is dropped as soon as its presence is noted.
"""

from __future__ import annotations

import os
import re
import stat
import warnings

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from vpndoctor.certs import CertificateFile, CertificateFormat
from vpndoctor.errors import UsageError
from vpndoctor.inputs import read_small_input

__all__ = ["MAX_CERT_FILE_BYTES", "password_from_env", "read_certificate_file", "read_certificate_files"]

MAX_CERT_FILE_BYTES = 1 << 20  # a certificate with its chain is a few KB; a PKCS#12 with a key, a few more

_TOO_BIG = "a certificate file is a few KB: is this the right file?"
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 #]+)-----(.*?)-----END \1-----", re.S)
_CERT_LABELS = (b"CERTIFICATE", b"X509 CERTIFICATE")
_PKCS7_LABELS = (b"PKCS7", b"PKCS #7 SIGNED DATA", b"CMS")
# What cryptography raises on a malformed certificate: not only ValueError.
_MALFORMED = (ValueError, x509.InvalidVersion, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


def password_from_env(var: str | None) -> bytes | None:
    """The PKCS#12 password held by the environment variable `var` (None: no --password-env)."""
    if var is None:
        return None
    if not var or "=" in var or "\0" in var:
        raise UsageError(f"--password-env {var!r}: not an environment variable name")
    value = os.environ.get(var)
    if value is None:
        raise UsageError(f"--password-env {var}: the environment variable {var} is not set")
    return value.encode("utf-8")


def _check_regular(path: str) -> None:
    if path == "-":
        return
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path}: a directory, not a certificate file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise UsageError(f"{path}: {kind}, not a regular certificate file")


def _checked(cert: x509.Certificate, name: str, position: int) -> x509.Certificate:
    """`cert` once the fields the judge reads have parsed: cryptography parses some of them lazily."""
    try:
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        _ = cert.serial_number, cert.not_valid_before_utc, cert.not_valid_after_utc
        _ = list(cert.extensions)
    except _MALFORMED as exc:
        raise UsageError(f"{name}: certificate {position} is malformed: {_short(exc)}") from None
    return cert


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 120 else text[:117] + "..."


def _pem(data: bytes, name: str) -> tuple[CertificateFormat, list[x509.Certificate], bool]:
    certs: list[x509.Certificate] = []
    private_key, other = False, []
    fmt: CertificateFormat = "pem"
    for match in _PEM_BLOCK.finditer(data):
        label, block = match.group(1), match.group(0)
        if label in _CERT_LABELS:
            try:
                certs.append(x509.load_pem_x509_certificate(block))
            except _MALFORMED:
                raise UsageError(
                    f"{name}: certificate {len(certs) + 1} of this PEM file does not parse as X.509"
                ) from None
        elif label in _PKCS7_LABELS:
            try:
                certs += pkcs7.load_pem_pkcs7_certificates(block)
            except (*_MALFORMED, UnsupportedAlgorithm):
                raise UsageError(f"{name}: a PKCS#7 block of this PEM file does not parse") from None
        elif label.endswith(b"PRIVATE KEY"):
            private_key = True
        else:
            other.append(label.decode("ascii"))
    if not certs:
        if private_key:
            raise UsageError(f"{name}: a private key but no certificate")
        if other:
            raise UsageError(f"{name}: no certificate in this PEM file (it holds: {', '.join(other)})")
        raise UsageError(f"{name}: no complete PEM block (-----BEGIN CERTIFICATE----- ... -----END ...)")
    return fmt, certs, private_key


def _der_length(data: bytes, offset: int) -> tuple[int, int] | None:
    """(length, offset of the content) of the DER length at `offset`, or None."""
    if offset >= len(data):
        return None
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    size = first & 0x7F
    if size == 0 or size > 4 or offset + 1 + size > len(data):
        return None
    return int.from_bytes(data[offset + 1 : offset + 1 + size], "big"), offset + 1 + size


def _looks_like_pfx(data: bytes) -> bool:
    """PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData OPTIONAL } (RFC 7292)."""
    if not data or data[0] != 0x30:
        return False
    header = _der_length(data, 1)
    return header is not None and data[header[1] : header[1] + 3] == b"\x02\x01\x03"


def _pkcs12(
    data: bytes, name: str, password: bytes | None, password_var: str | None
) -> tuple[list[x509.Certificate], bool]:
    tries: list[bytes | None] = [password] if password is not None else [None, b""]
    for attempt in tries:
        try:
            loaded = pkcs12.load_pkcs12(data, attempt)
        except ValueError as exc:
            if "password" in str(exc).lower():
                continue
            raise UsageError(f"{name}: a PKCS#12 file that does not parse") from None
        except _MALFORMED:
            raise UsageError(f"{name}: a PKCS#12 file that does not parse") from None
        except UnsupportedAlgorithm:
            raise UsageError(
                f"{name}: a PKCS#12 file encrypted with an algorithm this build cannot read; export it "
                "again with AES-256 (Export-PfxCertificate -CryptoAlgorithmOption AES256_SHA256)"
            ) from None
        certs = [loaded.cert.certificate] if loaded.cert is not None else []
        certs += [c.certificate for c in loaded.additional_certs]
        has_key = loaded.key is not None
        del loaded  # the private key goes with it
        if not certs:
            raise UsageError(f"{name}: a PKCS#12 file without a certificate")
        return certs, has_key
    if password is None:
        raise UsageError(
            f"{name}: a password-protected PKCS#12 file: put the password in an environment variable "
            "and name it with --password-env VAR"
        )
    raise UsageError(f"{name}: PKCS#12: wrong password (from ${password_var}) or a damaged file")


def _binary(
    data: bytes, name: str, password: bytes | None, password_var: str | None
) -> tuple[CertificateFormat, list[x509.Certificate], bool]:
    try:
        return "der", [x509.load_der_x509_certificate(data)], False
    except _MALFORMED:
        pass
    if _looks_like_pfx(data):
        certs, has_key = _pkcs12(data, name, password, password_var)
        return "pkcs12", certs, has_key
    try:
        certs = pkcs7.load_der_pkcs7_certificates(data)
    except (*_MALFORMED, UnsupportedAlgorithm):
        certs = []
    if certs:
        return "pkcs7", certs, False
    raise UsageError(f"{name}: not a certificate (neither PEM, DER X.509, PKCS#12 nor PKCS#7)")


def read_certificate_file(
    path: str, password: bytes | None = None, password_var: str | None = None
) -> CertificateFile:
    """The certificates of one file, in file order; `password` opens a PKCS#12 file (`password_var` names
    where it came from, for the message when it is wrong)."""
    _check_regular(path)
    data, name = read_small_input(path, MAX_CERT_FILE_BYTES, too_big=_TOO_BIG)
    if not data.strip():
        raise UsageError(f"{name}: an empty file")
    # cryptography warns about some certificates it still reads (a negative serial number): the lint
    # judges what it can read, and stderr stays one line per problem.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if b"-----BEGIN" in data:
            fmt, certs, has_key = _pem(data, name)
        else:
            fmt, certs, has_key = _binary(data, name, password, password_var)
        checked = tuple(_checked(c, name, i) for i, c in enumerate(certs, 1))
    return CertificateFile(path=name, format=fmt, certificates=checked, private_key=has_key)


def read_certificate_files(
    paths: list[str], password: bytes | None = None, password_var: str | None = None
) -> list[CertificateFile]:
    return [read_certificate_file(p, password, password_var) for p in paths]
