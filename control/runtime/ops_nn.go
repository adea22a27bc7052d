package runtime

import (
	"math"

	"robodistill/control/nn"
)

// conv is a 2-D convolution run by an nn.Conv2d per clone (im2col and one GEMM per
// sample). nn's layer has square kernels, one stride and the same padding on every
// side; other geometries are refused.
type conv struct {
	inC, outC, k, stride, pad int
	w, b                      []float32
}

type convState struct {
	c nn.Conv2d
	x nn.Tensor
}

func newConv(cx *compiler, s *step, a attrs) (kernel, error) {
	if err := a.check("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"); err != nil {
		return nil, err
	}
	if err := wantInputs(s, 2, 3); err != nil {
		return nil, err
	}
	w, ws, err := cx.constFloats(s, 1, "weight")
	if err != nil {
		return nil, err
	}
	if ws.rank != 4 {
		return nil, unsupported("weight of shape %v: only 2-D convolutions (weight [out, in, kh, kw])", ws)
	}
	k := &conv{outC: ws.d[0], inC: ws.d[1], k: ws.d[2], w: w}
	if ws.d[2] != ws.d[3] {
		return nil, unsupported("kernel %dx%d: only square kernels", ws.d[2], ws.d[3])
	}
	if g, err := a.int("group", 1); err != nil || g != 1 {
		if err != nil {
			return nil, err
		}
		return nil, unsupported("group = %d: only 1", g)
	}
	if d, ok, err := a.ints("dilations"); err != nil || ok && !allEqual(d, 1, 2) {
		if err != nil {
			return nil, err
		}
		return nil, unsupported("dilations = %v: only [1 1]", d)
	}
	if ks, ok, err := a.ints("kernel_shape"); err != nil || ok && !allEqual(ks, int64(k.k), 2) {
		if err != nil {
			return nil, err
		}
		return nil, unsupported("kernel_shape = %v for a weight of shape %v", ks, ws)
	}
	k.stride = 1
	if st, ok, err := a.ints("strides"); err != nil {
		return nil, err
	} else if ok {
		if len(st) != 2 || st[0] != st[1] || st[0] < 1 || st[0] > maxElems {
			return nil, unsupported("strides = %v: only one stride for both axes", st)
		}
		k.stride = int(st[0])
	}
	autoPad, err := a.str("auto_pad", "NOTSET")
	if err != nil {
		return nil, err
	}
	switch autoPad {
	case "NOTSET":
		if p, ok, err := a.ints("pads"); err != nil {
			return nil, err
		} else if ok {
			if len(p) != 4 || !allEqual(p, p[0], 4) || p[0] < 0 || p[0] > maxElems {
				return nil, unsupported("pads = %v: only the same padding on every side", p)
			}
			k.pad = int(p[0])
		}
	case "VALID":
	case "SAME_UPPER", "SAME_LOWER":
		// With stride 1 and an odd kernel the padding is (k−1)/2 on every side whatever the
		// input size; other cases pad unevenly, which nn.Conv2d cannot.
		if k.stride != 1 || k.k%2 == 0 {
			return nil, unsupported("auto_pad %s with stride %d and kernel %d: pads would be uneven; give explicit pads", autoPad, k.stride, k.k)
		}
		k.pad = (k.k - 1) / 2
	default:
		return nil, unsupported("auto_pad = %q", autoPad)
	}
	if autoPad != "NOTSET" && a.has("pads") {
		return nil, unsupported("pads together with auto_pad %s", autoPad)
	}
	k.b = make([]float32, k.outC)
	if len(s.in) == 3 && s.in[2] >= 0 {
		b, bs, err := cx.constFloats(s, 2, "bias")
		if err != nil {
			return nil, err
		}
		if len(b) != k.outC {
			return nil, shapeErr("bias of shape %v for %d output channels", bs, k.outC)
		}
		k.b = b
	}
	return k, nil
}

func allEqual(v []int64, x int64, n int) bool {
	if len(v) != n {
		return false
	}
	for _, e := range v {
		if e != x {
			return false
		}
	}
	return true
}

func (k *conv) mode() mode { return modeOwn }

