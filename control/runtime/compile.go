package runtime

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	onnxgo "github.com/owulveryck/onnx-go"
	"gorgonia.org/tensor"

	"robodistill/control/onnxio"
)

// valueKind says where a value's data comes from.
type valueKind uint8

const (
	kindAbsent   valueKind = iota // an omitted optional input ("")
	kindInput                     // the graph input: the caller's slice, for one Run
	kindConst                     // an initializer or a Constant node: shared, read-only
	kindComputed                  // a step's output
)

// value is one ONNX value of the compiled graph.
type value struct {
	name  string
	kind  valueKind
	shape shape     // constants only; others are inferred per batch size
	f32   []float32 // float constants
	i64   []int64   // integer constants (shapes, indices): read at compile time only
	isInt bool
	// viewOf is the value a view step aliases, or -1.
	viewOf int
	// size is the buffer a Model allocates for a computed value (0: none, the step's
	// kernel provides its own storage or aliases its input).
	size int
}

// step is one node of the graph, compiled.
type step struct {
	idx    int
	opType string
	node   string
	in     []int // value indices, -1 for an omitted optional input
	out    int
	k      kernel
}

// mode is how a kernel's output is stored.
type mode uint8

const (
	modeBuffer mode = iota // a buffer the Model allocates per value
	modeView               // an alias of the first input (Flatten, Reshape, Identity)
	modeOwn                // the kernel's own state holds it (nn layers)
)

// kernel computes one op. Kernels are shared by every clone and must not change after
// compiling; per-clone scratch comes from newState.
type kernel interface {
	mode() mode
	// infer gives the output shape from the shapes of all values (indexed as s.in).
	infer(sh []shape, s *step) (shape, error)
	// run computes the output; m.vals[s.out] is the output buffer for modeBuffer, and
	// run sets it for the other modes.
	run(m *Model, s *step)
}

// stateful kernels keep per-clone scratch (the nn layers they run).
type stateful interface {
	newState() any
}

// compiled is a loaded graph: everything but the buffers, shared by a Model's clones.
type compiled struct {
	values        []value
	steps         []step
	input, output int
	inShape       shape // [1, per-sample...]; Run sets the batch
	inSize        int   // per sample
	outSize       int   // per sample
	maxBatch      int
	copyOut       bool // the output aliases the input or a constant: Run copies it
	ops           []string
	manifest      *onnxio.Manifest
	sha256        string
	golden        []float32 // the golden input, one sample
}

// compiler holds what compiling one graph needs.
type compiler struct {
	om     *onnxio.Model
	d      *decoded
	opset  int64
	inits  map[string]bool
	values []value
	index  map[*vnode]int
}

// decodeOnnxGo runs onnx-go's decoder into our backend. The decoder (gogo protobuf and
// gorgonia's tensors underneath) can panic on malformed bytes: that is a format error.
func decodeOnnxGo(data []byte, backend onnxgo.Backend) (m *onnxgo.Model, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("onnx-go decoder: %w: panic: %v", onnxio.ErrFormat, r)
		}
	}()
	m = onnxgo.NewModel(backend)
	if err := m.UnmarshalBinary(data); err != nil {
		// Valid ONNX the decoder cannot read (graph attributes, float16 tensors, …) is
		// unsupported, not malformed. v0.5.0 reports tensor types from an internal package,
		// so those are recognised by their text.
		var ni *onnxgo.ErrNotImplemented
		if errors.As(err, &ni) || strings.Contains(err.Error(), "Not Yet Implemented") {
			return nil, fmt.Errorf("onnx-go decoder: %w: %v", ErrUnsupported, err)
		}
		return nil, fmt.Errorf("onnx-go decoder: %w: %v", onnxio.ErrFormat, err)
	}
	return m, nil
}

