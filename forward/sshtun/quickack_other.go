//go:build !linux

package sshtun

import "net"

// quickAcker is Linux's TCP_QUICKACK (see quickack_linux.go); elsewhere
// there is none.
func quickAcker(c net.Conn) func() { return nil }
