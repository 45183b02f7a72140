package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portctl/portctl/forward"
	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// tableSource serves a socket table the test writes: captured data for the
// handler's logic, as testdata is for a parser. The tests against the
// machine's real table are the TestIntegration ones.
type tableSource struct {
	mu     sync.Mutex
	socks  []sockets.Socket
	tables int // calls of Table
}

func (t *tableSource) set(socks ...sockets.Socket) {
	t.mu.Lock()
	t.socks = socks
	t.mu.Unlock()
}

func (t *tableSource) Table(context.Context) (*sockets.Table, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tables++
	return &sockets.Table{Sockets: append([]sockets.Socket(nil), t.socks...)}, nil
}

func (t *tableSource) Walk(ctx context.Context, fn func(*sockets.Socket)) error {
	tab, _ := t.Table(ctx)
	for i := range tab.Sockets {
		fn(&tab.Sockets[i])
	}
	return nil
}

func (t *tableSource) Host() netconf.Host {
	return netconf.Host{Ephemeral: registry.Range{First: 32768, Last: 60999}, UnprivilegedStart: 1024, TCPTWReuse: 2}
}

func (t *tableSource) Forwarders(context.Context) []forward.Process { return []forward.Process{} }

var evil = &sockets.Process{PID: 4242, Name: "<b>x</b>", Cmdline: []string{"/tmp/<script>alert(1)</script>", "--flag=\"'><img src=x onerror=alert(2)>"},
	User: "root", Cgroup: "/system.slice/<i>evil</i>.service"}

func listener(proto sockets.Proto, addr string, p *sockets.Process) sockets.Socket {
	s := sockets.Socket{Proto: proto, Local: netip.MustParseAddrPort(addr), State: sockets.Listen, Inode: uint64(len(addr))}
	if proto == sockets.UDP {
		s.State = sockets.Close
	}
	if p != nil {
		s.Processes = []*sockets.Process{p}
	}
	return s
}

// newTestServer starts a Server over src, sampling every 50 ms, behind
// an httptest server.
func newTestServer(t *testing.T, src Source, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	opts.Source = src
	if opts.Interval == 0 {
		opts.Interval = 50 * time.Millisecond
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	// The server listens before the first sample, so that the sample sees
	// its listener (the metrics' reach counts it).
	ts := httptest.NewServer(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		ts.Close()
	})
	<-s.Ready()
	return s, ts
}

func get(t *testing.T, ts *httptest.Server, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.URL+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestToken(t *testing.T) {
	const token = "0123456789abcdef0123"
	src := &tableSource{}
	src.set(listener(sockets.TCP, "0.0.0.0:22", nil))
	_, ts := newTestServer(t, src, Options{Token: token})
	for _, path := range []string{"/", "/static/app.js", "/api/v1/sockets", "/api/v1/session", "/api/v1/events", "/metrics", "/api/v1/ports/22", "/nope"} {
		for name, hdr := range map[string]map[string]string{
			"none":         nil,
			"wrong bearer": {"Authorization": "Bearer 0123456789abcdef0124"},
			"basic":        {"Authorization": "Basic " + token},
			"wrong cookie": {"Cookie": tokenCookie + "=nope"},
		} {
			resp, body := get(t, ts, path, hdr)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "token is required") {
				t.Errorf("GET %s with %s credentials: %d %q; want 401", path, name, resp.StatusCode, body)
			}
		}
	}
	if resp, body := get(t, ts, "/api/v1/sockets", map[string]string{"Authorization": "Bearer " + token}); resp.StatusCode != 200 || !strings.Contains(body, "0.0.0.0:22") {
		t.Errorf("GET /api/v1/sockets with the bearer token: %d %q; want 200 with the table", resp.StatusCode, body)
	}
	if resp, _ := get(t, ts, "/?token=wrong-wrong-wrong", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /?token=wrong: %d; want 401", resp.StatusCode)
	}
	// Opening /?token=… sets the cookie and takes the token out of the address.
	resp, _ := get(t, ts, "/?token="+token, nil)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == tokenCookie {
			cookie = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("GET /?token=TOKEN: %d, Location %q, cookie %+v; want 303 to / with an HttpOnly SameSite=Strict cookie", resp.StatusCode, resp.Header.Get("Location"), cookie)
	}
	if resp, body := get(t, ts, "/", map[string]string{"Cookie": tokenCookie + "=" + cookie.Value}); resp.StatusCode != 200 || !strings.Contains(body, "portctl") {
		t.Errorf("GET / with the cookie: %d; want 200 and the page", resp.StatusCode)
	}
}

