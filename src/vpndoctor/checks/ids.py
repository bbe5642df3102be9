"""Stable finding ids and their titles (diagnose, sstp, iphttps, tls, capture): defined once, used by the
checks, the CLI, JSON, docs and tests. `checks.model.finding()` builds a finding from an id and this table."""

DNS_RESOLUTION = "dns.resolution"
TCP443_REACHABLE = "tcp443.reachable"
SSTP_HANDSHAKE = "sstp.handshake"
IKE_UDP500_REACHABLE = "ike.udp500.reachable"
IKE_UDP4500_REACHABLE = "ike.udp4500.reachable"
IKE_FRAGMENTATION_SUPPORTED = "ike.fragmentation.supported"
PATH_IP_FRAGMENTS = "path.ip-fragments"
LB_PORT_AFFINITY = "lb.port-affinity"
CERT_NAME = "cert.name"
CERT_EKU = "cert.eku"
CERT_VALIDITY = "cert.validity"
CERT_TRUST = "cert.trust"
CERT_REVOCATION = "cert.revocation"
IKE_PROPOSALS_STRENGTH = "ike.proposals.strength"
IKE_PROPOSALS_CLIENT_MATCH = "ike.proposals.client-match"

# Report order, and the order in which failing ids explain an error 809 (most likely cause first):
# nothing else matters when the name does not resolve; a blocked port hides everything behind it; then
# the path, the load balancer, the certificate, the crypto policy.
ALL = (
    DNS_RESOLUTION,
    IKE_UDP500_REACHABLE,
    IKE_UDP4500_REACHABLE,
    TCP443_REACHABLE,
    SSTP_HANDSHAKE,
    PATH_IP_FRAGMENTS,
    IKE_FRAGMENTATION_SUPPORTED,
    LB_PORT_AFFINITY,
    CERT_TRUST,
    CERT_VALIDITY,
    CERT_NAME,
    CERT_EKU,
    CERT_REVOCATION,
    IKE_PROPOSALS_CLIENT_MATCH,
    IKE_PROPOSALS_STRENGTH,
)

# IP-HTTPS ([MS-IPHTTPS]): in `vpndoctor iphttps`, and appended to a diagnose report with --protocols iphttps.
IPHTTPS_TLS = "iphttps.tls"
IPHTTPS_NULL_ENCRYPTION = "iphttps.null-encryption"
IPHTTPS_CLIENT_AUTH = "iphttps.client-auth"
IPHTTPS_HTTP = "iphttps.http"
IPHTTPS_ALL = (IPHTTPS_TLS, IPHTTPS_HTTP, IPHTTPS_CLIENT_AUTH, IPHTTPS_NULL_ENCRYPTION)

# `vpndoctor sstp`: the handshake step by step, then the certificate it presented.
SSTP_TLS = "sstp.tls"
SSTP_HTTP = "sstp.http"
SSTP_CALL_CONNECT = "sstp.call-connect"
SSTP_CRYPTO_BINDING = "sstp.crypto-binding"
SSTP_CERTIFICATE = "sstp.certificate"
SSTP_ALL = (SSTP_TLS, SSTP_HTTP, SSTP_CALL_CONNECT, SSTP_CRYPTO_BINDING, SSTP_CERTIFICATE)

# `vpndoctor tls`
TLS_REACHABLE = "tls.reachable"
TLS_PROTOCOL_SSLV3 = "tls.protocol.sslv3"
TLS_PROTOCOL_TLS10 = "tls.protocol.tls10"
TLS_PROTOCOL_TLS11 = "tls.protocol.tls11"
TLS_PROTOCOL_TLS12 = "tls.protocol.tls12"
TLS_PROTOCOL_TLS13 = "tls.protocol.tls13"
TLS_SUITES_WEAK = "tls.suites.weak"
TLS_NULL_SUITES = "tls.null-suites"
TLS_CLIENT_AUTH = "tls.client-auth"
TLS_CLIENT_AUTH_FOREIGN = "tls.client-auth.foreign-cert"
TLS_CLIENT_AUTH_CERT = "tls.client-auth.client-cert"
TLS_CERT_TRUST = "tls.certificate.trust"
TLS_CERT_VALIDITY = "tls.certificate.validity"
TLS_CERT_NAME = "tls.certificate.name"
TLS_CERT_EKU = "tls.certificate.eku"
TLS_CERT_KEY = "tls.certificate.key"
TLS_CERT_SIGNATURE = "tls.certificate.signature"
TLS_CERT_REVOCATION = "tls.certificate.revocation"
TLS_RESUMPTION = "tls.resumption"
TLS_AUDIT_COMPLETE = "tls.audit.complete"


