package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	onnxgo "github.com/owulveryck/onnx-go"
	"github.com/owulveryck/onnx-go/backend/x/gorgonnx"
	"gorgonia.org/tensor"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
	"robodistill/control/onnxio/onnxref"
	"robodistill/control/runtime"
)

// TestExportedModels runs every network the exporter produces through the native backend
// at batch 1 (the golden input) and 3 (random inputs) and compares it with ONNX Runtime,
// the Go forward pass, and onnx-go's Gorgonia backend (batch 1, run twice; a model it
// cannot run must be refused as unsupported).
func TestExportedModels(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	for _, tm := range testModels {
		t.Run(tm.Name, func(t *testing.T) {
			p := save(t, dir, tm)
			m, err := runtime.Load(p, runtime.Options{MaxBatch: 3})
			if err != nil {
				t.Fatal(err)
			}
			v, err := onnxio.Verify(p)
			if err != nil {
				t.Fatal(err)
			}
			if m.SHA256() != v.SHA256 || m.Backend() != runtime.BackendNative || m.MaxBatch() != 3 {
				t.Errorf("sha256 %q backend %q max batch %d", m.SHA256(), m.Backend(), m.MaxBatch())
			}
			man := m.Manifest()
			golden, err := onnxio.GoldenInput(man.Golden.Pattern, m.InputSize())
			if err != nil {
				t.Fatal(err)
			}
			inputs := [][]float32{golden, randomInput(3*m.InputSize(), 3)}
			var runs [][]onnxref.Tensor
			for i, b := range opBatches {
				runs = append(runs, []onnxref.Tensor{{Name: man.Input.Name, Shape: append([]int{b}, man.Input.Shape...), Data: inputs[i]}})
			}
			res, err := onnxref.Tools{}.RunORT(ctx, p, runs...)
			if err != nil {
				t.Fatal(err)
			}
			net := tm.Net(7)
			for i, b := range opBatches {
				y, err := m.Run(inputs[i], b)
				if err != nil {
					t.Fatal(err)
				}
				want := net.Forward(&nn.Tensor{Shape: append([]int{b}, man.Input.Shape...), Data: inputs[i]})
				dGo, dORT := maxAbsDiff(y, want.Data[:want.Len()]), maxAbsDiff(y, res.Runs[i][0].Data)
				t.Logf("batch %d: max |native − Go forward| = %.2g, max |native − ORT %s| = %.2g (max |output| %.2g)", b, dGo, res.Version, dORT, maxAbs(y))
				if dGo > parityTol || dORT > parityTol {
					t.Errorf("batch %d: differences %g (Go), %g (ORT) > %g", b, dGo, dORT, parityTol)
				}
			}

			g, err := runtime.Load(p, runtime.Options{Backend: runtime.BackendGorgonia})
			if tm.OnnxGoError != "" {
				// Gorgonia cannot run this model: Load says so as an unsupported op.
				if !errors.Is(err, runtime.ErrUnsupported) || !strings.Contains(err.Error(), tm.OnnxGoError) {
					t.Fatalf("gorgonia: Load gives %v, want ErrUnsupported with %q", err, tm.OnnxGoError)
				}
				t.Logf("gorgonia refuses the model: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := net.Forward(&nn.Tensor{Shape: append([]int{1}, man.Input.Shape...), Data: golden})
			for run := 1; run <= 2; run++ {
				y, err := g.Run(golden, 1)
				if err != nil {
					t.Fatal(err)
				}
				d := maxAbsDiff(y, want.Data[:want.Len()])
				t.Logf("gorgonia run %d: max |gorgonia − Go forward| = %.2g", run, d)
				if d > parityTol {
					t.Errorf("gorgonia run %d: %g > %g", run, d, parityTol)
				}
			}
		})
	}
}

// linearGraph is x [N, 5] → Gemm(x, W, B, transB) → y [N, 4]: nn.Linear as one Gemm with
// a bias, which onnx-go's Gorgonia backend gets wrong from the second run at batch 1.
func linearGraph() (graph, *nn.Linear) {
	var g graph
	for _, c := range opCases() {
		if c.name == "Gemm_linear" {
			g = c.g
		}
	}
	l := nn.NewLinear(5, 4, rand.New(rand.NewPCG(0, 0)))
	copy(l.Weight.Value, floats(g.inits[0]))
	copy(l.Bias.Value, floats(g.inits[1]))
	return g, l
}

// TestGorgoniaGemmDrift reproduces onnx-go's Gemm bug: at batch 1 its output aliases the
// bias, so the second run adds the product to the first run's output. The native
// backend gives the Go forward pass's numbers on every run.
func TestGorgoniaGemmDrift(t *testing.T) {
	g, lin := linearGraph()
	data := g.model().Marshal()
	x, _ := onnxio.GoldenInput(onnxio.PatternLattice, 5)
	ref := lin.Forward(&nn.Tensor{Shape: []int{1, 5}, Data: x})
	want := slices.Clone(ref.Data)

	backend := gorgonnx.NewGraph()
	model := onnxgo.NewModel(backend)
	if err := model.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	var got [][]float32
	for run := 0; run < 3; run++ {
		if err := model.SetInput(0, tensor.New(tensor.WithShape(1, 5), tensor.WithBacking(slices.Clone(x)))); err != nil {
			t.Fatal(err)
		}
		if err := backend.Run(); err != nil {
			t.Fatal(err)
		}
		outs, err := model.GetOutputTensors()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, slices.Clone(outs[0].Data().([]float32)))
	}
	t.Logf("Go forward %v; gorgonia runs 1, 2, 3: %v", want, got)
	if d := maxAbsDiff(got[0], want); d > parityTol {
		t.Errorf("gorgonia's first run differs from Go by %g", d)
	}
	if d := maxAbsDiff(got[1], want); d < 1e-3 {
		t.Errorf("gorgonia's second run no longer drifts (differs by %g): update docs/runtime.md", d)
	}

	man := g.manifest(want)
	_, err := runtime.LoadBytes(data, man, runtime.Options{Backend: runtime.BackendGorgonia})
	if !errors.Is(err, runtime.ErrSelfCheck) {
		t.Errorf("gorgonia backend: Load gives %v, want the self-check to catch the drift", err)
	} else {
		t.Logf("gorgonia backend refused: %v", err)
	}

	m, err := runtime.LoadBytes(data, man, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for run := 0; run < 5; run++ {
		y, err := m.Run(x, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(y, want); d != 0 {
			t.Errorf("native run %d differs from Go by %g", run+1, d)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	if nn.CurrentBackend() != nn.OpenBLAS {
		t.Skipf("BLAS backend %s allocates in its GEMM; zero allocations hold with OpenBLAS", nn.CurrentBackend())
	}
	dir := t.TempDir()
	for _, tm := range testModels {
		p := save(t, dir, tm)
		m, err := runtime.Load(p, runtime.Options{MaxBatch: 3})
		if err != nil {
			t.Fatal(err)
		}
		c := m.Clone()
		x := randomInput(3*m.InputSize(), 1)
		for _, b := range opBatches {
			for name, mm := range map[string]*runtime.Model{"model": m, "clone": c} {
				if a := testing.AllocsPerRun(20, func() { mm.Run(x[:b*m.InputSize()], b) }); a != 0 {
					t.Errorf("%s %s batch %d: %v allocations per Run, want 0", tm.Name, name, b, a)
				}
			}
		}
		if tm.OnnxGoError != "" {
			t.Logf("%s: native 0 allocations per Run; gorgonia cannot run it", tm.Name)
			continue
		}
		g, err := runtime.Load(p, runtime.Options{Backend: runtime.BackendGorgonia})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: native 0 allocations per Run; gorgonia %v", tm.Name, testing.AllocsPerRun(5, func() { g.Run(x[:m.InputSize()], 1) }))
	}
}

// TestClones runs clones of one model in parallel goroutines (run with -race) and
// compares every output bit for bit with sequential runs. Gorgonia clones share one graph
// behind a mutex and must not panic either.
func TestClones(t *testing.T) {
	dir := t.TempDir()
	for _, tm := range testModels[:2] {
		p := save(t, dir, tm)
		for _, be := range []string{runtime.BackendNative, runtime.BackendGorgonia} {
			m, err := runtime.Load(p, runtime.Options{Backend: be})
			if err != nil {
				t.Fatal(err)
			}
			const inputs, workers = 6, 4
			var xs, want [][]float32
			for i := range inputs {
				xs = append(xs, randomInput(m.InputSize(), uint64(i)))
				y, err := m.Run(xs[i], 1)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, slices.Clone(y))
			}
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				c := m.Clone()
				wg.Add(1)
				go func() {
					defer wg.Done()
					for r := range 3 * inputs {
						i := (r + w) % inputs
						y, err := c.Run(xs[i], 1)
						if err == nil && !slices.Equal(y, want[i]) {
							err = fmt.Errorf("worker %d, input %d: %v, sequentially %v", w, i, y, want[i])
						}
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("%s %s: %v", tm.Name, be, err)
			}
		}
	}
}

// baseGraph is x [N, 4] → MatMul → Add → Relu → y [N, 3], and its golden output.
func baseGraph() (graph, []float32) {
	w, b := param("W", 31, -1, 1, 4, 3), param("b", 32, -1, 1, 3)
	g := graph{in: []int{4}, out: []int{3},
		nodes: []onnxio.Node{
			node("MatMul", "mm", []string{"x", "W"}, "h"),
			node("Add", "bias", []string{"h", "b"}, "z"),
			node("Relu", "act", []string{"z"}, "y"),
		},
		inits: []onnxio.Tensor{w, b}}
	x, _ := onnxio.GoldenInput(onnxio.PatternLattice, 4)
	wv, bv := floats(w), floats(b)
	y := make([]float32, 3)
	for j := range y {
		s := bv[j]
		for i := range x {
			s += x[i] * wv[i*3+j]
		}
		y[j] = max(s, 0)
	}
	return g, y
}

func TestLoadErrors(t *testing.T) {
	conv := func(attrs ...onnxio.Attribute) graph {
		return graph{in: []int{1, 5, 5}, out: []int{2, 3, 3},
			nodes: []onnxio.Node{node("Conv", "c", []string{"x", "W"}, "y", attrs...)},
			inits: []onnxio.Tensor{param("W", 1, -1, 1, 2, 1, 3, 3)}}
	}
	pool := func(attrs ...onnxio.Attribute) graph {
		return graph{in: []int{1, 5, 5}, out: []int{1, 3, 3},
			nodes: []onnxio.Node{node("MaxPool", "p", []string{"x"}, "y", append([]onnxio.Attribute{aInts("kernel_shape", 3, 3)}, attrs...)...)}}
	}
	base, golden := baseGraph()
	with := func(f func(g *graph)) graph {
		g := base
		g.nodes = slices.Clone(base.nodes)
		g.inits = slices.Clone(base.inits)
		f(&g)
		return g
	}
	exported := func() []byte {
		b, _, err := onnxio.Build(policyMLP(1), policyManifest())
		if err != nil {
			t.Fatal(err)
		}
		return b.Marshal()
	}()

	for _, tc := range []struct {
		name string
		g    graph
		data []byte // instead of g
		man  func(m *onnxio.Manifest)
		opts runtime.Options
		is   error
		msg  string
		// contains is part of msg, when the whole is too long to spell out
		contains string
	}{
		{name: "unsupported op", g: with(func(g *graph) { g.nodes[2].OpType = "LeakyRelu" }), is: runtime.ErrUnsupported,
			msg: `LeakyRelu node "act": unsupported: op type LeakyRelu (the native backend runs [Add AveragePool BatchNormalization Clip Concat Constant Conv Div Elu Flatten Gemm GlobalAveragePool Identity LayerNormalization MatMul MaxPool Mul Relu Reshape Sigmoid Slice Softmax Softplus Sqrt Sub Tanh]; Options.Backend "gorgonia" may run it)`},
		{name: "unknown attribute", g: with(func(g *graph) { g.nodes[2].Attributes = []onnxio.Attribute{aInt("alpha", 1)} }), is: runtime.ErrUnsupported,
			msg: `Relu node "act": unsupported: attribute "alpha"`},
		{name: "conv group", g: conv(aInt("group", 2)), is: runtime.ErrUnsupported, msg: `Conv node "c": unsupported: group = 2: only 1`},
		{name: "conv dilations", g: conv(aInts("dilations", 2, 2)), is: runtime.ErrUnsupported, msg: `Conv node "c": unsupported: dilations = [2 2]: only [1 1]`},
		{name: "conv strides", g: conv(aInts("strides", 1, 2)), is: runtime.ErrUnsupported, msg: `Conv node "c": unsupported: strides = [1 2]: only one stride for both axes`},
		{name: "conv pads", g: conv(aInts("pads", 0, 1, 0, 1)), is: runtime.ErrUnsupported, msg: `Conv node "c": unsupported: pads = [0 1 0 1]: only the same padding on every side`},
		{name: "conv auto_pad", g: conv(aStr("auto_pad", "SAME_LOWER"), aInts("strides", 2, 2)), is: runtime.ErrUnsupported,
			msg: `Conv node "c": unsupported: auto_pad SAME_LOWER with stride 2 and kernel 3: pads would be uneven; give explicit pads`},
		{name: "conv kernel", g: func() graph {
			g := conv()
			g.inits = []onnxio.Tensor{param("W", 1, -1, 1, 2, 1, 3, 2)}
			return g
		}(), is: runtime.ErrUnsupported, msg: `Conv node "c": unsupported: kernel 3x2: only square kernels`},
		{name: "conv weight not constant", g: graph{in: []int{1, 3, 3}, out: []int{1, 1, 1},
			nodes: []onnxio.Node{node("Conv", "c", []string{"x", "x"}, "y")}}, is: runtime.ErrUnsupported,
			msg: `Conv node "c": unsupported: weight "x" must be a float32 initializer or Constant`},
		{name: "pool ceil_mode", g: pool(aInt("ceil_mode", 1)), is: runtime.ErrUnsupported, msg: `MaxPool node "p": unsupported: ceil_mode = 1: only 0`},
		{name: "pool dilations", g: pool(aInts("dilations", 2, 2)), is: runtime.ErrUnsupported, msg: `MaxPool node "p": unsupported: dilations = [2 2]: only [1 1]`},
		{name: "batchnorm training", g: graph{opset: 15, in: []int{2}, out: []int{2},
			nodes: []onnxio.Node{node("BatchNormalization", "bn", []string{"x", "s", "s", "s", "s"}, "y", aInt("training_mode", 1))},
			inits: []onnxio.Tensor{param("s", 1, 1, 2, 2)}}, is: runtime.ErrUnsupported, msg: `BatchNormalization node "bn": unsupported: training_mode = 1: only inference (0)`},
		{name: "second output used", g: graph{in: []int{1, 4, 4}, out: []int{1, 2, 2},
			nodes: []onnxio.Node{
				{OpType: "MaxPool", Name: "p", Inputs: []string{"x"}, Outputs: []string{"v", "idx"}, Attributes: []onnxio.Attribute{aInts("kernel_shape", 2, 2), aInts("strides", 2, 2)}},
				node("Add", "a", []string{"v", "idx"}, "y"),
			}}, is: runtime.ErrUnsupported, msg: `MaxPool node "p": unsupported: output 1 ("idx") is used; only the first output is computed`},
		{name: "reshape shape computed", g: graph{in: []int{2}, out: []int{2},
			nodes: []onnxio.Node{node("Reshape", "r", []string{"x", "x"}, "y")}}, is: runtime.ErrUnsupported,
			msg: `Reshape node "r": unsupported: shape "x" must be an int64 or int32 initializer or Constant`},
		{name: "softmax axis", g: graph{in: []int{2, 3}, out: []int{2, 3},
			nodes: []onnxio.Node{node("Softmax", "sm", []string{"x"}, "y", aInt("axis", 3))}}, is: runtime.ErrShape,
			msg: `Softmax node "sm": shape mismatch: axis 3 for input [1 2 3]`},
		{name: "integer into Add", g: graph{in: []int{2}, out: []int{2},
			nodes: []onnxio.Node{node("Add", "a", []string{"x", "i"}, "y")}, inits: []onnxio.Tensor{i64("i", 1, 2)}}, is: runtime.ErrUnsupported,
			msg: `Add node "a": unsupported: input "i" is an integer tensor; only float32 values flow between nodes`},
		{name: "clip bound computed", g: graph{in: []int{2}, out: []int{2},
			nodes: []onnxio.Node{node("Clip", "c", []string{"x", "x"}, "y")}}, is: runtime.ErrUnsupported,
			msg: `Clip node "c": unsupported: min "x" must be a float32 initializer or Constant`},
		{name: "inner dimensions", g: with(func(g *graph) { g.inits[0] = param("W", 1, -1, 1, 5, 3) }), is: runtime.ErrShape,
			msg: `MatMul node "mm": shape mismatch: [1 4]·[5 3]: inner dimensions 4 and 5 differ`},
		{name: "computed output differs from manifest", g: with(func(g *graph) {
			g.inits[0], g.inits[1] = param("W", 1, -1, 1, 4, 2), param("b", 1, -1, 1, 2)
		}), is: runtime.ErrShape, msg: `shape mismatch: the graph's output is [1 2], the manifest says [1 3]`},
		{name: "not batch-polymorphic", g: graph{in: []int{4}, out: []int{4},
			nodes: []onnxio.Node{node("Reshape", "r", []string{"x", "s"}, "y")}, inits: []onnxio.Tensor{i64("s", 1, -1)}},
			opts: runtime.Options{MaxBatch: 2}, is: runtime.ErrShape, msg: `shape mismatch: the graph's output is [1 8] at batch 2, the manifest says [2 4]`},
		{name: "manifest input name", g: base, man: func(m *onnxio.Manifest) { m.Input.Name = "obs" }, is: onnxio.ErrMismatch,
			msg: `mismatch: the graph maps "x" to "y", the manifest "obs" to "y"`},
		{name: "fixed batch size", g: func() graph { return base }(), man: func(m *onnxio.Manifest) { m.Output.Shape = []int{4}; m.Golden.Output = []float32{0, 0, 0, 0} }, is: onnxio.ErrMismatch,
			msg: `mismatch: the graph's output "y" is not float32 [batch [4]] with a symbolic batch dimension, as the manifest says`},
		{name: "golden output", g: base, man: func(m *onnxio.Manifest) { m.Golden.Output[1] += 0.01 }, is: runtime.ErrSelfCheck,
			msg: `self-check failed: onnxio: golden check: outputs differ by 0.009999999776482582 (tolerance 0.0001)`},
		{name: "NaN at the self-check", g: graph{in: []int{4}, out: []int{4}, nodes: []onnxio.Node{node("Sqrt", "sqrt", []string{"x"}, "y")}},
			is: runtime.ErrNonFinite, msg: `self-check failed: golden input: runtime: output "y"[0] is NaN: non-finite output`},
		{name: "cycle", g: graph{in: []int{2}, out: []int{2},
			nodes: []onnxio.Node{node("Relu", "a", []string{"b"}, "a"), node("Relu", "b", []string{"a"}, "b"), node("Relu", "out", []string{"a"}, "y")}},
			is: onnxio.ErrFormat, msg: `malformed: the graph has a cycle through node "a"`},
		{name: "undefined input", g: graph{in: []int{2}, out: []int{2}, nodes: []onnxio.Node{node("Relu", "r", []string{"nothing"}, "y")}},
			is: onnxio.ErrFormat, msg: `Relu node "r": malformed: input "nothing" is neither the graph input, an initializer nor a node's output`},
		{name: "two producers", g: graph{in: []int{2}, out: []int{2}, nodes: []onnxio.Node{node("Relu", "r", []string{"x"}, "y"), node("Tanh", "t", []string{"x"}, "y")}},
			is: onnxio.ErrFormat, msg: `malformed: value "y" is computed by two nodes`},
		{name: "no nodes", g: graph{in: []int{2}, out: []int{2}}, is: onnxio.ErrFormat, msg: `onnx-go decoder: malformed: Graph is empty`},
		{name: "garbage", data: []byte("not an onnx model"), g: base, is: onnxio.ErrFormat,
			msg: `onnxio.Decode: malformed: ModelProto field 13: cannot parse reserved wire type`},
		{name: "truncated", data: exported[:len(exported)/2], g: base, is: onnxio.ErrFormat,
			msg: `onnxio.Decode: malformed: ModelProto field 7: unexpected EOF`},
		{name: "opset", g: func() graph { g := base; g.opset = 6; return g }(), is: runtime.ErrUnsupported,
			msg: `unsupported: opset 6 (the native backend reads opsets 7 to 22)`},
		{name: "domain", g: with(func(g *graph) { g.nodes[2].Domain = "com.microsoft" }), is: runtime.ErrUnsupported,
			msg: `Relu node "act": unsupported: domain "com.microsoft" (only the default ai.onnx)`},
		{name: "graph output is a second output", g: graph{in: []int{1, 4, 4}, out: []int{1, 2, 2},
			nodes: []onnxio.Node{{OpType: "MaxPool", Name: "p", Inputs: []string{"x"}, Outputs: []string{"v", "y"},
				Attributes: []onnxio.Attribute{aInts("kernel_shape", 2, 2), aInts("strides", 2, 2)}}}},
			is: runtime.ErrUnsupported, msg: `MaxPool node "p": unsupported: the graph output "y" is not the node's first output; only first outputs are computed`},
		// onnx-go's decoder refuses these itself (docs/runtime.md): a graph attribute, and an
		// initializer of a type it cannot convert, even one no node reads.
		{name: "onnx-go: graph attribute", g: with(func(g *graph) {
			g.nodes[2].Attributes = []onnxio.Attribute{{Name: "body", Type: 5}}
		}), is: runtime.ErrUnsupported, contains: `onnx-go decoder: unsupported: onnx: operator . Implementation error for attribute body`},
		{name: "onnx-go: float16 initializer", g: with(func(g *graph) {
			g.inits = append(g.inits, onnxio.Tensor{Name: "h", Dims: []int64{1}, DataType: 10, RawData: []byte{0, 60}})
		}), is: runtime.ErrUnsupported, contains: `onnx-go decoder: unsupported: type: FLOAT16: Not Yet Implemented`},
		{name: "max batch", g: base, opts: runtime.Options{MaxBatch: -1}, msg: `options: max_batch: must be 1 to 4096, got -1`},
		{name: "backend", g: base, opts: runtime.Options{Backend: "tflite"}, msg: `options: backend: unknown value "tflite" (want robodistill or gorgonia)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data
			if data == nil {
				data = tc.g.model().Marshal()
			}
			out := make([]float32, numel(tc.g.out))
			if numel(tc.g.out) == 3 {
				copy(out, golden)
			}
			man := tc.g.manifest(out)
			if tc.man != nil {
				tc.man(man)
			}
			_, err := runtime.LoadBytes(data, man, tc.opts)
			if err == nil {
				t.Fatal("loaded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v\ndoes not wrap %v", err, tc.is)
			}
			if tc.contains != "" && !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error\n%s\ndoes not contain\n%s", err, tc.contains)
			}
			if want := "runtime.LoadBytes: " + tc.msg; tc.msg != "" && err.Error() != want {
				t.Errorf("error\n%s\nwant\n%s", err, want)
			}
			var oe *runtime.OpError
			if errors.Is(err, runtime.ErrUnsupported) && strings.Contains(tc.msg, " node ") && (!errors.As(err, &oe) || oe.Op == "" || oe.Node == "") {
				t.Errorf("%v is not an *OpError naming the op and the node", err)
			}
		})
	}
}

// TestLoadFileErrors covers what onnxio.Verify refuses before anything is compiled.
func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	p := save(t, dir, testModels[1])
	if _, err := runtime.Load(p, runtime.Options{}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sidecar, err := os.ReadFile(onnxio.SidecarPath(p))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		model []byte
		side  []byte
		is    error
	}{
		{"flipped byte", func() []byte { b := slices.Clone(data); b[len(b)/2] ^= 1; return b }(), sidecar, onnxio.ErrHash},
		{"sidecar manifest", data, bytes.Replace(sidecar, []byte(`"reach-v2"`), []byte(`"push-v2"`), 1), onnxio.ErrMismatch},
		{"sidecar missing", data, nil, fs.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := filepath.Join(t.TempDir(), "m.onnx")
			if err := os.WriteFile(q, tc.model, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.side != nil {
				if err := os.WriteFile(onnxio.SidecarPath(q), tc.side, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := runtime.Load(q, runtime.Options{})
			if !errors.Is(err, tc.is) {
				t.Errorf("error %v, want %v", err, tc.is)
			}
			t.Log(err)
		})
	}
}

func TestRunErrors(t *testing.T) {
	g := graph{in: []int{4}, out: []int{4}, nodes: []onnxio.Node{node("Div", "inv", []string{"one", "x"}, "y")},
		inits: []onnxio.Tensor{scalar("one", 1)}}
	x, _ := onnxio.GoldenInput(onnxio.PatternLattice, 4) // no zeros
	golden := make([]float32, 4)
	for i, v := range x {
		golden[i] = 1 / v
	}
	m, err := runtime.LoadBytes(g.model().Marshal(), g.manifest(golden), runtime.Options{MaxBatch: 2})
	if err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	for _, tc := range []struct {
		name  string
		in    []float32
		batch int
		is    error
		msg   string
	}{
		{"batch 0", nil, 0, runtime.ErrInput, "runtime: bad input: batch 0, the model was loaded for 1 to 2 (Options.MaxBatch)"},
		{"batch above MaxBatch", make([]float32, 12), 3, runtime.ErrInput, "runtime: bad input: batch 3, the model was loaded for 1 to 2 (Options.MaxBatch)"},
		{"short input", make([]float32, 7), 2, runtime.ErrInput, "runtime: bad input: 7 input values, batch 2 of [4] needs 8"},
		{"division by zero", []float32{1, 1, 1, 1, 1, 0, 1, 1}, 2, runtime.ErrNonFinite, `runtime: output "y"[5] is +Inf: non-finite output`},
		{"NaN input", []float32{1, nan, 1, 1}, 1, runtime.ErrNonFinite, `runtime: output "y"[1] is NaN: non-finite output`},
	} {
		y, err := m.Run(tc.in, tc.batch)
		if y != nil || !errors.Is(err, tc.is) || err.Error() != tc.msg {
			t.Errorf("%s: %v, %v; want error %q", tc.name, y, err, tc.msg)
		}
	}
	// The model still works after errors.
	if y, err := m.Run(x, 1); err != nil || !slices.Equal(y, golden) {
		t.Errorf("after the errors: %v, %v; want %v", y, err, golden)
	}
}

// BenchmarkRun is one sample through each exported model at batch 1 (the robot's case).
func BenchmarkRun(b *testing.B) {
	dir := b.TempDir()
	for _, tm := range testModels {
		p := save(b, dir, tm)
		for _, be := range []string{runtime.BackendNative, runtime.BackendGorgonia} {
			if be == runtime.BackendGorgonia && tm.OnnxGoError != "" {
				continue // Gorgonia cannot run it (TestExportedModels)
			}
			b.Run(tm.Name+"/"+be, func(b *testing.B) {
				m, err := runtime.Load(p, runtime.Options{Backend: be})
				if err != nil {
					b.Fatal(err)
				}
				x := randomInput(m.InputSize(), 1)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := m.Run(x, 1); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
