package nn

import (
	"fmt"
	"math"
)

// ReLU is max(0, x), elementwise, on any shape.
type ReLU struct {
	y, dx buffer
}

// NewReLU returns a ReLU layer.
func NewReLU() *ReLU { return &ReLU{} }

func checkAny(name string, in []int) error {
	if len(in) == 0 || len(in) > 4 {
		return fmt.Errorf("%s: input rank %d, want 1 to 4", name, len(in))
	}
	return nil
}

// sameOut is OutShape for layers whose output has their input's shape.
func sameOut(in []int, err error) ([]int, error) {
	if err != nil {
		return nil, err
	}
	return append([]int(nil), in...), nil
}

// OutShape implements Layer.
func (r *ReLU) OutShape(in []int) ([]int, error) { return sameOut(in, checkAny("relu", in)) }

// Forward implements Layer.
func (r *ReLU) Forward(x *Tensor) *Tensor {
	mustFit(checkAny("relu", x.Shape), x)
	y := r.y.set(x.Shape...)
	for i, v := range x.Data[:len(y.Data)] {
		y.Data[i] = max(v, 0)
	}
	return y
}

// Backward implements Layer. The gradient at 0 is 0, as in PyTorch.
func (r *ReLU) Backward(dy *Tensor, wantDx bool) *Tensor {
	if !wantDx {
		return nil
	}
	dx := r.dx.set(r.y.t.Shape...)
	// Branch-free: half of the activations are positive in no order a predictor could
	// learn, and the branch's mispredictions made this loop cost more than a LayerNorm.
	// The mask (a conditional move) keeps dy's bits where y > 0 and gives +0 elsewhere.
	g := dy.Data[:len(r.y.t.Data)]
	out := dx.Data[:len(r.y.t.Data)]
	for i, v := range r.y.t.Data {
		var m uint32
		if v > 0 {
			m = ^uint32(0)
		}
		out[i] = math.Float32frombits(math.Float32bits(g[i]) & m)
	}
	return dx
}

// Params implements Layer.
func (r *ReLU) Params() []*Param { return nil }

// Tanh is the hyperbolic tangent, elementwise, on any shape.
type Tanh struct {
	y, dx buffer
}

// NewTanh returns a Tanh layer.
func NewTanh() *Tanh { return &Tanh{} }

// OutShape implements Layer.
func (t *Tanh) OutShape(in []int) ([]int, error) { return sameOut(in, checkAny("tanh", in)) }

// Forward implements Layer.
func (t *Tanh) Forward(x *Tensor) *Tensor {
	mustFit(checkAny("tanh", x.Shape), x)
	y := t.y.set(x.Shape...)
	for i, v := range x.Data[:len(y.Data)] {
		y.Data[i] = float32(math.Tanh(float64(v)))
	}
	return y
}

// Backward implements Layer: dx = dy·(1 − y²).
func (t *Tanh) Backward(dy *Tensor, wantDx bool) *Tensor {
	if !wantDx {
		return nil
	}
	dx := t.dx.set(t.y.t.Shape...)
	for i, v := range t.y.t.Data {
		dx.Data[i] = dy.Data[i] * (1 - v*v)
	}
	return dx
}

// Params implements Layer.
func (t *Tanh) Params() []*Param { return nil }

// LayerNorm normalises the last dimension of its input ([N, F], or any rank with F last)
// to zero mean and unit variance (biased, as PyTorch), then scales by Weight and adds Bias
// (initially 1 and 0).
type LayerNorm struct {
	F            int
	Eps          float32
	Weight, Bias *Param

	xhat   []float32
	invstd []float32
	y, dx  buffer
}

// NewLayerNorm returns a LayerNorm over f features with PyTorch's eps 1e-5.
func NewLayerNorm(f int) *LayerNorm {
	l := &LayerNorm{F: f, Eps: 1e-5, Weight: newParam("weight", f), Bias: newParam("bias", f)}
	for i := range l.Weight.Value {
		l.Weight.Value[i] = 1
	}
	return l
}

func (l *LayerNorm) check(in []int) error {
	if err := checkAny("layernorm", in); err != nil {
		return err
	}
	if in[len(in)-1] != l.F {
		return fmt.Errorf("layernorm: input shape %v, last dimension must be %d", in, l.F)
	}
	return nil
}

// OutShape implements Layer.
func (l *LayerNorm) OutShape(in []int) ([]int, error) { return sameOut(in, l.check(in)) }

// Forward implements Layer.
func (l *LayerNorm) Forward(x *Tensor) *Tensor {
	mustFit(l.check(x.Shape), x)
	y := l.y.set(x.Shape...)
	rows := len(y.Data) / l.F
	l.xhat = grow(l.xhat, len(y.Data))
	l.invstd = grow(l.invstd, rows)
	for r := 0; r < rows; r++ {
		in := x.Data[r*l.F : (r+1)*l.F]
		var mean, vr float64
		for _, v := range in {
			mean += float64(v)
		}
		mean /= float64(l.F)
		for _, v := range in {
			d := float64(v) - mean
			vr += d * d
		}
		vr /= float64(l.F)
		inv := float32(1 / math.Sqrt(vr+float64(l.Eps)))
		l.invstd[r] = inv
		xh := l.xhat[r*l.F : (r+1)*l.F]
		out := y.Data[r*l.F : (r+1)*l.F]
		for i, v := range in {
			xh[i] = (v - float32(mean)) * inv
			out[i] = xh[i]*l.Weight.Value[i] + l.Bias.Value[i]
		}
	}
	return y
}

// Backward implements Layer.
func (l *LayerNorm) Backward(dy *Tensor, wantDx bool) *Tensor {
	n := len(l.y.t.Data)
	rows := n / l.F
	var dx *Tensor
	if wantDx {
		dx = l.dx.set(l.y.t.Shape...)
	}
	for r := 0; r < rows; r++ {
		g := dy.Data[r*l.F : (r+1)*l.F]
		xh := l.xhat[r*l.F : (r+1)*l.F]
		var sumG, sumGX float32
		for i := range g {
			l.Weight.Grad[i] += g[i] * xh[i]
			l.Bias.Grad[i] += g[i]
			d := g[i] * l.Weight.Value[i] // dL/dxhat
			sumG += d
			sumGX += d * xh[i]
		}
		if !wantDx {
			continue
		}
		// dx = invstd·(dxhat − mean(dxhat) − xhat·mean(dxhat·xhat))
		inv, f := l.invstd[r], float32(l.F)
		out := dx.Data[r*l.F : (r+1)*l.F]
		for i := range g {
			out[i] = inv * (g[i]*l.Weight.Value[i] - sumG/f - xh[i]*sumGX/f)
		}
	}
	return dx
}

// Params implements Layer.
func (l *LayerNorm) Params() []*Param { return []*Param{l.Weight, l.Bias} }
