package web

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portctl/portctl/audit"
	"github.com/portctl/portctl/ephemeral"
	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/port"
	"github.com/portctl/portctl/registry"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, apiError{msg})
}

// session is what the page needs before it starts.
type session struct {
	CSRFToken string `json:"csrf_token"`
	AllowKill bool   `json:"allow_kill"`
	Version   string `json:"version"`
	Hostname  string `json:"hostname"`
	Interval  int64  `json:"interval_ms"`
	MaxRows   int    `json:"max_rows"`
	// Guard is true when the server follows guard's events
	// (/api/v1/guard).
	Guard bool `json:"guard"`
}

func (s *Server) apiSession(w http.ResponseWriter, r *http.Request) {
	host, _ := os.Hostname()
	writeJSON(w, http.StatusOK, session{CSRFToken: s.csrf, AllowKill: s.opts.Kill != nil, Version: s.opts.Version,
		Hostname: host, Interval: s.opts.Interval.Milliseconds(), MaxRows: s.opts.MaxRows, Guard: s.guard != nil})
}

// socketsAnswer is the body of /api/v1/sockets.
type socketsAnswer struct {
	Time      time.Time `json:"time"`
	Total     int       `json:"total"`
	Truncated bool      `json:"truncated"`
	Sockets   []Row     `json:"sockets"`
}

func (s *Server) apiSockets(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	proto, stateF, text := q.Get("proto"), q.Get("state"), q.Get("q")
	if proto != "" && proto != "tcp" && proto != "udp" {
		writeError(w, http.StatusBadRequest, "proto="+quote(proto)+": want tcp or udp")
		return
	}
	f := newRowFilter(proto, stateF, text)
	st := s.current(r.Context())
	ans := socketsAnswer{Time: st.time, Total: st.total, Truncated: st.total > len(st.rows), Sockets: []Row{}}
	for i := range st.rows {
		if f.matches(&st.rows[i]) {
			ans.Sockets = append(ans.Sockets, st.rows[i])
		}
	}
	writeJSON(w, http.StatusOK, ans)
}

// portAnswer is the body of /api/v1/ports/{port}: what `portctl info`
// says of the port, and the sockets on it now.
type portAnswer struct {
	port.Info
	Sockets []Row `json:"sockets"`
}

func (s *Server) portParam(w http.ResponseWriter, r *http.Request) (uint16, bool) {
	p, err := registry.ParsePort(r.PathValue("port"))
	if err != nil || p == 0 {
		writeError(w, http.StatusBadRequest, "port "+quote(r.PathValue("port"))+": want a number from 1 to 65535")
		return 0, false
	}
	return p, true
}

func (s *Server) apiPort(w http.ResponseWriter, r *http.Request) {
	p, ok := s.portParam(w, r)
	if !ok {
		return
	}
	st := s.current(r.Context())
	ans := portAnswer{Info: port.Describe(s.reg, st.host, p, registry.AnyProtocol), Sockets: []Row{}}
	for _, row := range st.rows {
		if row.Port == p {
			ans.Sockets = append(ans.Sockets, row)
		}
	}
	writeJSON(w, http.StatusOK, ans)
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Server) apiAudit(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.current(r.Context()).audit)
}

// ephemeralAnswer is the body of /api/v1/ephemeral.
type ephemeralAnswer struct {
	Now     ephemeral.Report `json:"now"`
	History []EphemeralPoint `json:"history"`
}

func (s *Server) apiEphemeral(w http.ResponseWriter, r *http.Request) {
	st := s.current(r.Context())
	writeJSON(w, http.StatusOK, ephemeralAnswer{Now: st.eph, History: orEmpty(st.history)})
}

func (s *Server) apiForwarders(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, orEmpty(s.current(r.Context()).forwarders))
}

func (s *Server) apiMappings(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, orEmpty(s.current(r.Context()).mappings))
}

// subscriber is one page following the table.
type subscriber struct {
	ch   chan []byte
	done chan struct{}
}

// apiEvents streams server-sent events: a snapshot of the rows, then at
// every sample what was added and removed.
func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	s.current(r.Context()) // waits for the first sample; fresh after an idle spell
	if r.Context().Err() != nil {
		return
	}
	sub := &subscriber{ch: make(chan []byte, 16), done: make(chan struct{})}
	s.mu.Lock()
	st := s.state // the latest, now that diffs will follow it
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(name string, data []byte) bool {
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data); err != nil {
			return false
		}
		flusher.Flush()
		return true
	}
	fmt.Fprintf(w, "retry: 2000\n")
	if !send("snapshot", snapshotEvent(st)) {
		return
	}
	keepalive := time.NewTicker(25 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.done:
			return
		case <-keepalive.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case ev := <-sub.ch:
			if !send("diff", ev) {
				return
			}
		}
	}
}

// killRequest is the body of POST /api/v1/ports/{port}/kill.
type killRequest struct {
	// Confirm must repeat the port.
	Confirm string `json:"confirm"`
}

