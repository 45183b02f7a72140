package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFooterVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{"v0.0.0-20261207151719-6a01be400bc9", "commit 6a01be4"},
		{"v0.0.0-20261207151719-6a01be400bc9+dirty", "commit 6a01be4"},
		{"v1.2.4-0.20261207151719-6a01be400bc9", "commit 6a01be4"},
		{"v1.2.3", "v1.2.3"},
		{"v1.2.3-rc.1", "v1.2.3-rc.1"},
		{"dev", "dev"},
	}
	for _, tt := range tests {
		if got := footerVersion(tt.in); got != tt.want {
			t.Errorf("footerVersion(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// TestWrite checks that every command gets its page, with the date and
// version asked for, and nothing else does.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	date := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	if err := write(dir, date, "v1.2.3"); err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"portctl.1", "portctl-who.1", "portctl-firewall-block.1", "portctl-completion-bash.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Error(err)
			continue
		}
		if !strings.Contains(string(b), `"Dec 2026" "portctl v1.2.3"`) || !strings.Contains(string(b), ".SH NAME") {
			t.Errorf("%s: no .TH with Dec 2026 and portctl v1.2.3, or no NAME:\n%.300s", page, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "portctl-help.1")); err == nil {
		t.Error("portctl-help.1 written; cobra's help command has no page")
	}
}
