package nmapdb

import (
	"bytes"
	"os"
	"testing"

	"github.com/portctl/portctl/registry"
)

// installedFile returns the installed nmap-service-probes, or skips.
func installedFile(b *testing.B) []byte {
	b.Helper()
	for _, name := range nmapFiles {
		if data, err := os.ReadFile(name); err == nil {
			return data
		}
	}
	b.Skip("nmap is not installed: no nmap-service-probes")
	return nil
}

func BenchmarkParse(b *testing.B) {
	data := installedFile(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileAll measures the one-time cost of compiling every
// pattern, which a scan pays lazily, spread over the probes it uses.
func BenchmarkCompileAll(b *testing.B) {
	data := installedFile(b)
	b.ReportAllocs()
	for b.Loop() {
		db, err := Parse(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range db.Probes {
			for _, m := range p.Matches {
				m.Err()
			}
		}
	}
}

// benchMatchAll matches resp through probe on a database whose patterns
// are already compiled.
func benchMatchAll(b *testing.B, probe string, resp []byte, wantOK bool) {
	data := installedFile(b)
	db, err := Parse(bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	p := db.ProbeFor(registry.TCP, probe)
	if p == nil {
		b.Skipf("no TCP probe %s", probe)
	}
	if _, ok := db.MatchAll(p, resp); ok != wantOK { // compiles what it tries
		b.Fatalf("MatchAll(%s, %q) = %v; want %v", probe, resp, ok, wantOK)
	}
	b.SetBytes(int64(len(resp)))
	b.ReportAllocs()
	for b.Loop() {
		db.MatchAll(p, resp)
	}
}

// BenchmarkMatchNULLMiss runs a response through every match line of the
// NULL probe (an HTTP response matches none of them): the worst case for
// a banner.
func BenchmarkMatchNULLMiss(b *testing.B) {
	resp := []byte("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\nContent-Length: 615\r\n\r\n<!DOCTYPE html>\n<html>\n")
	benchMatchAll(b, NullProbe, resp, false)
}

// BenchmarkMatchNULLSSH identifies an OpenSSH banner, found a third of the
// way into the NULL probe's lines.
func BenchmarkMatchNULLSSH(b *testing.B) {
	benchMatchAll(b, NullProbe, []byte("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"), true)
}

// BenchmarkMatchGetRequestNginx identifies nginx from GetRequest's lines.
func BenchmarkMatchGetRequestNginx(b *testing.B) {
	resp := []byte("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\nContent-Length: 615\r\n\r\n<!DOCTYPE html>\n<html>\n")
	benchMatchAll(b, "GetRequest", resp, true)
}
