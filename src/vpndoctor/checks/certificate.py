"""One judge of a server certificate for the name a client dials: diagnose (the IKE gateway certificate),
sstp and iphttps (the TLS certificate) and tls all ask it, and map its answer onto their own finding ids.

Pure: certificate facts in, a frozen judgement out, no I/O. The facts come from a parsed certificate
(`facts_of`) or from what an observation kept of one (`facts_of_info`); the judgement has one field per
aspect (name, validity, EKU, trust, key, signature), each a status and a clause of evidence in words.

Names follow RFC 6125 (section 6.4): case-insensitive, one trailing dot ignored; a wildcard only as the whole
left-most label (`*.example.com` matches `a.example.com`, not `example.com`, not `a.b.example.com`;
`f*.example.com`, `xn--*.example.com`, `a.*.example.com` and a bare `*` match nothing); an IP address matches
only IP SANs; the subject CN counts only when the certificate has no DNS or IP SAN at all.

`judge_purpose` judges a certificate for what it is for in Always On VPN / DirectAccess (`vpndoctor cert`):
a user certificate (Client Authentication, a UPN in the SAN), a device certificate (Client Authentication,
the device FQDN as CN or DNS SAN), a server certificate (Server Authentication, the IKE intermediate EKU
noted). It builds on `judge_certificate` (validity, key, signature) and adds the key usage and the chain.

Trust is judged on the chain as the server sent it, completed - as Windows' CryptoAPI does - by the CA
certificates the revocation step fetched through AIA caIssuers (`aia_intermediates`, from the observation's
`RevocationObservation`): a chain that reaches an anchor only thanks to them is trusted, with a warning
(reason `chains-through-aia`), since a client that cannot reach the URL cannot build it.
"""

from __future__ import annotations

import ipaddress
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vpndoctor.certs import EKU_NAMES, Chain, build_chain, key_usage_names, san_names, upn_names
from vpndoctor.observations.ike import CertificateInfo
from vpndoctor.observations.revocation import RevocationObservation

__all__ = [
    "CLIENT_AUTH",
    "EXPIRY_WARNING",
    "IKE_INTERMEDIATE",
    "MIN_RSA_BITS",
    "PURPOSES",
    "SERVER_AUTH",
    "AiaIntermediate",
    "Aspect",
    "CertificateFacts",
    "CertificateJudgement",
    "Purpose",
    "PurposeJudgement",
    "aia_intermediates",
    "aia_note",
    "common_names_in",
    "dns_name_matches",
    "eku_oids",
    "facts_of",
    "facts_of_info",
    "infer_purpose",
    "judge_certificate",
    "judge_name",
    "judge_purpose",
    "key_facts",
    "signature_name",
]

# The thresholds the checks used before there was one judge (diagnose and tls alike).
EXPIRY_WARNING = timedelta(days=30)
MIN_RSA_BITS = 2048  # RSA and DSA keys below this are refused

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH.dotted_string  # 1.3.6.1.5.5.7.3.1
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string  # 1.3.6.1.5.5.7.3.2
IKE_INTERMEDIATE = "1.3.6.1.5.5.8.2.2"  # IP security IKE intermediate: Windows IKEv2 clients want it too
_WEAK_SIGNATURE_HASHES = ("md2", "md4", "md5", "sha1")

Status = Literal["ok", "warn", "bad", "unknown"]


@dataclass(frozen=True)
class AiaIntermediate:
    """A CA certificate the server did not send, fetched through a certificate's AIA caIssuers URL by the
    revocation step (probes.revocation): a candidate intermediate for the trust chain, as Windows uses it."""

    certificate: x509.Certificate
    url: str | None  # the caIssuers URL it came from; None: not recorded

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


