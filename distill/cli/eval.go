package cli

import (
	"fmt"
	goruntime "runtime"

	"github.com/spf13/cobra"

	"robodistill/control/onnxio"
	"robodistill/control/runtime"
	"robodistill/distill/policy"
	"robodistill/sim/metaworld"
)

func (a *app) evalCmd() *cobra.Command {
	var (
		task, path string
		episodes   int
		seed       uint64
		rate       int
		workers    int
	)
	c := &cobra.Command{
		Use:   "eval",
		Short: "Run an exported policy through the model runtime in the simulator and report its success rate",
		Long: `Loads POLICY.onnx through control/runtime — the runtime the daemon uses: hash, manifest and
self-check — and runs it deterministically on full-length MetaWorld episodes with the evaluation
seeds of 'policy train' (success at any step counts; the return is the simulator's over the
episode). The control rate is the manifest's (control.rate_hz), or --rate for a policy whose
manifest has none.`,
		Example: `  robodistill eval --task reach --policy out/reach/policy.onnx --episodes 50 --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if task == "" || path == "" {
				return fmt.Errorf("--task and --policy are required")
			}
			m, err := runtime.Load(path, runtime.Options{})
			if err != nil {
				return err
			}
			man := m.Manifest()
			if man.Kind != onnxio.KindPolicy {
				return fmt.Errorf("%s is a %s model, not a policy", path, man.Kind)
			}
			if man.Input.Observation != policy.ObservationMetaWorld {
				return fmt.Errorf("%s takes observation %q, the simulator gives %q", path, man.Input.Observation, policy.ObservationMetaWorld)
			}
			if c := man.Control; c != nil {
				if cmd.Flags().Changed("rate") && rate != c.RateHz {
					return fmt.Errorf("--rate %d: the policy was trained at %d Hz (manifest control.rate_hz)", rate, c.RateHz)
				}
				rate = c.RateHz
			}
			t, err := metaworld.Lookup(task)
			if err != nil {
				return err
			}
			opts := a.envOptions(rate)
			newEnv := func() (policy.Env, error) { return policy.NewMetaWorld(t.Name, opts) }
			newActor := func() (policy.Actor, error) {
				mm := m.Clone()
				return func(obs, act []float32) error {
					y, err := mm.Run(obs, 1)
					if err != nil {
						return err
					}
					copy(act, y)
					return nil
				}, nil
			}
			s, err := policy.Evaluate(cmd.Context(), newEnv, newActor, episodes, seed, workers)
			if err != nil {
				return err
			}
			a.human("%s: %d episodes at %d Hz, success %.0f%%, mean return %.1f, mean steps to success %.1f\n",
				s.Task, s.Episodes, rate, 100*s.SuccessRate, s.MeanReturn, s.MeanSteps)
			return a.summary(s)
		},
	}
	f := c.Flags()
	f.StringVar(&task, "task", "", "MetaWorld task")
	f.StringVar(&path, "policy", "", "exported policy (.onnx with its sidecar)")
	f.IntVar(&episodes, "episodes", 50, "evaluation episodes")
	f.Uint64Var(&seed, "seed", 0, "run seed whose evaluation episodes to use (policy train's --seed gives its own)")
	f.IntVar(&rate, "rate", 50, "control rate in Hz when the manifest has none")
	f.IntVar(&workers, "workers", goruntime.GOMAXPROCS(0), "parallel environments")
	return c
}
