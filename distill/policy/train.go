package policy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"go.uber.org/zap"

	"robodistill/distill/reward"
	"robodistill/sim/metaworld"
)

// Config is one training run. Fields tagged json:"-" do not change what is learnt; the
// others (except Steps) identify the run for resuming.
type Config struct {
	Task string `json:"task"` // MetaWorld task (ignored with NewEnv)
	Rate int    `json:"rate"` // control rate, 50 (default, the daemon's) or 80 Hz
	// EpisodeSteps overrides the episode length (0: the task's, 313 steps at 50 Hz).
	EpisodeSteps int    `json:"episode_steps"`
	Assets       string `json:"-"` // MetaWorld assets folder (metaworld.ResolveAssets)

	Steps int    `json:"-"` // environment steps in all, summed over the environments
	Seed  uint64 `json:"seed"`
	// Envs is the number of environments stepped in parallel, each in its own
	// goroutine, in lockstep (default GOMAXPROCS). Results depend on it, not on scheduling.
	Envs int `json:"envs"`

	// Buffer is the replay capacity (default min(Steps, 1e6), plus the demonstrations'
	// transitions).
	Buffer int `json:"buffer"`

	// Demos is a collection folder (robodistill collect, a simulator recording of the
	// task at Rate) whose episodes go into the replay buffer before the first step, scored
	// by Reward like the run's own steps, and stay there (Replay.Pin); DemoRatio is the
	// share of every batch drawn from them (0: uniform over the whole buffer), and
	// DemoEpisodes limits how many episodes are read (0: all).
	Demos        string  `json:"demos,omitempty"`
	DemoRatio    float64 `json:"demo_ratio,omitempty"`
	DemoEpisodes int     `json:"demo_episodes,omitempty"`
	// LearningStarts is the number of uniformly random steps before the policy acts
	// (rounded up to a multiple of Envs); updates begin once more transitions than that
	// are stored, as in SB3 (DefaultConfig: 5000; 0 is none).
	LearningStarts int `json:"learning_starts"`
	// UpdatesPerStep is the number of SAC updates per environment step (default 1); a
	// lockstep round of n steps does n·UpdatesPerStep of them (fractions carry over).
	UpdatesPerStep float64 `json:"updates_per_step"`

	// EvalEvery is the period of evaluations in environment steps (default 5000), and
	// EvalEpisodes their size (DefaultConfig: 10; 0 turns evaluation off). Evaluation runs the
	// deterministic actor on fixed seeds disjoint from the training seeds; there is one at
	// step 0 and one at the end.
	EvalEvery    int `json:"eval_every"`
	EvalEpisodes int `json:"eval_episodes"`

	// Camera and FrameSize are what is rendered for a Reward that needs frames.
	Camera    string `json:"camera"`
	FrameSize int    `json:"frame_size"`

	SAC SACConfig `json:"sac"`

	// Checkpoint is the folder for the resumable state ("": none), written every
	// CheckpointEvery steps (default 10000), at the end and when interrupted.
	Checkpoint      string `json:"-"`
	CheckpointEvery int    `json:"-"`
	// LogEvery is the period of Progress reports in steps (default 1000).
	LogEvery int `json:"-"`

	Reward Reward `json:"-"` // default GroundTruth
	// NoCount leaves out the count-based term of a reward model's manifest
	// (reward.count: r / N(o)^β over the training episode's observations).
	NoCount bool `json:"no_count,omitempty"`
	// NewEnv makes an environment (default: MetaWorld's Task at Rate).
	NewEnv   func() (Env, error) `json:"-"`
	Log      *zap.Logger         `json:"-"`
	Progress func(Progress)      `json:"-"`
}