# Report order; failing ids explain the verdict in this order too.
TLS_ALL = (
    TLS_REACHABLE,
    TLS_PROTOCOL_SSLV3,
    TLS_PROTOCOL_TLS10,
    TLS_PROTOCOL_TLS11,
    TLS_PROTOCOL_TLS12,
    TLS_PROTOCOL_TLS13,
    TLS_SUITES_WEAK,
    TLS_NULL_SUITES,
    TLS_CLIENT_AUTH,
    TLS_CLIENT_AUTH_FOREIGN,
    TLS_CLIENT_AUTH_CERT,
    TLS_CERT_TRUST,
    TLS_CERT_VALIDITY,
    TLS_CERT_NAME,
    TLS_CERT_EKU,
    TLS_CERT_KEY,
    TLS_CERT_SIGNATURE,
    TLS_CERT_REVOCATION,
    TLS_RESUMPTION,
    TLS_AUDIT_COMPLETE,
)

# `vpndoctor capture`: what a packet capture shows (checks/capture.py), in report order. A finding judged a
# problem carries a title of its own ("IKE requests never answered"); the table below has the one it has
# otherwise.
CAPTURE_IKE_NO_RESPONSE = "capture.ike.no-response"
CAPTURE_IKE_FRAGMENTED_LOST = "capture.ike.fragmented-lost"
CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED = "capture.ike.fragmentation-not-negotiated"
CAPTURE_NATT_NO_4500_ANSWER = "capture.natt.no-4500-answer"
CAPTURE_IKE_ERROR_NOTIFY = "capture.ike.error-notify"
CAPTURE_ESP_ONE_WAY = "capture.esp.one-way"
CAPTURE_ALL = (
    CAPTURE_IKE_NO_RESPONSE,
    CAPTURE_IKE_FRAGMENTED_LOST,
    CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED,
    CAPTURE_NATT_NO_4500_ANSWER,
    CAPTURE_IKE_ERROR_NOTIFY,
    CAPTURE_ESP_ONE_WAY,
)


_DIAGNOSE_TITLES = {
    DNS_RESOLUTION: "DNS resolves the VPN name",
    TCP443_REACHABLE: "TCP 443 (SSTP) accepts a TLS handshake",
    IKE_UDP500_REACHABLE: "IKE_SA_INIT is answered on UDP 500",
    IKE_UDP4500_REACHABLE: "IKE is answered on UDP 4500 (NAT-T)",
    IKE_FRAGMENTATION_SUPPORTED: "The server supports IKEv2 fragmentation (RFC 7383)",
    PATH_IP_FRAGMENTS: "IP fragments survive the path in both directions",
    LB_PORT_AFFINITY: "UDP 500 and UDP 4500 of one client reach the same server",
    CERT_NAME: "The server certificate names the VPN server",
    CERT_EKU: "The server certificate has the Server Authentication EKU",
    CERT_VALIDITY: "The server certificate is within its validity period",
    CERT_TRUST: "The server certificate chains to a trusted CA",
    CERT_REVOCATION: "The server certificate is not revoked, and clients can check that",
    IKE_PROPOSALS_STRENGTH: "The server accepts only strong IKE proposals",
    IKE_PROPOSALS_CLIENT_MATCH: "The server accepts the client profile's CryptographySuite",
}

