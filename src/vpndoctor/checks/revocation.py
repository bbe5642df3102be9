"""Judge what `probes.revocation` fetched for a server certificate chain: pure, no I/O. One judge for IKE
(`cert.revocation`), TLS (`tls.certificate.revocation`), SSTP (`sstp.certificate.revocation`) and IP-HTTPS
(`iphttps.certificate.revocation`); `revocation_finding` maps its answer onto each id.

Each source is verified here, not trusted: a CRL must parse, name the certificate's issuer, carry that
issuer's signature and be current (thisUpdate <= now <= nextUpdate); a delta CRL the base CRL (or the
certificate) names must be obtained and verify too; an OCSP response must be successful, answer for this
certificate's CertID, be signed by the issuer or a responder certificate the issuer gave the OCSP Signing
EKU, and be current. What Windows (CryptoAPI) then does is modelled: every certificate of the chain but
the root is checked; a certificate is revoked when a verified source says so, good when a verified source
says good (OCSP first, the CRL when OCSP gives no answer); otherwise the check is offline -
CRYPT_E_REVOCATION_OFFLINE (0x80092013): unreachable, unpublished or expired CRL (Microsoft KB 2980672).
A certificate naming neither a CDP nor an OCSP responder cannot be checked at all ("no-info").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from vpndoctor.checks.model import Finding, Status, finding
from vpndoctor.observations.revocation import CertificateRevocation, RevocationFetch, RevocationObservation

__all__ = [
    "CLOCK_SKEW",
    "CRYPT_E_NO_REVOCATION_CHECK",
    "CRYPT_E_REVOCATION_OFFLINE",
    "CRYPT_E_REVOKED",
    "ERROR_IPSEC_IKE_PEER_CRL_FAILED",
    "CertificateVerdict",
    "Protocol",
    "RevocationJudgement",
    "RevocationOutcome",
    "SourceVerdict",
    "judge_crl",
    "judge_ocsp",
    "judge_revocation",
    "revocation_finding",
    "revocation_outcome",
]

CRYPT_E_REVOKED = 0x80092010
CRYPT_E_NO_REVOCATION_CHECK = 0x80092012
CRYPT_E_REVOCATION_OFFLINE = 0x80092013
ERROR_IPSEC_IKE_PEER_CRL_FAILED = 13848

CLOCK_SKEW = timedelta(minutes=5)  # a thisUpdate this far in the future is still accepted

# good/revoked/unknown: a verified answer (unknown: OCSP's "unknown"); unusable: obtained but not acceptable
# (parse, issuer, signature, dates, a delta that could not be had); unavailable: not obtained (network, HTTP
# status, LDAP); not-checked: never tried for reasons of ours (the run's budget or deadline).
SourceStatus = Literal["good", "revoked", "unknown", "unusable", "unavailable", "not-checked"]
CertStatus = Literal["good", "revoked", "offline", "no-info", "not-checked"]
Protocol = Literal["ike", "sstp", "tls", "iphttps"]

_WORST: tuple[CertStatus, ...] = ("revoked", "offline", "no-info", "not-checked", "good")


@dataclass(frozen=True)
class SourceVerdict:
    kind: Literal["crl", "ocsp"]
    url: str
    status: SourceStatus
    reason: str  # a short stable word: good, revoked, expired, bad-signature, wrong-issuer, dns, ...
    detail: str  # a clause in words
    this_update: datetime | None = None
    next_update: datetime | None = None
    revoked_at: datetime | None = None
    revocation_reason: str | None = None  # keyCompromise, superseded, ...

    def evidence(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "url": self.url,
            "status": self.status,
            "reason": self.reason,
        }
        if self.next_update is not None:
            out["next_update"] = self.next_update.isoformat()
        if self.revoked_at is not None:
            out["revoked_at"] = self.revoked_at.isoformat()
            out["revocation_reason"] = self.revocation_reason
        out["detail"] = self.detail
        return out


@dataclass(frozen=True)
class CertificateVerdict:
    position: int
    subject: str
    serial: str
    status: CertStatus
    reason: str  # good, revoked, unreachable, expired-crl, bad-crl, ldap-only, no-info, no-issuer, ...
    detail: str
    issuer_source: str
    sources: tuple[SourceVerdict, ...] = ()


@dataclass(frozen=True)
class RevocationJudgement:
    status: CertStatus  # the worst over the chain
    certificates: tuple[CertificateVerdict, ...]
    warnings: tuple[str, ...] = field(default=())
    intermediate_from_aia: bool = False


# ---- signatures ----------------------------------------------------------------------------------------


def _verify(key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None) -> bool:
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, dsa.DSAPublicKey) and algorithm is not None:
            key.verify(signature, data, algorithm)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _key_id(cert: x509.Certificate) -> bytes:
    """SHA-1 of the subjectPublicKey bits: OCSP's issuerKeyHash and ResponderID byKey (RFC 6960 4.1.1)."""
    return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# ---- CRLs -------------------------------------------------------------------------------------------------


