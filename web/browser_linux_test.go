package web

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/portctl/portctl/audit"
	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/portmap"
)

// artifactDir is where the browser tests leave their screenshots:
// $PORTCTL_ARTIFACTS, or artifacts/web at the top of the repository.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("PORTCTL_ARTIFACTS")
	if dir == "" {
		wd, _ := os.Getwd()
		dir = filepath.Join(filepath.Dir(wd), "artifacts")
	}
	dir = filepath.Join(dir, "web")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serveMachine serves this machine's (this namespace's) real socket table
// on a loopback port, as `portctl serve` does.
func serveMachine(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	src := opts.Source
	if src == nil {
		src = Machine{StatsDir: t.TempDir()}
	}
	if opts.Interval == 0 {
		opts.Interval = 2 * time.Second
	}
	s, ts := newTestServer(t, src, opts)
	return s, ts.URL
}

// browser starts Debian's chromium headless, as nothing else may fetch a
// browser here; the test skips without it.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("needs Debian's chromium (apt install chromium; test-deps.sh installs it)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelC()
		cancelA()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser, for as long as ctx lives
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(artifactDir(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Error(err)
	}
	t.Logf("screenshot: %s", path)
}

// evalJS evaluates a JavaScript expression.
func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// do runs browser actions, failing the test on error.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// waitJS waits until a JavaScript expression is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")")); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			screenshot(t, ctx, "failed-"+strings.ReplaceAll(t.Name(), "/", "-"))
			t.Fatalf("waited 20 s for %s (%s)", what, expr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// click waits for the element a CSS selector names and clicks it, in one
// step inside the page: the live table re-renders its rows as samples
// arrive, so a node found by one DevTools call may be gone by the next.
func click(t *testing.T, ctx context.Context, what, selector string) {
	t.Helper()
	sel, _ := json.Marshal(selector)
	waitJS(t, ctx, what, `(() => { const e = document.querySelector(`+string(sel)+`); if (e) e.click(); return e; })()`)
}

// TestIntegrationBrowser drives the dashboard in a real browser: the page
// loads, a listener opened afterwards appears without a reload, a process
// whose name and command line are HTML shows them as text, filters work,
// the port page shows the registry, the audit and ephemeral pages render,
// a phone-sized screen works, and the kill button stops the holder after a
// confirmation.
func TestIntegrationBrowser(t *testing.T) {
	if testnet.Isolated(t) {
		return
	}
	// The test's processes run as root: the policy sets that finding aside.
	policy, err := audit.ParsePolicy([]byte("except:\n  - rule: root-unprivileged-port\n    reason: the test runs as root\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, base := serveMachine(t, Options{Interval: 200 * time.Millisecond, Kill: killByPID(t), Policy: policy})
	ctx := browser(t)
	// The kill button's confirmation is a prompt: answer it with the port.
	chromedp.Listen(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true, PromptText: "6379"})
		}
	})
	do(t, ctx, chromedp.Navigate(base+"/"))
	waitJS(t, ctx, "the live table", `document.querySelector('#status').textContent.includes('sockets')`)
	if evalJS[bool](t, ctx, `!document.querySelector('#nav-guard').hidden`) {
		t.Errorf("the Guard link shows without GuardEvents")
	}
	screenshot(t, ctx, "1-loaded")

	// A Redis-like listener, opened after the page loaded, by a process
	// whose name and command line are HTML.
	pid, _ := helper(t, "<img src=x>", // a command name cannot hold a "/"
		[]string{"PORTCTL_WEB_HELPER=listen", "PORTCTL_WEB_ADDR=0.0.0.0:6379"},
		"<script>window.pwned=1</script>", "<img src=x onerror=window.pwned=2>")
	const row = `document.querySelector('#sockets tbody tr[data-port="6379"]')`
	waitJS(t, ctx, "the new listener's row", row)
	type cellInfo struct {
		Name, Cmd, PID string
		Elements       int
		Pwned          bool
	}
	cell := evalJS[cellInfo](t, ctx, `(() => { const r = `+row+`; return {
		Name: r.querySelector('.pname').textContent,
		Cmd: r.querySelector('.cmd').textContent,
		PID: r.children[5].textContent,
		Elements: r.querySelectorAll('b, script, img').length,
		Pwned: window.pwned !== undefined }; })()`)
	if cell.Name != "<img src=x>" || !strings.Contains(cell.Cmd, "<script>window.pwned=1</script> <img src=x onerror=window.pwned=2>") || cell.Elements != 0 || cell.Pwned {
		t.Errorf("the HTML-named process's row: %+v; want its name and command line as text, no elements made from them, nothing run", cell)
	}
	if cell.PID != strconv.Itoa(pid) {
		t.Errorf("the row's PID = %q; want %d", cell.PID, pid)
	}
	// The reach column: this namespace has no ruleset and no default
	// route, so the LAN (its veth's /30) reaches 0.0.0.0:6379.
	waitJS(t, ctx, "the listener's reach", row+`.querySelector('td[data-label="Reach"]').textContent === 'LAN'`)
	screenshot(t, ctx, "2-live-listener")

	// Filters: text, then protocol.
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#filter-text"), "6379"))
	waitJS(t, ctx, "the text filter", `document.querySelectorAll('#sockets tbody tr').length === 1`)
	setSelect := func(v string) {
		evalJS[chromedp.Void](t, ctx, `(() => { const s = document.querySelector('#filter-proto'); s.value = '`+v+`'; s.dispatchEvent(new Event('input')); })()`)
	}
	setSelect("udp")
	waitJS(t, ctx, "the protocol filter", `document.querySelectorAll('#sockets tbody tr').length === 0`)
	screenshot(t, ctx, "3-filtered")
	setSelect("")
	waitJS(t, ctx, "the filter undone", `document.querySelectorAll('#sockets tbody tr').length === 1`)

	// The port page, from the row's link.
	click(t, ctx, "the row's link", `#sockets tbody tr[data-port="6379"] a`)
	waitJS(t, ctx, "the port page", `document.querySelector('#assignments') && document.querySelector('#holders td')`)
	portPage := evalJS[string](t, ctx, `document.querySelector('#view-port').textContent`)
	for _, want := range []string{"Port 6379", "redis", "<img src=x>", "IANA registry"} {
		if !strings.Contains(portPage, want) {
			t.Errorf("the port page lacks %q:\n%s", want, portPage)
		}
	}
	screenshot(t, ctx, "4-port-page")

	// The audit page lists the listener facing the network.
	do(t, ctx, chromedp.Navigate(base+"/#/audit"))
	waitJS(t, ctx, "the audit findings", `[...document.querySelectorAll('.finding')].some(f => f.textContent.includes('6379'))`)
	waitJS(t, ctx, "the findings the policy set aside", `[...document.querySelectorAll('.excepted')].some(f => f.textContent.includes('the test runs as root'))`)
	screenshot(t, ctx, "5-audit")

	// The ephemeral page draws its chart.
	do(t, ctx, chromedp.Navigate(base+"/#/ephemeral"))
	waitJS(t, ctx, "the ephemeral chart", `document.querySelector('#chart svg polyline')`)
	screenshot(t, ctx, "6-ephemeral")

	// A phone-sized screen: the table turns into cards, nothing overflows.
	do(t, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)), chromedp.Navigate(base+"/#/"))
	waitJS(t, ctx, "the table on a phone", row)
	type phoneInfo struct{ HeadHidden, Fits bool }
	phone := evalJS[phoneInfo](t, ctx, `({HeadHidden: getComputedStyle(document.querySelector('#sockets thead')).display === 'none',
		Fits: document.documentElement.scrollWidth <= window.innerWidth + 1})`)
	if !phone.HeadHidden || !phone.Fits {
		t.Errorf("on a 390 px screen: %+v; want the table as cards, no sideways scrolling", phone)
	}
	screenshot(t, ctx, "7-phone")
	do(t, ctx, chromedp.EmulateViewport(1280, 900))

	// Kill from the port page: the confirmation asks for the port.
	do(t, ctx, chromedp.Navigate(base+"/#/port/6379"))
	click(t, ctx, "the kill button", "#kill")
	waitJS(t, ctx, "the kill result", `document.querySelector('#kill-result').textContent.includes('free')`)
	screenshot(t, ctx, "8-killed")
	if !processGone(pid) {
		t.Errorf("the holder %d still runs after the kill button", pid)
	}
	// The closed listener leaves the live table without a reload.
	do(t, ctx, chromedp.Navigate(base+"/#/"))
	evalJS[chromedp.Void](t, ctx, `(() => { const f = document.querySelector('#filter-text'); f.value = ''; f.dispatchEvent(new Event('input')); })()`)
	waitJS(t, ctx, "the closed listener's row to go", `!`+row+` && document.querySelectorAll('#sockets tbody tr').length > 0`)
	screenshot(t, ctx, "9-closed")
}

