package runtime

import (
	"robodistill/control/nn"
)

// matmul is numpy's matmul: [..., M, K]·[..., K, N] with broadcast batch dimensions; a
// 1-D operand is a row (left) or a column (right) whose dimension is dropped.
type matmul struct{}

func newMatMul(_ *compiler, s *step, a attrs) (kernel, error) {
	if err := wantInputs(s, 2, 2); err != nil {
		return nil, err
	}
	return &matmul{}, a.check()
}

func (k *matmul) mode() mode { return modeBuffer }

// dims splits an operand into batch dimensions and its matrix (rows, cols); a 1-D left
// operand is one row, a 1-D right operand one column.
func matDims(s *shape, right bool) (batch shape, rows, cols int) {
	switch {
	case s.rank == 1 && right:
		return shape{}, s.d[0], 1
	case s.rank == 1:
		return shape{}, 1, s.d[0]
	}
	batch = mkShape(s.d[:s.rank-2]...)
	return batch, s.d[s.rank-2], s.d[s.rank-1]
}

func (k *matmul) infer(sh []shape, s *step) (shape, error) {
	a, b := &sh[s.in[0]], &sh[s.in[1]]
	if a.rank == 0 || b.rank == 0 {
		return shape{}, shapeErr("MatMul of a scalar (%v, %v)", *a, *b)
	}
	ba, m, ka := matDims(a, false)
	bb, kb, n := matDims(b, true)
	if ka != kb {
		return shape{}, shapeErr("%v·%v: inner dimensions %d and %d differ", *a, *b, ka, kb)
	}
	o, ok := broadcast(ba, bb)
	if !ok || o.rank+2 > maxRank {
		return shape{}, shapeErr("%v·%v: batch dimensions do not broadcast", *a, *b)
	}
	if a.rank > 1 {
		o.d[o.rank] = m
		o.rank++
	}
	if b.rank > 1 {
		o.d[o.rank] = n
		o.rank++
	}
	return o, nil
}

func (k *matmul) run(m *Model, s *step) {
	sa, sb := &m.shapes[s.in[0]], &m.shapes[s.in[1]]
	a, b, y := m.vals[s.in[0]], m.vals[s.in[1]], m.vals[s.out]
	ba, rows, kk := matDims(sa, false)
	bb, _, n := matDims(sb, true)
	if bb.rank == 0 {
		// One right matrix: the left operand's rows are all one product.
		rows *= ba.numel()
		nn.Gemm(false, false, rows, n, kk, 1, a, b, 0, y)
		return
	}
	ob, _ := broadcast(ba, bb)
	r := ob.rank
	stA, stB := ba.strides(r), bb.strides(r)
	sizeA, sizeB, sizeY := rows*kk, kk*n, rows*n
	var idx [maxRank]int
	offA, offB := 0, 0
	for o := 0; o < len(y); o += sizeY {
		nn.Gemm(false, false, rows, n, kk, 1, a[offA*sizeA:(offA+1)*sizeA], b[offB*sizeB:(offB+1)*sizeB], 0, y[o:o+sizeY])
		for j := r - 1; j >= 0; j-- {
			idx[j]++
			offA += stA[j]
			offB += stB[j]
			if idx[j] < ob.d[j] {
				break
			}
			offA -= stA[j] * ob.d[j]
			offB -= stB[j] * ob.d[j]
			idx[j] = 0
		}
	}
}

// gemm is Y = alpha·A'·B' + beta·C with A', B' optionally transposed and C broadcast to
// [M, N] (unidirectionally). As in ONNX Runtime, C is copied into Y and the product added
// by one BLAS call with beta.
type gemm struct {
	alpha, beta float32
	ta, tb      bool
}

func newGemm(_ *compiler, s *step, a attrs) (kernel, error) {
	if err := a.check("alpha", "beta", "transA", "transB"); err != nil {
		return nil, err
	}
	if err := wantInputs(s, 2, 3); err != nil {
		return nil, err
	}
	k := &gemm{}
	var err error
	if k.alpha, err = a.float("alpha", 1); err != nil {
		return nil, err
	}
	if k.beta, err = a.float("beta", 1); err != nil {
		return nil, err
	}
	for _, t := range []struct {
		name string
		p    *bool
	}{{"transA", &k.ta}, {"transB", &k.tb}} {
		v, err := a.int(t.name, 0)
		if err != nil {
			return nil, err
		}
		if v != 0 && v != 1 {
			return nil, unsupported("%s = %d (want 0 or 1)", t.name, v)
		}
		*t.p = v == 1
	}
	return k, nil
}

func (k *gemm) mode() mode { return modeBuffer }

func (k *gemm) hasC(s *step) bool { return len(s.in) == 3 && s.in[2] >= 0 }

func (k *gemm) dims(a, b *shape) (m, n, kk, kb int) {
	m, kk = a.d[0], a.d[1]
	if k.ta {
		m, kk = kk, m
	}
	kb, n = b.d[0], b.d[1]
	if k.tb {
		kb, n = n, kb
	}
	return m, n, kk, kb
}

func (k *gemm) infer(sh []shape, s *step) (shape, error) {
	a, b := &sh[s.in[0]], &sh[s.in[1]]
	if a.rank != 2 || b.rank != 2 {
		return shape{}, shapeErr("A %v and B %v must be matrices", *a, *b)
	}
	m, n, kk, kb := k.dims(a, b)
	if kk != kb {
		return shape{}, shapeErr("A' %dx%d and B' %dx%d do not multiply", m, kk, kb, n)
	}
	o := mkShape(m, n)
	if k.hasC(s) {
		c := sh[s.in[2]]
		if bc, ok := broadcast(c, o); !ok || !bc.equal(o) || c.rank > 2 {
			return shape{}, shapeErr("C %v does not broadcast to [%d %d]", c, m, n)
		}
	}
	return o, nil
}

func (k *gemm) run(m *Model, s *step) {
	sa, sb := &m.shapes[s.in[0]], &m.shapes[s.in[1]]
	rows, n, kk, _ := k.dims(sa, sb)
	y := m.vals[s.out]
	beta := float32(0)
	if k.hasC(s) && k.beta != 0 {
		beta = k.beta
		sc := &m.shapes[s.in[2]]
		c := m.vals[s.in[2]]
		st := sc.strides(2)
		for i := 0; i < rows; i++ {
			row := y[i*n : (i+1)*n]
			ci := c[i*st[0]:]
			if st[1] == 0 {
				v := ci[0]
				for j := range row {
					row[j] = v
				}
			} else {
				copy(row, ci[:n])
			}
		}
	}
	nn.Gemm(k.ta, k.tb, rows, n, kk, k.alpha, m.vals[s.in[0]], m.vals[s.in[1]], beta, y)
}