def _not_obtained(
    kind: Literal["crl", "ocsp"], url: str, fetch: RevocationFetch | None
) -> SourceVerdict | None:
    """The verdict for a source whose body is missing or not an answer; None when there is a body to judge."""
    if fetch is None:
        return SourceVerdict(kind, url, "not-checked", "not-tried", f"{url} was not fetched")
    what = "the OCSP responder at " if kind == "ocsp" else ""
    if fetch.outcome == "not-fetched":
        kind_word = fetch.error_kind or "not-fetched"
        status: SourceStatus = "not-checked" if kind_word in ("budget", "deadline") else "unavailable"
        return SourceVerdict(kind, url, status, kind_word, f"{what}{url}: {fetch.error or 'not fetched'}")
    if fetch.outcome == "failed":
        return SourceVerdict(
            kind, url, "unavailable", fetch.error_kind or "failed", f"{what}{url}: {fetch.error or 'failed'}"
        )
    if fetch.http_status != 200 or fetch.body is None:
        return SourceVerdict(
            kind, url, "unavailable", "http-status", f"{what}{url} answered HTTP {fetch.http_status}"
        )
    return None


def _load_crl(body: bytes) -> x509.CertificateRevocationList | None:
    try:
        return x509.load_der_x509_crl(body)
    except ValueError:
        pass
    if b"-----BEGIN" in body:
        try:
            return x509.load_pem_x509_crl(body)
        except ValueError:
            return None
    return None


def _freshest_urls(ext_owner: x509.Certificate | x509.CertificateRevocationList) -> list[str]:
    try:
        ext = ext_owner.extensions.get_extension_for_class(x509.FreshestCRL).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [
        str(name.value)
        for point in ext
        for name in (point.full_name or [])
        if isinstance(name, x509.UniformResourceIdentifier)
    ]


def _crl_number(crl: x509.CertificateRevocationList) -> int | None:
    try:
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except (x509.ExtensionNotFound, ValueError):
        return None


def _reason(entry: x509.RevokedCertificate) -> str | None:
    try:
        return str(entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value)
    except (x509.ExtensionNotFound, ValueError):
        return None


def _check_crl(
    crl: x509.CertificateRevocationList, cert: x509.Certificate, issuer: x509.Certificate, now: datetime
) -> tuple[str, str] | None:
    """(reason, clause) when the CRL cannot be used for `cert`; None when it can."""
    if crl.issuer != cert.issuer:
        return (
            "wrong-issuer",
            f"is issued by {crl.issuer.rfc4514_string()}, not {cert.issuer.rfc4514_string()}",
        )
    try:
        signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError, UnsupportedAlgorithm):
        signed = False
    if not signed:
        return "bad-signature", f"does not carry a valid signature of {issuer.subject.rfc4514_string()}"
    this_update = _utc(crl.last_update_utc)
    if this_update > now + CLOCK_SKEW:
        return "not-yet-valid", f"is not valid before {this_update:%Y-%m-%d %H:%M} UTC (thisUpdate)"
    next_update = _opt_utc(crl.next_update_utc)
    if next_update is not None and next_update < now:
        return "expired", f"expired on {next_update:%Y-%m-%d %H:%M} UTC (nextUpdate) and was not renewed"
    return None


