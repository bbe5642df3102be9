"""Pure checks of a TLS endpoint audit: observation -> findings with stable ids, a verdict, the JSON report.

Every finding says what the fact means for DirectAccess (IP-HTTPS) and Always On VPN (SSTP) and how to
fix it. `TlsReport` is the contract of `vpndoctor tls --json` (schema/tls.json).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pydantic import BaseModel, ConfigDict, Field

from vpndoctor import __version__
from vpndoctor.certs import eku_names
from vpndoctor.checks.certificate import (
    AiaIntermediate,
    CertificateFacts,
    aia_intermediates,
    aia_note,
    common_names_in,
    eku_oids,
    facts_of,
    judge_certificate,
    judge_name,
    signature_name,
)
from vpndoctor.checks.ids import TLS_ALL as ALL
from vpndoctor.checks.ids import (  # the ids live in one table; these names stay importable from here
    TLS_AUDIT_COMPLETE,
    TLS_CERT_EKU,
    TLS_CERT_KEY,
    TLS_CERT_NAME,
    TLS_CERT_REVOCATION,
    TLS_CERT_SIGNATURE,
    TLS_CERT_TRUST,
    TLS_CERT_VALIDITY,
    TLS_CLIENT_AUTH,
    TLS_CLIENT_AUTH_CERT,
    TLS_CLIENT_AUTH_FOREIGN,
    TLS_NULL_SUITES,
    TLS_PROTOCOL_SSLV3,
    TLS_PROTOCOL_TLS10,
    TLS_PROTOCOL_TLS11,
    TLS_PROTOCOL_TLS12,
    TLS_PROTOCOL_TLS13,
    TLS_REACHABLE,
    TLS_RESUMPTION,
    TLS_SUITES_WEAK,
)
from vpndoctor.checks.model import Finding, Status, Verdict, finding
from vpndoctor.checks.revocation import REMEDY_AIA, revocation_finding
from vpndoctor.observations.tls import AuditObservation, OversizedAnswer
from vpndoctor.tls import suites as S
from vpndoctor.tls.audit import (
    VERSION_NAMES,
    ErrorReason,
    HelloJob,
    HelloOutcome,
    JobResult,
    JobStatus,
    StackOutcome,
    refused,
)

# ------------------------------------------------------------------------------------ stable ids


REMEDY_PROTOCOLS = (
    "NetScaler: `set ssl vserver VS -ssl3 DISABLED -tls1 DISABLED -tls11 DISABLED -tls12 ENABLED`; "
    "F5: client-SSL profile Options `No SSLv3`/`No TLSv1`; nginx: `ssl_protocols TLSv1.2 TLSv1.3;`; "
    "HAProxy: `ssl-min-ver TLSv1.2` on the bind line; Windows (RRAS/IP-HTTPS server): SCHANNEL registry "
    "keys HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\<ver>\\Server "
    "Enabled=0, then reboot."
)
REMEDY_NULL = (
    "For an IP-HTTPS endpoint, offer TLS_RSA_WITH_NULL_SHA (0x0002) and TLS_RSA_WITH_NULL_SHA256 (0x003B) "
    "beside the encrypting suites (NetScaler: bind the NULL-SHA cipher to the vserver; nginx/HAProxy: "
    "`ECDHE-RSA-AES128-SHA:NULL-SHA:NULL-SHA256:@SECLEVEL=0`). Never on an SSTP endpoint."
)
REMEDY_CLIENT_AUTH = (
    "For IP-HTTPS preauthentication make the client certificate mandatory and advertise the DirectAccess "
    "CA: NetScaler `set ssl vserver VS -clientAuth ENABLED -clientCert Mandatory` + `bind ssl vserver VS "
    "-certkeyName CA -CA`; nginx `ssl_verify_client on; ssl_client_certificate ca.pem;`; HAProxy `verify "
    "required ca-file ca.pem`."
)
REMEDY_CERT = (
    "Issue the TLS certificate from a CA the clients trust, with the public name in its SAN, the Server "
    "Authentication EKU, an RSA key of at least 2048 bits and a SHA-2 signature; bind it on the ADC (or "
    "with `netsh http add sslcert` for IP-HTTPS/SSTP on Windows) and restart the service."
)
REMEDY_SIZE = (
    "Bind a certificate chain of ordinary size (a few KB: the server certificate and its intermediates, "
    "without oversized extensions or unrelated certificates) to this listener; TLS clients refuse "
    "certificate messages this large (OpenSSL stops at 100 KiB, Go and rustls at 64 KiB)."
)
REMEDY_RESUMPTION = (
    "Enable a session cache and tickets (nginx `ssl_session_cache shared:SSL:10m; ssl_session_tickets "
    "on;`; HAProxy `tune.ssl.cachesize`; NetScaler `set ssl vserver VS -sessReuse ENABLED`): SSLSESSION "
    "persistence on an ADC keys on the session id, and reconnecting clients skip a full handshake."
)


# ----------------------------------------------------------------------------------- JSON model


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsCertificate(_Model):
    subject: str
    issuer: str
    san_dns: list[str]
    san_ip: list[str]
    not_before: str
    not_after: str
    eku: list[str]
    key_type: str  # RSA, EC, Ed25519, ...
    key_bits: int | None
    signature_algorithm: str  # e.g. sha256WithRSAEncryption
    sha256: str
    chain_length: int
    chain: list[str]  # subjects, leaf first
    trusted: bool
    trust_anchors: str  # "--ca" or the system store
    expected_name: str | None
    name_matches: bool | None
    seen_in: str | None  # the protocol version whose handshake carried it


class TlsClientCertResult(_Model):
    accepted: bool
    refused_by: Literal["tls", "http"] | None
    detail: str


class TlsResumption(_Model):
    session_id: bool | None  # resumed with a session id (TLS <= 1.2); None: could not be tried
    ticket: bool | None  # resumed with a session ticket


class TlsJobError(_Model):
    job: str
    status: Literal["error", "not_scheduled"]
    reason: str | None
    detail: str


class TlsJobs(_Model):
    completed: int
    error: int
    not_scheduled: int
    connections: int
    max_concurrent: int


class TlsReport(_Model):
    tool: dict[str, str]
    target: str
    address: str
    port: int
    sni: str | None
    started_at: str
    duration_s: float
    error: str | None  # the endpoint as a whole: unreachable, or not speaking TLS
    versions: dict[str, bool]
    versions_unknown: list[str]  # versions no attempt could settle (errors, deadline)
    suites: dict[str, list[str]]  # IANA names per version; the server's order where it imposes one
    server_preference: dict[str, bool | None]
    null_suites: list[str]
    client_auth: Literal["none", "optional", "required"]
    client_auth_enforced_by: Literal["tls", "http"] | None
    client_ca_names: list[str]
    client_certificate: TlsClientCertResult | None  # --client-cert
    foreign_certificate: TlsClientCertResult | None  # a throwaway self-signed certificate
    certificate: TlsCertificate | None
    resumption: TlsResumption
    verdict: Verdict
    findings: list[Finding]
    jobs: TlsJobs
    complete: bool  # every planned connection completed: the lists above are not cut short by errors
    errors: list[TlsJobError] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------ checks


def _f(
    fid: str,
    status: Status,
    detail: str,
    evidence: dict[str, Any] | None = None,
    remedy: str = "",
    title: str | None = None,
) -> Finding:
    # A remedy only where there is something to fix.
    return finding(fid, status, detail, evidence, remedy if status in ("fail", "warn") else "", title=title)


def _skip(fid: str, why: str) -> Finding:
    return _f(fid, "skip", why)


def _names(values: list[int]) -> list[str]:
    return S.names(values)


def check_protocols(versions: dict[str, bool], unknown: list[str]) -> list[Finding]:
    out: list[Finding] = []
    ev = {"versions": versions, "unknown": unknown}

    def unknown_skip(fid: str, name: str) -> Finding | None:
        return _skip(fid, f"{name}: every attempt failed, see errors") if name in unknown else None

    f = unknown_skip(TLS_PROTOCOL_SSLV3, "SSLv3")
    if f is None:
        f = (
            _f(
                TLS_PROTOCOL_SSLV3,
                "fail",
                "SSLv3 is accepted (POODLE). No Windows VPN client needs it: SSTP and IP-HTTPS clients use "
                "TLS 1.0 (Windows 7) or TLS 1.2.",
                ev,
                REMEDY_PROTOCOLS,
            )
            if versions["SSLv3"]
            else _f(TLS_PROTOCOL_SSLV3, "pass", "SSLv3 is refused.", ev)
        )
    out.append(f)
    for fid, name in ((TLS_PROTOCOL_TLS10, "TLSv1.0"), (TLS_PROTOCOL_TLS11, "TLSv1.1")):
        f = unknown_skip(fid, name)
        if f is None:
            if versions[name]:
                extra = (
                    " Keep it only while Windows 7 DirectAccess/SSTP clients remain (they speak TLS 1.0 to "
                    "IP-HTTPS and SSTP unless TLS 1.1/1.2 were enabled for WinHTTP/SCHANNEL on them)."
                    if name == "TLSv1.0"
                    else " No Windows VPN client needs TLS 1.1 (Windows 7 uses 1.0, Windows 8 and later 1.2)."
                )
                f = _f(fid, "warn", f"{name} is accepted.{extra}", ev, REMEDY_PROTOCOLS)
            else:
                f = _f(fid, "pass", f"{name} is refused.", ev)
        out.append(f)
    f = unknown_skip(TLS_PROTOCOL_TLS12, "TLSv1.2")
    if f is None:
        f = (
            _f(TLS_PROTOCOL_TLS12, "pass", "TLS 1.2 is accepted (what Windows 8 and later clients use).", ev)
            if versions["TLSv1.2"]
            else _f(
                TLS_PROTOCOL_TLS12,
                "fail",
                "TLS 1.2 is refused: Windows 8/10/11 SSTP and IP-HTTPS clients negotiate TLS 1.2.",
                ev,
                REMEDY_PROTOCOLS,
            )
        )
    out.append(f)
    f = unknown_skip(TLS_PROTOCOL_TLS13, "TLSv1.3")
    if f is None:
        f = _f(
            TLS_PROTOCOL_TLS13,
            "pass",
            "TLS 1.3 is accepted."
            if versions["TLSv1.3"]
            else "TLS 1.3 is not offered (no Windows SSTP or IP-HTTPS client needs it).",
            ev,
        )
    out.append(f)
    return out


def check_weak_suites(suites: dict[str, list[int]]) -> Finding:
    groups = {
        "export": S.EXPORT,
        "anonymous": S.ANON,
        "DES": S.DES,
        "RC4": S.RC4,
    }
    broken: dict[str, list[str]] = {}
    sweet32: dict[str, list[str]] = {}
    kinds: dict[str, set[str]] = {}
    for version, values in suites.items():
        bad = [v for v in values if any(v in g for g in groups.values())]
        for v in bad:
            kinds.setdefault(next(k for k, g in groups.items() if v in g), set()).add(version)
        tdes = [v for v in values if v in S.TRIPLE_DES and v not in bad]
        if bad:
            broken[version] = _names(bad)
        if tdes:
            sweet32[version] = _names(tdes)
    ev: dict[str, Any] = {"broken": broken, "triple_des": sweet32}
    if broken:
        what = "; ".join(f"{k} in {', '.join(sorted(vs))}" for k, vs in kinds.items())
        count = len({n for names in broken.values() for n in names})
        example = next(iter(broken.values()))[0]
        return _f(
            TLS_SUITES_WEAK,
            "fail",
            f"{count} broken suite(s) accepted ({what}), e.g. {example}; the full list is in the evidence.",
            ev,
            "Remove them from the cipher list (NetScaler cipher group, nginx `ssl_ciphers`, HAProxy "
            "`ciphers`; add `!aNULL:!eNULL:!EXPORT:!DES:!RC4` to OpenSSL cipher strings, keeping NULL-SHA "
            "explicitly where IP-HTTPS needs it).",
        )
    if sweet32:
        return _f(
            TLS_SUITES_WEAK,
            "warn",
            "3DES suites are accepted (Sweet32) in " + ", ".join(sweet32) + ".",
            ev,
            "Remove 3DES unless a Windows 7 client without AES suites remains.",
        )
    return _f(TLS_SUITES_WEAK, "pass", "No export, anonymous, DES, RC4 or 3DES suite is accepted.", ev)


def check_null(
    null: list[int],
    versions: dict[str, bool],
    suites: dict[str, list[int]] | None = None,
    preference: dict[str, bool | None] | None = None,
) -> Finding:
    ev: dict[str, Any] = {"null_suites": _names(null)}
    # With its own order, a server hands a NULL-first client (Windows 8+ IP-HTTPS) its favourite suite.
    overruled = {
        v: S.name_of(order[0])
        for v, order in (suites or {}).items()
        if (preference or {}).get(v)
        and order
        and not S.is_null(order[0])
        and any(S.is_null(x) for x in order)
    }
    if null and overruled:
        ev["server_preferred"] = overruled
        first = ", ".join(f"{v}: {n}" for v, n in overruled.items())
        return _f(
            TLS_NULL_SUITES,
            "warn",
            f"NULL suites are accepted ({', '.join(_names(null))}) but the server imposes its own order and "
            f"prefers an encrypting suite ({first}): Windows 8 and later IP-HTTPS clients, which offer NULL "
            "first, still get encryption on top of IPsec.",
            ev,
            "List the NULL suites first or let the client choose (HAProxy `prefer-client-ciphers`, nginx "
            "`ssl_prefer_server_ciphers off`, NetScaler cipher group order).",
        )
    if null:
        return _f(
            TLS_NULL_SUITES,
            "pass",
            f"NULL suites accepted ({', '.join(_names(null))}): Windows 8 and later IP-HTTPS clients offer "
            "them first and skip a second encryption of traffic IPsec already protects. (On an SSTP "
            "endpoint this would send PPP in clear: SSTP needs an encrypting suite.)",
            ev,
        )
    if not any(versions.values()):
        return _skip(TLS_NULL_SUITES, "no protocol version was accepted")
    return _f(
        TLS_NULL_SUITES,
        "warn",
        "No NULL suite is accepted: Windows 8 and later IP-HTTPS clients then encrypt their IPsec traffic a "
        "second time (more CPU on the server or ADC, less throughput). Right for SSTP; for IP-HTTPS add "
        "NULL-SHA/NULL-SHA256.",
        ev,
        REMEDY_NULL,
    )


def check_client_auth(obs: AuditObservation) -> list[Finding]:
    facts = obs.facts
    ev: dict[str, Any] = {
        "client_auth": facts.client_auth,
        "enforced_by": facts.client_auth_enforced_by,
        "ca_names": facts.client_ca_names,
        "certificate_request_seen": facts.certificate_request_seen,
    }
    if facts.no_cert is not None:
        ev["without_certificate"] = _stack_evidence(facts.no_cert)
    out: list[Finding] = []
    cas = ", ".join(facts.client_ca_names) or "no CA names (any issuer)"
    if facts.client_auth == "required":
        how = (
            "by the TLS handshake"
            if facts.client_auth_enforced_by == "tls"
            else (
                "at the HTTP layer (the TLS handshake completes, then the server answers "
                f"{facts.no_cert.http_status if facts.no_cert else '?'} without a certificate)"
            )
        )
        out.append(
            _f(
                TLS_CLIENT_AUTH,
                "pass",
                f"A client certificate is required, enforced {how}; CAs advertised: {cas}. IP-HTTPS "
                "preauthentication at the ADC works: clients without a certificate from these CAs never "
                "reach the DirectAccess server.",
                ev,
            )
        )
    elif facts.client_auth == "optional":
        known = "" if facts.client_auth_known else " (whether it is enforced could not be tested)"
        out.append(
            _f(
                TLS_CLIENT_AUTH,
                "warn",
                f"A client certificate is requested but not required{known}; CAs advertised: {cas}. "
                "Clients without one get through, so an ADC does no preauthentication (fine for SSTP, "
                "whose users authenticate inside PPP).",
                ev,
                REMEDY_CLIENT_AUTH,
            )
        )
    else:
        out.append(
            _f(
                TLS_CLIENT_AUTH,
                "pass",
                "No client certificate is requested (normal for SSTP; a DirectAccess IP-HTTPS endpoint "
                "behind an ADC doing preauthentication would require one).",
                ev,
            )
        )
    foreign = facts.foreign_cert
    if foreign is None:
        out.append(_skip(TLS_CLIENT_AUTH_FOREIGN, "no CertificateRequest was seen, nothing to test"))
    else:
        by = refused(foreign)
        fev = _stack_evidence(foreign)
        if by:
            out.append(
                _f(
                    TLS_CLIENT_AUTH_FOREIGN,
                    "pass",
                    f"A self-signed certificate from an unknown issuer is refused ({_refusal(foreign)}).",
                    fev,
                )
            )
        else:
            out.append(
                _f(
                    TLS_CLIENT_AUTH_FOREIGN,
                    "fail",
                    "A self-signed certificate from an unknown issuer is accepted: the client-certificate "
                    "check authenticates nobody (e.g. nginx `optional_no_ca`, an ADC ignoring verify "
                    "errors).",
                    fev,
                    "Verify client certificates against the DirectAccess CA and refuse the rest "
                    "(HAProxy `verify required ca-file`, nginx `ssl_verify_client on`, NetScaler "
                    "`-clientCert Mandatory` with the CA bound).",
                )
            )
    mine = facts.client_cert
    if not obs.client_cert_given:
        out.append(_skip(TLS_CLIENT_AUTH_CERT, "no --client-cert given"))
    elif mine is None:
        out.append(
            _f(
                TLS_CLIENT_AUTH_CERT,
                "error",
                "The handshake with --client-cert could not be made (see errors).",
            )
        )
    else:
        by = refused(mine)
        cev = _stack_evidence(mine)
        if by:
            out.append(
                _f(
                    TLS_CLIENT_AUTH_CERT,
                    "fail",
                    f"The server refuses --client-cert ({_refusal(mine)}): clients with this certificate "
                    f"cannot connect. CAs it advertises: {cas}.",
                    cev,
                    "Check that the certificate chains to a CA the server is configured with, has the "
                    "Client Authentication EKU, is within its dates and is not revoked (CRL/OCSP "
                    "reachable from the ADC).",
                )
            )
        else:
            out.append(
                _f(
                    TLS_CLIENT_AUTH_CERT,
                    "pass",
                    f"--client-cert is accepted ({mine.version}"
                    + (f", HTTP {mine.http_status}" if mine.http_status else "")
                    + ").",
                    cev,
                )
            )
    return out


def _refusal(o: StackOutcome) -> str:
    if not o.handshake_ok:
        return f"handshake failed: {o.failure}"
    if o.after_handshake_failure:
        return f"right after the handshake: {o.after_handshake_failure}"
    return f"HTTP {o.http_status}: {o.http_text[:120]}"


def _stack_evidence(o: StackOutcome) -> dict[str, Any]:
    return {
        "handshake_ok": o.handshake_ok,
        "version": o.version,
        "cipher": o.cipher,
        "failure": o.failure,
        "after_handshake_failure": o.after_handshake_failure,
        "http_status": o.http_status,
        "http_text": o.http_text,
    }


def describe_certificate(
    chain: tuple[bytes, ...],
    anchors: list[x509.Certificate],
    anchor_source: str,
    expected: str | None,
    seen_in: str | None,
    aia: Sequence[AiaIntermediate] = (),
) -> TlsCertificate | None:
    """Facts of the leaf (and the chain it came with); None when the leaf does not parse. `trusted`: the
    chain as sent, or completed by the intermediates in `aia` (fetched through AIA caIssuers), reaches one
    of the anchors."""
    described = _described(chain, anchors, anchor_source, expected, seen_in, aia)
    return described[0] if described is not None else None


def _described(
    chain: tuple[bytes, ...],
    anchors: list[x509.Certificate],
    anchor_source: str,
    expected: str | None,
    seen_in: str | None,
    aia: Sequence[AiaIntermediate],
) -> tuple[TlsCertificate, tuple[AiaIntermediate, ...]] | None:
    """`describe_certificate`, and the AIA-fetched intermediates the trusted chain needed."""
    try:
        cert = x509.load_der_x509_certificate(chain[0])
    except (ValueError, IndexError):
        return None
    intermediates: list[x509.Certificate] = []
    subjects = [cert.subject.rfc4514_string()]
    for der in chain[1:]:
        try:
            c = x509.load_der_x509_certificate(der)
        except ValueError:
            continue
        intermediates.append(c)
        subjects.append(c.subject.rfc4514_string())
    facts = facts_of(cert, intermediates, anchors, aia)
    matches = None
    if expected is not None:
        matches = judge_name(facts, expected)[0].status == "ok"
    described = TlsCertificate(
        subject=facts.subject,
        issuer=facts.issuer,
        san_dns=list(facts.san_dns),
        san_ip=list(facts.san_ip),
        not_before=facts.not_before.isoformat(),
        not_after=facts.not_after.isoformat(),
        eku=eku_names(cert),
        key_type=facts.key_type or "unknown",
        key_bits=facts.key_bits,
        signature_algorithm=signature_name(cert),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        chain_length=len(chain),
        chain=subjects,
        trusted=facts.trusted is True,
        trust_anchors=anchor_source,
        expected_name=expected,
        name_matches=matches,
        seen_in=seen_in,
    )
    return described, facts.via_aia


def _facts(cert: TlsCertificate, via_aia: Sequence[AiaIntermediate] = ()) -> CertificateFacts:
    """The judge's facts back from the report's certificate (what `describe_certificate` wrote), and the
    AIA-fetched intermediates its trust needed (which the report's certificate does not keep)."""
    return CertificateFacts(
        subject=cert.subject,
        issuer=cert.issuer,
        common_names=common_names_in(cert.subject),
        san_dns=tuple(cert.san_dns),
        san_ip=tuple(cert.san_ip),
        not_before=datetime.fromisoformat(cert.not_before),
        not_after=datetime.fromisoformat(cert.not_after),
        eku=eku_oids(cert.eku),
        key_type=cert.key_type,
        key_bits=cert.key_bits,
        signature_algorithm=cert.signature_algorithm,
        trusted=cert.trusted,
        via_aia=tuple(via_aia) if cert.trusted else (),
    )


def check_certificate(
    cert: TlsCertificate | None,
    chain_seen: bool,
    now: datetime,
    via_aia: Sequence[AiaIntermediate] = (),
) -> list[Finding]:
    """The tls.certificate.* findings; `via_aia`: the AIA-fetched intermediates the chain needed to reach
    an anchor (`describe_certificate`'s `aia`), which make the trust a warning."""
    fids = (TLS_CERT_TRUST, TLS_CERT_VALIDITY, TLS_CERT_NAME, TLS_CERT_EKU, TLS_CERT_KEY, TLS_CERT_SIGNATURE)
    if cert is None:
        if chain_seen:
            return [
                _f(fid, "fail", "The server's certificate does not parse as X.509.", remedy=REMEDY_CERT)
                for fid in fids
            ]
        return [_skip(fid, "no certificate was obtained") for fid in fids]
    # The name was judged when the certificate was described (`name_matches`, in the JSON too); the rest here.
    facts = _facts(cert, via_aia)
    judged = judge_certificate(facts, cert.expected_name, now)
    base = {"subject": cert.subject, "issuer": cert.issuer}
    out: list[Finding] = []
    if judged.trust.reason == "chains-through-aia":
        out.append(
            _f(
                TLS_CERT_TRUST,
                "warn",
                f"Chains to a CA in {cert.trust_anchors} only through AIA: {aia_note(facts.via_aia)}.",
                {
                    **base,
                    "chain": cert.chain,
                    "aia_intermediates": [{"subject": a.subject, "url": a.url} for a in facts.via_aia],
                },
                REMEDY_AIA,
            )
        )
    elif judged.trust.status == "ok":
        out.append(
            _f(
                TLS_CERT_TRUST,
                "pass",
                f"Chains to a CA in {cert.trust_anchors}.",
                {**base, "chain": cert.chain},
            )
        )
    else:
        out.append(
            _f(
                TLS_CERT_TRUST,
                "fail",
                f"Issued by {cert.issuer}, which does not chain to {cert.trust_anchors}: Windows SSTP "
                "clients fail (error 0x800B0109 / 13801-style trust errors) and IP-HTTPS does not connect.",
                {**base, "chain": cert.chain},
                REMEDY_CERT,
            )
        )
    vev = {**base, "not_before": cert.not_before, "not_after": cert.not_after}
    validity = judged.validity
    detail = validity.evidence[:1].upper() + validity.evidence[1:] + "."  # "Expired on 2026-01-01."
    if validity.status == "bad":
        out.append(_f(TLS_CERT_VALIDITY, "fail", detail, vev, REMEDY_CERT))
    elif validity.status == "warn":
        out.append(_f(TLS_CERT_VALIDITY, "warn", detail, vev, REMEDY_CERT))
    else:
        out.append(_f(TLS_CERT_VALIDITY, "pass", detail, vev))
    nev = {**base, "san_dns": cert.san_dns, "san_ip": cert.san_ip, "expected": cert.expected_name}
    if cert.expected_name is None:
        out.append(_skip(TLS_CERT_NAME, "no name to compare with (give --sni NAME)"))
    elif cert.name_matches:
        out.append(_f(TLS_CERT_NAME, "pass", f"{cert.expected_name} matches the certificate.", nev))
    else:
        names = ", ".join(cert.san_dns + cert.san_ip) or cert.subject
        out.append(
            _f(
                TLS_CERT_NAME,
                "fail",
                f"The certificate names {names}, not {cert.expected_name}: clients dialling that name "
                "refuse it (SSTP error 0x800B010F, name mismatch).",
                nev,
                REMEDY_CERT,
            )
        )
    eev = {**base, "eku": cert.eku}
    if judged.eku.status == "bad":
        out.append(
            _f(
                TLS_CERT_EKU,
                "fail",
                "The certificate lacks the Server Authentication EKU (1.3.6.1.5.5.7.3.1): SSTP and "
                "IP-HTTPS clients refuse it.",
                eev,
                REMEDY_CERT,
            )
        )
    else:
        detail = (
            "Server Authentication EKU present."
            if judged.eku.reason == "server-auth"
            else "No EKU extension (any use allowed)."
        )
        out.append(_f(TLS_CERT_EKU, "pass", detail, eev))
    kev = {"key_type": cert.key_type, "key_bits": cert.key_bits}
    if judged.key.status == "bad":
        out.append(
            _f(TLS_CERT_KEY, "fail", f"{cert.key_type} {cert.key_bits}-bit key: too short.", kev, REMEDY_CERT)
        )
    else:
        out.append(
            _f(
                TLS_CERT_KEY,
                "pass",
                f"{cert.key_type} {cert.key_bits or ''}-bit key.".replace(" -", "-"),
                kev,
            )
        )
    sev = {"signature_algorithm": cert.signature_algorithm}
    if judged.signature.status == "bad":
        out.append(
            _f(
                TLS_CERT_SIGNATURE,
                "fail",
                f"Signed with {cert.signature_algorithm}: Windows refuses SHA-1/MD5 server certificates.",
                sev,
                REMEDY_CERT,
            )
        )
    else:
        out.append(_f(TLS_CERT_SIGNATURE, "pass", f"Signed with {cert.signature_algorithm}.", sev))
    return out


def check_resumption(session_id: bool | None, ticket: bool | None, why: str) -> Finding:
    ev = {"session_id": session_id, "ticket": ticket}
    if session_id is None and ticket is None:
        return _skip(TLS_RESUMPTION, why or "resumption could not be tried")
    parts = []
    if session_id is not None:
        parts.append(f"session ids {'resume' if session_id else 'do not resume'}")
    if ticket is not None:
        parts.append(f"tickets {'resume' if ticket else 'do not resume'}")
    if session_id or ticket:
        if session_id is False:
            return _f(
                TLS_RESUMPTION,
                "warn",
                "Sessions resume only with tickets (" + "; ".join(parts) + "): SSLSESSION persistence "
                "on an ADC, which keys on the session id, cannot work.",
                ev,
                REMEDY_RESUMPTION,
            )
        return _f(TLS_RESUMPTION, "pass", "Sessions resume: " + "; ".join(parts) + ".", ev)
    return _f(
        TLS_RESUMPTION,
        "warn",
        "No session resumption (" + "; ".join(parts) + "): every reconnection costs a full handshake, "
        "and an ADC's SSLSESSION persistence has no session id to follow.",
        ev,
        REMEDY_RESUMPTION,
    )


def _oversized_evidence(o: OversizedAnswer) -> dict[str, Any]:
    return {
        "job_id": o.job_id,
        "version": o.version,
        "limited_by": o.limited_by,
        "limit_bytes": o.limit_bytes,
        "bytes_read": o.bytes_read,
        "message": o.message,
        "announced_bytes": o.announced_bytes,
    }


def _oversized_words(o: OversizedAnswer) -> str:
    if o.limited_by == "ssl":
        return (
            f"the TLS stack (OpenSSL) refused a {o.version} handshake as too large after {o.bytes_read} bytes"
        )
    what = f", inside a {o.message} message announcing {o.announced_bytes} bytes" if o.message else ""
    return (
        f"a {o.version} hello's answer passed our {o.limit_bytes}-byte cap: {o.bytes_read} bytes read{what}"
    )


def check_complete(
    obs: AuditObservation, unknown: list[str], counts: dict[JobStatus, int], cert_obtained: bool
) -> Finding:
    """Whether every planned connection got its answer: an incomplete audit must not read as healthy. An
    answer too large to read fails (the server's fault, and what it hid is unknown); errors and jobs the
    deadline left unstarted are "error" (the audit could not finish); both keep the verdict from healthy."""
    errors, not_scheduled = counts[JobStatus.ERROR], counts[JobStatus.NOT_SCHEDULED]
    planned = sum(counts.values())
    missing = [f"{v} (every attempt failed)" for v in unknown]
    if not cert_obtained:
        missing.append("the server certificate")
    ev: dict[str, Any] = {
        "jobs": planned,
        "error": errors,
        "not_scheduled": not_scheduled,
        "versions_unknown": unknown,
        "certificate_obtained": cert_obtained,
    }
    if obs.oversized:
        ev["answer_cap_bytes"] = obs.answer_cap_bytes
        ev["oversized"] = [_oversized_evidence(o) for o in obs.oversized[:20]]
        first = obs.oversized[0]
        more = len(obs.oversized) - 1
        also = f"; {more} more connection(s) stopped at a size limit" if more else ""
        lost = f" Not audited because of it: {', '.join(missing)}." if missing else ""
        return _f(
            TLS_AUDIT_COMPLETE,
            "fail",
            f"Incomplete audit: the server's handshake is too large to read ({_oversized_words(first)}"
            f"{also}).{lost}",
            ev,
            REMEDY_SIZE,
        )
    if errors or not_scheduled:
        reasons: dict[str, int] = {}
        for r in obs.results:
            if r.status != JobStatus.COMPLETED:
                key = r.reason.value if r.reason else r.status.value
                reasons[key] = reasons.get(key, 0) + 1
        ev["reasons"] = reasons
        parts = []
        if errors:
            parts.append(f"{errors} of {planned} connection(s) ended in error")
        if not_scheduled:
            parts.append(f"{not_scheduled} were not started before the deadline")
        why = ", ".join(f"{k} {n}" for k, n in reasons.items())
        lost = f"; unknown: {', '.join(missing)}" if missing else ""
        return _f(
            TLS_AUDIT_COMPLETE,
            "error",
            f"Incomplete audit: {' and '.join(parts)} ({why}{lost}); see errors. The findings cover only "
            "what the other connections showed.",
            ev,
        )
    return _f(TLS_AUDIT_COMPLETE, "pass", f"Every planned connection completed ({planned}).", ev)


# ------------------------------------------------------------------------------------------ judge


def _endpoint_error(obs: AuditObservation) -> tuple[str | None, bool]:
    """(error text, unreachable?) for an endpoint that never completed a TLS exchange."""
    if obs.connect_error is not None:
        return f"unreachable: {obs.connect_error}", True
    if obs.facts.tls_answered:
        return None, False
    errors = [r for r in obs.results if r.status == JobStatus.ERROR]
    for reason in (ErrorReason.NOT_TLS, ErrorReason.OVERSIZED, ErrorReason.MALFORMED):
        hit = next((r for r in errors if r.reason == reason), None)
        if hit is not None:
            return f"no TLS: {hit.detail}", False
    resets = [r for r in errors if r.reason in (ErrorReason.RESET, ErrorReason.CLOSED)]
    if resets:
        return f"no TLS: the server reset or closed every connection ({resets[0].detail})", False
    closed = [r for r in obs.results if isinstance(r.outcome, HelloOutcome) and r.outcome.kind == "closed"]
    if closed:
        return "no TLS: the server closed every connection without answering a ClientHello", False
    return f"no TLS answer within {obs.duration_s:.1f} s (the server accepts TCP but stays silent)", True


def _job_name(r: JobResult) -> str:
    j = r.job
    if isinstance(j, HelloJob):
        return f"hello:{j.purpose}:{VERSION_NAMES[j.version]}#{j.id}"
    return f"ssl:{j.purpose}#{j.id}"


def judge(obs: AuditObservation, *, now: datetime | None = None) -> TlsReport:
    now = now or datetime.now(UTC)
    facts = obs.facts
    error, _ = _endpoint_error(obs)
    versions = {k: bool(v) for k, v in facts.versions.items()}
    unknown = [k for k, v in facts.versions.items() if v is None]
    suites = {k: _names(v) for k, v in facts.suites.items()}
    expected = obs.sni or (obs.host if obs.host else None)
    # The chain as sent, completed (as Windows does) by an intermediate the revocation step fetched via AIA.
    described = (
        _described(
            facts.certificates,
            obs.anchors,
            obs.anchor_source,
            expected,
            facts.certificate_version,
            aia_intermediates(obs.revocation),
        )
        if facts.certificates
        else None
    )
    cert, via_aia = described if described is not None else (None, ())
    findings: list[Finding] = []
    if error is not None:
        findings.append(
            _f(
                TLS_REACHABLE,
                "fail",
                error.capitalize() + ".",
                {"address": obs.address, "port": obs.port},
                "Check that the service listens on this port and that firewalls pass TCP to it; "
                "SSTP and IP-HTTPS need TCP 443 end to end.",
            )
        )
        findings += [_skip(fid, "the endpoint did not complete a TLS exchange") for fid in ALL[1:]]
    else:
        rtt = f", TCP round trip {obs.round_trip_s * 1000:.1f} ms" if obs.round_trip_s is not None else ""
        accepted = [k for k, v in versions.items() if v]
        findings.append(
            _f(
                TLS_REACHABLE,
                "pass",
                f"TLS answers on {obs.address} port {obs.port} "
                f"({', '.join(accepted) or 'no version accepted'}{rtt}).",
                {"address": obs.address, "port": obs.port},
            )
        )
        findings += check_protocols(versions, unknown)
        findings.append(check_weak_suites(facts.suites))
        findings.append(check_null(facts.null_suites, versions, facts.suites, facts.server_preference))
        findings += check_client_auth(obs)
        findings += check_certificate(cert, bool(facts.certificates), now, via_aia)
        if cert is None:
            findings.append(_skip(TLS_CERT_REVOCATION, "no certificate was obtained"))
        else:
            findings.append(
                revocation_finding(
                    TLS_CERT_REVOCATION, obs.revocation, now, "tls", why_not="the revocation step did not run"
                )
            )
        why = ""
        if facts.client_auth == "required" and not obs.client_cert_given:
            why = "a client certificate is required: give --client-cert/--client-key to test resumption"
        findings.append(check_resumption(facts.resumption_session_id, facts.resumption_ticket, why))
    counts = {s: sum(1 for r in obs.results if r.status == s) for s in JobStatus}
    if error is None:
        findings.append(check_complete(obs, unknown, counts, cert is not None))
    # An incomplete audit is never healthy: a failing or "error" audit-complete finding is a root cause.
    failing = [
        f.id for f in findings if f.status == "fail" or (f.id == TLS_AUDIT_COMPLETE and f.status == "error")
    ]
    status: Literal["healthy", "problems"] = "problems" if failing else "healthy"
    if error is not None:
        summary = f"{obs.target}: {error}."
    elif failing == [TLS_AUDIT_COMPLETE]:
        audit_finding = next(f for f in findings if f.id == TLS_AUDIT_COMPLETE)
        summary = (
            audit_finding.detail
            + " Nothing else fails, but an incomplete audit cannot call the endpoint healthy."
            + (f" First fix: {audit_finding.remedy}" if audit_finding.remedy else "")
        )
    elif failing:
        first = next(f for f in findings if f.id == failing[0])
        summary = f"{len(failing)} problem(s): {', '.join(failing)}. {first.detail}" + (
            f" First fix: {first.remedy}" if first.remedy else ""
        )
    else:
        warns = [f.id for f in findings if f.status == "warn"]
        summary = "No problems found" + (f"; worth a look: {', '.join(warns)}." if warns else ".")
    return TlsReport(
        tool={"name": "vpndoctor", "version": __version__},
        target=obs.target,
        address=obs.address,
        port=obs.port,
        sni=obs.sni,
        started_at=obs.started_at,
        duration_s=round(obs.duration_s, 4),
        error=error,
        versions=versions,
        versions_unknown=unknown,
        suites=suites,
        server_preference=facts.server_preference,
        null_suites=_names(facts.null_suites),
        client_auth=facts.client_auth,
        client_auth_enforced_by=facts.client_auth_enforced_by,
        client_ca_names=facts.client_ca_names,
        client_certificate=_cert_result(facts.client_cert),
        foreign_certificate=_cert_result(facts.foreign_cert),
        certificate=cert,
        resumption=TlsResumption(session_id=facts.resumption_session_id, ticket=facts.resumption_ticket),
        verdict=Verdict(status=status, root_causes=failing, summary=summary),
        findings=findings,
        jobs=TlsJobs(
            completed=counts[JobStatus.COMPLETED],
            error=counts[JobStatus.ERROR],
            not_scheduled=counts[JobStatus.NOT_SCHEDULED],
            connections=obs.connections,
            max_concurrent=obs.max_concurrent,
        ),
        complete=counts[JobStatus.ERROR] == 0 and counts[JobStatus.NOT_SCHEDULED] == 0 and not obs.oversized,
        errors=[
            TlsJobError(
                job=_job_name(r),
                status="error" if r.status == JobStatus.ERROR else "not_scheduled",
                reason=r.reason.value if r.reason else None,
                detail=r.detail,
            )
            for r in obs.results
            if r.status != JobStatus.COMPLETED
        ][:200],
    )


def _cert_result(o: StackOutcome | None) -> TlsClientCertResult | None:
    if o is None:
        return None
    by = refused(o)
    return TlsClientCertResult(
        accepted=by is None,
        refused_by=by,
        detail=_refusal(o) if by else f"{o.version}" + (f", HTTP {o.http_status}" if o.http_status else ""),
    )


def exit_code(report: TlsReport) -> int:
    """0 nothing fails, 1 problems (including a server that does not speak TLS), 3 unreachable/silent."""
    if report.error is not None and (
        report.error.startswith("unreachable") or "stays silent" in report.error
    ):
        return 3
    return 1 if report.verdict.status == "problems" else 0
