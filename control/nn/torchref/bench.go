package torchref

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"robodistill/control/nn"
)

// BenchConfig sets up the training-step benchmark. Zero fields take the defaults in
// brackets.
type BenchConfig struct {
	Pairs  int // pairs per batch [64], so 2·Pairs frames of 3×64×64
	Hidden int // width of RewardCNN's hidden layer [64]
	Steps  int // timed steps per implementation [10]
	Warmup int // untimed steps first [2]
	Runner Runner
}

func (c *BenchConfig) defaults() {
	if c.Pairs == 0 {
		c.Pairs = 64
	}
	if c.Hidden == 0 {
		c.Hidden = 64
	}
	if c.Steps == 0 {
		c.Steps = 10
	}
	if c.Warmup == 0 {
		c.Warmup = 2
	}
}

// BenchResult holds the median time of one training step per implementation.
type BenchResult struct {
	Pairs, Hidden, Steps int
	GOMAXPROCS           int
	Go                   map[nn.Backend]time.Duration // per linked backend
	Torch                time.Duration
	TorchVersion         string
}

// Bench times one Bradley-Terry training step of RewardCNN (forward, loss, backward,
// Adam) in Go with every linked BLAS backend and in PyTorch with one thread, on the same
// batch size. It leaves the nn backend as it found it.
func Bench(ctx context.Context, cfg BenchConfig) (*BenchResult, error) {
	cfg.defaults()
	res := &BenchResult{Pairs: cfg.Pairs, Hidden: cfg.Hidden, Steps: cfg.Steps,
		GOMAXPROCS: runtime.GOMAXPROCS(0), Go: map[nn.Backend]time.Duration{}}

	layers, err := Describe(RewardCNN(cfg.Hidden, rand.New(rand.NewPCG(0, 0))))
	if err != nil {
		return nil, err
	}
	sp := spec{Mode: "bench", Layers: layers, Adam: nn.DefaultAdam(), Pairs: cfg.Pairs,
		Input: []int{2 * cfg.Pairs, 3, 64, 64}, Steps: cfg.Steps, Warmup: cfg.Warmup}
	out, _, err := cfg.Runner.run(ctx, sp, nil)
	if err != nil {
		return nil, err
	}
	if len(out.TimesMS) == 0 {
		return nil, fmt.Errorf("torchref.Bench: the script timed no steps")
	}
	times := make([]time.Duration, len(out.TimesMS))
	for i, ms := range out.TimesMS {
		times[i] = time.Duration(ms * float64(time.Millisecond))
	}
	res.Torch, res.TorchVersion = median(times), out.Torch

	for _, b := range nn.Backends() {
		prev, err := nn.SetBackend(b)
		if err != nil {
			return nil, err
		}
		d, err := goStep(ctx, cfg)
		nn.SetBackend(prev)
		if err != nil {
			return nil, err
		}
		res.Go[b] = d
	}
	return res, nil
}

func goStep(ctx context.Context, cfg BenchConfig) (time.Duration, error) {
	rng := rand.New(rand.NewPCG(0, 0))
	net := RewardCNN(cfg.Hidden, rng)
	opt, err := nn.NewAdam(net.Params(), nn.DefaultAdam())
	if err != nil {
		return 0, err
	}
	p := cfg.Pairs
	x := nn.NewTensor(2*p, 3, 64, 64)
	for i := range x.Data {
		x.Data[i] = rng.Float32()
	}
	target := make([]float32, p)
	for i := range target {
		target[i] = float32(i%3) / 2
	}
	dr := nn.NewTensor(2*p, 1)
	var bt nn.BradleyTerry
	var times []time.Duration
	for i := 0; i < cfg.Warmup+cfg.Steps; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		t0 := time.Now()
		net.ZeroGrad()
		r := net.Forward(x)
		bt.Loss(r.Data[:p], r.Data[p:], target, dr.Data[:p], dr.Data[p:])
		net.Backward(dr, false)
		opt.Step()
		if i >= cfg.Warmup {
			times = append(times, time.Since(t0))
		}
	}
	return median(times), nil
}

func median(ts []time.Duration) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Report runs Bench and prints one line per implementation: the median step time and
// its ratio to PyTorch's.
func Report(ctx context.Context, w io.Writer, cfg BenchConfig) (*BenchResult, error) {
	res, err := Bench(ctx, cfg)
	if err != nil {
		return nil, err
	}
	_, err = io.WriteString(w, res.String())
	return res, err
}

// String is the report: medians and ratios, PyTorch first.
func (r *BenchResult) String() string {
	s := fmt.Sprintf("reward training step: RewardCNN(hidden %d), %d pairs (%d frames 3x64x64), median of %d steps, GOMAXPROCS %d\n",
		r.Hidden, r.Pairs, 2*r.Pairs, r.Steps, r.GOMAXPROCS)
	s += fmt.Sprintf("  %-28s %8.1f ms\n", "pytorch "+r.TorchVersion+" (1 thread)", ms(r.Torch))
	for _, b := range nn.Backends() {
		d, ok := r.Go[b]
		if !ok {
			continue
		}
		name := "go nn + " + string(b)
		if b == nn.OpenBLAS {
			name += " (1 thread)"
		}
		s += fmt.Sprintf("  %-28s %8.1f ms   %.2fx pytorch\n", name, ms(d), float64(d)/float64(r.Torch))
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// InferTimes times PyTorch (one thread, no gradients) running every network once at
// batch 1 — one control cycle — on the networks' own parameters, and returns the cycle
// times of steps cycles after warmup untimed ones, and torch's version. inputs[i] is
// network i's per-sample input shape.
func (r Runner) InferTimes(ctx context.Context, nets []*nn.Sequential, inputs [][]int, steps, warmup int) ([]time.Duration, string, error) {
	if len(nets) != len(inputs) {
		return nil, "", fmt.Errorf("torchref.InferTimes: %d networks, %d input shapes", len(nets), len(inputs))
	}
	sp := spec{Mode: "infer", Steps: steps, Warmup: warmup}
	var blob bytes.Buffer
	for k, net := range nets {
		layers, err := Describe(net)
		if err != nil {
			return nil, "", err
		}
		sp.Nets = append(sp.Nets, inferNet{Layers: layers, Input: inputs[k]})
		for _, p := range net.Params() {
			sp.Tensors = append(sp.Tensors, tensorSpec{fmt.Sprintf("n%d.%s", k, p.Name), p.Shape})
			binary.Write(&blob, binary.LittleEndian, p.Value)
		}
	}
	out, _, err := r.run(ctx, sp, blob.Bytes())
	if err != nil {
		return nil, "", err
	}
	if len(out.TimesMS) != steps {
		return nil, "", fmt.Errorf("torchref.InferTimes: the script timed %d cycles, want %d", len(out.TimesMS), steps)
	}
	ts := make([]time.Duration, steps)
	for i, ms := range out.TimesMS {
		ts[i] = time.Duration(ms * float64(time.Millisecond))
	}
	return ts, out.Torch, nil
}
