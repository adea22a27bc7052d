package runtime

import (
	"math"
	"slices"
	"sort"

	"gorgonia.org/tensor"
)

// newKernel compiles one node. The inputs are resolved (s.in); attributes come as onnx-go
// decodes them.
func newKernel(cx *compiler, s *step, a attrs) (kernel, error) {
	switch s.opType {
	case "Relu", "Tanh", "Sigmoid", "Softplus", "Sqrt":
		return newUnary(cx, s, a, map[string]unaryOp{"Relu": opRelu, "Tanh": opTanh, "Sigmoid": opSigmoid, "Softplus": opSoftplus, "Sqrt": opSqrt}[s.opType])
	case "Elu":
		return newUnary(cx, s, a, opElu)
	case "Clip":
		return newClip(cx, s, a)
	case "Add", "Sub", "Mul", "Div":
		return newBinary(cx, s, a)
	case "MatMul":
		return newMatMul(cx, s, a)
	case "Gemm":
		return newGemm(cx, s, a)
	case "Conv":
		return newConv(cx, s, a)
	case "MaxPool", "AveragePool":
		return newPool(cx, s, a)
	case "GlobalAveragePool":
		return newGlobalAveragePool(cx, s, a)
	case "BatchNormalization":
		return newBatchNorm(cx, s, a)
	case "LayerNormalization":
		return newLayerNorm(cx, s, a)
	case "Softmax":
		return newSoftmax(cx, s, a)
	case "Flatten":
		return newFlatten(cx, s, a)
	case "Reshape":
		return newReshape(cx, s, a)
	case "Identity":
		return newIdentity(cx, s, a)
	case "Concat":
		return newConcat(cx, s, a)
	case "Slice":
		return newSlice(cx, s, a)
	}
	return nil, unsupported("op type %s (the native backend runs %v; Options.Backend %q may run it)", s.opType, supported, BackendGorgonia)
}

// attrs reads a node's attributes as onnx-go decodes them: float32, int64, string,
// []float32, []int64, []string or tensor.Tensor.
type attrs struct{ m map[string]any }

