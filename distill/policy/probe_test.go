package policy

import (
	"context"
	"math"
	"testing"

	"robodistill/sim/metaworld"
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
	if gt.PeakPrecision != 1 || gt.PeakDist > 0.05 || math.Abs(gt.PeakSight) > 0.05 || gt.PerGoal[0].Peak.Points == 0 {
		t.Errorf("ground truth's peak region: %+v", gt)
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
	if neg.frames != 27 || bad.ArgmaxSuccess != 0 || bad.ArgmaxDist < 0.08 || bad.Spearman > -0.8 || bad.NearPairAcc > 0.1 || bad.PeakPrecision != 0 || bad.PeakDist < 0.08 {
		t.Errorf("negated (%d frames): %+v", neg.frames, bad)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ProbeReach(ctx, GroundTruth{}, "groundtruth", cfg); err == nil {
		t.Error("a cancelled probe returned no error")
	}
}

// TestPeakRegion: the region is as large as the ball's share of the grid, its precision
// counts the region's points inside, and its offset's sight component has the camera's sign.
func TestPeakRegion(t *testing.T) {
	sight := metaworld.Vec3{0, 1, 0} // the camera looks along +y
	off := []metaworld.Vec3{{0, 0, 0}, {0, 0.03, 0}, {0, -0.03, 0}, {0, 0.08, 0}, {0.1, 0, 0}, {0, -0.08, 0}}
	dist := make([]float64, len(off))
	for i, o := range off {
		dist[i] = o.Norm()
	}
	// Prefers points beyond the goal: the region (3 points) is {+8, +3, 0} cm in y.
	beyond := []float64{2, 3, 1, 4, 0, -1}
	p := peakRegion(dist, beyond, off, sight)
	if p.Points != 3 || math.Abs(p.Precision-2.0/3) > 1e-12 || math.Abs(p.Offset[1]-0.11/3) > 1e-12 || math.Abs(p.Sight-0.11/3) > 1e-12 || p.Offset[0] != 0 {
		t.Errorf("beyond the goal: %+v", p)
	}
	// In front of the goal: the sight component is negative.
	front := []float64{2, 0, 3, -1, 1, 4}
	if p := peakRegion(dist, front, off, sight); math.Abs(p.Precision-2.0/3) > 1e-12 || math.Abs(p.Sight+0.11/3) > 1e-12 {
		t.Errorf("in front of the goal: %+v", p)
	}
	// A flat reward keeps the grid's order.
	if p := peakRegion(dist, make([]float64, len(off)), off, sight); p.Precision != 1 || p.Sight != 0 {
		t.Errorf("flat: %+v", p)
	}
	if p := peakRegion([]float64{0.1, 0.2}, []float64{1, 2}, off[:2], sight); p.Points != 0 || p.Precision != 0 {
		t.Errorf("no point within 5 cm: %+v", p)
	}
}
