package sshtun

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is a parsed ssh_config file: the subset of OpenSSH's keywords
// that tunnels need (see ParseConfig). It is safe for concurrent use once
// parsed.
type Config struct {
	blocks []block
}

// block is one Host section (the first, before any Host line, matches
// every host) and its options in file order.
type block struct {
	patterns []string // nil: every host; a leading '!' negates
	match    bool     // a Match section: never applies (not supported)
	opts     []option
}

type option struct {
	key  string // lower case
	args []string
	line int
}

// HostConfig is what the config says for one host: the first value found
// for each keyword, as OpenSSH takes it. Zero values mean "not set".
type HostConfig struct {
	HostName              string
	User                  string
	Port                  uint16
	IdentityFiles         []string // every IdentityFile, in order
	IdentitiesOnly        bool
	ProxyJump             string // "none", or hops separated by commas
	ServerAliveInterval   time.Duration
	ServerAliveCountMax   int
	StrictHostKeyChecking string // yes, no, accept-new, ask (off is no)
	UserKnownHostsFiles   []string
	Ciphers               string // as written: a list, or +, -, ^ modifiers
	ConnectTimeout        time.Duration
}

// maxConfigSize bounds what ParseConfig reads.
const maxConfigSize = 4 << 20

// ErrConfig is wrapped by every error of ParseConfig.
var ErrConfig = errors.New("bad ssh config")

// ParseConfig reads an ssh_config file. It knows Host (patterns with * and
// ?, negated with !), HostName, User, Port, IdentityFile, IdentitiesOnly,
// ProxyJump, ServerAliveInterval, ServerAliveCountMax,
// StrictHostKeyChecking, UserKnownHostsFile, Ciphers and ConnectTimeout,
// and checks their values; other keywords are skipped, as are Match
// sections (their options apply to no host) and Include lines (which
// ParseConfigFile follows). Keywords are case-insensitive and may be
// followed by '=' or spaces; arguments may be quoted with double quotes.
func ParseConfig(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read: %v", ErrConfig, err)
	}
	p := &configParser{c: &Config{blocks: []block{{}}}}
	if err := p.parse("", data, 0); err != nil {
		return nil, err
	}
	return p.c, nil
}

// ParseConfigFile reads the ssh_config file at path as ParseConfig does,
// following Include lines: their file names may hold glob patterns, and
// relative ones are taken from homeDir/.ssh, as OpenSSH takes them for the
// user's config. A file that does not exist is no error for Include (nor
// does a missing path itself: that is an empty config, as for ssh).
func ParseConfigFile(path, homeDir string) (*Config, error) {
	p := &configParser{c: &Config{blocks: []block{{}}}, home: homeDir, follow: true}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return p.c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := p.parse(path, data, 0); err != nil {
		return nil, err
	}
	return p.c, nil
}

// maxIncludeDepth bounds nested Include lines, as OpenSSH does.
const maxIncludeDepth = 16

type configParser struct {
	c      *Config
	home   string
	follow bool // read Include files
	total  int  // bytes read, over every file
}

// parse adds the lines of one file (name "" for a reader) to the config.
func (p *configParser) parse(name string, data []byte, depth int) error {
	where := func(n int) string {
		if name == "" {
			return fmt.Sprintf("line %d", n)
		}
		return fmt.Sprintf("%s line %d", name, n)
	}
	p.total += len(data)
	if p.total > maxConfigSize {
		return fmt.Errorf("%w: larger than %d bytes", ErrConfig, maxConfigSize)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxConfigSize)
	n := 0
	for sc.Scan() {
		n++
		words, err := splitConfigLine(sc.Text())
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrConfig, where(n), err)
		}
		if len(words) == 0 {
			continue
		}
		key := strings.ToLower(words[0])
		args := words[1:]
		switch key {
		case "host":
			if len(args) == 0 {
				return fmt.Errorf("%w: %s: Host without a pattern", ErrConfig, where(n))
			}
			pats := make([]string, len(args))
			for i, a := range args {
				pats[i] = strings.ToLower(a)
			}
			p.c.blocks = append(p.c.blocks, block{patterns: pats})
			continue
		case "match":
			p.c.blocks = append(p.c.blocks, block{match: true})
			continue
		case "include":
			if len(args) == 0 {
				return fmt.Errorf("%w: %s: Include without a file", ErrConfig, where(n))
			}
			if !p.follow {
				continue
			}
			if depth >= maxIncludeDepth {
				return fmt.Errorf("%w: %s: Include nested more than %d deep", ErrConfig, where(n), maxIncludeDepth)
			}
			// The included lines belong to the section the Include is in,
			// until they start one of their own; after the file that
			// section goes on.
			outer := p.c.blocks[len(p.c.blocks)-1]
			for _, a := range args {
				if err := p.include(a, depth); err != nil {
					return err
				}
			}
			p.c.blocks = append(p.c.blocks, block{patterns: outer.patterns, match: outer.match})
			continue
		}
		if _, known := keywords[key]; !known {
			continue
		}
		if err := checkOption(key, args); err != nil {
			return fmt.Errorf("%w: %s: %s: %v", ErrConfig, where(n), words[0], err)
		}
		b := &p.c.blocks[len(p.c.blocks)-1]
		b.opts = append(b.opts, option{key: key, args: args, line: n})
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrConfig, where(n+1), err)
	}
	return nil
}

