package runtime_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
	"robodistill/control/onnxio/onnxref"
	"robodistill/control/runtime"
)

// parityTol bounds |native − ONNX Runtime| and |native − Go forward pass|.
const parityTol = 1e-5

// opCase is a hand-built graph exercising one op, with the nn forward pass that computes
// the same thing where nn has the layer.
type opCase struct {
	name  string
	g     graph
	goRef func(x []float32, batch int) []float32
	// gorgoniaPanics: onnx-go's Gorgonia backend panics in a goroutine of its own on
	// this graph, which kills the test binary, so the comparison is skipped.
	gorgoniaPanics bool
}

func opCases() []opCase {
	// Linear's weight and bias, shared by the Gemm case and its nn reference.
	lw, lb := param("W", 1, -0.5, 0.5, 4, 5), param("B", 2, -0.5, 0.5, 4)
	cw, cb := param("W", 3, -0.3, 0.3, 4, 3, 3, 3), param("B", 4, -0.3, 0.3, 4)
	sw := param("W", 5, -0.5, 0.5, 2, 1, 3, 3)
	lnW, lnB := param("scale", 6, 0.5, 1.5, 8), param("bias", 7, -0.5, 0.5, 8)
	four := scalar("four", 4)
	unary := func(op string, attrs ...onnxio.Attribute) opCase {
		return opCase{name: op, g: graph{in: []int{10}, out: []int{10},
			nodes: []onnxio.Node{node("Mul", "scale", []string{"x", "four"}, "x4"), node(op, "f", []string{"x4"}, "y", attrs...)},
			inits: []onnxio.Tensor{four}}}
	}
	timesFour := func(x []float32) []float32 {
		v := slices.Clone(x)
		for i := range v {
			v[i] *= 4
		}
		return v
	}
	relu, tanh := unary("Relu"), unary("Tanh")
	relu.goRef = func(x []float32, b int) []float32 {
		return nn.NewReLU().Forward(&nn.Tensor{Shape: []int{b, 10}, Data: timesFour(x)}).Data
	}
	tanh.goRef = func(x []float32, b int) []float32 {
		return nn.NewTanh().Forward(&nn.Tensor{Shape: []int{b, 10}, Data: timesFour(x)}).Data
	}
	pool := func(op string, in, out []int, attrs ...onnxio.Attribute) graph {
		return graph{in: in, out: out, nodes: []onnxio.Node{node(op, "pool", []string{"x"}, "y", attrs...)}}
	}
	return []opCase{
		{name: "Gemm_linear", g: graph{in: []int{5}, out: []int{4},
			nodes: []onnxio.Node{node("Gemm", "fc", []string{"x", "W", "B"}, "y", aInt("transB", 1))},
			inits: []onnxio.Tensor{lw, lb}},
			goRef: func(x []float32, b int) []float32 {
				l := nn.NewLinear(5, 4, rand.New(rand.NewPCG(0, 0)))
				copy(l.Weight.Value, floats(lw))
				copy(l.Bias.Value, floats(lb))
				return l.Forward(&nn.Tensor{Shape: []int{b, 5}, Data: x}).Data
			}},
		{name: "Gemm_alpha_beta", g: graph{in: []int{5}, out: []int{4},
			nodes: []onnxio.Node{node("Gemm", "fc", []string{"x", "W", "B"}, "y", aInt("transB", 1), aFloat("alpha", 0.7), aFloat("beta", 1.3))},
			inits: []onnxio.Tensor{lw, lb}}},
		{name: "Gemm_transA_scalarC", g: graph{in: []int{5}, out: []int{4},
			nodes: []onnxio.Node{
				node("Gemm", "left", []string{"Wc", "x"}, "t", aInt("transB", 1)), // [3, N]
				node("Gemm", "right", []string{"t", "W2", "C"}, "y", aInt("transA", 1), aFloat("beta", 0.5)),
			},
			inits: []onnxio.Tensor{param("Wc", 8, -0.5, 0.5, 3, 5), param("W2", 9, -0.5, 0.5, 3, 4), f32("C", []int64{1}, []float32{0.25})}}},
		{name: "Gemm_rowC", g: graph{in: []int{5}, out: []int{4},
			nodes: []onnxio.Node{node("Gemm", "fc", []string{"x", "W", "C"}, "y")},
			inits: []onnxio.Tensor{param("W", 10, -0.5, 0.5, 5, 4), param("C", 11, -1, 1, 1, 4)}}},
		{name: "MatMul", g: graph{in: []int{2, 5}, out: []int{2, 3},
			nodes: []onnxio.Node{node("MatMul", "mm", []string{"x", "W"}, "y")},
			inits: []onnxio.Tensor{param("W", 12, -0.5, 0.5, 5, 3)}}},
		{name: "MatMul_batched", g: graph{in: []int{3, 2, 5}, out: []int{3, 2, 4},
			nodes: []onnxio.Node{node("MatMul", "mm", []string{"x", "W"}, "y")}, // [N 3 2 5]·[3 5 4]
			inits: []onnxio.Tensor{param("W", 13, -0.5, 0.5, 3, 5, 4)}}},
		{name: "Add", g: graph{in: []int{3, 4}, out: []int{3, 4},
			nodes: []onnxio.Node{
				node("Add", "row", []string{"x", "b"}, "a1"),
				node("Add", "col", []string{"a1", "c"}, "a2"),
				node("Add", "scalar", []string{"a2", "s"}, "a3"),
				node("Add", "same", []string{"a3", "x"}, "y"),
			},
			inits: []onnxio.Tensor{param("b", 14, -1, 1, 4), param("c", 15, -1, 1, 3, 1), scalar("s", 0.5)}}},
		{name: "Sub", g: graph{in: []int{3, 4}, out: []int{3, 4},
			nodes: []onnxio.Node{
				node("Sub", "col", []string{"x", "c"}, "s1"),
				node("Sub", "left_scalar", []string{"one", "s1"}, "s2"),
				node("Sub", "same", []string{"s2", "x"}, "y"),
			},
			inits: []onnxio.Tensor{param("c", 16, -1, 1, 3, 1), f32("one", []int64{1}, []float32{1})}}},
		{name: "Mul", g: graph{in: []int{3, 4}, out: []int{3, 4},
			nodes: []onnxio.Node{
				node("Mul", "square", []string{"x", "x"}, "m1"), // the same value twice
				node("Mul", "row", []string{"m1", "b"}, "y"),
			},
			inits: []onnxio.Tensor{param("b", 17, -2, 2, 4)}}},
		{name: "Div", g: graph{in: []int{3, 4}, out: []int{3, 4},
			nodes: []onnxio.Node{
				node("Div", "same_shape_const", []string{"x", "d"}, "d1"),
				node("Div", "scalar", []string{"d1", "two"}, "y"),
			},
			inits: []onnxio.Tensor{param("d", 18, 0.5, 1.5, 3, 4), scalar("two", 2)}}},
		{name: "Conv", g: graph{in: []int{3, 9, 9}, out: []int{4, 5, 5},
			nodes: []onnxio.Node{node("Conv", "conv", []string{"x", "W", "B"}, "y",
				aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1), aInts("dilations", 1, 1), aInt("group", 1))},
			inits: []onnxio.Tensor{cw, cb}},
			goRef: func(x []float32, b int) []float32 {
				c := nn.NewConv2d(3, 4, 3, 2, 1, rand.New(rand.NewPCG(0, 0)))
				copy(c.Weight.Value, floats(cw))
				copy(c.Bias.Value, floats(cb))
				return c.Forward(&nn.Tensor{Shape: []int{b, 3, 9, 9}, Data: x}).Data
			}},
		{name: "Conv_nobias_same", g: graph{in: []int{1, 6, 6}, out: []int{2, 6, 6},
			nodes: []onnxio.Node{node("Conv", "conv", []string{"x", "W"}, "y", aStr("auto_pad", "SAME_UPPER"))},
			inits: []onnxio.Tensor{sw}},
			goRef: func(x []float32, b int) []float32 {
				c := nn.NewConv2d(1, 2, 3, 1, 1, rand.New(rand.NewPCG(0, 0)))
				copy(c.Weight.Value, floats(sw))
				clear(c.Bias.Value)
				return c.Forward(&nn.Tensor{Shape: []int{b, 1, 6, 6}, Data: x}).Data
			}},
		relu, tanh, unary("Sigmoid"), unary("Softplus"), unary("Elu", aFloat("alpha", 0.5)),
		{name: "Sqrt", g: graph{in: []int{10}, out: []int{10},
			nodes: []onnxio.Node{
				node("Mul", "square", []string{"x", "x"}, "sq"),
				node("Add", "shift", []string{"sq", "eps"}, "pos"),
				node("Sqrt", "sqrt", []string{"pos"}, "y"),
			},
			inits: []onnxio.Tensor{scalar("eps", 0.1)}}},
		{name: "Clip", g: graph{in: []int{10}, out: []int{10},
			nodes: []onnxio.Node{
				node("Mul", "scale", []string{"x", "four"}, "x4"),
				node("Clip", "both", []string{"x4", "lo", "hi"}, "c1"),
				node("Clip", "max_only", []string{"c1", "", "hi2"}, "y"),
			},
			inits: []onnxio.Tensor{four, scalar("lo", -0.5), scalar("hi", 2), scalar("hi2", 1.5)}}},
		{name: "Clip_opset10_attributes", g: graph{opset: 10, in: []int{10}, out: []int{10},
			nodes: []onnxio.Node{node("Clip", "clip", []string{"x"}, "y", aFloat("min", -0.3), aFloat("max", 0.4))}}},
		{name: "Flatten", g: graph{in: []int{3, 2, 4}, out: []int{24},
			nodes: []onnxio.Node{node("Flatten", "flat", []string{"x"}, "f", aInt("axis", -3)), node("Relu", "act", []string{"f"}, "y")}}},
		{name: "Reshape", g: graph{in: []int{24}, out: []int{6, 4},
			nodes: []onnxio.Node{
				node("Reshape", "keep_infer", []string{"x", "s1"}, "r1"), // [N, 2, 12]
				node("Tanh", "act", []string{"r1"}, "t"),
				node("Reshape", "infer_batch", []string{"t", "s2"}, "y"), // [N, 6, 4]
			},
			inits: []onnxio.Tensor{i64("s1", 0, 2, -1), i64("s2", -1, 6, 4)}}},
		{name: "Concat", g: graph{in: []int{2, 3}, out: []int{2, 9},
			nodes: []onnxio.Node{node("Tanh", "t", []string{"x"}, "t"), node("Concat", "cat", []string{"x", "t", "x"}, "y", aInt("axis", -1))}},
			gorgoniaPanics: true},
		{name: "Concat_axis1", g: graph{in: []int{2, 3}, out: []int{4, 3},
			nodes: []onnxio.Node{node("Relu", "r", []string{"x"}, "r"), node("Concat", "cat", []string{"x", "r"}, "y", aInt("axis", 1))}}},
		{name: "Slice", g: graph{in: []int{4, 6}, out: []int{2, 3},
			nodes: []onnxio.Node{node("Slice", "slice", []string{"x", "starts", "ends", "axes", "steps"}, "y")},
			inits: []onnxio.Tensor{i64("starts", 1, -5), i64("ends", 3, 100), i64("axes", 1, 2), i64("steps", 1, 2)}}},
		{name: "Slice_reverse_int32", g: graph{in: []int{4, 6}, out: []int{4, 3},
			nodes: []onnxio.Node{node("Slice", "slice", []string{"x", "starts", "ends", "axes", "steps"}, "y")},
			inits: []onnxio.Tensor{i32("starts", -1), i32("ends", math.MinInt32), i32("axes", -1), i32("steps", -2)}}},
		{name: "Slice_opset9_attributes", g: graph{opset: 9, in: []int{4, 6}, out: []int{2, 6},
			nodes: []onnxio.Node{node("Slice", "slice", []string{"x"}, "y", aInts("starts", 0), aInts("ends", 2), aInts("axes", 1))}}},
		{name: "MaxPool", g: pool("MaxPool", []int{3, 7, 7}, []int{3, 4, 4},
			aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1))},
		{name: "MaxPool_rect", g: pool("MaxPool", []int{1, 6, 7}, []int{1, 6, 3},
			aInts("kernel_shape", 2, 3), aInts("strides", 1, 2), aInts("pads", 0, 1, 1, 0))},
		{name: "AveragePool", g: pool("AveragePool", []int{3, 7, 7}, []int{3, 4, 4},
			aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1))},
		{name: "AveragePool_include_pad", g: pool("AveragePool", []int{3, 7, 7}, []int{3, 4, 4},
			aInts("kernel_shape", 3, 3), aInts("strides", 2, 2), aInts("pads", 1, 1, 1, 1), aInt("count_include_pad", 1))},
		{name: "AveragePool_same_upper", g: pool("AveragePool", []int{3, 7, 7}, []int{3, 4, 4},
			aInts("kernel_shape", 2, 2), aInts("strides", 2, 2), aStr("auto_pad", "SAME_UPPER"))},
		{name: "GlobalAveragePool", g: graph{in: []int{3, 5, 4}, out: []int{3, 1, 1},
			nodes: []onnxio.Node{node("GlobalAveragePool", "gap", []string{"x"}, "y")}}},
		{name: "BatchNormalization", g: graph{in: []int{3, 4, 4}, out: []int{3, 4, 4},
			nodes: []onnxio.Node{node("BatchNormalization", "bn", []string{"x", "scale", "B", "mean", "var"}, "y", aFloat("epsilon", 1e-3))},
			inits: []onnxio.Tensor{param("scale", 19, 0.5, 1.5, 3), param("B", 20, -0.5, 0.5, 3), param("mean", 21, -0.2, 0.2, 3), param("var", 22, 0.1, 2, 3)}}},
		{name: "LayerNormalization", g: graph{opset: 17, in: []int{3, 8}, out: []int{3, 8},
			nodes: []onnxio.Node{node("LayerNormalization", "ln", []string{"x", "scale", "bias"}, "y")},
			inits: []onnxio.Tensor{lnW, lnB}},
			goRef: func(x []float32, b int) []float32 {
				l := nn.NewLayerNorm(8)
				copy(l.Weight.Value, floats(lnW))
				copy(l.Bias.Value, floats(lnB))
				return l.Forward(&nn.Tensor{Shape: []int{b * 3, 8}, Data: x}).Data
			}},
		{name: "LayerNormalization_axis1_nobias", g: graph{opset: 17, in: []int{3, 8}, out: []int{3, 8},
			nodes: []onnxio.Node{node("LayerNormalization", "ln", []string{"x", "scale"}, "y", aInt("axis", 1), aFloat("epsilon", 1e-3))},
			inits: []onnxio.Tensor{param("scale", 23, 0.5, 1.5, 3, 8)}}},
		{name: "Softmax", g: graph{in: []int{3, 5}, out: []int{3, 5}, // axis −1 (the default)
			nodes: []onnxio.Node{node("Mul", "scale", []string{"x", "four"}, "x4"), node("Softmax", "sm", []string{"x4"}, "y")},
			inits: []onnxio.Tensor{four}},
			goRef: func(x []float32, b int) []float32 {
				y := timesFour(x)
				for r := 0; r < len(y); r += 5 {
					nn.Softmax(y[r:r+5], y[r:r+5], 5, 1)
				}
				return y
			}},
		{name: "Softmax_axis1", g: graph{in: []int{3, 4, 5}, out: []int{3, 4, 5}, // a middle axis: strided
			nodes: []onnxio.Node{node("Mul", "scale", []string{"x", "four"}, "x4"), node("Softmax", "sm", []string{"x4"}, "y", aInt("axis", 1))},
			inits: []onnxio.Tensor{four}}},
		{name: "Softmax_opset11", g: graph{opset: 11, in: []int{3, 4, 5}, out: []int{3, 4, 5}, // axis 1: over 3·4·5 values
			nodes: []onnxio.Node{node("Mul", "scale", []string{"x", "four"}, "x4"), node("Softmax", "sm", []string{"x4"}, "y")},
			inits: []onnxio.Tensor{four}}},
		{name: "SpatialSoftmax", g: graph{in: []int{3, 5, 6}, out: []int{6}, // the exporter's graph of nn.SpatialSoftmax
			nodes: []onnxio.Node{
				node("Mul", "scale", []string{"x", "four"}, "x4"),
				node("Reshape", "rows", []string{"x4", "shape"}, "r"),
				node("Softmax", "sm", []string{"r"}, "p", aInt("axis", 2)),
				node("MatMul", "expect", []string{"p", "grid"}, "xy"),
				node("Flatten", "flat", []string{"xy"}, "y", aInt("axis", 1)),
			},
			inits: []onnxio.Tensor{four, i64("shape", 0, 3, 30), f32("grid", []int64{30, 2}, nn.SpatialGrid(5, 6))}},
			goRef: func(x []float32, b int) []float32 {
				return nn.NewSpatialSoftmax().Forward(&nn.Tensor{Shape: []int{b, 3, 5, 6}, Data: timesFour(x)}).Data
			}},
		{name: "Identity", g: graph{in: []int{5}, out: []int{5},
			nodes: []onnxio.Node{node("Identity", "id", []string{"x"}, "y")}}}, // the output aliases the input
		{name: "Constant", g: graph{in: []int{2, 2}, out: []int{4},
			nodes: []onnxio.Node{
				{OpType: "Constant", Name: "shape", Outputs: []string{"s"}, Attributes: []onnxio.Attribute{aTensor("value", i64("", 0, -1))}},
				{OpType: "Constant", Name: "bias", Outputs: []string{"c"}, Attributes: []onnxio.Attribute{aTensor("value", param("", 24, -1, 1, 4))}},
				node("Reshape", "flat", []string{"x", "s"}, "r"),
				node("Add", "add", []string{"r", "c"}, "y"),
			}}},
	}
}

