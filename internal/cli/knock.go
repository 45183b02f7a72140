package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/guard/spa"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/probe"
)

// knockOptions are the flags and arguments of `portctl knock`.
type knockOptions struct {
	Host     string
	Sequence []knockStep // the knocks, in order
	Delay    time.Duration
	Family   probe.Family
	Quiet    bool
	JSON     bool

	// --spa: one signed packet instead of a sequence.
	SPA     bool
	KeyFile string
	Open    knockStep     // what to open
	For     time.Duration // for how long
	Port    uint16        // the server's SPA port
	Addr    netip.Addr    // the address to open for; invalid: the packet's source

	// --new-key KIND FILE: write a key instead of knocking.
	NewKey  string // "hmac" or "ed25519"
	KeyPath string
}

// knockStep is one knock: a protocol and a port.
type knockStep struct {
	Proto string // "tcp" or "udp"
	Port  uint16
}

func (k knockStep) String() string { return k.Proto + "/" + strconv.Itoa(int(k.Port)) }

const (
	// knockSPAPort is fwknop's SPA port, portctl guard's default too.
	knockSPAPort = 62201
	// knockAbandon is how long a TCP knock waits for its connection
	// before abandoning it: the SYN left at once, no answer is needed.
	knockAbandon = 50 * time.Millisecond
	// knockMaxFor bounds --for; the server caps it again.
	knockMaxFor = 24 * time.Hour
	// knockStepForm is what a sequence looks like, for messages.
	knockStepForm = "PROTO/PORT[,PROTO/PORT...] such as tcp/7000,udp/8000,9000 (tcp or udp; a bare port is tcp; ports 1-65535)"
)

func newKnockCmd(streams *term.IO, runF func(context.Context, knockOptions) error) *cobra.Command {
	opts := knockOptions{Delay: 200 * time.Millisecond, For: 30 * time.Second, Port: knockSPAPort}
	var (
		ipv4, ipv6 bool
		open, addr string
	)
	cmd := &cobra.Command{
		Use:   "knock HOST SEQUENCE | HOST --spa --key FILE --open PROTO/PORT | --new-key hmac|ed25519 FILE",
		Short: "Knock on ports in sequence, or send a signed packet, to open a guarded port",
		Long: `Send what 'portctl guard' (or knockd, or fwknopd for its part) waits for
before it opens a port to you.

portctl knock HOST SEQUENCE knocks on each port of SEQUENCE in turn,
--delay apart: one connection attempt for a TCP port (a single SYN: the
attempt is abandoned at once, no answer is awaited), one small datagram
for a UDP port. SEQUENCE is tcp/7000,udp/8000,9000; a bare port is TCP.

portctl knock HOST --spa --key FILE --open tcp/22 sends one single-packet
authorization datagram to HOST's --port (62201 by default), asking to open
tcp/22 for --for, authenticated with the key in FILE (an HMAC secret or an
Ed25519 private key), stamped with the time and a random nonce so that it
cannot be replayed. The server opens the port to the packet's source
address; behind NAT, --addr names the address the server sees you from.
A key file with fwknop's keys (fwknop-rijndael and fwknop-hmac-sha256
lines, or fwknop's KEY_BASE64 and HMAC_KEY_BASE64) and no portctl key
sends the packet fwknop's client would, for fwknopd.

portctl knock --new-key hmac FILE writes a new shared secret to FILE (mode
0600): the client and the server both need it. --new-key ed25519 FILE
writes a private key to FILE and its public key to FILE.pub, for the
server's key file.

HOST is a name, an IPv4 or an IPv6 address; -4 or -6 choose the family of
a name's address. What was sent is reported on stderr unless --quiet;
--json prints it on stdout.`,
		Example: `  portctl knock gate.example.net tcp/7000,udp/8000,tcp/9000
  portctl knock 2001:db8::10 7000,8000,9000 --delay 500ms
  portctl knock --new-key ed25519 ~/.config/portctl/spa.key
  portctl knock gate.example.net --spa --key ~/.config/portctl/spa.key --open tcp/22 --for 1m`,
		RunE: func(cmd *cobra.Command, args []string) error {
			fam, err := familyFlags(ipv4, ipv6)
			if err != nil {
				return err
			}
			opts.Family = fam
			if err := knockParse(cmd, &opts, args, open, addr); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runKnock(cmd.Context(), streams, opts)
		},
	}
	f := cmd.Flags()
	f.DurationVar(&opts.Delay, "delay", opts.Delay, "time between knocks")
	f.BoolVarP(&ipv4, "ipv4", "4", false, "use an IPv4 address of HOST")
	f.BoolVarP(&ipv6, "ipv6", "6", false, "use an IPv6 address of HOST")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "report nothing on stderr")
	f.BoolVar(&opts.JSON, "json", false, "print what was sent as JSON")
	f.BoolVar(&opts.SPA, "spa", false, "send one single-packet authorization datagram instead of a sequence")
	f.StringVar(&opts.KeyFile, "key", "", "with --spa, the key FILE to sign with")
	f.StringVar(&open, "open", "", "with --spa, the port to open, as PROTO/PORT (tcp/22)")
	f.DurationVar(&opts.For, "for", opts.For, "with --spa, how long the port should stay open")
	f.Uint16Var(&opts.Port, "port", opts.Port, "with --spa, the server's SPA port")
	f.StringVar(&addr, "addr", "", "with --spa, the address to open for (yours as the server sees it, behind NAT)")
	f.StringVar(&opts.NewKey, "new-key", "", "write a new key, hmac or ed25519, to FILE (and FILE.pub)")
	return cmd
}

