#!/usr/bin/env bash
# Install what vpndoctor's lab, tests and demo need on Debian 12, as root. Idempotent: it installs only
# the Debian packages that are missing and reinstalls the virtualenv only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  strongswan-charon strongswan-swanctl strongswan-pki libcharon-extra-plugins libcharon-extauth-plugins
  libstrongswan-standard-plugins
  nftables iproute2 iputils-ping conntrack dnsmasq-base ppp ike-scan dnsutils openssl tshark tcpdump
  procps util-linux mount python3 python3-venv python3-pip
  # the capture fast path's C walk (src/vpndoctor/capture/_scan.c), built by pip
  gcc libc6-dev python3-dev
  # TLS/SSTP/IP-HTTPS lab (ADC stand-ins, oracles, SSTP client) and the capture report's browser test
  nginx-light libnginx-mod-stream haproxy keepalived sslscan testssl.sh sstp-client chromium fonts-dejavu-core
  # the lab's NPS stand-in (FreeRADIUS, reached by strongSwan's eap-radius) and its RADIUS-level clients
  # (radtest, radclient; eapol_test for PEAP and EAP-TLS)
  freeradius freeradius-utils eapoltest
  # vpndoctor exporter's tests: a real Prometheus scrapes it; promtool checks and unit-tests the shipped rules
  prometheus
  # hostapd's integrated RADIUS/EAP server: a second PEAP server, one that sends [MS-PEAP]'s crypto binding
  # (FreeRADIUS does not), for tests/eap/test_peap_hostapd.py; started by the test only, never as a service
  hostapd
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing Debian packages (${missing[*]}) and not root: run as root" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # The lab runs nginx, HAProxy, keepalived and FreeRADIUS in its own namespaces: keep the packages' init
  # scripts from starting system-wide copies while they install.
  guard=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
fi

# Debian's freeradius enables a system-wide service (UDP 1812/1813 on every address) that would start at the
# next boot: keep it disabled, and stopped should one run. The lab starts its own (src/vpndoctor/lab/radius.py).
if [ "$(id -u)" = 0 ] && [ -e /etc/init.d/freeradius ]; then
  if [ -d /run/systemd/system ]; then
    systemctl disable --now freeradius.service >/dev/null 2>&1 || true
  else
    update-rc.d freeradius disable >/dev/null 2>&1 || true  # the rc.d links and the systemd unit's link
    pid=$(cat /run/freeradius/freeradius.pid 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then /etc/init.d/freeradius stop >/dev/null || true; fi
  fi
fi

# Debian's prometheus package enables a system-wide server (and its data directory) at the next boot: the
# exporter's tests start their own on a free port. Keep the packaged one disabled and stopped.
if [ "$(id -u)" = 0 ] && [ -e /etc/init.d/prometheus ]; then
  if [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  else
    update-rc.d prometheus disable >/dev/null 2>&1 || true
    pid=$(cat /run/prometheus/prometheus.pid 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then /etc/init.d/prometheus stop >/dev/null || true; fi
  fi
fi

# Debian's hostapd enables its (access point) service too; the EAP tests start their own hostapd as a RADIUS
# server on a free port and stop it.
if [ "$(id -u)" = 0 ] && [ -e /lib/systemd/system/hostapd.service ]; then
  if [ -d /run/systemd/system ]; then
    systemctl disable --now hostapd.service >/dev/null 2>&1 || true
  else
    rm -f /etc/systemd/system/multi-user.target.wants/hostapd.service
    update-rc.d hostapd disable >/dev/null 2>&1 || true
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.vpndoctor-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ] \
  || [ src/vpndoctor/capture/_scan.c -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi
# An editable install leaves the sources uncompiled; compile them as a regular install would (Python reads
# the bytecode even where PYTHONDONTWRITEBYTECODE keeps it from writing any: start-up 0.45 s -> 0.3 s).
.venv/bin/python -m compileall -q src >/dev/null