def judge_crl(
    url: str,
    fetch: RevocationFetch | None,
    cert: x509.Certificate,
    issuer: x509.Certificate | None,
    deltas: Sequence[RevocationFetch],
    now: datetime,
) -> SourceVerdict:
    """One CDP: the base CRL at `url` and any delta CRL it (or the certificate) names, fetched as `deltas`."""
    missing = _not_obtained("crl", url, fetch)
    if missing is not None:
        return missing
    assert fetch is not None and fetch.body is not None
    crl = _load_crl(fetch.body)
    if crl is None:
        return SourceVerdict("crl", url, "unusable", "not-a-crl", f"{url} is not a CRL (DER or PEM)")
    if issuer is None:
        return SourceVerdict(
            "crl", url, "unusable", "no-issuer", f"the CRL at {url} cannot be verified: the issuer is unknown"
        )
    problem = _check_crl(crl, cert, issuer, now)
    tu, nu = _utc(crl.last_update_utc), _opt_utc(crl.next_update_utc)
    if problem is not None:
        return SourceVerdict(
            "crl",
            url,
            "unusable",
            problem[0],
            f"the CRL at {url} {problem[1]}",
            this_update=tu,
            next_update=nu,
        )
    if crl.extensions and _has(crl, x509.DeltaCRLIndicator):
        return SourceVerdict(
            "crl",
            url,
            "unusable",
            "delta-at-cdp",
            f"{url} serves a delta CRL where a base CRL belongs",
            this_update=tu,
            next_update=nu,
        )
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is not None:
        when = _utc(entry.revocation_date_utc)
        why = _reason(entry)
        return SourceVerdict(
            "crl",
            url,
            "revoked",
            "revoked",
            f"the CRL at {url} lists serial {cert.serial_number:X} as revoked on {when:%Y-%m-%d}"
            + (f" ({why})" if why else ""),
            revoked_at=when,
            revocation_reason=why,
            this_update=tu,
            next_update=nu,
        )
    named = list(dict.fromkeys([*_freshest_urls(crl), *_freshest_urls(cert)]))
    if named:
        delta_verdict = _judge_deltas(named, deltas, crl, cert, issuer, now)
        if delta_verdict is not None:
            d_status, d_reason, d_clause, d_when, d_why = delta_verdict
            return SourceVerdict(
                "crl",
                url,
                d_status,
                d_reason,
                d_clause,
                revoked_at=d_when,
                revocation_reason=d_why,
                this_update=tu,
                next_update=nu,
            )
    next_text = f", next update {nu:%Y-%m-%d}" if nu else ""
    with_delta = " and its delta CRL" if named else ""
    return SourceVerdict(
        "crl",
        url,
        "good",
        "good",
        f"the CRL at {url}{with_delta} does not list serial {cert.serial_number:X}{next_text}",
        this_update=tu,
        next_update=nu,
    )


def _opt_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else _utc(moment)


def _has(owner: x509.CertificateRevocationList, kind: type[x509.ExtensionType]) -> bool:
    try:
        owner.extensions.get_extension_for_class(kind)
    except (x509.ExtensionNotFound, ValueError):
        return False
    return True