// guard checks the sizes the onnx-go decoder will allocate before it runs: it makes a
// zeroed tensor for every declared input, output and value_info shape, and trusts an
// initializer's dims. A hostile file could otherwise ask for terabytes, which no recover
// catches.
func guard(om *onnxio.Model) error {
	g := om.Graph
	if g == nil {
		return fmt.Errorf("%w: the model has no graph", onnxio.ErrFormat)
	}
	total := 0
	for _, list := range [][]onnxio.ValueInfo{g.Inputs, g.Outputs, g.ValueInfo} {
		for _, v := range list {
			if v.Type == nil || v.Type.Shape == nil {
				continue
			}
			var dims []int64
			for _, d := range v.Type.Shape.Dims {
				if d.HasValue {
					dims = append(dims, d.Value)
				}
			}
			n, err := checkDims(dims)
			if err != nil {
				return fmt.Errorf("%w: value %q: %v", onnxio.ErrFormat, v.Name, err)
			}
			if total += n; total > maxElems {
				return fmt.Errorf("%w: the declared value shapes hold more than %d elements", onnxio.ErrFormat, maxElems)
			}
		}
	}
	check := func(t *onnxio.Tensor) error {
		n, err := checkDims(t.Dims)
		if err != nil {
			return err
		}
		var have int
		switch t.DataType {
		case onnxio.Float, onnxio.Int32:
			have = len(t.RawData)/4 + len(t.FloatData) + len(t.Int32Data)
			if len(t.RawData)%4 != 0 {
				return fmt.Errorf("%d raw bytes", len(t.RawData))
			}
		case onnxio.Int64:
			have = len(t.RawData)/8 + len(t.Int64Data)
			if len(t.RawData)%8 != 0 {
				return fmt.Errorf("%d raw bytes", len(t.RawData))
			}
		default:
			return nil // onnx-go refuses or reads only what is there
		}
		if have != n {
			return fmt.Errorf("%d values for dims %v", have, t.Dims)
		}
		return nil
	}
	for i := range g.Initializers {
		if err := check(&g.Initializers[i]); err != nil {
			return fmt.Errorf("%w: initializer %q: %v", onnxio.ErrFormat, g.Initializers[i].Name, err)
		}
	}
	for _, n := range g.Nodes {
		for _, a := range n.Attributes {
			if a.T == nil {
				continue
			}
			if err := check(a.T); err != nil {
				return fmt.Errorf("%w: node %q attribute %q: %v", onnxio.ErrFormat, n.Name, a.Name, err)
			}
		}
	}
	return nil
}

func checkDims(dims []int64) (int, error) {
	if len(dims) > 32 {
		return 0, fmt.Errorf("rank %d", len(dims))
	}
	n := 1
	for _, d := range dims {
		if d < 0 || d > maxElems {
			return 0, fmt.Errorf("dimension %d", d)
		}
		if n *= int(d); n > maxElems {
			return 0, fmt.Errorf("dims %v: more than %d elements", dims, maxElems)
		}
	}
	return n, nil
}