@dataclass(frozen=True)
class CertificateFacts:
    """What the judgement is made from: the leaf certificate, and whether its chain reached an anchor."""

    subject: str  # RFC 4514
    issuer: str
    common_names: tuple[str, ...]  # the subject's CN attributes
    san_dns: tuple[str, ...]
    san_ip: tuple[str, ...]
    not_before: datetime  # aware, UTC
    not_after: datetime
    eku: tuple[str, ...]  # dotted OIDs; empty: no EKU extension (any use)
    key_type: str | None  # RSA, DSA, EC secp256r1, Ed25519, ...; None: unknown
    key_bits: int | None
    signature_algorithm: str | None  # e.g. sha256WithRSAEncryption; None: unknown
    trusted: bool | None  # chains to an anchor (certs.build_chain); None: no anchors to ask
    # Read from a parsed certificate only (facts_of); an observation's CertificateInfo does not keep them.
    upns: tuple[str, ...] = ()  # SAN otherName UPNs (certs.UPN_OID)
    key_usage: tuple[str, ...] | None = None  # digitalSignature, keyEncipherment, ...; None: no extension
    chain_break: str | None = None  # the issuer (RFC 4514) whose certificate was missing; None: not broken
    # The AIA-fetched intermediates the trusted chain needed: empty when the chain as sent reached an anchor
    # (or nothing did). Non-empty only with `trusted` True.
    via_aia: tuple[AiaIntermediate, ...] = ()


@dataclass(frozen=True)
class Aspect:
    """One aspect's verdict: `status`, a short stable `reason`, and `evidence` - a lower-case clause that
    reads after "The certificate ..." (e.g. "expired on 2026-01-01")."""

    status: Status
    reason: str
    evidence: str


@dataclass(frozen=True)
class CertificateJudgement:
    target: str | None  # the name or address the client dials
    presented: tuple[str, ...]  # the identifiers it was compared with: the DNS and IP SANs, else the CNs
    name: Aspect  # reasons: dns-san, ip-san, cn (matched there), mismatch, no-target
    validity: Aspect  # valid, expires-soon, expired, not-yet-valid
    eku: Aspect  # server-auth, no-eku, server-auth+ike-intermediate, no-ike-intermediate, no-server-auth
    trust: Aspect  # chains, chains-through-aia (warn), untrusted, no-anchors
    key: Aspect  # strong, short, unknown
    signature: Aspect  # strong, weak, unknown
    facts: CertificateFacts


# ---- facts ------------------------------------------------------------------------------------------


def key_facts(key: object) -> tuple[str, int | None]:
    """(type, bits) of a public key: ("RSA", 2048), ("EC secp256r1", 256), ("Ed25519", 256), ..."""
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    with warnings.catch_warnings():  # cryptography warns that DSA is deprecated as soon as it is named
        warnings.simplefilter("ignore")
        if isinstance(key, dsa.DSAPublicKey):
            return "DSA", key.key_size
    return type(key).__name__, None


def signature_name(cert: x509.Certificate) -> str:
    try:
        return str(cert.signature_algorithm_oid._name)  # e.g. sha256WithRSAEncryption
    except AttributeError:  # pragma: no cover
        return cert.signature_algorithm_oid.dotted_string


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def aia_intermediates(revocation: RevocationObservation | None) -> tuple[AiaIntermediate, ...]:
    """The CA certificates the revocation step fetched through AIA caIssuers (each certificate whose issuer
    came from there: `issuer_source` "aia", the certificate in `issuer_der`), with the URL that served it.
    Empty without an observation, or when the DER is not there (it stays out of the JSON)."""
    out: list[AiaIntermediate] = []
    for c in revocation.certificates if revocation is not None else ():
        if c.issuer_source != "aia" or c.issuer_der is None:
            continue
        try:
            issuer = x509.load_der_x509_certificate(c.issuer_der)
        except ValueError:
            continue
        # The probe stops at the first caIssuers answer that held the issuer: the last one read (HTTP 200).
        served = [
            f.url
            for f in c.fetches
            if f.purpose == "ca-issuers" and f.outcome == "fetched" and f.http_status == 200
        ]
        url = served[-1] if served else (c.ca_issuer_urls[0] if c.ca_issuer_urls else None)
        out.append(AiaIntermediate(issuer, url))
    return tuple(out)


def aia_note(via_aia: Sequence[AiaIntermediate]) -> str:
    """What a chain completed through AIA says: "the intermediate <subject> was fetched through AIA
    caIssuers <url>; clients that cannot reach it fail" (one clause per fetched intermediate)."""
    fetched = [
        f"the intermediate {a.subject} was fetched through AIA caIssuers" + (f" {a.url}" if a.url else "")
        for a in via_aia
    ]
    return "; ".join(fetched) + f"; clients that cannot reach {'it' if len(fetched) == 1 else 'them'} fail"


