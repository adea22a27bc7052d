package label

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Labeler answers a query. Implementations must be safe for concurrent use and
// deterministic where they can be: a scripted teacher's randomness is derived from its
// seed and the pair, so a resumed run gives the same labels as an uninterrupted one.
type Labeler interface {
	Info() LabelerInfo
	// Label answers q. An error means no answer (the pair is asked again by the next
	// run); a pair that cannot be answered well is an Abstain label, not an error.
	Label(ctx context.Context, q Query) (Label, error)
}

// Label is a labeller's answer before the runner adds the pair, provenance and time.
type Label struct {
	Answer     Answer
	Confidence float64
	Votes      *Votes
	Orders     []OrderResult
	Consistent *bool
	Usage      *Usage
}

// Judge answers one question in a given order: which of the two frames, as shown,
// shows more progress? A VLM and the position-biased teacher are judges: they may
// prefer a position, so Consistent asks them in both orders.
type Judge interface {
	Info() LabelerInfo
	// Judge shows q.A first when order is OrderAB, q.B first when OrderBA. sample
	// numbers repeated questions (0..k-1) so that a cache keeps them apart.
	Judge(ctx context.Context, q Query, order Order, sample int) (Verdict, error)
}

// Verdict is a judge's answer to one question.
type Verdict struct {
	Choice   Choice // in the terms of the question (first = shown first)
	Raw      string
	Analysis string
	Retried  bool
	Cached   bool
	Usage    Usage
}

// Disagree is what Consistent makes of a pair whose two orders disagree.
type Disagree string

// TieOnDisagree labels the pair a tie; DropOnDisagree abstains.
const (
	TieOnDisagree  Disagree = "tie"
	DropOnDisagree Disagree = "drop"
)

// ConsistentOptions configures Consistent.
type ConsistentOptions struct {
	// Orders is 2 (ask AB and BA; the default) or 1 (AB only).
	Orders int
	// Samples is the number of answers per order (default 1); they are voted on.
	Samples int
	// OnDisagree: TieOnDisagree (default) or DropOnDisagree.
	OnDisagree Disagree
}

// Consistent is the Labeler over a Judge that cancels position bias: it asks each pair
// in both orders, Samples times each, takes each order's plurality verdict (in record
// terms), and labels the pair only when both verdicts agree; a disagreement becomes a tie
// or an abstention (OnDisagree) and is recorded as inconsistent. An order without a
// decisive verdict (unsure, unreadable, or a tied vote) makes the label abstain.
type Consistent struct {
	judge Judge
	opt   ConsistentOptions
	info  LabelerInfo
}

// NewConsistent wraps j.
func NewConsistent(j Judge, o ConsistentOptions) (*Consistent, error) {
	if o.Orders == 0 {
		o.Orders = 2
	}
	if o.Samples == 0 {
		o.Samples = 1
	}
	if o.OnDisagree == "" {
		o.OnDisagree = TieOnDisagree
	}
	var errs []error
	if o.Orders != 1 && o.Orders != 2 {
		errs = append(errs, fmt.Errorf("orders: %d, want 1 or 2", o.Orders))
	}
	if o.Samples < 1 || o.Samples > 99 {
		errs = append(errs, fmt.Errorf("samples: %d, want 1..99", o.Samples))
	}
	if o.OnDisagree != TieOnDisagree && o.OnDisagree != DropOnDisagree {
		errs = append(errs, fmt.Errorf("on-disagree: %q, want tie or drop", o.OnDisagree))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("label.NewConsistent: %w", err)
	}
	info := j.Info()
	params := map[string]float64{"orders": float64(o.Orders), "samples": float64(o.Samples)}
	for k, v := range info.Params {
		params[k] = v
	}
	info.Params = params
	if o.Orders == 2 {
		info.OnDisagree = string(o.OnDisagree)
	}
	return &Consistent{judge: j, opt: o, info: info}, nil
}

// Info implements Labeler.
func (c *Consistent) Info() LabelerInfo { return c.info }

// Label implements Labeler.
func (c *Consistent) Label(ctx context.Context, q Query) (Label, error) {
	var (
		votes    Votes
		usage    Usage
		orders   = make([]OrderResult, 0, c.opt.Orders)
		verdicts [2]Choice
	)
	for o := 0; o < c.opt.Orders; o++ {
		order := Order(o)
		res := OrderResult{Shown: order, Answers: make([]Sample, 0, c.opt.Samples)}
		var ov Votes
		for s := 0; s < c.opt.Samples; s++ {
			v, err := c.judge.Judge(ctx, q, order, s)
			if err != nil {
				return Label{}, err
			}
			usage.Add(v.Usage)
			rc := v.Choice
			if order == OrderBA {
				rc = rc.Swap()
			}
			ov.add(rc)
			votes.add(rc)
			res.Answers = append(res.Answers, Sample{Raw: v.Raw, Analysis: v.Analysis, Parsed: v.Choice, Retried: v.Retried, Cached: v.Cached})
		}
		res.Verdict = plurality(ov)
		verdicts[o] = res.Verdict
		orders = append(orders, res)
	}
	l := Label{Votes: &votes, Orders: orders, Usage: &usage}
	n := float64(votes.Decisive())
	share := func(k int) float64 {
		if n == 0 {
			return 0
		}
		return float64(k) / n
	}
	decisive := func(c Choice) bool { return c == ChoiceFirst || c == ChoiceSecond || c == ChoiceEqual }
	switch {
	case c.opt.Orders == 1:
		l.Answer = verdicts[0].Answer()
	case !decisive(verdicts[0]) || !decisive(verdicts[1]):
		// An order without a decisive verdict: position bias cannot be ruled out.
		l.Answer = Abstain
	case verdicts[0] == verdicts[1]:
		t := true
		l.Consistent = &t
		l.Answer = verdicts[0].Answer()
	default:
		f := false
		l.Consistent = &f
		l.Answer = Abstain
		if c.opt.OnDisagree == TieOnDisagree {
			l.Answer = Tie
			// How evenly the votes split between the two frames: 1 when they cancel.
			l.Confidence = 1 - math.Abs(share(votes.First)-share(votes.Second))
			return l, nil
		}
	}
	switch l.Answer {
	case First:
		l.Confidence = share(votes.First)
	case Second:
		l.Confidence = share(votes.Second)
	case Tie:
		l.Confidence = share(votes.Equal)
	}
	return l, nil
}

// plurality is the strict plurality of first, second and equal votes, or unsure.
func plurality(v Votes) Choice {
	best, n, tied := ChoiceUnsure, 0, false
	for _, c := range []struct {
		c Choice
		n int
	}{{ChoiceFirst, v.First}, {ChoiceSecond, v.Second}, {ChoiceEqual, v.Equal}} {
		switch {
		case c.n > n:
			best, n, tied = c.c, c.n, false
		case c.n == n && n > 0:
			tied = true
		}
	}
	if tied || n == 0 {
		return ChoiceUnsure
	}
	return best
}
