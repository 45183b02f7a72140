//go:build !linux

package firewall

// Without the kernel's expressions (google/nftables builds on Linux
// alone), a rule's facts come from its text; expressions a model built
// elsewhere holds are matches facts cannot tell.

func exprFacts(r *Rule, f *facts) { f.other += len(r.Exprs) }

func exprComment(r *Rule) string { return "" }

func exprMasquerades(r *Rule) bool { return false }
