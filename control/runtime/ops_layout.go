package runtime

// view kernels alias their input: Flatten, Reshape and Identity only change the shape.
type view struct {
	flatten  bool
	axis     int64   // Flatten
	target   []int64 // Reshape; nil for Identity and Flatten
	reshape  bool
	identity bool
}

func newFlatten(_ *compiler, s *step, a attrs) (kernel, error) {
	if err := a.check("axis"); err != nil {
		return nil, err
	}
	if err := wantInputs(s, 1, 1); err != nil {
		return nil, err
	}
	axis, err := a.int("axis", 1)
	return &view{flatten: true, axis: axis}, err
}

func newIdentity(_ *compiler, s *step, a attrs) (kernel, error) {
	if err := wantInputs(s, 1, 1); err != nil {
		return nil, err
	}
	return &view{identity: true}, a.check()
}

// newReshape reads the target shape, which must be a constant: 0 copies the input's
// dimension, −1 takes what is left.
func newReshape(cx *compiler, s *step, a attrs) (kernel, error) {
	if err := a.check("allowzero"); err != nil {
		return nil, err
	}
	if err := wantInputs(s, 2, 2); err != nil {
		return nil, err
	}
	t, _, err := cx.constInts(s, 1, "shape")
	if err != nil {
		return nil, err
	}
	if len(t) > maxRank {
		return nil, shapeErr("target shape %v has rank %d (at most %d)", t, len(t), maxRank)
	}
	az, err := a.int("allowzero", 0)
	if err != nil {
		return nil, err
	}
	neg := 0
	for _, d := range t {
		switch {
		case d == 0 && az != 0:
			return nil, unsupported("allowzero = 1 with a 0 in the target shape %v (empty tensors)", t)
		case d == -1:
			neg++
		case d < -1 || d > maxElems:
			return nil, shapeErr("target shape %v", t)
		}
	}
	if neg > 1 {
		return nil, shapeErr("target shape %v has more than one -1", t)
	}
	return &view{reshape: true, target: t}, nil
}

func (k *view) mode() mode { return modeView }

func (k *view) infer(sh []shape, s *step) (shape, error) {
	x := sh[s.in[0]]
	switch {
	case k.flatten:
		axis, ok := normAxis(k.axis, x.rank, true)
		if !ok {
			return shape{}, shapeErr("axis %d for input %v", k.axis, x)
		}
		return mkShape(x.prod(0, axis), x.prod(axis, x.rank)), nil
	case k.reshape:
		n := x.numel()
		o := shape{rank: len(k.target)}
		known, infer := 1, -1
		for i, d := range k.target {
			switch {
			case d == 0:
				if i >= x.rank {
					return shape{}, shapeErr("target %v copies dimension %d of %v", k.target, i, x)
				}
				o.d[i] = x.d[i]
			case d == -1:
				infer = i
				continue
			default:
				o.d[i] = int(d)
			}
			known *= o.d[i]
			if known > maxElems {
				return shape{}, shapeErr("target %v for %v", k.target, x)
			}
		}
		if infer >= 0 {
			if known == 0 || n%known != 0 {
				return shape{}, shapeErr("cannot reshape %v to %v", x, k.target)
			}
			o.d[infer] = n / known
			known = n
		}
		if known != n {
			return shape{}, shapeErr("cannot reshape %v (%d values) to %v", x, n, o)
		}
		return o, nil
	}
	return x, nil
}

func (k *view) run(m *Model, s *step) {
	m.vals[s.out] = m.vals[s.in[0]][:m.shapes[s.out].numel()]
}

// concat joins its inputs along axis.
type concat struct{ axis int64 }

func newConcat(_ *compiler, s *step, a attrs) (kernel, error) {
	if err := a.check("axis"); err != nil {
		return nil, err
	}
	if !a.has("axis") {
		return nil, shapeErr("attribute axis is required")
	}
	if len(s.in) == 0 {
		return nil, shapeErr("no inputs")
	}
	for i, j := range s.in {
		if j < 0 {
			return nil, shapeErr("input %d is empty", i)
		}
	}
	axis, err := a.int("axis", 0)
	return &concat{axis: axis}, err
}

func (k *concat) mode() mode { return modeBuffer }

func (k *concat) infer(sh []shape, s *step) (shape, error) {
	o := sh[s.in[0]]
	axis, ok := normAxis(k.axis, o.rank, false)
	if !ok {
		return shape{}, shapeErr("axis %d for input %v", k.axis, o)
	}
	for _, j := range s.in[1:] {
		x := sh[j]
		same := x.rank == o.rank
		for i := 0; same && i < x.rank; i++ {
			same = i == axis || x.d[i] == o.d[i]
		}
		if !same {
			return shape{}, shapeErr("inputs %v and %v differ outside axis %d", sh[s.in[0]], x, axis)
		}
		if o.d[axis] += x.d[axis]; o.d[axis] > maxElems {
			return shape{}, shapeErr("output too large")
		}
	}
	return o, nil
}

