package runtime_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"

	"robodistill/control/onnxio"
	"robodistill/vision"
)

// Helpers to build ONNX graphs by hand with onnxio's types: one input "x" [N, in...] and
// one output "y" [N, out...].

func f32(name string, dims []int64, v []float32) onnxio.Tensor {
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	return onnxio.Tensor{Name: name, Dims: dims, DataType: onnxio.Float, RawData: raw}
}

func i64(name string, v ...int64) onnxio.Tensor {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
	}
	return onnxio.Tensor{Name: name, Dims: []int64{int64(len(v))}, DataType: onnxio.Int64, RawData: raw}
}

func i32(name string, v ...int32) onnxio.Tensor {
	return onnxio.Tensor{Name: name, Dims: []int64{int64(len(v))}, DataType: onnxio.Int32, Int32Data: v}
}

// uniform is n values in [lo, hi) from seed.
func uniform(n int, seed uint64, lo, hi float32) []float32 {
	rng := rand.New(rand.NewPCG(seed, 5))
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*rng.Float32()
	}
	return v
}

// param is a float initializer of the given dims with uniform values.
func param(name string, seed uint64, lo, hi float32, dims ...int64) onnxio.Tensor {
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	return f32(name, dims, uniform(n, seed, lo, hi))
}

func scalar(name string, v float32) onnxio.Tensor { return f32(name, nil, []float32{v}) }

func floats(t onnxio.Tensor) []float32 {
	v := make([]float32, len(t.RawData)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.RawData[4*i:]))
	}
	return v
}

func node(op, name string, in []string, out string, attrs ...onnxio.Attribute) onnxio.Node {
	return onnxio.Node{OpType: op, Name: name, Inputs: in, Outputs: []string{out}, Attributes: attrs}
}

func aInts(name string, v ...int64) onnxio.Attribute {
	return onnxio.Attribute{Name: name, Type: onnxio.AttrInts, Ints: v}
}
func aInt(name string, v int64) onnxio.Attribute {
	return onnxio.Attribute{Name: name, Type: onnxio.AttrInt, I: v}
}
func aFloat(name string, v float32) onnxio.Attribute {
	return onnxio.Attribute{Name: name, Type: onnxio.AttrFloat, F: v}
}
func aStr(name, v string) onnxio.Attribute {
	return onnxio.Attribute{Name: name, Type: onnxio.AttrString, S: []byte(v)}
}
func aTensor(name string, t onnxio.Tensor) onnxio.Attribute {
	return onnxio.Attribute{Name: name, Type: onnxio.AttrTensor, T: &t}
}

func valueInfo(name string, perSample []int) onnxio.ValueInfo {
	dims := []onnxio.Dim{onnxio.DimParam(onnxio.BatchDim)}
	for _, d := range perSample {
		dims = append(dims, onnxio.DimValue(int64(d)))
	}
	return onnxio.ValueInfo{Name: name, Type: &onnxio.TensorType{ElemType: onnxio.Float, Shape: &onnxio.Shape{Dims: dims}}}
}

// graph is a hand-built model x [N, in...] → y [N, out...].
type graph struct {
	opset   int64
	in, out []int
	nodes   []onnxio.Node
	inits   []onnxio.Tensor
}

func (g graph) model() *onnxio.Model {
	opset := g.opset
	if opset == 0 {
		opset = 13
	}
	return &onnxio.Model{
		IRVersion: 8, ProducerName: "runtime-test",
		OpsetImport: []onnxio.OpsetID{{Version: opset}},
		Graph: &onnxio.Graph{Name: "test", Nodes: g.nodes, Initializers: g.inits,
			Inputs: []onnxio.ValueInfo{valueInfo("x", g.in)}, Outputs: []onnxio.ValueInfo{valueInfo("y", g.out)}},
	}
}

// manifest describes g, with golden as its golden output (pattern lattice-v1).
func (g graph) manifest(golden []float32) *onnxio.Manifest {
	m := &onnxio.Manifest{
		Version:     onnxio.ManifestVersion,
		Kind:        onnxio.KindPolicy,
		Input:       onnxio.Input{Name: "x", Shape: g.in},
		Output:      onnxio.Output{Name: "y", Shape: g.out, Meaning: "test output"},
		Training:    onnxio.Training{Labeler: "ground-truth"},
		CodeVersion: "test",
		Created:     created,
		Golden:      onnxio.Golden{Pattern: onnxio.PatternLattice, Output: golden, Tolerance: onnxio.DefaultGoldenTolerance},
	}
	if len(g.in) == 3 {
		cfg := vision.DefaultConfig()
		cfg.Height, cfg.Width = g.in[1], g.in[2]
		if g.in[0] == 1 {
			cfg.Channels, cfg.Mean, cfg.Std = vision.Gray, []float64{0}, []float64{1}
		}
		m.Input.Vision = &cfg
	}
	return m
}
