// Package packaging holds no code: its directory has what installs
// portctl as people do — packaging/build (the .deb and the .rpm, made by
// nfpm), the systemd units, the container image's Dockerfile and
// packaging/mangen (the manual pages) — and this package's test builds it
// all and checks it as an installed system would (TestIntegrationPackaging).
package packaging
