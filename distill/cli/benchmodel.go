package cli

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"robodistill/control/nn"
	"robodistill/control/nn/torchref"
	"robodistill/control/onnxio"
	"robodistill/control/runtime"
	"robodistill/distill/reward"
	"robodistill/vision"
)

// ModelBench is the JSON report of 'bench model': one control cycle (the reward ensemble
// on a 64×64 frame, then the policy on a state vector) per implementation.
type ModelBench struct {
	Cycles   int                `json:"cycles"`
	Ensemble int                `json:"ensemble"`
	Results  []ModelBenchResult `json:"results"`
	Torch    string             `json:"torch"`
}

// ModelBenchResult is one implementation's cycle time.
type ModelBenchResult struct {
	Name         string  `json:"name"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	AllocsPerRun float64 `json:"allocs_per_cycle"` // -1: not measured (another process)
	BytesPerRun  float64 `json:"bytes_per_cycle"`
	VsTorch      float64 `json:"p50_vs_torch"`
}

func (a *app) benchModelCmd() *cobra.Command {
	var cycles, ensemble int
	c := &cobra.Command{
		Use:   "model",
		Short: "Reward ensemble + policy per control cycle through our runtime, onnx-go's Gorgonia backend and PyTorch",
		Long: `Exports a reward ensemble (--ensemble members of the default 64×64 reward CNN) and a
policy MLP (39→256→256→4, tanh) with random weights, then times one control cycle — every
member on one frame, then the policy on one observation, batch 1 — through control/runtime's
native backend, through onnx-go's Gorgonia backend, and through PyTorch (python3-torch, one
thread, no gradients) on the same weights. Go runs on one core (GOMAXPROCS 1, one OpenBLAS
thread); the figures are p50 and p99 over --cycles cycles and allocations per cycle.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := benchModel(cmd.Context(), cycles, ensemble)
			if err != nil {
				return err
			}
			a.human("control cycle: reward ensemble of %d (3x64x64 CNN) + policy MLP, batch 1, %d cycles, one core\n", rep.Ensemble, rep.Cycles)
			for _, r := range rep.Results {
				allocs := "n/a (another process)"
				if r.AllocsPerRun >= 0 {
					allocs = fmt.Sprintf("%.1f allocs, %.0f B", r.AllocsPerRun, r.BytesPerRun)
				}
				a.human("  %-34s p50 %7.3f ms   p99 %7.3f ms   %5.2fx pytorch p50   %s per cycle\n", r.Name, r.P50Ms, r.P99Ms, r.VsTorch, allocs)
			}
			return a.summary(rep)
		},
	}
	c.Flags().IntVar(&cycles, "cycles", 1000, "timed control cycles per implementation")
	c.Flags().IntVar(&ensemble, "ensemble", 3, "reward ensemble members")
	return c
}