// compile decodes data (whose onnxio decoding is om) and compiles it for man.
func compile(data []byte, om *onnxio.Model, man *onnxio.Manifest, maxBatch int) (*compiled, error) {
	if err := guard(om); err != nil {
		return nil, err
	}
	d := &decoded{}
	gm, err := decodeOnnxGo(data, d)
	if err != nil {
		return nil, err
	}
	g := om.Graph
	// The two decoders read the same bytes; onnx-go does not pass node names or the
	// opset to a backend, so they come from onnxio's decoding, matched by position.
	if len(d.ops) != len(g.Nodes) {
		return nil, fmt.Errorf("%w: onnx-go decoded %d nodes, onnxio %d", onnxio.ErrFormat, len(d.ops), len(g.Nodes))
	}
	for i, op := range d.ops {
		if op.op.Name != g.Nodes[i].OpType {
			return nil, fmt.Errorf("%w: node %d is %s to onnx-go and %s to onnxio", onnxio.ErrFormat, i, op.op.Name, g.Nodes[i].OpType)
		}
	}
	cx := &compiler{om: om, d: d, opset: om.Opset(), inits: map[string]bool{}, index: map[*vnode]int{}}
	for _, t := range g.Initializers {
		cx.inits[t.Name] = true
	}
	if len(gm.Input) != 1 || len(gm.Output) != 1 {
		return nil, fmt.Errorf("%w: the graph has %d inputs (besides initializers) and %d outputs, want 1 and 1", onnxio.ErrMismatch, len(gm.Input), len(gm.Output))
	}
	in, out := d.nodes[gm.Input[0]], d.nodes[gm.Output[0]]
	if err := checkSignature(g, in.name, out.name, man); err != nil {
		return nil, err
	}
	for k, op := range d.ops {
		for _, v := range op.outputs {
			if v.op >= 0 {
				return nil, fmt.Errorf("%w: value %q is computed by two nodes", onnxio.ErrFormat, v.name)
			}
			if v == in {
				return nil, fmt.Errorf("%w: node %q writes the graph input %q", onnxio.ErrFormat, cx.nodeName(k), v.name)
			}
			v.op = k
		}
	}
	if out.op < 0 {
		return nil, fmt.Errorf("%w: no node computes the graph output %q", onnxio.ErrFormat, out.name)
	}
	if p := d.ops[out.op]; p.outputs[0] != out {
		return nil, &OpError{Op: p.op.Name, Node: cx.nodeName(out.op), Err: unsupported("the graph output %q is not the node's first output; only first outputs are computed", out.name)}
	}
	if cx.opset < minOpset || cx.opset > maxOpset {
		return nil, fmt.Errorf("%w: opset %d (the native backend reads opsets %d to %d)", ErrUnsupported, cx.opset, minOpset, maxOpset)
	}
	order, err := cx.liveOrder(out)
	if err != nil {
		return nil, err
	}

	c := &compiled{maxBatch: maxBatch, manifest: man}
	c.input = cx.valueOf(in, kindInput)
	var steps []step
	for _, k := range order {
		s, err := cx.step(k, len(steps))
		if err != nil {
			return nil, err
		}
		if s != nil {
			steps = append(steps, *s)
		}
		if op := d.ops[k].op.Name; !slices.Contains(c.ops, op) {
			c.ops = append(c.ops, op)
		}
	}
	c.output = cx.index[out]
	c.values, c.steps = cx.values, steps
	if len(steps) == 0 && cx.values[c.output].kind != kindComputed {
		return nil, fmt.Errorf("%w: the graph output %q is a constant", ErrUnsupported, out.name)
	}
	if err := c.inferAll(man); err != nil {
		return nil, err
	}
	return c, nil
}

// nodeName names node k for errors: its name, or its first output's.
func (cx *compiler) nodeName(k int) string {
	n := cx.om.Graph.Nodes[k]
	if n.Name != "" || len(n.Outputs) == 0 {
		return n.Name
	}
	return n.Outputs[0]
}

// checkSignature compares the graph's input and output with the manifest: names, float32,
// a batch dimension that is not fixed, then the manifest's per-sample shape.
func checkSignature(g *onnxio.Graph, in, out string, man *onnxio.Manifest) error {
	if in != man.Input.Name || out != man.Output.Name {
		return fmt.Errorf("%w: the graph maps %q to %q, the manifest %q to %q", onnxio.ErrMismatch, in, out, man.Input.Name, man.Output.Name)
	}
	find := func(list []onnxio.ValueInfo, name string) *onnxio.ValueInfo {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
		return nil
	}
	for _, c := range []struct {
		what, name string
		v          *onnxio.ValueInfo
		perSample  []int
	}{{"input", in, find(g.Inputs, in), man.Input.Shape}, {"output", out, find(g.Outputs, out), man.Output.Shape}} {
		v := c.v
		ok := v != nil && v.Type != nil && v.Type.ElemType == onnxio.Float && v.Type.Shape != nil &&
			len(v.Type.Shape.Dims) == 1+len(c.perSample) && !v.Type.Shape.Dims[0].HasValue
		for i, dim := range c.perSample {
			ok = ok && v.Type.Shape.Dims[1+i].HasValue && v.Type.Shape.Dims[1+i].Value == int64(dim)
		}
		if !ok {
			return fmt.Errorf("%w: the graph's %s %q is not float32 [batch %v] with a symbolic batch dimension, as the manifest says", onnxio.ErrMismatch, c.what, c.name, c.perSample)
		}
	}
	return nil
}

