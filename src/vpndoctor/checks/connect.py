"""Judge a `vpndoctor connect` observation: the Windows error a client would have shown for the failure, and
the `auth.*` / `child_sa.*` findings, combined into the JSON report (schema/connect.json). Pure: no I/O
beyond the error catalogue this package ships.
"""

from __future__ import annotations

from vpndoctor.checks import ids
from vpndoctor.checks.cert import LintedCertificate
from vpndoctor.checks.model import Finding, finding
from vpndoctor.checks.tunnel import tunnel_findings
from vpndoctor.observations.connect import ConnectObservation, WindowsErrorInfo
from vpndoctor.windows.errorcodes import lookup

CERT_E_UNTRUSTEDROOT = 0x800B0109
# An EAP answer this late comes from a gateway that waited for its RADIUS server (NPS answers in
# milliseconds; strongSwan's eap-radius gives up after about 14 s, RRAS after its own timeout).
RADIUS_WAIT_S = 5.0

REMEDY_SERVER = (
    "Give the VPN server a certificate from a CA the clients trust (in the computer store), with the "
    "Server Authentication EKU and the name clients dial in its SAN; check with "
    "`vpndoctor ike NAME --ca CA.pem` that its AUTH verifies."
)
REMEDY_EAP = (
    "Check the account (password, lockout, expiry, 'Allow access' in its dial-in properties), the NPS "
    "network policy the connection matches (user group, EAP-MSCHAPv2 allowed as an EAP type) and that NPS "
    "reaches a domain controller; NPS logs event 6273 with the reason code for every refusal."
)
REMEDY_EAP_METHOD = (
    "Make the client's EAP configuration and the NPS network policy agree: allow the method the client "
    "speaks (EAP-MSCHAPv2, PEAP or EAP-TLS) in the policy's EAP types, or configure the client for the one "
    "the server proposes (`vpndoctor connect --eap tls|peap-mschapv2|peap-tls` tries each)."
)
REMEDY_EAP_SERVER_CERT = (
    "The client refused the RADIUS (NPS) server's certificate before sending any credential: install the "
    "root CA that issued it on the clients and list it in the EAP configuration's trusted root CAs "
    "(ProfileXML TrustedRootCA; --eap-ca here), renew it if it has expired, and put the name the clients "
    "expect (ServerNames; --eap-server-name) in it. NPS picks the certificate in the network policy's "
    "EAP properties."
)
REMEDY_CLIENT_CERT = (
    "The RADIUS (NPS) server refused the user certificate in the TLS handshake: enroll one valid now, with "
    "the Client Authentication EKU, from a CA NPS trusts (in its NTAuth/Trusted Root stores); NPS logs "
    "event 6273 with the reason (16, or 295/22 for certificate problems)."
)
REMEDY_RADIUS = (
    "The gateway went silent in the middle of EAP: it is waiting for its RADIUS server (NPS). Check that "
    "NPS runs, that UDP 1812 is open from the VPN server to it, and that the shared secret matches (NPS "
    "drops packets with a wrong one silently)."
)
REMEDY_MACHINE = (
    "Give the device a machine certificate from a CA the VPN server trusts (in its computer store, and for "
    "RRAS the root named in the device tunnel's IPsec policy), valid now, with the Client Authentication EKU "
    "and the device FQDN; `vpndoctor cert --for device` lints it."
)
REMEDY_CHILD = (
    "Make the server's IPsec (ESP) policy accept what Windows offers: AES-CBC-256/AES-CBC-128/3DES with "
    "SHA-1 or AES-GCM-256, without PFS by default (RRAS: Set-VpnServerConfiguration -CustomPolicy "
    "-CipherTransformConstants/-AuthenticationTransformConstants), or push a matching "
    "Set-VpnConnectionIPsecConfiguration to the clients; its traffic selectors must allow 0.0.0.0/0 and ::/0 "
    "or the split-tunnel routes the client asks for."
)
REMEDY_ADDRESS = (
    "Give the VPN server addresses to hand out: enlarge the static pool (RRAS: Routing and Remote Access > "
    "Properties > IPv4 > Static address pool) or repair the DHCP scope it leases from; configure DNS "
    "servers (and the suffix) for VPN clients."
)
REMEDY_ESP_WEAK = (
    "Remove DES, NULL and 3DES from the server's ESP policy and prefer AES-GCM-256 or AES-CBC-256 "
    "(Set-VpnServerConfiguration -CustomPolicy -CipherTransformConstants GCMAES256)."
)