func (k *concat) run(m *Model, s *step) {
	so := &m.shapes[s.out]
	axis, _ := normAxis(k.axis, so.rank, false)
	outer, inner := so.prod(0, axis), so.prod(axis+1, so.rank)
	y := m.vals[s.out]
	o := 0
	for p := 0; p < outer; p++ {
		for _, j := range s.in {
			n := m.shapes[j].d[axis] * inner
			copy(y[o:o+n], m.vals[j][p*n:(p+1)*n])
			o += n
		}
	}
}

// slice is Slice: starts, ends, axes and steps from constant inputs (opset 10 and later)
// or attributes (before), with ONNX's clamping of out-of-range and negative indices.
type slice struct {
	starts, ends, axes, steps []int64
}

func newSlice(cx *compiler, s *step, a attrs) (kernel, error) {
	k := &slice{}
	if cx.opset < 10 {
		if err := a.check("starts", "ends", "axes"); err != nil {
			return nil, err
		}
		if err := wantInputs(s, 1, 1); err != nil {
			return nil, err
		}
		var ok1, ok2 bool
		var err error
		if k.starts, ok1, err = a.ints("starts"); err != nil {
			return nil, err
		}
		if k.ends, ok2, err = a.ints("ends"); err != nil {
			return nil, err
		}
		if !ok1 || !ok2 {
			return nil, shapeErr("attributes starts and ends are required")
		}
		if k.axes, _, err = a.ints("axes"); err != nil {
			return nil, err
		}
	} else {
		if err := a.check(); err != nil {
			return nil, err
		}
		if err := wantInputs(s, 3, 5); err != nil {
			return nil, err
		}
		var err error
		if k.starts, _, err = cx.constInts(s, 1, "starts"); err != nil {
			return nil, err
		}
		if k.ends, _, err = cx.constInts(s, 2, "ends"); err != nil {
			return nil, err
		}
		if k.axes, _, err = cx.constInts(s, 3, "axes"); err != nil {
			return nil, err
		}
		if k.steps, _, err = cx.constInts(s, 4, "steps"); err != nil {
			return nil, err
		}
	}
	n := len(k.starts)
	if len(k.ends) != n || k.axes != nil && len(k.axes) != n || k.steps != nil && len(k.steps) != n || n > maxRank {
		return nil, shapeErr("starts %v, ends %v, axes %v and steps %v differ in length", k.starts, k.ends, k.axes, k.steps)
	}
	for _, st := range k.steps {
		if st == 0 {
			return nil, shapeErr("a step of 0")
		}
	}
	return k, nil
}

func (k *slice) mode() mode { return modeBuffer }

// ranges gives, for each dimension of an input of shape x, the first index, the step and
// the count of the slice.
func (k *slice) ranges(x *shape) (start, step [maxRank]int, o shape, err error) {
	o = *x
	for i := 0; i < x.rank; i++ {
		step[i] = 1
	}
	var seen [maxRank]bool
	for i := range k.starts {
		ax := int64(i)
		if k.axes != nil {
			ax = k.axes[i]
		}
		d, ok := normAxis(ax, x.rank, false)
		if !ok || seen[d] {
			return start, step, o, shapeErr("axes %v for input %v", k.axes, *x)
		}
		seen[d] = true
		st := int64(1)
		if k.steps != nil {
			st = k.steps[i]
		}
		dim := int64(x.d[d])
		b, e := k.starts[i], k.ends[i]
		if b < 0 {
			b += dim
		}
		if e < 0 {
			e += dim
		}
		// A step beyond the dimension takes one element, as the largest would.
		st = min(max(st, -maxElems-1), maxElems+1)
		var n int64
		if st > 0 {
			b, e = min(max(b, 0), dim), min(max(e, 0), dim)
			if e > b {
				n = (e - b + st - 1) / st
			}
		} else {
			b, e = min(max(b, 0), dim-1), min(max(e, -1), dim-1)
			if b > e {
				n = (b - e - st - 1) / -st
			}
		}
		start[d], step[d], o.d[d] = int(b), int(st), int(n)
	}
	return start, step, o, nil
}

func (k *slice) infer(sh []shape, s *step) (shape, error) {
	_, _, o, err := k.ranges(&sh[s.in[0]])
	return o, err
}

func (k *slice) run(m *Model, s *step) {
	xs := &m.shapes[s.in[0]]
	start, step, o, _ := k.ranges(xs)
	x, y := m.vals[s.in[0]], m.vals[s.out]
	r := o.rank
	var stride [maxRank]int
	acc := 1
	for i := r - 1; i >= 0; i-- {
		stride[i] = acc
		acc *= xs.d[i]
	}
	base := 0
	for i := 0; i < r; i++ {
		base += start[i] * stride[i]
	}
	if r == 0 {
		y[0] = x[0]
		return
	}
	inner, is := o.d[r-1], step[r-1]*stride[r-1]
	var idx [maxRank]int
	off := base
	for p := 0; p < len(y); p += inner {
		row := y[p : p+inner]
		for j := range row {
			row[j] = x[off+j*is]
		}
		for j := r - 2; j >= 0; j-- {
			idx[j]++
			off += step[j] * stride[j]
			if idx[j] < o.d[j] {
				break
			}
			off -= step[j] * stride[j] * o.d[j]
			idx[j] = 0
		}
	}
}