// knockParse checks the arguments and flags of one of knock's three
// forms and fills opts.
func knockParse(cmd *cobra.Command, opts *knockOptions, args []string, open, addr string) error {
	spaOnly := []string{"key", "open", "for", "port", "addr"}
	switch {
	case cmd.Flags().Changed("new-key"):
		if opts.NewKey != "hmac" && opts.NewKey != "ed25519" {
			return usageErrorf("--new-key %q: want hmac or ed25519", opts.NewKey)
		}
		if len(args) != 1 {
			return usageErrorf("knock --new-key %s takes one FILE to write the key to; got %d arguments", opts.NewKey, len(args))
		}
		for _, name := range append(spaOnly, "spa", "delay", "ipv4", "ipv6") {
			if cmd.Flags().Changed(name) {
				return usageErrorf("--new-key writes a key and sends nothing: leave out --%s", name)
			}
		}
		if args[0] == "" {
			return usageErrorf("knock --new-key: empty FILE name")
		}
		opts.KeyPath = args[0]
		return nil
	case opts.SPA:
		if len(args) != 1 {
			return usageErrorf("knock --spa takes one HOST (the sequence is for knocking without --spa); got %d arguments", len(args))
		}
		opts.Host = args[0]
		if cmd.Flags().Changed("delay") {
			return usageErrorf("--delay is for a knock sequence; --spa sends one packet")
		}
		if opts.KeyFile == "" {
			return usageErrorf("knock --spa needs --key FILE (write one with 'portctl knock --new-key hmac FILE')")
		}
		if open == "" {
			return usageErrorf("knock --spa needs --open PROTO/PORT, the port to open (such as tcp/22)")
		}
		step, err := parseKnockStep(open)
		if err != nil {
			return usageErrorf("--open %q: %v (want PROTO/PORT such as tcp/22, ports 1-65535)", open, err)
		}
		opts.Open = step
		if opts.For < time.Second || opts.For > knockMaxFor {
			return usageErrorf("--for %s: want a duration from 1s to 24h", opts.For)
		}
		if opts.Port == 0 {
			return usageErrorf("--port 0: want the server's SPA port, 1-65535")
		}
		if addr != "" {
			a, err := netip.ParseAddr(strings.Trim(addr, "[]"))
			if err != nil || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
				return usageErrorf("--addr %q: want the IPv4 or IPv6 address to open for, such as 203.0.113.5", addr)
			}
			opts.Addr = a.Unmap()
		}
	default:
		for _, name := range spaOnly {
			if cmd.Flags().Changed(name) {
				return usageErrorf("--%s is for --spa: add --spa, or leave out --%s to knock a sequence", name, name)
			}
		}
		if len(args) != 2 {
			return usageErrorf("knock takes HOST SEQUENCE (or HOST --spa, or --new-key KIND FILE); got %d arguments", len(args))
		}
		opts.Host = args[0]
		seq, err := parseKnockSequence(args[1])
		if err != nil {
			return err
		}
		opts.Sequence = seq
		if opts.Delay < 0 {
			return usageErrorf("--delay %s: want a duration of 0 or more, such as 200ms", opts.Delay)
		}
	}
	host := strings.Trim(opts.Host, "[]")
	if host == "" {
		return usageErrorf("knock: empty HOST (want a name, an IPv4 or an IPv6 address)")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if opts.Family == probe.IPv4 && !a.Unmap().Is4() {
			return usageErrorf("HOST %q is an IPv6 address but -4 asks for IPv4", opts.Host)
		}
		if opts.Family == probe.IPv6 && a.Is4() {
			return usageErrorf("HOST %q is an IPv4 address but -6 asks for IPv6", opts.Host)
		}
	}
	opts.Host = host
	return nil
}