# Error notifies and the Windows error a client shows for each (see `windows_error`).
_NOTIFY_CODES: dict[str, tuple[int, str]] = {
    "AUTHENTICATION_FAILED": (13801, "the server refused our authentication (AUTHENTICATION_FAILED)"),
    "NO_PROPOSAL_CHOSEN": (13868, "no proposal in common (NO_PROPOSAL_CHOSEN): a policy mismatch"),
    "INVALID_KE_PAYLOAD": (13868, "no DH group in common (INVALID_KE_PAYLOAD): a policy mismatch"),
    "TS_UNACCEPTABLE": (13868, "the traffic selectors match no policy of the server (TS_UNACCEPTABLE)"),
    "SINGLE_PAIR_REQUIRED": (
        13868,
        "the server accepts one address pair only (SINGLE_PAIR_REQUIRED): a policy mismatch",
    ),
    # Windows reports an address it could not be given as 720: the catalogue's entry lists exactly the
    # server-side causes of INTERNAL_ADDRESS_FAILURE (static pool exhausted, DHCP unavailable or out of
    # leases, an unassignable static address in the user's dial-in properties).
    "INTERNAL_ADDRESS_FAILURE": (
        720,
        "the server could not assign an address (INTERNAL_ADDRESS_FAILURE); Windows reports a failed "
        "address assignment as 720, whose causes are the server's pool or DHCP",
    ),
}


# What Windows checks when it picks a device tunnel's machine certificate from the computer store (valid now,
# Client Authentication EKU): a certificate failing one of these it never presents - 13806, no valid machine
# certificate - whatever the gateway would have said.
_WINDOWS_PICKS_BY = (ids.CERT_LINT_VALIDITY, ids.CERT_LINT_EKU)


def windows_error(
    obs: ConnectObservation,
    machine_lint: LintedCertificate | None = None,
    client_lint: LintedCertificate | None = None,
) -> WindowsErrorInfo | None:
    """The error a Windows client would show for the failure `obs` ended in; None when it connected or no
    Windows error is known to match. `machine_lint`: a device tunnel's certificate, linted for a device."""
    found = _device_code(obs, machine_lint) or _code(obs)
    if found is None:
        return None
    code, why = found
    if code == 853 and client_lint is not None:
        unusable = [f for f in client_lint.findings if f.id in _WINDOWS_PICKS_BY and f.status == "fail"]
        if unusable:
            why += (
                "; and Windows would not even offer this certificate ("
                + "; ".join(f.detail for f in unusable)
                + ")"
            )
    entry = lookup(code)
    name = entry.name if entry is not None else None
    if name is None and code == obs.mschapv2_error:
        name = obs.mschapv2_error_name  # 646-649 are RAS errors too, by the same numbers
    return WindowsErrorInfo(code=code, name=name, meaning=entry.meaning if entry else None, why=why)


def _device_code(obs: ConnectObservation, lint: LintedCertificate | None) -> tuple[int, str] | None:
    """A device tunnel the gateway refused with AUTHENTICATION_FAILED: 13801 (IKE authentication credentials
    are unacceptable, what Windows shows for that notify), or 13806 when the lint says Windows would not have
    picked this certificate at all."""
    if obs.auth != "machine-certificate" or obs.cause != "error-notify":
        return None
    if obs.error_notify != "AUTHENTICATION_FAILED" or obs.stage_reached != "IKE_AUTH":
        return None
    unusable = [
        f for f in (lint.findings if lint else []) if f.id in _WINDOWS_PICKS_BY and f.status == "fail"
    ]
    if unusable:
        why = "; ".join(f.detail for f in unusable)
        return 13806, (
            f"the gateway refused our machine certificate (AUTHENTICATION_FAILED at IKE_AUTH), and Windows "
            f"would not even present it ({why}): no valid machine certificate"
        )
    return 13801, (
        "the gateway refused our machine certificate (AUTHENTICATION_FAILED at IKE_AUTH): its issuer is not "
        "one the gateway trusts, or the gateway checks something else of it (revocation, its name)"
    )


