package policy

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"robodistill/control/nn"
)

// pointMass is a 1-D task for tests: the agent moves x by up to 0.2 per step toward a goal
// g it observes; reward −|x − g|, success within 0.05, episodes of 20 steps, no
// termination (as MetaWorld).
type pointMass struct {
	x, g float64
	t    int
}

const pointMassSteps = 20

func newPointMass() (Env, error) { return &pointMass{}, nil }

func (p *pointMass) Spec() Spec {
	return Spec{Task: "pointmass", ObsDim: 2, ActDim: 1, MaxSteps: pointMassSteps, Observation: "pointmass-2", Action: "velocity, 0.2 per step"}
}

func (p *pointMass) Reset(seed uint64, obs []float64) error {
	rng := rand.New(rand.NewPCG(seed, 0))
	p.x, p.g, p.t = 2*rng.Float64()-1, rng.Float64()-0.5, 0
	obs[0], obs[1] = p.x, p.g
	return nil
}

func (p *pointMass) Step(a []float64, obs []float64) (StepResult, error) {
	p.x = math.Max(-1, math.Min(1, p.x+0.2*a[0]))
	p.t++
	obs[0], obs[1] = p.x, p.g
	d := math.Abs(p.x - p.g)
	return StepResult{Reward: -d, Success: d < 0.05, Truncated: p.t >= pointMassSteps}, nil
}

// Render draws x and g as bytes 0 and 1 of the frame.
func (p *pointMass) Render(_ string, w, h int, frame []byte) error {
	clear(frame[:w*h*3])
	frame[0], frame[1] = byte(math.Round((p.x+1)*127)), byte(math.Round((p.g+1)*127))
	return nil
}

func (p *pointMass) Close() {}

// frameReward scores from the rendered frame, to exercise the rendering path.
type frameReward struct{}

func (frameReward) Name() string     { return "frame" }
func (frameReward) Labeler() string  { return "test-frame" }
func (frameReward) NeedsFrame() bool { return true }
func (frameReward) Reward(_ int, _ []float64, frame []byte, w, h int, _ float64) float64 {
	if w != 8 || h != 8 || len(frame) != 8*8*3 {
		panic("frame size")
	}
	return -math.Abs(float64(frame[0])-float64(frame[1])) / 127
}

func smallConfig() Config {
	sac := DefaultSAC()
	sac.Hidden, sac.Batch = 16, 16
	return Config{NewEnv: newPointMass, Steps: 400, Seed: 3, Envs: 1, LearningStarts: 50, EvalEvery: 150, EvalEpisodes: 3,
		SAC: sac, FrameSize: 8, LogEvery: 10}
}

// weights lists every learnt value of the agent.
func weights(ag *Agent) [][]float32 {
	var out [][]float32
	for _, n := range ag.nets() {
		for _, p := range n.Params() {
			out = append(out, p.Value)
		}
	}
	return append(out, ag.logAlpha.Value)
}

func sameWeights(a, b *Agent) bool {
	wa, wb := weights(a), weights(b)
	for i := range wa {
		for j := range wa[i] {
			if math.Float32bits(wa[i][j]) != math.Float32bits(wb[i][j]) {
				return false
			}
		}
	}
	return true
}

