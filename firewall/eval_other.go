//go:build !linux

package firewall

// The evaluator walks the expressions of github.com/google/nftables/expr,
// which builds on Linux alone; elsewhere there is no nftables ruleset to
// walk, and every evaluation is unknown.
func evaluate(rs *Ruleset, h *Host, p Packet) (Result, scope) {
	return Result{Verdict: Unknown, Steps: []Step{}, DependsOn: []string{"evaluating nftables rules is supported on Linux only"}}, scope{lo: p.Src, hi: p.Src}
}
