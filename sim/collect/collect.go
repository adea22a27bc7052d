// Package collect rolls out a policy in the simulator and records every step as a recorded
// episode (control/episode): the rendered camera frame, the robot state, the 39-D
// observation, the action and the simulator's reward and success, written through
// sim/simros so the bags carry the same topics as the ROS sim bridge.
//
// Episode i of a collection is reset with seed Seed+i and its policy noise drawn from the
// same seed, so its bag is byte-for-byte the same whichever worker records it and whether
// or not the run was interrupted and resumed.
package collect

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"robodistill/control/episode"
	"robodistill/control/rosiface"
	"robodistill/sim/metaworld"
	"robodistill/sim/mujoco"
	"robodistill/sim/rollout"
	"robodistill/sim/simros"
)

// Config describes a collection run.
type Config struct {
	Task     *metaworld.Task
	Policy   string // a rollout.ParsePolicy spec
	Episodes int
	Seed     uint64
	Camera   string
	Size     int // frame width and height in pixels
	Rate     int // control rate: 80 (default) or 50
	// MaxSteps overrides the episode length (0: the task's, 500 steps at 80 Hz).
	MaxSteps int
	// Full runs every episode to its length; by default an episode ends at its first
	// success, as MetaWorld's evaluation does.
	Full    bool
	Workers int    // parallel environments (default GOMAXPROCS)
	Assets  string // MetaWorld assets folder (see metaworld.ResolveAssets)
	Out     string // the collection folder
	Log     *zap.Logger
	// OnEpisode, when set, is called after each completed episode (serialized).
	OnEpisode func(p Progress)
}

// Progress reports a completed episode.
type Progress struct {
	Entry  episode.Entry
	Done   int // episodes completed in this run
	Todo   int // episodes this run set out to record
	Frames int // frames recorded in this run
}

// Summary describes the collection after a run; the JSON names are the CLI's contract.
type Summary struct {
	Task string `json:"task"`
	// Episodes, Steps (simulator steps, i.e. actions), Frames (one more per episode: the
	// reset frame) and SuccessRate cover every completed episode in the folder.
	Episodes    int     `json:"episodes"`
	Steps       int     `json:"steps"`
	Frames      int     `json:"frames"`
	SuccessRate float64 `json:"success_rate"`
	// Resumed counts the episodes found complete when the run started, New those recorded
	// by this run.
	Resumed      int     `json:"resumed"`
	New          int     `json:"new"`
	Out          string  `json:"out"`
	Bytes        int64   `json:"bytes"`
	FramesPerSec float64 `json:"frames_per_sec"` // this run's recording speed
}

// Spec is the collection identity of cfg: a folder continues only under the same one.
func Spec(cfg Config) episode.Spec {
	return episode.Spec{Source: "sim", Params: map[string]string{
		"task":      cfg.Task.Name,
		"policy":    cfg.Policy,
		"seed":      strconv.FormatUint(cfg.Seed, 10),
		"camera":    cfg.Camera,
		"size":      strconv.Itoa(cfg.Size),
		"rate":      strconv.Itoa(cfg.Rate),
		"max_steps": strconv.Itoa(cfg.MaxSteps),
		"full":      strconv.FormatBool(cfg.Full),
	}}
}