func TestTrainDeterministic(t *testing.T) {
	for _, envs := range []int{1, 2} {
		var runs [2]*Result
		for k := range runs {
			cfg := smallConfig()
			cfg.Envs = envs
			cfg.Reward = frameReward{}
			res, err := Train(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			runs[k] = res
		}
		if !sameWeights(runs[0].Agent, runs[1].Agent) {
			t.Errorf("envs %d: two runs with the same seed end with different weights", envs)
		}
		if !reflect.DeepEqual(runs[0].Curve, runs[1].Curve) {
			t.Errorf("envs %d: curves differ:\n%+v\n%+v", envs, runs[0].Curve, runs[1].Curve)
		}
		r := runs[0]
		if r.Steps != 400 || r.Updates != 400-50 || r.Episodes != 400/pointMassSteps {
			t.Errorf("envs %d: %d steps, %d updates, %d episodes; want 400, 350, 20", envs, r.Steps, r.Updates, r.Episodes)
		}
		var steps []int
		for _, p := range r.Curve {
			steps = append(steps, p.Step)
			if p.Episodes != 3 || p.SuccessRate < 0 || p.SuccessRate > 1 || p.UsedReturn > 0 {
				t.Errorf("envs %d: eval point %+v", envs, p)
			}
		}
		if want := []int{0, 150, 300, 400}; !reflect.DeepEqual(steps, want) {
			t.Errorf("envs %d: evaluations at %v, want %v", envs, steps, want)
		}
	}
	cfg := smallConfig()
	cfg.Seed = 4
	other, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Seed = 3
	same, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sameWeights(other.Agent, same.Agent) {
		t.Error("seeds 3 and 4 give the same weights")
	}
}

// TestTrainLearnsPointMass: SAC solves the point mass within a few thousand steps, with
// and without LayerNorm in the critics.
func TestTrainLearnsPointMass(t *testing.T) {
	for _, norm := range []bool{false, true} {
		start := time.Now()
		sac := DefaultSAC()
		sac.Hidden, sac.Batch, sac.CriticNorm = 32, 32, norm
		cfg := Config{NewEnv: newPointMass, Steps: 3000, Seed: 1, Envs: 2, LearningStarts: 200, EvalEvery: 1000,
			EvalEpisodes: 20, SAC: sac}
		res, err := Train(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range res.Curve {
			t.Logf("critic norm %v, step %5d: success %.2f return %7.3f (training episodes: return %7.3f) alpha %.3f",
				norm, p.Step, p.SuccessRate, p.Return, p.TrainReturn, p.Alpha)
		}
		first, last := res.Curve[0], res.Final()
		if last.SuccessRate < 0.9 || last.Return < first.Return+1 {
			t.Errorf("critic norm %v: did not learn: success %.2f → %.2f, return %.3f → %.3f",
				norm, first.SuccessRate, last.SuccessRate, first.Return, last.Return)
		}
		t.Logf("critic norm %v: %d steps, %d updates in %v", norm, res.Steps, res.Updates, time.Since(start))
	}
}

// cancelAt returns a Progress callback that cancels when the step reaches at.
func cancelAt(at int, cancel func()) func(Progress) {
	return func(p Progress) {
		if p.Step >= at {
			cancel()
		}
	}
}

// runInterrupted trains cfg, interrupted by interrupt (which receives the cancel
// function and installs itself), then again to the end; it returns the final checkpoint.
func runInterrupted(t *testing.T, cfg Config, interrupt func(cfg *Config, cancel func())) (*Result, []byte) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := cfg
	interrupt(&first, cancel)
	if _, err := Train(ctx, first); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Checkpoint, CheckpointFile)); err != nil {
		t.Fatalf("no checkpoint after the interruption: %v", err)
	}
	res, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ckpt, err := os.ReadFile(filepath.Join(cfg.Checkpoint, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	return res, ckpt
}

func uninterrupted(t *testing.T, cfg Config) (*Result, []byte) {
	t.Helper()
	res, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ckpt, err := os.ReadFile(filepath.Join(cfg.Checkpoint, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	return res, ckpt
}

// evalCanceller cancels from inside an evaluation (Reward is called for evaluation
// environments with indices from Envs up) once training reached step at.
type evalCanceller struct {
	GroundTruth
	envs   int
	at     *int
	cancel func()
}

func (e evalCanceller) Reward(env int, obs []float64, frame []byte, w, h int, sim float64) float64 {
	if env >= e.envs && *e.at > 0 {
		e.cancel()
	}
	return sim
}

func TestTrainResume(t *testing.T) {
	base := smallConfig()
	base.Envs = 2
	base.CheckpointEvery = 100
	base.Checkpoint = t.TempDir()
	want, wantCkpt := uninterrupted(t, base)

	cases := []struct {
		name      string
		interrupt func(cfg *Config, cancel func())
		resumed   int
	}{
		// 250 steps over 2 environments: 125 each, in the middle of an episode of 20.
		{"mid-episode", func(cfg *Config, cancel func()) { cfg.Progress = cancelAt(250, cancel) }, 250},
		// Cancelled during the evaluation at step 300: resuming runs it again.
		{"during-evaluation", func(cfg *Config, cancel func()) {
			armed := 0
			cfg.Progress = func(p Progress) {
				if p.Step >= 290 {
					armed = 1
				}
			}
			cfg.Reward = evalCanceller{envs: cfg.Envs, at: &armed, cancel: cancel}
		}, 300},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.Checkpoint = t.TempDir()
			got, gotCkpt := runInterrupted(t, cfg, tc.interrupt)
			if got.ResumedFrom != tc.resumed {
				t.Errorf("resumed from step %d, want %d", got.ResumedFrom, tc.resumed)
			}
			if !sameWeights(got.Agent, want.Agent) {
				t.Error("weights differ from the uninterrupted run")
			}
			if !reflect.DeepEqual(got.Curve, want.Curve) {
				t.Errorf("curves differ:\n%+v\n%+v", got.Curve, want.Curve)
			}
			if !bytes.Equal(gotCkpt, wantCkpt) {
				t.Error("final checkpoints differ")
			}
		})
	}

	// A finished run returns at once; other settings are refused.
	again, err := Train(context.Background(), base)
	if err != nil || again.ResumedFrom != 400 || again.EnvStepsThisRun != 0 || !sameWeights(again.Agent, want.Agent) {
		t.Errorf("rerun of a finished run: %+v, %v", again, err)
	}
	other := base
	other.SAC.Gamma = 0.9
	if _, err := Train(context.Background(), other); !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), "remove") {
		t.Errorf("other settings: %v, want ErrCheckpoint", err)
	}
	fewer := base
	fewer.Steps = 300
	fewer.Buffer = 400
	if _, err := Train(context.Background(), fewer); err == nil || !strings.Contains(err.Error(), "past the 300 steps") {
		t.Errorf("fewer steps: %v", err)
	}
}

