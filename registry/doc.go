// Package registry answers "what is port N?" and "which port does X use?".
//
// It holds IANA's Service Name and Transport Protocol Port Number Registry
// (tcp, udp, sctp and dccp; every name assigned to a port, with description
// and, from IANA's own CSV, references, assignee, contact, dates and notes),
// built into the binary from generated data (zz_generated.go, made by
// `go generate` from the files in sources/), and a hand-researched table of what ports are used for in
// practice, with security notes (defacto_data.go).
//
// Builtin returns the built-in registry; New adds a services(5) overlay
// (such as /etc/services) that is read lazily, on the first lookup by name
// the built-in data cannot answer; FromCSV builds a registry from a newer
// copy of IANA's CSV. References and People turn IANA's bracketed syntax
// ("[RFC9110]", "[Jon_Postel]") into text to show. Lookups by port (Registry.Port) and by name
// (Registry.Name) use indexes computed when the data was generated, so the
// first lookup in a process costs microseconds. Registry.Search ranks ports
// by how well names, aliases, descriptions and de facto uses match.
//
// Classify gives a port's RFC 6335 class; ParsePort, ParseRange and
// ParseProtocol parse user input strictly, with errors that match ErrSyntax.
//
// The built-in assignments are generated as tables without pointers (see
// builtin.go): the garbage collector scans every pointer-holding global on
// every cycle, and a []Assignment of them cost processes that collect often
// a tenth of their CPU.
//
// The package does no I/O of its own: readers and file contents are passed
// in by the caller.
package registry
