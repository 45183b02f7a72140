// Package sshwire is an SSH client connection made for tunnels: the
// transport (RFC 4253), user authentication (RFC 4252, 4256) and the
// connection protocol's channels and remote forwards (RFC 4254), in the
// algorithms OpenSSH offers first: curve25519-sha256 with its strict key
// exchange, and AES-GCM.
//
// It exists for speed. Received packets are read many to a system call
// into one buffer, decrypted in place, and their data copied once, into
// blocks reused from channel to channel, from which a channel's WriteTo
// writes it out; sent data is copied once, into the packet it is sealed
// in, and each packet goes out in one write. Nothing is allocated per
// packet. golang.org/x/crypto/ssh, which allocates and copies every
// received packet on its way through three goroutines, provides the key
// types, signatures and host key checks used here, and remains the
// implementation for everything else: a caller falls back to it when
// NewClientConn reports ErrNoCommonAlgorithm.
//
// A Conn is safe for concurrent use.
package sshwire
