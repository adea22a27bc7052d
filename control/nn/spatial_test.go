package nn

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// refSpatialFwd is SpatialSoftmax in float64 with plain loops: per channel a softmax over
// the positions (maximum subtracted), then the expected coordinates, x then y.
func refSpatialFwd(x []float64, n, c, h, w int) (y, p []float64) {
	hw := h * w
	y, p = make([]float64, 2*n*c), make([]float64, len(x))
	for r := 0; r < n*c; r++ {
		row := x[r*hw : (r+1)*hw]
		m := math.Inf(-1)
		for _, v := range row {
			m = math.Max(m, v)
		}
		var sum float64
		for k, v := range row {
			p[r*hw+k] = math.Exp(v - m)
			sum += p[r*hw+k]
		}
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				k := r*hw + i*w + j
				p[k] /= sum
				y[2*r] += p[k] * (-1 + float64(2*j+1)/float64(w))
				y[2*r+1] += p[k] * (-1 + float64(2*i+1)/float64(h))
			}
		}
	}
	return y, p
}

// refSpatialBwd differentiates by the full softmax Jacobian, term by term:
// dL/dp[k] = gx·x(k) + gy·y(k), dL/dx[j] = Σ_k dL/dp[k]·p[k]·(δ_kj − p[j]).
func refSpatialBwd(x, dy []float64, n, c, h, w int) []float64 {
	hw := h * w
	_, p := refSpatialFwd(x, n, c, h, w)
	dx := make([]float64, len(x))
	for r := 0; r < n*c; r++ {
		dp := make([]float64, hw)
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				dp[i*w+j] = dy[2*r]*(-1+float64(2*j+1)/float64(w)) + dy[2*r+1]*(-1+float64(2*i+1)/float64(h))
			}
		}
		pr := p[r*hw : (r+1)*hw]
		for j := 0; j < hw; j++ {
			var s float64
			for k := 0; k < hw; k++ {
				delta := 0.0
				if k == j {
					delta = 1
				}
				s += dp[k] * pr[k] * (delta - pr[j])
			}
			dx[r*hw+j] = s
		}
	}
	return dx
}

func TestSpatialSoftmaxGradients(t *testing.T) {
	cases := []struct {
		n, c, h, w int
		scale      float64 // input magnitude: large values make the softmax peaked
	}{
		{2, 3, 4, 5, 1},
		{1, 2, 7, 3, 3},
		{3, 1, 6, 6, 4},
		// Peaked: most probabilities are below 1e-20, and so are their gradients, which
		// central differences cannot resolve (the noise of f is ~1e-16/h). Only the
		// kernels are compared with the reference here.
		{2, 2, 5, 4, 30},
		{2, 2, 1, 1, 1}, // one position: the output is (0, 0) and the gradient 0
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("n%d_c%d_%dx%d_scale%g", tc.n, tc.c, tc.h, tc.w, tc.scale), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(8, uint64(tc.h*10+tc.w)))
			x := roundTrip(randSlice(rng, tc.n*tc.c*tc.h*tc.w, tc.scale))
			y, _ := refSpatialFwd(x, tc.n, tc.c, tc.h, tc.w)
			dy := roundTrip(randSlice(rng, len(y), 1))
			dx := refSpatialBwd(x, dy, tc.n, tc.c, tc.h, tc.w)
			loss := func() float64 {
				y, _ := refSpatialFwd(x, tc.n, tc.c, tc.h, tc.w)
				return dot(dy, y)
			}
			if tc.h*tc.w > 1 && tc.scale <= 4 {
				checkFD(t, "dx", loss, x, dx, rng)
			}
			eachBackend(t, func(t *testing.T) {
				l := NewSpatialSoftmax()
				in := &Tensor{Shape: []int{tc.n, tc.c, tc.h, tc.w}, Data: to32(x)}
				out := l.Forward(in)
				if !sameShape(out.Shape, []int{tc.n, 2 * tc.c}) {
					t.Fatalf("output shape %v", out.Shape)
				}
				if tc.h*tc.w == 1 {
					for i, v := range append(out.Data, l.Backward(&Tensor{Shape: out.Shape, Data: to32(dy)}, true).Data...) {
						if v != 0 {
							t.Fatalf("one position: value %d is %g, want 0", i, v)
						}
					}
					return
				}
				checkClose(t, "y", out.Data, y, kernelTol)
				for rep := 1; rep <= 2; rep++ { // no state changes between Backward calls
					gx := l.Backward(&Tensor{Shape: out.Shape, Data: to32(dy)}, true)
					if !sameShape(gx.Shape, in.Shape) {
						t.Fatalf("dx shape %v", gx.Shape)
					}
					checkClose(t, "dx", gx.Data, dx, kernelTol)
				}
				if l.Backward(&Tensor{Shape: out.Shape, Data: to32(dy)}, false) != nil {
					t.Error("Backward(wantDx=false) returned a gradient")
				}
			})
		})
	}
}