def _code(obs: ConnectObservation) -> tuple[int, str] | None:
    cause = obs.cause
    if obs.connected or cause is None or cause == "throttled":
        return None
    if cause == "no-answer":
        return 809, f"the server stopped answering at {obs.stage_reached}: Windows gives up with 809"
    if cause == "error-notify" and obs.error_notify in _NOTIFY_CODES:
        code, why = _NOTIFY_CODES[obs.error_notify]
        return code, f"{why}, at {obs.stage_reached}"
    tls = _tls_code(obs)
    if tls is not None:
        return tls
    if cause == "eap-failure":
        if _radius_silent(obs):
            return 691, (
                f"EAP-Failure only after {obs.eap_wait_s:g} s: the gateway's RADIUS server did not answer, "
                "and Windows shows the refused logon as 691"
            )
        if obs.mschapv2_error is not None:
            return obs.mschapv2_error, f"the MS-CHAPv2 Failure request said E={obs.mschapv2_error}"
        return 691, "EAP-Failure without an MS-CHAPv2 error code: Windows shows a refused logon as 691"
    if cause == "eap-method":
        return 812, "the server wants an EAP method the client is not configured for"
    if cause in ("server-auth", "no-eap", "responder-auth"):
        return 13801, {
            "server-auth": "the server's IKE authentication (its certificate AUTH) is not acceptable",
            "no-eap": "the server wants an IKE authentication other than EAP from this client",
            "responder-auth": "the server's AUTH after EAP does not match the EAP key (MSK)",
        }[cause]
    if cause == "server-untrusted":
        return CERT_E_UNTRUSTEDROOT, "the server certificate does not chain to a trusted root"
    if cause == "protocol":
        return 13843, "an IKE message the exchange does not allow (invalid payload)"
    return None


def _tls_code(obs: ConnectObservation) -> tuple[int, str] | None:
    """EAP-TLS and PEAP failures that happened in the TLS handshake with the RADIUS server."""
    tls = obs.eap_tls
    if tls is None or obs.cause not in ("eap-failure", "eap", "no-answer"):
        return None
    if tls.server_verified is False:
        if tls.server_expired:
            return 858, f"we refused the RADIUS server's certificate, it has expired: {tls.server_reason}"
        return 864, f"we refused the RADIUS server's certificate: {tls.server_reason}"
    if tls.client_certificate_refused and tls.alert_received is None:
        return 853, (
            "the RADIUS server ended EAP-TLS right after our certificate, where its Finished was due: it "
            "refused the certificate"
        )
    if tls.alert_received is not None:
        return 853, (
            f"the RADIUS server ended the TLS handshake with alert {tls.alert_received}: it refused our "
            "certificate"
            if tls.client_certificate
            else f"the RADIUS server ended the TLS handshake with alert {tls.alert_received}"
        )
    return None


# ---- findings ------------------------------------------------------------------------------------------


def connect_findings(obs: ConnectObservation, error: WindowsErrorInfo | None) -> list[Finding]:
    codes = [error.code] if error is not None else []
    return [
        _server(obs, codes),
        _eap(obs, codes),
        _ike_sa(obs, codes),
        _child(obs, codes),
        _proposal(obs),
        _config(obs),
    ]


def _skip(fid: str, why: str) -> Finding:
    return finding(fid, "skip", why)


def _reached(obs: ConnectObservation, stage: str) -> bool:
    order = ("IKE_SA_INIT", "IKE_AUTH", "EAP", "CHILD_SA")
    return order.index(obs.stage_reached) >= order.index(stage)


def _server(obs: ConnectObservation, codes: list[int]) -> Finding:
    fid = ids.AUTH_SERVER
    cert = obs.certificate
    evidence: dict[str, object] = {
        "idr": obs.idr,
        "auth_method": obs.server_auth_method,
        "auth_verified": obs.server_auth_verified,
        "certificate": cert.subject if cert else None,
        "issuer": cert.issuer if cert else None,
    }
    if obs.cause in ("server-auth", "server-untrusted"):
        return finding(fid, "fail", obs.failure or "", evidence, REMEDY_SERVER, codes)
    if not _reached(obs, "IKE_AUTH") or obs.server_auth_method is None:
        return _skip(fid, "the server never answered the first IKE_AUTH" + _why(obs))
    detail = f"{obs.idr or 'the server'} signed its AUTH ({obs.server_auth_method})"
    if cert is not None:
        detail += f" with {cert.subject}, issued by {cert.issuer}, a CA we trust"
    return finding(fid, "pass", detail, evidence)