// parseKnockSequence parses tcp/7000,udp/8000,9000.
func parseKnockSequence(s string) ([]knockStep, error) {
	if strings.TrimSpace(s) == "" {
		return nil, usageErrorf("knock: empty SEQUENCE (want %s)", knockStepForm)
	}
	var seq []knockStep
	parts := strings.Split(s, ",")
	for _, part := range parts {
		step, err := parseKnockStep(strings.TrimSpace(part))
		if err != nil && len(parts) == 1 {
			return nil, usageErrorf("knock %q: %v (want %s)", part, err, knockStepForm)
		}
		if err != nil {
			return nil, usageErrorf("knock %q in sequence %q: %v (want %s)", part, s, err, knockStepForm)
		}
		seq = append(seq, step)
	}
	return seq, nil
}

// parseKnockStep parses tcp/7000, udp/8000 or 9000 (tcp).
func parseKnockStep(s string) (knockStep, error) {
	proto, port, ok := strings.Cut(s, "/")
	if !ok {
		proto, port = "tcp", s
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" {
		return knockStep{}, fmt.Errorf("protocol %q is not tcp or udp", proto)
	}
	if port == "" {
		return knockStep{}, errors.New("no port")
	}
	n, err := strconv.ParseUint(port, 10, 64)
	if err != nil || port[0] == '+' {
		return knockStep{}, fmt.Errorf("port %q is not a number", port)
	}
	if n == 0 || n > 65535 {
		return knockStep{}, fmt.Errorf("port %d is out of range", n)
	}
	return knockStep{Proto: proto, Port: uint16(n)}, nil
}

// knockSent is one knock of `knock --json`. Field names are a stable
// contract.
type knockSent struct {
	Proto  string  `json:"proto"`
	Port   uint16  `json:"port"`
	AtMS   float64 `json:"at_ms"`  // since the first knock
	Answer string  `json:"answer"` // tcp: open, refused or none; udp: none
}

// knockDoc is the JSON document of `knock --json` for a sequence.
type knockDoc struct {
	Host    string      `json:"host"`
	Address string      `json:"address"`
	DelayMS float64     `json:"delay_ms"`
	Knocks  []knockSent `json:"knocks"`
}

// spaDoc is the JSON document of `knock --spa --json`.
type spaDoc struct {
	Host    string `json:"host"`
	Address string `json:"address"` // where the packet went, ADDR:PORT
	Open    string `json:"open"`    // PROTO/PORT
	ForS    int64  `json:"for_s"`
	OpenFor string `json:"open_for"` // the address named, or "" for the packet's source
	Key     string `json:"key"`      // hmac-sha256 or ed25519-private
	Bytes   int    `json:"bytes"`
}

// newKeyDoc is the JSON document of `knock --new-key --json`.
type newKeyDoc struct {
	Kind   string `json:"kind"`
	File   string `json:"file"`
	Public string `json:"public_file,omitempty"`
}

func runKnock(ctx context.Context, streams *term.IO, opts knockOptions) error {
	switch {
	case opts.KeyPath != "":
		return runNewKey(streams, opts)
	case opts.SPA:
		return runSPA(ctx, streams, opts)
	}
	return runKnockSequence(ctx, streams, opts)
}

