package guard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// File is guard's configuration file, in YAML:
//
//	block: 10m                 # block SYN scanners this long (0: report only)
//	group4: 24                 # count IPv4 sources by /24
//	group6: 64                 # and IPv6 sources by /64
//	allow: [192.0.2.10, 10.1.0.0/16]   # never judged: your own monitoring
//	knock:
//	  - tcp/7000,udp/8000,tcp/9000:22
//	knock_window: 10s
//	open_for: 30s
//	spa:
//	  key: /etc/portctl/spa.keys
//	  port: 62201
//	  nonces: /var/lib/portctl/spa-nonces
//	tarpit:
//	  ports: [2222]
//	  max: 1024
//	events: /var/log/portctl-guard.jsonl
//	nflog_group: 2222
//
// Every field is optional; an unknown one is an error.
type File struct {
	Block       Duration `yaml:"block"`
	Group4      int      `yaml:"group4"`
	Group6      int      `yaml:"group6"`
	Allow       []string `yaml:"allow"`
	Knock       []string `yaml:"knock"`
	KnockWindow Duration `yaml:"knock_window"`
	OpenFor     Duration `yaml:"open_for"`
	SPA         struct {
		Key    string `yaml:"key"`
		Port   uint16 `yaml:"port"`
		Nonces string `yaml:"nonces"`
	} `yaml:"spa"`
	Tarpit struct {
		Ports []uint16 `yaml:"ports"`
		Max   int      `yaml:"max"`
	} `yaml:"tarpit"`
	Events     string `yaml:"events"`
	NflogGroup uint16 `yaml:"nflog_group"`

	// Read from the fields above by ParseFile.
	AllowPrefixes []netip.Prefix `yaml:"-"`
	Knocks        []KnockRule    `yaml:"-"`
}

// Duration is a time.Duration in YAML as "30s", "10m".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("line %d: %q: want a duration such as 30s or 10m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// ParseFile reads a configuration file. Errors name the line.
func ParseFile(r io.Reader) (File, error) {
	var f File
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return f, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return File{}, fmt.Errorf("config: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if f.Group4 < 0 || f.Group4 > 32 {
		return File{}, fmt.Errorf("config: group4 %d: want a prefix length from 0 to 32", f.Group4)
	}
	if f.Group6 < 0 || f.Group6 > 128 {
		return File{}, fmt.Errorf("config: group6 %d: want a prefix length from 0 to 128", f.Group6)
	}
	for _, a := range f.Allow {
		p, err := ParsePrefix(a)
		if err != nil {
			return File{}, fmt.Errorf("config: allow: %w", err)
		}
		f.AllowPrefixes = append(f.AllowPrefixes, p)
	}
	for _, k := range f.Knock {
		r, err := ParseKnock(k)
		if err != nil {
			return File{}, fmt.Errorf("config: %w", err)
		}
		f.Knocks = append(f.Knocks, r)
	}
	for _, p := range f.Tarpit.Ports {
		if p == 0 {
			return File{}, errors.New("config: tarpit: port 0: want 1 to 65535")
		}
	}
	if f.Tarpit.Max < 0 {
		return File{}, fmt.Errorf("config: tarpit: max %d: want 1 or more", f.Tarpit.Max)
	}
	return f, nil
}

// ParsePrefix reads an address or a prefix ("192.0.2.1", "10.0.0.0/8").
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("%q: want an address or a prefix such as 10.0.0.0/8", s)
}

// ParsePorts reads a list of ports: "2222,2323" or "8000-8010".
func ParsePorts(s string) ([]uint16, error) {
	var out []uint16
	for f := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(f), "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || a == 0 || b < a || b-a > 1024 {
			return nil, fmt.Errorf("%q: want ports from 1 to 65535, as 2222 or 8000-8010 (at most 1,025 in a range)", f)
		}
		for p := a; p <= b; p++ {
			out = append(out, uint16(p))
		}
	}
	return out, nil
}
