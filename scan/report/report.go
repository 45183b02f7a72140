package report

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan"
	"github.com/portctl/portctl/scan/probe"
)

// Meta describes a scan, for the header of a report.
type Meta struct {
	// Args is the command line, program name first.
	Args []string
	// Start is when the scan began.
	Start time.Time
	// ScanType is "connect", "syn" or "udp" (the scan types nmap's DTD
	// names are accepted too).
	ScanType string
	// Protocol is "tcp", "udp" or "sctp"; empty means the scan type's own
	// ("udp" for a udp scan, "tcp" otherwise).
	Protocol string
	// Ports is the port list of this protocol, in nmap's form
	// ("22,80,1000-2000") when the caller has it, the spec as given
	// otherwise.
	Ports string
	// NumServices is how many ports of this protocol are scanned.
	NumServices int
	// Version is portctl's version.
	Version string
	// More describes the other protocols of a scan over several, such as
	// "-p T:80,U:53".
	More []ScanInfo
}

// ScanInfo describes the part of a scan over one more protocol.
type ScanInfo struct {
	ScanType    string `json:"scan_type"`
	Protocol    string `json:"protocol"`
	Ports       string `json:"ports"`
	NumServices int    `json:"num_services"`
}

// Summary describes how a scan ended, for the footer of a report.
type Summary struct {
	// End is when the scan finished.
	End time.Time
	// Hosts is how many addresses were scanned, HostsUp how many of them
	// are reported up. When both are 0 the writers count the hosts they
	// saw results for.
	Hosts, HostsUp int
	// Elapsed is the scan's duration; 0 means End minus Meta.Start.
	Elapsed time.Duration
	// Exit is "success" or "error"; empty means "success".
	Exit string
	// Error says why the scan stopped, when Exit is "error".
	Error string
}

// Writer writes a report as results stream in. Begin is called once, then
// Result for each result, then End once. The writers of this package are
// safe for concurrent use; each call is written whole.
type Writer interface {
	Begin(Meta) error
	Result(scan.Result) error
	End(Summary) error
}

// HostDoner is implemented by writers that can write a host out before
// End. HostDone tells them that no more results will come for addr; a
// writer that buffers hosts writes it and forgets it, so its memory stays
// small on scans of many hosts.
type HostDoner interface {
	HostDone(addr netip.Addr) error
}

// ErrEnded is returned by a Writer's methods called after End.
var ErrEnded = errors.New("report: writer already ended")

// Multi returns a Writer that passes every call to each of ws in turn. A
// failing writer does not stop the others: the errors are joined. It
// implements HostDoner, passing HostDone to those of ws that implement it.
func Multi(ws ...Writer) Writer {
	return multi(append([]Writer(nil), ws...))
}

type multi []Writer

func (m multi) Begin(meta Meta) error {
	var errs []error
	for _, w := range m {
		errs = append(errs, w.Begin(meta))
	}
	return errors.Join(errs...)
}

func (m multi) Result(r scan.Result) error {
	var errs []error
	for _, w := range m {
		if err := w.Result(r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m multi) End(s Summary) error {
	var errs []error
	for _, w := range m {
		errs = append(errs, w.End(s))
	}
	return errors.Join(errs...)
}

func (m multi) HostDone(addr netip.Addr) error {
	var errs []error
	for _, w := range m {
		if hd, ok := w.(HostDoner); ok {
			errs = append(errs, hd.HostDone(addr))
		}
	}
	return errors.Join(errs...)
}

// serviceName returns the first registry name of port p for proto, or "".
func serviceName(p uint16, proto registry.Protocol) string {
	for _, a := range registry.Builtin().Port(p, proto) {
		if a.Name != "" {
			return a.Name
		}
	}
	return ""
}

// scanInfos returns the scan's protocols, the main one first, with empty
// protocols filled in from the scan type.
func scanInfos(m Meta) []ScanInfo {
	all := append([]ScanInfo{{m.ScanType, m.Protocol, m.Ports, m.NumServices}}, m.More...)
	for i := range all {
		if all[i].Protocol == "" {
			all[i].Protocol = "tcp"
			if all[i].ScanType == "udp" {
				all[i].Protocol = "udp"
			}
		}
	}
	return all
}

// elapsed returns s.Elapsed, or the time from start to s.End.
func elapsed(s Summary, start time.Time) time.Duration {
	if s.Elapsed > 0 || s.End.IsZero() || start.IsZero() {
		return s.Elapsed
	}
	return s.End.Sub(start)
}

// exit returns s.Exit, "success" when empty.
func exit(s Summary) string {
	if s.Exit == "" {
		return "success"
	}
	return s.Exit
}

// hostCounts returns the summary's host counts, or seen hosts all up when
// the summary has none.
func hostCounts(s Summary, seen int) (total, up int) {
	if s.Hosts == 0 && s.HostsUp == 0 {
		return seen, seen
	}
	return s.Hosts, s.HostsUp
}

// ms returns d in milliseconds, rounded to the microsecond.
func ms(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

// ctime formats t as C's ctime does, as nmap's reports show times.
func ctime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.ANSIC)
}

// hostsPhrase says "1 IP address (1 host up)" for nmap's footers.
func hostsPhrase(total, up int) string {
	return fmt.Sprintf("%d IP address%s (%d host%s up)", total, plural(total, "es"), up, plural(up, "s"))
}

func plural(n int, suffix string) string {
	if n == 1 {
		return ""
	}
	return suffix
}

// joinArgs joins a command line with spaces, quoting the arguments a shell
// would split or expand.
func joinArgs(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = a
		if a == "" || strings.ContainsFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_@%+=:,./-", r))
		}) {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(quoted, " ")
}

// versionLine is a detected service's product, version and extra
// information on one line, as nmap prints them: "nginx 1.22.1 (os:
// Debian)".
func versionLine(d *probe.Service) string {
	v := strings.TrimSpace(d.Product + " " + d.Version)
	if x := d.ExtraInfo(); x != "" {
		v = strings.TrimSpace(v + " (" + x + ")")
	}
	return v
}
