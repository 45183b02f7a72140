package firewall

// Evaluate walks p through rs as the kernel would on h, and says what
// happens to it. It sends nothing and changes nothing.
func Evaluate(rs *Ruleset, h *Host, p Packet) Result {
	return Result{Verdict: Unknown, DependsOn: []string{"the evaluator is not written yet"}}
}
