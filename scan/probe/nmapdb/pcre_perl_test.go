package nmapdb

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
)

// perlOracle reads lines "hex(pattern) TAB flags TAB hex(subject)" and
// answers each with "err", "no" or "yes TAB hex($&)". Perl's regex engine
// is the reference PCRE follows; on byte strings (no UTF-8 flag) it has
// the same ASCII-only \w, \d, \s, POSIX classes and case folding.
const perlOracle = `
use strict; use warnings; no warnings 'regexp';
binmode STDIN; binmode STDOUT;
while (my $l = <STDIN>) {
	chomp $l;
	my ($ph, $fl, $sh) = split /\t/, $l, -1;
	my ($p, $s) = (pack("H*", $ph), pack("H*", $sh));
	my $re = eval { $fl eq "is" ? qr/$p/is : $fl eq "i" ? qr/$p/i : $fl eq "s" ? qr/$p/s : qr/$p/ };
	if (!defined $re) { print "err\n"; next }
	if ($s =~ $re) { print "yes\t", unpack("H*", $&), "\n" } else { print "no\n" }
}
`

// randomPCRE writes a random pattern from pieces whose meaning differs
// between PCRE and .NET if translated carelessly.
func randomPCRE(r *rand.Rand, depth int) string {
	atoms := []string{
		"a", "b", "A", `\x41`, `\x{c9}`, `\0`, `\n`, "\xe9", `\xe9`, ".", `\101`, "_", "-", `\-`,
		`\d`, `\w`, `\s`, `\D`, `\W`, `\S`, `\h`, `\v`, `\R`,
		`[a-c]`, `[^a]`, `[^B]`, `[]a]`, `[^]a]`, `[ -_]`, `[\w-]`, `[\d\s]`, `[\W\d]`, `[\h]`, `[\x00-\x1f]`,
		`[\xc0-\xde]`, `[^\xe9]`, `[[:alpha:]]`, `[[:^digit:]]`, `[[:upper:]]`, `[[:punct:][:upper:]]`,
		`(?i:aB)`, `(?-i:a)`, `(?s:.)`,
	}
	quants := []string{"", "", "", "*", "+", "?", "{1,2}", "{2}", "*?", "+?", "*+", "++", "?+"}
	var sb strings.Builder
	for range 1 + r.IntN(4) {
		switch k := r.IntN(20); {
		case k < 13 || depth > 2:
			sb.WriteString(atoms[r.IntN(len(atoms))])
		case k == 13:
			sb.WriteString("(" + randomPCRE(r, depth+1) + ")")
		case k == 14:
			sb.WriteString("(?:" + randomPCRE(r, depth+1) + "|" + randomPCRE(r, depth+1) + ")")
		case k == 15:
			sb.WriteString([]string{"(?=", "(?!", "(?<=", "(?<!"}[r.IntN(4)] + atoms[r.IntN(10)] + ")")
		case k == 16:
			sb.WriteString([]string{`\b`, `\B`, "^", "$", `\z`, `\Z`, `\A`}[r.IntN(7)])
		case k == 17:
			sb.WriteString(`(a|b)\1`)
		case k == 18:
			sb.WriteString("(?i)")
		case k == 19:
			sb.WriteString("(?>" + randomPCRE(r, depth+1) + ")")
		}
		sb.WriteString(quants[r.IntN(len(quants))])
	}
	return sb.String()
}

// TestPCREAgainstPerl matches random patterns against random subjects with
// the translation and with perl, and wants the same answers: whether the
// pattern matches, and what the whole match is. Patterns only one side
// rejects are counted, not compared (PCRE rejects quantified anchors, for
// one, which perl accepts).
func TestPCREAgainstPerl(t *testing.T) {
	perl, err := exec.LookPath("perl")
	if err != nil {
		t.Skip("perl is not installed: no reference to compare with")
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("abAB01 \n\x00\x0b-_\xa0\xc9\xe9")
	type testCase struct{ pattern, flags, subject string }
	var cases []testCase
	var in bytes.Buffer
	for range 20000 {
		c := testCase{pattern: randomPCRE(r, 0), flags: []string{"", "", "i", "s", "is"}[r.IntN(5)]}
		subject := make([]byte, r.IntN(9))
		for i := range subject {
			subject[i] = alphabet[r.IntN(len(alphabet))]
		}
		c.subject = string(subject)
		cases = append(cases, c)
		fmt.Fprintf(&in, "%x\t%s\t%x\n", c.pattern, c.flags, c.subject)
	}
	cmd := exec.Command(perl, "-e", perlOracle)
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("perl: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	compared, differ, onlyPerl := 0, 0, 0
	for i := 0; sc.Scan() && i < len(cases); i++ {
		c := cases[i]
		answer := sc.Text()
		re, err := compilePCRE(c.pattern, strings.Contains(c.flags, "i"), strings.Contains(c.flags, "s"))
		if answer == "err" || err != nil {
			if answer != "err" {
				onlyPerl++
			}
			continue
		}
		compared++
		got := "no"
		if m, _ := re.FindRunesMatch(latin1([]byte(c.subject))); m != nil {
			got = "yes\t" + hex.EncodeToString(bytesOf(m.Runes()))
		}
		if got != answer {
			differ++
			if differ <= 20 {
				expr, _ := translatePCRE(c.pattern, strings.Contains(c.flags, "i"))
				t.Errorf("%q/%s on %q: perl %q, translation %q (%q)", c.pattern, c.flags, c.subject, answer, got, expr)
			}
		}
	}
	t.Logf("compared %d random cases with perl: %d differ; %d patterns only perl accepts", compared, differ, onlyPerl)
	if compared < len(cases)/2 {
		t.Errorf("compared only %d of %d cases", compared, len(cases))
	}
}
