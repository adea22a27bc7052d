package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// Param is a learnable tensor and its gradient. Value and Grad are the layer's own storage:
// write into them (a loader copies), never replace the slices.
type Param struct {
	Name  string
	Shape []int
	Value []float32
	Grad  []float32
}

func newParam(name string, shape ...int) *Param {
	n := numel(shape)
	return &Param{Name: name, Shape: append([]int(nil), shape...), Value: make([]float32, n), Grad: make([]float32, n)}
}

// Layer is one differentiable step of a network.
type Layer interface {
	// Forward computes the output for a batch. The result is owned by the layer and valid
	// until its next Forward.
	Forward(x *Tensor) *Tensor
	// Backward takes dL/dy for the last Forward's output, adds the parameter gradients
	// into Param.Grad and returns dL/dx (owned by the layer), or nil when !wantDx.
	Backward(dy *Tensor, wantDx bool) *Tensor
	// Params lists the learnable parameters (none for activations).
	Params() []*Param
	// OutShape is the output shape for an input shape, or an error saying why the input
	// does not fit. Forward panics on an input OutShape rejects.
	OutShape(in []int) ([]int, error)
}

// ZeroGrad clears the gradients of params.
func ZeroGrad(params []*Param) {
	for _, p := range params {
		clear(p.Grad)
	}
}

// NumParams counts the scalar parameters.
func NumParams(params []*Param) int {
	n := 0
	for _, p := range params {
		n += len(p.Value)
	}
	return n
}

// uniform fills s from U(-bound, bound): PyTorch's default initialisation for Linear and
// Conv2d (kaiming_uniform with a=√5 gives bound 1/√fan_in for weights and biases alike).
// The numbers come from rng, so a seed fixes them; they are not PyTorch's numbers.
func uniform(s []float32, bound float64, rng *rand.Rand) {
	for i := range s {
		s[i] = float32((2*rng.Float64() - 1) * bound)
	}
}

// mustFit panics with err, the result of a layer's shape check, or when x's data is
// shorter than its shape. The checks allocate nothing unless they fail.
func mustFit(err error, x *Tensor) {
	if err != nil {
		panic("nn: " + err.Error())
	}
	if len(x.Data) < x.Len() {
		panic(fmt.Sprintf("nn: tensor %v has %d values", x.Shape, len(x.Data)))
	}
}

// Sequential runs layers one after another.
type Sequential struct {
	Layers []Layer
	params []*Param
}

// NewSequential chains layers. Its parameters are named by layer index, as in PyTorch's
// nn.Sequential ("0.weight", "2.bias").
func NewSequential(layers ...Layer) *Sequential {
	s := &Sequential{Layers: layers}
	for i, l := range layers {
		for _, p := range l.Params() {
			q := *p
			q.Name = strconv.Itoa(i) + "." + p.Name
			s.params = append(s.params, &q)
		}
	}
	return s
}

// Forward runs every layer.
func (s *Sequential) Forward(x *Tensor) *Tensor {
	for _, l := range s.Layers {
		x = l.Forward(x)
	}
	return x
}

// Backward runs every layer's Backward in reverse order. Only the first layer is asked
// for an input gradient when wantDx is false.
func (s *Sequential) Backward(dy *Tensor, wantDx bool) *Tensor {
	for i := len(s.Layers) - 1; i >= 0; i-- {
		dy = s.Layers[i].Backward(dy, wantDx || i > 0)
	}
	return dy
}

// Params lists every layer's parameters under their indexed names.
func (s *Sequential) Params() []*Param { return s.params }

// ZeroGrad clears every gradient.
func (s *Sequential) ZeroGrad() { ZeroGrad(s.params) }

// OutShape checks the whole chain; the error names the failing layer.
func (s *Sequential) OutShape(in []int) ([]int, error) {
	shape := in
	for i, l := range s.Layers {
		out, err := l.OutShape(shape)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%T): %w", i, l, err)
		}
		shape = out
	}
	return shape, nil
}