def _trust_chain(
    cert: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    aia: Sequence[AiaIntermediate],
) -> tuple[Chain, tuple[AiaIntermediate, ...]]:
    """The chain as sent; when it does not reach an anchor, the chain completed with the AIA-fetched
    intermediates, if that one does (and those of them it went through). A fetched certificate that is not
    an issuer on the way (name and signature, `build_chain`) is never used."""
    sent = build_chain(cert, list(intermediates), list(anchors))
    if sent.anchored or not aia:
        return sent, ()
    completed = build_chain(cert, [*intermediates, *(a.certificate for a in aia)], list(anchors))
    if not completed.anchored:
        return sent, ()
    used = tuple(a for a in aia if a.certificate in completed.path and a.certificate not in anchors)
    return completed, used


def facts_of(
    cert: x509.Certificate,
    intermediates: Iterable[x509.Certificate] = (),
    anchors: Sequence[x509.Certificate] | None = None,
    aia: Sequence[AiaIntermediate] = (),
) -> CertificateFacts:
    """The facts of a parsed leaf; `trusted` is None without anchors. `aia`: intermediates the server did
    not send, fetched through AIA (`aia_intermediates`), to complete the chain with."""
    dns, ips = san_names(cert)
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        ekus = tuple(o.dotted_string for o in usages)
    except (x509.ExtensionNotFound, ValueError):
        ekus = ()
    try:
        key_type, key_bits = key_facts(cert.public_key())
    except (ValueError, UnsupportedAlgorithm):  # a key cryptography cannot load
        key_type, key_bits = None, None
    chain, via_aia = _trust_chain(cert, list(intermediates), anchors, aia) if anchors else (None, ())
    usage = key_usage_names(cert)
    return CertificateFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        common_names=tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)),
        san_dns=tuple(dns),
        san_ip=tuple(ips),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        eku=ekus,
        key_type=key_type,
        key_bits=key_bits,
        signature_algorithm=signature_name(cert),
        trusted=chain.anchored if chain is not None else None,
        upns=tuple(upn_names(cert)),
        key_usage=tuple(usage) if usage is not None else None,
        chain_break=chain.missing_issuer if chain is not None else None,
        via_aia=via_aia,
    )


_EKU_OIDS = {name: oid for oid, name in EKU_NAMES.items()}


def eku_oids(names: Iterable[str]) -> tuple[str, ...]:
    """EKUs as `certs.eku_names` writes them (serverAuth, ..., others dotted) back to dotted OIDs."""
    return tuple(_EKU_OIDS.get(n, n) for n in names)


def common_names_in(subject: str) -> tuple[str, ...]:
    """The CN values of an RFC 4514 subject (as `x509.Name.rfc4514_string()` writes it)."""
    try:
        name = x509.Name.from_rfc4514_string(subject)
    except ValueError:
        return tuple(_cn_values(subject))
    return tuple(str(a.value) for a in name.get_attributes_for_oid(NameOID.COMMON_NAME))


def _cn_values(subject: str) -> list[str]:
    """What `from_rfc4514_string` refused, split by hand: attributes at unescaped ',' and '+'."""
    parts, current, i = [], "", 0
    while i < len(subject):
        c = subject[i]
        if c == "\\" and i + 1 < len(subject):
            current += subject[i : i + 2]
            i += 2
            continue
        if c in ",+":
            parts.append(current)
            current = ""
        else:
            current += c
        i += 1
    parts.append(current)
    out = []
    for part in parts:
        kind, sep, value = part.partition("=")
        if sep and kind.strip().upper() in ("CN", "2.5.4.3"):
            out.append(re.sub(r"\\(.)", r"\1", value))
    return out


def _key_from_text(text: str) -> tuple[str | None, int | None]:
    """CertificateInfo.key ("RSA 2048", "EllipticCurve 256", "Ed25519") as (type, bits)."""
    kind, _, bits = text.strip().partition(" ")
    if not kind:
        return None, None
    return kind, int(bits) if bits.strip().isdigit() else None