// TestIntegrationBrowserFirewall serves a namespace (as serve --netns
// does) whose input chain drops by default and lets 445/tcp in from
// anywhere, with a block of portctl's own table: the socket table's reach
// column says who may reach each listener, and the firewall page names
// the rules, their owners and the block.
func TestIntegrationBrowserFirewall(t *testing.T) {
	n := testnet.NewNamespace(t)
	ns := "/run/netns/" + n.Name
	testnet.Run(t, "ip", "-n", n.Name, "route", "add", "default", "via", n.Host.String())
	n.Nft(t, `add chain inet t in { type filter hook input priority 0 ; policy drop ; }`)
	n.Nft(t, `add rule inet t in iif lo accept`)
	n.Nft(t, `add rule inet t in tcp dport 445 accept comment "smb-for-all"`)
	testnet.ListenIn(t, n.Name, netip.MustParseAddrPort("0.0.0.0:445"))
	testnet.ListenIn(t, n.Name, netip.MustParseAddrPort("127.0.0.1:8080"))
	if err := firewall.Block(context.Background(), firewall.Options{NetNS: ns}, firewall.PortBlock{Proto: "tcp", Ports: [2]uint16{9999, 9999}}); err != nil {
		t.Fatalf("fw block 9999 in %s: %v", n.Name, err)
	}
	_, base := serveMachine(t, Options{Source: Machine{NetNS: ns, StatsDir: t.TempDir()}, Interval: 200 * time.Millisecond})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(base+"/"))
	reach := func(port string) string {
		return `document.querySelector('#sockets tbody tr[data-port="` + port + `"] td[data-label="Reach"]')`
	}
	waitJS(t, ctx, "445 reachable from the internet", reach("445")+`?.textContent === 'internet'`)
	waitJS(t, ctx, "8080 from loopback only", reach("8080")+`?.textContent === 'loopback only'`)
	screenshot(t, ctx, "10-reach-column")

	do(t, ctx, chromedp.Navigate(base+"/#/firewall"))
	const smb = `document.querySelector('#fw-ports tr[data-port="445"]')`
	waitJS(t, ctx, "the firewall page's row for 445", smb)
	page := evalJS[string](t, ctx, `document.querySelector('#view-firewall').textContent`)
	for _, want := range []string{"inet t in handle", "smb-for-all", "written by hand", "let in", "inet portctl", "9999", "until unblocked"} {
		if !strings.Contains(page, want) {
			t.Errorf("the firewall page lacks %q:\n%s", want, page)
		}
	}
	internet := evalJS[string](t, ctx, smb+`.querySelector('td[data-class="internet"]').textContent`)
	if !strings.Contains(internet, "let in") || !strings.Contains(internet, "smb-for-all") {
		t.Errorf("445 from the internet: %q; want let in, by the rule commented smb-for-all", internet)
	}
	screenshot(t, ctx, "11-firewall")

	// On a phone the page's ports become cards, and nothing overflows.
	do(t, ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)), chromedp.Navigate(base+"/#/firewall"))
	waitJS(t, ctx, "the firewall page on a phone", smb)
	if fits := evalJS[bool](t, ctx, `document.documentElement.scrollWidth <= window.innerWidth + 1`); !fits {
		t.Errorf("the firewall page scrolls sideways on a 390 px screen")
	}
	screenshot(t, ctx, "12-firewall-phone")
}

