package onnxio

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	"robodistill/control/nn"
)

// What Export writes. See docs/onnx.md for why.
const (
	IRVersion = 8  // ONNX 1.10–1.12; Debian's onnx 1.12 checks up to 8
	Opset     = 13 // every op below has its current form; LayerNormalization (17) is decomposed
	// MetadataKey holds the manifest's JSON in the model's metadata_props, and
	// MetadataVersionKey its version number, so a reader can refuse before parsing.
	MetadataKey        = "robodistill.manifest"
	MetadataVersionKey = "robodistill.manifest_version"
	// BatchDim is the symbolic name of the graph's first (batch) dimension.
	BatchDim = "N"
	producer = "robodistill"
)

// Export writes net as an ONNX model with m embedded, and returns the manifest as
// embedded: m with its golden output computed by net (and the default pattern and
// tolerance when m has none). The graph's input and output are named and shaped as m
// says, with a symbolic batch dimension first.
//
// Export runs net.Forward once at batch 1, which replaces the result of any earlier
// Forward (layers own their outputs).
func Export(w io.Writer, net *nn.Sequential, m Manifest) (*Manifest, error) {
	model, done, err := Build(net, m)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(model.Marshal()); err != nil {
		return nil, fmt.Errorf("onnxio.Export: %w", err)
	}
	return done, nil
}

// Build is Export without the writing: the model as values, for inspection and tests.
func Build(net *nn.Sequential, m Manifest) (*Model, *Manifest, error) {
	if net == nil {
		return nil, nil, fmt.Errorf("onnxio.Export: no network")
	}
	if m.Golden.Pattern == "" {
		m.Golden.Pattern = PatternLattice
	}
	if m.Golden.Tolerance == 0 {
		m.Golden.Tolerance = DefaultGoldenTolerance
	}
	in := append([]int{1}, m.Input.Shape...)
	// Check the shapes before running anything: Forward panics on a mismatch.
	if err := checkShape("input.shape", m.Input.Shape); err != nil {
		return nil, nil, fmt.Errorf("onnxio.Export: manifest: %w", err)
	}
	out, err := net.OutShape(in)
	if err != nil {
		return nil, nil, fmt.Errorf("onnxio.Export: input.shape %v: %w", m.Input.Shape, err)
	}
	if want := append([]int{1}, m.Output.Shape...); !slices.Equal(out, want) {
		return nil, nil, fmt.Errorf("onnxio.Export: output.shape: the network gives %v per sample, the manifest says %v", out[1:], m.Output.Shape)
	}
	x, err := GoldenInput(m.Golden.Pattern, numel(in))
	if err != nil {
		return nil, nil, fmt.Errorf("onnxio.Export: %w", err)
	}
	y := net.Forward(&nn.Tensor{Shape: in, Data: x})
	m.Golden.Output = slices.Clone(y.Data[:y.Len()])
	if err := m.Validate(); err != nil {
		return nil, nil, fmt.Errorf("onnxio.Export: manifest: %w", err)
	}
	js, err := m.JSON()
	if err != nil {
		return nil, nil, fmt.Errorf("onnxio.Export: %w", err)
	}

	b := &builder{value: m.Input.Name, shape: in}
	if err := b.layers("", net.Layers); err != nil {
		return nil, nil, fmt.Errorf("onnxio.Export: %w", err)
	}
	if len(b.g.Nodes) == 0 {
		return nil, nil, fmt.Errorf("onnxio.Export: the network has no layers")
	}
	// The last node writes the graph output.
	last := &b.g.Nodes[len(b.g.Nodes)-1]
	last.Outputs[0] = m.Output.Name

	b.g.Name = string(m.Kind)
	b.g.Inputs = []ValueInfo{valueInfo(m.Input.Name, m.Input.Shape)}
	b.g.Outputs = []ValueInfo{valueInfo(m.Output.Name, m.Output.Shape)}
	model := &Model{
		IRVersion:       IRVersion,
		ProducerName:    producer,
		ProducerVersion: m.CodeVersion,
		Graph:           &b.g,
		OpsetImport:     []OpsetID{{Version: Opset}},
		Metadata: []StringEntry{
			{Key: MetadataKey, Value: string(js)},
			{Key: MetadataVersionKey, Value: strconv.Itoa(m.Version)},
		},
	}
	return model, &m, nil
}

