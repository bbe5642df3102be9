"""Throwaway TLS servers on 127.0.0.1 for the audit tests: nginx and HAProxy with a private config, pid and
log in a temporary directory, and tiny hostile asyncio servers that misbehave on purpose.

The daemons get an ephemeral port (bound, noted, released, handed over) and are waited for until they accept
TCP; every process is stopped by its own pid.
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.tls.openssl_server import free_port
from vpndoctor.tls.hello import ExtensionType, HandshakeType, Version, parse_client_hello


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vpndoctor"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass(frozen=True)
class AuditPki:
    directory: Path
    server_ca: Path  # trust anchor for the server certificate
    server_cert: Path  # leaf + nothing else
    server_key: Path
    client_ca: Path  # the "DirectAccess CA" a server asks client certificates from
    client_cert: Path  # issued by client_ca
    client_key: Path
    other_client_cert: Path  # issued by a CA the server does not know
    other_client_key: Path
    client_ca_name: str  # RFC 4514


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _cert(
    subject: x509.Name,
    issuer: x509.Name,
    pub: rsa.RSAPublicKey,
    signer: rsa.RSAPrivateKey,
    *,
    ca: bool,
    eku: list[x509.ObjectIdentifier] | None = None,
    san: list[str] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in san]), critical=False)
    return b.sign(signer, hashes.SHA256())


def make_audit_pki(directory: Path) -> AuditPki:
    """Server CA + server cert (SAN da.test, serverAuth), a client CA + client cert, and a stranger's cert."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]
    server_ca_key, client_ca_key, leaf_key = keys
    server_ca = _cert(
        _name("Audit Server CA"), _name("Audit Server CA"), server_ca_key.public_key(), server_ca_key, ca=True
    )
    client_ca_name = _name("vpndoctor DirectAccess CA")
    client_ca = _cert(client_ca_name, client_ca_name, client_ca_key.public_key(), client_ca_key, ca=True)
    leaf = _cert(
        _name("da.test"),
        server_ca.subject,
        leaf_key.public_key(),
        server_ca_key,
        ca=False,
        eku=[ExtendedKeyUsageOID.SERVER_AUTH],
        san=["da.test"],
    )
    client = _cert(
        _name("client1"),
        client_ca_name,
        leaf_key.public_key(),
        client_ca_key,
        ca=False,
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    stranger_name = _name("Stranger CA")
    other = _cert(
        _name("client2"),
        stranger_name,
        leaf_key.public_key(),
        leaf_key,
        ca=False,
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    pem = serialization.Encoding.PEM
    paths = {
        "server_ca": server_ca.public_bytes(pem),
        "server_cert": leaf.public_bytes(pem),
        "client_ca": client_ca.public_bytes(pem),
        "client_cert": client.public_bytes(pem),
        "other_client_cert": other.public_bytes(pem),
    }
    for name, data in paths.items():
        (directory / f"{name}.pem").write_bytes(data)
    for name in ("server_key", "client_key", "other_client_key"):
        _write_key(directory / f"{name}.pem", leaf_key)
    return AuditPki(
        directory,
        directory / "server_ca.pem",
        directory / "server_cert.pem",
        directory / "server_key.pem",
        directory / "client_ca.pem",
        directory / "client_cert.pem",
        directory / "client_key.pem",
        directory / "other_client_cert.pem",
        directory / "other_client_key.pem",
        client_ca_name.rfc4514_string(),
    )


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes], timeout_s: float = 10.0, host: str = "127.0.0.1"
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout_s} s")