// TestIntegrationBrowserGuard serves with GuardEvents (serve
// --guard-events): the page has a Guard view, which says the file is not
// there yet, then shows an event written to it, its text as text.
func TestIntegrationBrowserGuard(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.jsonl")
	s, ts := newTestServer(t, &tableSource{}, Options{GuardEvents: path, Interval: 200 * time.Millisecond})
	s.guard.poll = 20 * time.Millisecond
	fctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.FollowGuard(fctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(ts.URL+"/#/guard"))
	waitJS(t, ctx, "the Guard link", `!document.querySelector('#nav-guard').hidden`)
	waitJS(t, ctx, "the missing file said", `document.querySelector('#guard-error')?.textContent.includes('no such file')`)

	appendFile(t, path, `{"time":"2026-12-07T12:00:03Z","type":"scan","source":"10.9.0.2","kind":"syn","proto":"tcp","ports":[1,2,3,4],"probes":4,"failures":4}`+"\n"+
		`{"time":"2026-12-07T12:00:04Z","type":"error","message":"<img src=x onerror=window.pwned=1>"}`+"\n")
	const scan = `document.querySelector('#guard-events tr[data-type="scan"]')`
	waitJS(t, ctx, "the scan's row", scan)
	type rowInfo struct {
		Cells    []string
		Message  string
		Elements int
		Pwned    bool
		Error    bool
	}
	got := evalJS[rowInfo](t, ctx, `({Cells: [...`+scan+`.children].map(c => c.textContent),
		Message: document.querySelector('#guard-events tr[data-type="error"] td[data-label="Message"]').textContent,
		Elements: document.querySelectorAll('#guard-events img').length, Pwned: window.pwned !== undefined,
		Error: !!document.querySelector('#guard-error')})`)
	if len(got.Cells) != 6 || got.Cells[1] != "scan" || got.Cells[2] != "10.9.0.2" || got.Cells[3] != "syn" || got.Cells[4] != "tcp/1,2,3,4" ||
		!strings.Contains(got.Cells[5], "4 of 4 first contacts failed") {
		t.Errorf("the scan's row: %q; want time, scan, 10.9.0.2, syn, tcp/1,2,3,4, 4 of 4 first contacts failed", got.Cells)
	}
	if got.Message != "<img src=x onerror=window.pwned=1>" || got.Elements != 0 || got.Pwned || got.Error {
		t.Errorf("the error's row: %+v; want its message as text, nothing run, and the file's error gone", got)
	}
	screenshot(t, ctx, "13-guard")
}

