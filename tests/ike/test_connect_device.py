"""The initiator as a Windows device tunnel (auth_style="cert", stop_after="child-sa") on a fake clock: IDi
(the machine certificate's subject DN), CERT, CERTREQ and an AUTH signed with the machine key in the first
IKE_AUTH, checked by a scripted responder with `cryptography`; its answer brings the server's AUTH and the
CHILD_SA at once, or AUTHENTICATION_FAILED. And the AUTH octets themselves: signed, verified, both methods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.ike.eap_responder import CHILD_ERRORS, VIRTUAL_IP4, ConnectResponder
from tests.ike.responder import SERVER_NAME, cert
from tests.ike.test_initiator import LOCAL, REMOTE, of, rng_from, run
from vpndoctor.ike import auth as ike_auth
from vpndoctor.ike import initiator as ini
from vpndoctor.ike.constants import (
    AuthMethod,
    CertEncoding,
    CfgAttr,
    IdType,
    NotifyType,
    PrfId,
)
from vpndoctor.ike.message import Header
from vpndoctor.ike.payloads import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    CpPayload,
    IdPayload,
    NotifyPayload,
    Payload,
    SaPayload,
    TsPayload,
)
from vpndoctor.ike.proposals import parse_proposal

DEVICE = "device1.corp.example"


def machine_cert(cn: str = DEVICE) -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC)
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Corp CA")])
    der = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    return key, der


_MACHINE: tuple[rsa.RSAPrivateKey, bytes] | None = None


def machine() -> tuple[rsa.RSAPrivateKey, bytes]:
    global _MACHINE
    if _MACHINE is None:
        _MACHINE = machine_cert()
    return _MACHINE


@dataclass
class DeviceResponder(ConnectResponder):
    """A gateway with a device tunnel: it checks IDi against the certificate and the initiator's AUTH with
    `cryptography`. `behaviour`: normal, refuse-cert (AUTHENTICATION_FAILED, as for an expired or untrusted
    machine certificate), bad-server-auth, a key of CHILD_ERRORS (the IKE SA up, the CHILD_SA refused)."""

    verified: bool | None = None
    auth_method: int | None = None
    idi: IdPayload | None = None
    certs: tuple[bytes, ...] = ()
    certreq: bool = False

    def _first_auth(self, h: Header, inner: tuple[Payload, ...]) -> list[bytes]:
        assert self._keys is not None and self._suite is not None
        self.idi = next(p for p in inner if isinstance(p, IdPayload))
        self.idi_body = self.idi.encode_body()
        self.certs = tuple(p.data for p in inner if isinstance(p, CertPayload))
        self.certreq = any(isinstance(p, CertReqPayload) for p in inner)
        auth = next(p for p in inner if isinstance(p, AuthPayload))
        self.auth_method = auth.method
        self.child_request = tuple(p for p in inner if isinstance(p, SaPayload | TsPayload | CpPayload))
        signed_i = ike_auth.initiator_signed_octets(
            self.sa_init_request, self.nonce_r, self._keys.sk_pi, self.idi_body, self._suite.prf
        )
        self.verified = ike_auth.verify_responder_auth(
            auth.method, auth.data, self.certs[0], signed_i
        ).verified
        subject = x509.load_der_x509_certificate(self.certs[0]).subject.public_bytes()
        if not self.verified or self.behaviour == "refuse-cert" or self.idi.data != subject:
            self.half_open = False
            return self._protect(h, [NotifyPayload(type=NotifyType.AUTHENTICATION_FAILED)])
        key, der = cert()
        idr = IdPayload(id_type=IdType.FQDN, data=SERVER_NAME.encode(), responder=True)
        signed_r = ike_auth.responder_signed_octets(
            self._init_response, self._nonce_i, self._keys.sk_pr, idr.encode_body(), self._suite.prf
        )
        signature = key.sign(signed_r, padding.PKCS1v15(), hashes.SHA1())
        if self.behaviour == "bad-server-auth":
            signature = bytes([signature[0] ^ 1]) + signature[1:]
        self.half_open, self.established = False, True
        payloads: list[Payload] = [
            idr,
            CertPayload(CertEncoding.X509_SIGNATURE, der),
            AuthPayload(AuthMethod.RSA_SIG, signature),
            *self._child(),
        ]
        return self._protect(h, payloads)


def device(method: int = AuthMethod.RSA_SIG, accept: object = None, **kw: object) -> ini.Initiator:
    key, der = machine()
    kw.setdefault("fragmentation", False)  # the scripted responder reads SK only; the lab fragments
    cfg = ini.InitiatorConfig(
        proposals=(parse_proposal("aes256-sha256-modp2048"),),
        stop_after="child-sa",
        auth_style="cert",
        certificates=(der, *kw.pop("intermediates", ())),  # type: ignore[misc]
        cert_auth_method=method,
        **kw,  # type: ignore[arg-type]
    )
    return ini.Initiator(
        cfg,
        rng=rng_from(11),
        local=LOCAL,
        remote=REMOTE,
        signer=lambda octets: ike_auth.rsa_sign_auth(key, method, octets),
        accept_server=accept,  # type: ignore[arg-type]
    )


# --- the AUTH octets ---


@pytest.mark.parametrize("method", [AuthMethod.RSA_SIG, AuthMethod.DIGITAL_SIGNATURE])
def test_our_signature_verifies_with_cryptography(method: int) -> None:
    key, der = machine()
    octets = ike_auth.initiator_signed_octets(b"message1", b"nonce-r", b"k" * 32, b"\x09\x00\x00\x00dn", 5)
    data = ike_auth.rsa_sign_auth(key, method, octets)
    result = ike_auth.verify_responder_auth(method, data, der, octets)
    assert result.verified, result.reason
    assert result.hash_name == ("sha1" if method == AuthMethod.RSA_SIG else "sha256")
    assert not ike_auth.verify_responder_auth(method, data, der, octets + b"x").verified


def test_method_1_is_pkcs1_sha1_and_method_14_carries_sha256_with_rsa() -> None:
    key, _ = machine()
    octets = b"signed octets"
    key.public_key().verify(ike_auth.rsa_sign_auth(key, 1, octets), octets, padding.PKCS1v15(), hashes.SHA1())
    data = ike_auth.rsa_sign_auth(key, 14, octets)
    assert data[0] == 15 and data[1:16] == bytes.fromhex("300d06092a864886f70d01010b0500")
    key.public_key().verify(data[16:], octets, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(ValueError, match="method 2"):
        ike_auth.rsa_sign_auth(key, 2, octets)


def test_initiator_signed_octets_are_message_nonce_and_prf_of_idi() -> None:
    from vpndoctor.ike.keys import prf

    got = ike_auth.initiator_signed_octets(b"M1", b"NR", b"K" * 32, b"IDI", PrfId.HMAC_SHA2_256)
    assert got == b"M1NR" + prf(PrfId.HMAC_SHA2_256, b"K" * 32, b"IDI")


# --- the exchange ---


@pytest.mark.parametrize("method", [AuthMethod.RSA_SIG, AuthMethod.DIGITAL_SIGNATURE])
def test_device_tunnel_all_the_way_to_the_child_sa(method: int) -> None:
    m = device(method)
    server = DeviceResponder()
    events, _ = run(m, server)
    assert server.verified is True and server.auth_method == method
    assert server.idi is not None and server.idi.id_type == IdType.DER_ASN1_DN
    assert x509.Name.from_rfc4514_string(f"CN={DEVICE}").public_bytes() == server.idi.data
    assert server.certs == (machine()[1],) and server.certreq
    assert m.reached == "CHILD_SA" and of(events, ini.Finished)[0].reached == "CHILD_SA"
    assert not of(events, ini.EapRound)
    assert of(events, ini.AuthDone)[0].auth_verified is True
    assert of(events, ini.IkeSaEstablished)[0].verified
    child = of(events, ini.ChildSaResult)[0]
    assert child.established and child.error is None
    assert dict(child.config)[CfgAttr.INTERNAL_IP4_ADDRESS] == bytes(map(int, VIRTUAL_IP4.split(".")))
    assert server.deleted and not m.server_holds_state  # ended with an INFORMATIONAL Delete
    assert server.received[0].split() == ["Id", "Cert", "CertReq", "Auth", "Cp", "Sa", "Ts", "Ts"]


def test_intermediates_go_in_cert_payloads_after_ours() -> None:
    _, other = machine_cert("Corp Issuing CA")
    m = device(intermediates=(other,))
    server = DeviceResponder()
    run(m, server)
    assert server.certs == (machine()[1], other) and m.reached == "CHILD_SA"


def test_a_refused_certificate_is_authentication_failed_at_ike_auth() -> None:
    m = device()
    server = DeviceResponder(behaviour="refuse-cert")
    events, _ = run(m, server)
    errors = of(events, ini.ErrorNotify)
    assert [e.notify for e in errors] == [NotifyType.AUTHENTICATION_FAILED]
    assert m.reached == "IKE_SA_INIT" and not m.ike_established and not m.server_holds_state
    assert not of(events, ini.ChildSaResult) and not of(events, ini.IkeSaEstablished)
    assert server.processed == [1]  # nothing after the refusal: the SA is gone


@pytest.mark.parametrize("behaviour", sorted(CHILD_ERRORS))
def test_a_refused_child_sa_beside_the_servers_auth(behaviour: str) -> None:
    m = device()
    server = DeviceResponder(behaviour=behaviour)
    events, _ = run(m, server)
    assert m.reached == "CHILD_SA" and m.ike_established
    child = of(events, ini.ChildSaResult)[0]
    assert not child.established and child.error == CHILD_ERRORS[behaviour]
    assert server.deleted


def test_a_server_auth_that_does_not_verify_ends_the_established_sa() -> None:
    m = device()
    server = DeviceResponder(behaviour="bad-server-auth")
    events, _ = run(m, server)
    stopped = of(events, ini.ConnectStopped)[0]
    assert (stopped.stage, stopped.cause) == ("IKE_AUTH", "server-auth")
    assert not of(events, ini.ChildSaResult) and server.deleted


def test_the_caller_may_refuse_the_server() -> None:
    m = device(accept=lambda auth: "untrusted")
    server = DeviceResponder()
    events, _ = run(m, server)
    stopped = of(events, ini.ConnectStopped)[0]
    assert (stopped.cause, stopped.reason) == ("server-refused", "untrusted")
    assert server.deleted


def test_cert_mode_needs_a_signer_certificates_and_no_peer() -> None:
    _, der = machine()
    base = {"proposals": (parse_proposal("aes256-sha256-modp2048"),), "auth_style": "cert"}
    with pytest.raises(ini.LocalProtocolError):
        ini.Initiator(
            ini.InitiatorConfig(stop_after="child-sa", certificates=(der,), **base),  # type: ignore[arg-type]
            rng=rng_from(1),
            local=LOCAL,
            remote=REMOTE,
        )
    with pytest.raises(ini.LocalProtocolError):
        ini.Initiator(
            ini.InitiatorConfig(stop_after="child-sa", **base),  # type: ignore[arg-type]
            rng=rng_from(1),
            local=LOCAL,
            remote=REMOTE,
            signer=lambda o: o,
        )
    with pytest.raises(ini.LocalProtocolError):
        ini.Initiator(
            ini.InitiatorConfig(stop_after="eap", certificates=(der,), **base),  # type: ignore[arg-type]
            rng=rng_from(1),
            local=LOCAL,
            remote=REMOTE,
            signer=lambda o: o,
        )


def test_a_throttled_device_attempt_says_device() -> None:
    """An attempt the politeness budget never let out still names the tunnel it was (it said EAP)."""
    import time
    from datetime import UTC, datetime

    from vpndoctor.probes.connect import _not_run

    args = ("vpn.example.com", "192.0.2.1", 500, 4500, "", "CN=device1", datetime.now(UTC), time.monotonic())
    assert _not_run(*args, device=True).auth == "machine-certificate"
    assert _not_run(*args, device=False).auth == "eap-mschapv2"
