// Package torchref runs PyTorch (Debian's python3-torch through /usr/bin/python3, one
// thread) as the reference for control/nn: one Bradley-Terry training step of the same
// network on the same weights and batch, for parity tests, and the same step timed, for
// `robodistill bench reward`.
//
// It is a development tool: it starts a Python process and is never imported by the daemon.
package torchref

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"robodistill/control/nn"
)

// DefaultPython is the interpreter that sees Debian's Python packages (a python3 earlier
// on PATH, e.g. from a virtual environment, may not).
const DefaultPython = "/usr/bin/python3"

//go:embed torchstep.py
var script []byte

// Runner runs the reference script.
type Runner struct {
	// Python is the interpreter; empty means DefaultPython.
	Python string
}

func (r Runner) python() string {
	if r.Python == "" {
		return DefaultPython
	}
	return r.Python
}

// ErrNoTorch means the interpreter cannot import torch.
var ErrNoTorch = errors.New("PyTorch is not available")

// Check reports whether the interpreter can import torch, and its version.
func (r Runner) Check(ctx context.Context) (version string, err error) {
	out, err := exec.CommandContext(ctx, r.python(), "-c", "import torch, numpy; print(torch.__version__)").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("torchref: %w: %s cannot import torch and numpy (%v: %s); install Debian's python3-torch (scripts/bootstrap does)",
			ErrNoTorch, r.python(), err, lastLine(out))
	}
	return strings.TrimSpace(string(out)), nil
}

// Layer describes one layer for the script, which builds the same torch.nn module.
type Layer struct {
	Type   string  `json:"type"`
	In     int     `json:"in,omitempty"`
	Out    int     `json:"out,omitempty"`
	K      int     `json:"k,omitempty"`
	Stride int     `json:"stride,omitempty"`
	Pad    int     `json:"pad"`
	F      int     `json:"f,omitempty"`
	Eps    float64 `json:"eps,omitempty"`
}

// Describe translates a network into the script's layer list.
func Describe(net *nn.Sequential) ([]Layer, error) {
	var ls []Layer
	for i, l := range net.Layers {
		switch l := l.(type) {
		case *nn.Conv2d:
			ls = append(ls, Layer{Type: "conv2d", In: l.InC, Out: l.OutC, K: l.K, Stride: l.Stride, Pad: l.Pad})
		case *nn.Linear:
			ls = append(ls, Layer{Type: "linear", In: l.In, Out: l.Out})
		case *nn.ReLU:
			ls = append(ls, Layer{Type: "relu"})
		case *nn.Tanh:
			ls = append(ls, Layer{Type: "tanh"})
		case *nn.Flatten:
			ls = append(ls, Layer{Type: "flatten"})
		case *nn.LayerNorm:
			ls = append(ls, Layer{Type: "layernorm", F: l.F, Eps: float64(l.Eps)})
		default:
			return nil, fmt.Errorf("torchref.Describe: layer %d: %T has no PyTorch counterpart here", i, l)
		}
	}
	return ls, nil
}

// RewardCNN is the reference reward network on 3×64×64 frames:
// conv(3→16, k5, s2) → ReLU → conv(16→32, k3, s2) → ReLU → flatten → linear(6272→hidden)
// → ReLU → linear(hidden→1).
func RewardCNN(hidden int, r *rand.Rand) *nn.Sequential {
	return nn.NewSequential(
		nn.NewConv2d(3, 16, 5, 2, 0, r), nn.NewReLU(),
		nn.NewConv2d(16, 32, 3, 2, 0, r), nn.NewReLU(),
		nn.NewFlatten(),
		nn.NewLinear(32*14*14, hidden, r), nn.NewReLU(),
		nn.NewLinear(hidden, 1, r),
	)
}

// StepInput is one Bradley-Terry training step: X holds 2·P frames, the first frames of
// the P pairs and then their second frames; Target[i] is P(first preferred) for pair i.
type StepInput struct {
	Net       *nn.Sequential
	X         *nn.Tensor
	Target    []float32
	Adam      nn.AdamConfig
	Smoothing float64
}

// StepResult is PyTorch's side of one step.
type StepResult struct {
	Torch   string               // torch.__version__
	Rewards []float32            // [2P]: the forward pass before the update
	Loss    float64              // mean Bradley-Terry loss
	Grads   map[string][]float32 // by parameter name
	Params  map[string][]float32 // after the Adam step
}

type tensorSpec struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
}

