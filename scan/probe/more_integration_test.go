package probe_test

import (
	"testing"

	"github.com/portctl/portctl/internal/servers"
	"github.com/portctl/portctl/scan/probe"
)

// TestIntegrationDetectMore identifies a light, representative part of
// the servers bench/service runs (all of them there), each from its
// Debian package on a port picked at run time: no port tells what runs.
// version says the server tells its version, which must be the
// package's.
func TestIntegrationDetectMore(t *testing.T) {
	tests := []struct {
		name         string
		start        func(testing.TB) *servers.Server
		svc, product string
		version      bool
	}{
		{"openldap", servers.LDAP, "ldap", "OpenLDAP", false},
		{"mosquitto", servers.MQTT, "mqtt", "Mosquitto", true},
		{"nats", servers.NATS, "nats", "NATS Server", true},
		{"beanstalkd", servers.Beanstalkd, "beanstalkd", "beanstalkd", true},
		{"ngircd", servers.IRC, "irc", "ngIRCd", true},
		{"git daemon", servers.GitDaemon, "git", "git daemon", false},
		{"lighttpd", servers.Lighttpd, "http", "lighttpd", true},
		{"tinyproxy", servers.Tinyproxy, "http-proxy", "tinyproxy", true},
		{"unbound", servers.Unbound, "domain", "Unbound", true},
		{"coturn", servers.STUN, "stun", "coturn", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := tt.start(t)
			s := detect(t, srv, probe.Config{})
			if s.Name != tt.svc || s.Product != tt.product {
				t.Errorf("%s: detected %q product %q; want %q product %q", srv, s.Name, s.Product, tt.svc, tt.product)
			}
			if tt.version && s.Version != srv.Upstream {
				t.Errorf("%s: version %q; want %q, from package %s %s", srv, s.Version, srv.Upstream, srv.Package, srv.Version)
			}
			if s.Evidence == "" || s.Probe == "" {
				t.Errorf("%s: evidence %q, probe %q", srv, s.Evidence, s.Probe)
			}
		})
	}
}
