package policy

import (
	"math"
	"math/rand/v2"
	"testing"

	"robodistill/control/nn"
)

// The gradient checks compare the float32 implementation's gradients with central finite
// differences of a float64 reference written as plain loops (its own MLP, the Gaussian
// density computed directly rather than in the stable form, min by comparison). fdTol
// bounds max|analytic − numeric| / max|numeric| per tensor; float32 rounding through three
// layers gives about 1e-6 (measured values are logged).
const fdTol = 1e-4

// refMLP is a float64 copy of a Linear-ReLU-Linear-ReLU-Linear network, or of
// Linear-LayerNorm-ReLU twice then Linear (SACConfig.CriticNorm).
type refMLP struct {
	w, b   [3][]float64
	g, be  [2][]float64 // LayerNorm scale and shift after the hidden Linears, if any
	dims   [4]int
	params [][]float64 // in the order of the Sequential's Params
}

func toRef(s *nn.Sequential) *refMLP {
	r := &refMLP{}
	k := 0
	for _, l := range s.Layers {
		switch l := l.(type) {
		case *nn.Linear:
			r.w[k], r.b[k] = to64(l.Weight.Value), to64(l.Bias.Value)
			r.dims[k], r.dims[k+1] = l.In, l.Out
			r.params = append(r.params, r.w[k], r.b[k])
			k++
		case *nn.LayerNorm:
			r.g[k-1], r.be[k-1] = to64(l.Weight.Value), to64(l.Bias.Value)
			r.params = append(r.params, r.g[k-1], r.be[k-1])
		}
	}
	return r
}

// tensors lists the reference's parameters in the order of the Sequential's Params.
func (r *refMLP) tensors() [][]float64 { return r.params }

func (r *refMLP) forward(x []float64) []float64 {
	for k := 0; k < 3; k++ {
		in, out := r.dims[k], r.dims[k+1]
		y := make([]float64, out)
		for o := 0; o < out; o++ {
			s := r.b[k][o]
			for i := 0; i < in; i++ {
				s += r.w[k][o*in+i] * x[i]
			}
			y[o] = s
		}
		if k < 2 && r.g[k] != nil {
			var mean, vr float64
			for _, v := range y {
				mean += v / float64(out)
			}
			for _, v := range y {
				vr += (v - mean) * (v - mean) / float64(out)
			}
			for o := range y {
				y[o] = (y[o]-mean)/math.Sqrt(vr+1e-5)*r.g[k][o] + r.be[k][o]
			}
		}
		if k < 2 {
			for o := range y {
				y[o] = math.Max(y[o], 0)
			}
		}
		x = y
	}
	return x
}

// refSample is the squashed Gaussian computed the direct way.
func refSample(out, eps []float64, lo, hi float64) (act []float64, logp float64) {
	n := len(eps)
	act = make([]float64, n)
	for j := 0; j < n; j++ {
		mu := out[j]
		ls := lo + 0.5*(hi-lo)*(math.Tanh(out[n+j])+1)
		sigma := math.Exp(ls)
		u := mu + sigma*eps[j]
		a := math.Tanh(u)
		act[j] = a
		z := (u - mu) / sigma
		logp += -0.5*z*z - math.Log(sigma) - 0.5*math.Log(2*math.Pi) - math.Log(1-a*a)
	}
	return act, logp
}

type refSAC struct {
	actor          *refMLP
	q, qt          [2]*refMLP
	obsDim, actDim int
	lo, hi         float64
	alpha, gamma   float64
	b              Batch
	eps, epsNext   []float64
}

func newRefSAC(ag *Agent) *refSAC {
	r := &refSAC{actor: toRef(ag.actor), obsDim: ag.obsDim, actDim: ag.actDim, lo: ag.cfg.LogStdMin, hi: ag.cfg.LogStdMax,
		alpha: ag.alpha, gamma: ag.cfg.Gamma, b: ag.batch, eps: ag.eps, epsNext: ag.epsNext}
	for k := range r.q {
		r.q[k], r.qt[k] = toRef(ag.q[k]), toRef(ag.qTarg[k])
	}
	return r
}

func (r *refSAC) row(s []float32, i, n int) []float64 { return to64(s[i*n : (i+1)*n]) }