def _completed_through_aia(
    info: CertificateInfo, revocation: RevocationObservation
) -> tuple[AiaIntermediate, ...]:
    """For a leaf the probe found untrusted as sent: the AIA-fetched intermediates that complete its chain,
    rebuilt from what the revocation step kept of the same leaf (its DER, the issuers it took from the chain
    sent and from AIA, and the trust anchor it ended at); empty when they do not complete it."""
    certs = revocation.certificates
    if not certs or certs[0].sha256 != info.sha256 or certs[0].certificate_der is None:
        return ()
    aia = aia_intermediates(revocation)
    if not aia:
        return ()

    def issuers(source: str) -> list[x509.Certificate]:
        out = []
        for c in certs:
            if c.issuer_source == source and c.issuer_der is not None:
                try:
                    out.append(x509.load_der_x509_certificate(c.issuer_der))
                except ValueError:
                    continue
        return out

    anchors = issuers("anchors")
    if not anchors:
        return ()
    try:
        leaf = x509.load_der_x509_certificate(certs[0].certificate_der)
    except ValueError:
        return ()
    return _trust_chain(leaf, issuers("chain"), anchors, aia)[1]


def facts_of_info(info: CertificateInfo, revocation: RevocationObservation | None = None) -> CertificateFacts:
    """The facts an IKE/SSTP/IP-HTTPS observation kept of the leaf (no signature algorithm among them).
    `revocation`: the observation's revocation step, whose AIA-fetched intermediates complete a chain the
    probe found untrusted as sent (`trusted` False)."""
    key_type, key_bits = _key_from_text(info.key)
    via_aia: tuple[AiaIntermediate, ...] = ()
    if info.trusted is False and revocation is not None:
        via_aia = _completed_through_aia(info, revocation)
    return CertificateFacts(
        subject=info.subject,
        issuer=info.issuer,
        common_names=common_names_in(info.subject),
        san_dns=tuple(info.san_dns),
        san_ip=tuple(info.san_ip),
        not_before=_utc(datetime.fromisoformat(info.not_before)),
        not_after=_utc(datetime.fromisoformat(info.not_after)),
        eku=eku_oids(info.eku),
        key_type=key_type,
        key_bits=key_bits,
        signature_algorithm=None,
        trusted=True if via_aia else info.trusted,
        via_aia=via_aia,
    )


# ---- names (RFC 6125) -------------------------------------------------------------------------------


def _normal(name: str) -> str:
    name = name.strip().lower()
    return name[:-1] if name.endswith(".") else name


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def dns_name_matches(pattern: str, host: str) -> bool:
    """A DNS-ID (or CN-ID) pattern against a host name, per RFC 6125 6.4.1-6.4.3 (see the module text)."""
    p, h = _normal(pattern), _normal(host)
    if not p or not h or "*" in h:
        return False
    p_labels, h_labels = p.split("."), h.split(".")
    if "" in p_labels or "" in h_labels:
        return False
    if "*" not in p:
        return p == h
    # The wildcard is the whole left-most label (so never part of an A-label such as `xn--*`), the only one,
    # and some label follows it (a bare `*` names nothing).
    if p_labels[0] != "*" or "*" in p[1:] or len(p_labels) < 2:
        return False
    return len(h_labels) == len(p_labels) and h_labels[1:] == p_labels[1:]


