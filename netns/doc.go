// Package netns finds the host's network namespaces (List) and runs code
// inside one of them (Do): what the socket table (sockets), the port
// settings (netconf) and the tests' helpers (testnet) need to look at a
// namespace other than their own.
package netns