def _eap(obs: ConnectObservation, codes: list[int]) -> Finding:
    fid = ids.AUTH_EAP
    evidence: dict[str, object] = {
        "user": obs.user,
        "eap_requests": obs.eap_requests,
        "eap_nak": obs.eap_nak,
        "mschapv2_error": obs.mschapv2_error,
        "server_message": obs.eap_server_message,
        "eap_wait_s": obs.eap_wait_s,
    }
    if obs.auth == "machine-certificate":
        return _skip(fid, "a device tunnel authenticates with its machine certificate: no EAP")
    tls = obs.eap_tls
    if tls is not None:
        evidence["eap_tls"] = tls.model_dump()
    if obs.auth_result == "success":
        detail = f"{_method_text(obs)} for {obs.user} succeeded; " + _proof_text(obs)
        return finding(fid, "pass", detail, evidence)
    if tls is not None and obs.stage_reached == "EAP" and _tls_code(obs) is not None:
        remedy = REMEDY_EAP_SERVER_CERT if tls.server_verified is False else REMEDY_CLIENT_CERT
        return finding(fid, "fail", obs.failure or "", evidence, remedy, codes)
    if obs.cause == "no-eap":
        return finding(fid, "fail", obs.failure or "", evidence, REMEDY_EAP_METHOD, codes)
    if obs.stage_reached != "EAP":
        return _skip(fid, "EAP never started" + _why(obs))
    if obs.cause == "eap-method":
        return finding(fid, "fail", obs.failure or "", evidence, REMEDY_EAP_METHOD, codes)
    if obs.cause == "no-answer":
        detail = f"{obs.failure}: the gateway went silent in the middle of EAP (its RADIUS server is silent?)"
        return finding(fid, "fail", detail, evidence, REMEDY_RADIUS, codes)
    if obs.cause == "eap-failure" and _radius_silent(obs):
        detail = (
            f"{obs.failure}, after {obs.eap_wait_s:g} s: the gateway waited for its RADIUS server, which did "
            "not answer, then gave up"
        )
        return finding(fid, "fail", detail, evidence, REMEDY_RADIUS, codes)
    if obs.cause in ("eap-failure", "eap"):
        return finding(fid, "fail", obs.failure or "", evidence, REMEDY_EAP, codes)
    return _skip(fid, "EAP ended in the exchange that closes it" + _why(obs))


def _ike_sa(obs: ConnectObservation, codes: list[int]) -> Finding:
    fid = ids.AUTH_IKE_SA
    evidence: dict[str, object] = {
        "ike_sa_established": obs.ike_sa_established,
        "responder_auth_verified": obs.responder_auth_verified,
        "proposal": obs.proposal.text if obs.proposal else None,
    }
    if obs.ike_sa_established and obs.responder_auth_verified:
        detail = (
            "the gateway accepted our certificate AUTH and its own verified: the IKE SA is up"
            if obs.auth == "machine-certificate"
            else "both AUTH payloads after EAP check out with the MSK: the IKE SA is up"
        )
        if obs.proposal is not None:
            detail += f" ({obs.proposal.text})"
        return finding(fid, "pass", detail, evidence)
    if obs.auth == "machine-certificate":
        evidence["machine_auth_method"] = obs.machine_auth_method
        if obs.ike_sa_established:
            detail = (
                f"the gateway accepted our machine certificate ({obs.identity}, AUTH "
                f"{obs.machine_auth_method}) and its AUTH checks out: the IKE SA is up"
            )
            return finding(fid, "pass", detail, evidence)
        if obs.cause == "error-notify" and obs.stage_reached == "IKE_AUTH":
            return finding(fid, "fail", obs.failure or "", evidence, REMEDY_MACHINE, codes)
        return _skip(fid, "the IKE SA was never established" + _why(obs))
    if obs.auth_result != "success":
        return _skip(fid, "EAP did not succeed" + _why(obs))
    return finding(fid, "fail", obs.failure or "", evidence, REMEDY_EAP, codes)


def _child(obs: ConnectObservation, codes: list[int]) -> Finding:
    fid = ids.CHILD_SA_ESTABLISHED
    evidence: dict[str, object] = {
        "offered": obs.esp_proposals_offered,
        "error_notify": obs.error_notify,
    }
    if obs.connected and obs.child_sa is not None:
        c = obs.child_sa
        evidence.update(esp_proposal=c.esp_proposal, ts_i=c.ts_i, ts_r=c.ts_r, spi_i=c.spi_i, spi_r=c.spi_r)
        detail = f"ESP {c.esp_proposal}, {', '.join(c.ts_i)} === {', '.join(c.ts_r)}"
        return finding(fid, "pass", detail, evidence)
    if obs.stage_reached != "CHILD_SA":
        return _skip(fid, "the IKE SA was never established" + _why(obs))
    remedy = REMEDY_ADDRESS if obs.error_notify == "INTERNAL_ADDRESS_FAILURE" else REMEDY_CHILD
    return finding(fid, "fail", obs.failure or "no CHILD_SA", evidence, remedy, codes)


_WEAK = {"DES": "fail", "NULL": "fail", "3DES": "warn"}


