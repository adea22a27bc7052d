package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Conv2d is a 2-D convolution (PyTorch's cross-correlation) on NCHW inputs with square
// kernels, one stride and zero padding on every side. Weight is [OutC, InC, K, K].
//
// It is computed through im2col: each sample's receptive fields become the columns of a
// (InC·K·K)×(OH·OW) matrix, and one GEMM with the weight matrix gives that sample's output
// in NCHW order. Training keeps the column matrices of the batch for Backward.
type Conv2d struct {
	InC, OutC, K, Stride, Pad int
	Weight, Bias              *Param

	x     *Tensor
	oh    int
	ow    int
	cols  []float32 // N × (InC·K·K) × (OH·OW)
	dcol  []float32 // (InC·K·K) × (OH·OW), one sample at a time
	y, dx buffer
}

// NewConv2d returns a convolution initialised from rng as PyTorch does (U(±1/√(InC·K·K))).
// It panics on non-positive sizes or a negative padding.
func NewConv2d(inC, outC, k, stride, pad int, rng *rand.Rand) *Conv2d {
	if inC <= 0 || outC <= 0 || k <= 0 || stride <= 0 || pad < 0 {
		panic(fmt.Sprintf("nn.NewConv2d: bad sizes in=%d out=%d k=%d stride=%d pad=%d", inC, outC, k, stride, pad))
	}
	c := &Conv2d{InC: inC, OutC: outC, K: k, Stride: stride, Pad: pad,
		Weight: newParam("weight", outC, inC, k, k), Bias: newParam("bias", outC)}
	bound := 1 / math.Sqrt(float64(inC*k*k))
	uniform(c.Weight.Value, bound, rng)
	uniform(c.Bias.Value, bound, rng)
	return c
}

func (c *Conv2d) outSize(h, w int) (int, int) {
	return (h+2*c.Pad-c.K)/c.Stride + 1, (w+2*c.Pad-c.K)/c.Stride + 1
}

func (c *Conv2d) check(in []int) error {
	if len(in) != 4 || in[1] != c.InC {
		return fmt.Errorf("conv2d: input shape %v, want [N %d H W]", in, c.InC)
	}
	if in[2]+2*c.Pad < c.K || in[3]+2*c.Pad < c.K {
		return fmt.Errorf("conv2d: input %dx%d smaller than kernel %d (padding %d)", in[2], in[3], c.K, c.Pad)
	}
	return nil
}

// OutShape implements Layer.
func (c *Conv2d) OutShape(in []int) ([]int, error) {
	if err := c.check(in); err != nil {
		return nil, err
	}
	oh, ow := c.outSize(in[2], in[3])
	return []int{in[0], c.OutC, oh, ow}, nil
}

// Forward implements Layer.
func (c *Conv2d) Forward(x *Tensor) *Tensor {
	mustFit(c.check(x.Shape), x)
	n, h, w := x.Shape[0], x.Shape[2], x.Shape[3]
	c.x = x
	c.oh, c.ow = c.outSize(h, w)
	ohw, ckk := c.oh*c.ow, c.InC*c.K*c.K
	c.cols = grow(c.cols, n*ckk*ohw)
	y := c.y.set(n, c.OutC, c.oh, c.ow)
	for s := 0; s < n; s++ {
		col := c.cols[s*ckk*ohw : (s+1)*ckk*ohw]
		c.im2col(x.Data[s*c.InC*h*w:(s+1)*c.InC*h*w], h, w, col)
		ys := y.Data[s*c.OutC*ohw : (s+1)*c.OutC*ohw]
		for o := 0; o < c.OutC; o++ {
			b := c.Bias.Value[o]
			row := ys[o*ohw : (o+1)*ohw]
			for i := range row {
				row[i] = b
			}
		}
		gemm(false, false, c.OutC, ohw, ckk, c.Weight.Value, col, 1, ys)
	}
	return y
}

// Backward implements Layer.
func (c *Conv2d) Backward(dy *Tensor, wantDx bool) *Tensor {
	n, h, w := c.x.Shape[0], c.x.Shape[2], c.x.Shape[3]
	ohw, ckk := c.oh*c.ow, c.InC*c.K*c.K
	var dx *Tensor
	if wantDx {
		dx = c.dx.set(n, c.InC, h, w)
		clear(dx.Data)
		c.dcol = grow(c.dcol, ckk*ohw)
	}
	for s := 0; s < n; s++ {
		col := c.cols[s*ckk*ohw : (s+1)*ckk*ohw]
		dys := dy.Data[s*c.OutC*ohw : (s+1)*c.OutC*ohw]
		// dW += dy_s·colᵀ, db += Σ over positions.
		gemm(false, true, c.OutC, ckk, ohw, dys, col, 1, c.Weight.Grad)
		for o := 0; o < c.OutC; o++ {
			var sum float32
			for _, g := range dys[o*ohw : (o+1)*ohw] {
				sum += g
			}
			c.Bias.Grad[o] += sum
		}
		if wantDx {
			gemm(true, false, ckk, ohw, c.OutC, c.Weight.Value, dys, 0, c.dcol)
			c.col2im(c.dcol, h, w, dx.Data[s*c.InC*h*w:(s+1)*c.InC*h*w])
		}
	}
	return dx
}

// Params implements Layer.
func (c *Conv2d) Params() []*Param { return []*Param{c.Weight, c.Bias} }

// im2col writes the receptive fields of one CHW image: row (ch·K+ki)·K+kj, column
// oy·OW+ox holds x[ch, oy·S-P+ki, ox·S-P+kj], zero outside the image.
func (c *Conv2d) im2col(x []float32, h, w int, col []float32) {
	oh, ow, k, s, p := c.oh, c.ow, c.K, c.Stride, c.Pad
	r := 0
	for ch := 0; ch < c.InC; ch++ {
		img := x[ch*h*w : (ch+1)*h*w]
		for ki := 0; ki < k; ki++ {
			for kj := 0; kj < k; kj++ {
				dst := col[r*oh*ow : (r+1)*oh*ow]
				r++
				for oy := 0; oy < oh; oy++ {
					iy := oy*s - p + ki
					out := dst[oy*ow : (oy+1)*ow]
					if iy < 0 || iy >= h {
						clear(out)
						continue
					}
					src := img[iy*w : (iy+1)*w]
					for ox := range out {
						ix := ox*s - p + kj
						if ix < 0 || ix >= w {
							out[ox] = 0
						} else {
							out[ox] = src[ix]
						}
					}
				}
			}
		}
	}
}

// col2im adds the columns back onto one CHW image: the transpose of im2col.
func (c *Conv2d) col2im(col []float32, h, w int, x []float32) {
	oh, ow, k, s, p := c.oh, c.ow, c.K, c.Stride, c.Pad
	r := 0
	for ch := 0; ch < c.InC; ch++ {
		img := x[ch*h*w : (ch+1)*h*w]
		for ki := 0; ki < k; ki++ {
			for kj := 0; kj < k; kj++ {
				src := col[r*oh*ow : (r+1)*oh*ow]
				r++
				for oy := 0; oy < oh; oy++ {
					iy := oy*s - p + ki
					if iy < 0 || iy >= h {
						continue
					}
					dst := img[iy*w : (iy+1)*w]
					for ox, v := range src[oy*ow : (oy+1)*ow] {
						ix := ox*s - p + kj
						if ix >= 0 && ix < w {
							dst[ix] += v
						}
					}
				}
			}
		}
	}
}