// check refuses attributes other than known, naming the first in sorted order.
func (a attrs) check(known ...string) error {
	var extra []string
	for k := range a.m {
		if !slices.Contains(known, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return unsupported("attribute %q", extra[0])
	}
	return nil
}

func (a attrs) has(name string) bool { _, ok := a.m[name]; return ok }

func (a attrs) int(name string, def int64) (int64, error) {
	v, ok := a.m[name]
	if !ok {
		return def, nil
	}
	i, ok := v.(int64)
	if !ok {
		return 0, unsupported("attribute %s of type %T (want an int)", name, v)
	}
	return i, nil
}

func (a attrs) float(name string, def float32) (float32, error) {
	v, ok := a.m[name]
	if !ok {
		return def, nil
	}
	f, ok := v.(float32)
	if !ok {
		return 0, unsupported("attribute %s of type %T (want a float)", name, v)
	}
	return f, nil
}

func (a attrs) str(name, def string) (string, error) {
	v, ok := a.m[name]
	if !ok {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", unsupported("attribute %s of type %T (want a string)", name, v)
	}
	return s, nil
}

// ints reads an ints attribute; ok is false when absent.
func (a attrs) ints(name string) (v []int64, ok bool, err error) {
	x, ok := a.m[name]
	if !ok {
		return nil, false, nil
	}
	v, ok = x.([]int64)
	if !ok {
		return nil, false, unsupported("attribute %s of type %T (want ints)", name, x)
	}
	return v, true, nil
}

// wantInputs checks the number of inputs: at least lo, at most hi.
func wantInputs(s *step, lo, hi int) error {
	if len(s.in) < lo || len(s.in) > hi {
		if lo == hi {
			return shapeErr("%d inputs, want %d", len(s.in), lo)
		}
		return shapeErr("%d inputs, want %d to %d", len(s.in), lo, hi)
	}
	for i := 0; i < lo; i++ {
		if s.in[i] < 0 {
			return shapeErr("input %d is required", i)
		}
	}
	return nil
}

// constFloats returns the data of a float constant input.
func (cx *compiler) constFloats(s *step, i int, what string) ([]float32, shape, error) {
	if i >= len(s.in) || s.in[i] < 0 {
		return nil, shape{}, shapeErr("input %d (%s) is missing", i, what)
	}
	v := &cx.values[s.in[i]]
	if v.kind != kindConst || v.isInt {
		return nil, shape{}, unsupported("%s %q must be a float32 initializer or Constant", what, v.name)
	}
	return v.f32, v.shape, nil
}

// constInts returns the data of an integer constant input (absent: ok false).
func (cx *compiler) constInts(s *step, i int, what string) ([]int64, bool, error) {
	if i >= len(s.in) || s.in[i] < 0 {
		return nil, false, nil
	}
	v := &cx.values[s.in[i]]
	if v.kind != kindConst || !v.isInt {
		return nil, false, unsupported("%s %q must be an int64 or int32 initializer or Constant", what, v.name)
	}
	return v.i64, true, nil
}

// constantValue is a Constant node's value.
func constantValue(a attrs) (value, error) {
	if err := a.check("value", "value_float", "value_floats", "value_int", "value_ints"); err != nil {
		return value{}, err
	}
	if len(a.m) != 1 {
		return value{}, unsupported("Constant with %d value attributes (want one)", len(a.m))
	}
	v := value{kind: kindConst}
	for k, x := range a.m {
		switch k {
		case "value":
			t, ok := x.(tensor.Tensor)
			if !ok {
				return value{}, unsupported("attribute value of type %T", x)
			}
			var err error
			if v.shape, v.f32, v.i64, v.isInt, err = tensorData(t); err != nil {
				return value{}, err
			}
		case "value_float":
			f, err := a.float(k, 0)
			v.shape, v.f32 = mkShape(), []float32{f}
			if err != nil {
				return value{}, err
			}
		case "value_floats":
			f, ok := x.([]float32)
			if !ok {
				return value{}, unsupported("attribute value_floats of type %T", x)
			}
			v.shape, v.f32 = mkShape(len(f)), f
		case "value_int":
			i, err := a.int(k, 0)
			v.shape, v.i64, v.isInt = mkShape(), []int64{i}, true
			if err != nil {
				return value{}, err
			}
		case "value_ints":
			i, _, err := a.ints(k)
			if err != nil {
				return value{}, err
			}
			v.shape, v.i64, v.isInt = mkShape(len(i)), i, true
		}
	}
	if v.shape.numel() == 0 || v.shape.numel() > maxElems {
		return value{}, shapeErr("Constant of %d elements", v.shape.numel())
	}
	return v, nil
}

// unary is an elementwise function of one input.
type unaryOp uint8

const (
	opRelu unaryOp = iota
	opTanh
	opSigmoid
	opElu
	opSoftplus
	opSqrt
	opClip
)

type unary struct {
	op     unaryOp
	alpha  float32 // Elu
	lo, hi float32 // Clip
}

func newUnary(_ *compiler, s *step, a attrs, op unaryOp) (kernel, error) {
	if err := wantInputs(s, 1, 1); err != nil {
		return nil, err
	}
	k := &unary{op: op}
	if op == opElu {
		if err := a.check("alpha"); err != nil {
			return nil, err
		}
		var err error
		if k.alpha, err = a.float("alpha", 1); err != nil {
			return nil, err
		}
		return k, nil
	}
	return k, a.check()
}

// newClip reads min and max from inputs (opset 11 and later; they must be constants) or
// from attributes (before 11).
func newClip(cx *compiler, s *step, a attrs) (kernel, error) {
	k := &unary{op: opClip, lo: float32(math.Inf(-1)), hi: float32(math.Inf(1))}
	if cx.opset < 11 {
		if err := a.check("min", "max"); err != nil {
			return nil, err
		}
		if err := wantInputs(s, 1, 1); err != nil {
			return nil, err
		}
		var err error
		if k.lo, err = a.float("min", k.lo); err != nil {
			return nil, err
		}
		if k.hi, err = a.float("max", k.hi); err != nil {
			return nil, err
		}
		return k, nil
	}
	if err := a.check(); err != nil {
		return nil, err
	}
	if err := wantInputs(s, 1, 3); err != nil {
		return nil, err
	}
	for i, p := range []*float32{&k.lo, &k.hi} {
		if 1+i >= len(s.in) || s.in[1+i] < 0 {
			continue
		}
		f, sh, err := cx.constFloats(s, 1+i, []string{"min", "max"}[i])
		if err != nil {
			return nil, err
		}
		if len(f) != 1 || sh.rank > 1 {
			return nil, shapeErr("%s has shape %v (want a scalar)", []string{"min", "max"}[i], sh)
		}
		*p = f[0]
	}
	return k, nil
}

func (k *unary) mode() mode { return modeBuffer }

func (k *unary) infer(sh []shape, s *step) (shape, error) { return sh[s.in[0]], nil }

func (k *unary) run(m *Model, s *step) {
	y := m.vals[s.out]
	x := m.vals[s.in[0]][:len(y)]
	switch k.op {
	case opRelu:
		for i, v := range x {
			y[i] = max(v, 0)
		}
	case opTanh:
		for i, v := range x {
			y[i] = float32(math.Tanh(float64(v)))
		}
	case opSigmoid:
		for i, v := range x {
			y[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	case opElu:
		alpha := float64(k.alpha)
		for i, v := range x {
			if v < 0 {
				y[i] = float32(alpha * math.Expm1(float64(v)))
			} else {
				y[i] = v
			}
		}
	case opSoftplus:
		for i, v := range x {
			// log(1 + e^x) without overflow: max(x, 0) + log1p(e^−|x|).
			f := float64(v)
			y[i] = float32(max(f, 0) + math.Log1p(math.Exp(-math.Abs(f))))
		}
	case opSqrt:
		for i, v := range x {
			y[i] = float32(math.Sqrt(float64(v)))
		}
	case opClip:
		lo, hi := k.lo, k.hi
		for i, v := range x {
			// NaN passes through, as in ONNX Runtime; min > max gives max, as ONNX says.
			if v < lo {
				v = lo
			}
			if v > hi {
				v = hi
			}
			y[i] = v
		}
	}
}

// binary is Add, Sub, Mul or Div with numpy broadcasting.
type binOp uint8

const (
	opAdd binOp = iota
	opSub
	opMul
	opDiv
)

type binary struct{ op binOp }

func newBinary(_ *compiler, s *step, a attrs) (kernel, error) {
	if err := wantInputs(s, 2, 2); err != nil {
		return nil, err
	}
	if err := a.check(); err != nil {
		return nil, err
	}
	return &binary{op: map[string]binOp{"Add": opAdd, "Sub": opSub, "Mul": opMul, "Div": opDiv}[s.opType]}, nil
}

func (k *binary) mode() mode { return modeBuffer }

func (k *binary) infer(sh []shape, s *step) (shape, error) {
	a, b := sh[s.in[0]], sh[s.in[1]]
	o, ok := broadcast(a, b)
	if !ok {
		return shape{}, shapeErr("shapes %v and %v do not broadcast", a, b)
	}
	return o, nil
}

func (k *binary) run(m *Model, s *step) {
	sa, sb, so := &m.shapes[s.in[0]], &m.shapes[s.in[1]], &m.shapes[s.out]
	a, b, y := m.vals[s.in[0]], m.vals[s.in[1]], m.vals[s.out]
	na, nb, n := sa.numel(), sb.numel(), len(y)
	switch {
	case na == n && nb == n:
		// Equal sizes after broadcasting means equal shapes up to leading ones.
		binLoop(k.op, y, a[:n], 1, b[:n], 1)
		return
	case nb == 1 && na == n:
		binLoop(k.op, y, a[:n], 1, b[:1], 0)
		return
	case na == 1 && nb == n:
		binLoop(k.op, y, a[:1], 0, b[:n], 1)
		return
	}
	// General case: rows of the output's last dimension, each operand either running
	// along the row or repeating one value, walked with broadcast strides.
	r := so.rank
	inner := so.d[r-1]
	stA, stB := sa.strides(r), sb.strides(r)
	ia, ib := stA[r-1], stB[r-1]
	var idx [maxRank]int
	offA, offB := 0, 0
	for o := 0; o < n; o += inner {
		binLoop(k.op, y[o:o+inner], a[offA:], ia, b[offB:], ib)
		for j := r - 2; j >= 0; j-- {
			idx[j]++
			offA += stA[j]
			offB += stB[j]
			if idx[j] < so.d[j] {
				break
			}
			offA -= stA[j] * so.d[j]
			offB -= stB[j] * so.d[j]
			idx[j] = 0
		}
	}
}

// binLoop computes y[i] = a[i·sa] op b[i·sb] for strides 0 or 1.
func binLoop(op binOp, y, a []float32, sa int, b []float32, sb int) {
	n := len(y)
	switch {
	case sa == 1 && sb == 1:
		a, b = a[:n], b[:n]
		switch op {
		case opAdd:
			for i := range y {
				y[i] = a[i] + b[i]
			}
		case opSub:
			for i := range y {
				y[i] = a[i] - b[i]
			}
		case opMul:
			for i := range y {
				y[i] = a[i] * b[i]
			}
		case opDiv:
			for i := range y {
				y[i] = a[i] / b[i]
			}
		}
	case sa == 1:
		a, v := a[:n], b[0]
		switch op {
		case opAdd:
			for i := range y {
				y[i] = a[i] + v
			}
		case opSub:
			for i := range y {
				y[i] = a[i] - v
			}
		case opMul:
			for i := range y {
				y[i] = a[i] * v
			}
		case opDiv:
			for i := range y {
				y[i] = a[i] / v
			}
		}
	case sb == 1:
		v, b := a[0], b[:n]
		switch op {
		case opAdd:
			for i := range y {
				y[i] = v + b[i]
			}
		case opSub:
			for i := range y {
				y[i] = v - b[i]
			}
		case opMul:
			for i := range y {
				y[i] = v * b[i]
			}
		case opDiv:
			for i := range y {
				y[i] = v / b[i]
			}
		}
	default:
		var v float32
		switch op {
		case opAdd:
			v = a[0] + b[0]
		case opSub:
			v = a[0] - b[0]
		case opMul:
			v = a[0] * b[0]
		case opDiv:
			v = a[0] / b[0]
		}
		for i := range y {
			y[i] = v
		}
	}
}