func (k *conv) newState() any {
	return &convState{c: nn.Conv2d{InC: k.inC, OutC: k.outC, K: k.k, Stride: k.stride, Pad: k.pad,
		Weight: &nn.Param{Name: "weight", Shape: []int{k.outC, k.inC, k.k, k.k}, Value: k.w},
		Bias:   &nn.Param{Name: "bias", Shape: []int{k.outC}, Value: k.b}}}
}

func (k *conv) infer(sh []shape, s *step) (shape, error) {
	x := sh[s.in[0]]
	if x.rank != 4 || x.d[1] != k.inC {
		return shape{}, shapeErr("input %v, want [N %d H W]", x, k.inC)
	}
	h, w := x.d[2]+2*k.pad, x.d[3]+2*k.pad
	if h < k.k || w < k.k {
		return shape{}, shapeErr("input %v smaller than the kernel %d (padding %d)", x, k.k, k.pad)
	}
	o := mkShape(x.d[0], k.outC, (h-k.k)/k.stride+1, (w-k.k)/k.stride+1)
	// nn.Conv2d keeps the im2col columns of the whole batch.
	if cols := x.d[0] * k.inC * k.k * k.k * o.d[2] * o.d[3]; cols > maxElems {
		return shape{}, shapeErr("im2col of %d elements (at most %d)", cols, maxElems)
	}
	return o, nil
}

func (k *conv) run(m *Model, s *step) {
	st := m.state[s.idx].(*convState)
	st.x.Shape = m.shapes[s.in[0]].dims()
	st.x.Data = m.vals[s.in[0]]
	y := st.c.Forward(&st.x)
	m.vals[s.out] = y.Data[:y.Len()]
}

// pool is MaxPool or AveragePool over 2-D windows (NCHW), any kernel, strides and pads.
type pool struct {
	isMax      bool
	kh, kw     int
	sh, sw     int
	pads       [4]int // top, left, bottom, right (ONNX order: begins then ends)
	autoPad    string
	includePad bool
}

func newPool(_ *compiler, s *step, a attrs) (kernel, error) {
	k := &pool{isMax: s.opType == "MaxPool", sh: 1, sw: 1}
	known := []string{"auto_pad", "ceil_mode", "kernel_shape", "pads", "strides"}
	if k.isMax {
		known = append(known, "dilations", "storage_order") // storage_order only orders Indices
	} else {
		known = append(known, "count_include_pad")
	}
	if err := a.check(known...); err != nil {
		return nil, err
	}
	if err := wantInputs(s, 1, 1); err != nil {
		return nil, err
	}
	ks, ok, err := a.ints("kernel_shape")
	if err != nil {
		return nil, err
	}
	if !ok || len(ks) != 2 {
		return nil, unsupported("kernel_shape %v: only 2-D pooling", ks)
	}
	if ks[0] < 1 || ks[1] < 1 || ks[0] > maxElems || ks[1] > maxElems {
		return nil, shapeErr("kernel_shape %v", ks)
	}
	k.kh, k.kw = int(ks[0]), int(ks[1])
	if st, ok, err := a.ints("strides"); err != nil {
		return nil, err
	} else if ok {
		if len(st) != 2 || st[0] < 1 || st[1] < 1 || st[0] > maxElems || st[1] > maxElems {
			return nil, shapeErr("strides %v", st)
		}
		k.sh, k.sw = int(st[0]), int(st[1])
	}
	if p, ok, err := a.ints("pads"); err != nil {
		return nil, err
	} else if ok {
		if len(p) != 4 {
			return nil, shapeErr("pads %v (want 4 values)", p)
		}
		for i, v := range p {
			// A window wholly in the padding would have no value to pool.
			if v < 0 || v >= ks[i%2] {
				return nil, unsupported("pads = %v: each must be at least 0 and less than the kernel", p)
			}
			k.pads[i] = int(v)
		}
	}
	if k.autoPad, err = a.str("auto_pad", "NOTSET"); err != nil {
		return nil, err
	}
	switch k.autoPad {
	case "NOTSET":
	case "VALID", "SAME_UPPER", "SAME_LOWER":
		if a.has("pads") {
			return nil, unsupported("pads together with auto_pad %s", k.autoPad)
		}
	default:
		return nil, unsupported("auto_pad = %q", k.autoPad)
	}
	if c, err := a.int("ceil_mode", 0); err != nil || c != 0 {
		if err != nil {
			return nil, err
		}
		return nil, unsupported("ceil_mode = %d: only 0", c)
	}
	if d, ok, err := a.ints("dilations"); err != nil || ok && !allEqual(d, 1, 2) {
		if err != nil {
			return nil, err
		}
		return nil, unsupported("dilations = %v: only [1 1]", d)
	}
	cip, err := a.int("count_include_pad", 0)
	if err != nil {
		return nil, err
	}
	k.includePad = cip != 0
	return k, nil
}

