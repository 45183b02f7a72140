package netns

import (
	"bytes"
	"strconv"
)

// Namespace is one network namespace of the host.
type Namespace struct {
	// Inode identifies the namespace: what `ls -L -i /proc/PID/ns/net`
	// and `lsns -t net` show.
	Inode uint64 `json:"inode"`
	// Name is its name under /run/netns, where `ip netns add` puts it.
	Name string `json:"name,omitempty"`
	// Host is set for the namespace of PID 1, the host's own (or, when
	// PID 1's cannot be read, this process's).
	Host bool `json:"host,omitempty"`
	// Self is set for this process's own namespace.
	Self bool `json:"self,omitempty"`
	// PIDs are the processes in it, ascending; empty for a named namespace
	// no process has entered.
	PIDs []int `json:"pids,omitempty"`
	// Path is a file that opens it, for Do: /run/netns/NAME, or
	// /proc/PID/ns/net of its first process.
	Path string `json:"-"`
}

// Label names the namespace for people: "host", its 'ip netns' name, or
// "net:[INODE]".
func (n Namespace) Label() string {
	switch {
	case n.Host:
		return "host"
	case n.Name != "":
		return n.Name
	}
	return "net:[" + strconv.FormatUint(n.Inode, 10) + "]"
}

// ParseLink reads the inode from a namespace link's target, as readlink
// on /proc/PID/ns/net gives it: "net:[4026531840]".
func ParseLink(b []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(b, []byte("net:["))
	if !ok || len(rest) < 2 || rest[len(rest)-1] != ']' {
		return 0, false
	}
	digits := rest[:len(rest)-1]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	ino, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil || ino == 0 {
		return 0, false
	}
	return ino, true
}