// DefaultConfig is the configuration Train completes a zero field from, except
// LearningStarts and EvalEpisodes, where zero means none.
func DefaultConfig() Config {
	return Config{Rate: metaworld.Rate50, Envs: runtime.GOMAXPROCS(0), LearningStarts: 5000, UpdatesPerStep: 1,
		EvalEvery: 5000, EvalEpisodes: 10, Camera: "corner", FrameSize: 64, SAC: DefaultSAC(),
		CheckpointEvery: 10000, LogEvery: 1000}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Rate == 0 {
		c.Rate = d.Rate
	}
	if c.Envs == 0 {
		c.Envs = d.Envs
	}
	if c.Buffer == 0 {
		c.Buffer = min(c.Steps, 1_000_000)
	}
	if c.UpdatesPerStep == 0 {
		c.UpdatesPerStep = d.UpdatesPerStep
	}
	if c.EvalEvery == 0 {
		c.EvalEvery = d.EvalEvery
	}
	if c.Camera == "" {
		c.Camera = d.Camera
	}
	if c.FrameSize == 0 {
		c.FrameSize = d.FrameSize
	}
	if c.SAC == (SACConfig{}) {
		c.SAC = d.SAC
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = d.CheckpointEvery
	}
	if c.LogEvery == 0 {
		c.LogEvery = d.LogEvery
	}
	if c.Reward == nil {
		c.Reward = GroundTruth{}
	}
	if c.Demos == "" {
		c.DemoRatio, c.DemoEpisodes = 0, 0
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	return c
}

// Validate reports the first bad value, naming its key. It checks a configuration after
// Train has filled in the defaults.
func (c Config) Validate() error {
	switch {
	case c.NewEnv == nil && c.Task == "":
		return errors.New("task: required")
	case c.NewEnv == nil && c.Rate != metaworld.Rate50 && c.Rate != metaworld.Rate80:
		return fmt.Errorf("rate: %d Hz is not supported (50 or 80)", c.Rate)
	case c.EpisodeSteps < 0:
		return fmt.Errorf("episode_steps: must not be negative, got %d", c.EpisodeSteps)
	case c.Steps < 1:
		return fmt.Errorf("steps: must be at least 1, got %d", c.Steps)
	case c.Envs < 1 || c.Envs > 256:
		return fmt.Errorf("envs: must be between 1 and 256, got %d", c.Envs)
	case c.Buffer < 1:
		return fmt.Errorf("buffer: must be at least 1, got %d", c.Buffer)
	case c.DemoRatio < 0 || c.DemoRatio > 1:
		return fmt.Errorf("demo_ratio: must be in [0, 1], got %g", c.DemoRatio)
	case c.DemoEpisodes < 0:
		return fmt.Errorf("demo_episodes: must not be negative, got %d", c.DemoEpisodes)
	case c.LearningStarts < 0:
		return fmt.Errorf("learning_starts: must not be negative, got %d", c.LearningStarts)
	case !(c.UpdatesPerStep > 0 && c.UpdatesPerStep <= 64):
		return fmt.Errorf("updates_per_step: must be in (0, 64], got %g", c.UpdatesPerStep)
	case c.EvalEvery < 1:
		return fmt.Errorf("eval_every: must be at least 1, got %d", c.EvalEvery)
	case c.EvalEpisodes < 0:
		return fmt.Errorf("eval_episodes: must not be negative, got %d", c.EvalEpisodes)
	case c.FrameSize < 1 || c.FrameSize > 480:
		return fmt.Errorf("frame_size: must be between 1 and 480, got %d", c.FrameSize)
	case c.CheckpointEvery < 1:
		return fmt.Errorf("checkpoint_every: must be at least 1, got %d", c.CheckpointEvery)
	case c.LogEvery < 1:
		return fmt.Errorf("log_every: must be at least 1, got %d", c.LogEvery)
	}
	return c.SAC.Validate()
}

// EvalPoint is one point of the learning curve.
type EvalPoint struct {
	Step     int `json:"step"`     // environment steps trained
	Episodes int `json:"episodes"` // evaluation episodes
	// SuccessRate is the share of evaluation episodes that succeeded at any step
	// (MetaWorld's success), Return the mean simulator return over whole episodes and
	// UsedReturn the mean return under the Reward being trained on (equal to Return for
	// the ground truth).
	SuccessRate float64 `json:"success_rate"`
	Return      float64 `json:"return"`
	UsedReturn  float64 `json:"used_return"`
	// Training episodes that ended since the previous point, with the exploring policy.
	TrainEpisodes    int     `json:"train_episodes"`
	TrainSuccessRate float64 `json:"train_success_rate"`
	TrainReturn      float64 `json:"train_return"`
	TrainUsedReturn  float64 `json:"train_used_return"`
	Alpha            float64 `json:"alpha"`
	Updates          int     `json:"updates"`
}

// Progress is a periodic report: training statistics since the previous report, and the
// evaluation when one just ran.
type Progress struct {
	Step, Steps, Episodes, Updates int
	// Means over the updates since the previous report (zero before learning starts).
	CriticLoss, ActorLoss, Alpha, Entropy, Q float64
	// TrainReturn is the mean simulator return of the training episodes that ended since
	// the previous report (NaN when none did).
	TrainReturn    float64
	StepsPerSecond float64 // wall-clock, including updates
	Eval           *EvalPoint
}

// Result is a finished run.
type Result struct {
	Spec     Spec   `json:"spec"`
	Reward   string `json:"reward"`
	Labeler  string `json:"labeler"`
	Steps    int    `json:"steps"`
	Updates  int    `json:"updates"`
	Episodes int    `json:"episodes"`
	// ResumedFrom is the step the run continued from (0 when it started fresh).
	ResumedFrom int         `json:"resumed_from"`
	Curve       []EvalPoint `json:"curve"`
	Demos       *DemoStats  `json:"demos,omitempty"`
	// Wall-clock seconds of this process: in all, stepping the environments (with
	// action selection), in updates, in evaluations.
	Seconds       float64 `json:"seconds"`
	EnvSeconds    float64 `json:"env_seconds"`
	UpdateSeconds float64 `json:"update_seconds"`
	EvalSeconds   float64 `json:"eval_seconds"`
	// RewardSeconds is the online reward's refreshes (labelling, training, relabelling).
	RewardSeconds float64 `json:"reward_seconds"`
	// EnvStepsThisRun and UpdatesThisRun are the work this process did (after a resume).
	EnvStepsThisRun int `json:"env_steps_this_run"`
	UpdatesThisRun  int `json:"updates_this_run"`

	Agent *Agent `json:"-"`
}

// Final is the last point of the learning curve (zero without evaluations).
func (r *Result) Final() EvalPoint {
	if len(r.Curve) == 0 {
		return EvalPoint{}
	}
	return r.Curve[len(r.Curve)-1]
}

// Episode seeds. Training episode j of environment i resets with ((Seed+i)<<20 + j) and
// the top bit clear; evaluation episode k of every evaluation with (Seed<<20 + k) and the
// top bit set, so the two never meet and every evaluation sees the same episodes.
func trainSeed(seed uint64, env, episode int) uint64 {
	return ((seed+uint64(env))<<20 + uint64(episode)) &^ (1 << 63)
}

func evalSeed(seed uint64, k int) uint64 { return (seed<<20 + uint64(k)) | 1<<63 }

// DefaultBuffer is the replay capacity Train uses when cfg.Buffer is 0: min(Steps, 1e6),
// plus the transitions of cfg.Demos (which it counts from the collection's index).
func DefaultBuffer(cfg Config) (int, error) {
	n := min(cfg.Steps, 1_000_000)
	if cfg.Demos == "" {
		return n, nil
	}
	d, err := CountDemos(cfg.Demos, cfg.DemoEpisodes)
	return n + d, err
}

// Train runs SAC for cfg.Steps environment steps and returns the learning curve and the
// agent. With cfg.Checkpoint set it continues a run whose checkpoint is there, and a
// cancelled ctx saves the state before Train returns ctx's error.
func Train(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Demos != "" && cfg.Buffer == 0 {
		n, err := DefaultBuffer(cfg)
		if err != nil {
			return nil, fmt.Errorf("policy.Train: %w", err)
		}
		cfg.Buffer = n
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("policy.Train: %w", err)
	}
	if cfg.NewEnv == nil {
		task, rate, steps, assets := cfg.Task, cfg.Rate, cfg.EpisodeSteps, cfg.Assets
		cfg.NewEnv = func() (Env, error) {
			return NewMetaWorld(task, metaworld.Options{Assets: assets, Rate: rate, MaxSteps: steps})
		}
	}
	t, err := newTrainer(cfg)
	if err != nil {
		return nil, fmt.Errorf("policy.Train: %w", err)
	}
	res, err := t.run(ctx)
	if cerr := t.close(); err == nil && cerr != nil {
		err = fmt.Errorf("policy.Train: %w", cerr)
	}
	return res, err
}

// slotState is an environment's episode bookkeeping, kept in checkpoints: which episode
// it is on, the observation and the actions so far (to rebuild the simulator's state on
// resume) and the episode's sums.
type slotState struct {
	Episode    int       `json:"episode"`
	Obs        []float64 `json:"obs"`
	Actions    []float32 `json:"actions"`
	Return     float64   `json:"return"`
	UsedReturn float64   `json:"used_return"`
	Success    bool      `json:"success"`
}

// sums accumulate statistics between reports.
type sums struct {
	Episodes, Successes   int
	Return, UsedReturn    float64
	Updates               int
	CriticLoss, ActorLoss float64
	Alpha, Entropy, Q     float64
}

func (s *sums) addEpisode(st *slotState) {
	s.Episodes++
	s.Return += st.Return
	s.UsedReturn += st.UsedReturn
	if st.Success {
		s.Successes++
	}
}

func (s *sums) addUpdate(u Stats) {
	s.Updates++
	s.CriticLoss += u.CriticLoss
	s.ActorLoss += u.ActorLoss
	s.Alpha += u.Alpha
	s.Entropy += u.Entropy
	s.Q += u.Q
}

// state is everything besides networks, optimisers and replay that a checkpoint holds.
type state struct {
	Fingerprint string      `json:"fingerprint"`
	Step        int         `json:"step"`
	Updates     int         `json:"updates"`
	EvalDue     bool        `json:"eval_due"`
	Episodes    int         `json:"episodes"`
	UpdatesDue  float64     `json:"updates_due"`
	Slots       []slotState `json:"slots"`
	Curve       []EvalPoint `json:"curve"`
	SinceEval   sums        `json:"since_eval"`
	SinceLog    sums        `json:"since_log"`
	PCG         []byte      `json:"pcg"`
	ReplaySize  int         `json:"replay_size"`
	ReplayPos   int         `json:"replay_pos"`
	// ReplayPinned is the number of demonstration transitions at the buffer's start,
	// described by Demos.
	ReplayPinned int        `json:"replay_pinned,omitempty"`
	Demos        *DemoStats `json:"demos,omitempty"`
	// TailDue says that the environment steps from TailFrom to Step were taken but what
	// follows them (the online refresh, the updates, the evaluation) was interrupted: a
	// resumed run does it before its first step.
	TailDue  bool `json:"tail_due,omitempty"`
	TailFrom int  `json:"tail_from,omitempty"`
}

// slot is one environment with its goroutine. The trainer's goroutine writes a slot's
// inputs, sends one of its functions on cmd and reads the outputs after done; the channel
// operations order the accesses.
type slot struct {
	t       *trainer
	i       int
	env     Env
	evalEnv Env
	cmd     chan func() error
	done    chan error

	act       []float64
	next      []float64
	frame     []byte
	res       StepResult
	used      float64
	seed      uint64
	skip      bool // evalStep: this slot's episode is over
	ended     bool // the last training step ended the episode
	fnStep    func() error
	fnReset   func() error
	fnEvalRst func() error
	fnEvalStp func() error

	st slotState
	// counter is the reward's count-based term over the current training episode (nil:
	// none); it is a function of the episode's observations, rebuilt on resume.
	counter *reward.Counter
	// Evaluation episode sums.
	evRet, evUsed float64
	evSuccess     bool
	evObs         []float64
}

func (s *slot) loop() {
	for f := range s.cmd {
		s.done <- f()
	}
}

func (s *slot) score(env Env, index int) error {
	t := s.t
	if !t.cfg.Reward.NeedsFrame() {
		s.used = t.cfg.Reward.Reward(index, s.next, nil, 0, 0, s.res.Reward)
		return nil
	}
	n := t.cfg.FrameSize
	if err := env.Render(t.cfg.Camera, n, n, s.frame); err != nil {
		return err
	}
	s.used = t.cfg.Reward.Reward(index, s.next, s.frame, n, n, s.res.Reward)
	return nil
}

func (s *slot) step() error {
	res, err := s.env.Step(s.act, s.next)
	if err != nil {
		return err
	}
	s.res = res
	return s.score(s.env, s.i)
}

func (s *slot) reset() error { return s.env.Reset(s.seed, s.st.Obs) }

func (s *slot) evalReset() error {
	s.evRet, s.evUsed, s.evSuccess, s.skip = 0, 0, false, false
	return s.evalEnv.Reset(s.seed, s.evObs)
}

func (s *slot) evalStep() error {
	if s.skip {
		return nil
	}
	res, err := s.evalEnv.Step(s.act, s.next)
	if err != nil {
		return err
	}
	s.res = res
	if err := s.score(s.evalEnv, s.t.cfg.Envs+s.i); err != nil {
		return err
	}
	copy(s.evObs, s.next)
	s.evRet += res.Reward
	s.evUsed += s.used
	s.evSuccess = s.evSuccess || res.Success
	s.skip = res.Terminal || res.Truncated
	return nil
}

type trainer struct {
	wg     sync.WaitGroup // the slots' goroutines
	cfg    Config
	spec   Spec
	agent  *Agent
	replay *Replay
	slots  []*slot
	st     state

	obs32, act32, next32 []float32
	resumedFrom          int
	updatesAtStart       int
	envTime, updTime     time.Duration
	evalTime             time.Duration
	lastLog              time.Time
	lastLogStep          int
	learner              Learner // the reward, when it learns online
	rewardTime           time.Duration
}

func newTrainer(cfg Config) (*trainer, error) {
	t := &trainer{cfg: cfg}
	for i := 0; i < cfg.Envs; i++ {
		env, err := cfg.NewEnv()
		if err != nil {
			t.close()
			return nil, err
		}
		s := &slot{t: t, i: i, env: env, cmd: make(chan func() error), done: make(chan error)}
		t.slots = append(t.slots, s)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			s.loop()
		}()
		if i == 0 {
			t.spec = env.Spec()
		} else if sp := env.Spec(); sp != t.spec {
			t.close()
			return nil, fmt.Errorf("environment %d: spec %+v differs from environment 0's %+v", i, sp, t.spec)
		}
	}
	sp := t.spec
	if sp.ObsDim < 1 || sp.ActDim < 1 || sp.MaxSteps < 1 {
		t.close()
		return nil, fmt.Errorf("environment spec %+v: dimensions and episode length must be at least 1", sp)
	}
	for _, s := range t.slots {
		s.act = make([]float64, sp.ActDim)
		s.next = make([]float64, sp.ObsDim)
		s.evObs = make([]float64, sp.ObsDim)
		s.st.Obs = make([]float64, sp.ObsDim)
		if cfg.Reward.NeedsFrame() {
			s.frame = make([]byte, cfg.FrameSize*cfg.FrameSize*3)
		}
		s.fnStep, s.fnReset, s.fnEvalRst, s.fnEvalStp = s.step, s.reset, s.evalReset, s.evalStep
	}
	var err error
	if t.agent, err = NewAgent(cfg.SAC, sp.ObsDim, sp.ActDim, cfg.Seed); err != nil {
		t.close()
		return nil, err
	}
	if t.replay, err = NewReplay(cfg.Buffer, sp.ObsDim, sp.ActDim); err != nil {
		t.close()
		return nil, err
	}
	if ct := countTerm(cfg.Reward); ct != nil && !cfg.NoCount {
		for _, s := range t.slots {
			if s.counter, err = reward.NewCounter(*ct); err != nil {
				t.close()
				return nil, err
			}
		}
		t.replay.EnableDivisors()
	}
	K := cfg.Envs
	t.obs32 = make([]float32, K*sp.ObsDim)
	t.next32 = make([]float32, sp.ObsDim)
	t.act32 = make([]float32, K*sp.ActDim)
	t.st.Fingerprint = fingerprint(cfg, sp)
	if l, ok := cfg.Reward.(Learner); ok {
		if l.Capacity() < cfg.Buffer {
			t.close()
			return nil, fmt.Errorf("the online reward keeps %d frames, fewer than the replay buffer's %d", l.Capacity(), cfg.Buffer)
		}
		t.learner = l
	}
	return t, nil
}