func (k *pool) mode() mode { return modeBuffer }

// geometry gives the padding and output size for an input of h×w.
func (k *pool) geometry(h, w int) (pads [4]int, oh, ow int) {
	pads = k.pads
	switch k.autoPad {
	case "SAME_UPPER", "SAME_LOWER":
		for i, p := range []struct{ in, k, s int }{{h, k.kh, k.sh}, {w, k.kw, k.sw}} {
			out := (p.in + p.s - 1) / p.s
			total := max((out-1)*p.s+p.k-p.in, 0)
			begin := total / 2
			if k.autoPad == "SAME_LOWER" {
				begin = total - total/2
			}
			pads[i], pads[i+2] = begin, total-begin
		}
	}
	oh = (h+pads[0]+pads[2]-k.kh)/k.sh + 1
	ow = (w+pads[1]+pads[3]-k.kw)/k.sw + 1
	return pads, oh, ow
}

func (k *pool) infer(sh []shape, s *step) (shape, error) {
	x := sh[s.in[0]]
	if x.rank != 4 {
		return shape{}, unsupported("input %v: only 2-D pooling on NCHW", x)
	}
	pads, _, _ := k.geometry(x.d[2], x.d[3])
	if x.d[2]+pads[0]+pads[2] < k.kh || x.d[3]+pads[1]+pads[3] < k.kw {
		return shape{}, shapeErr("input %v smaller than the kernel %dx%d", x, k.kh, k.kw)
	}
	for i, p := range pads {
		if p >= []int{k.kh, k.kw}[i%2] {
			return shape{}, unsupported("padding %v not smaller than the kernel", pads)
		}
	}
	_, oh, ow := k.geometry(x.d[2], x.d[3])
	return mkShape(x.d[0], x.d[1], oh, ow), nil
}

func (k *pool) run(m *Model, s *step) {
	xs := &m.shapes[s.in[0]]
	x, y := m.vals[s.in[0]], m.vals[s.out]
	planes, h, w := xs.d[0]*xs.d[1], xs.d[2], xs.d[3]
	pads, oh, ow := k.geometry(h, w)
	for p := 0; p < planes; p++ {
		img := x[p*h*w : (p+1)*h*w]
		out := y[p*oh*ow : (p+1)*oh*ow]
		for oy := 0; oy < oh; oy++ {
			y0 := oy*k.sh - pads[0]
			y1 := min(y0+k.kh, h)
			y0 = max(y0, 0)
			for ox := 0; ox < ow; ox++ {
				x0 := ox*k.sw - pads[1]
				x1 := min(x0+k.kw, w)
				x0 = max(x0, 0)
				if k.isMax {
					v := float32(math.Inf(-1))
					for iy := y0; iy < y1; iy++ {
						for _, e := range img[iy*w+x0 : iy*w+x1] {
							if e > v || e != e {
								v = e
							}
						}
					}
					out[oy*ow+ox] = v
					continue
				}
				var sum float32
				for iy := y0; iy < y1; iy++ {
					for _, e := range img[iy*w+x0 : iy*w+x1] {
						sum += e
					}
				}
				n := (y1 - y0) * (x1 - x0)
				if k.includePad {
					n = k.kh * k.kw
				}
				out[oy*ow+ox] = sum / float32(n)
			}
		}
	}
}

// globalAveragePool averages each channel's spatial values: [N, C, ...] to [N, C, 1, ...].
type globalAveragePool struct{}

func newGlobalAveragePool(_ *compiler, s *step, a attrs) (kernel, error) {
	if err := wantInputs(s, 1, 1); err != nil {
		return nil, err
	}
	return &globalAveragePool{}, a.check()
}

