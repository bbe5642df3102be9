#!/usr/bin/env bash
# `make demo`: bring up the lab with the classic error-809 fault (IP fragments dropped on the path, IKEv2
# fragmentation off on the server), let a Windows-like client fail, diagnose it with `vpndoctor diagnose`,
# then apply the fix (server fragmentation on) and show the same client connecting.
set -uo pipefail
cd "$(dirname "$0")/.."
V=.venv/bin/vpndoctor
P=${VPNDOCTOR_DEMO_PREFIX:-vddemo}
CA=/var/lib/vpndoctor/lab/$P/pki/ca.pem

cleanup() { "$V" lab down --prefix "$P" >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$1"; }
in_client() { "$V" lab exec --prefix "$P" -- "$@"; }
export COLUMNS=${COLUMNS:-120}

"$V" lab down --prefix "$P" >/dev/null 2>&1

step "Lab: scenario error-809-fragments"
"$V" lab up --prefix "$P" --scenario error-809-fragments || exit 1

step "A Windows-like client (strongSwan, EAP-MSCHAPv2) dials vpn.lab.test"
"$V" lab connect --prefix "$P" --timeout-s 12 | grep -E "sending packet|received packet|giving up|established"

step "vpndoctor diagnose vpn.lab.test (from the client's side of the network)"
in_client "$PWD/$V" diagnose vpn.lab.test --ca "$CA"

step "The same handshake, message by message: vpndoctor ike"
in_client "$PWD/$V" ike vpn.lab.test --ca "$CA" --timeout-s 6

step "Fix applied: server fragmentation on (scenario fragments-drop: fragments still dropped)"
"$V" lab down --prefix "$P" >/dev/null
"$V" lab up --prefix "$P" --scenario fragments-drop >/dev/null || exit 1
"$V" lab connect --prefix "$P" --timeout-s 12 | grep -E "fragment|established"
grep -h "splitting IKE message" /var/lib/vpndoctor/lab/"$P"/vpn*/charon.log | sed 's/^/  server: /'
in_client "$PWD/$V" diagnose vpn.lab.test --ca "$CA"
exit 0