func valueInfo(name string, perSample []int) ValueInfo {
	dims := []Dim{DimParam(BatchDim)}
	for _, d := range perSample {
		dims = append(dims, DimValue(int64(d)))
	}
	return ValueInfo{Name: name, Type: &TensorType{ElemType: Float, Shape: &Shape{Dims: dims}}}
}

// builder appends nodes and initializers, following the current value and its shape.
type builder struct {
	g     Graph
	value string // the name of the current value
	shape []int  // its shape at batch 1
}

func (b *builder) layers(prefix string, layers []nn.Layer) error {
	for i, l := range layers {
		p := prefix + strconv.Itoa(i) + "."
		out, err := l.OutShape(b.shape)
		if err == nil {
			err = b.layer(p, l)
		}
		if err != nil {
			return fmt.Errorf("layer %s (%T): %w", p[:len(p)-1], l, err)
		}
		b.shape = out
	}
	return nil
}

// layer emits one layer. Parameter initializers keep the layer's PyTorch-style names
// ("0.weight"); a Linear's weight is stored transposed for MatMul as "<i>.weight.T".
func (b *builder) layer(p string, l nn.Layer) error {
	switch l := l.(type) {
	case *nn.Sequential:
		return b.layers(p, l.Layers)
	case *nn.Conv2d:
		w, bias := b.init(p+"weight", l.Weight.Shape, l.Weight.Value), b.init(p+"bias", l.Bias.Shape, l.Bias.Value)
		k, s, pad := int64(l.K), int64(l.Stride), int64(l.Pad)
		b.node(p, "Conv", []string{b.value, w, bias},
			ints("dilations", 1, 1), intAttr("group", 1), ints("kernel_shape", k, k),
			ints("pads", pad, pad, pad, pad), ints("strides", s, s))
	case *nn.Linear:
		// x·Wᵀ + b as MatMul then Add: onnx-go's Gemm drifts with a bias at batch 1.
		wt := make([]float32, len(l.Weight.Value))
		for o := 0; o < l.Out; o++ {
			for i := 0; i < l.In; i++ {
				wt[i*l.Out+o] = l.Weight.Value[o*l.In+i]
			}
		}
		w := b.init(p+"weight.T", []int{l.In, l.Out}, wt)
		bias := b.init(p+"bias", l.Bias.Shape, l.Bias.Value)
		b.node(p, "MatMul", []string{b.value, w})
		b.node(p, "Add", []string{b.value, bias})
	case *nn.ReLU:
		b.node(p, "Relu", []string{b.value})
	case *nn.Tanh:
		b.node(p, "Tanh", []string{b.value})
	case *nn.Flatten:
		b.node(p, "Flatten", []string{b.value}, intAttr("axis", 1))
	case *nn.LayerNorm:
		return b.layerNorm(p, l)
	case *nn.SpatialSoftmax:
		return b.spatialSoftmax(p)
	default:
		return fmt.Errorf("no ONNX form for this layer")
	}
	return nil
}

