package runtime

// FLOPs counts the floating-point operations of one Run at batch 1, the way nn.FLOPs
// counts a network: two per multiply-add of Conv, MatMul and Gemm (plus one per output
// for a bias), one per output element of element-wise ops, eight per element of
// LayerNormalization, BatchNormalization's four and Softmax's four (maximum, exponential
// of the difference, sum, division, as nn.FLOPs counts SpatialSoftmax's softmax);
// reshaping ops cost nothing. It is the figure set against a VLM query's cost per step.
func (m *Model) FLOPs() int64 {
	c := m.c
	sh := make([]shape, len(m.shapes))
	copy(sh, m.shapes)
	sh[c.input] = c.inShape
	sh[c.input].d[0] = 1
	var total int64
	for i := range c.steps {
		s := &c.steps[i]
		o, err := s.k.infer(sh, s)
		if err != nil {
			return -1 // Load inferred batch 1 already; not reached
		}
		sh[s.out] = o
		n := int64(o.numel())
		in := func(k int) shape { return sh[s.in[k]] }
		switch s.opType {
		case "Conv":
			w := in(1)
			macs := int64(w.numel() / w.d[0]) // Cin·kh·kw per output
			total += n * 2 * macs
			if len(s.in) > 2 && s.in[2] >= 0 {
				total += n
			}
		case "MatMul":
			a := in(0)
			total += n * 2 * int64(a.d[a.rank-1])
		case "Gemm":
			a := in(0)
			k := a.d[1]
			if g, ok := s.k.(*gemm); ok && g.ta {
				k = a.d[0]
			}
			total += n * (2*int64(k) + 1)
		case "Flatten", "Reshape", "Identity", "Constant", "Concat", "Slice":
		case "LayerNormalization":
			total += 8 * n
		case "BatchNormalization", "Softmax":
			total += 4 * n
		default: // element-wise and pooling ops: one per output
			total += n
		}
	}
	return total
}