// include parses the files an Include argument names, in name order.
func (p *configParser) include(pattern string, depth int) error {
	if pattern == "~" || strings.HasPrefix(pattern, "~/") {
		pattern = p.home + pattern[1:]
	} else if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(p.home, ".ssh", pattern)
	}
	files, err := filepath.Glob(pattern)
	if err != nil {
		return fmt.Errorf("%w: Include %q: %v", ErrConfig, pattern, err)
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("%w: Include: %v", ErrConfig, err)
		}
		if err := p.parse(f, data, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// keywords are the options ParseConfig keeps.
var keywords = map[string]struct{}{
	"hostname": {}, "user": {}, "port": {}, "identityfile": {}, "identitiesonly": {},
	"proxyjump": {}, "serveraliveinterval": {}, "serveralivecountmax": {},
	"stricthostkeychecking": {}, "userknownhostsfile": {}, "ciphers": {}, "connecttimeout": {},
}

// splitConfigLine splits a line into words the way ssh_config does: the
// keyword may end in '=' (with or without spaces around it), arguments are
// separated by spaces or tabs and may be double-quoted, an unquoted word
// starting with '#' starts a comment.
func splitConfigLine(line string) ([]string, error) {
	var words []string
	i := 0
	first := true
	for {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
			i++
		}
		if first && len(words) == 1 && i < len(line) && line[i] == '=' {
			// "Key = value"
			i++
			first = false
			continue
		}
		if i >= len(line) {
			return words, nil
		}
		if line[i] == '#' {
			return words, nil
		}
		var w strings.Builder
		if line[i] == '"' {
			end := strings.IndexByte(line[i+1:], '"')
			if end < 0 {
				return nil, errors.New("unterminated quote")
			}
			w.WriteString(line[i+1 : i+1+end])
			i += end + 2
			if i < len(line) && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' {
				return nil, errors.New("text right after a closing quote")
			}
		} else {
			for i < len(line) && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '"' {
				if len(words) == 0 && line[i] == '=' {
					break
				}
				w.WriteByte(line[i])
				i++
			}
			if i < len(line) && line[i] == '"' {
				return nil, errors.New("a quote in the middle of a word")
			}
		}
		words = append(words, w.String())
		if len(words) == 1 && i < len(line) && line[i] == '=' {
			i++ // "Key=value"
			first = false
		}
	}
}

// checkOption checks the arguments of a kept keyword.
func checkOption(key string, args []string) error {
	one := func() error {
		if len(args) != 1 {
			return fmt.Errorf("want one value, got %d", len(args))
		}
		return nil
	}
	switch key {
	case "identityfile", "userknownhostsfile":
		if len(args) == 0 || key == "identityfile" && len(args) != 1 {
			return errors.New("want a file name")
		}
		for _, a := range args {
			if a == "" || strings.ContainsRune(a, 0) {
				return errors.New("want a file name")
			}
		}
		return nil
	}
	if err := one(); err != nil {
		return err
	}
	v := args[0]
	switch key {
	case "hostname":
		if v == "" || strings.ContainsAny(v, " \t\x00/@") {
			return fmt.Errorf("%q is not a host name", v)
		}
	case "user":
		if !validUser(v) {
			return fmt.Errorf("%q is not a login name", v)
		}
	case "port":
		if _, err := parsePort(v); err != nil {
			return err
		}
	case "identitiesonly":
		if _, err := parseYesNo(v); err != nil {
			return err
		}
	case "proxyjump":
		if strings.EqualFold(v, "none") {
			return nil
		}
		if _, err := parseJumps(v); err != nil {
			return err
		}
	case "serveraliveinterval", "connecttimeout":
		if _, err := parseSeconds(v); err != nil {
			return err
		}
	case "serveralivecountmax":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			return fmt.Errorf("%q: want a count 0-1000", v)
		}
	case "stricthostkeychecking":
		switch strings.ToLower(v) {
		case "yes", "no", "off", "accept-new", "ask":
		default:
			return fmt.Errorf("%q: want yes, accept-new, no, off or ask", v)
		}
	case "ciphers":
		if strings.Trim(v, "+-^,") == "" {
			return fmt.Errorf("%q: want a list of ciphers", v)
		}
	}
	return nil
}

func parsePort(v string) (uint16, error) {
	p, err := strconv.ParseUint(v, 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("%q: want a number 1-65535", v)
	}
	return uint16(p), nil
}

func parseYesNo(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "true":
		return true, nil
	case "no", "false":
		return false, nil
	}
	return false, fmt.Errorf("%q: want yes or no", v)
}