func (k *globalAveragePool) mode() mode { return modeBuffer }

func (k *globalAveragePool) infer(sh []shape, s *step) (shape, error) {
	x := sh[s.in[0]]
	if x.rank < 3 {
		return shape{}, shapeErr("input %v, want [N C spatial...]", x)
	}
	o := x
	for i := 2; i < o.rank; i++ {
		o.d[i] = 1
	}
	return o, nil
}

func (k *globalAveragePool) run(m *Model, s *step) {
	xs := &m.shapes[s.in[0]]
	x, y := m.vals[s.in[0]], m.vals[s.out]
	inner := xs.prod(2, xs.rank)
	for p := range y {
		var sum float32
		for _, e := range x[p*inner : (p+1)*inner] {
			sum += e
		}
		y[p] = sum / float32(inner)
	}
}

// batchNorm is BatchNormalization in inference form: per channel, y = x·a + b with
// a = scale/√(var + ε) and b = B − mean·a, folded when compiling.
type batchNorm struct {
	a, b []float32
}

func newBatchNorm(cx *compiler, s *step, a attrs) (kernel, error) {
	if err := a.check("epsilon", "momentum", "spatial", "training_mode"); err != nil {
		return nil, err
	}
	if err := wantInputs(s, 5, 5); err != nil {
		return nil, err
	}
	if tm, err := a.int("training_mode", 0); err != nil || tm != 0 {
		if err != nil {
			return nil, err
		}
		return nil, unsupported("training_mode = %d: only inference (0)", tm)
	}
	if sp, err := a.int("spatial", 1); err != nil || sp != 1 {
		if err != nil {
			return nil, err
		}
		return nil, unsupported("spatial = %d: only 1", sp)
	}
	eps, err := a.float("epsilon", 1e-5)
	if err != nil {
		return nil, err
	}
	var p [4][]float32
	for i, name := range []string{"scale", "B", "mean", "var"} {
		f, _, err := cx.constFloats(s, 1+i, name)
		if err != nil {
			return nil, err
		}
		if i > 0 && len(f) != len(p[0]) {
			return nil, shapeErr("%s has %d values, scale %d", name, len(f), len(p[0]))
		}
		p[i] = f
	}
	k := &batchNorm{a: make([]float32, len(p[0])), b: make([]float32, len(p[0]))}
	for c := range k.a {
		inv := 1 / math.Sqrt(float64(p[3][c])+float64(eps))
		sc := float64(p[0][c]) * inv
		k.a[c] = float32(sc)
		k.b[c] = float32(float64(p[1][c]) - float64(p[2][c])*sc)
	}
	return k, nil
}

func (k *batchNorm) mode() mode { return modeBuffer }

func (k *batchNorm) infer(sh []shape, s *step) (shape, error) {
	x := sh[s.in[0]]
	if x.rank < 2 || x.d[1] != len(k.a) {
		return shape{}, shapeErr("input %v, want [N %d ...]", x, len(k.a))
	}
	return x, nil
}

func (k *batchNorm) run(m *Model, s *step) {
	xs := &m.shapes[s.in[0]]
	x, y := m.vals[s.in[0]], m.vals[s.out]
	c, inner := xs.d[1], xs.prod(2, xs.rank)
	for p := 0; p < len(y)/inner; p++ {
		a, b := k.a[p%c], k.b[p%c]
		xi, yi := x[p*inner:(p+1)*inner], y[p*inner:(p+1)*inner]
		for i, v := range xi {
			yi[i] = v*a + b
		}
	}
}

// layerNorm is LayerNormalization (opset 17) over the dimensions from axis on, run by an
// nn.LayerNorm per clone on the input seen as [rows, D].
type layerNorm struct {
	axis int64
	eps  float32
	w, b []float32
}

type layerNormState struct {
	ln  nn.LayerNorm
	x   nn.Tensor
	shp [2]int
}

