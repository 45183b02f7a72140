package scan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/portctl/portctl/registry"
)

// resumeVersion is the version of the resume format WriteResume writes and
// ReadResume accepts. Version 1 orders positions with the Order of this
// package and splits shards with Order.Shard.
const resumeVersion = 1

// resumeMaxSize bounds what ReadResume reads: target lists from -iL files
// can be long, but not this long. Tests lower it.
var resumeMaxSize int64 = 256 << 20

// Resume is what an interrupted scan needs to continue where it stopped:
// the inputs that define its index space and order, and how far it got.
//
// The guarantee: every position of the scan's shard below Done was
// finished, that is, its result was delivered; positions at or above Done
// may have been probed too. A resumed scan starts at position Done of its
// shard, so it may probe a few pairs again but never skips one. An engine
// that finishes probes out of order records the lowest position not yet
// finished (a low-water mark), not the count of finished probes.
//
// The index space is recomputed from the specs when the scan resumes; host
// names can resolve differently by then, so the caller must check that
// Targets.Len()*Ports.Len() still equals Total and start again if not.
// Writers should write to a temporary file and rename it over the old one,
// so that a crash while writing leaves the previous state.
type Resume struct {
	// Version is the format version; WriteResume fills it in.
	Version int `json:"version"`
	// Seed keys the Order. It is written as a JSON string, since JSON
	// tools lose precision in numbers above 2^53; a plain number is read
	// too.
	Seed uint64 `json:"seed,string"`
	// Shard is "K/N" as given to --shard, or empty for the whole scan.
	Shard string `json:"shard,omitempty"`
	// Targets are the target specs, with -iL files already read, and
	// Excludes the exclusions, likewise.
	Targets  []string `json:"targets"`
	Excludes []string `json:"excludes,omitempty"`
	// Family is TargetOptions.Family: 0, 4 or 6.
	Family int `json:"family,omitempty"`
	// Ports is the port spec, and Proto the protocols of its items that
	// have no T: or U: prefix (ParsePorts' defaultProto).
	Ports string            `json:"ports"`
	Proto registry.Protocol `json:"protocol"`
	// Total is the size of the whole index space (targets × ports), not
	// only of the shard.
	Total uint64 `json:"total"`
	// Done is how many positions of the shard, counted from its start, are
	// finished: positions start .. start+Done-1 of the Order.
	Done uint64 `json:"done"`
}

// WriteResume writes r as JSON, with Version set to the current format.
// It refuses a Resume that ReadResume would refuse.
func WriteResume(w io.Writer, r Resume) error {
	r.Version = resumeVersion
	if err := r.validate(); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("scan: write resume: %w", err)
	}
	return nil
}

// ReadResume reads a resume file written by WriteResume and checks that it
// is whole and consistent. A malformed file gives an error that matches
// registry.ErrSyntax; a failing reader gives its own error, wrapped.
func ReadResume(r io.Reader) (Resume, error) {
	rr := &resumeReader{r: r, left: resumeMaxSize}
	dec := json.NewDecoder(rr)
	var res Resume
	err := dec.Decode(&res)
	if err == nil {
		// Nothing but white space may follow the object.
		var extra json.RawMessage
		if err = dec.Decode(&extra); err == nil {
			err = errors.New("unexpected data after the JSON object")
		} else if err == io.EOF {
			err = nil
		}
	}
	switch {
	case rr.err != nil:
		return Resume{}, fmt.Errorf("scan: read resume: %w", rr.err)
	case rr.left < 0:
		return Resume{}, specErrorf("resume file: larger than %d MiB", resumeMaxSize>>20)
	case err == io.EOF, errors.Is(err, io.ErrUnexpectedEOF):
		return Resume{}, specErrorf("resume file: truncated")
	case err != nil:
		if typeErr, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return Resume{}, specErrorf("resume file: field %q has the wrong type", strings.TrimPrefix(typeErr.Field, "plain."))
		}
		return Resume{}, specErrorf("resume file: %v", err)
	}
	if err := res.validate(); err != nil {
		return Resume{}, err
	}
	return res, nil
}

// UnmarshalJSON decodes a Resume as WriteResume writes it, taking the
// seed as a JSON string or number of decimal digits.
func (r *Resume) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	type plain Resume
	var aux struct {
		*plain
		Seed json.RawMessage `json:"seed"`
	}
	aux.plain = (*plain)(r)
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	if len(aux.Seed) == 0 || string(aux.Seed) == "null" {
		return specErrorf("no seed")
	}
	digits := strings.TrimSuffix(strings.TrimPrefix(string(aux.Seed), `"`), `"`)
	seed, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || strings.Trim(digits, "0123456789") != "" || len(digits)+2 < len(aux.Seed) {
		var compact bytes.Buffer
		_ = json.Compact(&compact, aux.Seed) // valid JSON: the decoder checked it
		shown := compact.String()
		if len(shown) > 40 {
			cut := 40
			for !utf8.RuneStart(shown[cut]) {
				cut--
			}
			shown = shown[:cut] + "…"
		}
		return specErrorf("seed %s is not a whole number from 0 to 18446744073709551615", shown)
	}
	r.Seed = seed
	return nil
}

// resumeReader passes reads through, keeping the first error that is not
// io.EOF, and stops after left bytes (left goes negative when more came).
type resumeReader struct {
	r    io.Reader
	left int64
	err  error
}

func (rr *resumeReader) Read(p []byte) (int, error) {
	if rr.left < 0 {
		return 0, errors.New("too large")
	}
	if int64(len(p)) > rr.left+1 {
		p = p[:rr.left+1]
	}
	n, err := rr.r.Read(p)
	rr.left -= int64(n)
	if rr.left < 0 {
		return n, errors.New("too large")
	}
	if err != nil && err != io.EOF {
		rr.err = err
	}
	return n, err
}

// validate checks r as ReadResume and WriteResume require.
func (r Resume) validate() error {
	switch {
	case r.Version != resumeVersion:
		return specErrorf("resume file: version %d is not supported (want %d)", r.Version, resumeVersion)
	case len(r.Targets) == 0:
		return specErrorf("resume file: no targets")
	case r.Ports == "":
		return specErrorf("resume file: no ports")
	case r.Family != 0 && r.Family != 4 && r.Family != 6:
		return specErrorf("resume file: family %d (want 0, 4 or 6)", r.Family)
	case r.Proto == 0 || r.Proto&^(registry.TCP|registry.UDP) != 0:
		return specErrorf("resume file: protocol %q (want tcp, udp or tcp/udp)", r.Proto)
	}
	k, n := uint64(1), uint64(1)
	if r.Shard != "" {
		var err error
		if k, n, err = ParseShard(r.Shard); err != nil {
			return specErrorf("resume file: %v", err)
		}
	}
	start, end := NewOrder(r.Total, r.Seed).Shard(k, n)
	if r.Done > end-start {
		return specErrorf("resume file: done %d is beyond the %d positions of shard %d/%d", r.Done, end-start, k, n)
	}
	return nil
}
