"""Pure checks of certificate files for Always On VPN and DirectAccess (`vpndoctor cert`): every end-entity
certificate among the inputs is judged for its purpose (user, device or server) by the one certificate judge
(`checks.certificate.judge_purpose`) and the answer is mapped onto the `cert.lint.*` ids, each once per
certificate; one more check looks across the inputs (several Client Authentication certificates for one
subject). CA certificates among the inputs are chain material, not linted. `CertReport` is the contract of
`vpndoctor cert --json` (schema/cert.json).

Revocation is not judged yet (issue #17 leaves it for later), and no finding pretends otherwise. The hook:
a probe fetches the CRL/OCSP answers (I/O stays out of checks/), `lint` takes them as an argument, and one
more `_revocation` mapping appends `cert.lint.revocation` (added to `ids.CERT_LINT_ALL`) in
`_certificate_findings`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pydantic import BaseModel, ConfigDict

from vpndoctor import __version__
from vpndoctor.certs import CertificateFile, Chain, build_chain, eku_names, is_ca
from vpndoctor.checks import ids
from vpndoctor.checks.certificate import (
    CLIENT_AUTH,
    Aspect,
    CertificateFacts,
    Purpose,
    PurposeJudgement,
    facts_of,
    infer_purpose,
    judge_purpose,
)
from vpndoctor.checks.model import Finding, Status, Verdict, finding

__all__ = [
    "CaCertificate",
    "CertFileInfo",
    "CertReport",
    "LintedCertificate",
    "end_entities",
    "exit_code",
    "lint",
]

# ---------------------------------------------------------------------------------------- remedies

REMEDY_VALIDITY = (
    "Renew the certificate: autoenrollment renews user and device certificates before they expire (Group "
    "Policy: Certificate Services Client - Auto-Enrollment, 'Renew expired certificates'); a VPN server "
    "certificate is enrolled by hand (certreq -new / -submit / -accept) and bound again in RRAS."
)
REMEDY_CHAIN = (
    "Give every intermediate CA certificate (the chain the CA publishes, e.g. `certutil -ca.chain "
    "chain.p7b`) with the files and the root with --ca; on the clients and the VPN/NPS servers, put the "
    "intermediates in Intermediate Certification Authorities and the root in Trusted Root Certification "
    "Authorities."
)
REMEDY_EKU_CLIENT = (
    "Issue it from a template with the Client Authentication application policy: a copy of the User template "
    "for users (Microsoft's 'VPN User Authentication'), of Workstation Authentication for devices."
)
REMEDY_EKU_SERVER = (
    "Issue it from a copy of the RAS and IAS Server template with the Server Authentication and IP security "
    "IKE intermediate application policies (Microsoft's 'VPN Server Authentication' template)."
)
REMEDY_EKU_NONE = "Say what it is for with --for user|device|server, or issue it with the EKU of its purpose."
REMEDY_KEY_USAGE = (
    "Use a template whose key usage includes Digital signature, and Key encipherment for an RSA server key "
    "(KeyUsage = 0xA0 in a certreq .inf, as Microsoft's VPNGateway.inf has it)."
)
REMEDY_NAME_DEVICE = (
    "Issue the device certificate with the computer's FQDN: template Subject Name tab, 'Build from this "
    "Active Directory information', subject name format 'Fully distinguished name' or 'Common name' and "
    "'DNS name' in the alternate subject name."
)
REMEDY_NAME_SERVER = (
    'Put the name clients dial in the SAN and the CN (certreq .inf: Subject = "CN=vpn.example.com"; '
    '[Extensions] 2.5.29.17 = "{text}", _continue_ = "dns=vpn.example.com&").'
)
REMEDY_UPN = (
    "Build the subject from Active Directory with the 'User principal name (UPN)' in the alternate subject "
    "name (template Subject Name tab; the User template does it)."
)
REMEDY_KEY = (
    "Request RSA 2048 bits or more, or ECDSA P-256/P-384 (template Cryptography tab; KeyLength = 2048 in a "
    "certreq .inf)."
)
REMEDY_SIGNATURE = (
    "Reissue it from a CA that signs with SHA-256 (AD CS: `certutil -setreg ca\\csp\\CNGHashAlgorithm "
    "SHA256`, restart certsvc, reissue)."
)
REMEDY_DUPLICATE = (
    "Keep one: remove or revoke the others, or make the client choose: the certificate filter of the EAP "
    "configuration (CAHashList, EKU mapping) for a user tunnel, `Set-VpnConnection "
    "-MachineCertificateIssuerFilter` / `-MachineCertificateEKUFilter` for a device tunnel."
)

# Windows error codes a failing certificate leads to (README and `vpndoctor explain`): a server certificate
# the client refuses (13801, IKE authentication credentials are unacceptable), a device with no usable
# machine certificate (13806, IKE failed to find a valid machine certificate).
_CODES: dict[Purpose | None, tuple[int, ...]] = {"server": (13801,), "device": (13806,), "user": (), None: ()}

# ---------------------------------------------------------------------------------------- JSON model


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CertFileInfo(_Model):
    path: str
    format: Literal["pem", "der", "pkcs12", "pkcs7"]
    certificates: int
    private_key: bool  # a private key came with the certificates (never read further, never printed)


class CaCertificate(_Model):
    """A CA certificate (basicConstraints cA) among the inputs: used to build chains, not linted."""

    source: str
    subject: str
    issuer: str
    not_after: str


class LintedCertificate(_Model):
    source: str  # the file, with #N when it holds several certificates
    also_in: list[str]  # the same certificate (same SHA-256) found in other places, judged once
    subject: str  # RFC 4514
    issuer: str
    serial: str  # hexadecimal, as Windows shows it (without the spaces)
    sha256: str
    not_before: str  # ISO 8601, UTC
    not_after: str
    purpose: Literal["user", "device", "server"] | None  # the purpose it was judged for
    purpose_from: Literal["--for", "eku", "none"]  # --for, read from the EKUs/UPN, or none found
    san_dns: list[str]
    san_ip: list[str]
    upn: list[str]
    eku: list[str]  # serverAuth, clientAuth, ipsecIKEIntermediate, ... others dotted
    key_usage: list[str] | None  # None: no key usage extension
    key_type: str | None
    key_bits: int | None
    signature_algorithm: str | None
    chain: list[str]  # subjects from the certificate up, as far as the inputs and --ca reach
    chain_complete: bool | None  # reached a --ca anchor; None: no --ca given
    status: Literal["pass", "warn", "fail"]  # the worst of its findings
    findings: list[Finding]


class CertReport(_Model):
    tool: dict[str, str]
    checked_at: str
    purpose: Literal["user", "device", "server"] | None  # --for; None: each certificate's own
    name: str | None  # --name
    ca_files: list[str]
    files: list[CertFileInfo]
    certificates: list[LintedCertificate]
    ca_certificates: list[CaCertificate]
    verdict: Verdict


# ------------------------------------------------------------------------------------------ checks

_STATUS: dict[str, Status] = {"ok": "pass", "warn": "warn", "bad": "fail", "unknown": "skip"}


def _f(
    fid: str,
    aspect_status: str,
    detail: str,
    evidence: dict[str, Any],
    remedy: str = "",
    codes: tuple[int, ...] = (),
) -> Finding:
    status = _STATUS[aspect_status]
    problem = status in ("fail", "warn")
    return finding(
        fid, status, detail, evidence, remedy if problem else "", codes if status == "fail" else ()
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _the_certificate(aspect: Aspect) -> str:
    return f"The certificate {aspect.evidence}."


@dataclass(frozen=True)
class _Entry:
    source: str
    cert: x509.Certificate
    sha256: str
    also_in: list[str]


def _entries(files: Sequence[CertificateFile]) -> list[_Entry]:
    """Every certificate once (by SHA-256), in input order, named by its file (and position)."""
    seen: dict[str, _Entry] = {}
    for f in files:
        for i, cert in enumerate(f.certificates, 1):
            source = f"{f.path}#{i}" if len(f.certificates) > 1 else f.path
            digest = cert.fingerprint(hashes.SHA256()).hex()
            if digest in seen:
                seen[digest].also_in.append(source)
            else:
                seen[digest] = _Entry(source, cert, digest, [])
    return list(seen.values())


def _serial(cert: x509.Certificate) -> str:
    # cryptography warns on each read of a serial number RFC 5280 forbids (zero, negative); the loader has
    # accepted the certificate, and a warning must not break stderr's one line per problem.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f"{cert.serial_number:x}"


def end_entities(files: Sequence[CertificateFile]) -> list[x509.Certificate]:
    """The certificates `lint` judges: every one that is not a CA certificate."""
    return [e.cert for e in _entries(files) if not is_ca(e.cert)]


def _validity(j: PurposeJudgement, facts: CertificateFacts, base: dict[str, Any]) -> Finding:
    v = j.base.validity
    ev = {**base, "not_before": facts.not_before.isoformat(), "not_after": facts.not_after.isoformat()}
    detail = _sentence(v.evidence)
    if v.status == "bad":
        detail += " Windows refuses it (CERT_E_EXPIRED, 0x800B0101)."
    return _f(ids.CERT_LINT_VALIDITY, v.status, detail, ev, REMEDY_VALIDITY, _CODES[j.purpose])


def _chain(j: PurposeJudgement, chain: Chain) -> Finding:
    c = j.chain
    path = [x.subject.rfc4514_string() for x in chain.path]
    broken_at = chain.missing_issuer
    ev: dict[str, Any] = {"chain": path, "missing_issuer": broken_at, "unverified": list(chain.unverified)}
    shown = " -> ".join(path)
    by_name = (
        f" (matched by name only: the signature of {', '.join(chain.unverified)} uses an algorithm that is "
        "not verified any more, see cert.lint.signature)"
        if chain.unverified
        else ""
    )
    if c.status == "ok":
        return _f(ids.CERT_LINT_CHAIN, "ok", f"Chains to a --ca anchor: {shown}{by_name}.", ev)
    if c.reason == "missing-issuer":
        detail = (
            f"The certificate of the issuer {broken_at} is missing: the chain stops at {path[-1]}. "
            "Neither the files nor --ca hold it; a Windows peer without it in its stores cannot build "
            "the chain (CERT_E_CHAINING, 0x800B010A)."
        )
        return _f(ids.CERT_LINT_CHAIN, "bad", detail, ev, REMEDY_CHAIN, _CODES[j.purpose])
    if c.reason == "untrusted":
        detail = (
            f"The chain {shown} ends at {path[-1]}, which is not among the --ca anchors "
            "(CERT_E_UNTRUSTEDROOT, 0x800B0109)."
        )
        return _f(ids.CERT_LINT_CHAIN, "bad", detail, ev, REMEDY_CHAIN, _CODES[j.purpose])
    where = f" (among the inputs the issuer {broken_at} is missing)" if broken_at else f" (built: {shown})"
    return _f(ids.CERT_LINT_CHAIN, "unknown", f"Not checked: give the root CA with --ca{where}.", ev)


def _eku(j: PurposeJudgement, facts: CertificateFacts, base: dict[str, Any]) -> Finding:
    ev = {**base, "eku": list(facts.eku), "purpose": j.purpose}
    remedy = {"server": REMEDY_EKU_SERVER, None: REMEDY_EKU_NONE}.get(j.purpose, REMEDY_EKU_CLIENT)
    return _f(ids.CERT_LINT_EKU, j.eku.status, _the_certificate(j.eku), ev, remedy, _CODES[j.purpose])


def _key_usage(j: PurposeJudgement, facts: CertificateFacts) -> Finding:
    ev = {
        "key_usage": list(facts.key_usage) if facts.key_usage is not None else None,
        "key_type": facts.key_type,
    }
    return _f(
        ids.CERT_LINT_KEY_USAGE, j.key_usage.status, _the_certificate(j.key_usage), ev, REMEDY_KEY_USAGE
    )


def _name(j: PurposeJudgement, facts: CertificateFacts, name: str | None) -> Finding:
    a = j.name
    ev = {"expected": name, "cn": list(facts.common_names), "san_dns": list(facts.san_dns)}
    if j.purpose == "server":
        ev["san_ip"] = list(facts.san_ip)
    if a.reason == "no-target":
        what = "device FQDN" if j.purpose == "device" else "server name clients dial"
        return _f(ids.CERT_LINT_NAME, "unknown", f"No {what} to compare with (give --name).", ev)
    if a.status == "unknown":
        return _f(ids.CERT_LINT_NAME, "unknown", _sentence(a.evidence), ev)
    remedy = REMEDY_NAME_SERVER if j.purpose == "server" else REMEDY_NAME_DEVICE
    detail = f"{a.evidence}." if a.status == "ok" else _the_certificate(a)  # a host name keeps its case
    return _f(ids.CERT_LINT_NAME, a.status, detail, ev, remedy, _CODES[j.purpose])


def _upn(j: PurposeJudgement, facts: CertificateFacts) -> Finding:
    a = j.upn
    ev = {"upn": list(facts.upns)}
    if a.status == "unknown":
        return _f(ids.CERT_LINT_UPN, "unknown", _sentence(a.evidence), ev)
    detail = _the_certificate(a)
    if a.status != "ok":
        detail += " Windows EAP-TLS maps a user certificate to its account by the UPN in the SAN."
    return _f(ids.CERT_LINT_UPN, a.status, detail, ev, REMEDY_UPN)


def _key(j: PurposeJudgement, facts: CertificateFacts) -> Finding:
    ev = {"key_type": facts.key_type, "key_bits": facts.key_bits}
    return _f(ids.CERT_LINT_KEY, j.key.status, _the_certificate(j.key), ev, REMEDY_KEY, _CODES[j.purpose])


def _signature(j: PurposeJudgement, facts: CertificateFacts) -> Finding:
    s = j.base.signature
    detail = _the_certificate(s)
    if s.status == "bad":
        detail = detail[:-1] + ": collisions make such signatures forgeable, and Windows deprecated them."
    ev = {"signature_algorithm": facts.signature_algorithm}
    return _f(ids.CERT_LINT_SIGNATURE, s.status, detail, ev, REMEDY_SIGNATURE)


def _identities(facts: CertificateFacts) -> dict[str, str]:
    """What names the subject, compared without case: {key: as the certificate writes it}."""
    keys = {f"upn:{u.casefold()}": u for u in facts.upns}
    if facts.subject:
        keys[f"subject:{facts.subject.casefold()}"] = facts.subject
    return keys


def _certificate_findings(
    j: PurposeJudgement,
    facts: CertificateFacts,
    name: str | None,
    chain: Chain,
) -> list[Finding]:
    """The per-certificate ids in report order (ids.CERT_LINT_ALL, without the cross-input one)."""
    base = {"subject": facts.subject}
    return [
        _validity(j, facts, base),
        _chain(j, chain),
        _eku(j, facts, base),
        _key_usage(j, facts),
        _name(j, facts, name),
        _upn(j, facts),
        _key(j, facts),
        _signature(j, facts),
    ]


def _duplicates(linted: list[tuple[_Entry, CertificateFacts]]) -> list[Finding]:
    """cert.lint.duplicate-client-auth for each certificate: is another Client Authentication certificate
    of the same subject (DN or UPN) among the inputs? Windows then picks one of them by its own rules, or
    asks the user: an expired one, one from another CA, one of another template."""
    client = [(e, f) for e, f in linted if CLIENT_AUTH in f.eku]
    out = []
    for entry, facts in linted:
        fid = ids.CERT_LINT_DUPLICATE_CLIENT_AUTH
        if CLIENT_AUTH not in facts.eku:
            out.append(_f(fid, "unknown", "Not a Client Authentication certificate.", {}))
            continue
        mine = _identities(facts)
        others = [(e, f) for e, f in client if e is not entry and mine.keys() & _identities(f).keys()]
        if not others:
            out.append(
                _f(
                    fid,
                    "ok",
                    "No other Client Authentication certificate for this subject among the inputs.",
                    {},
                )
            )
            continue
        shared = sorted({mine[k] for _, f in others for k in mine.keys() & _identities(f).keys()})
        listed = "; ".join(
            f"{e.source} (serial {_serial(e.cert)}, valid until {f.not_after:%Y-%m-%d})" for e, f in others
        )
        detail = (
            f"Another Client Authentication certificate for {', '.join(shared)} is among the inputs: "
            f"{listed}. Windows may pick the wrong one (or ask the user to choose)."
        )
        ev = {"shared": shared, "others": [e.source for e, _ in others]}
        out.append(_f(fid, "warn", detail, ev, REMEDY_DUPLICATE))
    return out


def _worst(findings: list[Finding]) -> Literal["pass", "warn", "fail"]:
    statuses = {f.status for f in findings}
    return "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"


def _verdict(certificates: list[LintedCertificate]) -> Verdict:
    failing = {f.id for c in certificates for f in c.findings if f.status == "fail"}
    roots = [fid for fid in ids.CERT_LINT_ALL if fid in failing]
    n = len(certificates)
    warned = sum(1 for c in certificates if c.status == "warn")
    if not roots:
        tail = f"; {warned} with warnings" if warned else ""
        return Verdict(
            status="healthy", root_causes=[], summary=f"{n} certificate(s) checked: none fails{tail}."
        )
    bad = [c for c in certificates if c.status == "fail"]
    parts = [f"{c.source}: {', '.join(f.id for f in c.findings if f.status == 'fail')}" for c in bad]
    return Verdict(
        status="problems",
        root_causes=roots,
        summary=f"{len(bad)} of {n} certificate(s) fail: " + "; ".join(parts) + ".",
    )


def lint(
    files: Sequence[CertificateFile],
    anchors: Sequence[x509.Certificate],
    now: datetime,
    *,
    purpose: Purpose | None = None,
    name: str | None = None,
    ca_files: Sequence[str] = (),
) -> CertReport:
    """Judge every end-entity certificate of `files` at `now` for `purpose` (None: the purpose each one
    declares), its chain built from all the inputs up to `anchors` (the --ca certificates)."""
    entries = _entries(files)
    pool = [e.cert for e in entries]
    leaves = [e for e in entries if not is_ca(e.cert)]
    linted: list[tuple[_Entry, CertificateFacts]] = []
    rows: list[tuple[_Entry, CertificateFacts, PurposeJudgement, Chain]] = []
    for entry in leaves:
        others = [c for c in pool if c is not entry.cert]
        # The chain is built here rather than by facts_of: a link whose signature cryptography cannot
        # verify (SHA-1) is taken by name, so that cert.lint.signature, not a "missing" issuer, says so.
        chain = build_chain(entry.cert, others, list(anchors), by_name_when_unverifiable=True)
        facts = facts_of(entry.cert)
        if anchors:
            facts = replace(facts, trusted=chain.anchored, chain_break=chain.missing_issuer)
        chosen = purpose if purpose is not None else infer_purpose(facts)
        judged = judge_purpose(facts, chosen, name, now)
        linted.append((entry, facts))
        rows.append((entry, facts, judged, chain))
    duplicates = _duplicates(linted)
    certificates = []
    for (entry, facts, judged, chain), dup in zip(rows, duplicates, strict=True):
        path = [c.subject.rfc4514_string() for c in chain.path]
        found = [*_certificate_findings(judged, facts, name, chain), dup]
        cert = entry.cert
        certificates.append(
            LintedCertificate(
                source=entry.source,
                also_in=entry.also_in,
                subject=facts.subject,
                issuer=facts.issuer,
                serial=_serial(cert),
                sha256=entry.sha256,
                not_before=facts.not_before.isoformat(),
                not_after=facts.not_after.isoformat(),
                purpose=judged.purpose,
                purpose_from="--for" if purpose is not None else "eku" if judged.purpose else "none",
                san_dns=list(facts.san_dns),
                san_ip=list(facts.san_ip),
                upn=list(facts.upns),
                eku=eku_names(cert),
                key_usage=list(facts.key_usage) if facts.key_usage is not None else None,
                key_type=facts.key_type,
                key_bits=facts.key_bits,
                signature_algorithm=facts.signature_algorithm,
                chain=path,
                chain_complete=chain.anchored if anchors else None,
                status=_worst(found),
                findings=found,
            )
        )
    cas = [
        CaCertificate(
            source=e.source,
            subject=e.cert.subject.rfc4514_string(),
            issuer=e.cert.issuer.rfc4514_string(),
            not_after=e.cert.not_valid_after_utc.isoformat(),
        )
        for e in entries
        if is_ca(e.cert)
    ]
    return CertReport(
        tool={"name": "vpndoctor", "version": __version__},
        checked_at=now.isoformat(),
        purpose=purpose,
        name=name,
        ca_files=list(ca_files),
        files=[
            CertFileInfo(
                path=f.path, format=f.format, certificates=len(f.certificates), private_key=f.private_key
            )
            for f in files
        ],
        certificates=certificates,
        ca_certificates=cas,
        verdict=_verdict(certificates),
    )


def exit_code(report: CertReport) -> int:
    """0 when nothing fails (warnings allowed), 1 when a certificate has a problem."""
    return 1 if report.verdict.status == "problems" else 0
