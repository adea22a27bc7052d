package policy

import (
	"math/rand/v2"
	"testing"
)

// fullAgent is the MetaWorld-sized agent (39 → 256 → 256 → 8, critics 43 → 256 → 256 → 1,
// batch 256; LayerNorm in the critics with norm) with a replay buffer of random transitions.
func fullAgent(tb testing.TB, norm bool) (*Agent, *Replay) {
	cfg := DefaultSAC()
	cfg.CriticNorm = norm
	ag, err := NewAgent(cfg, 39, 4, 1)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := NewReplay(2000, 39, 4)
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	obs, next, act := make([]float32, 39), make([]float32, 39), make([]float32, 4)
	for i := 0; i < r.Cap(); i++ {
		for j := range obs {
			obs[j], next[j] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		ag.RandomActions(act)
		r.Add(obs, act, float32(rng.Float64()), next, false)
	}
	return ag, r
}

// TestUpdateAllocs: an update allocates nothing once the buffers exist (OpenBLAS backend),
// with or without the critics' LayerNorms.
func TestUpdateAllocs(t *testing.T) {
	for _, norm := range []bool{false, true} {
		ag, r := fullAgent(t, norm)
		ag.Update(r)
		if n := testing.AllocsPerRun(3, func() { ag.Update(r) }); n != 0 {
			t.Errorf("Update (critic norm %v): %v allocations", norm, n)
		}
	}
	ag, _ := fullAgent(t, false)
	obs := make([]float32, 2*39)
	act := make([]float32, 2*4)
	if n := testing.AllocsPerRun(20, func() { ag.Act(obs, 2, false, act) }); n != 0 {
		t.Errorf("Act: %v allocations", n)
	}
}

// BenchmarkUpdate is one SAC update at MetaWorld size, with plain critics and with
// LayerNorm in them (--critic-norm).
func BenchmarkUpdate(b *testing.B) {
	for _, c := range []struct {
		name string
		norm bool
	}{{"plain", false}, {"critic-norm", true}} {
		b.Run(c.name, func(b *testing.B) {
			ag, r := fullAgent(b, c.norm)
			ag.Update(r)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ag.Update(r)
			}
		})
	}
}

// BenchmarkAct is action selection for two environments.
func BenchmarkAct(b *testing.B) {
	ag, _ := fullAgent(b, false)
	obs := make([]float32, 2*39)
	act := make([]float32, 2*4)
	for i := 0; i < b.N; i++ {
		ag.Act(obs, 2, false, act)
	}
}