// close stops the goroutines, waits for them and closes the environments.
func (t *trainer) close() error {
	for _, s := range t.slots {
		close(s.cmd)
	}
	t.wg.Wait()
	for _, s := range t.slots {
		s.env.Close()
		if s.evalEnv != nil {
			s.evalEnv.Close()
		}
	}
	t.slots = nil
	return nil
}

// dispatch runs fn(slot) for the first n slots in their goroutines and waits for all; the
// error is the first in slot order.
func (t *trainer) dispatch(n int, fn func(s *slot) func() error) error {
	for _, s := range t.slots[:n] {
		s.cmd <- fn(s)
	}
	var first error
	for _, s := range t.slots[:n] {
		if err := <-s.done; err != nil && first == nil {
			first = fmt.Errorf("environment %d: %w", s.i, err)
		}
	}
	return first
}

func slotStep(s *slot) func() error  { return s.fnStep }
func slotReset(s *slot) func() error { return s.fnReset }
func nop() error                     { return nil }

func slotResetEnded(s *slot) func() error {
	if s.ended {
		return s.fnReset
	}
	return nop
}
func slotEvalRst(s *slot) func() error  { return s.fnEvalRst }
func slotEvalStep(s *slot) func() error { return s.fnEvalStp }

func (t *trainer) run(ctx context.Context) (*Result, error) {
	cfg := t.cfg
	start := time.Now()
	resumed, err := t.restore()
	if err != nil {
		return nil, err
	}
	if resumed {
		t.resumedFrom = t.st.Step
		cfg.Log.Info("resumed from checkpoint", zap.String("dir", cfg.Checkpoint), zap.Int("step", t.st.Step),
			zap.Int("updates", t.agent.Updates()))
		if t.st.Step > cfg.Steps {
			return nil, fmt.Errorf("checkpoint in %s is at step %d, past the %d steps asked for", cfg.Checkpoint, t.st.Step, cfg.Steps)
		}
	} else {
		if cfg.Demos != "" {
			if err := t.prefill(ctx); err != nil {
				return nil, err
			}
		}
		for i, s := range t.slots {
			s.seed = trainSeed(cfg.Seed, i, 0)
		}
		if err := t.dispatch(len(t.slots), slotReset); err != nil {
			return nil, err
		}
		t.st.EvalDue = cfg.EvalEpisodes > 0
	}
	t.lastLog, t.lastLogStep = time.Now(), t.st.Step
	t.updatesAtStart = t.agent.Updates()
	if err := t.train(ctx); err != nil {
		if ctx.Err() != nil && cfg.Checkpoint != "" {
			if serr := t.save(); serr != nil {
				return nil, errors.Join(err, serr)
			}
			cfg.Log.Info("interrupted: state saved", zap.String("dir", cfg.Checkpoint), zap.Int("step", t.st.Step))
		}
		return nil, err
	}
	if cfg.Checkpoint != "" && t.st.Step != t.resumedFrom {
		if err := t.save(); err != nil {
			return nil, err
		}
	}
	res := &Result{
		Spec: t.spec, Reward: cfg.Reward.Name(), Labeler: cfg.Reward.Labeler(), Steps: t.st.Step,
		Updates: t.agent.Updates(), Episodes: t.st.Episodes, ResumedFrom: t.resumedFrom,
		Curve: append([]EvalPoint(nil), t.st.Curve...), Demos: t.st.Demos,
		Seconds: time.Since(start).Seconds(), EnvSeconds: t.envTime.Seconds(), UpdateSeconds: t.updTime.Seconds(),
		EvalSeconds: t.evalTime.Seconds(), RewardSeconds: t.rewardTime.Seconds(), EnvStepsThisRun: t.st.Step - t.resumedFrom,
		UpdatesThisRun: t.agent.Updates() - t.updatesAtStart, Agent: t.agent,
	}
	return res, nil
}

