package registry_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/portctl/portctl/registry"
)

func TestParsePort(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want uint16
	}{
		{"zero", "0", 0},
		{"https", "443", 443},
		{"max", "65535", 65535},
		{"surrounding space", " 80 ", 80},
		{"tab and newline", "\t22\n", 22},
		{"leading zeros", "00080", 80},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := registry.ParsePort(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParsePort(%q) = %v, %v; want %v, nil", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParsePortErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		mention string // the error message must contain this
	}{
		{"empty", "", "empty"},
		{"only space", "   ", "empty"},
		{"negative", "-1", "-1"},
		{"too big", "70000", "70000"},
		{"one past max", "65536", "65536"},
		{"letters", "abc", "abc"},
		{"hexadecimal", "0x50", "0x50"},
		{"plus sign", "+80", "+80"},
		{"exponent", "1e3", "1e3"},
		{"overflows int64", "99999999999999999999", "99999999999999999999"},
		{"inner space", "8 0", "8 0"},
		{"fullwidth digits", "８０", "８０"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := registry.ParsePort(tt.in)
			if err == nil {
				t.Fatalf("ParsePort(%q) = %v, nil; want an error", tt.in, got)
			}
			if !errors.Is(err, registry.ErrSyntax) {
				t.Errorf("ParsePort(%q) error %v does not match ErrSyntax", tt.in, err)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("ParsePort(%q) error %q does not mention %q", tt.in, err, tt.mention)
			}
		})
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    registry.Range
		wantErr bool
	}{
		{"range", "20-25", registry.Range{First: 20, Last: 25}, false},
		{"single port", "80", registry.Range{First: 80, Last: 80}, false},
		{"equal ends", "80-80", registry.Range{First: 80, Last: 80}, false},
		{"whole space", "0-65535", registry.Range{First: 0, Last: 65535}, false},
		{"space around parts", " 20 - 25 ", registry.Range{First: 20, Last: 25}, false},
		{"backwards", "80-20", registry.Range{}, true},
		{"no start", "-5", registry.Range{}, true},
		{"no end", "5-", registry.Range{}, true},
		{"end out of range", "1-70000", registry.Range{}, true},
		{"start out of range", "70000-70001", registry.Range{}, true},
		{"empty", "", registry.Range{}, true},
		{"dash only", "-", registry.Range{}, true},
		{"two dashes", "1-2-3", registry.Range{}, true},
		{"negative end", "5--6", registry.Range{}, true},
		{"letters", "a-b", registry.Range{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := registry.ParseRange(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseRange(%q) = %v, nil; want an error", tt.in, got)
				}
				if !errors.Is(err, registry.ErrSyntax) {
					t.Errorf("ParseRange(%q) error %v does not match ErrSyntax", tt.in, err)
				}
				if !strings.Contains(err.Error(), tt.in) {
					t.Errorf("ParseRange(%q) error %q does not name the input", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseRange(%q) = %v, %v; want %v, nil", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		port uint16
		want registry.Class
	}{
		{0, registry.System},
		{1023, registry.System},
		{1024, registry.User},
		{49151, registry.User},
		{49152, registry.Dynamic},
		{65535, registry.Dynamic},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(int(tt.port)), func(t *testing.T) {
			if got := registry.Classify(tt.port); got != tt.want {
				t.Errorf("Classify(%d) = %v; want %v", tt.port, got, tt.want)
			}
			if r := tt.want.Range(); !r.Contains(tt.port) {
				t.Errorf("%v.Range() = %v; does not contain %d", tt.want, r, tt.port)
			}
		})
	}
}

func TestClassRangesTile(t *testing.T) {
	// The three classes cover 0-65535 without gaps or overlap.
	next := 0
	for _, c := range []registry.Class{registry.System, registry.User, registry.Dynamic} {
		r := c.Range()
		if int(r.First) != next {
			t.Errorf("%v.Range() = %v; want it to start at %d", c, r, next)
		}
		if got := registry.Classify(r.First); got != c {
			t.Errorf("Classify(%d) = %v; want %v", r.First, got, c)
		}
		if got := registry.Classify(r.Last); got != c {
			t.Errorf("Classify(%d) = %v; want %v", r.Last, got, c)
		}
		if !strings.HasSuffix(c.Long(), r.String()) {
			t.Errorf("%v.Long() = %q; want it to end with %q", c, c.Long(), r.String())
		}
		next = int(r.Last) + 1
	}
	if next != 65536 {
		t.Errorf("the classes end at %d; want 65535", next-1)
	}
}

func TestClassString(t *testing.T) {
	tests := []struct {
		c    registry.Class
		want string
	}{
		{registry.System, "system"},
		{registry.User, "user"},
		{registry.Dynamic, "dynamic"},
		{registry.Class(0), "unknown"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("Class(%d).String() = %q; want %q", tt.c, got, tt.want)
		}
		b, err := tt.c.MarshalText()
		if err != nil || string(b) != tt.want {
			t.Errorf("Class(%d).MarshalText() = %q, %v; want %q, nil", tt.c, b, err, tt.want)
		}
	}
}

func TestClassTextRoundTrip(t *testing.T) {
	for _, c := range []registry.Class{registry.System, registry.User, registry.Dynamic} {
		b, err := c.MarshalText()
		if err != nil {
			t.Fatalf("%v.MarshalText() error: %v", c, err)
		}
		var got registry.Class
		if err := got.UnmarshalText(b); err != nil || got != c {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v, nil", b, got, err, c)
		}
	}
	for _, in := range []string{"", "unknown", "System", "well-known"} {
		var got registry.Class
		if err := got.UnmarshalText([]byte(in)); !errors.Is(err, registry.ErrSyntax) {
			t.Errorf("UnmarshalText(%q) error = %v; want ErrSyntax", in, err)
		}
	}
}

func TestRange(t *testing.T) {
	tests := []struct {
		name    string
		r       registry.Range
		len     int
		str     string
		in, out []uint16
	}{
		{"single", registry.Range{First: 80, Last: 80}, 1, "80", []uint16{80}, []uint16{79, 81}},
		{"x11", registry.Range{First: 6000, Last: 6063}, 64, "6000-6063", []uint16{6000, 6010, 6063}, []uint16{5999, 6064}},
		{"zero", registry.Range{}, 1, "0", []uint16{0}, []uint16{1, 65535}},
		{"everything", registry.Range{First: 0, Last: 65535}, 65536, "0-65535", []uint16{0, 1, 65535}, nil},
		{"top", registry.Range{First: 65535, Last: 65535}, 1, "65535", []uint16{65535}, []uint16{0, 65534}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Len(); got != tt.len {
				t.Errorf("%#v.Len() = %d; want %d", tt.r, got, tt.len)
			}
			if got := tt.r.String(); got != tt.str {
				t.Errorf("%#v.String() = %q; want %q", tt.r, got, tt.str)
			}
			for _, p := range tt.in {
				if !tt.r.Contains(p) {
					t.Errorf("%v.Contains(%d) = false; want true", tt.r, p)
				}
			}
			for _, p := range tt.out {
				if tt.r.Contains(p) {
					t.Errorf("%v.Contains(%d) = true; want false", tt.r, p)
				}
			}
			if got, err := registry.ParseRange(tt.str); err != nil || got != tt.r {
				t.Errorf("ParseRange(%q) = %v, %v; want %v, nil", tt.str, got, err, tt.r)
			}
		})
	}
}

func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"0", "443", "65535", " 80 ", "", "-1", "70000", "65536", "abc",
		"0x50", "+80", "1e3", "99999999999999999999", "00080", "\t22\n", "８０"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := registry.ParsePort(s)
		if err != nil {
			if !errors.Is(err, registry.ErrSyntax) {
				t.Errorf("ParsePort(%q) error %v does not match ErrSyntax", s, err)
			}
			return
		}
		str := strconv.Itoa(int(p))
		if got, err := registry.ParsePort(str); err != nil || got != p {
			t.Errorf("ParsePort(%q) = %v, %v; want %v, nil (round trip of %q)", str, got, err, p, s)
		}
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil || n != uint64(p) {
			t.Errorf("ParsePort(%q) = %v; strconv.ParseUint gives %v, %v", s, p, n, err)
		}
	})
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"20-25", "80", "80-20", "-5", "5-", "1-70000", "0-65535", "-", "1-2-3", " 20 - 25 ", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := registry.ParseRange(s)
		if err != nil {
			if !errors.Is(err, registry.ErrSyntax) {
				t.Errorf("ParseRange(%q) error %v does not match ErrSyntax", s, err)
			}
			return
		}
		if r.First > r.Last {
			t.Errorf("ParseRange(%q) = %#v; First > Last", s, r)
		}
		if r.Len() < 1 || r.Len() > 65536 {
			t.Errorf("ParseRange(%q).Len() = %d; want 1-65536", s, r.Len())
		}
		if !r.Contains(r.First) || !r.Contains(r.Last) {
			t.Errorf("ParseRange(%q) = %v does not contain its ends", s, r)
		}
		if got, err := registry.ParseRange(r.String()); err != nil || got != r {
			t.Errorf("ParseRange(%q) = %v, %v; want %v, nil (round trip of %q)", r.String(), got, err, r, s)
		}
	})
}
