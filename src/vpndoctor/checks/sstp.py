"""Judge SSTP and IP-HTTPS observations: pure functions from `probes.sstp` / `probes.iphttps` facts to
findings (ids in `checks.ids`), the `sstp.handshake` finding of `diagnose`, and the JSON reports of
`vpndoctor sstp --json` (schema/sstp.json) and `vpndoctor iphttps --json` (schema/iphttps.json).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from vpndoctor.checks import ids
from vpndoctor.checks.certificate import CertificateJudgement, facts_of_info, judge_certificate
from vpndoctor.checks.model import Finding, Status, finding
from vpndoctor.checks.revocation import REMEDY_AIA, Protocol, RevocationOutcome, revocation_outcome
from vpndoctor.observations.ike import CertificateInfo
from vpndoctor.observations.revocation import RevocationObservation
from vpndoctor.observations.sstp import IphttpsAttempt, IphttpsObservation, SstpObservation

ClientAuth = Literal["required", "optional", "none", "unknown"]

CERT_E_EXPIRED = 0x800B0101
CERT_E_UNTRUSTEDROOT = 0x800B0109
CERT_E_WRONG_USAGE = 0x800B0110  # no Server Authentication EKU
CERT_E_CN_NO_MATCH = 0x800B010F


REMEDY_TCP443 = (
    "Allow TCP 443 from clients to the VPN server through every firewall and load balancer on the path, "
    "and on the server:\n"
    "  New-NetFirewallRule -DisplayName 'SSTP (TCP 443)' -Direction Inbound -Protocol TCP -LocalPort 443 "
    "-Action Allow"
)
REMEDY_SSTP_HTTP = (
    "Whatever answers TCP 443 must pass SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ "
    "(Content-Length 18446744073709551615) untouched to the RRAS server: publish it as TCP/SSL bridge "
    "(NetScaler SSL_BRIDGE or SSL with the URL allowed, F5 without an HTTP profile, HAProxy/nginx in TCP/"
    "stream mode), and make sure RRAS has SSTP enabled and bound to the certificate:\n"
    "  Set-RemoteAccess -SslCertificate $cert ; Restart-Service RemoteAccess"
)
REMEDY_SSTP_CERT = (
    "Bind a certificate from a CA the clients trust, naming the VPN server in its SAN, with the Server "
    "Authentication EKU, valid now:\n"
    "  $cert = Get-ChildItem Cert:\\LocalMachine\\My | Where-Object Subject -Match '<vpn name>'\n"
    "  Set-RemoteAccess -SslCertificate $cert ; Restart-Service RemoteAccess"
)
REMEDY_PREAUTH = (
    "Enforce client-certificate preauthentication on the ADC in front of the DirectAccess server, against "
    "the CA that issues the DirectAccess client (computer) certificates:\n"
    "  NetScaler: set ssl vserver <vs> -clientAuth ENABLED -clientCert Mandatory ; "
    "bind ssl vserver <vs> -certkeyName <DirectAccess CA> -CA\n"
    "  HAProxy: bind :443 ssl crt server.pem ca-file directaccess-ca.pem verify required\n"
    "  nginx (stream): ssl_client_certificate directaccess-ca.pem; ssl_verify_client on;"
)
REMEDY_NULL = (
    "Offer the NULL suites for IP-HTTPS so Windows 8+ clients do not encrypt twice (IPsec inside TLS): "
    "on the ADC front end add TLS_RSA_WITH_NULL_SHA/NULL_SHA256 (OpenSSL: NULL-SHA:NULL-SHA256 with "
    "@SECLEVEL=0) ahead of the others; without an ADC the DirectAccess server offers them itself unless "
    "IP-HTTPS uses a certificate the clients must authenticate with (HTTPS with OTP) or encryption is forced."
)
REMEDY_IPHTTPS_CERT = (
    "Bind a certificate from a CA the DirectAccess clients trust (with a CRL they can reach), naming the "
    "IP-HTTPS host in its SAN, with the Server Authentication EKU, valid now - on the ADC front end, or on "
    "the DirectAccess server: Set-RemoteAccess -SslCertificate $cert"
)
REMEDY_IPHTTPS_HTTP = (
    "Publish /IPHTTPS to the DirectAccess server in TCP/SSL-bridge mode: an HTTP-mode proxy refuses the "
    "endless Content-Length (18446744073709551615) Windows sends (nginx's http module answers 400). Check "
    "on the server: netsh interface httpstunnel show interfaces ; Get-RemoteAccess | fl IPHttps*"
)


_f = finding  # the shared builder: title from checks.ids.TITLES


# ---- SSTP ---------------------------------------------------------------------------------------------


def check_sstp_handshake(obs: SstpObservation | None, *, asked: bool = True) -> Finding:
    """The one SSTP finding of `diagnose`."""
    fid = ids.SSTP_HANDSHAKE
    if not asked:
        return _f(fid, "skip", "SSTP not among --protocols")
    if obs is None:
        return _f(fid, "skip", "not probed")
    evidence = {
        "reached": obs.reached,
        "http_status": obs.http_status,
        "server_header": obs.server_header,
        "call_connect": obs.call_connect,
        "crypto_binding_hashes": obs.crypto_binding_hashes,
        "error": obs.error,
    }
    if obs.call_connect == "ack":
        hashes = "+".join(obs.crypto_binding_hashes) or "no"
        return _f(
            fid,
            "pass",
            f"HTTP {obs.http_status} to SSTP_DUPLEX_POST (Server: {obs.server_header or '-'}), then "
            f"CALL_CONNECT_ACK asking for a {hashes} crypto binding.",
            evidence,
        )
    if obs.call_connect == "nak":
        statuses = ", ".join(s.status for s in obs.nak_status) or "no status"
        return _f(
            fid,
            "fail",
            f"The server refused CALL_CONNECT_REQUEST (PPP) with CALL_CONNECT_NAK ({statuses}).",
            evidence,
            REMEDY_SSTP_HTTP,
        )
    if obs.error_stage in ("resolve", "connect", "handshake"):
        return _f(fid, "fail", f"No SSTP session: {obs.error}.", evidence, REMEDY_TCP443, (809,))
    return _f(fid, "fail", f"TLS works but SSTP does not: {obs.error}.", evidence, REMEDY_SSTP_HTTP, (809,))


def sstp_findings(obs: SstpObservation, *, now: datetime | None = None) -> list[Finding]:
    out = [_sstp_tls(obs), _sstp_http(obs), _sstp_call_connect(obs), _sstp_binding(obs)]
    out.append(_sstp_certificate(obs, now or datetime.now(UTC)))
    return out


def _sstp_tls(obs: SstpObservation) -> Finding:
    fid = ids.SSTP_TLS
    if obs.tls is not None:
        t = obs.tls
        return _f(
            fid,
            "pass",
            f"{t.version} with {t.cipher} (connect {t.connect_s * 1000:.0f} ms, "
            f"handshake {t.handshake_s * 1000:.0f} ms).",
            {"version": t.version, "cipher": t.cipher},
        )
    return _f(fid, "fail", f"{obs.error}.", {"error_stage": obs.error_stage}, REMEDY_TCP443, (809,))


def _sstp_http(obs: SstpObservation) -> Finding:
    fid = ids.SSTP_HTTP
    ev = {"http_status": obs.http_status, "server_header": obs.server_header}
    if obs.tls is None:
        return _f(fid, "skip", "no TLS session")
    if obs.http_status == 200:
        return _f(fid, "pass", f"HTTP/1.1 200 (Server: {obs.server_header or '-'}).", ev)
    detail = obs.error or "no HTTP answer"
    return _f(fid, "fail", f"{detail}.", {**ev, "error": obs.error}, REMEDY_SSTP_HTTP, (809,))


def _sstp_call_connect(obs: SstpObservation) -> Finding:
    fid = ids.SSTP_CALL_CONNECT
    if obs.http_status != 200:
        return _f(fid, "skip", "SSTP_DUPLEX_POST was not answered with 200")
    ev = {"call_connect": obs.call_connect, "teardown": obs.teardown, "ppp_frames": obs.ppp_frames_received}
    if obs.call_connect == "ack":
        return _f(fid, "pass", f"CALL_CONNECT_ACK; {obs.teardown or 'session ended'}.", ev)
    if obs.call_connect == "nak":
        statuses = ", ".join(s.status for s in obs.nak_status) or "no status"
        return _f(
            fid, "fail", f"CALL_CONNECT_NAK ({statuses}).", {**ev, "nak_status": statuses}, REMEDY_SSTP_HTTP
        )
    return _f(fid, "fail", f"{obs.error}.", {**ev, "error": obs.error}, REMEDY_SSTP_HTTP, (809,))


def _sstp_binding(obs: SstpObservation) -> Finding:
    fid = ids.SSTP_CRYPTO_BINDING
    if obs.call_connect != "ack":
        return _f(fid, "skip", "no CALL_CONNECT_ACK")
    ev = {
        "hash_bitmask": obs.crypto_binding_hash_bitmask,
        "hashes": obs.crypto_binding_hashes,
        "nonce_bytes": obs.nonce_bytes,
    }
    if obs.crypto_binding_hash_bitmask is None:
        return _f(fid, "fail", "CALL_CONNECT_ACK carries no Crypto Binding Request attribute.", ev)
    if "SHA256" in obs.crypto_binding_hashes:
        return _f(
            fid,
            "pass",
            f"Hash bitmask 0x{obs.crypto_binding_hash_bitmask:02x} "
            f"({'+'.join(obs.crypto_binding_hashes)}), {obs.nonce_bytes}-byte nonce.",
            ev,
        )
    if obs.crypto_binding_hashes == ["SHA1"]:
        return _f(fid, "warn", "The server offers only a SHA-1 crypto binding.", ev)
    return _f(
        fid,
        "fail",
        f"Hash bitmask 0x{obs.crypto_binding_hash_bitmask:02x} names no hash a client supports.",
        ev,
    )


def _sstp_certificate(obs: SstpObservation, now: datetime) -> Finding:
    fid = ids.SSTP_CERTIFICATE
    cert = obs.tls.certificate if obs.tls else None
    if cert is None:
        return _f(fid, "skip", "no certificate (no TLS session)")
    ev: dict[str, object] = {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "san_dns": cert.san_dns,
        "trusted": cert.trusted,
    }
    judged = judge_tls_certificate(cert, dialled_name(obs.sni, obs.target), now, obs.revocation)
    problems = problems_of(judged)
    not_after = datetime.fromisoformat(cert.not_after)
    rev = revocation_part(obs.revocation, now, "sstp")
    if rev is not None:
        ev["revocation"] = rev.evidence
    if problems:
        codes = {c for _, c in problems}
        detail = "The certificate " + "; ".join(p for p, _ in problems) + "."
        remedy = REMEDY_SSTP_CERT
        if rev is not None and rev.status in ("fail", "warn"):
            detail, remedy = f"{detail} {rev.detail}", f"{remedy}\n{rev.remedy}"
            codes |= set(rev.codes) if rev.status == "fail" else set()
        return _f(fid, "fail", detail, ev, remedy, sorted(codes))
    if judged.trust.reason == "chains-through-aia":  # trusted, as Windows builds the chain, with a warning
        ev["aia_intermediates"] = aia_evidence(judged)
        text = f"{cert.subject}: valid until {not_after:%Y-%m-%d}, {judged.trust.evidence}."
        status, text, remedy, rev_codes = with_aia(*with_revocation("warn", text, rev))
        return _f(fid, status, text, ev, remedy, rev_codes)
    trust = "chains to a trusted CA" if cert.trusted else "trust not checked (no --ca)"
    text = f"{cert.subject}: {trust}, valid until {not_after:%Y-%m-%d}."
    status, text, remedy, rev_codes = with_revocation("pass", text, rev)
    return _f(fid, status, text, ev, remedy, rev_codes)


def aia_evidence(judged: CertificateJudgement) -> list[dict[str, str | None]]:
    """The intermediates fetched through AIA that the trusted chain needed (subject, caIssuers URL)."""
    return [{"subject": a.subject, "url": a.url} for a in judged.facts.via_aia]


def with_aia(status: Status, text: str, remedy: str, codes: list[int]) -> tuple[Status, str, str, list[int]]:
    """A certificate finding whose chain was completed through AIA: never better than warn, with the
    remedy of sending the intermediate (once)."""
    if status == "pass":
        status = "warn"
    if REMEDY_AIA not in remedy:
        remedy = f"{remedy}\n{REMEDY_AIA}" if remedy else REMEDY_AIA
    return status, text, remedy, codes


def revocation_part(
    obs: RevocationObservation | None, now: datetime, protocol: Protocol
) -> RevocationOutcome | None:
    """The revocation part of a certificate finding (SSTP, IP-HTTPS); None when it was not checked."""
    if obs is None:
        return None
    outcome = revocation_outcome(obs, now, protocol)
    return None if outcome.chain_status == "not-checked" else outcome


def with_revocation(
    status: Status, text: str, rev: RevocationOutcome | None
) -> tuple[Status, str, str, list[int]]:
    """A passing certificate finding with its revocation part: revoked or unverifiable fails or warns as
    `checks.revocation` says; a certificate naming no CDP or OCSP responder at all is said so but keeps
    the status, since whether Windows clients then refuse it depends on a client setting
    (NoCertRevocationCheck)."""
    if rev is None:
        return status, text, "", []
    if rev.chain_status == "no-info":
        return status, f"{text} {rev.detail}", "", []
    if rev.status in ("fail", "warn"):
        return rev.status, f"{text} {rev.detail}", rev.remedy, list(rev.codes)
    return status, f"{text} {rev.detail}", "", []


def dialled_name(sni: str | None, host: str | None) -> str | None:
    """The name a Windows client compares the certificate with: the SNI name, else the address it dialled
    (an SNI is never sent for an address, so `sni` is None exactly then)."""
    return sni or host or None


def judge_tls_certificate(
    cert: CertificateInfo, name: str | None, now: datetime, revocation: RevocationObservation | None = None
) -> CertificateJudgement:
    """`checks.certificate`'s judgement of the TLS certificate for `name`; a chain the probe found untrusted
    as sent is completed by the intermediates `revocation` fetched through AIA caIssuers, as Windows does."""
    return judge_certificate(facts_of_info(cert, revocation), name, now)


def certificate_problems(
    cert: CertificateInfo, name: str | None, now: datetime, revocation: RevocationObservation | None = None
) -> list[tuple[str, int]]:
    """What a Windows client dialling `name` would refuse the TLS certificate for, with the error it shows:
    `checks.certificate`'s judgement, mapped (an expiry within 30 days is no refusal; without anchors the
    trust is not checked; a chain completed through AIA is trusted)."""
    return problems_of(judge_tls_certificate(cert, name, now, revocation))


def problems_of(judged: CertificateJudgement) -> list[tuple[str, int]]:
    """The refusals in a judgement (`certificate_problems`)."""
    problems: list[tuple[str, int]] = []
    if judged.trust.status == "bad":
        problems.append((judged.trust.evidence, CERT_E_UNTRUSTEDROOT))
    if judged.validity.status == "bad":
        problems.append((judged.validity.evidence, CERT_E_EXPIRED))
    if judged.name.status == "bad":
        problems.append((judged.name.evidence, CERT_E_CN_NO_MATCH))
    if judged.eku.status == "bad":
        problems.append((judged.eku.evidence, CERT_E_WRONG_USAGE))
    return problems


# ---- IP-HTTPS ----------------------------------------------------------------------------------------


def _attempt(obs: IphttpsObservation, label: str) -> IphttpsAttempt | None:
    return next((a for a in obs.attempts if a.label == label), None)


def client_auth(obs: IphttpsObservation) -> ClientAuth:
    """required: without a certificate the server refuses (TLS alert, hang-up, or an HTTP refusal where a
    certificate gets through); optional: asked, but 200 without one; none: never asked."""
    bare, with_cert = _attempt(obs, "no-client-cert"), _attempt(obs, "client-cert")
    if bare is None or bare.reached == "none":
        return "unknown"
    asked = bare.client_certificate_requested
    if bare.reached == "tcp":  # the handshake failed without a certificate
        if asked or (with_cert is not None and with_cert.reached in ("tls", "http")):
            return "required"
        return "unknown"
    if bare.closed_without_answer and (asked or asked is None):
        return "required"
    if bare.http_status is not None:
        if asked is False:
            return "none"
        if bare.http_status == 200:
            return "optional" if asked else "none"
        if (
            with_cert is not None
            and with_cert.http_status is not None
            and with_cert.http_status != bare.http_status
        ):
            return "required"
        if bare.http_status in (495, 496):
            return "required"
    return "none" if asked is False else "unknown"


def _tls_attempt(obs: IphttpsObservation) -> IphttpsAttempt | None:
    """The attempt whose TLS session tells the most: with the certificate when it got through."""
    with_cert, bare = _attempt(obs, "client-cert"), _attempt(obs, "no-client-cert")
    for a in (with_cert, bare):
        if a is not None and a.tls is not None:
            return a
    return None


def _http_attempt(obs: IphttpsObservation) -> IphttpsAttempt | None:
    with_cert = _attempt(obs, "client-cert")
    return with_cert if with_cert is not None else _attempt(obs, "no-client-cert")


def iphttps_findings(obs: IphttpsObservation, *, now: datetime | None = None) -> list[Finding]:
    auth = client_auth(obs)
    tls_a = _tls_attempt(obs)
    bare = _attempt(obs, "no-client-cert")
    out: list[Finding] = []
    # -- TLS
    fid = ids.IPHTTPS_TLS
    if obs.error:
        out.append(_f(fid, "fail", f"{obs.error}.", {}, REMEDY_TCP443))
    elif tls_a is not None and tls_a.tls is not None:
        t = tls_a.tls
        tls_ev: dict[str, object] = {"version": t.version, "cipher": t.cipher}
        moment = now or datetime.now(UTC)
        judged = (
            judge_tls_certificate(t.certificate, dialled_name(obs.sni, obs.host), moment, obs.revocation)
            if t.certificate
            else None
        )
        problems = problems_of(judged) if judged is not None else []
        rev = revocation_part(obs.revocation, moment, "iphttps") if t.certificate else None
        if rev is not None:
            tls_ev["revocation"] = rev.evidence
        if problems:
            detail = (
                f"{t.version} with {t.cipher}, but the certificate " + "; ".join(p for p, _ in problems) + "."
            )
            remedy, codes = REMEDY_IPHTTPS_CERT, {c for _, c in problems}
            if rev is not None and rev.status in ("fail", "warn"):
                detail, remedy = f"{detail} {rev.detail}", f"{remedy}\n{rev.remedy}"
                codes |= set(rev.codes) if rev.status == "fail" else set()
            out.append(
                _f(
                    fid,
                    "fail",
                    detail,
                    {**tls_ev, "subject": t.certificate.subject if t.certificate else None},
                    remedy,
                    sorted(codes),
                )
            )
        elif judged is not None and judged.trust.reason == "chains-through-aia":
            tls_ev["aia_intermediates"] = aia_evidence(judged)
            status, text, remedy, rev_codes = with_aia(
                *with_revocation(
                    "warn", f"{t.version} with {t.cipher}, certificate {judged.trust.evidence}.", rev
                )
            )
            out.append(_f(fid, status, text, tls_ev, remedy, rev_codes))
        else:
            trust = "" if t.certificate is None or t.certificate.trusted is None else ", certificate trusted"
            status, text, remedy, rev_codes = with_revocation(
                "pass", f"{t.version} with {t.cipher}{trust}.", rev
            )
            out.append(_f(fid, status, text, tls_ev, remedy, rev_codes))
    elif bare is not None and bare.reached == "tcp" and auth == "required":
        out.append(
            _f(
                fid,
                "pass",
                "TLS is refused without a client certificate, as preauthentication wants (give "
                "--client-cert to go further).",
                {"error": bare.error},
            )
        )
    else:
        err = bare.error if bare else "no attempt"
        out.append(_f(fid, "fail", f"{err}.", {"error": err}, REMEDY_TCP443))
    # -- HTTP
    fid = ids.IPHTTPS_HTTP
    h = _http_attempt(obs)
    if h is None or h.reached in ("none", "tcp") and not (h.label == "no-client-cert" and auth == "required"):
        out.append(_f(fid, "skip", "no TLS session"))
    elif h.http_status == 200:
        out.append(
            _f(
                fid,
                "pass",
                f"HTTP 200 (Server: {h.server_header or '-'}) "
                + (
                    "with the client certificate."
                    if h.label == "client-cert"
                    else "without a client certificate."
                ),
                {"http_status": 200, "server_header": h.server_header, "attempt": h.label},
            )
        )
    elif h.label == "no-client-cert" and auth == "required":
        out.append(
            _f(
                fid,
                "skip",
                "the server requires a client certificate: give --client-cert/--client-key to test POST",
            )
        )
    elif h.http_status is not None:
        hint = ""
        if h.http_status == 400 and (h.server_header or "").lower().startswith("nginx"):
            hint = " nginx's http module refuses Windows' Content-Length of 18446744073709551615 with 400."
        out.append(
            _f(
                fid,
                "fail",
                f"HTTP {h.http_status} {h.http_reason or ''}".rstrip()
                + f" (Server: {h.server_header or '-'})."
                + hint,
                {"http_status": h.http_status, "server_header": h.server_header, "attempt": h.label},
                REMEDY_IPHTTPS_HTTP,
            )
        )
    else:
        what = "with" if h.label == "client-cert" else "without"
        out.append(
            _f(
                fid,
                "fail",
                f"{h.error} ({what} a client certificate).",
                {"error": h.error, "attempt": h.label},
                REMEDY_IPHTTPS_HTTP,
            )
        )
    # -- client auth
    fid = ids.IPHTTPS_CLIENT_AUTH
    with_cert = _attempt(obs, "client-cert")
    ev: dict[str, object] = {"client_auth": auth}
    if auth == "required":
        if with_cert is not None and with_cert.http_status != 200:
            out.append(
                _f(
                    fid,
                    "fail",
                    "Preauthentication is enforced, but the given client certificate does not get "
                    f"through either ({with_cert.error or f'HTTP {with_cert.http_status}'}).",
                    ev,
                    REMEDY_PREAUTH,
                )
            )
        else:
            how = bare.error if bare and bare.error else f"HTTP {bare.http_status if bare else '-'}"
            out.append(_f(fid, "pass", f"Without a client certificate the server refuses: {how}.", ev))
    elif auth == "optional":
        out.append(
            _f(
                fid,
                "warn",
                "The server asks for a client certificate but answers 200 without one.",
                ev,
                REMEDY_PREAUTH,
            )
        )
    elif auth == "none":
        out.append(
            _f(
                fid,
                "warn",
                "No client certificate is requested: anyone can reach the IP-HTTPS tunnel.",
                ev,
                REMEDY_PREAUTH,
            )
        )
    else:
        out.append(_f(fid, "skip", "could not be judged (no TLS session, or an ambiguous refusal).", ev))
    # -- NULL encryption
    fid = ids.IPHTTPS_NULL_ENCRYPTION
    if tls_a is None or tls_a.tls is None:
        out.append(_f(fid, "skip", "no TLS session"))
    elif is_null(tls_a.tls.cipher):
        out.append(
            _f(
                fid,
                "pass",
                f"{tls_a.tls.cipher} negotiated: Windows 8+ clients avoid double encryption.",
                {"cipher": tls_a.tls.cipher},
            )
        )
    else:
        out.append(
            _f(
                fid,
                "warn",
                f"The server chose {tls_a.tls.cipher} over the NULL suites offered first: every IPsec "
                "packet is encrypted twice.",
                {"cipher": tls_a.tls.cipher},
                REMEDY_NULL,
            )
        )
    return out


def is_null(cipher: str | None) -> bool:
    return bool(cipher) and (
        "NULL" in (cipher or "").upper().split("-") or (cipher or "").upper().startswith("NULL")
    )


# ---- reports (the JSON contracts) ----------------------------------------------------------------------


class SstpReport(SstpObservation):
    """`vpndoctor sstp --json` (schema/sstp.json)."""

    findings: list[Finding]


class IphttpsReport(IphttpsObservation):
    """`vpndoctor iphttps --json` (schema/iphttps.json)."""

    http_status: int | None  # of the attempt with the client certificate when given, else without
    server_header: str | None
    tls_version: str | None
    negotiated_cipher: str | None
    null_encryption: bool  # a NULL suite was negotiated when offered first
    client_auth: ClientAuth
    findings: list[Finding]


def sstp_report(obs: SstpObservation, *, now: datetime | None = None) -> SstpReport:
    return SstpReport(**obs.model_dump(), findings=sstp_findings(obs, now=now))


def iphttps_report(obs: IphttpsObservation) -> IphttpsReport:
    h = _http_attempt(obs)
    t = _tls_attempt(obs)
    cipher = t.tls.cipher if t and t.tls else None
    return IphttpsReport(
        **obs.model_dump(),
        http_status=h.http_status if h else None,
        server_header=h.server_header if h else None,
        tls_version=t.tls.version if t and t.tls else None,
        negotiated_cipher=cipher,
        null_encryption=is_null(cipher),
        client_auth=client_auth(obs),
        findings=iphttps_findings(obs),
    )


def exit_code(findings: list[Finding], unreachable: bool) -> int:
    """As in diagnose: 0 nothing fails, 1 problems, 3 the endpoint could not be reached at all."""
    if unreachable:
        return 3
    return 1 if any(f.status == "fail" for f in findings) else 0