// Flatten reshapes [N, d1, d2, …] to [N, d1·d2·…] without copying.
type Flatten struct {
	in      [8]int
	rank    int
	out, dx Tensor
	oshape  [2]int
}

// NewFlatten returns a Flatten layer.
func NewFlatten() *Flatten { return &Flatten{} }

func (f *Flatten) check(in []int) error {
	if len(in) < 2 || len(in) > len(f.in) {
		return fmt.Errorf("flatten: input rank %d, want 2 to %d", len(in), len(f.in))
	}
	return nil
}

// OutShape implements Layer.
func (f *Flatten) OutShape(in []int) ([]int, error) {
	if err := f.check(in); err != nil {
		return nil, err
	}
	return []int{in[0], numel(in[1:])}, nil
}

// Forward implements Layer.
func (f *Flatten) Forward(x *Tensor) *Tensor {
	mustFit(f.check(x.Shape), x)
	f.rank = copy(f.in[:], x.Shape)
	f.oshape = [2]int{x.Shape[0], numel(x.Shape[1:])}
	f.out.Shape = f.oshape[:]
	f.out.Data = x.Data[:x.Len()]
	return &f.out
}

// Backward implements Layer.
func (f *Flatten) Backward(dy *Tensor, wantDx bool) *Tensor {
	if !wantDx {
		return nil
	}
	f.dx.Shape = f.in[:f.rank]
	f.dx.Data = dy.Data[:numel(f.dx.Shape)]
	return &f.dx
}

// Params implements Layer.
func (f *Flatten) Params() []*Param { return nil }

// Linear is y = x·Wᵀ + b on [N, In] inputs, W of shape [Out, In] (PyTorch's layout).
type Linear struct {
	In, Out      int
	Weight, Bias *Param

	x     *Tensor
	y, dx buffer
}

// NewLinear returns a Linear layer initialised from rng as PyTorch does (U(±1/√In)).
func NewLinear(in, out int, rng *rand.Rand) *Linear {
	l := &Linear{In: in, Out: out, Weight: newParam("weight", out, in), Bias: newParam("bias", out)}
	bound := 1 / math.Sqrt(float64(in))
	uniform(l.Weight.Value, bound, rng)
	uniform(l.Bias.Value, bound, rng)
	return l
}

func (l *Linear) check(in []int) error {
	if len(in) != 2 || in[1] != l.In {
		return fmt.Errorf("linear: input shape %v, want [N %d]", in, l.In)
	}
	return nil
}

// OutShape implements Layer.
func (l *Linear) OutShape(in []int) ([]int, error) {
	if err := l.check(in); err != nil {
		return nil, err
	}
	return []int{in[0], l.Out}, nil
}

// Forward implements Layer.
func (l *Linear) Forward(x *Tensor) *Tensor {
	mustFit(l.check(x.Shape), x)
	n := x.Shape[0]
	l.x = x
	y := l.y.set(n, l.Out)
	for i := 0; i < n; i++ {
		copy(y.Data[i*l.Out:(i+1)*l.Out], l.Bias.Value)
	}
	gemm(false, true, n, l.Out, l.In, x.Data, l.Weight.Value, 1, y.Data)
	return y
}

// Backward implements Layer.
func (l *Linear) Backward(dy *Tensor, wantDx bool) *Tensor {
	n := l.x.Shape[0]
	// dW += dyᵀ·x, db += Σ rows of dy.
	gemm(true, false, l.Out, l.In, n, dy.Data, l.x.Data, 1, l.Weight.Grad)
	for i := 0; i < n; i++ {
		row := dy.Data[i*l.Out : (i+1)*l.Out]
		for j, g := range row {
			l.Bias.Grad[j] += g
		}
	}
	if !wantDx {
		return nil
	}
	dx := l.dx.set(n, l.In)
	gemm(false, false, n, l.In, l.Out, dy.Data, l.Weight.Value, 0, dx.Data)
	return dx
}

// Params implements Layer.
func (l *Linear) Params() []*Param { return []*Param{l.Weight, l.Bias} }
