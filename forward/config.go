package forward

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config file format (YAML):
//
//	rules:
//	  - rule: "8080:127.0.0.1:80"          # as on the command line, or:
//	  - listen: "[::]:8443"                # an address, or a port alone
//	    proto: tcp                         # tcp (default) or udp
//	    backends: ["10.0.0.1:443", "10.0.0.2:443"]
//	    balance: leastconn                 # roundrobin (default) or leastconn
//	    max_conns: 1000
//	    idle_timeout: 5m
//	    connect_timeout: 3s
//	    allow: ["10.0.0.0/8"]
//	    deny: ["10.0.0.66/32"]
//	    proxy_protocol: 2
//	    health_check: 5s
//	    name: web
//	  - rule: "127.0.0.1:5432:db.internal:5432"
//	    via: ssh://deploy@bastion          # through SSH (ssh -L)
//	  - rule: "0.0.0.0:8080:127.0.0.1:3000"
//	    remote: true                       # listen on the SSH server (ssh -R)
//	    via: ssh://host
//	  - rule: "socks5://127.0.0.1:1080"    # a SOCKS5 server (ssh -D with via)
//	    via: ssh://bastion
//
// Every option may also be given at the top level, as a default for all
// rules (via too: then every rule goes through that SSH server).

type fileRule struct {
	Rule           string   `yaml:"rule"`
	Name           string   `yaml:"name"`
	Listen         string   `yaml:"listen"`
	Proto          string   `yaml:"proto"`
	Backends       []string `yaml:"backends"`
	Balance        string   `yaml:"balance"`
	MaxConns       *int     `yaml:"max_conns"`
	IdleTimeout    string   `yaml:"idle_timeout"`
	ConnectTimeout string   `yaml:"connect_timeout"`
	Allow          []string `yaml:"allow"`
	Deny           []string `yaml:"deny"`
	ProxyProtocol  *int     `yaml:"proxy_protocol"`
	HealthCheck    string   `yaml:"health_check"`
	Via            string   `yaml:"via"`
	Remote         bool     `yaml:"remote"`
}

type fileConfig struct {
	fileRule `yaml:",inline"`
	Rules    []fileRule `yaml:"rules"`
}

// ParseConfig reads a configuration file's rules. Errors wrap ErrSyntax
// and name the rule (by its position) and the bad value.
func ParseConfig(data []byte) ([]Rule, error) {
	var fc fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if fc.Rule != "" || fc.Listen != "" || len(fc.Backends) > 0 || fc.Remote {
		return nil, fmt.Errorf("%w: rule, listen, backends and remote go in a rule under \"rules:\"", ErrSyntax)
	}
	var rules []Rule
	for i, fr := range fc.Rules {
		r, err := fr.toRule(fc.fileRule)
		if err != nil {
			return nil, fmt.Errorf("%w: rules[%d]: %v", ErrSyntax, i, strings.TrimPrefix(err.Error(), ErrSyntax.Error()+" "))
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// toRule builds the rule, with defaults from def.
func (fr fileRule) toRule(def fileRule) (Rule, error) {
	var r Rule
	parse := ParseRule
	if fr.Remote {
		parse = ParseRemoteRule
	}
	switch {
	case fr.Rule != "" && (fr.Listen != "" || len(fr.Backends) > 0):
		return r, fmt.Errorf("give either rule or listen and backends, not both")
	case fr.Rule != "":
		var err error
		if r, err = parse(fr.Rule); err != nil {
			return r, err
		}
	default:
		if fr.Listen == "" || len(fr.Backends) == 0 {
			return r, fmt.Errorf("needs rule, or listen and backends")
		}
		proto := cmp.Or(fr.Proto, def.Proto, "tcp")
		listen := fr.Listen
		if _, err := strconv.ParseUint(listen, 10, 16); err != nil && !strings.Contains(listen, ":") {
			return r, fmt.Errorf("listen %q: want a port or ADDRESS:PORT", listen)
		} else if err == nil && !fr.Remote {
			listen = "[::]:" + listen
		}
		var err error
		if r, err = parse(proto + "/" + listen + ":" + strings.Join(fr.Backends, ",")); err != nil {
			return r, err
		}
	}
	if fr.Name != "" {
		r.Name = fr.Name
	}
	switch b := cmp.Or(fr.Balance, def.Balance); b {
	case "", "roundrobin", "round-robin":
		r.Balance = RoundRobin
	case "leastconn", "least-conn":
		r.Balance = LeastConn
	default:
		return r, fmt.Errorf("balance %q; want roundrobin or leastconn", b)
	}
	if n := cmp.Or(fr.MaxConns, def.MaxConns); n != nil {
		if *n < 0 {
			return r, fmt.Errorf("max_conns %d; want 0 (no limit) or more", *n)
		}
		r.MaxConns = *n
	}
	for _, d := range []struct {
		name string
		text string
		dst  *time.Duration
	}{
		{"idle_timeout", cmp.Or(fr.IdleTimeout, def.IdleTimeout), &r.IdleTimeout},
		{"connect_timeout", cmp.Or(fr.ConnectTimeout, def.ConnectTimeout), &r.ConnectTimeout},
		{"health_check", cmp.Or(fr.HealthCheck, def.HealthCheck), &r.HealthCheck},
	} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil || v < 0 {
			return r, fmt.Errorf("%s %q; want a duration such as 30s or 5m", d.name, d.text)
		}
		*d.dst = v
	}
	var err error
	if r.Allow, err = ParsePrefixes(append(append([]string{}, def.Allow...), fr.Allow...)); err != nil {
		return r, fmt.Errorf("allow: %v", err)
	}
	if r.Deny, err = ParsePrefixes(append(append([]string{}, def.Deny...), fr.Deny...)); err != nil {
		return r, fmt.Errorf("deny: %v", err)
	}
	if n := cmp.Or(fr.ProxyProtocol, def.ProxyProtocol); n != nil {
		if *n != 0 && *n != 1 && *n != 2 {
			return r, fmt.Errorf("proxy_protocol %d; want 1 or 2 (or 0 for none)", *n)
		}
		if *n != 0 && r.Proto == UDP {
			return r, fmt.Errorf("proxy_protocol is for TCP rules")
		}
		r.ProxyProtocol = *n
	}
	r.Via = cmp.Or(fr.Via, def.Via)
	if err := r.Validate(); err != nil {
		return r, err
	}
	return r, nil
}

// ParsePrefixes reads CIDRs ("10.0.0.0/8") and addresses (a /32 or /128).
func ParsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		for _, f := range strings.Split(s, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if p, err := netip.ParsePrefix(f); err == nil {
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or CIDR such as 10.0.0.0/8", f)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}
