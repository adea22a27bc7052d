package cli

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"robodistill/control/onnxio"
	"robodistill/control/runtime"
)

func (a *app) modelCmd() *cobra.Command {
	c := &cobra.Command{Use: "model", Short: "Check and run exported ONNX models with the model runtime (docs/runtime.md)"}
	c.AddCommand(a.modelCheckCmd(), a.modelRunCmd())
	return c
}

// ModelCheck is the one-line JSON summary of 'model check'.
type ModelCheck struct {
	Path          string             `json:"path"`
	SHA256        string             `json:"sha256"`
	Kind          onnxio.Kind        `json:"kind"`
	Task          string             `json:"task,omitempty"`
	Input         onnxio.Input       `json:"input"`
	Output        onnxio.Output      `json:"output"`
	Reward        *onnxio.RewardNorm `json:"reward,omitempty"`
	Ensemble      *onnxio.Ensemble   `json:"ensemble,omitempty"`
	Labeler       string             `json:"labeler"`
	CodeVersion   string             `json:"code_version"`
	Created       time.Time          `json:"created"`
	Backend       string             `json:"backend"`
	Ops           []string           `json:"ops"`
	SelfCheck     string             `json:"self_check"`
	GoldenMaxDiff float64            `json:"golden_max_diff"`
	Tolerance     float64            `json:"golden_tolerance"`
	Runs          int                `json:"runs"`
	MedianMs      float64            `json:"median_ms"`
	P99Ms         float64            `json:"p99_ms"`
	AllocsPerRun  float64            `json:"allocs_per_run"`
}