_SSTP_TITLES = {
    SSTP_HANDSHAKE: "An SSTP client gets through TLS, SSTP_DUPLEX_POST and Call Connect",
    SSTP_TLS: "TCP 443 accepts a TLS handshake",
    SSTP_HTTP: "SSTP_DUPLEX_POST is answered with HTTP 200",
    SSTP_CALL_CONNECT: "Call Connect Request (PPP) is acknowledged",
    SSTP_CRYPTO_BINDING: "The server asks for a SHA-256 crypto binding",
    SSTP_CERTIFICATE: "The TLS certificate is one Windows SSTP clients accept",
    IPHTTPS_TLS: "The IP-HTTPS endpoint accepts a Windows-like TLS handshake",
    IPHTTPS_HTTP: "POST /IPHTTPS is answered with HTTP 200",
    IPHTTPS_CLIENT_AUTH: "Client-certificate preauthentication is enforced",
    IPHTTPS_NULL_ENCRYPTION: "A NULL cipher suite is negotiated when offered first",
}

_TLS_TITLES = {
    TLS_REACHABLE: "TLS handshake possible",
    TLS_PROTOCOL_SSLV3: "SSLv3 disabled",
    TLS_PROTOCOL_TLS10: "TLS 1.0",
    TLS_PROTOCOL_TLS11: "TLS 1.1",
    TLS_PROTOCOL_TLS12: "TLS 1.2 enabled",
    TLS_PROTOCOL_TLS13: "TLS 1.3",
    TLS_SUITES_WEAK: "no weak cipher suites",
    TLS_NULL_SUITES: "NULL cipher suites (IP-HTTPS)",
    TLS_CLIENT_AUTH: "client certificate (preauthentication)",
    TLS_CLIENT_AUTH_FOREIGN: "unknown client certificates refused",
    TLS_CLIENT_AUTH_CERT: "--client-cert accepted",
    TLS_CERT_TRUST: "certificate trusted",
    TLS_CERT_VALIDITY: "certificate dates",
    TLS_CERT_NAME: "certificate name",
    TLS_CERT_EKU: "Server Authentication EKU",
    TLS_CERT_KEY: "certificate key",
    TLS_CERT_SIGNATURE: "certificate signature",
    TLS_CERT_REVOCATION: "certificate revocation (CRL/OCSP)",
    TLS_RESUMPTION: "session resumption",
    TLS_AUDIT_COMPLETE: "audit complete",
}

_CAPTURE_TITLES = {
    CAPTURE_IKE_NO_RESPONSE: "IKE requests answered",
    CAPTURE_IKE_FRAGMENTED_LOST: "IP-fragmented IKE messages",
    CAPTURE_IKE_FRAGMENTATION_NOT_NEGOTIATED: "IKEv2 fragmentation negotiated",
    CAPTURE_NATT_NO_4500_ANSWER: "UDP 4500 answered",
    CAPTURE_IKE_ERROR_NOTIFY: "IKE error notifies",
    CAPTURE_ESP_ONE_WAY: "ESP in both directions",
}

TITLES: dict[str, str] = {**_DIAGNOSE_TITLES, **_SSTP_TITLES, **_TLS_TITLES, **_CAPTURE_TITLES}

# `vpndoctor connect`: an EAP user all the way to the CHILD_SA (checks/connect.py), in report order.
AUTH_SERVER = "auth.server"
AUTH_EAP = "auth.eap"
AUTH_IKE_SA = "auth.ike-sa"
CHILD_SA_ESTABLISHED = "child_sa.established"
CHILD_SA_PROPOSAL = "child_sa.proposal"
CHILD_SA_CONFIG = "child_sa.config"
CONNECT_ALL = (
    AUTH_SERVER,
    AUTH_EAP,
    AUTH_IKE_SA,
    CHILD_SA_ESTABLISHED,
    CHILD_SA_PROPOSAL,
    CHILD_SA_CONFIG,
)
_CONNECT_TITLES = {
    AUTH_SERVER: "The server proves its identity with a trusted certificate before EAP",
    AUTH_EAP: "The user authenticates with EAP-MSCHAPv2",
    AUTH_IKE_SA: "The IKE SA is established (AUTH keyed with the EAP MSK, both ways)",
    CHILD_SA_ESTABLISHED: "The CHILD_SA (the tunnel) is established",
    CHILD_SA_PROPOSAL: "The CHILD_SA uses a strong ESP proposal",
    CHILD_SA_CONFIG: "The server hands out an address and DNS servers",
}
TITLES.update(_CONNECT_TITLES)

