package policy

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// EvalSeed is the seed of evaluation episode k of a run seeded with seed: the episodes
// Train evaluates on, disjoint from every training episode's seed.
func EvalSeed(seed uint64, k int) uint64 { return evalSeed(seed, k) }

// Actor maps observations to actions: obs holds one observation, act receives one
// action. The exported policy through the model runtime is one; each worker gets its
// own.
type Actor func(obs, act []float32) error

// EvalSummary is what Evaluate reports, in `robodistill eval`'s JSON form.
type EvalSummary struct {
	Task        string  `json:"task"`
	Episodes    int     `json:"episodes"`
	SuccessRate float64 `json:"success_rate"`
	MeanReturn  float64 `json:"mean_return"`
	// MeanSteps is the mean number of steps to the first success, counting the whole
	// episode for one that never succeeds.
	MeanSteps float64 `json:"mean_steps"`
}

// Evaluate runs episodes full-length episodes (as Train's evaluations do: success is
// success at any step, the return is the simulator's over the whole episode) on
// evaluation seeds EvalSeed(seed, k), spread over workers environments, each with its
// own Actor from newActor. The result does not depend on workers.
func Evaluate(ctx context.Context, newEnv func() (Env, error), newActor func() (Actor, error), episodes int, seed uint64, workers int) (EvalSummary, error) {
	if episodes < 1 || workers < 1 {
		return EvalSummary{}, fmt.Errorf("policy.Evaluate: episodes and workers must be positive")
	}
	type result struct {
		ret     float64
		success bool
		steps   int
	}
	res := make([]result, episodes)
	next := make(chan int)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(next)
		for k := range episodes {
			select {
			case next <- k:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	var spec Spec
	for range min(workers, episodes) {
		env, err := newEnv()
		if err != nil {
			return EvalSummary{}, err
		}
		spec = env.Spec()
		act, err := newActor()
		if err != nil {
			env.Close()
			return EvalSummary{}, err
		}
		g.Go(func() error {
			defer env.Close()
			obs, obs32 := make([]float64, spec.ObsDim), make([]float32, spec.ObsDim)
			a, a64 := make([]float32, spec.ActDim), make([]float64, spec.ActDim)
			for k := range next {
				if err := env.Reset(EvalSeed(seed, k), obs); err != nil {
					return err
				}
				r := result{steps: -1}
				for step := 1; ; step++ {
					for i, v := range obs {
						obs32[i] = float32(v)
					}
					if err := act(obs32, a); err != nil {
						return fmt.Errorf("episode %d step %d: %w", k, step, err)
					}
					for i, v := range a {
						a64[i] = float64(v)
					}
					sr, err := env.Step(a64, obs)
					if err != nil {
						return err
					}
					r.ret += sr.Reward
					if sr.Success && !r.success {
						r.success, r.steps = true, step
					}
					if sr.Terminal || sr.Truncated {
						if !r.success {
							r.steps = step
						}
						break
					}
				}
				res[k] = r
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return EvalSummary{}, err
	}
	s := EvalSummary{Task: spec.Task, Episodes: episodes}
	for _, r := range res {
		s.MeanReturn += r.ret
		s.MeanSteps += float64(r.steps)
		if r.success {
			s.SuccessRate++
		}
	}
	n := float64(episodes)
	s.SuccessRate, s.MeanReturn, s.MeanSteps = s.SuccessRate/n, s.MeanReturn/n, s.MeanSteps/n
	return s, nil
}
