// Package netns runs code inside another Linux network namespace: what the
// socket table (sockets), the port settings (netconf) and the tests'
// helpers (testnet) need to look at a namespace other than their own.
package netns
