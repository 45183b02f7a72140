package sockets

import (
	"bufio"
	"bytes"
	"io/fs"
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// SystemdUnitDirs are where systemd looks for unit files, most specific
// first.
var SystemdUnitDirs = []string{"etc/systemd/system", "run/systemd/system", "usr/local/lib/systemd/system", "lib/systemd/system", "usr/lib/systemd/system"}

// SocketUnits returns the names of the systemd .socket units under root
// (usually os.DirFS("/")) whose ListenStream= or ListenDatagram= lines name
// port: the units that make systemd hold the port for socket activation.
func SocketUnits(root fs.FS, port uint16) []string {
	var out []string
	seen := map[string]bool{}
	for _, dir := range SystemdUnitDirs {
		entries, err := fs.ReadDir(root, dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasSuffix(name, ".socket") || seen[name] {
				continue
			}
			seen[name] = true
			data, err := fs.ReadFile(root, path.Join(dir, name))
			if err != nil {
				continue
			}
			for _, p := range SocketUnitPorts(data) {
				if p == port {
					out = append(out, name)
					break
				}
			}
		}
	}
	return out
}

// SocketUnitPorts returns the ports a .socket unit file listens on, from
// its ListenStream=, ListenDatagram= and ListenSequentialPacket= lines
// ("22", "0.0.0.0:22", "[::]:22"); paths (Unix sockets) are ignored.
func SocketUnitPorts(unit []byte) []uint16 {
	var out []uint16
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(key) {
		case "ListenStream", "ListenDatagram", "ListenSequentialPacket":
		default:
			continue
		}
		val = strings.TrimSpace(val)
		if val == "" || strings.HasPrefix(val, "/") || strings.HasPrefix(val, "@") {
			continue
		}
		if n, err := strconv.ParseUint(val, 10, 16); err == nil {
			out = append(out, uint16(n))
			continue
		}
		if ap, err := netip.ParseAddrPort(val); err == nil {
			out = append(out, ap.Port())
		}
	}
	return out
}
