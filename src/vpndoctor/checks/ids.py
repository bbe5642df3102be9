"""Stable finding ids of `vpndoctor diagnose`: defined once, used by the CLI, JSON, docs and tests."""

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
