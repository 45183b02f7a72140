package main

import (
	"slices"
	"strings"
	"testing"
)

// ssOutput is ss -tanpe output: a listener that nginx's master and two
// workers share, a connection of one worker, one of no process, and a
// TIME-WAIT socket, which has no inode.
const ssOutput = `State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process
LISTEN 0      511        127.0.0.1:28080      0.0.0.0:*     users:(("nginx",pid=12,fd=5),("nginx",pid=11,fd=5),("nginx",pid=10,fd=5)) ino:1001 sk:1 cgroup:/ <->
ESTAB  0      0          127.0.0.1:28080    127.0.0.1:40000 users:(("nginx",pid=11,fd=9)) uid:65534 ino:1002 sk:2 cgroup:/ <->
ESTAB  0      0          127.0.0.1:28080    127.0.0.1:40001 ino:1003 sk:3 cgroup:/ <->
TIME-WAIT 0   0          127.0.0.1:28080    127.0.0.1:40002 timer:(timewait,59sec,0) ino:0 sk:4
`

func TestParseSS(t *testing.T) {
	got, err := parseSS(strings.NewReader(ssOutput))
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64][]int{1001: {10, 11, 12}, 1002: {11}, 1003: nil}
	if len(got) != len(want) {
		t.Fatalf("parseSS = %v; want %v", got, want)
	}
	for ino, pids := range want {
		if !slices.Equal(got[ino], pids) {
			t.Errorf("parseSS: inode %d held by %v; want %v", ino, got[ino], pids)
		}
	}
}

func TestCheck(t *testing.T) {
	ss, _ := parseSS(strings.NewReader(ssOutput))
	tests := []struct {
		name     string
		json     string
		first    bool
		problems int
	}{
		{"every holder", `{"sockets":[{"inode":1001,"processes":[{"pid":12},{"pid":10},{"pid":11}]},{"inode":1002,"processes":[{"pid":11}]},{"inode":1003,"processes":[]}]}`, false, 0},
		{"a holder missing", `{"sockets":[{"inode":1001,"processes":[{"pid":10},{"pid":11}]},{"inode":1002,"processes":[{"pid":11}]},{"inode":1003,"processes":[]}]}`, false, 1},
		{"the wrong worker", `{"sockets":[{"inode":1001,"processes":[{"pid":10},{"pid":11},{"pid":12}]},{"inode":1002,"processes":[{"pid":12}]},{"inode":1003,"processes":[]}]}`, false, 1},
		{"a socket missing", `{"sockets":[{"inode":1001,"processes":[{"pid":10},{"pid":11},{"pid":12}]},{"inode":1002,"processes":[{"pid":11}]}]}`, false, 1},
		{"a socket ss does not list", `{"sockets":[{"inode":1001,"processes":[{"pid":10},{"pid":11},{"pid":12}]},{"inode":1002,"processes":[{"pid":11}]},{"inode":1003},{"inode":1004}]}`, false, 1},
		{"who's listeners", `{"listeners":[{"inode":1001,"processes":[{"pid":10},{"pid":11},{"pid":12}]}]}`, false, 2},
		{"first holder", `{"sockets":[{"inode":1001,"processes":[{"pid":11}]}]}`, true, 0},
		{"first holder: none", `{"sockets":[{"inode":1001,"processes":[]}]}`, true, 1},
		{"first holder: not one", `{"sockets":[{"inode":1001,"processes":[{"pid":13}]}]}`, true, 1},
		{"first holder: one where ss names none", `{"sockets":[{"inode":1003,"processes":[{"pid":13}]}]}`, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, err := parsePortctl([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			r := check(ss, pc, tt.first)
			if len(r.problems) != tt.problems {
				t.Errorf("check(first=%v) problems = %q; want %d", tt.first, r.problems, tt.problems)
			}
		})
	}
}