# Through the tunnel (`connect --ping/--resolve/--tcp/--mtu/--rekey`, `diagnose` with credentials):
# checks/tunnel.py, in report order; each only when its probe ran.
TUNNEL_REACHABILITY = "tunnel.reachability"
TUNNEL_DNS = "tunnel.dns"
TUNNEL_MTU = "tunnel.mtu"
TUNNEL_REKEY = "tunnel.rekey"
TUNNEL_ALL = (TUNNEL_REACHABILITY, TUNNEL_DNS, TUNNEL_MTU, TUNNEL_REKEY)
_TUNNEL_TITLES = {
    TUNNEL_REACHABILITY: "Inside hosts answer through the tunnel",
    TUNNEL_DNS: "The assigned DNS server answers through the tunnel",
    TUNNEL_MTU: "Full-size packets cross the tunnel (or the gateway says how large they may be)",
    TUNNEL_REKEY: "The tunnel survives a rekey of the CHILD_SA and the IKE SA",
}
TITLES.update(_TUNNEL_TITLES)

# `vpndoctor cert`: each certificate file linted for its Always On VPN / DirectAccess purpose
# (checks/cert.py), every id once per certificate, in this order (failing ids explain the verdict in it too).
# Not `cert.name`/`cert.validity`/...: those are diagnose's, about the gateway certificate it was shown.
CERT_LINT_VALIDITY = "cert.lint.validity"
CERT_LINT_CHAIN = "cert.lint.chain"
CERT_LINT_EKU = "cert.lint.eku"
CERT_LINT_KEY_USAGE = "cert.lint.key-usage"
CERT_LINT_NAME = "cert.lint.name"
CERT_LINT_UPN = "cert.lint.upn"
CERT_LINT_KEY = "cert.lint.key"
CERT_LINT_SIGNATURE = "cert.lint.signature"
CERT_LINT_DUPLICATE_CLIENT_AUTH = "cert.lint.duplicate-client-auth"
CERT_LINT_ALL = (
    CERT_LINT_VALIDITY,
    CERT_LINT_CHAIN,
    CERT_LINT_EKU,
    CERT_LINT_KEY_USAGE,
    CERT_LINT_NAME,
    CERT_LINT_UPN,
    CERT_LINT_KEY,
    CERT_LINT_SIGNATURE,
    CERT_LINT_DUPLICATE_CLIENT_AUTH,
)
_CERT_LINT_TITLES = {
    CERT_LINT_VALIDITY: "The certificate is within its validity period",
    CERT_LINT_CHAIN: "The chain reaches a --ca anchor with no issuer missing",
    CERT_LINT_EKU: "The EKUs fit the purpose (Client or Server Authentication)",
    CERT_LINT_KEY_USAGE: "The key usage allows signing (and key encipherment for an RSA server key)",
    CERT_LINT_NAME: "The certificate names the device FQDN or the server name",
    CERT_LINT_UPN: "A user certificate carries the user's UPN",
    CERT_LINT_KEY: "The key is RSA of 2048 bits or more, or ECDSA on a NIST curve",
    CERT_LINT_SIGNATURE: "The certificate is signed with SHA-2, not SHA-1 or MD5",
    CERT_LINT_DUPLICATE_CLIENT_AUTH: "One Client Authentication certificate per subject among the inputs",
}
TITLES.update(_CERT_LINT_TITLES)
