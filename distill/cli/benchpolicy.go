package cli

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"robodistill/control/onnxio"
	"robodistill/distill/policy"
	"robodistill/distill/policy/torchsac"
	"robodistill/distill/reward"
	"robodistill/vision"
)

// PolicyBench is the JSON report of 'bench policy'.
type PolicyBench struct {
	Batch    int     `json:"batch"`
	Hidden   int     `json:"hidden"`
	Updates  int     `json:"updates"`
	GoP50    float64 `json:"go_p50_ms"`
	TorchP50 float64 `json:"torch_p50_ms"`
	Torch    string  `json:"torch"`
	Ratio    float64 `json:"go_over_torch"`
	// Environment steps per second while training (two reach environments in lockstep,
	// random actions, no updates): with the simulator's reward, and with a reward
	// ensemble of 3 on the rendered 128-pixel corner frame (the training path).
	EnvSteps            int     `json:"env_steps"`
	StepsPerSecGT       float64 `json:"steps_per_s_groundtruth"`
	StepsPerSecRendered float64 `json:"steps_per_s_render_reward"`
}

func (a *app) benchPolicyCmd() *cobra.Command {
	var updates, envSteps int
	c := &cobra.Command{
		Use:   "policy",
		Short: "One SAC update at MetaWorld's shapes in Go next to PyTorch's (one thread each)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if updates < 10 {
				return fmt.Errorf("--updates: at least 10, got %d", updates)
			}
			cfg := policy.DefaultSAC()
			ag, err := policy.NewAgent(cfg, 39, 4, 1)
			if err != nil {
				return err
			}
			r, err := policy.NewReplay(4*cfg.Batch, 39, 4)
			if err != nil {
				return err
			}
			rng := rand.New(rand.NewPCG(1, 1))
			obs, next, act := make([]float32, 39), make([]float32, 39), make([]float32, 4)
			for range r.Cap() {
				for j := range obs {
					obs[j], next[j] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
				}
				ag.RandomActions(act)
				r.Add(obs, act, rng.Float32(), next, false)
			}
			res, err := timeCycles(cmd.Context(), updates, func() error { ag.Update(r); return nil })
			if err != nil {
				return err
			}
			ts, version, err := torchsac.Times(cmd.Context(), 39, 4, cfg.Hidden, cfg.Batch, updates, max(updates/10, 2))
			if err != nil {
				return err
			}
			rep := PolicyBench{Batch: cfg.Batch, Hidden: cfg.Hidden, Updates: updates, GoP50: res.P50Ms,
				TorchP50: percentileMs(ts, 0.5), Torch: version}
			rep.Ratio = rep.GoP50 / rep.TorchP50
			if envSteps > 0 {
				if err := a.benchEnvSteps(cmd.Context(), envSteps, &rep); err != nil {
					return err
				}
			}
			a.human("SAC update: batch %d, hidden %d, obs 39, action 4, median of %d, one thread each\n", rep.Batch, rep.Hidden, updates)
			a.human("  pytorch %-12s %7.2f ms\n", version, rep.TorchP50)
			a.human("  go (openblas)        %7.2f ms   %.2fx pytorch   %.1f allocations per update\n", rep.GoP50, rep.Ratio, res.AllocsPerRun)
			if envSteps > 0 {
				a.human("environment steps/s while training, 2 reach environments, random actions (%d steps):\n", rep.EnvSteps)
				a.human("  simulator reward                                   %7.0f\n", rep.StepsPerSecGT)
				a.human("  rendered 128 px + reward ensemble of 3 (64 px CNN) %7.0f\n", rep.StepsPerSecRendered)
			}
			return a.summary(rep)
		},
	}
	c.Flags().IntVar(&updates, "updates", 50, "timed updates per implementation")
	c.Flags().IntVar(&envSteps, "env-steps", 2000, "environment steps per reward for the steps/s figures (0: skip them)")
	return c
}

// benchEnvSteps measures policy training's stepping rate (policy.Train with only random
// steps) with the simulator's reward and with an (untrained, same-cost) reward ensemble
// on rendered frames.
func (a *app) benchEnvSteps(ctx context.Context, steps int, rep *PolicyBench) error {
	dir, err := os.MkdirTemp("", "robodistill-bench-policy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	vc := vision.DefaultConfig()
	vc.Crop = &vision.Rect{X: 28, Y: 16, Width: 80, Height: 80}
	path := filepath.Join(dir, "reward.onnx")
	for m := range 3 {
		net, err := reward.NewNet("cnn2", [3]int{3, 64, 64}, 64, rand.New(rand.NewPCG(7, uint64(m))))
		if err != nil {
			return err
		}
		man := onnxio.Manifest{Version: onnxio.ManifestVersion, Kind: onnxio.KindReward, Task: "reach",
			Input:       onnxio.Input{Name: "image", Shape: []int{3, 64, 64}, Vision: &vc},
			Output:      onnxio.Output{Name: "reward", Shape: []int{1}, Meaning: "untrained, for timing"},
			Reward:      &onnxio.RewardNorm{Mean: 0, Std: 1},
			Ensemble:    &onnxio.Ensemble{Member: m, Size: 3},
			Training:    onnxio.Training{Labeler: "none (bench)", LabelsSHA256: []string{strings.Repeat("0", 64)}},
			CodeVersion: codeVersion(), Created: time.Now().UTC().Truncate(time.Second)}
		if _, err := onnxio.Save(onnxio.MemberPath(path, m), net, man); err != nil {
			return err
		}
	}
	d, err := policy.NewDistilled(path, 2)
	if err != nil {
		return err
	}
	defer d.Close()
	rep.EnvSteps = steps
	for _, r := range []policy.Reward{policy.GroundTruth{}, d} {
		cfg := policy.DefaultConfig()
		cfg.Task, cfg.Assets, cfg.Steps, cfg.Envs, cfg.LearningStarts, cfg.EvalEpisodes = "reach", a.assets, steps, 2, steps, 0
		cfg.FrameSize, cfg.Reward = 128, r
		res, err := policy.Train(ctx, cfg)
		if err != nil {
			return err
		}
		sps := float64(res.EnvStepsThisRun) / res.EnvSeconds
		if r.NeedsFrame() {
			rep.StepsPerSecRendered = sps
		} else {
			rep.StepsPerSecGT = sps
		}
	}
	return d.Err()
}