func TestHostHeader(t *testing.T) {
	src := &tableSource{}
	_, ts := newTestServer(t, src, Options{})
	for host, want := range map[string]int{
		"127.0.0.1:9753":          200,
		"[::1]:9753":              200,
		"localhost:9753":          200,
		"dash.localhost":          200,
		"attacker.example:9753":   403,
		"127.0.0.1.nip.example":   403,
		"portctl.internal":        403,
		"localhost.attacker.test": 403,
	} {
		req, _ := http.NewRequest("GET", ts.URL+"/api/v1/session", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET /api/v1/session with Host %q: %d; want %d", host, resp.StatusCode, want)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	src := &tableSource{}
	_, ts := newTestServer(t, src, Options{})
	for _, path := range []string{"/", "/static/app.js", "/static/app.css", "/api/v1/sockets", "/metrics", "/api/v1/nope"} {
		resp, _ := get(t, ts, path, nil)
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: Content-Security-Policy %q; want default-src 'none', script-src 'self' and nothing unsafe", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: headers %v; want nosniff and DENY", path, resp.Header)
		}
	}
}

// TestAssetsSelfContained checks that the page loads nothing from outside
// the binary and that its script never turns data into markup.
func TestAssetsSelfContained(t *testing.T) {
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import`)
	markup := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`)
	fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if d.IsDir() {
			return nil
		}
		b, _ := assets.ReadFile(path)
		if m := external.Find(b); m != nil {
			t.Errorf("%s loads from outside the binary: %q", path, m)
		}
		if m := markup.Find(b); m != nil && strings.HasSuffix(path, ".js") {
			t.Errorf("%s builds markup from strings: %q", path, m)
		}
		return nil
	})
}

func TestAPIEscapesProcessText(t *testing.T) {
	src := &tableSource{}
	src.set(listener(sockets.TCP, "0.0.0.0:8080", evil))
	_, ts := newTestServer(t, src, Options{})
	for _, path := range []string{"/api/v1/sockets", "/api/v1/ports/8080", "/api/v1/audit"} {
		resp, body := get(t, ts, path, nil)
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("GET %s: Content-Type %q; want application/json", path, ct)
		}
		if strings.ContainsAny(body, "<>") {
			t.Errorf("GET %s: body holds a raw < or >: %s", path, body)
		}
	}
	var ans socketsAnswer
	_, body := get(t, ts, "/api/v1/sockets?state=listening", nil)
	if err := json.Unmarshal([]byte(body), &ans); err != nil || len(ans.Sockets) != 1 {
		t.Fatalf("GET /api/v1/sockets = %s, %v", body, err)
	}
	if r := ans.Sockets[0]; r.Process != evil.Name || r.Cmdline[0] != evil.Cmdline[0] || r.Cgroup != evil.Cgroup {
		t.Errorf("the row = %+v; want the process's own text back intact", r)
	}
}