// opRun is a case exported, run by ONNX Runtime and loaded by the runtime.
type opRun struct {
	path   string
	data   []byte
	man    *onnxio.Manifest
	inputs [][]float32 // batch 1 (the golden input) and batch 3
	ort    [][]float32
}

var opBatches = []int{1, 3}

// runORT writes g to dir and runs it in ONNX Runtime at batch 1 (golden input) and 3.
func runORT(t *testing.T, dir, name string, g graph) *opRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := &opRun{path: filepath.Join(dir, name+".onnx"), data: g.model().Marshal()}
	if err := os.WriteFile(r.path, r.data, 0o644); err != nil {
		t.Fatal(err)
	}
	x1, err := onnxio.GoldenInput(onnxio.PatternLattice, numel(g.in))
	if err != nil {
		t.Fatal(err)
	}
	r.inputs = [][]float32{x1, randomInput(3*numel(g.in), uint64(len(name)))}
	var runs [][]onnxref.Tensor
	for i, b := range opBatches {
		runs = append(runs, []onnxref.Tensor{{Name: "x", Shape: append([]int{b}, g.in...), Data: r.inputs[i]}})
	}
	res, err := onnxref.Tools{}.RunORT(ctx, r.path, runs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range opBatches {
		out := res.Runs[i][0]
		if want := append([]int{b}, g.out...); !slices.Equal(out.Shape, want) {
			t.Fatalf("ONNX Runtime output shape %v, the test expects %v", out.Shape, want)
		}
		r.ort = append(r.ort, out.Data)
	}
	r.man = g.manifest(r.ort[0])
	return r
}

