//go:build !linux

package sshtun

import (
	"net"
	"syscall"
)

// Raw socket reads and writes are Linux's (rawio_linux.go); elsewhere
// connections use their own methods.

func rawSocket(net.Conn) syscall.RawConn { return nil }

func rawRead(syscall.RawConn, []byte) (int, error)  { panic("sshtun: raw I/O is Linux's") }
func rawWrite(syscall.RawConn, []byte) (int, error) { panic("sshtun: raw I/O is Linux's") }
func tryWrite(syscall.RawConn, []byte) (int, error) { return 0, nil }
