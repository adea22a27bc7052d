package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Tolerances. fdTol bounds the float64 reference's backward against central differences
// (h = 1e-5; measured ≤ 1e-7, see docs/nn.md). kernelTol bounds the float32 kernels
// against the float64 reference, as max|a−b| / max|b| (measured ≤ 3e-7).
const (
	fdTol     = 1e-6
	kernelTol = 1e-5
)

// eachBackend runs f once per linked BLAS backend.
func eachBackend(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(string(b), func(t *testing.T) {
			prev, err := SetBackend(b)
			if err != nil {
				t.Fatal(err)
			}
			defer SetBackend(prev)
			f(t)
		})
	}
}

func checkClose(t *testing.T, what string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	if e := normRelErr(to64(got), want); !(e <= tol) {
		t.Errorf("%s: relative error %.3g > %.g", what, e, tol)
	} else {
		t.Logf("%s: float32 kernel vs float64 reference %.2g", what, e)
	}
}

func checkFD(t *testing.T, what string, f func() float64, x, analytic []float64, rng *rand.Rand) {
	t.Helper()
	e := fdCheck(f, x, analytic, 300, rng)
	if !(e <= fdTol) {
		t.Errorf("%s: finite-difference relative error %.3g > %.g", what, e, fdTol)
	} else {
		t.Logf("%s: finite differences %.2g", what, e)
	}
}

func TestConv2dGradients(t *testing.T) {
	cases := []struct {
		inC, outC, k, s, p, n, h, w int
	}{
		{3, 4, 5, 2, 0, 2, 13, 13},
		{2, 3, 3, 1, 1, 2, 7, 6},
		{4, 2, 3, 2, 2, 1, 6, 9},
		{1, 1, 1, 1, 0, 3, 4, 4},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("in%d_out%d_k%d_s%d_p%d", tc.inC, tc.outC, tc.k, tc.s, tc.p)
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.k*100+tc.s*10+tc.p)))
			c := refConv{tc.inC, tc.outC, tc.k, tc.s, tc.p}
			x := roundTrip(randSlice(rng, tc.n*tc.inC*tc.h*tc.w, 1))
			wt := roundTrip(randSlice(rng, tc.outC*tc.inC*tc.k*tc.k, 0.5))
			b := roundTrip(randSlice(rng, tc.outC, 0.5))
			y := c.fwd(x, tc.n, tc.h, tc.w, wt, b)
			dy := roundTrip(randSlice(rng, len(y), 1))
			dx, dw, db := c.bwd(x, dy, tc.n, tc.h, tc.w, wt)
			loss := func() float64 { return dot(dy, c.fwd(x, tc.n, tc.h, tc.w, wt, b)) }
			checkFD(t, "dx", loss, x, dx, rng)
			checkFD(t, "dweight", loss, wt, dw, rng)
			checkFD(t, "dbias", loss, b, db, rng)

			eachBackend(t, func(t *testing.T) {
				l := NewConv2d(tc.inC, tc.outC, tc.k, tc.s, tc.p, rng)
				copy(l.Weight.Value, to32(wt))
				copy(l.Bias.Value, to32(b))
				out := l.Forward(&Tensor{Shape: []int{tc.n, tc.inC, tc.h, tc.w}, Data: to32(x)})
				oh, ow := c.out(tc.h, tc.w)
				if !sameShape(out.Shape, []int{tc.n, tc.outC, oh, ow}) {
					t.Fatalf("output shape %v", out.Shape)
				}
				checkClose(t, "y", out.Data, y, kernelTol)
				// Twice, to check that gradients accumulate.
				for rep := 1; rep <= 2; rep++ {
					gx := l.Backward(&Tensor{Shape: out.Shape, Data: to32(dy)}, true)
					checkClose(t, "dx", gx.Data, dx, kernelTol)
				}
				checkClose(t, "dweight (2 steps)", l.Weight.Grad, scale(dw, 2), kernelTol)
				checkClose(t, "dbias (2 steps)", l.Bias.Grad, scale(db, 2), kernelTol)
				if l.Backward(&Tensor{Shape: out.Shape, Data: to32(dy)}, false) != nil {
					t.Error("Backward(wantDx=false) returned a gradient")
				}
			})
		})
	}
}

func scale(s []float64, k float64) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = v * k
	}
	return out
}

