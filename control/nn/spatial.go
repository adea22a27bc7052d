package nn

import (
	"fmt"
	"math"
)

// SpatialSoftmax is the spatial soft-argmax of Levine et al. (2016) and Finn et al.
// (2016): for every channel of an [N, C, H, W] input, a softmax over the H·W positions
// (temperature 1, no parameters), then the expected image coordinates under it. The
// output is [N, 2C] with each channel's pair next to each other:
//
//	y[n, 2c] = Σ p[n, c, i, j]·gx[j]    (x, along the width)
//	y[n, 2c+1] = Σ p[n, c, i, j]·gy[i]  (y, along the height)
//
// where gx[j] = −1 + (2j+1)/W and gy[i] = −1 + (2i+1)/H are the pixel centres of the
// layer's input grid mapped to (−1, 1): the left/top edge is −1, the right/bottom edge +1.
// See [SpatialGrid].
//
// Forward computes the softmax row by row ([Softmax]) and the expectations as one product
// of the [N·C, H·W] probabilities with the [H·W, 2] grid, which is what the ONNX export
// (Reshape, Softmax, MatMul, Flatten) computes.
type SpatialSoftmax struct {
	grid       []float32 // SpatialGrid(gh, gw)
	gh, gw     int
	n, c, h, w int       // the last Forward's input shape
	p          []float32 // the last Forward's probabilities, [N, C, H·W]
	y, dx      buffer
}

// NewSpatialSoftmax returns a SpatialSoftmax layer.
func NewSpatialSoftmax() *SpatialSoftmax { return &SpatialSoftmax{} }

func (s *SpatialSoftmax) check(in []int) error {
	if len(in) != 4 {
		return fmt.Errorf("spatialsoftmax: input shape %v, want [N C H W]", in)
	}
	if in[1] < 1 || in[2] < 1 || in[3] < 1 {
		return fmt.Errorf("spatialsoftmax: input shape %v has no channels or positions", in)
	}
	return nil
}

// OutShape implements Layer.
func (s *SpatialSoftmax) OutShape(in []int) ([]int, error) {
	if err := s.check(in); err != nil {
		return nil, err
	}
	return []int{in[0], 2 * in[1]}, nil
}

// SpatialGrid returns the coordinates SpatialSoftmax weighs an h×w map with, as an
// [h·w, 2] row-major matrix: row i·w+j (position (i, j), row-major like the map) holds
// x = −1 + (2j+1)/w and y = −1 + (2i+1)/h, computed in float64 and rounded once. The ONNX
// export stores exactly this matrix.
func SpatialGrid(h, w int) []float32 {
	g := make([]float32, 2*h*w)
	for i := 0; i < h; i++ {
		y := -1 + float64(2*i+1)/float64(h)
		for j := 0; j < w; j++ {
			k := 2 * (i*w + j)
			g[k] = float32(-1 + float64(2*j+1)/float64(w))
			g[k+1] = float32(y)
		}
	}
	return g
}

// Softmax writes the softmax of the n values x[0], x[stride], …, x[(n−1)·stride] into the
// same positions of y: the maximum is subtracted first (so no exponential overflows), the
// exponentials and their sum are float64, and each result is rounded to float32. A NaN in
// x makes every output NaN. y may be x. It is the kernel of SpatialSoftmax, exported for
// the model runtime (control/runtime), whose ONNX Softmax runs the same arithmetic.
func Softmax(y, x []float32, n, stride int) {
	if n <= 0 {
		return
	}
	m := x[0]
	for i := 1; i < n; i++ {
		if v := x[i*stride]; v > m {
			m = v
		}
	}
	mf := float64(m)
	var sum float64
	for i := 0; i < n; i++ {
		e := math.Exp(float64(x[i*stride]) - mf)
		sum += e
		y[i*stride] = float32(e)
	}
	inv := 1 / sum
	for i := 0; i < n; i++ {
		y[i*stride] = float32(float64(y[i*stride]) * inv)
	}
}

// Forward implements Layer.
func (s *SpatialSoftmax) Forward(x *Tensor) *Tensor {
	mustFit(s.check(x.Shape), x)
	s.n, s.c, s.h, s.w = x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	if s.h != s.gh || s.w != s.gw {
		s.grid, s.gh, s.gw = SpatialGrid(s.h, s.w), s.h, s.w
	}
	rows, hw := s.n*s.c, s.h*s.w
	s.p = grow(s.p, rows*hw)
	for r := 0; r < rows; r++ {
		Softmax(s.p[r*hw:(r+1)*hw], x.Data[r*hw:(r+1)*hw], hw, 1)
	}
	y := s.y.set(s.n, 2*s.c)
	gemm(false, false, rows, 2, hw, s.p, s.grid, 0, y.Data)
	return y
}

// Backward implements Layer. With g the output gradient of a channel, the gradient of the
// expectation with respect to probability k is g·grid[k], and through the softmax
// dx[k] = p[k]·(gx·(gridx[k] − y_x) + gy·(gridy[k] − y_y)), using the outputs y of
// Forward as the probability-weighted means.
func (s *SpatialSoftmax) Backward(dy *Tensor, wantDx bool) *Tensor {
	if !wantDx {
		return nil
	}
	rows, hw := s.n*s.c, s.h*s.w
	dx := s.dx.set(s.n, s.c, s.h, s.w)
	y := s.y.t.Data
	for r := 0; r < rows; r++ {
		gx, gy := dy.Data[2*r], dy.Data[2*r+1]
		mx, my := y[2*r], y[2*r+1]
		p, out := s.p[r*hw:(r+1)*hw], dx.Data[r*hw:(r+1)*hw]
		for k, pk := range p {
			out[k] = pk * (gx*(s.grid[2*k]-mx) + gy*(s.grid[2*k+1]-my))
		}
	}
	return dx
}

// Params implements Layer: none.
func (s *SpatialSoftmax) Params() []*Param { return nil }
