package reward

import (
	"fmt"
	"math"
	"slices"

	"robodistill/control/onnxio"
)

// Normalize fits Motif's reward normalisation to raw rewards: the published reward is
// (r − mean) / std, and with floorQuantile q in (0, 1) values below the q-quantile of the
// normalised rewards become 0 (the threshold is stored as onnxio.ThresholdFloor).
func Normalize(raw []float32, floorQuantile float64) (onnxio.RewardNorm, error) {
	if len(raw) < 2 {
		return onnxio.RewardNorm{}, fmt.Errorf("reward normalisation needs at least 2 frames, got %d", len(raw))
	}
	if !(floorQuantile >= 0 && floorQuantile < 1) {
		return onnxio.RewardNorm{}, fmt.Errorf("floor quantile must be in [0, 1), got %g", floorQuantile)
	}
	var sum, sq float64
	for _, r := range raw {
		sum += float64(r)
	}
	mean := sum / float64(len(raw))
	for _, r := range raw {
		d := float64(r) - mean
		sq += d * d
	}
	std := math.Sqrt(sq / float64(len(raw)))
	if !(std > 1e-12) || math.IsNaN(mean) {
		return onnxio.RewardNorm{}, fmt.Errorf("the reward is constant over the training frames (std %g): the model learnt nothing", std)
	}
	n := onnxio.RewardNorm{Mean: mean, Std: std}
	if floorQuantile > 0 {
		z := make([]float64, len(raw))
		for i, r := range raw {
			z[i] = (float64(r) - mean) / std
		}
		n.Thresholds = append(n.Thresholds, onnxio.Threshold{Name: onnxio.ThresholdFloor, Value: Quantile(z, floorQuantile)})
	}
	return n, nil
}

// Quantile is the q-quantile of xs by linear interpolation between order statistics
// (NumPy's default). It sorts a copy.
func Quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	if lo+1 >= len(s) {
		return s[len(s)-1]
	}
	f := pos - float64(lo)
	return s[lo]*(1-f) + s[lo+1]*f
}

// Counter is the count-based exploration term of a reward manifest: Apply divides a
// reward by N(o)^β, where N(o) counts the visits to the observation's cell so far,
// this one included. Cells are the observation's values divided by the cell size and
// rounded down; a cell is keyed by its exact integer coordinates, so counts never
// collide and are the same in every process. Reset starts a new count (per episode, as Motif counts, or
// never, for counts over the whole run). Not safe for concurrent use.
type Counter struct {
	term   onnxio.CountTerm
	counts map[string]uint32
	buf    []byte
}

// NewCounter returns a Counter for a manifest's term.
func NewCounter(t onnxio.CountTerm) (*Counter, error) {
	if !(t.Beta > 0) || !(t.Cell > 0) {
		return nil, fmt.Errorf("count term: beta and cell must be positive, got %g and %g", t.Beta, t.Cell)
	}
	return &Counter{term: t, counts: map[string]uint32{}}, nil
}

// Apply counts obs and returns r / N(obs)^β.
func (c *Counter) Apply(obs []float64, r float64) float64 {
	return r / c.Divisor(obs)
}

// Visit counts obs and returns its cell's count, this visit included.
func (c *Counter) Visit(obs []float64) uint32 {
	c.buf = c.buf[:0]
	for _, v := range obs {
		k := int64(math.Floor(v / c.term.Cell))
		c.buf = append(c.buf, byte(k), byte(k>>8), byte(k>>16), byte(k>>24), byte(k>>32), byte(k>>40), byte(k>>48), byte(k>>56))
	}
	n := c.counts[string(c.buf)] + 1
	c.counts[string(c.buf)] = n
	return n
}

// Divisor counts obs and returns N(obs)^β, which Apply divides by.
func (c *Counter) Divisor(obs []float64) float64 {
	return math.Pow(float64(c.Visit(obs)), c.term.Beta)
}

// Cells is the number of distinct cells visited since the last Reset.
func (c *Counter) Cells() int { return len(c.counts) }

// Reset forgets every count.
func (c *Counter) Reset() { clear(c.counts) }