// layerNorm decomposes LayerNorm over the last dimension into opset-13 ops that onnx-go
// also has (it has no ReduceMean or LayerNormalization): means are MatMuls with a column
// J of 1/F.
//
//	mean = x·J, d = x − mean, var = (d ⊙ Identity(d))·J, y = d / √(var + eps) ⊙ weight + bias
func (b *builder) layerNorm(p string, l *nn.LayerNorm) error {
	if len(b.shape) != 2 {
		return fmt.Errorf("exported only on [N, F] inputs, not rank %d", len(b.shape))
	}
	col := make([]float32, l.F)
	for i := range col {
		col[i] = 1 / float32(l.F)
	}
	j := b.init(p+"mean_col", []int{l.F, 1}, col)
	eps := b.init(p+"eps", []int{1}, []float32{l.Eps})
	w, bias := b.init(p+"weight", l.Weight.Shape, l.Weight.Value), b.init(p+"bias", l.Bias.Shape, l.Bias.Value)
	x := b.value
	mean := b.node(p, "MatMul", []string{x, j})
	d := b.node(p, "Sub", []string{x, mean})
	// Mul(d, d) would be the natural square, but onnx-go's graph keeps one edge per pair
	// of nodes and then sees a Mul with one input: square d times a copy of it.
	dc := b.node(p, "Identity", []string{d})
	sq := b.node(p, "Mul", []string{d, dc})
	b.node(p, "MatMul", []string{sq, j})
	b.node(p, "Add", []string{b.value, eps})
	sd := b.node(p, "Sqrt", []string{b.value})
	b.node(p, "Div", []string{d, sd})
	b.node(p, "Mul", []string{b.value, w})
	b.node(p, "Add", []string{b.value, bias})
	return nil
}

// spatialSoftmax writes SpatialSoftmax on [N, C, H, W] as
//
//	Reshape [0, C, H·W] → Softmax axis 2 → MatMul with the [H·W, 2] grid → Flatten axis 1
//
// giving [N, C, 2] flattened to [N, 2C]: each channel's x then y, the layer's order. The
// grid is nn.SpatialGrid, the matrix the layer multiplies by. The reshape target's 0 copies
// the batch dimension, so the graph takes any batch. axis 2 is the last axis of the 3-D
// value: opset 13's Softmax normalises along that one axis, and the older definition
// (flatten from the axis on) would give the same here. The layer's OutShape has checked
// the input is [N, C, H, W].
func (b *builder) spatialSoftmax(p string) error {
	c, h, w := b.shape[1], b.shape[2], b.shape[3]
	target := b.initInt64(p+"shape", []int64{0, int64(c), int64(h * w)})
	grid := b.init(p+"grid", []int{h * w, 2}, nn.SpatialGrid(h, w))
	b.node(p, "Reshape", []string{b.value, target})
	b.node(p, "Softmax", []string{b.value}, intAttr("axis", 2))
	b.node(p, "MatMul", []string{b.value, grid})
	b.node(p, "Flatten", []string{b.value}, intAttr("axis", 1))
	return nil
}

// node appends a node named after its layer and op ("3.MatMul", "3.MatMul_1", …) whose
// output has the node's name, makes that output the current value and returns it.
func (b *builder) node(p, op string, inputs []string, attrs ...Attribute) string {
	name := p + op
	for k := 1; b.has(name); k++ {
		name = p + op + "_" + strconv.Itoa(k)
	}
	b.g.Nodes = append(b.g.Nodes, Node{Inputs: inputs, Outputs: []string{name}, Name: name, OpType: op, Attributes: attrs})
	b.value = name
	return name
}

func (b *builder) has(name string) bool {
	for _, n := range b.g.Nodes {
		if n.Name == name {
			return true
		}
	}
	return false
}

// init adds a float32 initializer with raw little-endian data and returns its name.
func (b *builder) init(name string, shape []int, v []float32) string {
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	b.g.Initializers = append(b.g.Initializers, Tensor{Dims: dims, DataType: Float, Name: name, RawData: raw})
	return name
}

// initInt64 adds a 1-D int64 initializer (a shape) with raw little-endian data.
func (b *builder) initInt64(name string, v []int64) string {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
	}
	b.g.Initializers = append(b.g.Initializers, Tensor{Dims: []int64{int64(len(v))}, DataType: Int64, Name: name, RawData: raw})
	return name
}

func ints(name string, v ...int64) Attribute {
	return Attribute{Name: name, Type: AttrInts, Ints: v}
}

func intAttr(name string, v int64) Attribute {
	return Attribute{Name: name, Type: AttrInt, I: v}
}