func benchModel(ctx context.Context, cycles, members int) (*ModelBench, error) {
	if cycles < 10 || members < 1 {
		return nil, fmt.Errorf("bench model: --cycles must be at least 10 and --ensemble at least 1")
	}
	dir, err := os.MkdirTemp("", "bench-model-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rng := rand.New(rand.NewPCG(1, 2))
	vc := vision.DefaultConfig()
	shape := [3]int{3, vc.Height, vc.Width}
	var nets []*nn.Sequential
	var inputs [][]int
	rewardPath := filepath.Join(dir, "reward.onnx")
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for m := range members {
		net, err := reward.NewNet("cnn2", shape, 64, rng)
		if err != nil {
			return nil, err
		}
		man := onnxio.Manifest{Version: onnxio.ManifestVersion, Kind: onnxio.KindReward,
			Input:       onnxio.Input{Name: "image", Shape: shape[:], Vision: &vc},
			Output:      onnxio.Output{Name: "reward", Shape: []int{1}, Meaning: "benchmark reward"},
			Reward:      &onnxio.RewardNorm{Mean: 0, Std: 1},
			Ensemble:    &onnxio.Ensemble{Member: m, Size: members},
			Training:    onnxio.Training{Labeler: "bench", LabelsSHA256: []string{strings.Repeat("0", 64)}},
			CodeVersion: "bench", Created: created}
		if _, err := onnxio.Save(onnxio.MemberPath(rewardPath, m), net, man); err != nil {
			return nil, err
		}
		nets, inputs = append(nets, net), append(inputs, shape[:])
	}
	pol := nn.NewSequential(nn.NewLinear(39, 256, rng), nn.NewReLU(), nn.NewLinear(256, 256, rng), nn.NewReLU(),
		nn.NewLinear(256, 4, rng), nn.NewTanh())
	policyPath := filepath.Join(dir, "policy.onnx")
	if _, err := onnxio.Save(policyPath, pol, onnxio.Manifest{Version: onnxio.ManifestVersion, Kind: onnxio.KindPolicy,
		Input:    onnxio.Input{Name: "obs", Shape: []int{39}, Observation: "metaworld-v2-39"},
		Output:   onnxio.Output{Name: "action", Shape: []int{4}, Meaning: "benchmark action"},
		Training: onnxio.Training{Labeler: "bench"}, CodeVersion: "bench", Created: created}); err != nil {
		return nil, err
	}
	nets, inputs = append(nets, pol), append(inputs, []int{39})

	frame := make([]float32, shape[0]*shape[1]*shape[2])
	obs := make([]float32, 39)
	for i := range frame {
		frame[i] = rng.Float32()
	}
	for i := range obs {
		obs[i] = rng.Float32()
	}
	rep := &ModelBench{Cycles: cycles, Ensemble: members}
	for _, backend := range []string{runtime.BackendNative, runtime.BackendGorgonia} {
		ens, err := runtime.LoadEnsemble(rewardPath, runtime.Options{Backend: backend})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", backend, err)
		}
		p, err := runtime.Load(policyPath, runtime.Options{Backend: backend})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", backend, err)
		}
		n := cycles
		if backend == runtime.BackendGorgonia {
			n = max(cycles/10, 10) // about fifteen times slower
		}
		r, err := timeCycles(ctx, n, func() error {
			if _, _, err := ens.Run(frame); err != nil {
				return err
			}
			_, err := p.Run(obs, 1)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", backend, err)
		}
		r.Name = "go runtime (" + backend + ")"
		rep.Results = append(rep.Results, r)
	}
	times, version, err := torchref.Runner{}.InferTimes(ctx, nets, inputs, cycles, cycles/10)
	if err != nil {
		return nil, err
	}
	rep.Torch = version
	tr := ModelBenchResult{Name: "pytorch " + version + " (1 thread)", AllocsPerRun: -1}
	tr.P50Ms, tr.P99Ms = percentileMs(times, 0.5), percentileMs(times, 0.99)
	rep.Results = append(rep.Results, tr)
	for i := range rep.Results {
		rep.Results[i].VsTorch = rep.Results[i].P50Ms / tr.P50Ms
	}
	return rep, nil
}

// timeCycles runs cycle n times on one locked OS thread with GOMAXPROCS 1 after a tenth
// as many untimed ones, and returns p50, p99 and allocations per cycle.
func timeCycles(ctx context.Context, n int, cycle func() error) (ModelBenchResult, error) {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(1))
	for range max(n/10, 3) {
		if err := cycle(); err != nil {
			return ModelBenchResult{}, err
		}
	}
	times := make([]time.Duration, n)
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	for i := range times {
		if i%100 == 0 && ctx.Err() != nil {
			return ModelBenchResult{}, ctx.Err()
		}
		t0 := time.Now()
		if err := cycle(); err != nil {
			return ModelBenchResult{}, err
		}
		times[i] = time.Since(t0)
	}
	goruntime.ReadMemStats(&after)
	return ModelBenchResult{
		P50Ms: percentileMs(times, 0.5), P99Ms: percentileMs(times, 0.99),
		AllocsPerRun: float64(after.Mallocs-before.Mallocs) / float64(n),
		BytesPerRun:  float64(after.TotalAlloc-before.TotalAlloc) / float64(n),
	}, nil
}

func percentileMs(ts []time.Duration, q float64) float64 {
	s := slices.Clone(ts)
	slices.Sort(s)
	i := min(int(q*float64(len(s))), len(s)-1)
	return float64(s[i]) / float64(time.Millisecond)
}
