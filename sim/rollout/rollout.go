// Package rollout runs policies in MetaWorld environments: seeded episodes, in parallel
// across workers (one Env each), with the statistics the CLI and benchmarks report.
//
// Episode i of a run with seed S is reset with seed S+i and its policy noise is drawn from
// the same seed, so results do not depend on how many workers run them.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"robodistill/sim/metaworld"
)

// Policy chooses actions. A Policy value is used by one episode at a time; New makes one
// per episode so stateful policies work.
type Policy interface {
	Act(o *metaworld.Obs) metaworld.Action
}

// PolicyFactory makes the policy for one episode, given the task and the episode's seed.
type PolicyFactory func(task *metaworld.Task, seed uint64) Policy

type scripted struct {
	f func(*metaworld.Obs) metaworld.Action
}

func (p scripted) Act(o *metaworld.Obs) metaworld.Action { return p.f(o) }

type random struct{ rng *rand.Rand }

func (p random) Act(*metaworld.Obs) metaworld.Action {
	var a metaworld.Action
	for i := range a {
		a[i] = 2*p.rng.Float64() - 1
	}
	return a
}

type noisy struct {
	f   func(*metaworld.Obs) metaworld.Action
	std float64
	rng *rand.Rand
}

func (p noisy) Act(o *metaworld.Obs) metaworld.Action {
	a := p.f(o)
	for i := range a {
		a[i] = max(-1, min(1, a[i]+p.std*p.rng.NormFloat64()))
	}
	return a
}

// waypoints drives the hand (gain 5, as the scripted reach policy) toward waypoints
// drawn uniformly from the task's hand bounds, a new one every waypointSteps steps: with
// noise on top (noisy), frames from all over the workspace, which a reward model trained
// only on goal-directed episodes has never seen.
type waypoints struct {
	lo, hi metaworld.Vec3
	rng    *rand.Rand
	to     metaworld.Vec3
	steps  int
}

const waypointSteps = 50

func (p *waypoints) act(o *metaworld.Obs) metaworld.Action {
	if p.steps%waypointSteps == 0 {
		for i := range p.to {
			p.to[i] = p.lo[i] + p.rng.Float64()*(p.hi[i]-p.lo[i])
		}
	}
	p.steps++
	d := p.to.Sub(o.Hand()).Scale(5)
	return metaworld.Action{d[0], d[1], d[2], 0}
}

func policyRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x706f6c696379)) }

// ParsePolicy understands "scripted" (MetaWorld's scripted policy), "random" (uniform in
// [-1, 1]^4), "scripted-noise:STD" (scripted plus Gaussian noise of standard deviation
// STD on every action component, clipped to [-1, 1]) and "wander:STD" (the hand driven
// to random waypoints in the task's hand bounds, a new one every 50 steps, plus noise
// STD). A comma-separated list mixes policies by episode: the episode with seed s runs
// the (s mod n)-th, e.g. "scripted-noise:2.0,wander:0.5".
func ParsePolicy(spec string) (PolicyFactory, error) {
	if parts := strings.Split(spec, ","); len(parts) > 1 {
		fs := make([]PolicyFactory, len(parts))
		for i, p := range parts {
			f, err := ParsePolicy(p)
			if err != nil {
				return nil, fmt.Errorf("policy %q: %w", spec, err)
			}
			fs[i] = f
		}
		return func(t *metaworld.Task, seed uint64) Policy { return fs[seed%uint64(len(fs))](t, seed) }, nil
	}
	name, arg, hasArg := strings.Cut(spec, ":")
	switch name {
	case "scripted":
		if hasArg {
			return nil, fmt.Errorf("policy %q: scripted takes no argument", spec)
		}
		return func(t *metaworld.Task, _ uint64) Policy { return scripted{t.Scripted} }, nil
	case "random":
		if hasArg {
			return nil, fmt.Errorf("policy %q: random takes no argument", spec)
		}
		return func(_ *metaworld.Task, seed uint64) Policy { return random{policyRNG(seed)} }, nil
	case "scripted-noise":
		std, err := strconv.ParseFloat(arg, 64)
		if err != nil || !hasArg || std < 0 || std > 10 {
			return nil, fmt.Errorf("policy %q: scripted-noise needs a noise level, e.g. scripted-noise:0.3", spec)
		}
		return func(t *metaworld.Task, seed uint64) Policy {
			return noisy{f: t.Scripted, std: std, rng: policyRNG(seed)}
		}, nil
	case "wander":
		std, err := strconv.ParseFloat(arg, 64)
		if err != nil || !hasArg || std < 0 || std > 10 {
			return nil, fmt.Errorf("policy %q: wander needs a noise level, e.g. wander:0.5", spec)
		}
		return func(t *metaworld.Task, seed uint64) Policy {
			rng := policyRNG(seed) // one stream: the waypoints, then each step's noise
			w := &waypoints{lo: t.HandLow, hi: t.HandHigh, rng: rng}
			return noisy{f: w.act, std: std, rng: rng}
		}, nil
	}
	return nil, fmt.Errorf("unknown policy %q (scripted, random, scripted-noise:STD, wander:STD, or a comma-separated mix)", spec)
}

