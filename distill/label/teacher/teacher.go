// Package teacher is the scripted labellers: simulated human teachers that answer from
// simulator ground truth, after B-Pref (Lee et al., 2021). The rational oracle prefers
// the side with the larger return; the other members of the family add one imperfection
// each: Boltzmann noise (noisy:β), myopia over a segment (myopic:γ), skipping
// uninformative queries (skip:thr), calling close ones equal (equal:thr) and plain
// mistakes (mistake:ε). Biased imitates a VLM's position bias, so that the
// order-consistency machinery of label.Consistent can be exercised without one.
//
// Randomness is derived from the seed and the pair (and the order and sample for
// Biased), never from the order of calls: labels are reproducible, and a resumed run
// gives the same labels as an uninterrupted one.
package teacher

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

	"robodistill/distill/label"
)

// ErrNoTruth is a query whose frames lack simulator ground truth.
var ErrNoTruth = errors.New("scripted teachers need simulator ground truth (rewards), and a frame has none")

// Teacher is the B-Pref scripted teacher of a spec without position bias.
type Teacher struct {
	spec label.Spec
	seed uint64
	info label.LabelerInfo
}

// New returns the teacher of spec. A "vlm" or "biased" spec is refused: see Labeler.
func New(spec label.Spec, seed uint64) (*Teacher, error) {
	switch {
	case spec.VLM:
		return nil, fmt.Errorf("teacher.New: %q is not a scripted teacher", spec)
	case spec.Bias > 0:
		return nil, fmt.Errorf("teacher.New: %q is position-biased: use NewBiased (a judge asked in both orders)", spec)
	}
	return &Teacher{spec: spec, seed: seed, info: label.LabelerInfo{Kind: "teacher", Spec: spec.String(), Params: spec.Params(), Seed: seed}}, nil
}

// Labeler returns the scripted labeller of spec: a Teacher, or for a biased spec a Biased
// judge asked through label.Consistent with copts.
func Labeler(spec label.Spec, seed uint64, copts label.ConsistentOptions) (label.Labeler, error) {
	if spec.Bias > 0 {
		b, err := NewBiased(spec, seed)
		if err != nil {
			return nil, err
		}
		return label.NewConsistent(b, copts)
	}
	return New(spec, seed)
}

// Info implements label.Labeler.
func (t *Teacher) Info() label.LabelerInfo { return t.info }

// Label implements label.Labeler.
func (t *Teacher) Label(_ context.Context, q label.Query) (label.Label, error) {
	if !q.A.HasTruth() || !q.B.HasTruth() {
		return label.Label{}, fmt.Errorf("teacher %s: %w", t.info.Spec, ErrNoTruth)
	}
	rng := newStream(t.seed, q.Key(), 0, 0)
	a, p := decide(&t.spec, q.A, q.B, &rng)
	return label.Label{Answer: a, Confidence: p}, nil
}

// decide is B-Pref's get_label for one pair: skip and equal look at the plain returns;
// the preference at the myopically discounted ones, rational or Boltzmann; then a
// mistake may flip it. It returns the answer (first = x) and its probability under the
// teacher's model.
func decide(s *label.Spec, x, y label.Segment, rng *stream) (label.Answer, float64) {
	rx, ry := x.Return(1), y.Return(1)
	if math.Max(rx, ry) <= s.Skip {
		return label.Abstain, 1
	}
	if d := math.Abs(rx - ry); d == 0 || d < s.Equal {
		return label.Tie, 1
	}
	dx, dy := x.Return(s.Gamma), y.Return(s.Gamma)
	var pFirst float64
	switch {
	case math.IsInf(s.Beta, 1):
		if dx == dy {
			return label.Tie, 1
		}
		pFirst = 0
		if dx > dy {
			pFirst = 1
		}
	default:
		pFirst = 1 / (1 + math.Exp(-s.Beta*(dx-dy)))
	}
	first := rng.float() < pFirst
	if s.Epsilon > 0 && rng.float() < s.Epsilon {
		first = !first
	}
	pEmit := pFirst*(1-s.Epsilon) + (1-pFirst)*s.Epsilon // P(first is emitted)
	if first {
		return label.First, pEmit
	}
	return label.Second, 1 - pEmit
}

// Biased is a position-biased judge: with probability p it answers "the frame shown
// first" without looking; otherwise it answers as the teacher of the rest of its spec.
// Asked in both orders through label.Consistent, a truthful answer and a biased one agree
// only when the truth happens to be shown first, so its order consistency is about 1 − p.
type Biased struct {
	spec label.Spec
	seed uint64
	info label.LabelerInfo
}

// NewBiased returns the biased judge of spec ("biased:p", possibly with other terms).
func NewBiased(spec label.Spec, seed uint64) (*Biased, error) {
	if spec.VLM {
		return nil, fmt.Errorf("teacher.NewBiased: %q is not a scripted teacher", spec)
	}
	return &Biased{spec: spec, seed: seed, info: label.LabelerInfo{Kind: "teacher", Spec: spec.String(), Params: spec.Params(), Seed: seed}}, nil
}

// Info implements label.Judge.
func (b *Biased) Info() label.LabelerInfo { return b.info }

// Judge implements label.Judge.
func (b *Biased) Judge(_ context.Context, q label.Query, order label.Order, sample int) (label.Verdict, error) {
	if !q.A.HasTruth() || !q.B.HasTruth() {
		return label.Verdict{}, fmt.Errorf("teacher %s: %w", b.info.Spec, ErrNoTruth)
	}
	x, y := q.A, q.B
	if order == label.OrderBA {
		x, y = y, x
	}
	rng := newStream(b.seed, q.Key(), uint64(order)+1, uint64(sample))
	if rng.float() < b.spec.Bias {
		return label.Verdict{Choice: label.ChoiceFirst, Raw: "first"}, nil
	}
	a, _ := decide(&b.spec, x, y, &rng)
	c := label.ChoiceUnsure
	switch a {
	case label.First:
		c = label.ChoiceFirst
	case label.Second:
		c = label.ChoiceSecond
	case label.Tie:
		c = label.ChoiceEqual
	}
	return label.Verdict{Choice: c, Raw: c.String()}, nil
}

// stream is a PCG stream seeded from the teacher's seed and the question.
type stream struct{ pcg rand.PCG }

func newStream(seed uint64, key string, order, sample uint64) stream {
	h := fnv.New64a()
	h.Write([]byte(key))
	return stream{pcg: *rand.NewPCG(seed^0x7465616368657221, h.Sum64()^(order<<56)^(sample<<40))}
}

// float is uniform in [0, 1).
func (s *stream) float() float64 { return float64(s.pcg.Uint64()>>11) / (1 << 53) }
