package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/portctl/portctl/guard/flood"
	"github.com/portctl/portctl/internal/term"
)

// guardStatus is what `portctl guard --status --json` prints: the
// namespace's Status with the advice drawn from it. Its field names are
// stable.
type guardStatus struct {
	flood.Status
	Advice []flood.Advice `json:"advice"`
}

// runGuardStatus prints the SYN-flood signs of the namespace (netnsPath "" = this process's) as a table, or JSON with asJSON.
func runGuardStatus(ctx context.Context, streams *term.IO, netnsPath string, asJSON bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	st, err := flood.Read(ctx, flood.Options{NetNS: netnsPath, Processes: true})
	if err != nil {
		return err
	}
	out := guardStatus{Status: st, Advice: flood.Advise(st, nil)}
	if out.Advice == nil {
		out.Advice = []flood.Advice{}
	}
	if asJSON {
		return writeJSON(streams.Out, out)
	}
	printGuardStatus(streams, out)
	return nil
}

// floodCounters are the rows of the counters table: the kernel's name, the
// value and what it counts.
var floodCounters = []struct {
	name  string
	value func(flood.Counters) uint64
	means string
}{
	{"ListenOverflows", func(c flood.Counters) uint64 { return c.ListenOverflows }, "connections a full accept queue turned away"},
	{"ListenDrops", func(c flood.Counters) uint64 { return c.ListenDrops }, "SYNs and ACKs listeners dropped, overflows included"},
	{"SyncookiesSent", func(c flood.Counters) uint64 { return c.SyncookiesSent }, "SYN-ACKs sent with a SYN cookie: the SYN queue was full"},
	{"SyncookiesRecv", func(c flood.Counters) uint64 { return c.SyncookiesRecv }, "ACKs with a valid cookie: clients let in by cookies"},
	{"SyncookiesFailed", func(c flood.Counters) uint64 { return c.SyncookiesFailed }, "ACKs with a cookie that did not check out"},
	{"TCPReqQFullDrop", func(c flood.Counters) uint64 { return c.TCPReqQFullDrop }, "SYNs dropped for a full SYN queue, cookies off"},
	{"TCPReqQFullDoCookies", func(c flood.Counters) uint64 { return c.TCPReqQFullDoCookies }, "SYNs answered with a cookie for a full SYN queue"},
	{"PassiveOpens", func(c flood.Counters) uint64 { return c.PassiveOpens }, "connections listeners took in"},
}

func printGuardStatus(streams *term.IO, s guardStatus) {
	w, st := streams.Out, streams.Style()
	fmt.Fprintf(w, "%s in network namespace %s (counted %s)\n\n", st.Bold("SYN-flood signs"), s.NetNS, flood.Since(s.Status))
	t := term.NewTable("COUNTER", "VALUE", "COUNTS")
	for _, c := range floodCounters {
		v := strconv.FormatUint(c.value(s.Counters), 10)
		if c.value(s.Counters) > 0 && c.name != "PassiveOpens" && c.name != "SyncookiesRecv" {
			v = st.Yellow(v)
		}
		t.Row(c.name, v, c.means)
	}
	t.Render(w, streams.Width(), st)
	set := s.Settings
	fmt.Fprintf(w, "\n%s net.ipv4.tcp_syncookies=%s %s, net.ipv4.tcp_max_syn_backlog=%s, net.core.somaxconn=%s\n",
		st.Bold("Settings:"), settingText(set.Syncookies), st.Dim(syncookiesMeaning(set.Syncookies)), settingText(set.MaxSynBacklog), settingText(set.Somaxconn))

	fmt.Fprintf(w, "\n%s %d\n", st.Bold("TCP listeners:"), len(s.Listeners))
	if len(s.Listeners) > 0 {
		lt := term.NewTable("LOCAL", "PROCESS", "QUEUE", "BACKLOG", "STATE").Indent("  ")
		for _, l := range s.Listeners {
			proc := ""
			if l.Process != "" {
				proc = fmt.Sprintf("%s/%d", l.Process, l.PID)
			}
			state := ""
			switch {
			case l.Full():
				state = st.Red("full")
			case l.NearlyFull():
				state = st.Yellow("nearly full")
			}
			lt.Row(l.Local.String(), proc, strconv.FormatUint(uint64(l.Queue), 10), strconv.FormatUint(uint64(l.Backlog), 10), state)
		}
		lt.Render(w, streams.Width(), st)
	}

	if len(s.Advice) == 0 {
		fmt.Fprintf(w, "\n%s none: no queue is full and no flood was counted\n", st.Bold("Advice:"))
		return
	}
	fmt.Fprintf(w, "\n%s\n", st.Bold("Advice:"))
	at := term.NewTable().Indent("  ")
	for _, a := range s.Advice {
		at.Row("-", a.Text)
	}
	at.Render(w, streams.Width(), st)
}

// settingText prints a setting, or "unknown" for -1.
func settingText(v int) string {
	if v < 0 {
		return "unknown"
	}
	return strconv.Itoa(v)
}

// syncookiesMeaning says what a tcp_syncookies value does.
func syncookiesMeaning(v int) string {
	switch v {
	case 0:
		return "(off)"
	case 1:
		return "(when the SYN queue is full)"
	case 2:
		return "(always)"
	}
	return ""
}