func concat(a, b []float64) []float64 { return append(append([]float64(nil), a...), b...) }

func (r *refSAC) criticLoss() float64 {
	B, O, A := r.b.N, r.obsDim, r.actDim
	var loss float64
	for i := 0; i < B; i++ {
		next := r.row(r.b.Next, i, O)
		a2, logp2 := refSample(r.actor.forward(next), r.epsNext[i*A:(i+1)*A], r.lo, r.hi)
		in2 := concat(next, a2)
		v := math.Min(r.qt[0].forward(in2)[0], r.qt[1].forward(in2)[0]) - r.alpha*logp2
		y := float64(r.b.Rew[i]) + r.gamma*(1-float64(r.b.Done[i]))*v
		in := concat(r.row(r.b.Obs, i, O), r.row(r.b.Act, i, A))
		for k := range r.q {
			d := r.q[k].forward(in)[0] - y
			loss += d * d / float64(B)
		}
	}
	return loss
}

func (r *refSAC) actorLoss() (loss, logpMean float64) {
	B, O, A := r.b.N, r.obsDim, r.actDim
	for i := 0; i < B; i++ {
		obs := r.row(r.b.Obs, i, O)
		a, logp := refSample(r.actor.forward(obs), r.eps[i*A:(i+1)*A], r.lo, r.hi)
		in := concat(obs, a)
		q := math.Min(r.q[0].forward(in)[0], r.q[1].forward(in)[0])
		loss += (r.alpha*logp - q) / float64(B)
		logpMean += logp / float64(B)
	}
	return loss, logpMean
}

// fdErr compares analytic gradients with central differences of f over up to maxN
// elements of x, as max|a − n| / max|n|.
func fdErr(f func() float64, x []float64, analytic []float32, maxN int, rng *rand.Rand) float64 {
	const h = 1e-6
	idx := rng.Perm(len(x))
	if len(idx) > maxN {
		idx = idx[:maxN]
	}
	var num, den float64
	for _, i := range idx {
		old := x[i]
		x[i] = old + h
		fp := f()
		x[i] = old - h
		fm := f()
		x[i] = old
		n := (fp - fm) / (2 * h)
		num = math.Max(num, math.Abs(float64(analytic[i])-n))
		den = math.Max(den, math.Abs(n))
	}
	if den == 0 {
		return num
	}
	return num / den
}

func to64(s []float32) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}