// TestOps runs a hand-built graph per op (and per attribute form) in ONNX Runtime and
// the native backend at batch 1 and 3, and where nn has the layer in the Go forward pass.
func TestOps(t *testing.T) {
	dir := t.TempDir()
	covered := map[string]bool{}
	var table []string
	defer func() {
		t.Logf("max |native − ORT| at batch 1, 3; max |native − Go forward|:\n%s", strings.Join(table, "\n"))
	}()
	for _, tc := range opCases() {
		t.Run(tc.name, func(t *testing.T) {
			r := runORT(t, dir, tc.name, tc.g)
			m, err := runtime.LoadBytes(r.data, r.man, runtime.Options{MaxBatch: 3})
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range m.Ops() {
				covered[op] = true
			}
			row := fmt.Sprintf("%-32s", tc.name)
			defer func() { table = append(table, row) }()
			for i, b := range opBatches {
				y, err := m.Run(r.inputs[i], b)
				if err != nil {
					t.Fatal(err)
				}
				d := maxAbsDiff(y, r.ort[i])
				msg := ""
				if tc.goRef != nil {
					g := tc.goRef(r.inputs[i], b)
					dg := maxAbsDiff(y, g[:len(y)])
					msg = fmt.Sprintf(", max |native − Go forward| = %.2g", dg)
					if dg > parityTol {
						t.Errorf("batch %d: max |native − Go| = %g > %g", b, dg, parityTol)
					}
				}
				t.Logf("batch %d: max |native − ORT| = %.2g%s (max |ORT| %.2g)", b, d, msg, maxAbs(r.ort[i]))
				row += fmt.Sprintf(" %-8.2g", d)
				if tc.goRef != nil && i == len(opBatches)-1 {
					row += msg[len(", max |native − Go forward| = "):]
				}
				if d > parityTol {
					t.Errorf("batch %d: max |native − ORT| = %g > %g", b, d, parityTol)
				}
			}
			// onnx-go's Gorgonia backend on the same graph, for the record (docs/runtime.md).
			gs := "ok"
			if tc.gorgoniaPanics {
				gs = "panics in Gorgonia's tape machine goroutine (not run)"
			} else if g, err := runtime.LoadBytes(r.data, r.man, runtime.Options{Backend: runtime.BackendGorgonia}); err != nil {
				gs = strings.TrimPrefix(err.Error(), "runtime.LoadBytes: ")
				if len(gs) > 90 {
					gs = gs[:90] + "…"
				}
			} else if y, err := g.Run(r.inputs[0], 1); err == nil {
				gs = fmt.Sprintf("ok, %.2g", maxAbsDiff(y, r.ort[0]))
			}
			row += "  gorgonia: " + gs
			if nn.CurrentBackend() == nn.OpenBLAS {
				for i, b := range opBatches {
					if a := testing.AllocsPerRun(20, func() { m.Run(r.inputs[i], b) }); a != 0 {
						t.Errorf("batch %d: %v allocations per Run, want 0", b, a)
					}
				}
			}
		})
	}
	for _, op := range runtime.SupportedOps() {
		if !covered[op] {
			t.Errorf("no case runs %s", op)
		}
	}
}

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(float64(x)))
	}
	return m
}