type spec struct {
	Mode      string        `json:"mode"`
	Layers    []Layer       `json:"layers"`
	Adam      nn.AdamConfig `json:"adam"`
	Smoothing float64       `json:"smoothing"`
	Pairs     int           `json:"pairs"`
	Tensors   []tensorSpec  `json:"tensors,omitempty"`
	Input     []int         `json:"input,omitempty"`
	Steps     int           `json:"steps,omitempty"`
	Warmup    int           `json:"warmup,omitempty"`
	Nets      []inferNet    `json:"nets,omitempty"`
}

type inferNet struct {
	Layers []Layer `json:"layers"`
	Input  []int   `json:"input"` // one sample's shape
}

type output struct {
	Torch   string       `json:"torch"`
	Threads int          `json:"threads"`
	Loss    float64      `json:"loss"`
	Tensors []tensorSpec `json:"tensors"`
	TimesMS []float64    `json:"times_ms"`
}

// Step runs one training step in PyTorch from the network's current parameters.
func (r Runner) Step(ctx context.Context, in StepInput) (*StepResult, error) {
	layers, err := Describe(in.Net)
	if err != nil {
		return nil, err
	}
	pairs := len(in.Target)
	if len(in.X.Shape) == 0 || in.X.Shape[0] != 2*pairs {
		return nil, fmt.Errorf("torchref.Step: batch %v for %d pairs, want %d frames", in.X.Shape, pairs, 2*pairs)
	}
	sp := spec{Mode: "step", Layers: layers, Adam: in.Adam, Smoothing: in.Smoothing, Pairs: pairs}
	var blob bytes.Buffer
	add := func(name string, shape []int, data []float32) {
		sp.Tensors = append(sp.Tensors, tensorSpec{name, shape})
		binary.Write(&blob, binary.LittleEndian, data)
	}
	for _, p := range in.Net.Params() {
		add("param."+p.Name, p.Shape, p.Value)
	}
	add("x", in.X.Shape, in.X.Data[:in.X.Len()])
	add("target", []int{pairs}, in.Target)

	out, data, err := r.run(ctx, sp, blob.Bytes())
	if err != nil {
		return nil, err
	}
	res := &StepResult{Torch: out.Torch, Loss: out.Loss, Grads: map[string][]float32{}, Params: map[string][]float32{}}
	off := 0
	for _, t := range out.Tensors {
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		if off+n > len(data) {
			return nil, fmt.Errorf("torchref.Step: out.bin has %d values, out.json describes more", len(data))
		}
		v := data[off : off+n]
		off += n
		switch {
		case t.Name == "rewards":
			res.Rewards = v
		case strings.HasPrefix(t.Name, "grad."):
			res.Grads[strings.TrimPrefix(t.Name, "grad.")] = v
		case strings.HasPrefix(t.Name, "param."):
			res.Params[strings.TrimPrefix(t.Name, "param.")] = v
		}
	}
	return res, nil
}

// run writes the script and its inputs into a temporary folder and runs it. When the
// script fails, Check tells a missing torch apart from a failing step.
func (r Runner) run(ctx context.Context, sp spec, in []byte) (*output, []float32, error) {
	dir, err := os.MkdirTemp("", "torchref-")
	if err != nil {
		return nil, nil, fmt.Errorf("torchref: %w", err)
	}
	defer os.RemoveAll(dir)
	js, err := json.Marshal(sp)
	if err != nil {
		return nil, nil, fmt.Errorf("torchref: %w", err)
	}
	for name, b := range map[string][]byte{"torchstep.py": script, "spec.json": js, "in.bin": in} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, nil, fmt.Errorf("torchref: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, r.python(), filepath.Join(dir, "torchstep.py"), dir)
	// One thread for every pool torch may use, before it starts them.
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1")
	if msg, err := cmd.CombinedOutput(); err != nil {
		if _, cerr := r.Check(ctx); cerr != nil {
			return nil, nil, cerr
		}
		return nil, nil, fmt.Errorf("torchref: %s torchstep.py: %w: %s", r.python(), err, lastLine(msg))
	}
	var out output
	js, err = os.ReadFile(filepath.Join(dir, "out.json"))
	if err == nil {
		err = json.Unmarshal(js, &out)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("torchref: reading the script's answer: %w", err)
	}
	var data []float32
	if sp.Mode == "step" {
		raw, err := os.ReadFile(filepath.Join(dir, "out.bin"))
		if err != nil {
			return nil, nil, fmt.Errorf("torchref: %w", err)
		}
		data = make([]float32, len(raw)/4)
		for i := range data {
			data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	}
	return &out, data, nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