func (a *app) modelCheckCmd() *cobra.Command {
	var (
		backend string
		runs    int
	)
	c := &cobra.Command{
		Use:   "check MODEL.onnx",
		Short: "Verify a model against its sidecar, load it, self-check it and time it",
		Long: `Verifies MODEL.onnx against MODEL.onnx.json (sha256, manifests, graph signature), compiles it
for the runtime's backend and runs the load-time self-check (the manifest's golden input must
give its golden output; two runs must be bit-identical). Then times --runs runs at batch 1 and
counts the allocations per run. A model that fails any check exits with status 1 and the reason.`,
		Example: `  robodistill model check out/reach/reward.onnx
  robodistill model check out/reach/reward.onnx --backend gorgonia --runs 50 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runs < 1 {
				return fmt.Errorf("--runs: must be at least 1, got %d", runs)
			}
			m, err := runtime.Load(args[0], runtime.Options{Backend: backend})
			if err != nil {
				return err
			}
			man := m.Manifest()
			x, err := onnxio.GoldenInput(man.Golden.Pattern, m.InputSize())
			if err != nil {
				return err
			}
			y, err := m.Run(x, 1)
			if err != nil {
				return err
			}
			s := ModelCheck{Path: args[0], SHA256: m.SHA256(), Kind: man.Kind, Task: man.Task, Input: man.Input,
				Output: man.Output, Reward: man.Reward, Ensemble: man.Ensemble, Labeler: man.Training.Labeler,
				CodeVersion: man.CodeVersion, Created: man.Created, Backend: m.Backend(), Ops: m.Ops(),
				SelfCheck: "ok", GoldenMaxDiff: maxAbsDiff(y, man.Golden.Output), Tolerance: man.Golden.Tolerance, Runs: runs}
			if err := timeRuns(m, x, &s); err != nil {
				return err
			}
			a.human("%s: %s model", s.Path, s.Kind)
			if s.Task != "" {
				a.human(" for %s", s.Task)
			}
			a.human(", sha256 %s\n", s.SHA256)
			a.human("  input  %s %v%s\n", s.Input.Name, s.Input.Shape, inputNote(s.Input))
			a.human("  output %s %v: %s\n", s.Output.Name, s.Output.Shape, s.Output.Meaning)
			if r := s.Reward; r != nil {
				a.human("  published reward (raw − %g) / %g", r.Mean, r.Std)
				for _, t := range r.Thresholds {
					a.human(", %s at %g", t.Name, t.Value)
				}
				a.human("\n")
			}
			if e := s.Ensemble; e != nil {
				a.human("  ensemble member %d of %d\n", e.Member, e.Size)
			}
			a.human("  labeller %s; code %s, created %s\n", s.Labeler, s.CodeVersion, s.Created.Format(time.RFC3339))
			a.human("  ops %s (backend %s)\n", strings.Join(s.Ops, " "), s.Backend)
			a.human("  self-check ok: golden output within %.2g of the manifest's (tolerance %g), two runs bit-identical\n", s.GoldenMaxDiff, s.Tolerance)
			a.human("  batch 1: median %.3f ms, p99 %.3f ms over %d runs; %g allocations per run\n", s.MedianMs, s.P99Ms, s.Runs, s.AllocsPerRun)
			return a.summary(s)
		},
	}
	f := c.Flags()
	f.StringVar(&backend, "backend", runtime.BackendNative, "model runtime backend: robodistill or gorgonia")
	f.IntVar(&runs, "runs", 200, "runs to time at batch 1")
	return c
}

func inputNote(in onnxio.Input) string {
	switch {
	case in.Vision != nil:
		js, _ := in.Vision.JSON()
		return " vision " + string(js)
	case in.Observation != "":
		return " observation " + in.Observation
	}
	return ""
}

// timeRuns fills the timing and allocation figures of s from runs of x at batch 1.
func timeRuns(m *runtime.Model, x []float32, s *ModelCheck) error {
	d := make([]time.Duration, s.Runs)
	for i := range d {
		start := time.Now()
		if _, err := m.Run(x, 1); err != nil {
			return err
		}
		d[i] = time.Since(start)
	}
	slices.Sort(d)
	s.MedianMs = float64(d[len(d)/2]) / 1e6
	s.P99Ms = float64(d[min(len(d)*99/100, len(d)-1)]) / 1e6
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	for range s.Runs {
		if _, err := m.Run(x, 1); err != nil {
			return err
		}
	}
	goruntime.ReadMemStats(&after)
	s.AllocsPerRun = float64(after.Mallocs-before.Mallocs) / float64(s.Runs)
	return nil
}

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range min(len(a), len(b)) {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// ModelRun is the one-line JSON summary of 'model run'.
type ModelRun struct {
	Shape  []int     `json:"shape"`
	Output []float32 `json:"output"`
}

func (a *app) modelRunCmd() *cobra.Command {
	var backend, input string
	c := &cobra.Command{
		Use:   "run MODEL.onnx --input FILE",
		Short: "Run a model on inputs from a file and print the outputs as a JSON array",
		Long: `Loads MODEL.onnx as 'model check' does and runs it on --input: a JSON array of numbers, or
raw little-endian float32 when the name ends in .f32. The values are samples of the manifest's
input.shape one after another; their count sets the batch size. Prints the outputs, sample after
sample, as one JSON array (with --json: {"shape": [batch, ...], "output": [...]}).`,
		Example: `  robodistill model run out/policy.onnx --input obs.json
  robodistill model run out/reach/reward.onnx --input frames.f32 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			x, err := readInput(input)
			if err != nil {
				return fmt.Errorf("--input: %w", err)
			}
			v, err := onnxio.Verify(args[0])
			if err != nil {
				return err
			}
			per := 1
			for _, d := range v.Manifest.Input.Shape {
				per *= d
			}
			if len(x) == 0 || len(x)%per != 0 {
				return fmt.Errorf("--input: %d values is not a whole number of samples of input.shape %v (%d values each)", len(x), v.Manifest.Input.Shape, per)
			}
			batch := len(x) / per
			if batch > runtime.MaxBatchLimit {
				return fmt.Errorf("--input: %d samples, at most %d", batch, runtime.MaxBatchLimit)
			}
			m, err := runtime.Load(args[0], runtime.Options{MaxBatch: batch, Backend: backend})
			if err != nil {
				return err
			}
			y, err := m.Run(x, batch)
			if err != nil {
				return err
			}
			if a.json {
				return a.summary(ModelRun{Shape: append([]int{batch}, v.Manifest.Output.Shape...), Output: y})
			}
			js, err := json.Marshal(y)
			if err != nil {
				return err
			}
			a.human("%s\n", js)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&input, "input", "", "input values: JSON array, or raw little-endian float32 (.f32)")
	f.StringVar(&backend, "backend", runtime.BackendNative, "model runtime backend: robodistill or gorgonia")
	_ = c.MarkFlagRequired("input")
	return c
}

// readInput reads a JSON array of numbers, or raw little-endian float32 from a .f32 file.
func readInput(path string) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(path, ".f32") {
		if len(b)%4 != 0 {
			return nil, fmt.Errorf("%s: %d bytes is not a whole number of float32", path, len(b))
		}
		x := make([]float32, len(b)/4)
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return x, nil
	}
	var x []float32
	if err := json.Unmarshal(b, &x); err != nil {
		return nil, fmt.Errorf("%s: not a JSON array of numbers: %w", path, err)
	}
	return x, nil
}
