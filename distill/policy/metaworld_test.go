package policy

import (
	"bytes"
	"context"
	"errors"
	"math"
	"reflect"
	"testing"

	"robodistill/sim/metaworld"
)

// metaWorldConfig is a tiny run on reach at 50 Hz with 60-step episodes.
func metaWorldConfig(t *testing.T) Config {
	sac := DefaultSAC()
	sac.Hidden, sac.Batch = 32, 32
	return Config{Task: "reach", Rate: 50, EpisodeSteps: 60, Steps: 300, Seed: 7, Envs: 2, LearningStarts: 100,
		EvalEvery: 150, EvalEpisodes: 2, SAC: sac, CheckpointEvery: 100, Checkpoint: t.TempDir()}
}

// TestMetaWorldReach runs SAC on MetaWorld briefly: it steps, learns, evaluates, and an
// interrupted run continues bit for bit (the simulator state rebuilt by replaying the
// episode's actions).
func TestMetaWorldReach(t *testing.T) {
	cfg := metaWorldConfig(t)
	want, wantCkpt := uninterrupted(t, cfg)
	if want.Spec.ObsDim != metaworld.ObsDim || want.Spec.ActDim != 4 || want.Spec.MaxSteps != 60 || want.Spec.Rate != 50 ||
		want.Spec.Observation != ObservationMetaWorld || want.Spec.Task != "reach" {
		t.Errorf("spec %+v", want.Spec)
	}
	if want.Steps != 300 || want.Updates != 200 || want.Episodes != 4 {
		t.Errorf("%d steps, %d updates, %d episodes; want 300, 200, 4", want.Steps, want.Updates, want.Episodes)
	}
	var steps []int
	for _, p := range want.Curve {
		steps = append(steps, p.Step)
		if p.Episodes != 2 || p.SuccessRate < 0 || p.SuccessRate > 1 || math.IsNaN(p.Return) || p.Return <= 0 || p.UsedReturn != p.Return {
			t.Errorf("eval point %+v", p)
		}
		t.Logf("step %d: success %.2f return %.1f, training episodes %d return %.1f", p.Step, p.SuccessRate, p.Return, p.TrainEpisodes, p.TrainReturn)
	}
	if w := []int{0, 150, 300}; !reflect.DeepEqual(steps, w) {
		t.Errorf("evaluations at %v, want %v", steps, w)
	}

	// 170 steps over 2 environments: 85 each, the 25th step of their second episode.
	cfg.Checkpoint = t.TempDir()
	got, gotCkpt := runInterrupted(t, cfg, func(c *Config, cancel func()) {
		c.LogEvery = 10
		c.Progress = cancelAt(170, cancel)
	})
	if got.ResumedFrom != 170 {
		t.Errorf("resumed from %d, want 170", got.ResumedFrom)
	}
	if !sameWeights(got.Agent, want.Agent) || !reflect.DeepEqual(got.Curve, want.Curve) || !bytes.Equal(gotCkpt, wantCkpt) {
		t.Error("the resumed run differs from the uninterrupted one")
	}
}

func TestMetaWorldMissingAssets(t *testing.T) {
	cfg := metaWorldConfig(t)
	cfg.Assets = "/nonexistent"
	if _, err := Train(context.Background(), cfg); !errors.Is(err, metaworld.ErrAssets) {
		t.Fatalf("got %v, want metaworld.ErrAssets", err)
	}
}
