package cli

import (
	"fmt"
	"math/rand/v2"

	"github.com/spf13/cobra"

	"robodistill/distill/policy"
	"robodistill/distill/policy/torchsac"
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
}

func (a *app) benchPolicyCmd() *cobra.Command {
	var updates int
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
			a.human("SAC update: batch %d, hidden %d, obs 39, action 4, median of %d, one thread each\n", rep.Batch, rep.Hidden, updates)
			a.human("  pytorch %-12s %7.2f ms\n", version, rep.TorchP50)
			a.human("  go (openblas)        %7.2f ms   %.2fx pytorch   %.1f allocations per update\n", rep.GoP50, rep.Ratio, res.AllocsPerRun)
			return a.summary(rep)
		},
	}
	c.Flags().IntVar(&updates, "updates", 50, "timed updates per implementation")
	return c
}
