package metaworld

import (
	"fmt"
	"math"
)

// Sigmoid names the shaping curves of dm_control's reward utilities, which MetaWorld's v2
// reward functions use.
type Sigmoid int

// The sigmoids.
const (
	Gaussian Sigmoid = iota
	Hyperbolic
	LongTail
	Reciprocal
	Cosine
	Linear
	Quadratic
	TanhSquared
)

const defaultValueAtMargin = 0.1

func sigmoid(x, valueAt1 float64, s Sigmoid) float64 {
	switch s {
	case Gaussian:
		scale := math.Sqrt(-2 * math.Log(valueAt1))
		return math.Exp(-0.5 * (x * scale) * (x * scale))
	case Hyperbolic:
		scale := math.Acosh(1 / valueAt1)
		return 1 / math.Cosh(x*scale)
	case LongTail:
		scale := math.Sqrt(1/valueAt1 - 1)
		return 1 / ((x*scale)*(x*scale) + 1)
	case Reciprocal:
		scale := 1/valueAt1 - 1
		return 1 / (math.Abs(x)*scale + 1)
	case Cosine:
		scale := math.Acos(2*valueAt1-1) / math.Pi
		sx := x * scale
		if math.Abs(sx) < 1 {
			return (1 + math.Cos(math.Pi*sx)) / 2
		}
		return 0
	case Linear:
		sx := x * (1 - valueAt1)
		if math.Abs(sx) < 1 {
			return 1 - sx
		}
		return 0
	case Quadratic:
		sx := x * math.Sqrt(1-valueAt1)
		if math.Abs(sx) < 1 {
			return 1 - sx*sx
		}
		return 0
	case TanhSquared:
		scale := math.Atanh(math.Sqrt(1 - valueAt1))
		t := math.Tanh(x * scale)
		return 1 - t*t
	}
	panic(fmt.Sprintf("metaworld: unknown sigmoid %d", s))
}

// Tolerance is 1 when lo <= x <= hi and falls off with the distance to the nearest bound,
// reaching 0.1 at margin (margin 0: a step). It panics on lo > hi or a negative margin,
// which are programming errors in a reward function.
func Tolerance(x, lo, hi, margin float64, s Sigmoid) float64 {
	return toleranceAt(x, lo, hi, margin, s, defaultValueAtMargin)
}

func toleranceAt(x, lo, hi, margin float64, s Sigmoid, valueAtMargin float64) float64 {
	if lo > hi {
		panic("metaworld.Tolerance: lower bound above upper bound")
	}
	if margin < 0 {
		panic(fmt.Sprintf("metaworld.Tolerance: negative margin %g", margin))
	}
	if lo <= x && x <= hi {
		return 1
	}
	if margin == 0 {
		return 0
	}
	var d float64
	if x < lo {
		d = (lo - x) / margin
	} else {
		d = (x - hi) / margin
	}
	return sigmoid(d, valueAtMargin, s)
}

// HamacherProduct is the Hamacher t-norm a*b/(a+b-a*b) of two values in [0, 1].
func HamacherProduct(a, b float64) float64 {
	if !(a >= 0 && a <= 1 && b >= 0 && b <= 1) {
		panic(fmt.Sprintf("metaworld.HamacherProduct: %g and %g must lie in [0, 1]", a, b))
	}
	den := a + b - a*b
	if den > 0 {
		return a * b / den
	}
	return 0
}

// RectPrismTolerance is MetaWorld's prism-shaped reward: inside the prism spanned by zero
// and one it is the product of the per-axis fractions, outside it is 1.
func RectPrismTolerance(cur, zero, one Vec3) float64 {
	in := func(a, b, c float64) bool {
		if c >= b {
			return b <= a && a <= c
		}
		return c <= a && a <= b
	}
	if in(cur[0], zero[0], one[0]) && in(cur[1], zero[1], one[1]) && in(cur[2], zero[2], one[2]) {
		return (cur[0] - zero[0]) / (one[0] - zero[0]) *
			((cur[1] - zero[1]) / (one[1] - zero[1])) *
			((cur[2] - zero[2]) / (one[2] - zero[2]))
	}
	return 1
}
