package probe

import (
	"strings"
	"time"

	"github.com/portctl/portctl/registry"
)

// Service is what was found answering on a port.
type Service struct {
	// Name is the service, in nmap's vocabulary where it has one:
	// "http", "ssh", "smtp", "imap", "mysql", "domain", "ntp" …, or
	// "unknown" when nothing matched.
	Name string `json:"name"`
	// Product and Version as the server announced them ("nginx",
	// "1.22.1"), empty when it did not.
	Product string `json:"product,omitempty"`
	Version string `json:"version,omitempty"`
	// Extra holds further facts, in the order found ("os": "Debian",
	// "protocol": "2.0", "auth": "none" …).
	Extra []Field `json:"extra,omitempty"`
	// TLS is set when the service spoke TLS; the fields above then name
	// what runs inside it.
	TLS *TLSInfo `json:"tls,omitempty"`
	// StartTLS is set when a mail service (SMTP, POP3, IMAP) was upgraded
	// to TLS with its STARTTLS command: the handshake and certificate.
	StartTLS *TLSInfo `json:"starttls,omitempty"`
	// HTTP is set for HTTP services (inside TLS too).
	HTTP *HTTPInfo `json:"http,omitempty"`
	// Evidence is the bytes that identified the service (or, for
	// "unknown", the first bytes received), escaped as Escape does.
	Evidence string `json:"evidence,omitempty"`
	// Probe names the probe whose answer matched: "banner" for what the
	// server sent unasked, otherwise the probe's name.
	Probe string `json:"probe,omitempty"`
	// Confidence is from 0 to 10, as nmap's conf: 10 for a protocol
	// exchange that only this service completes, less for a weaker
	// match, 3 for a guess from the port number alone.
	Confidence int `json:"confidence"`
	// Findings are what deserves a warning.
	Findings []Finding `json:"findings,omitempty"`
	// CPE names, when a match gave them (nmap's templates do).
	CPE []string `json:"cpe,omitempty"`
}

// Field is one named fact.
type Field struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Get returns the value of the first field named key, or "".
func (s *Service) Get(key string) string {
	for _, f := range s.Extra {
		if f.Key == key {
			return f.Value
		}
	}
	return ""
}

// add appends a field when value is not empty.
func (s *Service) add(key, value string) {
	if value != "" {
		s.Extra = append(s.Extra, Field{key, value})
	}
}

// ExtraInfo returns the fields joined for a one-line display, as nmap's
// extrainfo: "os: Debian; protocol: 2.0".
func (s *Service) ExtraInfo() string {
	var b strings.Builder
	for i, f := range s.Extra {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Key)
		b.WriteString(": ")
		b.WriteString(f.Value)
	}
	return b.String()
}

// Known reports whether the service was identified.
func (s *Service) Known() bool { return s.Name != "" && s.Name != Unknown }

// Unknown is the Name of a service nothing matched.
const Unknown = "unknown"

// TLSInfo describes a TLS handshake.
type TLSInfo struct {
	Version string `json:"version"` // "TLS 1.3"
	Cipher  string `json:"cipher"`  // Go's name for the suite
	ALPN    string `json:"alpn,omitempty"`
	// Legacy lists the old versions the server also accepts, "TLS 1.0"
	// and "TLS 1.1", when checked.
	Legacy []string `json:"legacy,omitempty"`
	// Cert is the leaf certificate the server sent.
	Cert *CertInfo `json:"certificate,omitempty"`
}

// CertInfo is the part of a certificate a person checks.
type CertInfo struct {
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	SANs       []string  `json:"sans,omitempty"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	SelfSigned bool      `json:"self_signed"`
	// DaysLeft is whole days until NotAfter, negative once expired,
	// counted from the time of the probe.
	DaysLeft int `json:"days_left"`
}

// HTTPInfo is what an HTTP answer to "GET /" said.
type HTTPInfo struct {
	Status   int      `json:"status"`
	Server   string   `json:"server,omitempty"`
	Title    string   `json:"title,omitempty"`
	Location string   `json:"location,omitempty"`
	Headers  []Field  `json:"headers,omitempty"`
	Protocol string   `json:"protocol,omitempty"` // "HTTP/1.1"
	Alt      []string `json:"alt_svc,omitempty"`  // Alt-Svc protocols ("h3")
}

// Finding is something about a service worth a warning.
type Finding struct {
	// Severity is registry's scale: SevHigh for what exposes data or
	// passwords now, SevMedium for a weakness, SevInfo for a fact.
	Severity registry.Severity `json:"severity"`
	// ID is stable, for scripts: "tls-legacy", "cert-expired",
	// "cert-expiring", "cert-self-signed", "plaintext-login",
	// "login-before-tls", "no-auth", "default-community",
	// "rdp-standard-security".
	ID      string `json:"id"`
	Message string `json:"message"`
}