func TestLinearGradients(t *testing.T) {
	const n, in, out = 5, 17, 6
	rng := rand.New(rand.NewPCG(2, 2))
	x := roundTrip(randSlice(rng, n*in, 1))
	wt := roundTrip(randSlice(rng, out*in, 0.5))
	b := roundTrip(randSlice(rng, out, 0.5))
	y := refLinearFwd(x, n, in, out, wt, b)
	dy := roundTrip(randSlice(rng, len(y), 1))
	dx, dw, db := refLinearBwd(x, dy, n, in, out, wt)
	loss := func() float64 { return dot(dy, refLinearFwd(x, n, in, out, wt, b)) }
	checkFD(t, "dx", loss, x, dx, rng)
	checkFD(t, "dweight", loss, wt, dw, rng)
	checkFD(t, "dbias", loss, b, db, rng)
	eachBackend(t, func(t *testing.T) {
		l := NewLinear(in, out, rng)
		copy(l.Weight.Value, to32(wt))
		copy(l.Bias.Value, to32(b))
		got := l.Forward(&Tensor{Shape: []int{n, in}, Data: to32(x)})
		checkClose(t, "y", got.Data, y, kernelTol)
		gx := l.Backward(&Tensor{Shape: got.Shape, Data: to32(dy)}, true)
		checkClose(t, "dx", gx.Data, dx, kernelTol)
		checkClose(t, "dweight", l.Weight.Grad, dw, kernelTol)
		checkClose(t, "dbias", l.Bias.Grad, db, kernelTol)
	})
}

func TestLayerNormGradients(t *testing.T) {
	const n, f = 4, 9
	rng := rand.New(rand.NewPCG(3, 3))
	x := roundTrip(randSlice(rng, n*f, 2))
	g := roundTrip(randSlice(rng, f, 1))
	b := roundTrip(randSlice(rng, f, 1))
	const eps = 1e-5
	y := refLayerNormFwd(x, f, g, b, eps)
	dy := roundTrip(randSlice(rng, len(y), 1))
	dx, dg, db := refLayerNormBwd(x, dy, f, g, eps)
	loss := func() float64 { return dot(dy, refLayerNormFwd(x, f, g, b, eps)) }
	checkFD(t, "dx", loss, x, dx, rng)
	checkFD(t, "dweight", loss, g, dg, rng)
	checkFD(t, "dbias", loss, b, db, rng)
	l := NewLayerNorm(f)
	copy(l.Weight.Value, to32(g))
	copy(l.Bias.Value, to32(b))
	got := l.Forward(&Tensor{Shape: []int{n, f}, Data: to32(x)})
	checkClose(t, "y", got.Data, y, kernelTol)
	gx := l.Backward(&Tensor{Shape: got.Shape, Data: to32(dy)}, true)
	checkClose(t, "dx", gx.Data, dx, kernelTol)
	checkClose(t, "dweight", l.Weight.Grad, dg, kernelTol)
	checkClose(t, "dbias", l.Bias.Grad, db, kernelTol)
}

func TestActivationGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	x := roundTrip(randSlice(rng, 2*3*5, 2))
	dy := roundTrip(randSlice(rng, len(x), 1))
	acts := []struct {
		name string
		l    Layer
		f    func(float64) float64
	}{
		{"relu", NewReLU(), func(v float64) float64 { return math.Max(v, 0) }},
		{"tanh", NewTanh(), math.Tanh},
	}
	for _, a := range acts {
		t.Run(a.name, func(t *testing.T) {
			apply := func() []float64 {
				y := make([]float64, len(x))
				for i, v := range x {
					y[i] = a.f(v)
				}
				return y
			}
			// The analytic gradient of Σ dy·f(x), from the kernel itself.
			got := a.l.Forward(&Tensor{Shape: []int{2, 3, 5}, Data: to32(x)})
			checkClose(t, "y", got.Data, apply(), kernelTol)
			gx := a.l.Backward(&Tensor{Shape: got.Shape, Data: to32(dy)}, true)
			checkFD(t, "dx", func() float64 { return dot(dy, apply()) }, x, to64(gx.Data), rng)
		})
	}
}

