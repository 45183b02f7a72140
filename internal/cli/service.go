package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/portctl/portctl/internal/term"
	svcprobe "github.com/portctl/portctl/scan/probe"
	"github.com/portctl/portctl/scan/probe/nmapdb"
)

// nmapProbeFiles are where Debian's and nmap's own installs put the
// service probes; the first that exists is read when --probes is not
// given.
var nmapProbeFiles = []string{"/usr/share/nmap/nmap-service-probes", "/usr/local/share/nmap/nmap-service-probes"}

// loadProbeDB reads the nmap-service-probes file at path, or, when path
// is empty, the first of nmapProbeFiles that exists (none is fine: the
// built-in probes work alone).
func loadProbeDB(path string) (*nmapdb.DB, error) {
	explicit := path != ""
	if !explicit {
		for _, p := range nmapProbeFiles {
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			}
		}
		if path == "" {
			return nil, nil
		}
	}
	f, err := os.Open(path)
	if err != nil {
		if explicit && errors.Is(err, fs.ErrNotExist) {
			return nil, usageErrorf("--probes %s: no such file; want a file in nmap's service-probes format", path)
		}
		return nil, fmt.Errorf("probes: %w", err)
	}
	defer f.Close()
	db, err := nmapdb.Parse(f)
	if err == nil && len(db.Probes) == 0 {
		err = errors.New("no Probe line")
	}
	if err != nil {
		if explicit {
			return nil, usageErrorf("--probes %s: %v; want a file in nmap's service-probes format", path, err)
		}
		return nil, fmt.Errorf("probes %s: %w", path, err)
	}
	return db, nil
}

// serviceLabel is how a detected service is named in a table: nmap's
// "ssl/http" for a service inside TLS.
func serviceLabel(s *svcprobe.Service) string {
	if s.TLS != nil && s.Name != "ssl" {
		return "ssl/" + s.Name
	}
	return s.Name
}

// versionCell is a detected service's product, version and extra facts
// for a table cell.
func versionCell(s *svcprobe.Service) string {
	v := strings.TrimSpace(s.Product + " " + s.Version)
	var extra []string
	for _, f := range s.Extra {
		switch f.Key {
		case "os", "protocol", "info", "build", "auth", "mode", "stratum", "versions":
			extra = append(extra, f.Key+" "+f.Value)
		}
	}
	if s.TLS != nil {
		extra = append(extra, s.TLS.Version)
	}
	if len(extra) > 0 {
		v = strings.TrimSpace(v + " (" + strings.Join(extra, ", ") + ")")
	}
	if !s.Known() && s.Evidence != "" {
		v = "sent: " + s.Evidence
	}
	return v
}

// printFindings writes one indented line per finding, prefixed by where.
func printFindings(w io.Writer, st term.Style, where string, fs []svcprobe.Finding) {
	for _, f := range fs {
		fmt.Fprintf(w, "  %s %s %s: %s\n", where, severityLabel(st, f.Severity), f.ID, f.Message)
	}
}

// printServiceDetail writes everything detection found about one port, a
// fact a line, for `check --service`.
func printServiceDetail(w io.Writer, st term.Style, s *svcprobe.Service) {
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-13s %s\n", k, v)
		}
	}
	line("service", serviceLabel(s))
	line("product", strings.TrimSpace(s.Product+" "+s.Version))
	for _, f := range s.Extra {
		line(f.Key, f.Value)
	}
	for _, t := range []*svcprobe.TLSInfo{s.TLS, s.StartTLS} {
		if t == nil {
			continue
		}
		tls := t.Version + ", " + t.Cipher
		if t.ALPN != "" {
			tls += ", ALPN " + t.ALPN
		}
		if t == s.StartTLS {
			tls += " (after STARTTLS)"
		}
		line("tls", tls)
		if len(t.Legacy) > 0 {
			line("tls legacy", strings.Join(t.Legacy, ", ")+" also accepted")
		}
		if c := t.Cert; c != nil {
			line("subject", c.Subject)
			line("sans", strings.Join(c.SANs, ", "))
			issuer := c.Issuer
			if c.SelfSigned {
				issuer += " (self-signed)"
			}
			line("issuer", issuer)
			left := fmt.Sprintf("%d days left", c.DaysLeft)
			if c.DaysLeft < 0 {
				left = st.Red(fmt.Sprintf("expired %d days ago", -c.DaysLeft))
			}
			line("valid", fmt.Sprintf("%s to %s (%s)", c.NotBefore.Format(time.DateOnly), c.NotAfter.Format(time.DateOnly), left))
		}
	}
	if h := s.HTTP; h != nil {
		if h.Status > 0 {
			line("http", fmt.Sprintf("%s %d", h.Protocol, h.Status))
		} else {
			line("http", h.Protocol)
		}
		line("title", h.Title)
		for _, f := range h.Headers {
			line(strings.ToLower(f.Key), f.Value)
		}
	}
	line("evidence", s.Evidence)
	line("probe", s.Probe)
	line("confidence", fmt.Sprintf("%d/10", s.Confidence))
	printFindings(w, st, "!", s.Findings)
}
