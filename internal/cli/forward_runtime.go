package cli

import (
	"os"
	"runtime"
	"runtime/debug"

	"github.com/portctl/portctl/forward"
)

// tunnelGCPercent is the collector's setting while a rule goes through
// SSH, for the connections x/crypto/ssh carries (where the server or the
// config wants a cipher sshwire does not speak; sshwire allocates
// nothing a packet). x/crypto copies every packet it receives into a
// fresh 32 KiB buffer, about 30,000 a gigabyte, and the heap of a
// forwarder is small (the heap goal stays at its 4 MiB floor since the
// registry's table left the scanned globals), so at the default the
// collector runs hundreds of times a second.
// bench/ssh, quick rounds interleaved, receiving through x/crypto:
// 1.13-1.20 CPU s/GB at 200 against 1.25-1.52 at 100.
const tunnelGCPercent = 200

// forwardRuntime sets the Go runtime for what the process forwards; a
// GOMAXPROCS or GOGC the user set wins.
//
// An SSH connection is one serial stream each way, as ssh's one loop
// knows: a packet goes from the reading goroutine to the relay's (and,
// through x/crypto/ssh, through a multiplexer between). With one P a
// hand-off is a switch on the same thread; with more, each one wakes
// another thread. With x/crypto, bench/ssh, 2 CPUs, 5 rounds, the same
// binary with GOMAXPROCS=2 and with this: out of a -L tunnel (decrypting)
// 5,015 → 6,710 Mbit/s and 1.57 → 1.00 CPU s/GB; into it 8,510 → 9,074
// Mbit/s; 16 short connections at once 8 % fewer a second at 7 % less CPU
// each. With sshwire, receiving: 0.88-0.96 CPU s/GB on one P against
// 1.19-1.20 on two. sshtun's raw system calls (rawio_linux.go) are what
// keep the one P from being handed between threads.
// So a process whose rules all go through SSH runs on one P per SSH
// server (up to the default). When a reload adds a rule of the event
// loops, which want a P per CPU, the default comes back before they
// start; it is not lowered again while the process runs.
type forwardRuntime struct {
	lowered  bool // GOMAXPROCS
	gcRaised bool
	gcBefore int
}

// apply sets the runtime for rules, at start or before a reload applies
// them.
func (fr *forwardRuntime) apply(rules []forward.Rule, start bool) {
	if !fr.gcRaised && os.Getenv("GOGC") == "" && usesSSH(rules) {
		fr.gcBefore, fr.gcRaised = debug.SetGCPercent(tunnelGCPercent), true
	}
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	switch servers := sshServers(rules); {
	case start && servers > 0:
		runtime.GOMAXPROCS(min(servers, runtime.GOMAXPROCS(0)))
		fr.lowered = true
	case servers == 0:
		fr.defaultProcs()
	}
}

// sshServers returns how many SSH servers rules go through, or 0 when one
// of them does not go through SSH.
func sshServers(rules []forward.Rule) int {
	servers := map[string]bool{}
	for _, r := range rules {
		if r.Via == "" {
			return 0
		}
		servers[r.Via] = true
	}
	return len(servers)
}

// defaultProcs gives GOMAXPROCS its default back, when apply lowered it.
func (fr *forwardRuntime) defaultProcs() {
	if fr.lowered {
		runtime.SetDefaultGOMAXPROCS()
		fr.lowered = false
	}
}

// restore gives the runtime its defaults back, where apply changed them.
func (fr *forwardRuntime) restore() {
	if fr.gcRaised {
		debug.SetGCPercent(fr.gcBefore)
		fr.gcRaised = false
	}
	fr.defaultProcs()
}
