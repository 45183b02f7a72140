//go:build !linux

package sshtun

import "net"

// rawIO is Linux's (rawio_linux.go); elsewhere connections use their own
// methods.
type rawIO struct{}

func newRawIO(net.Conn) *rawIO { return nil }

func (*rawIO) Read([]byte) (int, error)     { panic("sshtun: raw I/O is Linux's") }
func (*rawIO) Write([]byte) (int, error)    { panic("sshtun: raw I/O is Linux's") }
func (*rawIO) TryWrite([]byte) (int, error) { return 0, nil }
func (*rawIO) quickAck()                    {}