def _judge_deltas(
    named: list[str],
    deltas: Sequence[RevocationFetch],
    base: x509.CertificateRevocationList,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: datetime,
) -> tuple[SourceStatus, str, str, datetime | None, str | None] | None:
    """A base CRL that names a delta CRL is usable only with that delta (Windows fails the check as
    offline when it cannot get it). None: a verified delta leaves the serial unrevoked."""
    problems: list[str] = []
    base_number = _crl_number(base)
    for url in named:
        fetch = next((d for d in deltas if d.url == url), None)
        missing = _not_obtained("crl", url, fetch)
        if missing is not None:
            problems.append(missing.detail)
            continue
        assert fetch is not None and fetch.body is not None
        delta = _load_crl(fetch.body)
        if delta is None:
            problems.append(f"{url} is not a CRL")
            continue
        problem = _check_crl(delta, cert, issuer, now)
        if problem is not None:
            problems.append(f"the delta CRL at {url} {problem[1]}")
            continue
        try:
            indicator = delta.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value
        except (x509.ExtensionNotFound, ValueError):
            problems.append(f"{url} is not a delta CRL (no Delta CRL Indicator)")
            continue
        if base_number is not None and indicator.crl_number > base_number:
            problems.append(
                f"the delta CRL at {url} needs base CRL {indicator.crl_number}, not {base_number}"
            )
            continue
        entry = delta.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None and _reason(entry) != "removeFromCRL":
            when = _utc(entry.revocation_date_utc)
            why = _reason(entry)
            return (
                "revoked",
                "revoked",
                f"the delta CRL at {url} lists serial {cert.serial_number:X} as revoked on {when:%Y-%m-%d}"
                + (f" ({why})" if why else ""),
                when,
                why,
            )
        return None
    return "unusable", "delta-unavailable", "the delta CRL is needed: " + "; ".join(problems), None, None


# ---- OCSP -------------------------------------------------------------------------------------------------


def _ocsp_signer(resp: ocsp.OCSPResponse, issuer: x509.Certificate) -> x509.Certificate | None:
    """The issuer itself, or a delegated responder certificate the response carries, issued by the issuer
    with the OCSP Signing EKU (RFC 6960 4.2.2.2)."""
    issuer_id = _key_id(issuer)
    if resp.responder_key_hash == issuer_id or resp.responder_name == issuer.subject:
        return issuer
    for cand in resp.certificates:
        named = resp.responder_name == cand.subject or resp.responder_key_hash == _key_id(cand)
        if not named or not _issued_by(cand, issuer):
            continue
        try:
            ekus = cand.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (x509.ExtensionNotFound, ValueError):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in ekus:
            return cand
    return None