// TestCriticNormResume: with LayerNorm in the critics, an interrupted run resumes bit for
// bit (the norms' scales and shifts are in the checkpoint), a checkpoint without them is
// refused, and the actor (what is exported) keeps its plain shape.
func TestCriticNormResume(t *testing.T) {
	base := smallConfig()
	base.CheckpointEvery = 100
	base.SAC.CriticNorm = true
	base.Checkpoint = t.TempDir()
	want, wantCkpt := uninterrupted(t, base)
	norms := 0
	for _, l := range want.Agent.q[0].Layers {
		if _, ok := l.(*nn.LayerNorm); ok {
			norms++
		}
	}
	if norms != 2 || len(want.Agent.Actor().Layers) != 5 {
		t.Errorf("critic has %d LayerNorms (want 2), actor %d layers (want 5)", norms, len(want.Agent.Actor().Layers))
	}
	cfg := base
	cfg.Checkpoint = t.TempDir()
	got, gotCkpt := runInterrupted(t, cfg, func(cfg *Config, cancel func()) { cfg.Progress = cancelAt(250, cancel) })
	if got.ResumedFrom != 250 || !sameWeights(got.Agent, want.Agent) || !reflect.DeepEqual(got.Curve, want.Curve) ||
		!bytes.Equal(gotCkpt, wantCkpt) {
		t.Errorf("resumed from %d; the resumed run differs from the uninterrupted one", got.ResumedFrom)
	}
	plain := base
	plain.SAC.CriticNorm = false
	if _, err := Train(context.Background(), plain); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("a run without critic norms on this checkpoint: %v, want ErrCheckpoint", err)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		edit func(c *Config)
		want string
	}{
		{func(c *Config) { c.NewEnv = nil; c.Task = "" }, "task: required"},
		{func(c *Config) { c.NewEnv = nil; c.Task = "reach"; c.Rate = 60 }, "rate: 60 Hz is not supported (50 or 80)"},
		{func(c *Config) { c.Steps = 0 }, "steps: must be at least 1, got 0"},
		{func(c *Config) { c.Envs = -1 }, "envs: must be between 1 and 256, got -1"},
		{func(c *Config) { c.LearningStarts = -1 }, "learning_starts: must not be negative, got -1"},
		{func(c *Config) { c.UpdatesPerStep = -1 }, "updates_per_step: must be in (0, 64], got -1"},
		{func(c *Config) { c.EvalEpisodes = -2 }, "eval_episodes: must not be negative, got -2"},
		{func(c *Config) { c.FrameSize = 1000 }, "frame_size: must be between 1 and 480, got 1000"},
		{func(c *Config) { c.SAC.Gamma = 1.5 }, "sac.gamma: must be in [0, 1], got 1.5"},
		{func(c *Config) { c.SAC.Tau = 0 }, "sac.tau: must be in (0, 1], got 0"},
		{func(c *Config) { c.SAC.ActorAverage = 1.5 }, "sac.actor_average: must be in [0, 1], got 1.5"},
		{func(c *Config) { c.SAC.LogStdMin = 3 }, "sac.log_std_min, sac.log_std_max: want -20 <= min < max <= 5, got 3 and 2"},
	}
	for _, tc := range cases {
		cfg := smallConfig()
		tc.edit(&cfg)
		_, err := Train(context.Background(), cfg)
		if err == nil || err.Error() != "policy.Train: "+tc.want {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}

// TestActorAverage: the average changes what is evaluated and exported, never what is
// learnt; with factor 1 it is the actor; it is checkpointed, so a resumed run is bit-exact.
func TestActorAverage(t *testing.T) {
	train := func(avg float64) *Result {
		cfg := smallConfig()
		cfg.SAC.ActorAverage = avg
		cfg.Checkpoint = t.TempDir()
		res, err := Train(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	plain, one, slow := train(0), train(1), train(0.01)
	sameActor := func(a, b *Agent) bool {
		pa, pb := a.actor.Params(), b.actor.Params()
		for i := range pa {
			for j := range pa[i].Value {
				if math.Float32bits(pa[i].Value[j]) != math.Float32bits(pb[i].Value[j]) {
					return false
				}
			}
		}
		return true
	}
	if !sameActor(plain.Agent, one.Agent) || !sameActor(plain.Agent, slow.Agent) {
		t.Error("the average changed the actor's training")
	}
	if !reflect.DeepEqual(plain.Curve, one.Curve) {
		t.Errorf("factor 1 evaluates differently from the actor:\n%+v\n%+v", plain.Curve, one.Curve)
	}
	if plain.Agent.avg != nil || one.Agent.avg == nil {
		t.Fatal("average kept without the setting, or missing with it")
	}
	first := func(n *nn.Sequential) float32 { return n.Params()[0].Value[0] }
	exp := slow.Agent.DeterministicNet()
	if first(exp) != first(slow.Agent.avg) || first(exp) == first(slow.Agent.actor) {
		t.Errorf("export's first weight %v: the average's is %v, the actor's %v", first(exp), first(slow.Agent.avg), first(slow.Agent.actor))
	}

	base := smallConfig()
	base.SAC.ActorAverage = 0.01
	base.Envs = 2
	base.CheckpointEvery = 100
	base.Checkpoint = t.TempDir()
	want, wantCkpt := uninterrupted(t, base)
	cfg := base
	cfg.Checkpoint = t.TempDir()
	got, gotCkpt := runInterrupted(t, cfg, func(cfg *Config, cancel func()) { cfg.Progress = cancelAt(250, cancel) })
	if !sameWeights(got.Agent, want.Agent) || !bytes.Equal(gotCkpt, wantCkpt) || !reflect.DeepEqual(got.Curve, want.Curve) {
		t.Error("a resumed run with the average differs from the uninterrupted one")
	}
}