// Config describes a run.
type Config struct {
	Task     *metaworld.Task
	Env      metaworld.Options
	Policy   PolicyFactory
	Episodes int
	Seed     uint64
	Workers  int // default GOMAXPROCS
	// Full runs every episode to its length; by default an episode ends at its first
	// success, as MetaWorld's evaluation does.
	Full bool
	// OnStep, when set, is called after every step (from the worker's goroutine).
	OnStep func(w *Worker, ep Episode, step int, o *metaworld.Obs, a metaworld.Action, r float64, info metaworld.Info)
	// OnEpisode, when set, is called after each episode (serialized).
	OnEpisode func(ep Episode)
}

// Episode is one finished episode.
type Episode struct {
	Index   int     `json:"index"`
	Seed    uint64  `json:"seed"`
	Success bool    `json:"success"`
	Return  float64 `json:"return"`
	Steps   int     `json:"steps"`
	// FirstSuccess is the step of the first success (-1 when none).
	FirstSuccess int `json:"first_success"`
}

// Summary aggregates a run; the JSON field names are the CLI's contract.
type Summary struct {
	Task        string    `json:"task"`
	Episodes    int       `json:"episodes"`
	SuccessRate float64   `json:"success_rate"`
	MeanReturn  float64   `json:"mean_return"`
	MeanSteps   float64   `json:"mean_steps"`
	StepsPerSec float64   `json:"steps_per_sec"`
	Results     []Episode `json:"-"`
}

// Worker is one goroutine's environment.
type Worker struct {
	ID  int
	Env *metaworld.Env
}

// Run executes cfg and returns the summary. Cancelling ctx stops between steps and returns
// the episodes finished so far with ctx's error.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if cfg.Task == nil || cfg.Policy == nil {
		return Summary{}, errors.New("rollout.Run: task and policy are required")
	}
	if cfg.Episodes < 1 {
		return Summary{}, fmt.Errorf("rollout.Run: episodes %d < 1", cfg.Episodes)
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, cfg.Episodes)

	envs := make([]*metaworld.Env, workers)
	defer func() {
		for _, e := range envs {
			if e != nil {
				e.Close()
			}
		}
	}()
	for i := range envs {
		e, err := metaworld.New(cfg.Task, cfg.Env)
		if err != nil {
			return Summary{}, err
		}
		envs[i] = e
	}

	jobs := make(chan int)
	results := make([]Episode, cfg.Episodes)
	done := make([]bool, cfg.Episodes)
	var mu sync.Mutex
	var firstErr error
	var totalSteps int64
	start := time.Now()
	var wg sync.WaitGroup
	for w := range envs {
		wg.Add(1)
		go func(w *Worker) {
			defer wg.Done()
			for i := range jobs {
				ep, err := runEpisode(ctx, w, cfg, i)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
				} else {
					results[i], done[i] = ep, true
					totalSteps += int64(ep.Steps)
					if cfg.OnEpisode != nil {
						cfg.OnEpisode(ep)
					}
				}
				mu.Unlock()
			}
		}(&Worker{ID: w, Env: envs[w]})
	}
feed:
	for i := 0; i < cfg.Episodes; i++ {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)

	s := Summary{Task: cfg.Task.Name}
	for i, ok := range done {
		if !ok {
			continue
		}
		ep := results[i]
		s.Results = append(s.Results, ep)
		s.Episodes++
		if ep.Success {
			s.SuccessRate++
		}
		s.MeanReturn += ep.Return
		s.MeanSteps += float64(ep.Steps)
	}
	if s.Episodes > 0 {
		n := float64(s.Episodes)
		s.SuccessRate /= n
		s.MeanReturn /= n
		s.MeanSteps /= n
	}
	if elapsed > 0 {
		s.StepsPerSec = float64(totalSteps) / elapsed.Seconds()
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return s, firstErr
}

func runEpisode(ctx context.Context, w *Worker, cfg Config, i int) (Episode, error) {
	seed := cfg.Seed + uint64(i)
	ep := Episode{Index: i, Seed: seed, FirstSuccess: -1}
	o, err := w.Env.Reset(seed)
	if err != nil {
		return ep, err
	}
	pol := cfg.Policy(cfg.Task, seed)
	for {
		if ctx.Err() != nil {
			return ep, ctx.Err()
		}
		a := pol.Act(&o)
		var r float64
		var info metaworld.Info
		var end bool
		o, r, info, end, err = w.Env.Step(a)
		if err != nil {
			return ep, fmt.Errorf("episode %d (seed %d) step %d: %w", i, seed, ep.Steps, err)
		}
		ep.Steps++
		ep.Return += r
		if cfg.OnStep != nil {
			cfg.OnStep(w, ep, ep.Steps, &o, a, r, info)
		}
		if info.Success && !ep.Success {
			ep.Success = true
			ep.FirstSuccess = ep.Steps
			if !cfg.Full {
				end = true
			}
		}
		if end {
			return ep, nil
		}
	}
}