def _proposal(obs: ConnectObservation) -> Finding:
    fid = ids.CHILD_SA_PROPOSAL
    c = obs.child_sa
    if c is None:
        return _skip(fid, "no CHILD_SA")
    evidence = {"esp_proposal": c.esp_proposal, "encryption": c.encryption, "integrity": c.integrity}
    status = _WEAK.get(c.encryption)
    if status == "fail":
        detail = f"the server chose {c.encryption} encryption for ESP: no confidentiality to speak of"
        return finding(fid, "fail", detail, evidence, REMEDY_ESP_WEAK)
    if status == "warn":
        detail = "the server chose 3DES for ESP (64-bit blocks: Sweet32); Windows offers AES first"
        return finding(fid, "warn", detail, evidence, REMEDY_ESP_WEAK)
    return finding(fid, "pass", f"ESP {c.esp_proposal}", evidence)


def _config(obs: ConnectObservation) -> Finding:
    fid = ids.CHILD_SA_CONFIG
    cfg = obs.config
    if cfg is None:
        if obs.connected:
            detail = "the server sent no configuration payload: the client gets no address from it"
            return finding(fid, "fail", detail, {}, REMEDY_ADDRESS, [720])
        return _skip(fid, "no configuration payload" + _why(obs))
    evidence = cfg.model_dump()
    addresses = cfg.ipv4 + cfg.ipv6
    if not addresses:
        if obs.error_notify == "INTERNAL_ADDRESS_FAILURE" or obs.connected:
            return finding(fid, "fail", "the server handed out no address", evidence, REMEDY_ADDRESS, [720])
        return _skip(fid, "no address in the configuration payload" + _why(obs))
    detail = "address " + ", ".join(addresses)
    if not cfg.dns:
        return finding(
            fid,
            "warn",
            detail + "; no DNS servers: internal names will not resolve",
            evidence,
            REMEDY_ADDRESS,
        )
    detail += f"; DNS {', '.join(cfg.dns)}"
    if cfg.dns_suffix:
        detail += f"; suffix {', '.join(cfg.dns_suffix)}"
    return finding(fid, "pass", detail, evidence)


def _method_text(obs: ConnectObservation) -> str:
    return {
        "eap-tls": "EAP-TLS",
        "peap-mschapv2": "PEAP (EAP-MSCHAPv2 inside)",
        "peap-tls": "PEAP (EAP-TLS inside)",
    }.get(obs.auth, f"EAP-{obs.eap_method or 'MSCHAPV2'}")


def _proof_text(obs: ConnectObservation) -> str:
    tls = obs.eap_tls
    if tls is None:
        return "the server proved it knows the password too (MS-CHAPv2 authenticator response)"
    text = f"the RADIUS server's certificate ({tls.server_certificate}) chains to a CA we trust"
    if tls.tls_version:
        text += f" ({tls.tls_version}, {tls.cipher})"
    if tls.crypto_binding == "verified":
        text += "; the PEAP crypto binding verified"
    elif tls.crypto_binding == "not-requested":
        text += "; the server asked for no PEAP crypto binding"
    return text


def _radius_silent(obs: ConnectObservation) -> bool:
    return obs.mschapv2_error is None and obs.eap_wait_s is not None and obs.eap_wait_s >= RADIUS_WAIT_S


def _why(obs: ConnectObservation) -> str:
    return f" ({obs.stage_reached}: {obs.failure})" if obs.failure else ""


# ---- the report (the JSON contract) --------------------------------------------------------------------


class ConnectReport(ConnectObservation):
    """`vpndoctor connect --json` (schema/connect.json): the observation, its Windows error, the findings."""

    findings: list[Finding]
    # A device tunnel's certificate, linted as `vpndoctor cert --for device` does before it is used.
    machine_certificate_lint: LintedCertificate | None = None
    # EAP-TLS / PEAP-TLS: the user certificate, linted as `vpndoctor cert --for user` does before it is used
    # (Windows' certificate selection skips one that is not valid now or lacks the Client Authentication EKU).
    client_certificate_lint: LintedCertificate | None = None


def connect_report(
    obs: ConnectObservation,
    machine_lint: LintedCertificate | None = None,
    client_lint: LintedCertificate | None = None,
) -> ConnectReport:
    error = windows_error(obs, machine_lint, client_lint)
    data = obs.model_dump()
    data["windows_error"] = error.model_dump() if error is not None else None
    return ConnectReport(
        **data,
        findings=connect_findings(obs, error) + tunnel_findings(obs.tunnel),
        machine_certificate_lint=machine_lint,
        client_certificate_lint=client_lint,
    )