class Daemon:
    """A foreground daemon we started; stop() kills exactly that pid."""

    def __init__(self, argv: list[str], port: int, workdir: Path, host: str = "127.0.0.1") -> None:
        self.port = port
        self.workdir = workdir
        self.log = (workdir / "daemon.out").open("wb")
        self.proc = subprocess.Popen(
            argv, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            wait_for_port(port, self.proc, host=host)
        except RuntimeError:
            self.stop()
            raise RuntimeError(
                f"{argv[0]} did not start: {(workdir / 'daemon.out').read_text()[-2000:]}"
            ) from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


def start_nginx(
    workdir: Path,
    pki: AuditPki,
    *,
    protocols: str = "TLSv1.2 TLSv1.3",
    ciphers: str = "HIGH:!aNULL",
    prefer_server: bool = False,
    verify_client: str = "off",
    session_cache: bool = True,
    tickets: bool = True,
    host: str = "127.0.0.1",
) -> Daemon:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise RuntimeError("nginx not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    verify = ""
    if verify_client != "off":
        verify = f"ssl_verify_client {verify_client}; ssl_client_certificate {pki.client_ca};"
    cache = "ssl_session_cache shared:vdtls:1m;" if session_cache else "ssl_session_cache off;"
    conf = f"""
daemon off;
master_process off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    server {{
        listen {f"[{host}]" if ":" in host else host}:{port} ssl;
        server_name da.test;
        ssl_certificate {pki.server_cert};
        ssl_certificate_key {pki.server_key};
        ssl_protocols {protocols};
        ssl_ciphers "{ciphers}";
        ssl_prefer_server_ciphers {"on" if prefer_server else "off"};
        {verify}
        {cache}
        ssl_session_tickets {"on" if tickets else "off"};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""
    (workdir / "nginx.conf").write_text(conf)
    return Daemon([nginx, "-p", str(workdir), "-c", str(workdir / "nginx.conf")], port, workdir, host)


def start_haproxy(
    workdir: Path,
    pki: AuditPki,
    *,
    ciphers: str = "ECDHE-RSA-AES128-SHA:NULL-SHA:@SECLEVEL=0",
    verify: str = "required",
    min_ver: str = "TLSv1.2",
    max_ver: str = "TLSv1.2",
) -> Daemon:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        raise RuntimeError("haproxy not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    bundle = workdir / "server.pem"
    bundle.write_bytes(pki.server_cert.read_bytes() + pki.server_key.read_bytes())
    verify_opt = "" if verify == "none" else f"verify {verify} ca-file {pki.client_ca}"
    bind = f"ssl crt {bundle} ciphers {ciphers} ssl-min-ver {min_ver} ssl-max-ver {max_ver} {verify_opt}"
    conf = f"""
global
    pidfile {workdir}/haproxy.pid
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port} {bind}
    http-request return status 200 content-type text/plain string ok
"""
    (workdir / "haproxy.cfg").write_text(conf)
    return Daemon([haproxy, "-db", "-f", str(workdir / "haproxy.cfg")], port, workdir)


# ------------------------------------------------------------------------------------- hostile servers

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class HostileServer:
    """An asyncio TCP server on 127.0.0.1 in a thread of its own, running `handler` for every connection."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1") -> None:
        self._handler = handler
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self._host = host
        self.port = 0
        self.connections = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("hostile server did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self._handler(reader, writer)
            except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
                pass
            finally:
                writer.transport.abort()

        async def start() -> None:
            self._server = await asyncio.start_server(handle, self._host, 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        fut = asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        fut.result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def big_certificate(extension_bytes: int, directory: Path) -> bytes:
    """A DER certificate for da.test carrying an opaque private extension of `extension_bytes` bytes
    (how a hostile or broken server makes its first flight arbitrarily large)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    blob = b"\x04\x83" + extension_bytes.to_bytes(3, "big") + b"A" * extension_bytes  # OCTET STRING
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("da.test"))
        .issuer_name(_name("da.test"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("da.test")]), critical=False)
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), blob), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "big.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / "big.key", key)
    return cert.public_bytes(serialization.Encoding.DER)


def tls12_certificate_server(cert_der: bytes) -> Handler:
    """Accepts TLS 1.2 only, with whatever suite the client offers first, and answers with ServerHello,
    Certificate (`cert_der`, however large, in 16 KiB records) and ServerHelloDone; other versions get a
    protocol_version alert. It never finishes a handshake: the flight is what is under test."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        header = await reader.readexactly(5)
        body = await reader.readexactly(int.from_bytes(header[3:5], "big"))
        hello = parse_client_hello(body[4:])
        sv = hello.extension(ExtensionType.SUPPORTED_VERSIONS)
        offered = (
            {int.from_bytes(sv.data[i : i + 2], "big") for i in range(1, len(sv.data), 2)}
            if sv is not None
            else {hello.legacy_version}
        )
        suite = next((s for s in hello.cipher_suites if s >> 8 != 0x13 and s not in (0x00FF, 0x5600)), None)
        if Version.TLS1_2 not in offered or suite is None:
            writer.write(b"\x15\x03\x03\x00\x02\x02\x46")  # fatal protocol_version
            await writer.drain()
            return
        secure_renegotiation = b"\x00\x05\xff\x01\x00\x01\x00"  # RFC 5746, or OpenSSL clients stop at once
        server_hello = b"\x03\x03" + b"\x42" * 32 + b"\x00" + suite.to_bytes(2, "big") + b"\x00"
        server_hello += secure_renegotiation
        chain = len(cert_der).to_bytes(3, "big") + cert_der
        chain = len(chain).to_bytes(3, "big") + chain
        flight = b"".join(
            bytes([t]) + len(b).to_bytes(3, "big") + b
            for t, b in (
                (HandshakeType.SERVER_HELLO, server_hello),
                (HandshakeType.CERTIFICATE, chain),
                (HandshakeType.SERVER_HELLO_DONE, b""),
            )
        )
        for i in range(0, len(flight), 2**14):
            part = flight[i : i + 2**14]
            writer.write(b"\x16\x03\x03" + len(part).to_bytes(2, "big") + part)
        await writer.drain()
        await reader.read(65536)  # until the client gives up

    return handler