// crossed reports whether a multiple of every lies in (from, to].
func crossed(from, to, every int) bool { return to/every > from/every }

func (t *trainer) train(ctx context.Context) error {
	cfg := t.cfg
	O, A := t.spec.ObsDim, t.spec.ActDim
	for {
		if t.st.TailDue {
			if err := t.afterSteps(ctx); err != nil {
				return err
			}
		}
		// An evaluation is due at the start, after crossing a multiple of EvalEvery, at
		// the end, and after resuming from an interrupted one.
		if t.st.Step >= cfg.Steps && cfg.EvalEpisodes > 0 && (len(t.st.Curve) == 0 || t.st.Curve[len(t.st.Curve)-1].Step != t.st.Step) {
			t.st.EvalDue = true
		}
		if t.st.EvalDue {
			if err := t.evaluate(ctx); err != nil {
				return err
			}
		}
		if t.st.Step >= cfg.Steps {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		n := min(cfg.Envs, cfg.Steps-t.st.Step)
		for i, s := range t.slots[:n] {
			for j, v := range s.st.Obs {
				t.obs32[i*O+j] = float32(v)
			}
		}
		if t.st.Step < cfg.LearningStarts {
			t.agent.RandomActions(t.act32[:n*A])
		} else {
			t.agent.Act(t.obs32, n, false, t.act32)
		}
		for i, s := range t.slots[:n] {
			for j := range s.act {
				s.act[j] = float64(t.act32[i*A+j])
			}
		}
		if err := t.dispatch(n, slotStep); err != nil {
			return err
		}
		ended := false
		for i, s := range t.slots[:n] {
			for j, v := range s.next {
				t.next32[j] = float32(v)
			}
			act := t.act32[i*A : (i+1)*A]
			slot := t.replay.Pos()
			if t.learner != nil {
				t.learner.Keep(i, slot)
			}
			div := 1.0
			if s.counter != nil {
				div = s.counter.Divisor(s.next)
				s.used /= div
			}
			t.replay.Add(t.obs32[i*O:(i+1)*O], act, float32(s.used), t.next32, s.res.Terminal)
			if s.counter != nil {
				t.replay.SetDivisor(slot, float32(div))
			}
			st := &s.st
			st.Actions = append(st.Actions, act...)
			st.Return += s.res.Reward
			st.UsedReturn += s.used
			st.Success = st.Success || s.res.Success
			copy(st.Obs, s.next)
			s.ended = s.res.Terminal || s.res.Truncated
			if s.ended {
				ended = true
				t.st.Episodes++
				t.st.SinceEval.addEpisode(st)
				t.st.SinceLog.addEpisode(st)
				st.Episode++
				st.Actions, st.Return, st.UsedReturn, st.Success = st.Actions[:0], 0, 0, false
				if s.counter != nil {
					s.counter.Reset()
				}
				s.seed = trainSeed(cfg.Seed, i, st.Episode)
			}
		}
		if ended {
			if err := t.dispatch(n, slotResetEnded); err != nil {
				return err
			}
		}
		t.st.TailFrom, t.st.TailDue = t.st.Step, true
		t.st.Step += n
		t.envTime += time.Since(t0)
		if err := t.afterSteps(ctx); err != nil {
			return err
		}
	}
}

// afterSteps does what follows the environment steps from TailFrom to Step: the online
// refresh, the updates, the evaluation and the checkpoint that are due. The refresh and
// the evaluation can be interrupted; TailDue (cleared once the updates are done) and
// EvalDue make a resumed run finish them, so that no refresh, update or evaluation is
// lost to an interruption. A refresh interrupted part-way keeps the labels it got
// (a VLM's answers are not thrown away) and samples its pairs afresh when redone.
func (t *trainer) afterSteps(ctx context.Context) error {
	cfg := t.cfg
	prev, n := t.st.TailFrom, t.st.Step-t.st.TailFrom
	// The online reward refreshes before the updates that follow, so they learn from
	// the relabelled buffer; not at the last step, where no update would learn from it
	// and the saved reward would not be the one the policy was trained on.
	if t.learner != nil && crossed(prev, t.st.Step, t.learner.Every()) && t.st.Step < cfg.Steps {
		t1 := time.Now()
		if err := t.learner.Refresh(ctx, t.st.Step, t.replay); err != nil {
			return err
		}
		t.rewardTime += time.Since(t1)
	}
	if t.st.Step > cfg.LearningStarts {
		t1 := time.Now()
		t.st.UpdatesDue += float64(n) * cfg.UpdatesPerStep
		for t.st.UpdatesDue >= 1 {
			u := t.agent.Update(t.replay)
			t.st.SinceLog.addUpdate(u)
			t.st.UpdatesDue--
		}
		t.updTime += time.Since(t1)
	}
	t.st.TailDue, t.st.TailFrom = false, 0
	if cfg.EvalEpisodes > 0 && crossed(prev, t.st.Step, cfg.EvalEvery) {
		t.st.EvalDue = true
		if err := t.evaluate(ctx); err != nil {
			return err
		}
	} else if crossed(prev, t.st.Step, cfg.LogEvery) {
		t.report(nil)
	}
	if cfg.Checkpoint != "" && crossed(prev, t.st.Step, cfg.CheckpointEvery) && t.st.Step < cfg.Steps {
		return t.save()
	}
	return nil
}

// evaluate runs EvalEpisodes episodes of the deterministic actor on the evaluation seeds,
// spread over the slots' evaluation environments in lockstep rounds, and appends the
// point to the curve.
func (t *trainer) evaluate(ctx context.Context) error {
	t0 := time.Now()
	defer func() { t.evalTime += time.Since(t0) }()
	cfg := t.cfg
	O, A := t.spec.ObsDim, t.spec.ActDim
	for _, s := range t.slots {
		if s.evalEnv == nil {
			env, err := cfg.NewEnv()
			if err != nil {
				return fmt.Errorf("evaluation environment %d: %w", s.i, err)
			}
			s.evalEnv = env
		}
	}
	E := cfg.EvalEpisodes
	var ret, used float64
	succ := 0
	for first := 0; first < E; first += cfg.Envs {
		if err := ctx.Err(); err != nil {
			return err
		}
		m := min(cfg.Envs, E-first)
		for i, s := range t.slots[:m] {
			s.seed = evalSeed(cfg.Seed, first+i)
		}
		if err := t.dispatch(m, slotEvalRst); err != nil {
			return fmt.Errorf("evaluation: %w", err)
		}
		for {
			active := false
			for i, s := range t.slots[:m] {
				active = active || !s.skip
				for j, v := range s.evObs {
					t.obs32[i*O+j] = float32(v)
				}
			}
			if !active {
				break
			}
			t.agent.Act(t.obs32, m, true, t.act32)
			for i, s := range t.slots[:m] {
				for j := range s.act {
					s.act[j] = float64(t.act32[i*A+j])
				}
			}
			if err := t.dispatch(m, slotEvalStep); err != nil {
				return fmt.Errorf("evaluation: %w", err)
			}
		}
		for _, s := range t.slots[:m] {
			ret += s.evRet
			used += s.evUsed
			if s.evSuccess {
				succ++
			}
		}
	}
	p := EvalPoint{Step: t.st.Step, Episodes: E, SuccessRate: float64(succ) / float64(E), Return: ret / float64(E),
		UsedReturn: used / float64(E), Alpha: t.agent.Alpha(), Updates: t.agent.Updates()}
	if se := t.st.SinceEval; se.Episodes > 0 {
		k := float64(se.Episodes)
		p.TrainEpisodes, p.TrainSuccessRate = se.Episodes, float64(se.Successes)/k
		p.TrainReturn, p.TrainUsedReturn = se.Return/k, se.UsedReturn/k
	}
	t.st.SinceEval = sums{}
	t.st.Curve = append(t.st.Curve, p)
	t.st.EvalDue = false
	t.report(&p)
	return nil
}

// report sends a Progress with the statistics since the previous one.
func (t *trainer) report(ev *EvalPoint) {
	sl := t.st.SinceLog
	t.st.SinceLog = sums{}
	now := time.Now()
	p := Progress{Step: t.st.Step, Steps: t.cfg.Steps, Episodes: t.st.Episodes, Updates: t.agent.Updates(),
		Alpha: t.agent.Alpha(), TrainReturn: math.NaN(), Eval: ev}
	if dt := now.Sub(t.lastLog).Seconds(); dt > 0 {
		p.StepsPerSecond = float64(t.st.Step-t.lastLogStep) / dt
	}
	t.lastLog, t.lastLogStep = now, t.st.Step
	if sl.Updates > 0 {
		k := float64(sl.Updates)
		p.CriticLoss, p.ActorLoss, p.Alpha, p.Entropy, p.Q = sl.CriticLoss/k, sl.ActorLoss/k, sl.Alpha/k, sl.Entropy/k, sl.Q/k
	}
	if sl.Episodes > 0 {
		p.TrainReturn = sl.Return / float64(sl.Episodes)
	}
	if t.cfg.Progress != nil {
		t.cfg.Progress(p)
	}
}
