package sshtest

import (
	"strings"
	"testing"

	"github.com/portctl/portctl/forward/sshtun"
	"github.com/portctl/portctl/internal/testnet"
)

// Manager returns a Manager whose config names d as alias and whose
// known_hosts knows d's key; it is closed when the test ends.
func Manager(t testing.TB, d *testnet.SSHD, alias string) *sshtun.Manager {
	t.Helper()
	conf, known := d.ClientFiles(alias)
	cfg, err := sshtun.ParseConfig(strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	m := sshtun.NewManager(sshtun.Options{Config: cfg, KnownHostsFiles: []string{known}})
	t.Cleanup(func() { m.Close() })
	return m
}
