package registry_test

import (
	"testing"

	"github.com/portctl/portctl/registry"
)

func BenchmarkPort(b *testing.B) {
	r := registry.Builtin()
	b.ReportAllocs()
	for b.Loop() {
		if len(r.Port(443, 0)) == 0 {
			b.Fatal("Port(443, 0) found nothing")
		}
	}
}

func BenchmarkName(b *testing.B) {
	r := registry.Builtin()
	b.ReportAllocs()
	for b.Loop() {
		if len(r.Name("https", 0)) == 0 {
			b.Fatal("Name(https, 0) found nothing")
		}
	}
}

func BenchmarkSearch(b *testing.B) {
	r := registry.Builtin()
	b.ReportAllocs()
	for b.Loop() {
		if len(r.Search("postgres", 10)) == 0 {
			b.Fatal("Search(postgres, 10) found nothing")
		}
	}
}

func BenchmarkUses(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if len(registry.Uses(5432, 0)) == 0 {
			b.Fatal("Uses(5432, 0) found nothing")
		}
	}
}