def _ip_matches(san_ip: Iterable[str], ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    for text in san_ip:
        try:
            if ipaddress.ip_address(text) == ip:
                return True
        except ValueError:  # an IP SAN that is a network (name constraints), not an address
            continue
    return False


def judge_name(facts: CertificateFacts, target: str | None) -> tuple[Aspect, tuple[str, ...]]:
    """The name aspect and the identifiers it was compared with."""
    has_san = bool(facts.san_dns or facts.san_ip)
    presented = (*facts.san_dns, *facts.san_ip) if has_san else facts.common_names
    if not target:
        return Aspect("unknown", "no-target", "no name to compare with"), presented
    ip = _ip(target)
    if ip is not None:
        # An address is compared with IP SANs only: never with a DNS SAN or the CN, even when they spell it.
        if _ip_matches(facts.san_ip, ip):
            return Aspect("ok", "ip-san", f"{target} matches SAN {', '.join(presented)}"), presented
    elif has_san:
        if any(dns_name_matches(p, target) for p in facts.san_dns):
            return Aspect("ok", "dns-san", f"{target} matches SAN {', '.join(presented)}"), presented
    elif any(dns_name_matches(p, target) for p in facts.common_names):
        return Aspect("ok", "cn", f"{target} matches CN {', '.join(presented)}"), presented
    return Aspect("bad", "mismatch", f"names {', '.join(presented) or 'nothing'}, not {target}"), presented


# ---- the other aspects ------------------------------------------------------------------------------


def _validity(facts: CertificateFacts, now: datetime) -> Aspect:
    nb, na = facts.not_before, facts.not_after
    if now > na:
        return Aspect("bad", "expired", f"expired on {na:%Y-%m-%d}")
    if now < nb:
        return Aspect("bad", "not-yet-valid", f"not valid before {nb:%Y-%m-%d}")
    if na - now < EXPIRY_WARNING:
        return Aspect("warn", "expires-soon", f"expires on {na:%Y-%m-%d}, in {(na - now).days} days")
    return Aspect("ok", "valid", f"valid {nb:%Y-%m-%d} .. {na:%Y-%m-%d}")


def _eku(facts: CertificateFacts, ike: bool) -> Aspect:
    ekus = facts.eku
    if ekus and SERVER_AUTH not in ekus:
        return Aspect("bad", "no-server-auth", "lacks the Server Authentication EKU")
    if ike:
        # What diagnose always asked of an IKE gateway: serverAuth (or no EKU), and the IKE intermediate EKU
        # beside it, which Windows IKEv2 clients are advised to get (a warning, not a refusal).
        if IKE_INTERMEDIATE not in ekus:
            what = "has Server Authentication" if ekus else "has no EKU extension"
            return Aspect(
                "warn",
                "no-ike-intermediate",
                f"{what} but not the IP security IKE intermediate EKU ({IKE_INTERMEDIATE})",
            )
        return Aspect(
            "ok", "server-auth+ike-intermediate", "has the Server Authentication and IKE intermediate EKUs"
        )
    if ekus:
        return Aspect("ok", "server-auth", "has the Server Authentication EKU")
    return Aspect("ok", "no-eku", "has no EKU extension (any use allowed)")


def _trust(facts: CertificateFacts) -> Aspect:
    if facts.trusted is None:
        return Aspect("unknown", "no-anchors", "was not checked against a trust anchor")
    if facts.trusted and facts.via_aia:
        return Aspect(
            "warn",
            "chains-through-aia",
            f"chains to a trusted CA only through AIA: {aia_note(facts.via_aia)}",
        )
    if facts.trusted:
        return Aspect("ok", "chains", "chains to a trusted CA")
    return Aspect("bad", "untrusted", f"issued by {facts.issuer}, which is not a trusted CA")


def _key(facts: CertificateFacts) -> Aspect:
    kind, bits = facts.key_type, facts.key_bits
    if kind is None:
        return Aspect("unknown", "unknown", "has a key of unknown type")
    text = f"{kind} {bits}-bit key" if bits else f"{kind} key"
    if kind in ("RSA", "DSA") and (bits or 0) < MIN_RSA_BITS:
        return Aspect("bad", "short", f"has a {text}: too short")
    return Aspect("ok", "strong", f"has a {text}")


def _signature(facts: CertificateFacts) -> Aspect:
    alg = facts.signature_algorithm
    if alg is None:
        return Aspect("unknown", "unknown", "has a signature algorithm that was not recorded")
    if any(h in alg.lower() for h in _WEAK_SIGNATURE_HASHES):
        return Aspect("bad", "weak", f"is signed with {alg} (SHA-1/MD5)")
    return Aspect("ok", "strong", f"is signed with {alg}")


def judge_certificate(
    facts: CertificateFacts, target: str | None, now: datetime, *, ike: bool = False
) -> CertificateJudgement:
    """The certificate as a client dialling `target` at `now` sees it; `ike` asks the IKE gateway EKUs."""
    name, presented = judge_name(facts, target)
    return CertificateJudgement(
        target=target,
        presented=presented,
        name=name,
        validity=_validity(facts, _utc(now)),
        eku=_eku(facts, ike),
        trust=_trust(facts),
        key=_key(facts),
        signature=_signature(facts),
        facts=facts,
    )


# ---- purpose profiles: user, device and server certificates (vpndoctor cert) ------------------------

Purpose = Literal["user", "device", "server"]
PURPOSES: tuple[Purpose, ...] = ("user", "device", "server")

# What Windows uses for VPN certificates (Schannel for SSTP/IP-HTTPS/EAP-TLS, IKEEXT for IKEv2): RSA, or
# ECDSA on the NIST curves.
_WINDOWS_CURVES = ("secp256r1", "secp384r1", "secp521r1")


@dataclass(frozen=True)
class PurposeJudgement:
    """A certificate judged for one purpose. `validity` and `signature` are the judge's own answers (in
    `base`, as every command gets them); the rest is what the purpose asks. Aspects that do not apply to the
    purpose are `unknown` with the reason `not-applicable`."""

    purpose: Purpose | None  # None: not given, and the EKUs name none
    eku: Aspect  # client-auth, no-client-auth, no-eku; server-auth[+ike-intermediate], no-server-auth;
    # (no purpose) no-vpn-purpose, no-eku
    key_usage: Aspect  # no-extension, digital-signature, no-digital-signature, no-key-encipherment (server)
    name: Aspect  # device: dns-san, cn, mismatch, no-target; server: as judge_name; user: not-applicable
    upn: Aspect  # user: upn, malformed-upn, no-upn; others: not-applicable
    key: Aspect  # the judge's key aspect, or not-windows (warn) for a key type Windows does not use
    chain: Aspect  # chains, missing-issuer, untrusted, no-anchors
    base: CertificateJudgement


def infer_purpose(facts: CertificateFacts) -> Purpose | None:
    """The purpose the certificate declares: a UPN makes it a user certificate, Client Authentication
    without one a device certificate, Server Authentication (or the IKE intermediate EKU) a server one."""
    if facts.upns:
        return "user"
    if CLIENT_AUTH in facts.eku:
        return "device"
    if SERVER_AUTH in facts.eku or IKE_INTERMEDIATE in facts.eku:
        return "server"
    return None


def _not_applicable(why: str) -> Aspect:
    return Aspect("unknown", "not-applicable", why)


def _eku_list(facts: CertificateFacts) -> str:
    return ", ".join(EKU_NAMES.get(o, o) for o in facts.eku)


def _client_eku(facts: CertificateFacts) -> Aspect:
    if CLIENT_AUTH in facts.eku:
        return Aspect("ok", "client-auth", "has the Client Authentication EKU")
    if not facts.eku:
        return Aspect(
            "bad",
            "no-eku",
            f"has no EKU extension, and Windows picks only certificates with the Client Authentication "
            f"purpose ({CLIENT_AUTH}) for VPN authentication",
        )
    return Aspect(
        "bad",
        "no-client-auth",
        f"lacks the Client Authentication EKU ({CLIENT_AUTH}): it has {_eku_list(facts)}",
    )


def _server_eku(facts: CertificateFacts) -> Aspect:
    # The gateway profile of `_eku` when the IKE intermediate EKU is there; the TLS one otherwise, with the
    # IKE intermediate EKU noted rather than required (an SSTP or IP-HTTPS certificate does not need it).
    aspect = _eku(facts, ike=IKE_INTERMEDIATE in facts.eku)
    if aspect.status == "ok" and IKE_INTERMEDIATE not in facts.eku:
        return Aspect(
            "ok",
            aspect.reason,
            f"{aspect.evidence}; no IP security IKE intermediate EKU ({IKE_INTERMEDIATE}), which an IKEv2 "
            "gateway with several Server Authentication certificates needs to pick this one",
        )
    return aspect


def _no_purpose_eku(facts: CertificateFacts) -> Aspect:
    if not facts.eku:
        return Aspect("warn", "no-eku", "has no EKU extension, so it does not say what it is for")
    return Aspect(
        "bad",
        "no-vpn-purpose",
        f"has neither the Client Authentication nor the Server Authentication EKU ({_eku_list(facts)}): "
        "no VPN client or gateway authenticates with it",
    )


def _key_usage(facts: CertificateFacts, purpose: Purpose | None) -> Aspect:
    usage = facts.key_usage
    if usage is None:
        return Aspect("ok", "no-extension", "has no key usage extension (any use allowed)")
    shown = ", ".join(usage) or "nothing"
    if "digitalSignature" not in usage:
        return Aspect(
            "bad",
            "no-digital-signature",
            f"allows {shown} but not digitalSignature, which IKEv2 and TLS authentication sign with",
        )
    if purpose == "server" and facts.key_type == "RSA" and "keyEncipherment" not in usage:
        return Aspect(
            "warn",
            "no-key-encipherment",
            f"allows {shown} but not keyEncipherment, which TLS suites with RSA key transport (the NULL "
            "suites of IP-HTTPS, TLS_RSA_* on SSTP) need",
        )
    return Aspect("ok", "digital-signature", f"allows {shown}")


def _device_name(facts: CertificateFacts, fqdn: str | None) -> Aspect:
    """The device FQDN, equal (case-insensitive, one trailing dot ignored; no wildcards) to a DNS SAN or
    the subject CN: what the device tunnel's machine certificate must carry."""
    if not fqdn:
        return Aspect("unknown", "no-target", "no device FQDN to compare with")
    want = _normal(fqdn)
    if any(_normal(n) == want for n in facts.san_dns):
        return Aspect("ok", "dns-san", f"{fqdn} is a DNS SAN")
    if any(_normal(n) == want for n in facts.common_names):
        return Aspect("ok", "cn", f"{fqdn} is the subject CN")
    names = list(dict.fromkeys((*facts.common_names, *facts.san_dns)))
    short = any(_normal(n) == want.split(".")[0] for n in names) and "." in want
    hint = " (the short host name: the FQDN is expected)" if short else ""
    return Aspect("bad", "mismatch", f"names {', '.join(names) or 'nothing'}, not {fqdn}{hint}")


def _upn(facts: CertificateFacts) -> Aspect:
    good = [u for u in facts.upns if u.count("@") == 1 and not u.startswith("@") and not u.endswith("@")]
    if good:
        return Aspect("ok", "upn", f"carries the UPN {', '.join(good)}")
    if facts.upns:
        return Aspect(
            "warn", "malformed-upn", f"carries a UPN that is not user@domain: {', '.join(facts.upns)}"
        )
    return Aspect("bad", "no-upn", "has no UPN (SAN otherName 1.3.6.1.4.1.311.20.2.3)")


def _purpose_key(facts: CertificateFacts, key: Aspect) -> Aspect:
    kind = facts.key_type or ""
    curve = kind[3:] if kind.startswith("EC ") else None
    if key.status == "ok" and (
        kind in ("DSA", "Ed25519", "Ed448") or (curve and curve not in _WINDOWS_CURVES)
    ):
        return Aspect(
            "warn",
            "not-windows",
            f"{key.evidence}, which Windows VPN clients and RRAS do not use "
            "(RSA, or ECDSA on P-256/P-384/P-521)",
        )
    return key


def _chain(facts: CertificateFacts) -> Aspect:
    if facts.trusted is False and facts.chain_break:
        return Aspect(
            "bad",
            "missing-issuer",
            f"does not reach a trust anchor: the certificate of the issuer {facts.chain_break} is missing",
        )
    return _trust(facts)


def judge_purpose(
    facts: CertificateFacts, purpose: Purpose | None, name: str | None, now: datetime
) -> PurposeJudgement:
    """The certificate as a `purpose` certificate at `now`; `name` is the device FQDN (device) or the name
    clients dial (server), unused for a user certificate."""
    base = judge_certificate(facts, name if purpose == "server" else None, now)
    upn = _not_applicable("only a user certificate carries a UPN")
    if purpose == "server":
        eku, name_aspect = _server_eku(facts), base.name
    elif purpose == "device":
        eku, name_aspect = _client_eku(facts), _device_name(facts, name)
    elif purpose == "user":
        eku, upn = _client_eku(facts), _upn(facts)
        name_aspect = _not_applicable("a user certificate names its user by the UPN")
    else:
        eku, name_aspect = _no_purpose_eku(facts), _not_applicable("the purpose is unknown")
    return PurposeJudgement(
        purpose=purpose,
        eku=eku,
        key_usage=_key_usage(facts, purpose),
        name=name_aspect,
        upn=upn,
        key=_purpose_key(facts, base.key),
        chain=_chain(facts),
        base=base,
    )
