package registry

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ParseServices reads a services(5) file such as /etc/services: lines of
// "name port/protocol [aliases…] [# comment]". Wireshark's variant, which
// joins several protocols ("80/tcp/udp") and allows ranges ("6000-6063/tcp"),
// is read too; the comment becomes the description. Lines that are not
// entries fail with an error wrapping ErrSyntax; unknown protocols (ddp and
// the like) are skipped.
func ParseServices(r io.Reader) ([]Assignment, error) {
	var out []Assignment
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text, comment, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if len(fields) < 2 {
			return nil, syntaxf("services line %d: %q has no port/protocol", line, strings.TrimSpace(text))
		}
		portPart, protoPart, ok := strings.Cut(fields[1], "/")
		if !ok {
			return nil, syntaxf("services line %d: %q is not port/protocol", line, fields[1])
		}
		rng, err := ParseRange(portPart)
		if err != nil {
			return nil, syntaxf("services line %d: port %q is not 0-65535", line, portPart)
		}
		var aliases []string
		if len(fields) > 2 {
			aliases = fields[2:]
		}
		for _, ps := range strings.Split(protoPart, "/") {
			proto, err := ParseProtocol(ps)
			if err != nil || len(proto.Each()) != 1 {
				continue // ddp and other protocols outside the IANA registry
			}
			a := Assignment{Port: rng.First, Proto: proto, Name: fields[0], Aliases: aliases, Description: cleanText(comment)}
			if rng.Last != rng.First {
				a.Last = rng.Last
			}
			out = append(out, a)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, syntaxf("services line %d: longer than 1 MiB", line+1)
		}
		return nil, fmt.Errorf("services: %w", err)
	}
	return out, nil
}