// parseSeconds reads OpenSSH's time format: a number of seconds, or
// numbers with units s, m, h, d, w ("1m30s").
func parseSeconds(v string) (time.Duration, error) {
	bad := fmt.Errorf("%q: want seconds, as 30 or 1m30s", v)
	if v == "" || len(v) > 32 {
		return 0, bad
	}
	var total time.Duration
	for v != "" {
		i := 0
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, bad
		}
		n, err := strconv.ParseUint(v[:i], 10, 32)
		if err != nil {
			return 0, bad
		}
		unit := time.Second
		v = v[i:]
		if v != "" {
			switch v[0] | 0x20 {
			case 's':
			case 'm':
				unit = time.Minute
			case 'h':
				unit = time.Hour
			case 'd':
				unit = 24 * time.Hour
			case 'w':
				unit = 7 * 24 * time.Hour
			default:
				return 0, bad
			}
			v = v[1:]
		}
		total += time.Duration(n) * unit
		if total > 365*24*time.Hour {
			return 0, bad
		}
	}
	return total, nil
}

// parseJumps parses a ProxyJump list: hops [USER@]HOST[:PORT] or
// ssh://[USER@]HOST[:PORT], separated by commas.
func parseJumps(v string) ([]Target, error) {
	var hops []Target
	for _, h := range strings.Split(v, ",") {
		var t Target
		var err error
		if len(h) >= 6 && strings.EqualFold(h[:6], "ssh://") {
			t, err = ParseTarget(h)
		} else {
			t, err = parseHostSpec(h)
		}
		if err != nil {
			return nil, fmt.Errorf("jump host %q: %v", h, err)
		}
		hops = append(hops, t)
	}
	if len(hops) > maxHops {
		return nil, fmt.Errorf("more than %d jump hosts", maxHops)
	}
	return hops, nil
}

// maxHops bounds a chain of jump hosts, including those that jump host
// configs add.
const maxHops = 8

// matches reports whether a Host line's patterns take host: one pattern
// matches and no negated one does.
func (b *block) matches(host string) bool {
	if b.match {
		return false
	}
	if b.patterns == nil {
		return true
	}
	ok := false
	for _, p := range b.patterns {
		if neg := strings.HasPrefix(p, "!"); neg {
			if wildMatch(p[1:], host) {
				return false
			}
		} else if wildMatch(p, host) {
			ok = true
		}
	}
	return ok
}

// wildMatch matches host against a pattern with '*' (any run of
// characters) and '?' (one character), as ssh_config's Host does.
func wildMatch(p, s string) bool {
	return globMatch(p, s)
}

// globMatch is a plain '*' and '?' matcher.
func globMatch(p, s string) bool {
	star, ss := -1, 0
	i, j := 0, 0
	for j < len(s) {
		switch {
		case i < len(p) && (p[i] == '?' || p[i] == s[j]):
			i++
			j++
		case i < len(p) && p[i] == '*':
			star, ss = i, j
			i++
		case star >= 0:
			i = star + 1
			ss++
			j = ss
		default:
			return false
		}
	}
	for i < len(p) && p[i] == '*' {
		i++
	}
	return i == len(p)
}

// Lookup returns what the config says for host, the name given in the
// target (an alias, matched case-insensitively against Host patterns).
// A nil Config says nothing.
func (c *Config) Lookup(host string) HostConfig {
	var hc HostConfig
	if c == nil {
		return hc
	}
	host = strings.ToLower(host)
	seen := map[string]bool{}
	for i := range c.blocks {
		b := &c.blocks[i]
		if !b.matches(host) {
			continue
		}
		for _, o := range b.opts {
			if o.key == "identityfile" {
				hc.IdentityFiles = append(hc.IdentityFiles, o.args[0])
				continue
			}
			if seen[o.key] {
				continue
			}
			seen[o.key] = true
			v := o.args[0]
			switch o.key {
			case "hostname":
				hc.HostName = v
			case "user":
				hc.User = v
			case "port":
				hc.Port, _ = parsePort(v)
			case "identitiesonly":
				hc.IdentitiesOnly, _ = parseYesNo(v)
			case "proxyjump":
				hc.ProxyJump = v
			case "serveraliveinterval":
				hc.ServerAliveInterval, _ = parseSeconds(v)
			case "serveralivecountmax":
				hc.ServerAliveCountMax, _ = strconv.Atoi(v)
			case "stricthostkeychecking":
				hc.StrictHostKeyChecking = strings.ToLower(v)
				if hc.StrictHostKeyChecking == "off" {
					hc.StrictHostKeyChecking = "no"
				}
			case "userknownhostsfile":
				hc.UserKnownHostsFiles = append([]string(nil), o.args...)
			case "ciphers":
				hc.Ciphers = v
			case "connecttimeout":
				hc.ConnectTimeout, _ = parseSeconds(v)
			}
		}
	}
	return hc
}
