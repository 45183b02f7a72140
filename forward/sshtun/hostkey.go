package sshtun

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrHostKeyUnknown is wrapped when no known_hosts file knows the server's
// key and new keys are not accepted.
var ErrHostKeyUnknown = errors.New("host key unknown")

// ErrHostKeyChanged is wrapped when known_hosts has another key for the
// server (or the key is revoked).
var ErrHostKeyChanged = errors.New("host key changed")

// ErrKnownHosts is wrapped when a known_hosts file cannot be read, parsed
// or written.
var ErrKnownHosts = errors.New("known_hosts")

// HostKeyError is a host key known_hosts does not vouch for. It wraps
// ErrHostKeyUnknown or ErrHostKeyChanged.
type HostKeyError struct {
	Host      string   // host:port as looked up
	Presented string   // the server's key: type and SHA256 fingerprint
	Expected  []string // the known keys: type, SHA256 fingerprint, file:line
	Files     []string // the known_hosts files read
	Changed   bool
}

// Error says which key was presented, which were expected and what to do.
func (e *HostKeyError) Error() string {
	if e.Changed {
		return fmt.Sprintf("host key for %s has CHANGED: known_hosts expects %s, the server presented %s; refusing to connect (someone may be intercepting the connection; if the key really changed, remove the old one: ssh-keygen -R '%s')",
			e.Host, strings.Join(e.Expected, ", "), e.Presented, knownhosts.Normalize(e.Host))
	}
	where := "there is no known_hosts file"
	if len(e.Files) > 0 {
		where = "not in " + strings.Join(e.Files, ", ")
	}
	return fmt.Sprintf("host key of %s is unknown (%s; %s): check it and add it, or accept new keys (--accept-new, StrictHostKeyChecking=accept-new)",
		e.Host, e.Presented, where)
}

// Unwrap returns ErrHostKeyChanged or ErrHostKeyUnknown.
func (e *HostKeyError) Unwrap() error {
	if e.Changed {
		return ErrHostKeyChanged
	}
	return ErrHostKeyUnknown
}

// describeKey is "ED25519 SHA256:...".
func describeKey(k ssh.PublicKey) string {
	t := strings.TrimPrefix(k.Type(), "ssh-")
	t = strings.ToUpper(strings.SplitN(t, "-", 2)[0])
	return t + " " + ssh.FingerprintSHA256(k)
}

// hostKeys checks server keys against an endpoint's known_hosts files. It
// is safe for concurrent use (AcceptNew writes one line at a time).
type hostKeys struct {
	files  []string // user files; the first takes new keys
	global []string
	strict string
}

var appendMu sync.Mutex

// existing returns the files that exist, user files first.
func (h *hostKeys) existing() []string {
	var out []string
	for _, f := range append(append([]string(nil), h.files...), h.global...) {
		if st, err := os.Stat(f); err == nil && st.Mode().IsRegular() {
			out = append(out, f)
		}
	}
	return out
}

// load parses the existing files; nil when there are none.
func (h *hostKeys) load() (ssh.HostKeyCallback, []string, error) {
	files := h.existing()
	if len(files) == 0 {
		return nil, nil, nil
	}
	cb, err := knownhosts.New(files...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrKnownHosts, err)
	}
	return cb, files, nil
}

// algorithms returns the host key algorithms to ask the server for: those
// of the keys known for addr, so that a server with several keys shows
// one we can check. Nil when none is known (any algorithm).
func (h *hostKeys) algorithms(addr string) []string {
	cb, _, err := h.load()
	if err != nil || cb == nil {
		return nil
	}
	probe, _ := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	var ke *knownhosts.KeyError
	if err := cb(addr, placeholderAddr(addr), probe); !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, w := range ke.Want {
		for _, a := range algorithmsForKey(w.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func algorithmsForKey(t string) []string {
	if t == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{t}
}

// placeholderAddr is a net.Addr for addr, for knownhosts' IP check.
func placeholderAddr(addr string) net.Addr {
	ap, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil || ap.IP == nil {
		return &net.TCPAddr{IP: net.IPv4zero}
	}
	return ap
}

// callback checks a server key for the handshake.
func (h *hostKeys) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	cb, files, err := h.load()
	if err != nil {
		return err
	}
	if cb != nil {
		err = cb(hostname, remote, key)
		if err == nil {
			return nil
		}
	}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case cb == nil, errors.As(err, &ke) && len(ke.Want) == 0:
		// Unknown.
	case errors.As(err, &ke):
		he := &HostKeyError{Host: hostname, Presented: describeKey(key), Files: files, Changed: true}
		for _, w := range ke.Want {
			he.Expected = append(he.Expected, fmt.Sprintf("%s (%s:%d)", describeKey(w.Key), w.Filename, w.Line))
		}
		return he
	case errors.As(err, &re):
		return &HostKeyError{Host: hostname, Presented: describeKey(key) + " (revoked)", Files: files, Changed: true,
			Expected: []string{fmt.Sprintf("not this revoked key (%s:%d)", re.Revoked.Filename, re.Revoked.Line)}}
	default:
		return fmt.Errorf("%w: %w", ErrKnownHosts, err)
	}
	if h.strict != "accept-new" && h.strict != "no" {
		return &HostKeyError{Host: hostname, Presented: describeKey(key), Files: files}
	}
	if len(h.files) == 0 {
		return nil // accepted, but nowhere to remember it
	}
	return appendKnownHost(h.files[0], hostname, key)
}

// appendKnownHost adds a line for hostname's key to file, making the file
// (0600) and its directory (0700) when missing.
func appendKnownHost(file, hostname string, key ssh.PublicKey) error {
	appendMu.Lock()
	defer appendMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrKnownHosts, err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrKnownHosts, err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key) + "\n"
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		// A last line without its newline would swallow ours.
		last := make([]byte, 1)
		if r, err := os.Open(file); err == nil {
			if _, err := r.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
				line = "\n" + line
			}
			r.Close()
		}
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("%w: %s: %w", ErrKnownHosts, file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrKnownHosts, file, err)
	}
	return nil
}