func TestAPISockets(t *testing.T) {
	nginx := &sockets.Process{PID: 10, Name: "nginx", Cmdline: []string{"nginx: master process"}, User: "root"}
	src := &tableSource{}
	conn := sockets.Socket{Proto: sockets.TCP, State: sockets.Established, Local: netip.MustParseAddrPort("10.0.0.1:443"),
		Remote: netip.MustParseAddrPort("10.0.0.9:50000"), Inode: 99, Processes: []*sockets.Process{nginx}}
	src.set(listener(sockets.TCP, "0.0.0.0:443", nginx), listener(sockets.UDP, "127.0.0.1:53", nil), conn)
	_, ts := newTestServer(t, src, Options{})
	for _, tt := range []struct {
		query string
		want  []string // local addresses, in order
	}{
		{"", []string{"127.0.0.1:53", "0.0.0.0:443", "10.0.0.1:443"}}, // listeners first, by port
		{"?state=listening", []string{"127.0.0.1:53", "0.0.0.0:443"}},
		{"?state=ESTAB", []string{"10.0.0.1:443"}},
		{"?proto=udp", []string{"127.0.0.1:53"}},
		{"?q=nginx", []string{"0.0.0.0:443", "10.0.0.1:443"}},
		{"?q=MASTER", []string{"0.0.0.0:443", "10.0.0.1:443"}},
		{"?q=50000", []string{"10.0.0.1:443"}},
	} {
		var ans socketsAnswer
		_, body := get(t, ts, "/api/v1/sockets"+tt.query, nil)
		if err := json.Unmarshal([]byte(body), &ans); err != nil {
			t.Fatalf("GET /api/v1/sockets%s: %v", tt.query, err)
		}
		var got []string
		for _, r := range ans.Sockets {
			got = append(got, r.Local)
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("GET /api/v1/sockets%s = %q; want %q", tt.query, got, tt.want)
		}
	}
	if resp, body := get(t, ts, "/api/v1/sockets?proto=sctp", nil); resp.StatusCode != 400 || !strings.Contains(body, "sctp") {
		t.Errorf("GET /api/v1/sockets?proto=sctp: %d %s; want 400 naming the value", resp.StatusCode, body)
	}
}

func TestAPIPort(t *testing.T) {
	src := &tableSource{}
	src.set(listener(sockets.TCP, "0.0.0.0:443", &sockets.Process{PID: 10, Name: "nginx"}))
	_, ts := newTestServer(t, src, Options{})
	var p portAnswer
	_, body := get(t, ts, "/api/v1/ports/443", nil)
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	if p.Port != 443 || p.Class != registry.System || !p.Privileged || len(p.Sockets) != 1 || p.Sockets[0].Process != "nginx" {
		t.Errorf("GET /api/v1/ports/443 = %+v", p)
	}
	found := false
	for _, a := range p.Assignments {
		found = found || a.Name == "https"
	}
	if !found {
		t.Errorf("GET /api/v1/ports/443 assignments = %+v; want https", p.Assignments)
	}
	for _, bad := range []string{"0", "65536", "http", "-1"} {
		if resp, body := get(t, ts, "/api/v1/ports/"+bad, nil); resp.StatusCode != 400 || !strings.Contains(body, bad) {
			t.Errorf("GET /api/v1/ports/%s: %d %s; want 400 naming it", bad, resp.StatusCode, body)
		}
	}
	if resp, body := get(t, ts, "/api/v1/nope", nil); resp.StatusCode != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("GET /api/v1/nope: %d %s; want a JSON 404", resp.StatusCode, body)
	}
}

// readEvent reads the next server-sent event.
func readEvent(t *testing.T, r *bufio.Reader) (string, event) {
	t.Helper()
	var name string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading events: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			var ev event
			if err := json.Unmarshal([]byte(line[len("data: "):]), &ev); err != nil {
				t.Fatalf("event %s: %v", name, err)
			}
			return name, ev
		}
	}
}

