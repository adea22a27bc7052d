package torchref

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"robodistill/control/nn"
)

// requireTorch fails (never skips) when PyTorch is missing: scripts/bootstrap installs it,
// so its absence is a broken setup, not a reason to pass.
func requireTorch(t *testing.T) Runner {
	t.Helper()
	var r Runner
	v, err := r.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("PyTorch %s via %s", v, r.python())
	return r
}

// relErr is max|a−b| / max|b|.
func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		num = math.Max(num, math.Abs(float64(a[i])-float64(b[i])))
		den = math.Max(den, math.Abs(float64(b[i])))
	}
	if den == 0 {
		return num
	}
	return num / den
}

// Parity tolerance: max|go − torch| / max|torch|, per tensor.
const parityTol = 1e-4

func TestStepMatchesPyTorch(t *testing.T) {
	runner := requireTorch(t)
	for _, adam := range []nn.AdamConfig{
		{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-4},
		{LR: 3e-4, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.01, Decoupled: true},
	} {
		name := "adam"
		if adam.Decoupled {
			name = "adamw"
		}
		t.Run(name, func(t *testing.T) {
			const pairs = 8
			rng := rand.New(rand.NewPCG(42, 1))
			net := RewardCNN(64, rng)
			x := nn.NewTensor(2*pairs, 3, 64, 64)
			for i := range x.Data {
				x.Data[i] = 2*rng.Float32() - 1
			}
			target := []float32{1, 0, 0.5, 1, 1, 0, 0.5, 0.75}
			bt := nn.BradleyTerry{Smoothing: 0.05}
			in := StepInput{Net: net, X: x, Target: target, Adam: adam, Smoothing: bt.Smoothing}

			ref, err := runner.Step(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}

			before := map[string][]float32{}
			for _, p := range net.Params() {
				before[p.Name] = append([]float32(nil), p.Value...)
			}
			opt, err := nn.NewAdam(net.Params(), adam)
			if err != nil {
				t.Fatal(err)
			}
			net.ZeroGrad()
			r := net.Forward(x)
			rewards := append([]float32(nil), r.Data...)
			dr := nn.NewTensor(2*pairs, 1)
			loss := bt.Loss(r.Data[:pairs], r.Data[pairs:], target, dr.Data[:pairs], dr.Data[pairs:])
			net.Backward(dr, false)
			opt.Step()

			check := func(what string, got, want []float32, tol float64) {
				t.Helper()
				if len(got) != len(want) {
					t.Fatalf("%s: %d values, PyTorch %d", what, len(got), len(want))
				}
				if e := relErr(got, want); !(e <= tol) {
					t.Errorf("%s: relative error %.3g > %g", what, e, tol)
				} else {
					t.Logf("%-16s %.2g", what, e)
				}
			}
			check("rewards", rewards, ref.Rewards, parityTol)
			if e := math.Abs(loss-ref.Loss) / ref.Loss; e > parityTol {
				t.Errorf("loss %.9g, PyTorch %.9g: relative error %.3g", loss, ref.Loss, e)
			} else {
				t.Logf("%-16s %.2g (%.6f)", "loss", e, loss)
			}
			for _, p := range net.Params() {
				g, ok := ref.Grads[p.Name]
				if !ok {
					t.Fatalf("PyTorch has no gradient for %s", p.Name)
				}
				check("grad "+p.Name, p.Grad, g, parityTol)
			}
			// Adam itself: our optimiser fed PyTorch's gradients must reproduce PyTorch's
			// update w' − w.
			for _, p := range net.Params() {
				w, ok := ref.Params[p.Name]
				if !ok {
					t.Fatalf("PyTorch has no parameter %s", p.Name)
				}
				q := &nn.Param{Name: p.Name, Shape: p.Shape, Value: append([]float32(nil), before[p.Name]...), Grad: ref.Grads[p.Name]}
				o, _ := nn.NewAdam([]*nn.Param{q}, adam)
				o.Step()
				check("adam "+p.Name, sub(q.Value, before[p.Name]), sub(w, before[p.Name]), parityTol)
			}
			// The whole step. Adam's first step moves each weight by about lr·g/(|g|+eps),
			// nearly lr·sign(g), where g includes the L2 term wd·w: a gradient error δ
			// changes the update by about lr·δ/|g|. Where the two gradients differ by less
			// than 1e-3·|g|, the updates must agree to 1e-3·lr; they may differ where g is
			// rounding noise (e.g. the last bias, whose Bradley-Terry gradient cancels to
			// ~1e-9, or where the loss gradient cancels the L2 term).
			for _, p := range net.Params() {
				w, g := ref.Params[p.Name], ref.Grads[p.Name]
				noisy, bad := 0, 0
				for i := range w {
					geff := float64(g[i])
					if !adam.Decoupled {
						geff += adam.WeightDecay * float64(before[p.Name][i])
					}
					if math.Abs(float64(p.Grad[i])-float64(g[i])) > 1e-3*math.Abs(geff) {
						noisy++
						continue
					}
					if math.Abs(float64(p.Value[i])-float64(w[i])) > 1e-3*adam.LR {
						bad++
					}
				}
				if bad > 0 {
					t.Errorf("step %s: %d of %d updates differ by more than 1e-3·lr where the gradients agree", p.Name, bad, len(w))
				}
				t.Logf("%-16s updates agree; %d of %d gradients differ elementwise by more than 1e-3", "step "+p.Name, noisy, len(w))
			}
		})
	}
}

func sub(a, b []float32) []float32 {
	out := make([]float32, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}

func TestDescribe(t *testing.T) {
	net := nn.NewSequential(nn.NewLinear(3, 4, rand.New(rand.NewPCG(1, 1))), nn.NewTanh(), nn.NewLayerNorm(4))
	ls, err := Describe(net)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ls); got != "[{linear 3 4 0 0 0 0 0} {tanh 0 0 0 0 0 0 0} {layernorm 0 0 0 0 0 4 9.999999747378752e-06}]" {
		t.Errorf("Describe = %s", got)
	}
}

func TestBenchSmall(t *testing.T) {
	requireTorch(t)
	res, err := Bench(context.Background(), BenchConfig{Pairs: 2, Hidden: 8, Steps: 3, Warmup: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Torch <= 0 || res.Torch > time.Minute || len(res.Go) != len(nn.Backends()) {
		t.Fatalf("implausible result %+v", res)
	}
	t.Logf("\n%s", res)
}

// Without torch the error says what to install, and is not a skip.
func TestMissingTorch(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "python3")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := Runner{Python: fake}
	net := RewardCNN(4, rand.New(rand.NewPCG(1, 1)))
	_, err := r.Step(context.Background(), StepInput{Net: net, X: nn.NewTensor(2, 3, 64, 64), Target: []float32{1}, Adam: nn.DefaultAdam()})
	if !errors.Is(err, ErrNoTorch) || !strings.Contains(err.Error(), "install Debian's python3-torch") || !strings.Contains(err.Error(), "No module named 'torch'") {
		t.Errorf("Step without torch: %v", err)
	}
	if _, err := Bench(context.Background(), BenchConfig{Pairs: 1, Steps: 1, Runner: r}); !errors.Is(err, ErrNoTorch) {
		t.Errorf("Bench without torch: %v", err)
	}
}
