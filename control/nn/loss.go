package nn

import (
	"fmt"
	"math"
)

// BradleyTerry is the preference loss of a reward model: for a pair of frames with rewards
// r₁ and r₂, P(first preferred) = σ(r₁ − r₂), and the loss is the binary cross-entropy of
// that probability against the label's target (1: first preferred, 0: second, 0.5: tie;
// any value in [0, 1] is a soft label, e.g. a vote fraction).
type BradleyTerry struct {
	// Smoothing moves every target toward 0.5: y' = y·(1 − Smoothing) + Smoothing/2.
	// Zero is plain Bradley-Terry.
	Smoothing float64
}

// Loss returns the mean loss over the pairs and writes its gradients with respect to the
// rewards into dFirst and dSecond (overwritten, not added). All slices have one element
// per pair. The arithmetic is in float64; the loss is BCE-with-logits in its stable form,
// max(d, 0) − y·d + log(1 + e^−|d|).
func (bt BradleyTerry) Loss(first, second, target, dFirst, dSecond []float32) float64 {
	n := len(first)
	if len(second) != n || len(target) != n || len(dFirst) != n || len(dSecond) != n {
		panic(fmt.Sprintf("nn: BradleyTerry.Loss: lengths %d, %d, %d, %d, %d differ",
			len(first), len(second), len(target), len(dFirst), len(dSecond)))
	}
	if n == 0 {
		return 0
	}
	var sum float64
	for i := range first {
		d := float64(first[i]) - float64(second[i])
		y := float64(target[i])*(1-bt.Smoothing) + bt.Smoothing/2
		sum += math.Max(d, 0) - y*d + math.Log1p(math.Exp(-math.Abs(d)))
		g := (sigmoid(d) - y) / float64(n)
		dFirst[i] = float32(g)
		dSecond[i] = float32(-g)
	}
	return sum / float64(n)
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// MSE returns mean((pred − target)²) and writes its gradient with respect to pred into
// dPred (overwritten). The sum is in float64.
func MSE(pred, target, dPred []float32) float64 {
	n := len(pred)
	if len(target) != n || len(dPred) != n {
		panic(fmt.Sprintf("nn: MSE: lengths %d, %d, %d differ", len(pred), len(target), len(dPred)))
	}
	if n == 0 {
		return 0
	}
	var sum float64
	for i := range pred {
		d := float64(pred[i]) - float64(target[i])
		sum += d * d
		dPred[i] = float32(2 * d / float64(n))
	}
	return sum / float64(n)
}