def judge_ocsp(
    url: str,
    fetch: RevocationFetch | None,
    cert: x509.Certificate,
    issuer: x509.Certificate | None,
    now: datetime,
) -> SourceVerdict:
    missing = _not_obtained("ocsp", url, fetch)
    if missing is not None:
        return missing
    assert fetch is not None and fetch.body is not None
    try:
        resp = ocsp.load_der_ocsp_response(fetch.body)
    except ValueError:
        return SourceVerdict(
            "ocsp", url, "unusable", "not-ocsp", f"{url} did not answer with an OCSP response"
        )
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        status_name = resp.response_status.name.lower()
        return SourceVerdict(
            "ocsp",
            url,
            "unavailable",
            f"ocsp-{status_name}",
            f"the OCSP responder at {url} answered {status_name}",
        )
    if issuer is None:
        return SourceVerdict(
            "ocsp",
            url,
            "unusable",
            "no-issuer",
            f"the OCSP answer of {url} cannot be verified: issuer unknown",
        )
    single = None
    for candidate in resp.responses:
        if candidate.serial_number != cert.serial_number:
            continue
        try:
            wanted = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, candidate.hash_algorithm).build()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if wanted.issuer_key_hash == candidate.issuer_key_hash and (
            wanted.issuer_name_hash == candidate.issuer_name_hash
        ):
            single = candidate
            break
    if single is None:
        return SourceVerdict(
            "ocsp",
            url,
            "unusable",
            "no-answer-for-cert",
            f"the OCSP answer of {url} is not about this certificate",
        )
    signer = _ocsp_signer(resp, issuer)
    if signer is None:
        return SourceVerdict(
            "ocsp",
            url,
            "unusable",
            "signer-unknown",
            f"the OCSP answer of {url} is signed by a responder the issuer did not authorise",
        )
    try:
        algorithm = resp.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if not _verify(signer.public_key(), resp.signature, resp.tbs_response_bytes, algorithm):
        return SourceVerdict(
            "ocsp",
            url,
            "unusable",
            "bad-signature",
            f"the OCSP answer of {url} does not carry a valid signature",
        )
    tu, nu = _utc(single.this_update_utc), _opt_utc(single.next_update_utc)
    if tu > now + CLOCK_SKEW:
        return SourceVerdict(
            "ocsp",
            url,
            "unusable",
            "not-yet-valid",
            f"the OCSP answer of {url} is dated in the future",
            this_update=tu,
            next_update=nu,
        )
    if nu is not None and nu < now:
        return SourceVerdict(
            "ocsp",
            url,
            "unusable",
            "expired",
            f"the OCSP answer of {url} expired on {nu:%Y-%m-%d %H:%M} UTC (a stale pre-signed answer)",
            this_update=tu,
            next_update=nu,
        )
    status = single.certificate_status
    if status == ocsp.OCSPCertStatus.GOOD:
        return SourceVerdict(
            "ocsp",
            url,
            "good",
            "good",
            f"the OCSP responder at {url} answers good",
            this_update=tu,
            next_update=nu,
        )
    if status == ocsp.OCSPCertStatus.REVOKED:
        when = _opt_utc(single.revocation_time_utc)
        why = single.revocation_reason.value if single.revocation_reason is not None else None
        on = f" on {when:%Y-%m-%d}" if when else ""
        return SourceVerdict(
            "ocsp",
            url,
            "revoked",
            "revoked",
            f"the OCSP responder at {url} answers revoked{on}" + (f" ({why})" if why else ""),
            revoked_at=when,
            revocation_reason=str(why) if why else None,
            this_update=tu,
            next_update=nu,
        )
    return SourceVerdict(
        "ocsp",
        url,
        "unknown",
        "ocsp-unknown",
        f"the OCSP responder at {url} answers unknown (not its certificate)",
        this_update=tu,
        next_update=nu,
    )


# ---- one certificate, the chain ---------------------------------------------------------------------------


def _load(der: bytes | None) -> x509.Certificate | None:
    if der is None:
        return None
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def _fetch_for(c: CertificateRevocation, purpose: str, url: str) -> RevocationFetch | None:
    return next((f for f in c.fetches if f.purpose == purpose and f.url == url), None)


def _judge_certificate(c: CertificateRevocation, now: datetime) -> CertificateVerdict:
    def verdict(
        status: CertStatus, reason: str, detail: str, sources: Sequence[SourceVerdict] = ()
    ) -> CertificateVerdict:
        return CertificateVerdict(
            c.position, c.subject, c.serial, status, reason, detail, c.issuer_source, tuple(sources)
        )

    cert = _load(c.certificate_der)
    if cert is None:
        return verdict("not-checked", "no-certificate", "the certificate was not kept")
    if not c.crl_urls and not c.ocsp_urls:
        return verdict(
            "no-info", "no-info", f"{c.subject} names no CRL distribution point and no OCSP responder"
        )
    issuer = _load(c.issuer_der)
    if issuer is not None and not _issued_by(cert, issuer):
        issuer = None
    deltas = [f for f in c.fetches if f.purpose == "delta-crl"]
    sources = [judge_ocsp(u, _fetch_for(c, "ocsp", u), cert, issuer, now) for u in c.ocsp_urls]
    sources += [judge_crl(u, _fetch_for(c, "crl", u), cert, issuer, deltas, now) for u in c.crl_urls]
    revoked = next((s for s in sources if s.status == "revoked"), None)
    if revoked is not None:
        return verdict("revoked", "revoked", revoked.detail, sources)
    good = [s for s in sources if s.status == "good"]
    if good:
        return verdict("good", "good", " and ".join(s.detail for s in good), sources)
    if all(s.status == "not-checked" for s in sources):
        reason = sources[0].reason if sources else "not-checked"
        return verdict("not-checked", reason, "; ".join(s.detail for s in sources), sources)
    detail = "; ".join(s.detail for s in sources if s.status != "not-checked")
    return verdict("offline", _offline_reason(sources, issuer is None), detail, sources)