// tinyAgent is an agent with 3 observation values, 2 action values, hidden 7 and a batch
// of 6 (LayerNorm in the critics with norm), its batch and noise filled from seed; two
// transitions are terminal.
func tinyAgent(t *testing.T, seed uint64, alpha float64, norm bool) *Agent {
	t.Helper()
	cfg := DefaultSAC()
	cfg.Hidden, cfg.Batch, cfg.CriticNorm = 7, 6, norm
	ag, err := NewAgent(cfg, 3, 2, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	b := &ag.batch
	for _, s := range [][]float32{b.Obs, b.Next, b.Act} {
		for i := range s {
			s[i] = float32(2*rng.Float64() - 1)
		}
	}
	for i := range b.Rew {
		b.Rew[i] = float32(rng.NormFloat64())
	}
	b.Done[1], b.Done[4] = 1, 1
	for i := range ag.eps {
		ag.eps[i], ag.epsNext[i] = rng.NormFloat64(), rng.NormFloat64()
	}
	// LayerNorm scales and shifts away from their initial 1 and 0, so that they shape
	// the gradients that flow through them.
	for k := range ag.q {
		for _, l := range ag.q[k].Layers {
			if ln, ok := l.(*nn.LayerNorm); ok {
				for i := range ln.Weight.Value {
					ln.Weight.Value[i] += float32(0.3 * rng.NormFloat64())
					ln.Bias.Value[i] += float32(0.3 * rng.NormFloat64())
				}
			}
		}
	}
	// Targets that differ from the critics, as after some training.
	for k := range ag.qTarg {
		for _, p := range ag.qTarg[k].Params() {
			for i := range p.Value {
				p.Value[i] += float32(0.1 * rng.NormFloat64())
			}
		}
	}
	ag.alpha = alpha
	return ag
}

// gradCases are the temperatures and critic kinds the gradient checks run on.
var gradCases = []struct {
	alpha float64
	norm  bool // SACConfig.CriticNorm
}{{0, false}, {0.7, false}, {0.7, true}}

func TestCriticGradients(t *testing.T) {
	for _, c := range gradCases {
		alpha := c.alpha
		ag := tinyAgent(t, 1, alpha, c.norm)
		ref := newRefSAC(ag)
		loss := ag.criticGrads()
		want := ref.criticLoss()
		if e := math.Abs(loss-want) / math.Abs(want); e > 1e-5 {
			t.Errorf("alpha %g, norm %v: critic loss %v, reference %v (relative %.2g)", alpha, c.norm, loss, want, e)
		}
		rng := rand.New(rand.NewPCG(2, 2))
		for k := range ag.q {
			for pi, p := range ag.q[k].Params() {
				e := fdErr(ref.criticLoss, ref.q[k].tensors()[pi], p.Grad, 300, rng)
				if !(e <= fdTol) {
					t.Errorf("alpha %g, norm %v: critic %d %s: finite-difference error %.3g > %g", alpha, c.norm, k+1, p.Name, e, fdTol)
				} else {
					t.Logf("alpha %g, norm %v: critic %d %s: %.2g", alpha, c.norm, k+1, p.Name, e)
				}
			}
		}
	}
}

func TestActorGradients(t *testing.T) {
	for _, c := range gradCases {
		alpha := c.alpha
		ag := tinyAgent(t, 3, alpha, c.norm)
		ref := newRefSAC(ag)
		loss, logpMean, _ := ag.actorGrads()
		wantLoss, wantLogp := ref.actorLoss()
		if e := math.Abs(loss - wantLoss); e > 1e-5*math.Max(1, math.Abs(wantLoss)) {
			t.Errorf("alpha %g, norm %v: actor loss %v, reference %v", alpha, c.norm, loss, wantLoss)
		}
		if e := math.Abs(logpMean - wantLogp); e > 1e-5*math.Max(1, math.Abs(wantLogp)) {
			t.Errorf("alpha %g, norm %v: mean log pi %v, reference %v", alpha, c.norm, logpMean, wantLogp)
		}
		rng := rand.New(rand.NewPCG(4, 4))
		f := func() float64 { l, _ := ref.actorLoss(); return l }
		for pi, p := range ag.actor.Params() {
			e := fdErr(f, ref.actor.tensors()[pi], p.Grad, 300, rng)
			if !(e <= fdTol) {
				t.Errorf("alpha %g, norm %v: actor %s: finite-difference error %.3g > %g", alpha, c.norm, p.Name, e, fdTol)
			} else {
				t.Logf("alpha %g, norm %v: actor %s: %.2g", alpha, c.norm, p.Name, e)
			}
		}
	}
}

func TestTemperatureGradient(t *testing.T) {
	ag := tinyAgent(t, 5, 0.3, false)
	ag.logAlpha.Value[0] = -0.4
	_, logpMean, _ := ag.actorGrads()
	ag.alphaGrad(logpMean)
	x := []float64{float64(ag.logAlpha.Value[0])}
	f := func() float64 { return -x[0] * (logpMean + ag.targetEntropy) }
	if e := fdErr(f, x, ag.logAlpha.Grad, 1, rand.New(rand.NewPCG(5, 5))); !(e <= fdTol) {
		t.Errorf("log alpha: finite-difference error %.3g", e)
	}
	if got, want := ag.alphaLoss(logpMean), f(); math.Abs(got-want) > 1e-12 {
		t.Errorf("alpha loss %v, want %v", got, want)
	}
	if ag.targetEntropy != -2 {
		t.Errorf("target entropy %v, want -|A| = -2", ag.targetEntropy)
	}
	// The step moves α toward the target entropy: higher entropy than the target lowers α.
	before := ag.logAlpha.Value[0]
	ag.alphaOpt.Step()
	if dir := float64(ag.logAlpha.Value[0] - before); (-logpMean > ag.targetEntropy) != (dir < 0) {
		t.Errorf("entropy %v, target %v: log alpha moved by %v", -logpMean, ag.targetEntropy, dir)
	}
}

// TestTanhLogProb checks the stable log-density against the direct change of variables,
// against -2·log cosh u where 1 − tanh² rounds to 0, and that the density of a integrates
// to 1 over (−1, 1).
func TestTanhLogProb(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	const lo, hi = -5.0, 2.0
	for k := 0; k < 1000; k++ {
		out := []float32{float32(rng.NormFloat64()), float32(2 * rng.NormFloat64()), float32(rng.NormFloat64()), float32(rng.NormFloat64())}
		eps := []float64{rng.NormFloat64(), rng.NormFloat64()}
		act := make([]float32, 2)
		st := make([]squashed, 2)
		got := sampleRow(out, eps, lo, hi, act, st)
		wantAct, want := refSample(to64(out), eps, lo, hi)
		if math.Abs(st[0].u) > 8 || math.Abs(st[1].u) > 8 {
			continue // the direct form loses its digits there; checked below
		}
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Fatalf("log pi %v, direct %v (u %v %v)", got, want, st[0].u, st[1].u)
		}
		for j := range act {
			if act[j] != float32(wantAct[j]) {
				t.Fatalf("action %v, want %v", act[j], wantAct[j])
			}
		}
	}
	for _, u := range []float64{-30, -12, -5, 0, 0.5, 9, 20, 40} {
		want := -2 * (math.Abs(u) + math.Log1p(math.Exp(-2*math.Abs(u))) - math.Ln2)
		if got := log1mTanhSq(u); math.Abs(got-want) > 1e-12*math.Max(1, math.Abs(want)) {
			t.Errorf("log(1 - tanh²(%v)) = %v, want %v", u, got, want)
		}
	}
	// ∫ π(a) da over (−1, 1) by the midpoint rule, with μ 0.3 and σ 0.8.
	const n = 200000
	mu, raw := 0.3, math.Atanh(2*(math.Log(0.8)-lo)/(hi-lo)-1)
	out := []float32{float32(mu), float32(raw)}
	sigma := math.Exp(lo + 0.5*(hi-lo)*(math.Tanh(float64(float32(raw)))+1))
	var sum float64
	act, st := make([]float32, 1), make([]squashed, 1)
	for i := 0; i < n; i++ {
		a := -1 + (float64(i)+0.5)*2/n
		eps := (math.Atanh(a) - float64(float32(mu))) / sigma
		sum += math.Exp(sampleRow(out, []float64{eps}, lo, hi, act, st)) * 2 / n
	}
	if math.Abs(sum-1) > 1e-4 {
		t.Errorf("density of a integrates to %v, want 1", sum)
	}
}

