package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// viewReward scores the pointMassView picture: minus the distance between the red
// and the green column, which is the simulator's reward up to scale.
type viewReward struct{}

func (viewReward) Name() string     { return "view" }
func (viewReward) Labeler() string  { return "test-view" }
func (viewReward) NeedsFrame() bool { return true }
func (viewReward) Reward(_ int, _ []float64, frame []byte, w, _ int, _ float64) float64 {
	var cx, cg int
	for x := range w {
		if frame[3*x] == 255 {
			cx = x
		}
		if frame[3*x+1] == 255 {
			cg = x
		}
	}
	return -float64(max(cx-cg, cg-cx))
}

// A critic trained on the point mass's true reward values states the way its reward
// does, so a reward that sees the distance correlates with it along trajectories.
func TestCreditAssignment(t *testing.T) {
	cfg := smallConfig()
	cfg.NewEnv, cfg.Steps, cfg.Envs, cfg.SAC.Hidden, cfg.SAC.Batch = newPointMassView, 2000, 2, 32, 32
	cfg.Checkpoint = t.TempDir()
	if _, err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	ag, err := LoadAgent(cfg.Checkpoint, cfg.SAC, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	res, err := CreditAssignment(context.Background(), CreditConfig{NewEnv: newPointMassView, Critic: ag, Reward: viewReward{},
		FrameSize: viewSize, Episodes: 8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mean corr(view reward, V) %.3f, corr(sim reward, V) %.3f; pooled %.3f and %.3f; success %.2f",
		res.MeanPearsonDistilled, res.MeanPearsonSim, res.PooledPearsonDistilled, res.PooledPearsonSim, res.SuccessRate)
	if res.PooledPearsonSim < 0.5 || res.PooledPearsonDistilled < 0.5 || len(res.Steps) != 8*pointMassSteps {
		t.Errorf("pooled correlations %.3f (distilled) and %.3f (sim) over %d steps: want both > 0.5 over %d",
			res.PooledPearsonDistilled, res.PooledPearsonSim, len(res.Steps), 8*pointMassSteps)
	}
	dir := t.TempDir()
	if err := WriteCredit(dir, "point mass", res); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"credit.json", "credit.csv", "credit.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// A checkpoint of another network size, or none, is refused.
	other := cfg.SAC
	other.Hidden = 16
	if _, err := LoadAgent(cfg.Checkpoint, other, 2, 1); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("wrong hidden size: %v", err)
	}
	if _, err := LoadAgent(t.TempDir(), cfg.SAC, 2, 1); err == nil {
		t.Error("an empty folder was accepted")
	}
}
