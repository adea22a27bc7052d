package policy

import "math"

// The actor's last layer gives, per action dimension j, a mean μⱼ and an unbounded value
// rⱼ that becomes the log standard deviation through a smooth clamp (CleanRL's, rather than
// SB3's hard clip, so the gradient exists everywhere and finite differences can check it):
//
//	log σⱼ = lo + (hi − lo)·(tanh(rⱼ) + 1)/2 ∈ (lo, hi)
//
// An action is a = tanh(u) with u = μ + σ·ε, ε ~ N(0, I) (the reparameterisation trick),
// and its log-density follows from the change of variables:
//
//	log π(a|s) = Σⱼ [ −ε²/2 − log σⱼ − log(2π)/2 − log(1 − tanh²(uⱼ)) ]
//
// with log(1 − tanh²u) = 2·(log 2 − u − softplus(−2u)) computed in that stable form
// (no 1 − a² that rounds to 0 for |u| > 9 in float64, or |u| > 4.5 in float32).

var halfLog2Pi = 0.5 * math.Log(2*math.Pi)

// softplus is log(1 + eˣ) without overflow.
func softplus(x float64) float64 { return math.Max(x, 0) + math.Log1p(math.Exp(-math.Abs(x))) }

// log1mTanhSq is log(1 − tanh²(u)).
func log1mTanhSq(u float64) float64 { return 2 * (math.Ln2 - u - softplus(-2*u)) }

// logStd maps the actor's raw output to log σ in (lo, hi) and returns the derivative
// d log σ / d raw too.
func logStd(raw, lo, hi float64) (ls, dls float64) {
	t := math.Tanh(raw)
	half := 0.5 * (hi - lo)
	return lo + half*(t+1), half * (1 - t*t)
}

// squashed holds, for one sample row, what the backward pass needs.
type squashed struct {
	u, a, std, eps, dls float64
}

// sampleRow computes the actions and log-density for one row of the actor's output
// (means then raw log-stds) and noise eps, writing the per-dimension intermediates into
// st. It returns log π(a|s).
func sampleRow(out []float32, eps []float64, lo, hi float64, act []float32, st []squashed) float64 {
	n := len(act)
	var logp float64
	for j := 0; j < n; j++ {
		mu := float64(out[j])
		ls, dls := logStd(float64(out[n+j]), lo, hi)
		std := math.Exp(ls)
		u := mu + std*eps[j]
		a := math.Tanh(u)
		act[j] = float32(a)
		st[j] = squashed{u: u, a: a, std: std, eps: eps[j], dls: dls}
		logp += -0.5*eps[j]*eps[j] - ls - halfLog2Pi - log1mTanhSq(u)
	}
	return logp
}

// backRow writes dL/d(actor output row) for a loss L whose derivative with respect to
// the action is dA (through the critics, ε held fixed) plus dLogp times the derivative of
// log π(a|s):
//
//	∂log π/∂u = 2·tanh(u) (the squash term; the Gaussian term is −ε²/2 with ε fixed)
//	∂log π/∂log σ = −1 + 2·tanh(u)·σ·ε (the explicit −log σ, and u = μ + σε)
func backRow(st []squashed, dA []float64, dLogp float64, dout []float32) {
	n := len(st)
	for j, s := range st {
		du := dA[j]*(1-s.a*s.a) + dLogp*2*s.a
		dout[j] = float32(du)
		dlogStd := du*s.std*s.eps - dLogp
		dout[n+j] = float32(dlogStd * s.dls)
	}
}
