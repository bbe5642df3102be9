"""Which EAP method `connect` runs (`--eap`) and what it reports about it: builds the `EapPeer` from the
credentials (password, client certificate and key) and the trust anchors, and turns the TLS-based methods'
events into the observation's `eap_tls`. The credentials go into the method objects and nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from vpndoctor.certs import upn_names
from vpndoctor.eap.method import EapEvent, EapMethod
from vpndoctor.eap.mschapv2 import MsChapV2Method
from vpndoctor.eap.peap import INNER_TLS_FRAGMENT_BYTES, PeapCryptoBinding, PeapMethod, PeapResult
from vpndoctor.eap.peer import EapPeer
from vpndoctor.eap.tls import EapTlsMethod
from vpndoctor.eap.tlslayer import TlsAlert, TlsClient, TlsHandshakeDone, TlsServerCertificate
from vpndoctor.errors import UsageError
from vpndoctor.ike.constants import EapType
from vpndoctor.observations.connect import EapTlsInfo

EapKind = Literal["mschapv2", "tls", "peap-mschapv2", "peap-tls"]
EAP_KINDS: tuple[str, ...] = ("mschapv2", "tls", "peap-mschapv2", "peap-tls")
AUTH_NAMES = {
    "mschapv2": "eap-mschapv2",
    "tls": "eap-tls",
    "peap-mschapv2": "peap-mschapv2",
    "peap-tls": "peap-tls",
}
OUR_TYPE = {"mschapv2": EapType.MSCHAPV2, "tls": EapType.TLS, "peap-mschapv2": EapType.PEAP,
            "peap-tls": EapType.PEAP}


@dataclass(frozen=True)
class ClientCertificate:
    """A user certificate (ours first, then intermediates, DER) and its RSA or EC key."""

    chain: tuple[bytes, ...]
    key: rsa.RSAPrivateKey | object

    def __repr__(self) -> str:
        return f"ClientCertificate({self.subject})"

    @property
    def subject(self) -> str:
        return x509.load_der_x509_certificate(self.chain[0]).subject.rfc4514_string()


def certificate_identity(der: bytes) -> str:
    """The EAP identity Windows sends for a user certificate: its UPN, else its RFC 822 name, else its CN."""
    cert = x509.load_der_x509_certificate(der)
    upns = upn_names(cert)
    if upns:
        return upns[0]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        emails = san.get_values_for_type(x509.RFC822Name)
        if emails:
            return str(emails[0])
    except x509.ExtensionNotFound:
        pass
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else ""


def _pem_chain(certificate: ClientCertificate) -> tuple[bytes, bytes]:
    chain = b"".join(
        x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
        for der in certificate.chain
    )
    key = certificate.key
    assert hasattr(key, "private_bytes")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return chain, pem


def build_peer(
    kind: str,
    user: str,
    *,
    password: str | None,
    certificate: ClientCertificate | None,
    anchors: Iterable[x509.Certificate],
    server_names: tuple[str, ...] = (),
    rng: Callable[[int], bytes] = os.urandom,
) -> EapPeer:
    """The EAP peer for `--eap kind`; a UsageError (never quoting a secret) when the credentials do not
    fit it."""
    if kind not in EAP_KINDS:
        raise UsageError(f"--eap {kind}: one of {', '.join(EAP_KINDS)}")
    try:
        if kind == "mschapv2":
            return EapPeer(user, MsChapV2Method(user, password or "", rng=rng))
        anchors_pem = b"".join(a.public_bytes(serialization.Encoding.PEM) for a in anchors)
        if not anchors_pem:
            raise UsageError("no trust anchors to verify the EAP server's certificate with: give --ca")
        if kind == "peap-mschapv2":
            tls = TlsClient(anchors_pem=anchors_pem, server_names=server_names)
            inner: EapMethod = MsChapV2Method(user, password or "", rng=rng)
            return EapPeer(user, PeapMethod(tls, user, inner))
        if certificate is None:
            raise UsageError(f"--eap {kind} needs --client-cert and --client-key")
        chain_pem, key_pem = _pem_chain(certificate)
        if kind == "tls":
            tls = TlsClient(anchors_pem=anchors_pem, chain_pem=chain_pem, key_pem=key_pem,
                            server_names=server_names)
            return EapPeer(user, EapTlsMethod(tls))
        # PEAP-TLS: the outer tunnel without a client certificate, EAP-TLS with it inside.
        outer = TlsClient(anchors_pem=anchors_pem, server_names=server_names)
        inner_tls = TlsClient(
            anchors_pem=anchors_pem, chain_pem=chain_pem, key_pem=key_pem, server_names=server_names
        )
        inner_method = EapTlsMethod(inner_tls, fragment_bytes=INNER_TLS_FRAGMENT_BYTES)
        return EapPeer(user, PeapMethod(outer, user, inner_method))
    except ValueError as exc:  # too long a name or password, a key that does not fit: no secret quoted
        raise UsageError(str(exc)) from None


class TlsFacts:
    """Collects the TLS-based methods' events (outer first; PEAP-TLS's inner handshake adds only the
    alerts and the certificate verdicts it finds)."""

    def __init__(self, kind: str, certificate: ClientCertificate | None) -> None:
        self.kind = kind
        self.certificate = certificate
        self.cert: TlsServerCertificate | None = None
        self.done: TlsHandshakeDone | None = None
        self.alert_sent: str | None = None
        self.alert_received: str | None = None
        self.result: PeapResult | None = None
        self.method: EapMethod | None = None
        self.binding: Literal["verified", "failed", "not-requested"] | None = None

    def see(self, event: EapEvent) -> None:
        if isinstance(event, TlsServerCertificate):
            if self.cert is None or not event.verified:
                self.cert = event
        elif isinstance(event, TlsHandshakeDone):
            self.done = self.done or event
        elif isinstance(event, TlsAlert):
            if event.sent:
                self.alert_sent = self.alert_sent or event.name
            else:
                self.alert_received = self.alert_received or event.name
        elif isinstance(event, PeapResult):
            self.result = event
            if self.binding is None:
                self.binding = "verified" if event.crypto_binding else "not-requested"
        elif isinstance(event, PeapCryptoBinding):
            self.binding = "verified" if event.valid else "failed"

    def info(self) -> EapTlsInfo | None:
        if self.kind == "mschapv2":
            return None
        cert = self.cert
        return EapTlsInfo(
            server_certificate=cert.subject if cert else None,
            server_issuer=cert.issuer if cert else None,
            server_not_after=cert.not_after if cert else None,
            server_verified=cert.verified if cert else None,
            server_reason=cert.reason if cert else None,
            server_expired=bool(cert and cert.reason and "expired" in cert.reason),
            client_certificate=self.certificate.subject if self.certificate else None,
            tls_version=self.done.version if self.done else None,
            cipher=self.done.cipher if self.done else None,
            alert_sent=self.alert_sent,
            alert_received=self.alert_received,
            peap_inner=(
                {"peap-mschapv2": "MSCHAPV2", "peap-tls": "TLS"}.get(self.kind)
            ),
            peap_result=(
                None if self.result is None else ("success" if self.result.server_success else "failure")
            ),
            crypto_binding=self.binding if self.kind.startswith("peap") else None,
            client_certificate_refused=self._refused(),
        )

    def _refused(self) -> bool:
        method = self.method
        if isinstance(method, PeapMethod):
            method = method.inner
        return isinstance(method, EapTlsMethod) and bool(method.certificate_refused)
