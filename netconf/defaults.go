package netconf

import "github.com/portctl/portctl/registry"

// The documented default ephemeral ranges.
var (
	defaultLinuxRange = registry.Range{First: 32768, Last: 60999}
	// IANA's dynamic range, used by Windows Vista and later and by macOS.
	defaultIANARange = registry.Range{First: 49152, Last: 65535}
)