def _offline_reason(sources: Sequence[SourceVerdict], no_issuer: bool) -> str:
    crls = [s for s in sources if s.kind == "crl"]
    if no_issuer:
        return "no-issuer"
    if crls and all(s.reason in ("ldap", "scheme") for s in crls):
        return "ldap-only"
    for s in crls:
        if s.reason == "expired":
            return "expired-crl"
        if s.reason == "delta-unavailable":
            return "delta-unavailable"
        if s.status == "unusable":
            return "bad-crl"
    if not crls:
        return "ocsp-only"
    return "unreachable"


def judge_revocation(obs: RevocationObservation | None, now: datetime) -> RevocationJudgement:
    """The chain's revocation as a Windows client would find it at `now`."""
    now = _utc(now)
    if obs is None or not obs.certificates:
        return RevocationJudgement("not-checked", ())
    verdicts = tuple(_judge_certificate(c, now) for c in obs.certificates)
    status = min((v.status for v in verdicts), key=_WORST.index)
    warnings: list[str] = []
    for v in verdicts:
        if v.status != "good":
            continue
        for s in v.sources:
            if s.status in ("unusable", "unavailable", "unknown"):
                if s.kind == "ocsp":
                    warnings.append(
                        f"{s.detail}: clients wait for it before they fall back to the CRL"
                        if s.status != "unknown"
                        else s.detail
                    )
                else:
                    warnings.append(f"{s.detail} (another source answered)")
    if obs.intermediate_from_aia:
        fetched = next((c for c in obs.certificates if c.issuer_source == "aia"), None)
        what = fetched.issuer_subject if fetched is not None else "an intermediate CA"
        warnings.append(
            f"the server does not send {what}: it was fetched through AIA caIssuers; clients that cannot "
            "reach that URL (or do not fetch, as many non-Windows clients) cannot build the chain"
        )
    return RevocationJudgement(status, verdicts, tuple(dict.fromkeys(warnings)), obs.intermediate_from_aia)


# ---- findings ---------------------------------------------------------------------------------------------

REMEDY_REVOKED = (
    "The certificate was revoked by its CA: issue a new one and bind it on the server (RRAS: "
    "Set-RemoteAccess -SslCertificate $cert for SSTP, the IKEv2 certificate in the machine store; the ADC "
    "for IP-HTTPS). If it should not have been revoked, find out why before reissuing - a revoked key may be "
    "compromised."
)
REMEDY_OFFLINE = (
    "Publish the CRL (and any delta CRL, and the CA certificate the AIA names) at the http:// URLs in the "
    "certificates, reachable from the Internet without authentication or a proxy (a CDP web server outside, "
    "or a reverse proxy to it); keep every CRL current (on an AD CS CA: certutil -CRL, then copy the .crl "
    "files to the CDP before nextUpdate). Check from outside with: certutil -urlfetch -verify server.cer. Or "
    "reissue the certificate from a CA whose CDP/AIA are public."
)
REMEDY_NO_INFO = (
    "Reissue the certificate with a CRL distribution point (and AIA) at a public http:// URL, as public CAs "
    "and AD CS templates do. Until then Windows SSTP clients connect only with revocation checking turned "
    "off for SSTP on every client (HKLM\\SYSTEM\\CurrentControlSet\\Services\\SstpSvc\\Parameters, DWORD "
    "NoCertRevocationCheck = 1), which is a workaround, not a fix."
)
REMEDY_AIA = (
    "Send the intermediate CA certificate(s) with the server certificate (the chain without the root): "
    "import the intermediate into the server's Intermediate Certification Authorities store (RRAS, IIS) or "
    "append it to the certificate file (HAProxy, nginx, strongSwan x509ca)."
)
REMEDY_OCSP = (
    "Repair the OCSP responder the certificate names (AIA OCSP) or reissue without it: a dead responder "
    "delays every connection until the client gives up on it and falls back to the CRL."
)

