//go:build !linux

package cli

// canRawSocket: the SYN engine is Linux only.
func canRawSocket() bool { return false }