// apiKill stops a port's holders. It needs Options.Kill, the session's
// CSRF token in X-CSRF-Token, a same-origin request, a JSON body, and the
// port repeated in it.
func (s *Server) apiKill(w http.ResponseWriter, r *http.Request) {
	if s.opts.Kill == nil {
		writeError(w, http.StatusForbidden, ErrNoKill.Error())
		return
	}
	p, ok := s.portParam(w, r)
	if !ok {
		return
	}
	if err := s.checkCSRF(r); err != nil {
		writeError(w, http.StatusForbidden, err.Error())
		return
	}
	var req killRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "want a JSON body {\"confirm\": \"PORT\"}: "+err.Error())
		return
	}
	if strings.TrimSpace(req.Confirm) != strconv.Itoa(int(p)) {
		writeError(w, http.StatusBadRequest, "confirm "+quote(req.Confirm)+": type the port, "+strconv.Itoa(int(p))+", to confirm")
		return
	}
	res, err := s.opts.Kill(r.Context(), p)
	if err != nil {
		writeJSON(w, http.StatusConflict, struct {
			Error  string `json:"error"`
			Result any    `json:"result,omitempty"`
		}{err.Error(), res})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// checkCSRF refuses a state-changing request that did not come from the
// dashboard's own page: it must carry the session's CSRF token (which only
// a same-origin script can read), be JSON (a form cannot send it), and,
// where the browser says, come from the same origin.
func (s *Server) checkCSRF(r *http.Request) error {
	if got := r.Header.Get("X-CSRF-Token"); got == "" || !constantEqual(got, s.csrf) {
		return errors.New("missing or wrong X-CSRF-Token: take it from GET /api/v1/session")
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return errors.New("cross-site request refused (Sec-Fetch-Site: " + site + ")")
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		if !strings.EqualFold(strings.TrimPrefix(strings.TrimPrefix(o, "http://"), "https://"), r.Host) {
			return errors.New("cross-origin request refused (Origin " + quote(o) + ")")
		}
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return errors.New("want Content-Type: application/json")
	}
	return nil
}

// portReach is one listening port's entry of /api/v1/reach and
// /api/v1/firewall.
type portReach struct {
	Protocol string `json:"protocol"`
	Port     uint16 `json:"port"`
	// Process names the listeners' first holder, Service the port's
	// service.
	Process       string            `json:"process,omitempty"`
	Service       string            `json:"service,omitempty"`
	ReachableFrom string            `json:"reachable_from"`
	From          []audit.Admission `json:"from"`
}

// reachAnswer is the body of /api/v1/reach: who may reach each listening
// port, per source class.
type reachAnswer struct {
	Time time.Time `json:"time"`
	// Readable is false when the ruleset could not be read (Error says
	// why); every port's reach is then unknown.
	Readable bool        `json:"readable"`
	Error    string      `json:"error,omitempty"`
	Ports    []portReach `json:"ports"`
}

func (st *state) reachAnswer() reachAnswer {
	ans := reachAnswer{Time: st.time, Ports: []portReach{}}
	switch {
	case st.fw == nil:
		ans.Error = "this dashboard's source reads no firewall"
		return ans
	case st.fw.read == nil:
		ans.Error = st.fw.err
		return ans
	}
	ans.Readable = true
	for _, pr := range st.fw.reach.Ports {
		p := portReach{Protocol: pr.Proto.String(), Port: pr.Port, ReachableFrom: pr.Summary(), From: pr.From}
		for _, r := range st.rows {
			if r.listening && r.Port == pr.Port && strings.EqualFold(r.Proto, p.Protocol) {
				p.Process, p.Service = r.Process, r.Service
				break
			}
		}
		ans.Ports = append(ans.Ports, p)
	}
	return ans
}

func (s *Server) apiReach(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.current(r.Context()).reachAnswer())
}

// ruleCount is how many rules one owner has in one table.
type ruleCount struct {
	Family string `json:"family"`
	Table  string `json:"table"`
	Source string `json:"source"` // nftables or iptables-legacy
	Owner  string `json:"owner"`
	Rules  int    `json:"rules"`
}

// firewallAnswer is the body of /api/v1/firewall: the ruleset by table
// and owner, who may reach each listening port and by which rules, and
// the blocks of portctl's own table.
type firewallAnswer struct {
	reachAnswer
	Rules      []ruleCount          `json:"rules"`
	TotalRules int                  `json:"total_rules"`
	Blocks     []firewall.PortBlock `json:"blocks"`
	// Incomplete names the parts of the ruleset that could not be read.
	Incomplete []string `json:"incomplete,omitempty"`
}

// ruleCounts counts the rules of rs by family, table and owner.
func ruleCounts(rs *firewall.Ruleset) ([]ruleCount, int) {
	out, total := []ruleCount{}, 0
	for _, t := range rs.Tables {
		at := len(out)
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				owner := cmp.Or(r.Owner.Name, firewall.OwnerHand)
				i := slices.IndexFunc(out[at:], func(rc ruleCount) bool { return rc.Owner == owner })
				if i < 0 {
					out = append(out, ruleCount{Family: firewall.FamilyName(t.Family), Table: t.Name, Source: string(t.Source), Owner: owner})
					i = len(out) - at - 1
				}
				out[at+i].Rules++
				total++
			}
		}
	}
	return out, total
}

func (s *Server) apiFirewall(w http.ResponseWriter, r *http.Request) {
	st := s.current(r.Context())
	ans := firewallAnswer{reachAnswer: st.reachAnswer(), Rules: []ruleCount{}, Blocks: []firewall.PortBlock{}}
	if st.fw != nil && st.fw.read != nil {
		ans.Rules, ans.TotalRules = ruleCounts(st.fw.read.Ruleset)
		ans.Blocks = orEmpty(st.fw.read.Blocks)
		ans.Incomplete = st.fw.read.Ruleset.Incomplete
	}
	writeJSON(w, http.StatusOK, ans)
}
