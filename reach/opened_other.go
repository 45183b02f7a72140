//go:build !linux

package reach

import "github.com/portctl/portctl/firewall"

// ruleOpenings finds nothing: rules' expressions are decoded on Linux
// alone.
func ruleOpenings(t *firewall.Table, r *firewall.Rule) []Opening { return nil }
