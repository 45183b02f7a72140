package servers

import (
	"strings"
	"testing"
)

func TestUpstream(t *testing.T) {
	tests := []struct {
		name, version, want string
	}{
		{"revision and security update", "1.22.1-9+deb12u11", "1.22.1"},
		{"epoch", "1:9.2p1-2+deb12u10", "9.2p1"},
		{"epoch and backport tilde", "5:7.0.15-1~deb12u10", "7.0.15"},
		{"dfsg repack", "1:2.3.19.1+dfsg1-2.1+deb12u7", "2.3.19.1"},
		{"dfsg without epoch", "5.9.3+dfsg-2+deb12u1", "5.9.3"},
		{"binary NMU", "1:1.35.0-4+deb12u1+b1", "1.35.0"},
		{"tilde in revision", "2.90-4~deb12u2", "2.90"},
		{"revision 0", "15.18-0+deb12u1", "15.18"},
		{"native", "248", "248"},
		{"native with plus", "15+248+deb12u1", "15"},
		{"pre-release", "7.0~rc1-1", "7.0"},
		{"hyphen in upstream", "1.2-beta-3", "1.2-beta"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Upstream(tt.version); got != tt.want {
				t.Errorf("Upstream(%q) = %q; want %q", tt.version, got, tt.want)
			}
		})
	}
}

// FuzzUpstream checks that Upstream returns a part of its input free of
// suffix separators.
func FuzzUpstream(f *testing.F) {
	for _, v := range []string{"1.22.1-9+deb12u11", "1:9.2p1-2+deb12u10", "5:7.0.15-1~deb12u10", "248", ":-+~"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, version string) {
		got := Upstream(version)
		if !strings.Contains(version, got) {
			t.Errorf("Upstream(%q) = %q, not part of the version", version, got)
		}
		if strings.ContainsAny(got, "+~") {
			t.Errorf("Upstream(%q) = %q; it keeps a suffix", version, got)
		}
	})
}
