// Command tunnel is the benchmark's ssh -L made with forward/sshtun: it
// listens on -listen and relays each connection to -to through the SSH
// host -target, reading the ssh_config -F (as ssh -F does) and the
// known_hosts files it names. It prints "ready" on stdout once the SSH
// connection is up and the listener open, and runs until killed.
//
//	tunnel -F bench.conf -target ssh://bench -listen 127.0.0.1:7001 -to 127.0.0.1:5201
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/portctl/portctl/forward/sshtun"
)

func main() {
	cfgPath := flag.String("F", "", "ssh_config `file`")
	target := flag.String("target", "", "ssh://[USER@]HOST[:PORT]")
	listen := flag.String("listen", "127.0.0.1:0", "local `address` to listen on")
	to := flag.String("to", "", "`host:port` to reach from the SSH server")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to `file` (ends on SIGTERM)")
	flag.Parse()
	if *target == "" || *to == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	opts := sshtun.Options{LocalUser: os.Getenv("USER"), HomeDir: os.Getenv("HOME"), AgentSocket: os.Getenv("SSH_AUTH_SOCK")}
	if *cfgPath != "" {
		c, err := sshtun.ParseConfigFile(*cfgPath, opts.HomeDir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "tunnel:", err)
			os.Exit(1)
		}
		opts.Config = c
	}
	m := sshtun.NewManager(opts)
	defer m.Close()
	h, err := m.Host(*target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunnel:", err)
		os.Exit(2)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.State().State != sshtun.StateConnected {
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "tunnel: not connected after 10 s:", h.State().LastError)
			os.Exit(1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunnel:", err)
		os.Exit(1)
	}
	fmt.Println("ready", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "tunnel:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := h.Forward(ctx, ln, *to); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "tunnel:", err)
		os.Exit(1)
	}
}