// liveOrder lists the nodes the output depends on, each after the nodes it reads
// (depth-first from the output), and refuses cycles.
func (cx *compiler) liveOrder(out *vnode) ([]int, error) {
	const (
		unseen = iota
		active
		done
	)
	state := make([]uint8, len(cx.d.ops))
	var order []int
	var visit func(k int) error
	visit = func(k int) error {
		switch state[k] {
		case active:
			return fmt.Errorf("%w: the graph has a cycle through node %q", onnxio.ErrFormat, cx.nodeName(k))
		case done:
			return nil
		}
		state[k] = active
		if cx.d.ops[k].op.Name != "Constant" {
			for _, v := range cx.d.inputs(cx.d.ops[k]) {
				if v.op >= 0 {
					if err := visit(v.op); err != nil {
						return err
					}
				}
			}
		}
		state[k] = done
		order = append(order, k)
		return nil
	}
	return order, visit(out.op)
}

// valueOf returns the index of v's value, adding it with kind when new.
func (cx *compiler) valueOf(v *vnode, kind valueKind) int {
	if i, ok := cx.index[v]; ok {
		return i
	}
	cx.values = append(cx.values, value{name: v.name, kind: kind, viewOf: -1})
	cx.index[v] = len(cx.values) - 1
	return len(cx.values) - 1
}

// step compiles node k into a step (nil for a Constant, which becomes a value).
func (cx *compiler) step(k, idx int) (*step, error) {
	op := cx.d.ops[k]
	s := &step{idx: idx, opType: op.op.Name, node: cx.nodeName(k)}
	fail := func(err error) (*step, error) {
		return nil, &OpError{Op: s.opType, Node: s.node, Err: err}
	}
	// Outputs after the first (MaxPool's Indices, LayerNormalization's Mean, …) are not
	// computed: they must be unused.
	if len(op.outputs) == 0 {
		return fail(fmt.Errorf("%w: no outputs", onnxio.ErrFormat))
	}
	for i, v := range op.outputs[1:] {
		if v.name != "" && cx.used(v) {
			return fail(unsupported("output %d (%q) is used; only the first output is computed", i+1, v.name))
		}
	}
	if dom := cx.om.Graph.Nodes[k].Domain; dom != "" && dom != "ai.onnx" {
		return fail(unsupported("domain %q (only the default ai.onnx)", dom))
	}
	a := attrs{op.op.Attributes}
	if s.opType == "Constant" {
		val, err := constantValue(a)
		if err != nil {
			return fail(err)
		}
		i := cx.valueOf(op.outputs[0], kindConst)
		val.name, val.viewOf = cx.values[i].name, -1
		cx.values[i] = val
		return nil, nil
	}
	for _, v := range cx.d.inputs(op) {
		i, err := cx.input(v)
		if err != nil {
			return fail(err)
		}
		s.in = append(s.in, i)
	}
	for i, j := range s.in {
		// Reshape's shape and Slice's starts, ends, axes and steps are read when compiling.
		if j >= 0 && cx.values[j].isInt && (i == 0 || s.opType != "Reshape" && s.opType != "Slice") {
			return fail(unsupported("input %q is an integer tensor; only float32 values flow between nodes", cx.values[j].name))
		}
	}
	s.out = cx.valueOf(op.outputs[0], kindComputed)
	kn, err := newKernel(cx, s, a)
	if err != nil {
		return fail(err)
	}
	s.k = kn
	if kn.mode() == modeView {
		cx.values[s.out].viewOf = s.in[0]
	}
	return s, nil
}

// used reports whether any node reads v.
func (cx *compiler) used(v *vnode) bool {
	for _, n := range cx.d.nodes {
		for _, e := range n.edges {
			if e.T == v {
				return true
			}
		}
	}
	return false
}

// input resolves a node input to a value.
func (cx *compiler) input(v *vnode) (int, error) {
	if i, ok := cx.index[v]; ok {
		return i, nil
	}
	switch {
	case v.op >= 0:
		if p := cx.d.ops[v.op]; p.outputs[0] != v {
			return 0, unsupported("input %q is output %d of a %s node; only first outputs are computed", v.name, slices.Index(p.outputs, v), p.op.Name)
		}
		return cx.valueOf(v, kindComputed), nil // a Constant's output resolved earlier
	case v.name == "":
		return -1, nil
	case v.t != nil && cx.inits[v.name]:
		sh, f, ints, isInt, err := tensorData(v.t)
		if err != nil {
			return 0, fmt.Errorf("initializer %q: %w", v.name, err)
		}
		i := cx.valueOf(v, kindConst)
		val := &cx.values[i]
		val.shape, val.f32, val.i64, val.isInt = sh, f, ints, isInt
		return i, nil
	}
	return 0, fmt.Errorf("%w: input %q is neither the graph input, an initializer nor a node's output", onnxio.ErrFormat, v.name)
}

