"""The commented example `vpndoctor config init` writes (it must validate: tests load it)."""

from __future__ import annotations

EXAMPLE = """\
# vpndoctor config input: describe the deployment once, then generate each device's configuration:
#   vpndoctor config netscaler --input this.yaml   (also: f5 kemp haproxy nginx nftables keepalived windows)
#   vpndoctor config haproxy --input this.yaml --recipe iphttps-offload -o haproxy.cfg
# Unknown keys are errors. Addresses below are documentation ranges: replace them.

name: vpn.example.com            # the public name clients dial; the server certificate names it
vip: 203.0.113.10                # public IPv4 address of the VPN service on the load balancer
vip6: 2001:db8:113::10           # optional: public IPv6 address (then every server needs address6)
# public_vip: 198.51.100.200     # optional: an edge-firewall address DNATed to the VIP
# public_vip6: 2001:db8:ffff::200

servers:                         # the VPN / DirectAccess servers behind the load balancer
  - name: vpn1                   # letters, digits, _ . - (becomes part of object names on the ADC)
    address: 192.0.2.18
    address6: 2001:db8:11::2
  - name: vpn2
    address: 192.0.2.22
    address6: 2001:db8:12::2

protocols: [ikev2, sstp]         # any of: ikev2 (Always On VPN), sstp (Always On VPN), iphttps (DirectAccess)

certificates:
  server:
    name: vpn.example.com        # certificate object name on the ADC (NetScaler certkey, F5 file, KEMP)
    cert_file: /etc/vpndoctor/vpn.example.com.pem   # PEM files: haproxy/nginx terminate IP-HTTPS with them
    key_file: /etc/vpndoctor/vpn.example.com.key
  ca:
    name: ExampleRootCA          # the root CA that issued client (and server) certificates
    subject: CN=Example Root CA  # as Windows shows it: Set-VpnAuthProtocol -RootCertificateNameToAccept
    cert_file: /etc/vpndoctor/ca.pem

clients:
  windows7: false                # true while Windows 7 DirectAccess clients remain (TLS 1.0, non-NULL suite)

iphttps:                         # DirectAccess IP-HTTPS (when iphttps is among protocols)
  # vip: 203.0.113.11            # its own VIP (required when sstp is also published: both need TCP 443)
  preauth: true                  # the load balancer requires a client certificate from the CA

timeouts:
  ike_affinity_s: 3600           # UDP 500/4500 of one client stay on one server this long
  tls_session_s: 600             # SSL-session persistence (IP-HTTPS, SSTP)
  connect_s: 5
  idle_s: 3600

load_balancer:
  vendor: netscaler              # netscaler f5 kemp haproxy nginx nftables keepalived (informational)
  # table: vpndoctor_lb          # nftables table of the nftables load balancer
  # jhash_seed: 0x5eed           # fixed, so UDP 500 and 4500 of one client hash alike
  # fwmark: 500                  # keepalived/IPVS firewall mark for UDP 500+4500
  # nginx_stream_module: /usr/lib/nginx/modules/ngx_stream_module.so   # null when built in

edge:                            # the nftables edge firewall
  wan_interface: eth0            # interface facing the Internet
  # table: vpndoctor_edge
  # allow:                       # other services published through the edge
  #   - {proto: udp, port: 53, address: 192.0.2.50}

windows:
  ike_policy:                    # one policy for server and clients; spell values like either dialect
    encryption: AES128           # AES128 AES192 AES256 GCMAES128 GCMAES256 DES3 (CSP: AES_GCM_128 ...)
    integrity: SHA256            # SHA1 SHA256 SHA384 (CSP: SHA196 ...)
    dh_group: Group14            # Group2 Group14 Group24 ECP256 ECP384
    esp_cipher: AES128           # CipherTransformConstants
    esp_integrity: SHA256128     # AuthenticationTransformConstants (GCM: the same GCM value as esp_cipher)
    pfs_group: PFS2048           # None PFS2 PFS2048 PFS24 ECP256 ECP384 PFSMM
  server_fragmentation: true     # EnableServerFragmentation (Windows Server 1803/2019 and later)
  ike_established_for_initial_query: 50000   # IKEEXT limit behind a source-NATing load balancer (null: leave)
  # isatap:                      # DirectAccess manage-out firewall rules scoped to the ISATAP prefix
  #   addresses: [2001:db8:1:8000:0:5efe:10.0.0.5]
  #   public_ipv4: false
  #   rules: ["Remote Desktop - User Mode (TCP-In)"]
  #   new_rules: [tcp/3389]
"""
