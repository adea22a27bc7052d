package policy

import (
	"bytes"
	"context"
	"math"
	"testing"

	"robodistill/control/onnxio"
)

// countedTruth is the simulator's reward with a manifest count term, as a reward model
// with reward.count would give.
type countedTruth struct{ GroundTruth }

func (countedTruth) CountTerm() *onnxio.CountTerm { return &onnxio.CountTerm{Beta: 0.5, Cell: 0.1} }

// The count term divides each training reward by N(o)^β over the episode's
// observations, is applied in environment order (deterministic), survives a resume
// (the counts are rebuilt from the replayed episode) and can be turned off.
func TestCountTerm(t *testing.T) {
	base := smallConfig()
	base.Envs, base.CheckpointEvery = 2, 100
	base.Reward = countedTruth{}
	base.Checkpoint = t.TempDir()
	want, wantCkpt := uninterrupted(t, base)

	cfg := base
	cfg.Checkpoint = t.TempDir()
	got, gotCkpt := runInterrupted(t, cfg, func(c *Config, cancel func()) { c.Progress = cancelAt(250, cancel) })
	if !sameWeights(got.Agent, want.Agent) || !bytes.Equal(gotCkpt, wantCkpt) {
		t.Error("interrupted and resumed run differs from the uninterrupted one")
	}

	// The training returns (used) are below the simulator's in magnitude only where
	// cells repeat; with the term off they are equal.
	off := base
	off.NoCount, off.Checkpoint = true, ""
	plain, err := Train(context.Background(), off)
	if err != nil {
		t.Fatal(err)
	}
	differs := false
	for i, p := range want.Curve {
		if i > 0 && !math.IsNaN(p.TrainUsedReturn) && p.TrainUsedReturn != p.TrainReturn {
			differs = true
		}
	}
	if !differs {
		t.Error("the count term never changed a training reward")
	}
	for i, p := range plain.Curve {
		if i > 0 && !math.IsNaN(p.TrainUsedReturn) && p.TrainUsedReturn != p.TrainReturn {
			t.Errorf("NoCount: step %d: training return %v used, simulator's %v", p.Step, p.TrainUsedReturn, p.TrainReturn)
		}
	}

	// Relabelling keeps the divisor.
	r, _ := NewReplay(2, 1, 1)
	r.EnableDivisors()
	r.Add([]float32{0}, []float32{0}, 1, []float32{0}, false)
	r.SetDivisor(0, 4)
	r.SetReward(0, 2)
	if r.rew[0] != 0.5 {
		t.Errorf("SetReward with divisor 4: %v, want 0.5", r.rew[0])
	}
}