// TestLogStdBounds: the clamp keeps log σ inside (lo, hi) for any raw value.
func TestLogStdBounds(t *testing.T) {
	for _, raw := range []float64{-1e9, -10, 0, 10, 1e9} {
		ls, _ := logStd(raw, -5, 2)
		if ls < -5 || ls > 2 {
			t.Errorf("raw %v: log std %v outside [-5, 2]", raw, ls)
		}
	}
	if ls, d := logStd(0, -5, 2); ls != -1.5 || d != 3.5 {
		t.Errorf("raw 0: log std %v, slope %v; want -1.5, 3.5", ls, d)
	}
}

func TestPolyak(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	mk := func() *nn.Sequential {
		return nn.NewSequential(nn.NewLinear(3, 2, rng), nn.NewReLU(), nn.NewLinear(2, 1, rng))
	}
	src, dst := mk(), mk()
	before := make([][]float32, 0)
	for _, p := range dst.Params() {
		before = append(before, append([]float32(nil), p.Value...))
	}
	nn.Polyak(dst.Params(), src.Params(), 0.25)
	for i, p := range dst.Params() {
		for j, v := range p.Value {
			want := before[i][j]*0.75 + src.Params()[i].Value[j]*0.25
			if v != want {
				t.Fatalf("%s[%d] = %v, want %v", p.Name, j, v, want)
			}
		}
	}
	nn.CopyParams(dst.Params(), src.Params())
	for i, p := range dst.Params() {
		for j, v := range p.Value {
			if v != src.Params()[i].Value[j] {
				t.Fatalf("CopyParams: %s differs", p.Name)
			}
		}
	}
}