// knockResolve returns the address of opts.Host in opts.Family.
func knockResolve(ctx context.Context, opts knockOptions) (netip.Addr, error) {
	if a, err := netip.ParseAddr(opts.Host); err == nil {
		return a.Unmap(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, opts.Family.String(), opts.Host)
	if err != nil || len(addrs) == 0 {
		if ctx.Err() != nil {
			return netip.Addr{}, fmt.Errorf("knock: resolve %s: %w", opts.Host, ctx.Err())
		}
		fam := map[probe.Family]string{probe.IPv4: "IPv4 ", probe.IPv6: "IPv6 "}[opts.Family]
		return netip.Addr{}, fmt.Errorf("knock: resolve %s: no %saddress (%v)", opts.Host, fam, err)
	}
	return addrs[0].Unmap(), nil
}

func runKnockSequence(ctx context.Context, streams *term.IO, opts knockOptions) error {
	addr, err := knockResolve(ctx, opts)
	if err != nil {
		return err
	}
	doc := knockDoc{Host: opts.Host, Address: addr.String(), DelayMS: millis(opts.Delay)}
	start := time.Now()
	for i, step := range opts.Sequence {
		if i > 0 {
			wait := time.Until(start.Add(time.Duration(i) * opts.Delay))
			select {
			case <-ctx.Done():
				return interrupted("knocking", nil)
			case <-time.After(wait):
			}
		}
		at := time.Since(start)
		answer, err := sendKnock(ctx, addr, step)
		if err != nil {
			return err
		}
		doc.Knocks = append(doc.Knocks, knockSent{Proto: step.Proto, Port: step.Port, AtMS: millis(at), Answer: answer})
		if !opts.Quiet {
			fmt.Fprintf(streams.Err, "knock %d/%d: %s to %s (%s)\n", i+1, len(opts.Sequence), step,
				netip.AddrPortFrom(addr, step.Port), knockAnswerText(step, answer))
		}
	}
	if opts.JSON {
		return writeJSON(streams.Out, doc)
	}
	return nil
}

func knockAnswerText(step knockStep, answer string) string {
	if step.Proto == "udp" {
		return "one datagram"
	}
	switch answer {
	case "open":
		return "SYN; the port accepted"
	case "refused":
		return "SYN; the port refused"
	}
	return "SYN; no answer awaited"
}

// sendKnock sends one knock: a SYN for TCP, abandoned after knockAbandon;
// one byte in a datagram for UDP. For TCP it returns what came back
// (open, refused or none).
func sendKnock(ctx context.Context, addr netip.Addr, step knockStep) (string, error) {
	to := netip.AddrPortFrom(addr, step.Port)
	if step.Proto == "udp" {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
		if err != nil {
			return "", fmt.Errorf("knock %s: %w", step, err)
		}
		defer c.Close()
		// A refusal from an earlier knock may be pending on a fresh socket
		// only on some systems; it does not mean this datagram was lost.
		if _, err := c.Write([]byte{0}); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			return "", fmt.Errorf("knock %s: %w", step, err)
		}
		return "none", nil
	}
	d := net.Dialer{Timeout: knockAbandon}
	c, err := d.DialContext(ctx, "tcp", to.String())
	switch {
	case err == nil:
		c.Close()
		return "open", nil
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused", nil
	case ctx.Err() != nil:
		return "", interrupted("knocking", nil)
	case isTimeout(err):
		return "none", nil
	}
	return "", fmt.Errorf("knock %s: %w", step, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func runSPA(ctx context.Context, streams *term.IO, opts knockOptions) error {
	data, err := os.ReadFile(opts.KeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return usageErrorf("--key %q: no such file (want a key file written by 'portctl knock --new-key hmac|ed25519 FILE')", opts.KeyFile)
	}
	if err != nil {
		return fmt.Errorf("knock: read key file: %w", err)
	}
	keys, err := spa.LoadKeys(strings.NewReader(string(data)))
	if err != nil {
		return fmt.Errorf("knock: key file %s: %w", opts.KeyFile, err)
	}
	addr, err := knockResolve(ctx, opts)
	if err != nil {
		return err
	}
	req := spa.Request{Proto: opts.Open.Proto, Port: opts.Open.Port, For: opts.For, Addr: opts.Addr}
	pkt, keyName, err := encodeSPA(req, keys)
	if err != nil {
		return fmt.Errorf("knock: key file %s: %w", opts.KeyFile, err)
	}
	to := netip.AddrPortFrom(addr, opts.Port)
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		return fmt.Errorf("knock: send SPA packet: %w", err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		return fmt.Errorf("knock: send SPA packet to %s: %w", to, err)
	}
	doc := spaDoc{Host: opts.Host, Address: to.String(), Open: opts.Open.String(), ForS: int64(opts.For.Round(time.Second) / time.Second),
		Key: keyName, Bytes: len(pkt)}
	whom := "the packet's source address"
	if opts.Addr.IsValid() {
		doc.OpenFor = opts.Addr.String()
		whom = opts.Addr.String()
	}
	if !opts.Quiet {
		fmt.Fprintf(streams.Err, "sent an SPA packet (%d bytes, %s) to %s: open %s to %s for %s\n",
			len(pkt), keyName, to, opts.Open, whom, opts.For)
	}
	if opts.JSON {
		return writeJSON(streams.Out, doc)
	}
	return nil
}

// encodeSPA builds the packet for req with the key file's signing key,
// or, in a file with fwknop keys and no portctl key to sign with, the
// packet fwknop's client would send, for fwknopd. It returns the kind of
// key used.
func encodeSPA(req spa.Request, keys spa.Keys) ([]byte, string, error) {
	key, signErr := keys.Signer()
	if signErr == nil {
		pkt, err := spa.Encode(req, key, time.Now())
		return pkt, key.Kind.String(), err
	}
	pairs, err := keys.FwknopPairs()
	if err != nil || len(pairs) == 0 {
		return nil, "", signErr
	}
	name := "portctl"
	if u, err := user.Current(); err == nil && u.Username != "" && !strings.ContainsAny(u.Username, ":\x00") && len(u.Username) <= 64 {
		name = u.Username
	}
	pkt, err := spa.EncodeFwknop(req, pairs[0], name, time.Now())
	return pkt, "fwknop", err
}

func runNewKey(streams *term.IO, opts knockOptions) error {
	var private, public string
	var err error
	if opts.NewKey == "hmac" {
		private, err = spa.GenerateHMAC()
	} else {
		private, public, err = spa.GenerateEd25519()
	}
	if err != nil {
		return err
	}
	pubPath := ""
	if public != "" {
		pubPath = opts.KeyPath + ".pub"
	}
	// Neither file may exist: a key is never overwritten.
	for _, p := range []string{opts.KeyPath, pubPath} {
		if p == "" {
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			return usageErrorf("knock --new-key: %q exists; remove it or name another FILE (a key is never overwritten)", p)
		}
	}
	if err := writeNewFile(opts.KeyPath, private, 0o600); err != nil {
		return err
	}
	doc := newKeyDoc{Kind: "hmac-sha256", File: opts.KeyPath}
	if pubPath != "" {
		if err := writeNewFile(pubPath, public, 0o644); err != nil {
			os.Remove(opts.KeyPath)
			return err
		}
		doc.Kind, doc.Public = "ed25519", pubPath
	}
	if opts.JSON {
		return writeJSON(streams.Out, doc)
	}
	if pubPath == "" {
		fmt.Fprintf(streams.Out, "wrote %s: a new HMAC-SHA-256 secret (mode 0600); the server's key file needs the same line\n", opts.KeyPath)
		return nil
	}
	fmt.Fprintf(streams.Out, "wrote %s: a new Ed25519 private key (mode 0600), for 'portctl knock --spa --key'\n", opts.KeyPath)
	fmt.Fprintf(streams.Out, "wrote %s: its public key, for the server's key file\n", pubPath)
	return nil
}

// writeNewFile creates path, which must not exist, with mode and text.
func writeNewFile(path, text string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("knock --new-key: %w", err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("knock --new-key: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("knock --new-key: %w", err)
	}
	return nil
}