// TestSpatialSoftmaxCoordinates pins the convention: a peak at row i, column j gives
// (−1 + (2j+1)/W, −1 + (2i+1)/H), x first, and a flat map the centre.
func TestSpatialSoftmaxCoordinates(t *testing.T) {
	g := SpatialGrid(2, 4)
	want := []float32{-0.75, -0.5, -0.25, -0.5, 0.25, -0.5, 0.75, -0.5, -0.75, 0.5, -0.25, 0.5, 0.25, 0.5, 0.75, 0.5}
	if !equal32(g, want) {
		t.Fatalf("SpatialGrid(2, 4) = %v, want %v", g, want)
	}
	const h, w = 5, 7
	l := NewSpatialSoftmax()
	x := NewTensor(2, 2, h, w)
	// Sample 0: channel 0 peaks at (1, 5), channel 1 at (4, 0). Sample 1 is flat.
	x.Data[0*h*w+1*w+5] = 100
	x.Data[1*h*w+4*w+0] = 100
	y := l.Forward(x)
	for i, want := range []float64{-1 + 11.0/w, -1 + 3.0/h, -1 + 1.0/w, -1 + 9.0/h, 0, 0, 0, 0} {
		if math.Abs(float64(y.Data[i])-want) > 1e-6 {
			t.Errorf("output %d = %g, want %g", i, y.Data[i], want)
		}
	}
	// The softmax does not overflow on large inputs: only differences matter.
	for i := range x.Data {
		x.Data[i] += 1e4
	}
	if y2 := l.Forward(x); math.Abs(float64(y2.Data[0])-(-1+11.0/w)) > 1e-6 {
		t.Errorf("shifted by 1e4: %v", y2.Data)
	}
}

func TestSoftmaxKernel(t *testing.T) {
	// Strided: the softmax of column 1 of a 3×2 matrix, in place; column 0 is untouched.
	x := []float32{9, 1, 9, 2, 9, 3}
	Softmax(x[1:], x[1:], 3, 2)
	e := []float64{math.Exp(-2), math.Exp(-1), 1}
	s := e[0] + e[1] + e[2]
	for i, v := range []float32{x[1], x[3], x[5]} {
		if math.Abs(float64(v)-e[i]/s) > 1e-7 || x[2*i] != 9 {
			t.Errorf("column: %v", x)
		}
	}
	big := []float32{3e38, 3e38, -3e38}
	out := make([]float32, 3)
	Softmax(out, big, 3, 1)
	if out[0] != 0.5 || out[1] != 0.5 || out[2] != 0 {
		t.Errorf("large values: %v, want [0.5 0.5 0]", out)
	}
	Softmax(out, []float32{1, float32(math.NaN()), 2}, 3, 1)
	for _, v := range out {
		if !math.IsNaN(float64(v)) {
			t.Errorf("NaN input: %v, want all NaN", out)
		}
	}
}

// spatialNet is a small network with SpatialSoftmax between a convolution and a Linear.
func spatialNet(rng *rand.Rand) *Sequential {
	return NewSequential(
		NewConv2d(3, 8, 3, 2, 0, rng), NewReLU(),
		NewSpatialSoftmax(),
		NewLinear(16, 8, rng), NewReLU(),
		NewLinear(8, 1, rng),
	)
}

func TestSpatialSoftmaxInNetwork(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	net := spatialNet(rng)
	// FLOPs: conv out 2×8×7×7 = 784 values of 2·27+1; ReLU 784; SpatialSoftmax 8 per
	// input element (784); Linear 2×8 of 2·16+1, ReLU 16, Linear 2×1 of 17.
	want := int64(784*55 + 784 + 8*784 + 16*33 + 16 + 2*17)
	if got, err := FLOPs(net, []int{2, 3, 16, 16}); err != nil || got != want {
		t.Errorf("FLOPs = %d, %v; want %d", got, err, want)
	}
	if out, err := net.OutShape([]int{5, 3, 16, 16}); err != nil || !sameShape(out, []int{5, 1}) {
		t.Errorf("OutShape = %v, %v", out, err)
	}

	// A parameter file round trip (SpatialSoftmax has none; the indices after it count it).
	var buf bytes.Buffer
	if err := WriteParams(&buf, net.Params()); err != nil {
		t.Fatal(err)
	}
	other := spatialNet(rand.New(rand.NewPCG(5, 2)))
	if err := ReadParams(bytes.NewReader(buf.Bytes()), other.Params()); err != nil {
		t.Fatal(err)
	}
	names := ""
	for i, p := range net.Params() {
		names += p.Name + " "
		if !equal32(p.Value, other.Params()[i].Value) {
			t.Errorf("%s differs after a round trip", p.Name)
		}
	}
	if names != "0.weight 0.bias 3.weight 3.bias 5.weight 5.bias " {
		t.Errorf("parameter names %q", names)
	}

	// Training steps allocate nothing in steady state (OpenBLAS).
	eachBackend(t, func(t *testing.T) {
		opt, err := NewAdam(net.Params(), DefaultAdam())
		if err != nil {
			t.Fatal(err)
		}
		x := NewTensor(8, 3, 16, 16)
		for i := range x.Data {
			x.Data[i] = rng.Float32()
		}
		target := []float32{1, 0, 0.5, 1}
		dr := NewTensor(8, 1)
		step := func() {
			net.ZeroGrad()
			r := net.Forward(x)
			BradleyTerry{}.Loss(r.Data[:4], r.Data[4:8], target, dr.Data[:4], dr.Data[4:])
			net.Backward(dr, false)
			opt.Step()
		}
		step()
		train := testing.AllocsPerRun(5, step)
		x1 := &Tensor{Shape: []int{1, 3, 16, 16}, Data: x.Data[:3*16*16]}
		net.Forward(x1)
		infer := testing.AllocsPerRun(20, func() { net.Forward(x1) })
		t.Logf("allocations: training step (4 pairs) %v, inference (batch 1) %v", train, infer)
		if CurrentBackend() == OpenBLAS && (train != 0 || infer != 0) {
			t.Errorf("OpenBLAS: training step %v allocations, inference %v, want 0", train, infer)
		}
	})
}
