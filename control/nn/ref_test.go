package nn

// A float64 copy of the math, written as plain loops (no im2col, no BLAS), for two checks:
// its backward against central finite differences in float64, and the float32 kernels
// against it on the same numbers.

import (
	"math"
	"math/rand/v2"
)

type refConv struct{ inC, outC, k, s, p int }

func (c refConv) out(h, w int) (int, int) {
	return (h+2*c.p-c.k)/c.s + 1, (w+2*c.p-c.k)/c.s + 1
}

func (c refConv) fwd(x []float64, n, h, w int, wt, b []float64) []float64 {
	oh, ow := c.out(h, w)
	y := make([]float64, n*c.outC*oh*ow)
	for s := 0; s < n; s++ {
		for o := 0; o < c.outC; o++ {
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					sum := b[o]
					for ch := 0; ch < c.inC; ch++ {
						for ki := 0; ki < c.k; ki++ {
							for kj := 0; kj < c.k; kj++ {
								iy, ix := oy*c.s-c.p+ki, ox*c.s-c.p+kj
								if iy < 0 || iy >= h || ix < 0 || ix >= w {
									continue
								}
								sum += wt[((o*c.inC+ch)*c.k+ki)*c.k+kj] * x[((s*c.inC+ch)*h+iy)*w+ix]
							}
						}
					}
					y[((s*c.outC+o)*oh+oy)*ow+ox] = sum
				}
			}
		}
	}
	return y
}

func (c refConv) bwd(x, dy []float64, n, h, w int, wt []float64) (dx, dw, db []float64) {
	oh, ow := c.out(h, w)
	dx = make([]float64, len(x))
	dw = make([]float64, len(wt))
	db = make([]float64, c.outC)
	for s := 0; s < n; s++ {
		for o := 0; o < c.outC; o++ {
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					g := dy[((s*c.outC+o)*oh+oy)*ow+ox]
					db[o] += g
					for ch := 0; ch < c.inC; ch++ {
						for ki := 0; ki < c.k; ki++ {
							for kj := 0; kj < c.k; kj++ {
								iy, ix := oy*c.s-c.p+ki, ox*c.s-c.p+kj
								if iy < 0 || iy >= h || ix < 0 || ix >= w {
									continue
								}
								wi, xi := ((o*c.inC+ch)*c.k+ki)*c.k+kj, ((s*c.inC+ch)*h+iy)*w+ix
								dw[wi] += g * x[xi]
								dx[xi] += g * wt[wi]
							}
						}
					}
				}
			}
		}
	}
	return dx, dw, db
}

func refLinearFwd(x []float64, n, in, out int, wt, b []float64) []float64 {
	y := make([]float64, n*out)
	for s := 0; s < n; s++ {
		for o := 0; o < out; o++ {
			sum := b[o]
			for i := 0; i < in; i++ {
				sum += wt[o*in+i] * x[s*in+i]
			}
			y[s*out+o] = sum
		}
	}
	return y
}

func refLinearBwd(x, dy []float64, n, in, out int, wt []float64) (dx, dw, db []float64) {
	dx, dw, db = make([]float64, n*in), make([]float64, out*in), make([]float64, out)
	for s := 0; s < n; s++ {
		for o := 0; o < out; o++ {
			g := dy[s*out+o]
			db[o] += g
			for i := 0; i < in; i++ {
				dw[o*in+i] += g * x[s*in+i]
				dx[s*in+i] += g * wt[o*in+i]
			}
		}
	}
	return dx, dw, db
}

func refLayerNormFwd(x []float64, f int, g, b []float64, eps float64) []float64 {
	y := make([]float64, len(x))
	for r := 0; r < len(x)/f; r++ {
		row := x[r*f : (r+1)*f]
		var mean, vr float64
		for _, v := range row {
			mean += v
		}
		mean /= float64(f)
		for _, v := range row {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(f)
		for i, v := range row {
			y[r*f+i] = (v-mean)/math.Sqrt(vr+eps)*g[i] + b[i]
		}
	}
	return y
}

// refLayerNormBwd differentiates the normalisation by the chain rule through mean and
// variance, term by term, rather than by the compact formula the kernel uses.
func refLayerNormBwd(x, dy []float64, f int, g []float64, eps float64) (dx, dg, db []float64) {
	dx, dg, db = make([]float64, len(x)), make([]float64, f), make([]float64, f)
	ff := float64(f)
	for r := 0; r < len(x)/f; r++ {
		row, dyr := x[r*f:(r+1)*f], dy[r*f:(r+1)*f]
		var mean, vr float64
		for _, v := range row {
			mean += v
		}
		mean /= ff
		for _, v := range row {
			vr += (v - mean) * (v - mean)
		}
		vr /= ff
		sd := math.Sqrt(vr + eps)
		dxhat := make([]float64, f)
		var dvar, dmean float64
		for i, v := range row {
			xh := (v - mean) / sd
			dg[i] += dyr[i] * xh
			db[i] += dyr[i]
			dxhat[i] = dyr[i] * g[i]
			dvar += dxhat[i] * (v - mean) * -0.5 * math.Pow(vr+eps, -1.5)
			dmean += -dxhat[i] / sd
		}
		for _, v := range row {
			dmean += dvar * -2 * (v - mean) / ff
		}
		for i, v := range row {
			dx[r*f+i] = dxhat[i]/sd + dvar*2*(v-mean)/ff + dmean/ff
		}
	}
	return dx, dg, db
}

func randSlice(rng *rand.Rand, n int, scale float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = (2*rng.Float64() - 1) * scale
	}
	return s
}

func to32(s []float64) []float32 {
	out := make([]float32, len(s))
	for i, v := range s {
		out[i] = float32(v)
	}
	return out
}

func to64(s []float32) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}

// roundTrip rounds float64 values to float32 precision, so that the float64 reference and
// the float32 kernels start from the same numbers.
func roundTrip(s []float64) []float64 { return to64(to32(s)) }

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// normRelErr is max|a−b| / max|b|: the error relative to the scale of the reference.
func normRelErr(a, b []float64) float64 {
	var num, den float64
	for i := range a {
		num = math.Max(num, math.Abs(a[i]-b[i]))
		den = math.Max(den, math.Abs(b[i]))
	}
	if den == 0 {
		return num
	}
	return num / den
}

// fdCheck compares an analytic gradient of f at x with central differences, element by
// element, on up to max elements chosen by rng. It returns the largest relative error
// |a−n| / max(|a|+|n|, 1e-8).
func fdCheck(f func() float64, x, analytic []float64, maxN int, rng *rand.Rand) float64 {
	const h = 1e-5
	idx := rng.Perm(len(x))
	if len(idx) > maxN {
		idx = idx[:maxN]
	}
	var worst float64
	for _, i := range idx {
		old := x[i]
		x[i] = old + h
		fp := f()
		x[i] = old - h
		fm := f()
		x[i] = old
		num := (fp - fm) / (2 * h)
		worst = math.Max(worst, math.Abs(analytic[i]-num)/math.Max(math.Abs(analytic[i])+math.Abs(num), 1e-8))
	}
	return worst
}