// tensorData converts a decoded tensor to float32 or int64 data.
func tensorData(t tensor.Tensor) (sh shape, f []float32, ints []int64, isInt bool, err error) {
	sh, err = shapeOf(t.Shape())
	if err != nil {
		return shape{}, nil, nil, false, err
	}
	switch d := t.Data().(type) {
	case []float32:
		f = d
	case float32:
		f = []float32{d}
	case []int64:
		ints, isInt = d, true
	case int64:
		ints, isInt = []int64{d}, true
	case []int32:
		ints, isInt = make([]int64, len(d)), true
		for i, v := range d {
			ints[i] = int64(v)
		}
	case int32:
		ints, isInt = []int64{int64(d)}, true
	default:
		return shape{}, nil, nil, false, unsupported("element type %v (float32, int64 and int32 are)", t.Dtype())
	}
	if n := sh.numel(); n != len(f)+len(ints) {
		return shape{}, nil, nil, false, fmt.Errorf("%w: %d values for shape %v", onnxio.ErrFormat, len(f)+len(ints), sh)
	}
	return sh, f, ints, isInt, nil
}

// inferAll runs shape inference at every batch size up to maxBatch, checks the output
// against the manifest and sizes the buffers.
func (c *compiled) inferAll(man *onnxio.Manifest) error {
	var err error
	if c.inShape, err = shapeOf(append([]int{1}, man.Input.Shape...)); err != nil {
		return fmt.Errorf("input.shape: %w", err)
	}
	c.inSize = c.inShape.numel()
	c.outSize = 1
	for _, d := range man.Output.Shape {
		c.outSize *= d
	}
	sh := make([]shape, len(c.values))
	for i, v := range c.values {
		if v.kind == kindConst {
			sh[i] = v.shape
		}
	}
	for b := 1; b <= c.maxBatch; b++ {
		at := ""
		if b > 1 {
			at = fmt.Sprintf(" at batch %d", b)
		}
		sh[c.input] = c.inShape
		sh[c.input].d[0] = b
		if n, ok := sh[c.input].size(); !ok || n == 0 {
			return fmt.Errorf("%w: input %v%s is too large", ErrShape, sh[c.input], at)
		}
		for i := range c.steps {
			s := &c.steps[i]
			o, err := s.k.infer(sh, s)
			if err == nil {
				if n, ok := o.size(); !ok || n == 0 {
					err = shapeErr("output %v is empty or too large", o)
				}
			}
			if err != nil {
				return &OpError{Op: s.opType, Node: s.node, Err: fmt.Errorf("%w%s", err, at)}
			}
			sh[s.out] = o
			v := &c.values[s.out]
			if s.k.mode() == modeBuffer {
				v.size = max(v.size, o.numel())
			}
		}
		want, _ := shapeOf(append([]int{b}, man.Output.Shape...))
		if got := sh[c.output]; !got.equal(want) {
			return fmt.Errorf("%w: the graph's output is %v%s, the manifest says %v", ErrShape, got, at, want)
		}
	}
	root := c.output
	for c.values[root].viewOf >= 0 {
		root = c.values[root].viewOf
	}
	c.copyOut = c.values[root].kind != kindComputed
	return nil
}

// The opsets the native backend reads: from 7 (ONNX Runtime's oldest, and where Gemm and
// BatchNormalization lost their legacy attributes) to 22, the newest whose definitions of
// the supported ops it was checked against.
const (
	minOpset = 7
	maxOpset = 22
)

// supported lists the op types of the native backend, sorted.
var supported = []string{"Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Constant", "Conv", "Div",
	"Elu", "Flatten", "Gemm", "GlobalAveragePool", "Identity", "LayerNormalization", "MatMul", "MaxPool", "Mul",
	"Relu", "Reshape", "Sigmoid", "Slice", "Softmax", "Softplus", "Sqrt", "Sub", "Tanh"}

// SupportedOps lists the op types the native backend runs (attribute limits are in
// docs/runtime.md; a model outside them is refused with an *OpError).
func SupportedOps() []string { return slices.Clone(supported) }
