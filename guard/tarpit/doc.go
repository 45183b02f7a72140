// Package tarpit answers connections to chosen unused ports and holds them
// open, writing a random line fragment now and then, as endlessh does for
// SSH: an SSH client waits through lines before the server's version
// string (RFC 4253 section 4.2) and so waits for good, and a scanner's
// connection costs it a socket for as long as it waits. The number of
// connections held is bounded; past the bound new connections are closed
// at once.
package tarpit
