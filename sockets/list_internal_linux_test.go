package sockets

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMergeMPTCP(t *testing.T) {
	tcpListener := Socket{Proto: TCP, State: Listen, Inode: 10}
	tcpConn := Socket{Proto: TCP, State: Established, Inode: 11}
	udp := Socket{Proto: UDP, State: Close, Inode: 10} // another table's inode space in a test, not the kernel's
	mpListener := Socket{Proto: MPTCP, State: Listen, Inode: 10}
	mpConn := Socket{Proto: MPTCP, State: Established, Inode: 20}
	mpNoInode := Socket{Proto: MPTCP, State: Established}
	marked := tcpListener
	marked.MPTCP = true

	tests := []struct {
		name      string
		socks, mp []Socket
		keep      bool
		want      []Socket
	}{
		{"no MPTCP sockets", []Socket{tcpListener, tcpConn}, nil, true, []Socket{tcpListener, tcpConn}},
		{"a listener is marked, not listed twice", []Socket{tcpConn, tcpListener}, []Socket{mpListener}, true, []Socket{tcpConn, marked}},
		{"connections are kept", []Socket{tcpListener}, []Socket{mpListener, mpConn, mpNoInode}, true, []Socket{marked, mpConn, mpNoInode}},
		{"or dropped", []Socket{tcpListener}, []Socket{mpListener, mpConn}, false, []Socket{marked}},
		{"only TCP entries are marked", []Socket{udp}, []Socket{mpListener}, true, []Socket{udp, mpListener}},
		{"in the same state", []Socket{{Proto: TCP, State: Established, Inode: 10}}, []Socket{mpListener}, false, []Socket{{Proto: TCP, State: Established, Inode: 10}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeMPTCP(append([]Socket(nil), tt.socks...), tt.mp, tt.keep)
			if diff := cmp.Diff(tt.want, got, equateAddrs); diff != "" {
				t.Errorf("mergeMPTCP mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
