#!/usr/bin/env bash
# `make demo`: bring up the lab with the classic error-809 fault (IP fragments dropped on the path, IKEv2
# fragmentation off on the server), look at it from the client the way an engineer would today, then
# apply the fix (server fragmentation on) and show the same client connecting.
set -uo pipefail
cd "$(dirname "$0")/.."
V=.venv/bin/vpndoctor
P=${VPNDOCTOR_DEMO_PREFIX:-vddemo}
VIP=203.0.113.10

cleanup() { "$V" lab down --prefix "$P" >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$1"; }
in_client() { "$V" lab exec --prefix "$P" -- "$@"; }

"$V" lab down --prefix "$P" >/dev/null 2>&1

step "Lab: scenario error-809-fragments"
"$V" lab up --prefix "$P" --scenario error-809-fragments || exit 1

step "DNS: vpn.lab.test from the client"
in_client dig +short +time=2 +tries=1 vpn.lab.test

step "UDP 500: IKE_SA_INIT with ike-scan"
in_client ike-scan --ikev2 --sport=0 --retry=2 "$VIP" | sed -n 2p

step "UDP 4500: IKE_SA_INIT with NAT-T encapsulation (ike-scan --nat-t)"
in_client ike-scan --ikev2 --sport=0 --nat-t --retry=2 "$VIP" | sed -n 2p

step "TCP 443: TLS handshake (openssl s_client), the SSTP port"
in_client timeout 5 openssl s_client -connect "$VIP:443" -servername vpn.lab.test \
  -CAfile "/var/lib/vpndoctor/lab/$P/pki/ca.pem" </dev/null 2>/dev/null | grep -E "^(subject|issuer)=|Verify return"

step "Small ping passes, a 3000-byte (IP-fragmented) ping does not"
in_client ping -n -c 1 -W 1 -s 1000 "$VIP" | grep -E "packet loss"
in_client ping -n -c 1 -W 1 -s 3000 "$VIP" | grep -E "packet loss"

step "A Windows-like client (strongSwan, EAP-MSCHAPv2) dials the VPN"
"$V" lab connect --prefix "$P" --timeout-s 12 | grep -E "sending packet|received packet|retransmit|giving up|established|not established"
grep -h "sending packet: from .*\[4500\]" /var/lib/vpndoctor/lab/"$P"/vpn*/charon.log | head -1 | sed 's/^/  server: /'
echo
echo "Every port answers, yet the client times out: the IKE_AUTH response carries the server certificate,"
echo "is larger than the path MTU, and its IP fragments are dropped. Windows reports error 809."
echo "Fix: turn on IKEv2 fragmentation (RFC 7383) on the server - EnableServerFragmentation on Windows RRAS,"
echo "'fragmentation = yes' on strongSwan - or let fragments through the firewall."

step "Fix applied: same path, server fragmentation on (scenario fragments-drop)"
"$V" lab down --prefix "$P" >/dev/null
"$V" lab up --prefix "$P" --scenario fragments-drop >/dev/null || exit 1
"$V" lab connect --prefix "$P" --timeout-s 12 | grep -E "splitting|fragment|established"
grep -h "splitting IKE message" /var/lib/vpndoctor/lab/"$P"/vpn*/charon.log | sed 's/^/  server: /'