// Run records episodes 0..Episodes-1 into cfg.Out, skipping those already complete.
// Cancelling ctx stops between steps: completed episodes are kept, the unfinished ones
// discarded, and Run returns the summary with ctx's error.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if cfg.Task == nil {
		return Summary{}, errors.New("collect.Run: no task")
	}
	if cfg.Rate == 0 {
		cfg.Rate = metaworld.Rate80
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Episodes < 1 {
		return Summary{}, fmt.Errorf("collect.Run: episodes %d < 1", cfg.Episodes)
	}
	if cfg.Size < 1 || cfg.Size > mujoco.MaxRenderSize {
		return Summary{}, fmt.Errorf("collect.Run: size %d outside 1..%d", cfg.Size, mujoco.MaxRenderSize)
	}
	if cfg.MaxSteps < 0 {
		return Summary{}, fmt.Errorf("collect.Run: max steps %d < 0", cfg.MaxSteps)
	}
	if cfg.Out == "" {
		return Summary{}, errors.New("collect.Run: no output folder")
	}
	factory, err := rollout.ParsePolicy(cfg.Policy)
	if err != nil {
		return Summary{}, fmt.Errorf("collect.Run: %w", err)
	}
	// Everything that can be wrong with the arguments is checked before the folder is
	// touched: the first environment proves the task, rate and camera.
	first, err := metaworld.New(cfg.Task, metaworld.Options{Assets: cfg.Assets, Rate: cfg.Rate, MaxSteps: cfg.MaxSteps})
	if err != nil {
		return Summary{}, fmt.Errorf("collect.Run: %w", err)
	}
	envs := []*metaworld.Env{first}
	defer func() {
		for _, e := range envs {
			e.Close()
		}
	}()
	if _, err := first.Camera(cfg.Camera); err != nil {
		return Summary{}, fmt.Errorf("collect.Run: %w", err)
	}

	store, err := episode.OpenStore(cfg.Out, Spec(cfg), cfg.Log)
	if err != nil {
		return Summary{}, fmt.Errorf("collect.Run: %w", err)
	}
	defer store.Close()
	var todo []int
	for i := 0; i < cfg.Episodes; i++ {
		if !store.Has(i) {
			todo = append(todo, i)
		}
	}
	resumed := len(store.Entries())
	if resumed > 0 {
		cfg.Log.Info("continuing a collection", zap.Int("complete", resumed), zap.Int("todo", len(todo)))
	}

	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, len(todo)))
	for len(envs) < workers {
		e, err := metaworld.New(cfg.Task, metaworld.Options{Assets: cfg.Assets, Rate: cfg.Rate, MaxSteps: cfg.MaxSteps})
		if err != nil {
			return Summary{}, fmt.Errorf("collect.Run: %w", err)
		}
		envs = append(envs, e)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	var (
		mu       sync.Mutex
		firstErr error
		done     int
		frames   int
	)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		rec := newRecorder(cfg, envs[w], factory)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				e, err := rec.episode(runCtx, store, i)
				mu.Lock()
				if err != nil {
					if firstErr == nil && !errors.Is(err, context.Canceled) {
						firstErr = err
						cancel()
					}
				} else {
					done++
					frames += e.Steps
					if cfg.OnEpisode != nil {
						cfg.OnEpisode(Progress{Entry: e, Done: done, Todo: len(todo), Frames: frames})
					}
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, i := range todo {
		select {
		case jobs <- i:
		case <-runCtx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)

	s := Summary{Task: cfg.Task.Name, Out: cfg.Out, Resumed: resumed, New: done}
	for _, e := range store.Entries() {
		s.Episodes++
		s.Frames += e.Steps
		s.Steps += e.Steps - 1
		s.Bytes += e.Bytes
		if e.Success {
			s.SuccessRate++
		}
	}
	if s.Episodes > 0 {
		s.SuccessRate /= float64(s.Episodes)
	}
	if elapsed > 0 && frames > 0 {
		s.FramesPerSec = float64(frames) / elapsed.Seconds()
	}
	if firstErr != nil {
		return s, firstErr
	}
	return s, ctx.Err()
}

// recorder records episodes with one environment.
type recorder struct {
	cfg     Config
	env     *metaworld.Env
	factory rollout.PolicyFactory
	topics  rosiface.Topics
	cam     int
	fovy    float64
	period  time.Duration
	slot    int64 // seconds of sim time reserved per episode
	rgb     []byte
	st      metaworld.RobotState
}

func newRecorder(cfg Config, env *metaworld.Env, factory rollout.PolicyFactory) *recorder {
	cam, _ := env.Camera(cfg.Camera) // checked in Run
	period := time.Second / time.Duration(env.Rate())
	return &recorder{
		cfg: cfg, env: env, factory: factory,
		topics: rosiface.DefaultTopics(""),
		cam:    cam, fovy: env.Model().CameraFovy(cam),
		period: period,
		slot:   int64(math.Ceil(float64(env.MaxSteps()+1)*period.Seconds())) + 1,
		rgb:    make([]byte, 3*cfg.Size*cfg.Size),
	}
}

// episodeStart is the sim time of episode n's first step: episodes get consecutive,
// non-overlapping slots from 1 s on, so `rosbag play episodes/*.bag` plays them in turn.
func (r *recorder) episodeStart(n int) time.Time {
	return time.Unix(1+int64(n)*r.slot, 0).UTC()
}

func (r *recorder) episode(ctx context.Context, store *episode.Store, n int) (episode.Entry, error) {
	cfg, env := r.cfg, r.env
	seed := cfg.Seed + uint64(n)
	fail := func(err error) (episode.Entry, error) {
		return episode.Entry{}, fmt.Errorf("episode %d (seed %d): %w", n, seed, err)
	}
	o, err := env.Reset(seed)
	if err != nil {
		return fail(err)
	}
	pol := r.factory(cfg.Task, seed)
	p, err := store.Begin(n)
	if err != nil {
		return fail(err)
	}
	defer p.Abort() // a no-op after Commit
	t0 := r.episodeStart(n)
	if err := p.WriteMeta(t0, episode.Meta{
		Source: "sim", Task: cfg.Task.Name, Goal: cfg.Task.Goal, Episode: n, Seed: seed,
		Policy: cfg.Policy, Camera: cfg.Camera, Width: cfg.Size, Height: cfg.Size,
		Rate: env.Rate(), ActionScale: env.ActionScale(), MaxSteps: env.MaxSteps(),
		Namespace: r.topics.Namespace,
	}); err != nil {
		return fail(err)
	}
	// record writes step k: the command that led to it (none at reset) half a control
	// period after the previous frame, as a controller would send it, then the frame and
	// state at the step's time. The reader joins a command to the frame before it.
	record := func(k int, a metaworld.Action, status rosiface.EpisodeStatus) error {
		if err := env.RenderID(r.cam, cfg.Size, cfg.Size, r.rgb); err != nil {
			return err
		}
		stamp := t0.Add(time.Duration(k) * r.period)
		msgs := simros.Messages(r.topics, env, &r.st, simros.Step{
			Stamp:       stamp,
			Seq:         uint32(k),
			Frame:       &simros.Frame{Camera: cfg.Camera, W: cfg.Size, H: cfg.Size, RGB: r.rgb, Fovy: r.fovy},
			Status:      status,
			Action:      a,
			WithCommand: k > 0,
		})
		sent := stamp.Add(-r.period / 2)
		for _, m := range msgs {
			if m.Topic == r.topics.CmdVel || m.Topic == r.topics.Gripper {
				if err := p.Write(m.Topic, sent, m.Msg); err != nil {
					return err
				}
			}
		}
		for _, m := range msgs {
			if m.Topic != r.topics.CmdVel && m.Topic != r.topics.Gripper {
				if err := p.Write(m.Topic, stamp, m.Msg); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := record(0, metaworld.Action{}, rosiface.EpisodeStatus{Seed: seed}); err != nil {
		return fail(err)
	}
	for k := 1; ; k++ {
		if err := ctx.Err(); err != nil {
			return episode.Entry{}, err
		}
		a := pol.Act(&o)
		var (
			rew   float64
			info  metaworld.Info
			trunc bool
		)
		if o, rew, info, trunc, err = env.Step(a); err != nil {
			return fail(fmt.Errorf("step %d: %w", k, err))
		}
		if err := record(k, a, rosiface.EpisodeStatus{Seed: seed, Step: k, Reward: rew, Success: info.Success, Truncated: trunc}); err != nil {
			return fail(fmt.Errorf("step %d: %w", k, err))
		}
		if trunc || (info.Success && !cfg.Full) {
			break
		}
	}
	e, err := p.Commit()
	if err != nil {
		return fail(err)
	}
	return e, nil
}