// mapSource is a table the test writes, with the mappings of the
// running `portctl map add` processes it publishes itself.
type mapSource struct {
	*tableSource
	keepers []portmap.Keeper
}

func (m *mapSource) Mappings(context.Context) []portmap.Keeper { return m.keepers }

// TestIntegrationBrowserMap: the Port maps view lists each kept mapping
// with its renewals and state, a failing renewal marked, a description as
// text.
func TestIntegrationBrowserMap(t *testing.T) {
	now := time.Now()
	in := netip.MustParseAddrPort("192.168.1.10:8080")
	src := &mapSource{tableSource: &tableSource{}, keepers: []portmap.Keeper{{PID: 4242, Gateway: netip.MustParseAddr("192.168.1.1"), Mappings: []portmap.Kept{
		{Mapping: portmap.Mapping{Protocol: portmap.PCP, Proto: "tcp", Internal: in, External: netip.MustParseAddrPort("203.0.113.7:8080"),
			Lease: 2 * time.Hour, Description: "<img src=x onerror=window.pwned=1>"}, Since: now.Add(-time.Hour), Renewed: now.Add(-30 * time.Second), Renewals: 3},
		{Mapping: portmap.Mapping{Protocol: portmap.PCP, Proto: "udp", Internal: in, External: netip.MustParseAddrPort("203.0.113.7:8080"),
			Lease: 2 * time.Hour}, Since: now.Add(-time.Hour), Renewed: now.Add(-time.Hour), Error: "no answer"},
	}}}}
	_, ts := newTestServer(t, src, Options{})
	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(ts.URL+"/#/map"))
	const tcp = `document.querySelector('#mappings tr[data-proto="tcp"]')`
	waitJS(t, ctx, "the tcp mapping's row", tcp)
	type view struct {
		TCP, UDP []string
		Pwned    bool
		Images   int
	}
	got := evalJS[view](t, ctx, `({TCP: [...`+tcp+`.children].map(c => c.textContent),
		UDP: [...document.querySelector('#mappings tr[data-proto="udp"]').children].map(c => c.textContent),
		Pwned: window.pwned !== undefined, Images: document.querySelectorAll('#mappings img').length})`)
	if len(got.TCP) != 8 || got.TCP[0] != "4242" || got.TCP[1] != "tcp/203.0.113.7:8080" || got.TCP[2] != "192.168.1.10:8080" ||
		got.TCP[3] != "pcp at 192.168.1.1" || got.TCP[4] != "2 h" || !strings.Contains(got.TCP[5], "3 renewals") || got.TCP[6] != "kept" ||
		got.TCP[7] != "<img src=x onerror=window.pwned=1>" {
		t.Errorf("the tcp mapping's row: %q", got.TCP)
	}
	if len(got.UDP) != 8 || got.UDP[6] != "renewal failing: no answer" {
		t.Errorf("the udp mapping's row: %q; want its renewal failing", got.UDP)
	}
	if got.Pwned || got.Images != 0 {
		t.Errorf("the description ran as HTML: %+v", got)
	}
	screenshot(t, ctx, "14-map")
}
