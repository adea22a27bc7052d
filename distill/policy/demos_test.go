package policy

import (
	"context"
	"math"
	"strings"
	"testing"

	"robodistill/sim/collect"
	"robodistill/sim/metaworld"
)

// collectDemos records scripted reach episodes of 40 steps at rate with 8-pixel frames.
func collectDemos(t *testing.T, rate, episodes int) string {
	t.Helper()
	task, err := metaworld.Lookup("reach")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := collect.Run(context.Background(), collect.Config{Task: task, Policy: "scripted", Episodes: episodes,
		Seed: 500, Camera: "corner", Size: 8, Rate: rate, MaxSteps: 40, Full: true, Workers: 1, Out: dir}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDemos: recorded episodes go into the replay buffer as the transitions the simulator
// makes (replaying their actions from the episodes' seeds reproduces the observations and
// the frames' rewards), are pinned, and a run with them resumes bit for bit.
func TestDemos(t *testing.T) {
	dir := collectDemos(t, 50, 2)
	cfg := metaWorldConfig(t)
	cfg.Demos, cfg.DemoRatio, cfg.Reward, cfg.FrameSize = dir, 0.5, frameReward{}, 8
	cfg.Buffer = 200 // the run's 300 steps wrap around the pinned 80
	c := cfg.withDefaults()
	c.NewEnv = func() (Env, error) { return NewMetaWorld("reach", metaworld.Options{Rate: 50, MaxSteps: 60}) }
	tr, err := newTrainer(c)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	if err := tr.prefill(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := tr.st.Demos
	if st.Episodes != 2 || st.Transitions != 80 || tr.replay.Pinned() != 80 || st.Successes > 2 || st.Return <= 0 {
		t.Fatalf("demos %+v, pinned %d; want 2 episodes of 40 transitions, all pinned", st, tr.replay.Pinned())
	}
	env, err := NewMetaWorld("reach", metaworld.Options{Rate: 50, MaxSteps: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	obs, next := make([]float64, metaworld.ObsDim), make([]float64, metaworld.ObsDim)
	frame := make([]byte, 8*8*3)
	rp := tr.replay
	O, A := metaworld.ObsDim, 4
	for e, seed := range []uint64{500, 501} {
		if err := env.Reset(seed, obs); err != nil {
			t.Fatal(err)
		}
		var worst float64
		for i := range 40 {
			k := e*40 + i
			act := make([]float64, A)
			for j := range act {
				act[j] = float64(rp.act[k*A+j])
			}
			for j := range O {
				if i > 0 && rp.obs[k*O+j] != rp.next[(k-1)*O+j] {
					t.Fatalf("episode %d, transition %d: observation is not the previous transition's next", e, i)
				}
			}
			if _, err := env.Step(act, next); err != nil {
				t.Fatal(err)
			}
			for j := range O {
				worst = max(worst, math.Abs(next[j]-float64(rp.next[k*O+j])))
			}
			if err := env.Render("corner", 8, 8, frame); err != nil {
				t.Fatal(err)
			}
			if r := (frameReward{}).Reward(0, next, frame, 8, 8, 0); math.Abs(r-float64(rp.rew[k])) > 1e-6 {
				t.Errorf("episode %d, transition %d: reward %v, the replayed frame's %v", e, i, rp.rew[k], r)
			}
		}
		// The actions went through the recording's velocity commands (float64) and back.
		if worst > 1e-5 {
			t.Errorf("episode %d: replaying the recorded actions reproduces the observations to %.2g", e, worst)
		}
	}

	want, wantCkpt := uninterrupted(t, cfg)
	if want.Demos == nil || want.Demos.Transitions != 80 {
		t.Fatalf("result demos %+v", want.Demos)
	}
	cfg.Checkpoint = t.TempDir()
	got, gotCkpt := runInterrupted(t, cfg, func(c *Config, cancel func()) { c.LogEvery = 10; c.Progress = cancelAt(170, cancel) })
	if got.ResumedFrom != 170 || !sameWeights(got.Agent, want.Agent) || string(gotCkpt) != string(wantCkpt) {
		t.Error("the resumed run with demonstrations differs from the uninterrupted one")
	}
}

// TestDemosErrors: recordings made under other conditions are refused, naming them.
func TestDemosErrors(t *testing.T) {
	at80 := collectDemos(t, 80, 1)
	for _, c := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"rate", func(c *Config) { c.Demos = at80 }, "recorded at 80 Hz, training at 50 Hz"},
		{"missing", func(c *Config) { c.Demos = t.TempDir() + "/none" }, "demos:"},
		{"ratio", func(c *Config) { c.Demos, c.DemoRatio = at80, 1.5 }, "demo_ratio"},
		{"buffer", func(c *Config) { c.Rate, c.Demos, c.Buffer = 80, at80, 20 }, "cannot hold"},
	} {
		cfg := metaWorldConfig(t)
		c.set(&cfg)
		_, err := Train(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
}
