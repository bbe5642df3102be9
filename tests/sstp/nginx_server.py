"""A throwaway nginx on 127.0.0.1 (private config, pid, logs and temp dirs under a tmp directory) standing in
for an IP-HTTPS endpoint or an ADC in front of one, plus a PKI made with `cryptography`: a "DirectAccess CA"
issuing the server certificate and a client certificate, and a stranger CA issuing a wrong client certificate.
"""

from __future__ import annotations

import datetime
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path
    stranger_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _issue(
    subject: str,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    eku: list[x509.ObjectIdentifier],
    san: str | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path, server_name: str = "da.test") -> Pki:
    pem = serialization.Encoding.PEM
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _issue("DirectAccess CA", _name("DirectAccess CA"), ca_key, ca_key, ca=True, eku=[])
    srv_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    srv = _issue(
        server_name,
        ca.subject,
        ca_key,
        srv_key,
        ca=False,
        eku=[ExtendedKeyUsageOID.SERVER_AUTH],
        san=server_name,
    )
    cli_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cli = _issue(
        "client1.corp.test", ca.subject, ca_key, cli_key, ca=False, eku=[ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_ca = _issue("Stranger CA", _name("Stranger CA"), other_key, other_key, ca=True, eku=[])
    str_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = _issue(
        "stranger.test", other_ca.subject, other_key, str_key, ca=False, eku=[ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    pki = Pki(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        stranger_cert=directory / "stranger.pem",
        stranger_key=directory / "stranger.key",
    )
    pki.ca.write_bytes(ca.public_bytes(pem))
    pki.server_cert.write_bytes(srv.public_bytes(pem) + ca.public_bytes(pem))
    _write_key(pki.server_key, srv_key)
    pki.client_cert.write_bytes(cli.public_bytes(pem))
    _write_key(pki.client_key, cli_key)
    pki.stranger_cert.write_bytes(stranger.public_bytes(pem))
    _write_key(pki.stranger_key, str_key)
    return pki


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Nginx:
    """nginx -c <our config> -p <tmp>, master in the foreground (daemon off), stopped by pid."""

    def __init__(self, directory: Path, body: str, *, stream: bool = False, timeout_s: float = 10.0) -> None:
        exe = shutil.which("nginx")
        if exe is None:
            raise RuntimeError("nginx not installed")
        self.dir = directory
        for sub in ("logs", "tmp"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        load = "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n" if stream else ""
        tmp = directory / "tmp"
        http_common = (
            f"client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fcgi; "
            f"uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi; access_log {directory}/logs/access.log;"
        )
        block = body.replace("@PORT@", str(self.port)).replace("@HTTP_COMMON@", http_common)
        conf = (
            f"{load}daemon off; master_process on; worker_processes 1; pid {directory}/nginx.pid;\n"
            f"error_log {directory}/logs/error.log info;\nevents {{ worker_connections 64; }}\n{block}\n"
        )
        (directory / "nginx.conf").write_text(conf)
        self.proc = subprocess.Popen(
            [exe, "-p", str(directory), "-c", str(directory / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"nginx exited: {err.strip()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("nginx did not start listening") from None
                time.sleep(0.05)

    def error_log(self) -> str:
        return (self.dir / "logs" / "error.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stderr:
            self.proc.stderr.close()