func newLayerNorm(cx *compiler, s *step, a attrs) (kernel, error) {
	if err := a.check("axis", "epsilon", "stash_type"); err != nil {
		return nil, err
	}
	if err := wantInputs(s, 2, 3); err != nil {
		return nil, err
	}
	k := &layerNorm{}
	var err error
	if k.axis, err = a.int("axis", -1); err != nil {
		return nil, err
	}
	if k.eps, err = a.float("epsilon", 1e-5); err != nil {
		return nil, err
	}
	// stash_type 1 computes the statistics in float32; nn.LayerNorm uses float64, which
	// is at least as accurate.
	if k.w, _, err = cx.constFloats(s, 1, "scale"); err != nil {
		return nil, err
	}
	k.b = make([]float32, len(k.w))
	if len(s.in) == 3 && s.in[2] >= 0 {
		if k.b, _, err = cx.constFloats(s, 2, "bias"); err != nil {
			return nil, err
		}
		if len(k.b) != len(k.w) {
			return nil, shapeErr("bias has %d values, scale %d", len(k.b), len(k.w))
		}
	}
	return k, nil
}

func (k *layerNorm) mode() mode { return modeOwn }

func (k *layerNorm) newState() any {
	f := len(k.w)
	return &layerNormState{ln: nn.LayerNorm{F: f, Eps: k.eps,
		Weight: &nn.Param{Name: "weight", Shape: []int{f}, Value: k.w},
		Bias:   &nn.Param{Name: "bias", Shape: []int{f}, Value: k.b}}}
}

func (k *layerNorm) infer(sh []shape, s *step) (shape, error) {
	x := sh[s.in[0]]
	axis, ok := normAxis(k.axis, x.rank, false)
	if !ok {
		return shape{}, shapeErr("axis %d for input %v", k.axis, x)
	}
	if d := x.prod(axis, x.rank); d != len(k.w) {
		return shape{}, shapeErr("input %v normalised from axis %d has %d values per row, scale %d", x, axis, d, len(k.w))
	}
	return x, nil
}

func (k *layerNorm) run(m *Model, s *step) {
	st := m.state[s.idx].(*layerNormState)
	x := m.vals[s.in[0]]
	n := m.shapes[s.in[0]].numel()
	st.shp = [2]int{n / len(k.w), len(k.w)}
	st.x.Shape, st.x.Data = st.shp[:], x[:n]
	y := st.ln.Forward(&st.x)
	m.vals[s.out] = y.Data[:n]
}

// softmax is Softmax. From opset 13 it normalises along one axis (default −1); before 13
// the input is seen as a matrix [d0·…·d(axis−1), d(axis)·…] and each row is normalised
// (default axis 1). Both run nn.Softmax, the kernel of nn.SpatialSoftmax, row by row or
// with the stride of the axis.
type softmax struct {
	axis   int64
	legacy bool // opset < 13: flatten from axis on
}

func newSoftmax(cx *compiler, s *step, a attrs) (kernel, error) {
	if err := a.check("axis"); err != nil {
		return nil, err
	}
	if err := wantInputs(s, 1, 1); err != nil {
		return nil, err
	}
	k := &softmax{legacy: cx.opset < 13}
	def := int64(-1)
	if k.legacy {
		def = 1
	}
	var err error
	if k.axis, err = a.int("axis", def); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *softmax) mode() mode { return modeBuffer }

func (k *softmax) infer(sh []shape, s *step) (shape, error) {
	x := sh[s.in[0]]
	if _, ok := normAxis(k.axis, x.rank, false); !ok {
		return shape{}, shapeErr("axis %d for input %v", k.axis, x)
	}
	return x, nil
}

func (k *softmax) run(m *Model, s *step) {
	xs := &m.shapes[s.in[0]]
	x, y := m.vals[s.in[0]], m.vals[s.out]
	axis, _ := normAxis(k.axis, xs.rank, false)
	if k.legacy {
		n := xs.prod(axis, xs.rank)
		for r := 0; r < len(y); r += n {
			nn.Softmax(y[r:r+n], x[r:r+n], n, 1)
		}
		return
	}
	n, inner := xs.d[axis], xs.prod(axis+1, xs.rank)
	block := n * inner
	for o := 0; o < len(y); o += block {
		for j := 0; j < inner; j++ {
			nn.Softmax(y[o+j:o+block], x[o+j:o+block], n, inner)
		}
	}
}
