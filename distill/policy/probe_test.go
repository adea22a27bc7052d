package policy

import (
	"context"
	"testing"
)

// negReward prefers what the simulator dislikes, and checks it is given frames.
type negReward struct {
	t      *testing.T
	frames int
}

func (*negReward) Name() string     { return "negated" }
func (*negReward) Labeler() string  { return "test" }
func (*negReward) NeedsFrame() bool { return true }
func (r *negReward) Reward(_ int, _ []float64, frame []byte, w, h int, sim float64) float64 {
	if len(frame) != w*h*3 || w != 32 || h != 32 {
		r.t.Errorf("frame of %d bytes, %dx%d", len(frame), w, h)
	}
	nonzero := false
	for _, b := range frame {
		nonzero = nonzero || b != 0
	}
	if nonzero {
		r.frames++
	}
	return -sim
}

// TestProbeReach: the simulator's reward peaks within reach's success radius and orders
// the grid by distance; its negation peaks far away and orders it backwards.
func TestProbeReach(t *testing.T) {
	cfg := ProbeConfig{Goals: 2, OffsetsXY: []float64{-0.1, 0, 0.1}, OffsetsZ: []float64{-0.05, 0, 0.05}, Settle: 60, FrameSize: 32}
	cfg.Env.Rate = 50
	gt, err := ProbeReach(context.Background(), GroundTruth{}, "groundtruth", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if gt.Points != 27 || len(gt.PerGoal) != 2 || gt.ArgmaxSuccess != 1 || gt.ArgmaxDist > 0.05 || gt.Spearman < 0.8 || gt.NearPairAcc != 1 {
		t.Errorf("ground truth: %+v", gt)
	}
	if gt.PerGoal[0].Seed != 1000 || gt.PerGoal[1].Seed != 1001 || gt.PerGoal[0].Goal == gt.PerGoal[1].Goal || gt.PerGoal[0].NearPairs == 0 {
		t.Errorf("per goal: %+v", gt.PerGoal)
	}
	neg := &negReward{t: t}
	cfg.Goals = 1
	bad, err := ProbeReach(context.Background(), neg, "negated", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if neg.frames != 27 || bad.ArgmaxSuccess != 0 || bad.ArgmaxDist < 0.08 || bad.Spearman > -0.8 || bad.NearPairAcc > 0.1 {
		t.Errorf("negated (%d frames): %+v", neg.frames, bad)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ProbeReach(ctx, GroundTruth{}, "groundtruth", cfg); err == nil {
		t.Error("a cancelled probe returned no error")
	}
}
