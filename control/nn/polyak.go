package nn

import "fmt"

// Polyak moves every target parameter toward its source by tau, as soft target updates in
// off-policy RL do: t ← (1 − tau)·t + tau·s, in float32 (torch's mul_(1 − tau) then
// add_(s, alpha=tau), which SB3's polyak_update runs). target and source are the same
// network's parameter lists (same order, names and shapes); a mismatch is a programming
// error and panics.
func Polyak(target, source []*Param, tau float64) {
	if len(target) != len(source) {
		panic(fmt.Sprintf("nn: Polyak: %d target parameters, %d source", len(target), len(source)))
	}
	keep, take := float32(1-tau), float32(tau)
	for i, t := range target {
		s := source[i]
		if t.Name != s.Name || len(t.Value) != len(s.Value) {
			panic(fmt.Sprintf("nn: Polyak: target %q %v, source %q %v", t.Name, t.Shape, s.Name, s.Shape))
		}
		for j, v := range s.Value {
			t.Value[j] = t.Value[j]*keep + v*take
		}
	}
}

// CopyParams copies the source parameters' values into target (a hard target update);
// the lists must match as for Polyak.
func CopyParams(target, source []*Param) {
	if len(target) != len(source) {
		panic(fmt.Sprintf("nn: CopyParams: %d target parameters, %d source", len(target), len(source)))
	}
	for i, t := range target {
		s := source[i]
		if t.Name != s.Name || len(t.Value) != len(s.Value) {
			panic(fmt.Sprintf("nn: CopyParams: target %q %v, source %q %v", t.Name, t.Shape, s.Name, s.Shape))
		}
		copy(t.Value, s.Value)
	}
}