// TestReLUBackwardBits: ReLU's branch-free backward gives exactly what the definition
// does, bit for bit: dy's own bits where y > 0 (−0, NaN, infinities and subnormals
// included), +0 wherever y ≤ 0 or y is NaN.
func TestReLUBackwardBits(t *testing.T) {
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1e-45, -1e-45, 3e38, -3e38,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	var x, dy []float32
	for _, a := range special {
		for _, b := range special {
			x, dy = append(x, a), append(dy, b)
		}
	}
	r := NewReLU()
	y := r.Forward(&Tensor{Shape: []int{len(x)}, Data: x})
	dx := r.Backward(&Tensor{Shape: []int{len(x)}, Data: dy}, true)
	for i := range x {
		want := float32(0)
		if y.Data[i] > 0 {
			want = dy[i]
		}
		if math.Float32bits(dx.Data[i]) != math.Float32bits(want) {
			t.Errorf("x %v, dy %v: dx bits %#x, want %#x", x[i], dy[i], math.Float32bits(dx.Data[i]), math.Float32bits(want))
		}
	}
}

func TestFlatten(t *testing.T) {
	f := NewFlatten()
	x := &Tensor{Shape: []int{2, 3, 2, 2}, Data: make([]float32, 24)}
	y := f.Forward(x)
	if !sameShape(y.Shape, []int{2, 12}) || &y.Data[0] != &x.Data[0] {
		t.Fatalf("Forward: shape %v, shares data %v", y.Shape, &y.Data[0] == &x.Data[0])
	}
	dx := f.Backward(&Tensor{Shape: []int{2, 12}, Data: make([]float32, 24)}, true)
	if !sameShape(dx.Shape, x.Shape) {
		t.Fatalf("Backward: shape %v, want %v", dx.Shape, x.Shape)
	}
}

func TestBradleyTerry(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	const n = 8
	first := to32(randSlice(rng, n, 3))
	second := to32(randSlice(rng, n, 3))
	target := []float32{1, 0, 0.5, 1, 0, 0.5, 0.8, 0.2}
	for _, smooth := range []float64{0, 0.1} {
		bt := BradleyTerry{Smoothing: smooth}
		d1, d2 := make([]float32, n), make([]float32, n)
		loss := bt.Loss(first, second, target, d1, d2)
		// Direct formula: −y·log σ(d) − (1−y)·log(1−σ(d)).
		var want float64
		for i := range first {
			d := float64(first[i]) - float64(second[i])
			y := float64(target[i])*(1-smooth) + smooth/2
			p := 1 / (1 + math.Exp(-d))
			want += -y*math.Log(p) - (1-y)*math.Log(1-p)
		}
		want /= n
		if math.Abs(loss-want) > 1e-12 {
			t.Errorf("smoothing %g: loss %.15g, want %.15g", smooth, loss, want)
		}
		x := to64(first)
		x = append(x, to64(second)...)
		f := func() float64 {
			var s float64
			for i := 0; i < n; i++ {
				d := x[i] - x[n+i]
				y := float64(target[i])*(1-smooth) + smooth/2
				s += math.Max(d, 0) - y*d + math.Log1p(math.Exp(-math.Abs(d)))
			}
			return s / n
		}
		checkFD(t, fmt.Sprintf("smoothing %g: drewards", smooth), f, x, append(to64(d1), to64(d2)...), rng)
	}
	// A tie at equal rewards is a minimum: zero gradient, loss log 2.
	d1, d2 := make([]float32, 1), make([]float32, 1)
	if l := (BradleyTerry{}).Loss([]float32{0.3}, []float32{0.3}, []float32{0.5}, d1, d2); math.Abs(l-math.Ln2) > 1e-12 || d1[0] != 0 || d2[0] != 0 {
		t.Errorf("tie at equal rewards: loss %g, gradients %g %g", l, d1[0], d2[0])
	}
	// Large reward gaps stay finite.
	if l := (BradleyTerry{}).Loss([]float32{1e4}, []float32{-1e4}, []float32{0}, d1, d2); math.IsInf(l, 0) || math.IsNaN(l) || math.Abs(l-2e4) > 1e-6 {
		t.Errorf("large gap: loss %g, want 2e4", l)
	}
}

func TestMSE(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	pred := randSlice(rng, 7, 2)
	target := to32(randSlice(rng, 7, 2))
	d := make([]float32, 7)
	MSE(to32(pred), target, d)
	f := func() float64 {
		var s float64
		for i, p := range pred {
			s += (p - float64(target[i])) * (p - float64(target[i]))
		}
		return s / 7
	}
	// dPred is float32: compare at float32 precision.
	e := fdCheck(f, pred, to64(d), 7, rng)
	if e > 1e-6 {
		t.Errorf("finite-difference relative error %.3g", e)
	}
}
