package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portctl/portctl/audit"
	"github.com/portctl/portctl/registry"
)

//go:embed assets
var assets embed.FS

// KillFunc stops the processes listening on port and returns what it did,
// as a JSON-encodable value.
type KillFunc func(ctx context.Context, port uint16) (any, error)

// Options configure a Server. The zero value serves this machine, samples
// every 2 s and needs no token.
type Options struct {
	// Source is where the data comes from; Machine{} when nil.
	Source Source
	// Token, when set, is required on every request.
	Token string
	// Kill, when set, enables the kill action.
	Kill KillFunc
	// Policy is the audit policy the findings are checked against.
	Policy *audit.Policy
	// Interval is how often the socket table is sampled (default 2 s).
	Interval time.Duration
	// IdleInterval is how often the table is sampled while nobody looks
	// (default 15 s): on a machine with 40,000 sockets a sample costs a
	// fifth of a second of CPU.
	IdleInterval time.Duration
	// FirewallInterval is how often a FirewallSource's ruleset is read
	// again (default 10 s, at least Interval); who may reach each listener
	// is worked out again at every sample whose listeners changed.
	FirewallInterval time.Duration
	// History is how many ephemeral usage samples the chart keeps
	// (default 900: half an hour at 2 s).
	History int
	// MaxRows bounds the rows a page receives (default 5,000): listeners
	// first, then connections.
	MaxRows int
	// Registry names ports (registry.Builtin() when nil).
	Registry *registry.Registry
	// Version is shown on the page.
	Version string
	// GuardEvents is the file portctl guard appends its events to (guard
	// --events FILE): when set, FollowGuard follows it for /api/v1/guard,
	// the page's Guard view and the portctl_guard_ metrics. The file may
	// appear later, be truncated or be rotated.
	GuardEvents string
}

// Server is the dashboard. It is safe for concurrent use.
type Server struct {
	opts    Options
	src     Source
	reg     *registry.Registry
	mux     *http.ServeMux
	csrf    string
	metrics *prometheus.Registry
	guard   *guardFeed // nil without Options.GuardEvents

	sampling sync.Mutex   // held while a sample is taken
	lastUse  atomic.Int64 // when an API request last asked, in Unix nanoseconds
	wake     chan struct{}

	mu     sync.Mutex
	state  *state // the latest sample; nil before the first
	subs   map[*subscriber]struct{}
	ready  chan struct{} // closed after the first sample
	readyO sync.Once
}

// New returns a Server; call Run to start sampling.
func New(opts Options) (*Server, error) {
	if opts.Source == nil {
		opts.Source = Machine{}
	}
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.IdleInterval < opts.Interval {
		opts.IdleInterval = max(opts.Interval, 15*time.Second)
	}
	if opts.FirewallInterval <= 0 {
		opts.FirewallInterval = 10 * time.Second
	}
	opts.FirewallInterval = max(opts.FirewallInterval, opts.Interval)
	if opts.History <= 0 {
		opts.History = 900
	}
	if opts.MaxRows <= 0 {
		opts.MaxRows = 5000
	}
	reg := opts.Registry
	if reg == nil {
		reg = registry.Builtin()
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, src: opts.Source, reg: reg, csrf: hex.EncodeToString(b[:]),
		subs: map[*subscriber]struct{}{}, ready: make(chan struct{}), wake: make(chan struct{}, 1)}
	s.metrics = prometheus.NewRegistry()
	if err := s.metrics.Register(&collector{s: s}); err != nil {
		return nil, err
	}
	if opts.GuardEvents != "" {
		s.guard = newGuardFeed(opts.GuardEvents)
		if err := s.metrics.Register(guardCollector{s.guard}); err != nil {
			return nil, err
		}
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(static)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("token") {
			// The token came in the address (how a person opens the page
			// the first time): keep it in a cookie and take it out of the
			// address bar and the history.
			http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: r.URL.Query().Get("token"), Path: "/",
				HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		files.ServeHTTP(w, r)
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A name fs.FS cannot hold (such as invalid UTF-8) is simply not
		// there, rather than the server error FileServer would answer.
		if name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/"); name != "" && !fs.ValidPath(name) {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})))
	mux.HandleFunc("GET /api/v1/session", s.apiSession)
	mux.HandleFunc("GET /api/v1/sockets", s.apiSockets)
	mux.HandleFunc("GET /api/v1/ports/{port}", s.apiPort)
	mux.HandleFunc("GET /api/v1/audit", s.apiAudit)
	mux.HandleFunc("GET /api/v1/ephemeral", s.apiEphemeral)
	mux.HandleFunc("GET /api/v1/forwarders", s.apiForwarders)
	mux.HandleFunc("GET /api/v1/mappings", s.apiMappings)
	mux.HandleFunc("GET /api/v1/events", s.apiEvents)
	mux.HandleFunc("GET /api/v1/reach", s.apiReach)
	mux.HandleFunc("GET /api/v1/firewall", s.apiFirewall)
	mux.HandleFunc("GET /api/v1/guard", s.apiGuard)
	mux.HandleFunc("POST /api/v1/ports/{port}/kill", s.apiKill)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint: "+r.Method+" "+r.URL.Path+" (see the README's list under /api/v1/)")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	s.mux = mux
}

const tokenCookie = "portctl_token"

// contentSecurityPolicy allows the page's own script, styles and API, and
// nothing else: no inline script, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServeHTTP checks the request's credentials and serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics" {
		h.Set("Cache-Control", "no-store")
	}
	if s.opts.Token == "" {
		if !localHost(r.Host) {
			writeError(w, http.StatusForbidden, "Host "+quote(r.Host)+" refused: without --token, the dashboard answers only to an IP address or localhost")
			return
		}
	} else if !s.authorized(r) {
		h.Set("WWW-Authenticate", `Bearer realm="portctl"`)
		writeError(w, http.StatusUnauthorized, "a token is required: open /?token=TOKEN, or send Authorization: Bearer TOKEN")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorized reports whether r carries the token, in constant time.
func (s *Server) authorized(r *http.Request) bool {
	var got string
	if a := r.Header.Get("Authorization"); a != "" {
		got, _ = strings.CutPrefix(a, "Bearer ")
	} else if c, err := r.Cookie(tokenCookie); err == nil {
		got = c.Value
	} else if r.Method == http.MethodGet && r.URL.Path == "/" {
		got = r.URL.Query().Get("token")
	}
	return constantEqual(got, s.opts.Token)
}

// localHost reports whether a Host header names this machine by an IP
// address or localhost: a name that resolves elsewhere is how a web page
// reaches a loopback service through DNS rebinding.
func localHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}

// Metrics returns the registry /metrics serves, for embedding the
// collectors in another program's metrics.
func (s *Server) Metrics() *prometheus.Registry { return s.metrics }

// IsLoopback reports whether addr (HOST:PORT) binds only loopback
// addresses: the only binding allowed without a token.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// ErrNoKill is returned by the kill endpoint when the server runs
// without Options.Kill.
var ErrNoKill = errors.New("web: stopping processes is disabled (serve --allow-kill enables it)")

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}

func constantEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
