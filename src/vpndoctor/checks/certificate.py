"""One judge of a server certificate for the name a client dials: diagnose (the IKE gateway certificate),
sstp and iphttps (the TLS certificate) and tls all ask it, and map its answer onto their own finding ids.

Pure: certificate facts in, a frozen judgement out, no I/O. The facts come from a parsed certificate
(`facts_of`) or from what an observation kept of one (`facts_of_info`); the judgement has one field per
aspect (name, validity, EKU, trust, key, signature), each a status and a clause of evidence in words.

Names follow RFC 6125 (section 6.4): case-insensitive, one trailing dot ignored; a wildcard only as the whole
left-most label (`*.example.com` matches `a.example.com`, not `example.com`, not `a.b.example.com`;
`f*.example.com`, `xn--*.example.com`, `a.*.example.com` and a bare `*` match nothing); an IP address matches
only IP SANs; the subject CN counts only when the certificate has no DNS or IP SAN at all.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vpndoctor.certs import EKU_NAMES, issued_by_anchor, san_names
from vpndoctor.observations.ike import CertificateInfo

__all__ = [
    "EXPIRY_WARNING",
    "IKE_INTERMEDIATE",
    "MIN_RSA_BITS",
    "SERVER_AUTH",
    "Aspect",
    "CertificateFacts",
    "CertificateJudgement",
    "common_names_in",
    "dns_name_matches",
    "eku_oids",
    "facts_of",
    "facts_of_info",
    "judge_certificate",
    "judge_name",
    "key_facts",
    "signature_name",
]

# The thresholds the checks used before there was one judge (diagnose and tls alike).
EXPIRY_WARNING = timedelta(days=30)
MIN_RSA_BITS = 2048  # RSA and DSA keys below this are refused

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH.dotted_string  # 1.3.6.1.5.5.7.3.1
IKE_INTERMEDIATE = "1.3.6.1.5.5.8.2.2"  # IP security IKE intermediate: Windows IKEv2 clients want it too
_WEAK_SIGNATURE_HASHES = ("md2", "md4", "md5", "sha1")

Status = Literal["ok", "warn", "bad", "unknown"]


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
    trusted: bool | None  # chains to an anchor (certs.issued_by_anchor); None: no anchors to ask


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
    trust: Aspect  # chains, untrusted, no-anchors
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
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    return type(key).__name__, None


def signature_name(cert: x509.Certificate) -> str:
    try:
        return str(cert.signature_algorithm_oid._name)  # e.g. sha256WithRSAEncryption
    except AttributeError:  # pragma: no cover
        return cert.signature_algorithm_oid.dotted_string


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def facts_of(
    cert: x509.Certificate,
    intermediates: Iterable[x509.Certificate] = (),
    anchors: Sequence[x509.Certificate] | None = None,
) -> CertificateFacts:
    """The facts of a parsed leaf; `trusted` is None without anchors."""
    dns, ips = san_names(cert)
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        ekus = tuple(o.dotted_string for o in usages)
    except (x509.ExtensionNotFound, ValueError):
        ekus = ()
    try:
        key_type, key_bits = key_facts(cert.public_key())
    except ValueError:  # a key cryptography cannot load
        key_type, key_bits = None, None
    trusted = issued_by_anchor(cert, list(intermediates), list(anchors)) if anchors else None
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
        trusted=trusted,
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


def facts_of_info(info: CertificateInfo) -> CertificateFacts:
    """The facts an IKE/SSTP/IP-HTTPS observation kept of the leaf (no signature algorithm among them)."""
    key_type, key_bits = _key_from_text(info.key)
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
        trusted=info.trusted,
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
