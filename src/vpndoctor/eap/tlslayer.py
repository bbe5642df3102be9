"""What EAP-TLS (RFC 5216) and PEAP share, peer side: the TLS record fragmentation of the EAP Type-Data
(Flags with L, M and S, the TLS Message Length, ACKs), a TLS 1.2 client driven through memory, and the key
material RFC 5216 §2.3 derives from the TLS master secret.

TLS stack: Python's `ssl` (OpenSSL) over two `ssl.MemoryBIO`s, so that no socket is involved: bytes from the
server's EAP requests go into one BIO, what OpenSSL writes comes out of the other. `ssl` has no
keying-material exporter, so the key material is derived as RFC 5216 says:
TLS-PRF-128(master_secret, "client EAP encryption", client.random || server.random), the PRF the negotiated
suite names (RFC 5246 §5, P_SHA256, or P_SHA384 for the SHA-384 suites) built on `cryptography`'s HMAC. The
master secret comes from the context's key log (the NSS "CLIENT_RANDOM" line OpenSSL writes), the randoms
from the ClientHello and ServerHello seen passing through the BIOs. TLS is pinned to 1.2 as Windows' EAP-TLS
and PEAP use it by default (TLS 1.3 for EAP, RFC 9190, is opt-in on Windows 11 and needs an exporter `ssl`
does not expose); a server that insists on 1.3 fails the handshake with
a named reason.

I/O: none on the network. OpenSSL reads the client certificate and key, and writes its key log, through file
names only; both are anonymous memory files (`memfd_create`, closed as soon as they were read), so no key and
no master secret ever reaches a disk (where there is no memfd_create: mode-0600 files in a private directory,
removed as soon as they were read). The server certificate is verified by OpenSSL against the anchors given
(what Windows' "Verify the server's identity by validating the certificate" does) before the handshake ends.
Nothing here prints, logs or puts a key, the master secret or the MSK into a repr or message.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, hmac

from vpndoctor.eap.errors import EapDecodeError, EapProtocolError
from vpndoctor.eap.method import EapEvent

__all__ = [
    "FLAG_LENGTH",
    "FLAG_MORE",
    "FLAG_START",
    "MAX_TLS_MESSAGE_BYTES",
    "TlsAlert",
    "TlsClient",
    "TlsFramer",
    "TlsHandshakeDone",
    "TlsServerCertificate",
    "key_material",
    "tls_prf",
]

FLAG_LENGTH = 0x80  # L: the TLS Message Length field is present
FLAG_MORE = 0x40  # M: more fragments follow
FLAG_START = 0x20  # S: EAP-TLS/PEAP Start
VERSION_MASK = 0x07  # PEAP: the version bits
FRAGMENT_BYTES = 1024  # TLS data per EAP message (strongSwan's and FreeRADIUS' default fragment size)
MAX_TLS_MESSAGE_BYTES = 64 * 1024  # a server flight with a certificate chain is a few KB
_EAP_TLS_LABEL = b"client EAP encryption"

ALERTS = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    90: "user_canceled",
    116: "certificate_required",
}
# Alerts a server sends when it refuses the client's certificate (RFC 5246 §7.2.2).
CLIENT_CERT_ALERTS = frozenset({42, 43, 44, 45, 46, 48, 49, 116})


# ---- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsServerCertificate(EapEvent):
    """The EAP server's (the RADIUS server's) certificate and our verdict on it; `reason` says why not."""

    subject: str
    issuer: str
    not_after: str
    verified: bool
    reason: str | None


@dataclass(frozen=True)
class TlsAlert(EapEvent):
    """A TLS alert: `sent` by us (we refused the server) or received (the server refused us)."""

    sent: bool
    description: int
    name: str


@dataclass(frozen=True)
class TlsHandshakeDone(EapEvent):
    version: str  # "TLSv1.2"
    cipher: str  # OpenSSL's name, e.g. ECDHE-RSA-AES256-GCM-SHA384
    client_certificate_sent: bool


# ---- the PRF and the key material (RFC 5246 §5, RFC 5216 §2.3) --------------------------------------------


def _p_hash(algorithm: hashes.HashAlgorithm, secret: bytes, seed: bytes, length: int) -> bytes:
    def mac(data: bytes) -> bytes:
        h = hmac.HMAC(secret, algorithm)
        h.update(data)
        return h.finalize()

    out = b""
    a = seed
    while len(out) < length:
        a = mac(a)
        out += mac(a + seed)
    return out[:length]


def tls_prf(secret: bytes, label: bytes, seed: bytes, length: int, *, sha384: bool = False) -> bytes:
    """The TLS 1.2 PRF: P_SHA256(secret, label || seed), or P_SHA384 for the suites that name SHA-384."""
    return _p_hash(hashes.SHA384() if sha384 else hashes.SHA256(), secret, label + seed, length)


def key_material(
    master_secret: bytes, client_random: bytes, server_random: bytes, *, sha384: bool = False
) -> bytes:
    """RFC 5216 §2.3: Key_Material = TLS-PRF-128(master_secret, "client EAP encryption", client.random ||
    server.random); MSK = Key_Material[0:64], EMSK = [64:128]. PEAPv0 uses the same (its TK is [0:60])."""
    return tls_prf(master_secret, _EAP_TLS_LABEL, client_random + server_random, 128, sha384=sha384)


# ---- EAP-TLS framing (RFC 5216 §3.1, shared by PEAP) -------------------------------------------------------


@dataclass
class TlsFramer:
    """Reassembles the server's fragments and cuts our TLS data into fragments. `version_bits` go into the
    Flags of every message we send (PEAP's version; 0 for EAP-TLS)."""

    version_bits: int = 0
    fragment_bytes: int = FRAGMENT_BYTES
    _incoming: bytearray = field(default_factory=bytearray)
    _expected: int | None = None
    _outgoing: bytes = b""

    def __repr__(self) -> str:
        return f"TlsFramer(in={len(self._incoming)}, out={len(self._outgoing)})"

    @property
    def sending(self) -> bool:
        """Fragments of ours are still waiting for the server's ACKs."""
        return bool(self._outgoing)

    def parse(self, type_data: bytes) -> tuple[int, bytes | None]:
        """(Flags, the whole TLS message once its last fragment is in, else None). Offsets in errors count
        from the EAP Code octet (Type-Data starts at 5)."""
        if not type_data:
            raise EapDecodeError(5, "a Flags octet", "no Type-Data")
        flags = type_data[0]
        pos = 1
        if flags & FLAG_LENGTH:
            if len(type_data) < 5:
                raise EapDecodeError(6, "a 4-octet TLS Message Length", f"{len(type_data) - 1} octets")
            total = int.from_bytes(type_data[1:5], "big")
            if total > MAX_TLS_MESSAGE_BYTES:
                raise EapDecodeError(
                    6, f"a TLS Message Length of at most {MAX_TLS_MESSAGE_BYTES}", str(total)
                )
            if self._expected is None:
                self._expected = total
            pos = 5
        data = type_data[pos:]
        if flags & FLAG_START:
            return flags, None
        if not data and not self._incoming:
            return flags, b""  # an ACK of one of our fragments (or an empty request)
        self._incoming += data
        if len(self._incoming) > MAX_TLS_MESSAGE_BYTES:
            raise EapDecodeError(5, f"at most {MAX_TLS_MESSAGE_BYTES} octets of TLS data", "more")
        if flags & FLAG_MORE:
            if self._expected is None:
                raise EapDecodeError(5, "the L flag and length on the first of several fragments", "no L")
            if len(self._incoming) >= self._expected:
                raise EapDecodeError(5, "the M flag only while data is missing", "M on the last fragment")
            return flags, None
        message = bytes(self._incoming)
        if self._expected is not None and len(message) != self._expected:
            raise EapDecodeError(
                1, f"{self._expected} octets of TLS data, as the L field said", f"{len(message)} octets"
            )
        self._incoming.clear()
        self._expected = None
        return flags, message

    def ack(self) -> bytes:
        """An empty response: the ACK of a server fragment (RFC 5216 §2.1.2)."""
        return bytes([self.version_bits])

    def send(self, data: bytes) -> bytes:
        """Start sending `data`; returns the first fragment's Type-Data."""
        self._outgoing = data
        self._first = True
        return self.next_fragment()

    def next_fragment(self) -> bytes:
        data = self._outgoing
        if not data:
            raise EapProtocolError("an ACK from the server while we had nothing more to send")
        chunk, rest = data[: self.fragment_bytes], data[self.fragment_bytes :]
        flags = self.version_bits
        header = b""
        if getattr(self, "_first", False) and rest:
            flags |= FLAG_LENGTH
            header = len(data).to_bytes(4, "big")
        self._first = False
        if rest:
            flags |= FLAG_MORE
        self._outgoing = rest
        return bytes([flags]) + header + chunk


# ---- the TLS client ----------------------------------------------------------------------------------------


class _PrivateFile:
    """A file OpenSSL opens by name: an anonymous memory file (`memfd_create`, Linux; its name is
    /proc/self/fd/N), or where there is none a mode-0600 file in a mode-0700 directory of our own, removed on
    `close()`. `fd` stays ours to read back."""

    def __init__(self, name: str, data: bytes = b"") -> None:
        self._dir: str | None = None
        if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
            self.fd = os.memfd_create(name, os.MFD_CLOEXEC)
            self.path = f"/proc/self/fd/{self.fd}"
        else:
            self._dir = tempfile.mkdtemp(prefix="vpndoctor-")
            self.path = os.path.join(self._dir, name)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _names(cert: x509.Certificate) -> tuple[str, str, str]:
    return (
        cert.subject.rfc4514_string(),
        cert.issuer.rfc4514_string(),
        cert.not_valid_after_utc.isoformat(),
    )


class TlsClient:
    """One TLS 1.2 client connection through memory. `anchors_pem`: the CAs the server certificate must chain
    to; `chain_pem` and `key_pem`: our certificate (then intermediates) and its key, for EAP-TLS.
    `server_names`: names the server certificate must carry (in its SAN or CN), as Windows' "Connect to
    these servers"; empty: any name, chain only."""

    def __init__(
        self,
        *,
        anchors_pem: bytes,
        chain_pem: bytes | None = None,
        key_pem: bytes | None = None,
        server_names: tuple[str, ...] = (),
    ) -> None:
        if not anchors_pem:
            raise ValueError("no trust anchors to verify the EAP server's certificate with")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = False  # names are checked below against server_names, as Windows does
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.options |= ssl.OP_NO_TICKET
        try:
            ctx.load_verify_locations(cadata=anchors_pem.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"the trust anchors are not PEM certificates ({exc})") from None
        self.client_certificate = chain_pem is not None
        if chain_pem is not None and key_pem is not None:
            cert_file = _PrivateFile("eap-tls-cert", chain_pem)
            key_file = _PrivateFile("eap-tls-key", key_pem)
            try:
                ctx.load_cert_chain(cert_file.path, key_file.path)
            except ssl.SSLError as exc:
                raise ValueError(f"the client certificate and key do not match ({exc.reason})") from None
            finally:
                cert_file.close()
                key_file.close()
        self._keylog = _PrivateFile("eap-tls-keylog")
        ctx.keylog_filename = self._keylog.path
        self._ctx = ctx
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._ssl = ctx.wrap_bio(self._in, self._out, server_side=False)
        self.server_names = tuple(n.lower() for n in server_names)
        self.established = False
        self.failed: str | None = None
        self.client_random: bytes | None = None
        self.server_random: bytes | None = None
        self.server_chain: list[x509.Certificate] = []
        self._handshake = bytearray()  # the server's handshake messages, until its ChangeCipherSpec
        self._records = bytearray()  # unparsed incoming record bytes
        self._clear = True  # the server has not switched to encrypted records yet
        self.alert_received: int | None = None
        self.alert_sent: int | None = None
        self.cert_problem: str | None = None  # why the server certificate was refused
        self.cert_expired = False
        self._names_checked = False
        self.flights_sent = 0  # ClientHello, then the flight with our certificate and Finished
        self._secret: bytes | None = None

    def __repr__(self) -> str:
        state = "established" if self.established else ("failed" if self.failed else "handshaking")
        return f"TlsClient({state})"

    # -- handshake ---------------------------------------------------------------------------------------
    def start(self) -> bytes:
        """The ClientHello."""
        return self._step(b"")

    def receive(self, data: bytes) -> bytes:
        """Feed the server's TLS bytes; returns what to send back (possibly nothing)."""
        self._scan_incoming(data)
        return self._step(data)

    def _step(self, data: bytes) -> bytes:
        if data:
            self._in.write(data)
        if not self.established and self.failed is None:
            try:
                self._ssl.do_handshake()
                self.established = True
                self._on_established()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError as exc:
                self.cert_problem = f"the EAP server's certificate is not trusted: {exc.verify_message}"
                self.cert_expired = exc.verify_code == 10  # X509_V_ERR_CERT_HAS_EXPIRED
                self.failed = self.cert_problem
            except ssl.SSLError as exc:
                self.failed = self._why(exc)
        out = self._out.read()
        if self.server_names and self.server_chain and not self._names_checked and self.failed is None:
            # Before our second flight leaves: a certificate that names none of the servers we may connect
            # to ends the handshake with bad_certificate instead of our Finished.
            self._names_checked = True
            problem = self._name_problem(self.server_chain[0])
            if problem is not None:
                self.cert_problem = self.failed = problem
                self.established = False
                out = bytes([21, 3, 3, 0, 2, 2, 42])  # a fatal bad_certificate alert, in the clear
        if self.client_random is None and len(out) >= 43 and out[0] == 22 and out[5] == 1:
            self.client_random = out[11:43]
        self._scan_outgoing(out)
        if out:
            self.flights_sent += 1
        return out

    def _why(self, exc: ssl.SSLError) -> str:
        if self.alert_received is not None:
            name = ALERTS.get(self.alert_received, str(self.alert_received))
            return f"the EAP server ended the TLS handshake with alert {name} ({self.alert_received})"
        reason = exc.reason or exc.__class__.__name__
        if "VERSION" in reason.upper():
            return f"no TLS version in common (we speak TLS 1.2, as Windows does by default): {reason}"
        return f"TLS handshake failed: {reason}"

    def _on_established(self) -> None:
        version = self._ssl.version()
        if version != "TLSv1.2":  # pinned above; a defence against a changed default
            self.failed = f"{version} was negotiated, vpndoctor derives EAP keys for TLS 1.2 only"
            self.established = False
            return
        peer = self._ssl.getpeercert(binary_form=True)
        if peer is not None and not self.server_chain:
            self.server_chain = [x509.load_der_x509_certificate(peer)]
        self._secret = self._master_secret()
        if self._secret is None:
            self.failed = "OpenSSL's key log has no master secret for this handshake"
            self.established = False

    def _name_problem(self, cert: x509.Certificate) -> str | None:
        names: list[str] = []
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names += [n.lower() for n in san.get_values_for_type(x509.DNSName)]
        except x509.ExtensionNotFound:
            pass
        names += [
            str(a.value).lower() for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        ]
        names = list(dict.fromkeys(names))
        if any(n in names for n in self.server_names):
            return None
        return (
            f"the EAP server's certificate names {', '.join(names) or 'nothing'}, not "
            f"{', '.join(self.server_names)} (the servers this client may connect to)"
        )

    def _master_secret(self) -> bytes | None:
        if self.client_random is None:
            return None
        fd = self._keylog.fd
        if fd < 0:
            return None
        size = os.fstat(fd).st_size
        text = os.pread(fd, min(size, 1 << 20), 0).decode("ascii", "replace")
        self._close_keylog()
        want = self.client_random.hex()
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "CLIENT_RANDOM" and parts[1].lower() == want:
                try:
                    return bytes.fromhex(parts[2])
                except ValueError:
                    return None
        return None

    def _close_keylog(self) -> None:
        if self._keylog.fd >= 0:
            self._ctx.keylog_filename = None  # type: ignore[assignment]
            self._keylog.close()

    def close(self) -> None:
        self._close_keylog()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown
            self._close_keylog()

    def key_material(self) -> bytes | None:
        """RFC 5216's 128 octets (MSK || EMSK) once the handshake is done."""
        if not self.established or self._secret is None:
            return None
        if self.client_random is None or self.server_random is None:
            return None
        cipher = self._ssl.cipher()
        sha384 = bool(cipher and cipher[0].endswith("SHA384"))
        return key_material(self._secret, self.client_random, self.server_random, sha384=sha384)

    def handshake_event(self) -> TlsHandshakeDone:
        cipher = self._ssl.cipher()
        return TlsHandshakeDone(
            version=self._ssl.version() or "",
            cipher=cipher[0] if cipher else "",
            client_certificate_sent=self.client_certificate,
        )

    def certificate_event(self) -> TlsServerCertificate | None:
        if not self.server_chain:
            return None
        subject, issuer, not_after = _names(self.server_chain[0])
        verified = self.cert_problem is None
        return TlsServerCertificate(subject, issuer, not_after, verified, self.cert_problem)

    # -- application data (PEAP phase 2) -------------------------------------------------------------------
    def encrypt(self, plaintext: bytes) -> bytes:
        self._ssl.write(plaintext)
        return self._out.read()

    def decrypt(self, data: bytes) -> bytes:
        """The application data in `data` (one or more whole records)."""
        self._in.write(data)
        out = bytearray()
        while True:
            try:
                chunk = self._ssl.read(16384)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLError as exc:
                why = exc.reason
                raise EapProtocolError(f"PEAP: the tunnel's TLS data does not decrypt ({why})") from None
            if not chunk:
                break
            out += chunk
            if len(out) > MAX_TLS_MESSAGE_BYTES:
                raise EapProtocolError("PEAP: more than 64 KB of tunnelled data in one message")
        return bytes(out)

    # -- watching the records go by -------------------------------------------------------------------------
    def _scan_outgoing(self, out: bytes) -> None:
        pos = 0
        while pos + 5 <= len(out):
            kind, length = out[pos], int.from_bytes(out[pos + 3 : pos + 5], "big")
            body = out[pos + 5 : pos + 5 + length]
            if kind == 21 and len(body) == 2 and self.alert_sent is None:
                self.alert_sent = body[1]
            pos += 5 + length

    def _scan_incoming(self, data: bytes) -> None:
        """Read the server's records while they are in the clear: ServerHello's random, the Certificate
        message, an alert. A record that does not parse is left to OpenSSL to refuse."""
        if not self._clear:
            return
        self._records += data
        while len(self._records) >= 5:
            kind = self._records[0]
            length = int.from_bytes(self._records[3:5], "big")
            if len(self._records) < 5 + length:
                return
            body = bytes(self._records[5 : 5 + length])
            del self._records[: 5 + length]
            if kind == 22:
                self._handshake += body
                self._parse_handshake()
            elif kind == 21 and len(body) == 2:
                self.alert_received = body[1]
            elif kind == 20:
                self._clear = False
                self._records.clear()
                return
            if len(self._handshake) > MAX_TLS_MESSAGE_BYTES:
                self._clear = False
                return

    def _parse_handshake(self) -> None:
        buf = self._handshake
        while len(buf) >= 4:
            kind = buf[0]
            length = int.from_bytes(buf[1:4], "big")
            if len(buf) < 4 + length:
                return
            body = bytes(buf[4 : 4 + length])
            del buf[: 4 + length]
            if kind == 2 and len(body) >= 34 and self.server_random is None:
                self.server_random = body[2:34]
            elif kind == 11:
                self.server_chain = _certificate_list(body)


def _certificate_list(body: bytes) -> list[x509.Certificate]:
    """The Certificate message's certificate_list (RFC 5246 §7.4.2); what does not parse is skipped."""
    certs: list[x509.Certificate] = []
    if len(body) < 3:
        return certs
    end = min(len(body), 3 + int.from_bytes(body[:3], "big"))
    pos = 3
    while pos + 3 <= end:
        size = int.from_bytes(body[pos : pos + 3], "big")
        der = body[pos + 3 : pos + 3 + size]
        pos += 3 + size
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError:
            break
    return certs