_ERRORS = {
    CRYPT_E_REVOKED: "CRYPT_E_REVOKED (0x80092010)",
    CRYPT_E_REVOCATION_OFFLINE: "CRYPT_E_REVOCATION_OFFLINE (0x80092013)",
    CRYPT_E_NO_REVOCATION_CHECK: "CRYPT_E_NO_REVOCATION_CHECK (0x80092012)",
    ERROR_IPSEC_IKE_PEER_CRL_FAILED: "error 13848 (ERROR_IPSEC_IKE_PEER_CRL_FAILED)",
}


def _outcome(status: CertStatus, protocol: Protocol) -> tuple[Status, tuple[int, ...], str]:
    """(finding status, error codes, what the client does) for a chain status over one protocol."""
    if status == "revoked":
        return "fail", (CRYPT_E_REVOKED,), f"Windows clients refuse it: {_ERRORS[CRYPT_E_REVOKED]}."
    if status == "offline":
        if protocol in ("sstp", "tls"):
            return (
                "fail",
                (CRYPT_E_REVOCATION_OFFLINE,),
                f"Windows SSTP clients refuse to connect: {_ERRORS[CRYPT_E_REVOCATION_OFFLINE]}.",
            )
        if protocol == "iphttps":
            return (
                "warn",
                (CRYPT_E_REVOCATION_OFFLINE,),
                f"Windows 7 DirectAccess clients fail IP-HTTPS with {_ERRORS[CRYPT_E_REVOCATION_OFFLINE]} "
                "(Microsoft KB 2980672); Windows 8 and later skip this check for IP-HTTPS.",
            )
        return (
            "warn",
            (ERROR_IPSEC_IKE_PEER_CRL_FAILED,),
            "An IKEv2 client that checks the gateway's revocation fails with "
            f"{_ERRORS[ERROR_IPSEC_IKE_PEER_CRL_FAILED]}; the same certificate on SSTP fails with "
            f"{_ERRORS[CRYPT_E_REVOCATION_OFFLINE]}.",
        )
    if status == "no-info":
        # A warning, not a failure: whether a client refuses such a certificate depends on a client setting
        # we cannot see (NoCertRevocationCheck), and the exact code Windows shows for it was not confirmed.
        return (
            "warn",
            (CRYPT_E_NO_REVOCATION_CHECK, CRYPT_E_REVOCATION_OFFLINE) if protocol in ("sstp", "tls") else (),
            "Windows cannot check its revocation: SSTP clients refuse such a certificate unless revocation "
            "checking is turned off on them (NoCertRevocationCheck = 1); Windows reports it as "
            f"{_ERRORS[CRYPT_E_NO_REVOCATION_CHECK]} or {_ERRORS[CRYPT_E_REVOCATION_OFFLINE]}.",
        )
    return "pass", (), ""


def _fetch_evidence(c: CertificateRevocation) -> list[dict[str, Any]]:
    return [
        {
            "purpose": f.purpose,
            "url": f.url,
            "outcome": f.outcome,
            "http_status": f.http_status,
            "size_bytes": f.size_bytes,
            "elapsed_s": f.elapsed_s,
            "error": f.error,
        }
        for f in c.fetches
    ]


@dataclass(frozen=True)
class RevocationOutcome:
    """The judgement mapped onto one protocol: what a finding (or the revocation part of one) says."""

    chain_status: CertStatus
    status: Status
    detail: str
    remedy: str = ""
    codes: tuple[int, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)


