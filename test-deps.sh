#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine, as root; test.sh
# runs it first. Each step checks first, so a second run installs nothing.
# Without root it installs nothing and names what is missing (those tests
# then skip with that reason).
#
#   bash test-deps.sh                 the test suite's packages (below)
#   bash test-deps.sh PACKAGE...      only these: what the bench scripts use
#
#   gcc, libc6-dev         the race detector
#   mawk                   Debian's awk, which the bench scripts are checked against
#   iproute2, nftables     network namespaces and filtered ports in tests
#   util-linux             nsenter, unshare, setpriv
#   iptables               iptables-nft and iptables-legacy(-save): the firewall
#                          reader's tests of xt matches and legacy tables
#   nmap, libxml2-utils    scan -oX checked against nmap's DTD and output;
#                          nmap's service probes
#   dnsmasq-base, snmpd    UDP engine and detection against real DNS/SNMP
#   nginx openssh-server exim4-daemon-light vsftpd dovecot-imapd
#   dovecot-pop3d redis-server mariadb-server postgresql chrony memcached
#   busybox-static         real servers for service detection and audit
#                          (busybox-static: Debian's busybox has no telnetd)
#   slapd mosquitto nats-server beanstalkd ngircd git lighttpd tinyproxy
#   unbound coturn         a light part of bench/service's servers, for
#                          detection's integration tests (bench/service/run
#                          installs the rest)
#   chromium, prometheus   serve's browser test and a real Prometheus
#   docker.io              a real Docker daemon, started by the tests inside
#                          a network namespace of their own
#   podman, conmon, runc,  Podman's Docker-compatible API service, likewise
#   netavark, aardvark-dns,
#   catatonit
#   knockd, fwknop-client  the knock clients guard's knocking and SPA are tested with
#   masscan, hping3        raw-packet scanners guard must detect (run only inside
#                          the tests' own namespaces)
#   miniupnpd-nftables, miniupnpc, natpmpc  a real UPnP IGD / NAT-PMP / PCP router
#                          in the tests' own namespaces (the miniupnpd binary alone,
#                          no service), and the reference clients upnpc and natpmpc
#   npm (when missing)     fetches the SARIF 2.1.0 schema (audit's test)
#   lintian, rpm, man-db,  packaging's test: lintian on the .deb, the .rpm installed
#   bash-completion, zsh,  into a scratch root, man -l on every page, the bash, zsh
#   fish, systemd,         and fish completions loaded, systemd-analyze verify/security
#   libcap2-bin            on the units, setcap for the capability tests as an
#                          unprivileged user
#
# The packages' own services must not start on their standard ports: while
# installing, a policy-rc.d that denies every start is put in place if there
# is none, and removed after.
set -uo pipefail
cd "$(dirname "$0")"

pkgs=(gcc libc6-dev mawk iproute2 nftables util-linux nmap libxml2-utils dnsmasq-base snmpd
  nginx openssh-server exim4-daemon-light vsftpd dovecot-imapd dovecot-pop3d
  redis-server mariadb-server postgresql chrony memcached busybox-static
  slapd mosquitto nats-server beanstalkd ngircd git lighttpd tinyproxy unbound coturn
  chromium prometheus docker.io podman conmon runc netavark aardvark-dns catatonit ufw firewalld iptables
  knockd fwknop-client masscan hping3 miniupnpd-nftables miniupnpc natpmpc
  lintian rpm man-db bash-completion zsh fish systemd libcap2-bin)
# forward/sshtun's tests: ssh-keygen and ssh-agent (openssh-client), curl as
# the SOCKS5 client; the server is openssh-server above.
pkgs+=(openssh-client curl)
only_named=
if [ $# -gt 0 ]; then
  pkgs=("$@")
  only_named=1
fi
missing=()
for pkg in "${pkgs[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || missing+=("$pkg")
done
# npm only when there is none: a Node.js installed otherwise brings its own,
# and Debian's npm package conflicts with it.
[ -n "$only_named" ] || command -v npm >/dev/null || missing+=(npm)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "test-deps: not root on Debian, so not installing: ${missing[*]}; what needs them will skip"
  else
    echo "test-deps: installing ${missing[*]}"
    made_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\n# test-deps.sh: no service starts while packages install\nexit 101\n' >/usr/sbin/policy-rc.d
      chmod 755 /usr/sbin/policy-rc.d
      made_policy=1
    fi
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
      >/tmp/portctl-test-deps.log 2>&1 \
      || { tail -20 /tmp/portctl-test-deps.log; echo "test-deps: could not install ${missing[*]} (log: /tmp/portctl-test-deps.log)"; }
    if [ -n "$made_policy" ]; then
      rm -f /usr/sbin/policy-rc.d
    fi
    # firewalld's package enables its service: on a machine that boots with
    # systemd it would firewall the host from the next boot on. The tests
    # start it only inside their own namespaces.
    case " ${missing[*]} " in *" firewalld "*)
      if command -v deb-systemd-helper >/dev/null; then deb-systemd-helper disable firewalld.service >/dev/null 2>&1 || true; fi ;;
    esac
  fi
fi

[ -z "$only_named" ] || exit 0

# audit's TestSARIFSchema validates its SARIF output against the official
# SARIF 2.1.0 schema, which Microsoft publishes in its @microsoft/jest-sarif
# npm package. It is fetched here, not kept in the repository.
sarif_schema=/var/cache/portctl-test/sarif-2.1.0-rtm.5.json
if [ ! -s "$sarif_schema" ] && [ "$(id -u)" -eq 0 ] && command -v npm >/dev/null; then
  tmp=$(mktemp -d)
  if (cd "$tmp" && npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 >/dev/null 2>&1 &&
      tar xzf microsoft-jest-sarif-1.0.0-beta.0.tgz package/lib/schemas/sarif-2.1.0-rtm.5.json); then
    mkdir -p "$(dirname "$sarif_schema")"
    cp "$tmp/package/lib/schemas/sarif-2.1.0-rtm.5.json" "$sarif_schema"
  else
    echo "test-deps: could not fetch the SARIF 2.1.0 schema; TestSARIFSchema will skip"
  fi
  rm -rf "$tmp"
fi
exit 0
