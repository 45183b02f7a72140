// Package sshtun carries TCP connections through SSH, the transport of
// portctl's `forward --via ssh://` rules: local forwards (Dial, like
// ssh -L), remote forwards (Listen, like ssh -R) and a SOCKS5 server that
// dials through the tunnel (like ssh -D).
//
// A Manager keeps one SSH connection per host, shared by every rule that
// goes through it. Keepalive requests find a dead link; the Manager then
// reconnects with exponential back-off and jitter, and remote forwards are
// requested again on the new connection by themselves. A Dial made while
// the link is down waits for it up to the connect timeout, then fails with
// the last error. State, round-trip time and counters per host are read
// with Host.State.
//
// The user's OpenSSH setup is honoured: a subset of ssh_config (see
// ParseConfig), ssh-agent, identity files and known_hosts, checked
// strictly unless AcceptNew is set. The package reads no environment
// variables and prompts for nothing: the caller passes the config path,
// home directory, agent socket and, when it has a terminal, a
// keyboard-interactive callback, in Options.
//
// A forwarder uses it like this (the CLI fills Options from the
// environment and the terminal):
//
//	cfg, err := sshtun.ParseConfigFile(home+"/.ssh/config", home)
//	m := sshtun.NewManager(sshtun.Options{Config: cfg, HomeDir: home,
//		LocalUser: user, AgentSocket: os.Getenv("SSH_AUTH_SOCK"),
//		GlobalKnownHostsFiles: []string{"/etc/ssh/ssh_known_hosts"}})
//	defer m.Close()
//	h, err := m.Host("ssh://bastion")          // one per rule's --via; shared
//	c, err := h.Dial(ctx, "tcp", "db.internal:5432") // -L: per accepted client
//	ln, err := h.Listen(ctx, "tcp", "0.0.0.0:8080")  // -R: accept, dial local
//	go (&sshtun.SOCKS5{Dial: h.Dial}).Serve(ctx, l)  // -D
//	st := h.State()                             // --stats, /metrics
package sshtun
