package nmapdb

import (
	"runtime"
	"testing"

	"github.com/dlclark/regexp2"
)

func TestZZMem2(t *testing.T) {
	db, _ := installedDB(t)
	var a, b runtime.MemStats
	var keep []*regexp2.Regexp
	for _, raw := range []bool{true, false} {
		keep = keep[:0]
		runtime.GC()
		runtime.ReadMemStats(&a)
		for _, p := range db.Probes {
			for _, m := range p.Matches {
				expr := m.Pattern
				if !raw {
					expr, _ = translatePCRE(m.Pattern, m.IgnoreCase)
				}
				re, err := regexp2.Compile(expr, 0)
				if err == nil {
					keep = append(keep, re)
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&b)
		t.Logf("raw=%v: %d compiled, heap %d KB", raw, len(keep), (b.HeapAlloc-a.HeapAlloc)>>10)
	}
}
