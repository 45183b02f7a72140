//go:build !linux

package scan_test

import "testing"

// isolated runs t as it is: only Linux has network namespaces.
func isolated(*testing.T) bool { return false }
