#!/usr/bin/env bash
# Installs the system packages the test suite needs when they are missing:
# iproute2, iptables and procps (sysctl) for the LAN and NAT tests in network
# namespaces, python3-zeroconf and avahi-daemon for the mDNS coexistence test, Debian's postgresql (the relay's
# shared store; tests run their own server as the `postgres` user the package creates), Debian's chromium with
# Chinese and emoji fonts (UI tests; on Ubuntu `chromium` is a snap stub without /usr/bin/chromium: install a deb
# build there), and python3-prometheus-client (the official text-format parser, for the relay's /metrics test).
# Needs root and apt-get; otherwise it says what is missing
# and the tests that need it fail with that reason.
set -euo pipefail
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v iptables >/dev/null || need+=(iptables)
command -v sysctl >/dev/null || need+=(procps)
[ -x /usr/bin/chromium ] || need+=(chromium)
# the relay's /metrics test parses the text with Prometheus's own (Python) client parser
/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null || need+=(python3-prometheus-client)
# the UI tests' screenshots (kept as artifacts and in the user guide) show Chinese and emoji: without fonts, boxes
dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || need+=(fonts-wqy-zenhei)
dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || need+=(fonts-noto-color-emoji)
# the mDNS coexistence test: an independent browser (python3-zeroconf) and avahi-daemon next to Parley on 5353
/usr/bin/python3 -c 'import zeroconf' 2>/dev/null || need+=(python3-zeroconf)
command -v avahi-daemon >/dev/null || need+=(avahi-daemon)
# the relay's shared store: its tests start their own server (initdb into a temp dir, a Unix socket)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "parley: installing ${need[*]} (apt-get)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  # wait for a dpkg lock held by unattended upgrades on a fresh VM instead of failing at once
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # avahi-daemon must not start in the root namespace (it would multicast on the real LAN): the tests run it
  # only inside their namespaces, so service starts are refused while installing
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; guard=1; fi
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null || { [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then systemctl disable --now avahi-daemon.service avahi-daemon.socket >/dev/null 2>&1 || true; fi
else
  echo "parley: missing ${need[*]}: install them (as root: apt-get install ${need[*]}), or the tests that need them fail" >&2
fi
