package nmapdb

import (
	"testing"
)

func TestTemplateFill(t *testing.T) {
	// Captures of a made-up match: group 3 took no part, there is no group 5.
	groups := map[int][]byte{
		1: []byte("2_4_1"),
		2: []byte("W\x00O\x00R\x00K\x00"),
		3: nil,
		4: {0x01, 0x02},
	}
	group := func(n int) ([]byte, error) {
		g, ok := groups[n]
		if !ok {
			return nil, errNoGroup
		}
		return g, nil
	}
	tests := []struct {
		name, tmpl string
		cpe        bool
		want       string
		ok         bool
	}{
		{"literal", "Apache httpd", false, "Apache httpd", true},
		{"empty", "", false, "", true},
		{"group", "v$1", false, "v2_4_1", true},
		{"digit after group", "$10", false, "2_4_10", true},
		{"group that took no part", "x$3y", false, "xy", true},
		{"group the pattern lacks", "x $5", false, "", false},
		{"group 0", "$0", false, "", false},
		{"raw bytes are escaped", "$2", false, `W\x00O\x00R\x00K\x00`, true},
		{"printable", "$P(2)", false, "WORK", true},
		{"printable spaces", "$P( 2 )", false, "WORK", true},
		{"subst", `$SUBST(1,"_",".")`, false, "2.4.1", true},
		{"subst escapes", `$SUBST(2, "\0", "")`, false, "WORK", true},
		{"subst quote", `$SUBST(1,"_","\"")`, false, `2"4"1`, true},
		{"subst longer", `$SUBST(1,"_4_","-four-")`, false, "2-four-1", true},
		{"subst empty from", `$SUBST(1,"","x")`, false, "2_4_1", true},
		{"unpack big-endian", `$I(4,">")`, false, "258", true},
		{"unpack little-endian", `$I(4,"<")`, false, "513", true},
		{"unpack eight bytes", `$I(2,">")`, false, "6269097544094075648", true},
		{"unpack nothing", `$I(3,">")`, false, "", false},
		{"trailing space and commas trimmed", "a, b,, \t", false, "a, b", true},
		{"several", `$P(2) $SUBST(1,"_",".") ($I(4,"<"))`, false, "WORK 2.4.1 (513)", true},
		{"utf-8 literal", "Gerät", false, "Gerät", true},
		{"cpe escapes substitutions only", "cpe:/a:x:$SUBST(1,\"_\",\" \")", true, "cpe:/a:x:2_4_1", true},
		{"cpe reserved and case", "cpe:/a:Vendor:$1", true, "cpe:/a:Vendor:2_4_1", true},
		{"unknown function", "$Q(1)", false, "", false},
		{"dollar alone", "cost $", false, "", false},
		{"dollar word", "$HOME", false, "", false},
		{"P with a string", `$P("1")`, false, "", false},
		{"P group 10", `$P(10)`, false, "", false},
		{"SUBST two args", `$SUBST(1,"_")`, false, "", false},
		{"SUBST number", `$SUBST(1,2,3)`, false, "", false},
		{"I bad order", `$I(4,"!")`, false, "", false},
		{"I one arg", `$I(4)`, false, "", false},
		{"missing paren", `$P(1`, false, "", false},
		{"no args", `$P()`, false, "", false},
		{"unterminated string", `$SUBST(1,"_)`, false, "", false},
		{"bad escape in string", `$SUBST(1,"\q","")`, false, "", false},
		{"junk between args", `$SUBST(1 x,"_","")`, false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := parseTemplate(tt.tmpl)
			got, ok := tmpl.fill(group, tt.cpe)
			if got != tt.want || ok != tt.ok {
				t.Errorf("fill(%q) = %q, %v; want %q, %v (parse error %v)", tt.tmpl, got, ok, tt.want, tt.ok, tmpl.err)
			}
		})
	}
}

func TestCPEEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"OpenSSH 9.2p1", "openssh_9.2p1"},
		{"a:b/c", "a%3Ab%2Fc"},
		{`?#[]@!$&'()*+,;=%<>"`, "%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D%25%3C%3E%22"},
		{"\x00\xe9~", "%00%E9~"},
	}
	for _, tt := range tests {
		if got := string(cpeEscape([]byte(tt.in))); got != tt.want {
			t.Errorf("cpeEscape(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"tab\there", `tab\x09here`},
		{"utf-8 é ✓", "utf-8 é ✓"},
		{"latin-1 \xe9", `latin-1 \xe9`},
		{"\x7f\x80", `\x7f\x80`},
		{"\u200b", `\xe2\x80\x8b`}, // zero-width space does not print
	}
	for _, tt := range tests {
		if got := printable([]byte(tt.in)); got != tt.want {
			t.Errorf("printable(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