func TestEvents(t *testing.T) {
	src := &tableSource{}
	ssh := listener(sockets.TCP, "0.0.0.0:22", &sockets.Process{PID: 1, Name: "sshd"})
	src.set(ssh)
	_, ts := newTestServer(t, src, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	name, ev := readEvent(t, r)
	if name != "snapshot" || len(ev.Snapshot) != 1 || ev.Snapshot[0].Local != "0.0.0.0:22" {
		t.Fatalf("first event = %s %+v; want a snapshot of the one listener", name, ev)
	}
	web := listener(sockets.TCP, "127.0.0.1:8080", &sockets.Process{PID: 2, Name: "python3"})
	src.set(ssh, web)
	for {
		name, ev = readEvent(t, r)
		if len(ev.Added) > 0 {
			break
		}
	}
	if name != "diff" || len(ev.Added) != 1 || ev.Added[0].Local != "127.0.0.1:8080" || len(ev.Removed) != 0 || ev.Total != 2 {
		t.Fatalf("event after a new listener = %s %+v; want a diff adding it", name, ev)
	}
	id := ev.Added[0].ID
	src.set(ssh)
	for {
		name, ev = readEvent(t, r)
		if len(ev.Removed) > 0 {
			break
		}
	}
	if len(ev.Removed) != 1 || ev.Removed[0] != id || len(ev.Added) != 0 {
		t.Fatalf("event after the listener closed = %+v; want a diff removing %q", ev, id)
	}
}

func TestKill(t *testing.T) {
	src := &tableSource{}
	src.set(listener(sockets.TCP, "127.0.0.1:3000", &sockets.Process{PID: 77, Name: "node"}))
	var mu sync.Mutex
	var killed []uint16
	kill := func(_ context.Context, port uint16) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		killed = append(killed, port)
		return map[string]any{"port": port, "freed": true}, nil
	}
	s, ts := newTestServer(t, src, Options{Kill: kill})
	_, off := newTestServer(t, src, Options{})
	post := func(ts *httptest.Server, path, body string, hdr map[string]string) (int, string) {
		req, _ := http.NewRequest("POST", ts.URL+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	good := map[string]string{"Content-Type": "application/json", "X-CSRF-Token": s.csrf}
	// A token that differs from the session's in its first character
	// ("00"+token[2:] was the token itself once in 256 runs).
	wrong := "0" + s.csrf[1:]
	if s.csrf[0] == '0' {
		wrong = "1" + s.csrf[1:]
	}
	with := func(k, v string) map[string]string {
		h := map[string]string{}
		for a, b := range good {
			h[a] = b
		}
		if v == "" {
			delete(h, k)
		} else {
			h[k] = v
		}
		return h
	}
	for _, tt := range []struct {
		name   string
		ts     *httptest.Server
		path   string
		body   string
		hdr    map[string]string
		status int
	}{
		{"kill disabled", off, "/api/v1/ports/3000/kill", `{"confirm":"3000"}`, good, 403},
		{"no CSRF token", ts, "/api/v1/ports/3000/kill", `{"confirm":"3000"}`, with("X-CSRF-Token", ""), 403},
		{"wrong CSRF token", ts, "/api/v1/ports/3000/kill", `{"confirm":"3000"}`, with("X-CSRF-Token", wrong), 403},
		{"cross-site", ts, "/api/v1/ports/3000/kill", `{"confirm":"3000"}`, with("Sec-Fetch-Site", "cross-site"), 403},
		{"other origin", ts, "/api/v1/ports/3000/kill", `{"confirm":"3000"}`, with("Origin", "http://attacker.example"), 403},
		{"a form", ts, "/api/v1/ports/3000/kill", `confirm=3000`, with("Content-Type", "application/x-www-form-urlencoded"), 403},
		{"no confirmation", ts, "/api/v1/ports/3000/kill", `{}`, good, 400},
		{"wrong confirmation", ts, "/api/v1/ports/3000/kill", `{"confirm":"300"}`, good, 400},
		{"bad port", ts, "/api/v1/ports/99999/kill", `{"confirm":"99999"}`, good, 400},
		{"confirmed", ts, "/api/v1/ports/3000/kill", `{"confirm":"3000"}`, good, 200},
	} {
		if status, body := post(tt.ts, tt.path, tt.body, tt.hdr); status != tt.status {
			t.Errorf("%s: POST %s: %d %s; want %d", tt.name, tt.path, status, body, tt.status)
		}
	}
	if resp, _ := get(t, ts, "/api/v1/ports/3000/kill", nil); resp.StatusCode < 400 {
		t.Errorf("GET …/kill: %d; want an error", resp.StatusCode)
	}
	if len(killed) != 1 || killed[0] != 3000 {
		t.Errorf("kill ran for %v; want once, for 3000", killed)
	}
	var sess session
	_, body := get(t, ts, "/api/v1/session", nil)
	json.Unmarshal([]byte(body), &sess)
	if sess.CSRFToken != s.csrf || !sess.AllowKill {
		t.Errorf("GET /api/v1/session = %+v; want the CSRF token and allow_kill", sess)
	}
}

// FuzzHandler sends arbitrary requests: every answer is a status below
// 500, and an error from the API is JSON.
func FuzzHandler(f *testing.F) {
	src := &tableSource{}
	src.set(listener(sockets.TCP, "0.0.0.0:22", evil))
	s, err := New(Options{Source: src, Kill: func(context.Context, uint16) (any, error) { return nil, nil }})
	if err != nil {
		f.Fatal(err)
	}
	s.sample(context.Background())
	for _, seed := range [][3]string{
		{"GET", "/api/v1/sockets?state=listening&proto=tcp&q=ssh", ""},
		{"GET", "/api/v1/ports/22", ""},
		{"GET", "/api/v1/ports/99999999999999999999", ""},
		{"POST", "/api/v1/ports/22/kill", `{"confirm":"22"}`},
		{"POST", "/api/v1/ports/22/kill", `{"confirm":22}`},
		{"GET", "/?token=x", ""},
		{"GET", "/static/../web.go", ""},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, method, target, body string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t") || target == "/api/v1/events" {
			return
		}
		req, err := http.NewRequest(method, "http://127.0.0.1"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", s.csrf)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Errorf("%s %s %q: %d %s", method, target, body, rec.Code, rec.Body)
		}
		if strings.HasPrefix(req.URL.Path, "/api/") && rec.Code >= 400 && !json.Valid(rec.Body.Bytes()) {
			t.Errorf("%s %s: error body is not JSON: %s", method, target, rec.Body)
		}
	})
}

