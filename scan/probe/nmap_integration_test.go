package probe

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/servers"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan/probe/nmapdb"
)

// TestIntegrationNmapDBNamesOpenLDAP sends a real slapd, on a port none of
// nmap's probes lists, nmap's probes alone, as nmapProbes does after ours
// found nothing: its LDAPBindReq (rarity 6) must be sent and its match
// name OpenLDAP, as nmap -sV does.
func TestIntegrationNmapDBNamesOpenLDAP(t *testing.T) {
	const file = "/usr/share/nmap/nmap-service-probes"
	f, err := os.Open(file)
	if err != nil {
		t.Skipf("needs nmap (installed by test-deps.sh): %v", err)
	}
	db, err := nmapdb.Parse(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	srv := servers.LDAP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := &detector{cfg: Config{DB: db, Dialer: &net.Dialer{}, Now: time.Now}, t: Target{Addr: srv.Addr, Proto: registry.TCP}, ctx: ctx}
	// Ours first, as Detect sends them: nmap's still get their own turn.
	d.probes = len(tcpProbes)
	s := d.nmapProbes(nil)
	t.Logf("%s: %s %q %q by %s after %d probes", srv, s.Name, s.Product, s.Version, s.Probe, d.probes)
	if s.Name != "ldap" || s.Product != "OpenLDAP" || s.Probe != "nmap:LDAPBindReq" {
		t.Errorf("nmap's probes: %q %q by %q; want ldap OpenLDAP by nmap:LDAPBindReq", s.Name, s.Product, s.Probe)
	}
}
