"""Credentials the commands that authenticate (`connect`, `diagnose`) read: the EAP password, never from the
command line (other users see it in `ps`), but from an environment variable, the first line of a file only
its owner can read, or a prompt on the terminal; a device tunnel's machine certificate and key; and an
EAP-TLS / PEAP-TLS user's client certificate and key. A private key file every user of the machine can read is
refused (as a password file is): whoever else reads it can be that machine or that user.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from vpndoctor.cli.output import warn
from vpndoctor.errors import UsageError
from vpndoctor.inputs import read_small_input

if TYPE_CHECKING:
    from vpndoctor.probes.eap_methods import ClientCertificate

# The credential options `connect` and `diagnose` share, declared once (their --user, --eap and --machine-cert
# help differs: diagnose says what they add to its report).
PasswordEnvOption = Annotated[
    str | None,
    typer.Option("--password-env", metavar="VAR", help="Read the EAP password from this variable."),
]
PasswordFileOption = Annotated[
    str | None,
    typer.Option(
        "--password-file",
        metavar="FILE",
        help="Read the EAP password from the first line of FILE (mode 600).",
    ),
]
ClientCertOption = Annotated[
    str | None,
    typer.Option(
        "--client-cert",
        metavar="PEM",
        help="EAP-TLS/PEAP-TLS: the user certificate (PEM/DER; intermediates may follow in the file).",
    ),
]
ClientKeyOption = Annotated[
    str | None,
    typer.Option("--client-key", metavar="PEM", help="EAP-TLS/PEAP-TLS: its private key (PEM, mode 600)."),
]
EapCaOption = Annotated[
    list[str] | None,
    typer.Option(
        "--eap-ca",
        metavar="PEM",
        help="EAP-TLS/PEAP: trust anchor for the RADIUS (NPS) server's certificate, repeatable "
        "(Windows' trusted root CAs of the EAP configuration); default: those of --ca.",
    ),
]
EapServerNameOption = Annotated[
    list[str] | None,
    typer.Option(
        "--eap-server-name",
        metavar="NAME",
        help="EAP-TLS/PEAP: a name the RADIUS server's certificate must carry (Windows' 'Connect to "
        "these servers'), repeatable; default: any name, the chain to --ca is checked.",
    ),
]
MachineKeyOption = Annotated[
    str | None,
    typer.Option("--machine-key", metavar="PEM", help="Device tunnel: its RSA private key (PEM)."),
]
DeviceNameOption = Annotated[
    str | None,
    typer.Option("--device-name", metavar="FQDN", help="Device tunnel: the FQDN the certificate must name."),
]

MAX_PASSWORD_FILE_BYTES = 4096
MAX_KEY_FILE_BYTES = 1 << 20


def read_password(user: str, password_env: str | None, password_file: str | None) -> str:
    """The password from exactly one place; a UsageError (never quoting the password) otherwise."""
    if password_env is not None and password_file is not None:
        raise UsageError("give the password one way: --password-env or --password-file, not both")
    if password_env is not None:
        value = os.environ.get(password_env)
        if value is None:
            raise UsageError(f"--password-env {password_env}: no such environment variable")
        if not value:
            raise UsageError(f"--password-env {password_env}: the variable is empty")
        return value
    if password_file is not None:
        return _password_from_file(password_file)
    if not sys.stdin.isatty():
        raise UsageError(
            "no password: give --password-env VAR or --password-file FILE (stdin is no terminal to ask on)"
        )
    try:
        value = getpass.getpass(f"Password for {user}: ")
    except (EOFError, KeyboardInterrupt):
        raise UsageError("no password entered") from None
    if not value:
        raise UsageError("no password entered")
    return value


def _password_from_file(path: str) -> str:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise UsageError(f"--password-file {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"--password-file {path}: is a directory")
    if mode & stat.S_IROTH:
        raise UsageError(
            f"--password-file {path}: every user of this machine can read it "
            f"(mode {stat.S_IMODE(mode):04o}); chmod 600 {path}"
        )
    if mode & stat.S_IRGRP:
        warn(f"--password-file {path}: its group can read it (mode {stat.S_IMODE(mode):04o}); chmod 600 it")
    # Bounded, and a FIFO without a writer is refused rather than waited for.
    data, _ = read_small_input(path, MAX_PASSWORD_FILE_BYTES, too_big="a password file holds one line")
    raw = data.split(b"\n", 1)[0]
    try:
        value = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise UsageError(f"--password-file {path}: its first line is not UTF-8 text") from None
    if not value:
        raise UsageError(f"--password-file {path}: the first line is empty")
    return value


def load_machine_credentials(
    cert_path: str, key_path: str, intermediates: list[str]
) -> tuple[tuple[bytes, ...], rsa.RSAPrivateKey]:
    """A device tunnel's certificate chain (ours first, DER) and its RSA private key; a UsageError (never
    quoting the key) otherwise."""
    from cryptography.hazmat.primitives import serialization

    from vpndoctor.certfiles import read_certificate_files

    files = read_certificate_files([cert_path, *intermediates])
    chain = [c for f in files for c in f.certificates]
    if not chain:
        raise UsageError(f"--machine-cert {cert_path}: no certificate in it")
    key = _private_key(key_path, "--machine-key")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UsageError(f"--machine-key {key_path}: an RSA key is needed (Windows signs with RSA)")
    return tuple(c.public_bytes(serialization.Encoding.DER) for c in chain), key


def _check_key_mode(path: str, option: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode) and mode & stat.S_IROTH:
        raise UsageError(
            f"{option} {path}: every user of this machine can read this private key "
            f"(mode {stat.S_IMODE(mode):04o}); chmod 600 {path}"
        )


def _private_key(path: str, option: str) -> PrivateKeyTypes:
    """An unencrypted PEM private key, read bounded and FIFO-safe; the messages never quote it."""
    from cryptography.hazmat.primitives import serialization

    _check_key_mode(path, option)
    pem, _ = read_small_input(path, MAX_KEY_FILE_BYTES, too_big="a private key is a few KB")
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # the library's message may quote the PEM; ours does not
        raise UsageError(f"{option} {path}: not an unencrypted PEM private key") from None


def load_client_credentials(cert_path: str, key_path: str) -> ClientCertificate:
    """An EAP-TLS user's certificate (then intermediates from the same file) and its RSA or EC key."""
    from cryptography.hazmat.primitives import serialization

    from vpndoctor.certfiles import read_certificate_files
    from vpndoctor.probes.eap_methods import ClientCertificate

    files = read_certificate_files([cert_path])
    chain = [c for f in files for c in f.certificates]
    if not chain:
        raise UsageError(f"--client-cert {cert_path}: no certificate in it")
    key = _private_key(key_path, "--client-key")
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise UsageError(f"--client-key {key_path}: an RSA or EC key is needed (what Windows enrolls)")
    if chain[0].public_key() != key.public_key():
        raise UsageError(f"--client-key {key_path} is not the key of the --client-cert certificate")
    return ClientCertificate(tuple(c.public_bytes(serialization.Encoding.DER) for c in chain), key)