// scrapeBody renders /metrics through the handler.
func scrapeBody(t *testing.T, s *Server) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func (t *tableSource) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.tables
}

// TestIdleSampling checks that nobody looking means no sampling beyond
// IdleInterval, that a request then gets a fresh table, and that sampling
// resumes at Interval while someone looks.
func TestIdleSampling(t *testing.T) {
	src := &tableSource{}
	_, ts := newTestServer(t, src, Options{Interval: 20 * time.Millisecond, IdleInterval: time.Hour})
	time.Sleep(200 * time.Millisecond)
	if n := src.count(); n != 1 {
		t.Fatalf("with nobody looking, %d samples in 200 ms; want the first only", n)
	}
	src.set(listener(sockets.TCP, "0.0.0.0:22", nil))
	var ans socketsAnswer
	_, body := get(t, ts, "/api/v1/sockets", nil)
	json.Unmarshal([]byte(body), &ans)
	if len(ans.Sockets) != 1 {
		t.Fatalf("the first request after an idle spell got %s; want the fresh table", body)
	}
	// At a 20 ms interval, 5 more samples come within 100 ms; wait up to
	// 10 s, as this machine may be busy, where an idle sampler would take
	// the hour of its IdleInterval.
	deadline := time.Now().Add(10 * time.Second)
	for src.count() < 8 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := src.count(); n < 8 {
		t.Errorf("after a request, %d samples in 10 s at a 20 ms interval; want sampling to resume", n)
	}
}

// TestIdleBurstSamplesOnce: a page opened after an idle spell asks for
// several things at once; the table is sampled again once for all of them,
// not once per request (a sample of a large table takes a fifth of a second).
func TestIdleBurstSamplesOnce(t *testing.T) {
	src := &tableSource{}
	_, ts := newTestServer(t, src, Options{Interval: time.Second, IdleInterval: time.Hour})
	time.Sleep(2200 * time.Millisecond) // the first sample is now stale
	var wg sync.WaitGroup
	for _, path := range []string{"/api/v1/sockets", "/api/v1/audit", "/api/v1/ephemeral", "/api/v1/forwarders", "/api/v1/sockets"} {
		wg.Go(func() {
			if resp, err := http.Get(ts.URL + path); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if n := src.count(); n != 2 {
		t.Errorf("5 requests at once after an idle spell: %d samples in all; want 2 (the first, and one fresh one for all)", n)
	}
}