def _evidence(obs: RevocationObservation, judged: RevocationJudgement) -> dict[str, Any]:
    per_cert = {c.position: c for c in obs.certificates}
    evidence: dict[str, Any] = {
        "status": judged.status,
        "certificates": [
            {
                "subject": v.subject,
                "serial": v.serial,
                "status": v.status,
                "reason": v.reason,
                "issuer_source": v.issuer_source,
                "crl_urls": per_cert[v.position].crl_urls,
                "ocsp_urls": per_cert[v.position].ocsp_urls,
                "sources": [s.evidence() for s in v.sources],
                "fetches": _fetch_evidence(per_cert[v.position]),
            }
            for v in judged.certificates
        ],
        "fetches_used": f"{obs.fetches_used}/{obs.max_fetches}",
        "chain_sent": obs.chain_sent,
        "intermediate_from_aia": obs.intermediate_from_aia,
    }
    if obs.notes:
        evidence["notes"] = obs.notes
    return evidence


def revocation_outcome(
    obs: RevocationObservation | None, now: datetime, protocol: Protocol, *, why_not: str = ""
) -> RevocationOutcome:
    """What the revocation of the chain in `obs` means for a Windows client of `protocol` at `now`."""
    if obs is None:
        return RevocationOutcome("not-checked", "skip", why_not or "no certificate chain to check")
    judged = judge_revocation(obs, now)
    evidence = _evidence(obs, judged)
    if judged.status == "not-checked":
        reason = "; ".join(v.detail for v in judged.certificates) or "no certificate to check"
        return RevocationOutcome(
            "not-checked", "skip", f"Revocation not checked: {reason}.", evidence=evidence
        )
    worst = next(v for v in judged.certificates if v.status == judged.status)
    status, codes, client = _outcome(judged.status, protocol)
    if judged.status == "good":
        checked = "; ".join(f"{v.subject}: {v.detail}" for v in judged.certificates)
        if not judged.warnings:
            return RevocationOutcome("good", "pass", f"Not revoked: {checked}.", evidence=evidence)
        remedies = []
        if judged.intermediate_from_aia:
            remedies.append(REMEDY_AIA)
        if not judged.intermediate_from_aia or any("OCSP" in w for w in judged.warnings):
            remedies.append(REMEDY_OCSP if any("OCSP" in w for w in judged.warnings) else REMEDY_OFFLINE)
        return RevocationOutcome(
            "good",
            "warn",
            f"Not revoked ({checked}), but: " + "; ".join(judged.warnings) + ".",
            "\n".join(remedies),
            evidence=evidence,
        )
    if judged.status == "revoked":
        text = f"{worst.subject} (serial {worst.serial}) is revoked: {worst.detail}. {client}"
        return RevocationOutcome("revoked", status, text, REMEDY_REVOKED, codes, evidence)
    if judged.status == "no-info":
        return RevocationOutcome(
            "no-info", status, f"{worst.detail}: {client}", REMEDY_NO_INFO, codes, evidence
        )
    why = {
        "ldap-only": " (LDAP only: clients outside the domain cannot reach the directory)",
        "expired-crl": " (the CRL has expired)",
        "delta-unavailable": " (the delta CRL cannot be had)",
        "no-issuer": " (its issuer certificate is neither sent nor reachable through AIA)",
    }.get(worst.reason, "")
    text = f"The revocation of {worst.subject} cannot be checked{why}: {worst.detail}. {client}"
    return RevocationOutcome("offline", status, text, REMEDY_OFFLINE, codes, evidence)


def revocation_finding(
    fid: str, obs: RevocationObservation | None, now: datetime, protocol: Protocol, *, why_not: str = ""
) -> Finding:
    """The revocation finding `fid` for one protocol's chain; `why_not` is the skip text without one."""
    o = revocation_outcome(obs, now, protocol, why_not=why_not)
    remedy = o.remedy if o.status in ("fail", "warn") else ""
    return finding(fid, o.status, o.detail, o.evidence, remedy, o.codes)
