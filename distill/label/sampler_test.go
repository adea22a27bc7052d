package label_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"robodistill/distill/label"
	"robodistill/distill/label/labeltest"
)

func TestSyntheticSourceConformance(t *testing.T) {
	labeltest.TestSource(t, labeltest.Synthetic(labeltest.SyntheticOptions{Tasks: []string{"a", "b"}, Hold: 3}))
	labeltest.TestSource(t, labeltest.Synthetic(labeltest.SyntheticOptions{NoTruth: true, W: 32, H: 24}))
}

func TestUniform(t *testing.T) {
	src := labeltest.Synthetic(labeltest.SyntheticOptions{Tasks: []string{"a", "b"}, Episodes: 5, Steps: 50, Seed: 3})
	eps := src.Episodes()
	u, err := label.NewUniform(src, label.UniformOptions{Within: 0.3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := u.Sample(context.Background(), 4000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	within, aFirstEarlier := 0, 0
	stepCount := map[int]int{}
	for _, p := range pairs {
		a, b := p.A.Last(), p.B.Last()
		if a.Hash == b.Hash {
			t.Fatalf("identical frames %s", a.Hash)
		}
		if seen[p.Key()] {
			t.Fatalf("pair drawn twice")
		}
		seen[p.Key()] = true
		if eps[a.Episode].Task != eps[b.Episode].Task {
			t.Fatalf("pair across tasks %s/%s", eps[a.Episode].Task, eps[b.Episode].Task)
		}
		if a.Episode == b.Episode {
			within++
		}
		if a.Episode == b.Episode && a.Step < b.Step {
			aFirstEarlier++
		}
		stepCount[a.Step/10]++
		stepCount[b.Step/10]++
	}
	if share := float64(within) / float64(len(pairs)); math.Abs(share-0.3) > 0.03 {
		t.Errorf("within-episode share %.3f, want 0.3", share)
	}
	if share := float64(aFirstEarlier) / float64(within); math.Abs(share-0.5) > 0.05 {
		t.Errorf("A is the earlier frame in %.3f of within pairs, want 0.5 (random order)", share)
	}
	// Uniform over steps: 50 steps per episode, in bins of 10.
	for bin := 0; bin < 5; bin++ {
		if share := float64(stepCount[bin]) / float64(2*len(pairs)); math.Abs(share-0.2) > 0.03 {
			t.Errorf("steps %d..%d: share %.3f, want 0.2", bin*10, bin*10+9, share)
		}
	}

	// Deterministic by seed.
	u2, _ := label.NewUniform(src, label.UniformOptions{Within: 0.3, Seed: 1})
	again, _ := u2.Sample(context.Background(), 100)
	for i := range again {
		if again[i].Key() != pairs[i].Key() || again[i].A.Last().Hash != pairs[i].A.Last().Hash {
			t.Fatalf("pair %d differs for the same seed", i)
		}
	}
}

// TestUniformSkipsIdentical: an episode that ends idle repeats its last frame byte for
// byte; pairs of identical frames are never drawn, and copies count as one frame.
func TestUniformSkipsIdentical(t *testing.T) {
	src := labeltest.Synthetic(labeltest.SyntheticOptions{Episodes: 1, Steps: 3, Hold: 5, Seed: 3})
	u, err := label.NewUniform(src, label.UniformOptions{Within: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := u.Sample(context.Background(), 100)
	if !errors.Is(err, label.ErrExhausted) || len(pairs) != 3 { // 3 distinct frames: 3 pairs
		t.Fatalf("%d pairs, %v; want 3 and ErrExhausted", len(pairs), err)
	}
	for _, p := range pairs {
		if p.A.Last().Hash == p.B.Last().Hash {
			t.Fatal("identical frames paired")
		}
	}
}

func TestUniformSegmentsAndExhaustion(t *testing.T) {
	src := labeltest.Synthetic(labeltest.SyntheticOptions{Episodes: 2, Steps: 6, Seed: 1})
	u, err := label.NewUniform(src, label.UniformOptions{Within: 0.5, Segment: 3, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := u.Sample(context.Background(), 1000)
	if !errors.Is(err, label.ErrExhausted) {
		t.Fatalf("err %v, want ErrExhausted", err)
	}
	// 2 episodes × 4 segment ends = 8 segments: 28 distinct pairs.
	if len(pairs) != 28 {
		t.Errorf("%d pairs, want 28", len(pairs))
	}
	for _, p := range pairs {
		for _, s := range []label.Segment{p.A, p.B} {
			if len(s) != 3 {
				t.Fatalf("segment of %d frames", len(s))
			}
			for i := 1; i < len(s); i++ {
				if s[i].Episode != s[0].Episode || s[i].Step != s[i-1].Step+1 {
					t.Fatalf("segment not consecutive: %+v", s)
				}
			}
		}
	}
	if _, err := label.NewUniform(src, label.UniformOptions{Within: 1.5}); err == nil {
		t.Error("within 1.5 accepted")
	}
}

type gapScorer struct{}

// Disagreement scores pairs by closeness in reward: the closer, the more informative.
func (gapScorer) Disagreement(_ context.Context, ps []label.Pair) ([]float64, error) {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = -math.Abs(p.A.Last().Reward - p.B.Last().Reward)
	}
	return out, nil
}

func TestDisagreement(t *testing.T) {
	src := labeltest.Synthetic(labeltest.SyntheticOptions{Episodes: 4, Steps: 30, Seed: 5})
	u, _ := label.NewUniform(src, label.UniformOptions{Within: 0.5, Seed: 1})
	d := &label.Disagreement{Base: u, Scorer: gapScorer{}, Oversample: 8}
	ps, err := d.Sample(context.Background(), 50)
	if err != nil || len(ps) != 50 {
		t.Fatalf("%d pairs, %v", len(ps), err)
	}
	var mean float64
	for _, p := range ps {
		mean += math.Abs(p.A.Last().Reward-p.B.Last().Reward) / 50
	}
	ref, _ := label.NewUniform(src, label.UniformOptions{Within: 0.5, Seed: 9})
	rs, _ := ref.Sample(context.Background(), 400)
	var refMean float64
	for _, p := range rs {
		refMean += math.Abs(p.A.Last().Reward-p.B.Last().Reward) / 400
	}
	if mean > refMean/4 {
		t.Errorf("active pairs' mean gap %.3f, uniform %.3f: the scorer was not followed", mean, refMean)
	}
	// Released candidates can be drawn again: the pool is not used up by 8x oversampling.
	total := 0
	for {
		ps, err := d.Sample(context.Background(), 50)
		total += len(ps)
		if err != nil || len(ps) == 0 {
			break
		}
	}
	if n := 120 * 119 / 2; total+50 < n*9/10 {
		t.Errorf("only %d of ~%d pairs reachable: rejected candidates were not released", total+50, n)
	}
}