def user_credentials(
    eap: str,
    user: str | None,
    password_env: str | None,
    password_file: str | None,
    client_cert: str | None,
    client_key: str | None,
) -> tuple[str, str | None, ClientCertificate | None]:
    """(EAP identity, password, client certificate) for `--eap`: a password for mschapv2 and
    peap-mschapv2, a certificate and key for tls and peap-tls (the identity then defaults to the
    certificate's e-mail/UPN name or CN, as Windows sends it)."""
    from vpndoctor.probes.eap_methods import certificate_identity

    if eap in ("tls", "peap-tls"):
        if password_env is not None or password_file is not None:
            raise UsageError(f"--eap {eap} authenticates with a certificate: drop the password")
        if client_cert is None or client_key is None:
            raise UsageError(f"--eap {eap} needs --client-cert and --client-key")
        certificate = load_client_credentials(client_cert, client_key)
        name = user if user is not None else certificate_identity(certificate.chain[0])
        if not name.strip():
            raise UsageError("the certificate names no identity to send: give --user")
        return name, None, certificate
    if client_cert is not None or client_key is not None:
        raise UsageError(f"--client-cert and --client-key go with --eap tls or peap-tls, not {eap}")
    if user is None or not user.strip():
        raise UsageError("--user must not be empty (or give --machine-cert for a device tunnel)")
    return user, read_password(user, password_env, password_file), None
