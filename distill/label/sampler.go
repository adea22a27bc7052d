package label

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
)

// ErrExhausted is a sampler that cannot find another distinct pair.
var ErrExhausted = errors.New("no more distinct pairs to sample")

// Sampler chooses the pairs to label.
type Sampler interface {
	// Sample returns up to n pairs it has not returned before; fewer, with an error
	// wrapping ErrExhausted, when the frames run out.
	Sample(ctx context.Context, n int) ([]Pair, error)
}

// Releaser is a Sampler that can take pairs back: they may be returned again later.
type Releaser interface {
	Release(pairs []Pair)
}

// UniformOptions configures Uniform.
type UniformOptions struct {
	// Within is the share of pairs drawn within one episode, in [0, 1]; the others pair
	// frames of two different episodes of the same task. When one kind is impossible
	// (a task with one episode, an episode with one frame) the other is drawn.
	Within float64
	// Segment is the number of frames per side (default 1).
	Segment int
	Seed    uint64
}

// Uniform draws pairs uniformly over steps: the first side uniformly over all frames (or
// segment ends) of the source, the second uniformly over the same episode's other frames
// or over the frames of the task's other episodes. It skips pairs of identical frames
// (same content hash) and pairs it returned before, and puts the two sides in random
// order. The sequence depends only on the source and the seed, which is what lets a
// resumed run ask exactly the pairs an uninterrupted one would have.
type Uniform struct {
	opt UniformOptions

	eps    [][]FrameInfo
	cum    []int // cum[e] = valid segment ends in episodes before e
	total  int
	tasks  map[string]*taskIndex
	epTask []*taskIndex

	mu   sync.Mutex
	rng  *rand.Rand
	seen map[string]struct{}
}

type taskIndex struct {
	eps   []int // episodes of the task
	cum   []int // ends before eps[i]
	pos   map[int]int
	total int
}

// NewUniform indexes src's frames.
func NewUniform(src Source, o UniformOptions) (*Uniform, error) {
	if o.Segment == 0 {
		o.Segment = 1
	}
	if o.Within < 0 || o.Within > 1 || o.Within != o.Within {
		return nil, fmt.Errorf("label.NewUniform: within: %v outside [0, 1]", o.Within)
	}
	if o.Segment < 1 {
		return nil, fmt.Errorf("label.NewUniform: segment: %d frames, want ≥ 1", o.Segment)
	}
	u := &Uniform{opt: o, tasks: map[string]*taskIndex{}, seen: map[string]struct{}{},
		rng: rand.New(rand.NewPCG(o.Seed, 0x6c6162656c73))}
	episodes := src.Episodes()
	for e, ep := range episodes {
		fs, err := src.Frames(e)
		if err != nil {
			return nil, fmt.Errorf("label.NewUniform: episode %s: %w", ep.ID, err)
		}
		u.eps = append(u.eps, fs)
		u.cum = append(u.cum, u.total)
		n := u.ends(e)
		u.total += n
		key := ep.Task
		if key == "" {
			key = ep.Goal
		}
		t := u.tasks[key]
		if t == nil {
			t = &taskIndex{pos: map[int]int{}}
			u.tasks[key] = t
		}
		u.epTask = append(u.epTask, t)
		if n > 0 {
			t.pos[e] = len(t.eps)
			t.eps = append(t.eps, e)
			t.cum = append(t.cum, t.total)
			t.total += n
		}
	}
	if u.total < 2 {
		return nil, fmt.Errorf("label.NewUniform: %w: the source has %d frames to compare", ErrExhausted, u.total)
	}
	return u, nil
}

// ends is the number of valid segment ends in episode e.
func (u *Uniform) ends(e int) int { return max(0, len(u.eps[e])-u.opt.Segment+1) }

func (u *Uniform) segment(e, end int) Segment {
	i := end + u.opt.Segment - 1
	return Segment(u.eps[e][i-u.opt.Segment+1 : i+1])
}

// locate maps an index over cum to (position, offset).
func locate(cum []int, g int) (int, int) {
	i := sort.Search(len(cum), func(i int) bool { return cum[i] > g }) - 1
	return i, g - cum[i]
}

// draw makes one attempt at a new pair.
func (u *Uniform) draw() (Pair, bool) {
	e, i := locate(u.cum, u.rng.IntN(u.total))
	for u.ends(e) == 0 { // empty episodes share their cum value with the next one
		e++
	}
	t := u.epTask[e]
	own := u.ends(e)
	within := u.rng.Float64() < u.opt.Within
	canWithin, canAcross := own >= 2, t.total-own > 0
	if !canWithin && !canAcross {
		return Pair{}, false
	}
	if within && !canWithin || !within && !canAcross {
		within = !within
	}
	var e2, j int
	if within {
		e2, j = e, u.rng.IntN(own-1)
		if j >= i {
			j++
		}
	} else {
		g := u.rng.IntN(t.total - own)
		if g >= t.cum[t.pos[e]] {
			g += own
		}
		k, off := locate(t.cum, g)
		e2, j = t.eps[k], off
	}
	a, b := u.segment(e, i), u.segment(e2, j)
	if u.rng.IntN(2) == 1 {
		a, b = b, a
	}
	p := Pair{A: a, B: b}
	if a.Last().Hash == b.Last().Hash {
		return Pair{}, false // identical frames: nothing to compare
	}
	k := p.Key()
	if _, dup := u.seen[k]; dup {
		return Pair{}, false
	}
	u.seen[k] = struct{}{}
	return p, true
}

// maxMisses is how many failed draws in a row mean the pairs are used up.
const maxMisses = 10000

// Sample implements Sampler.
func (u *Uniform) Sample(ctx context.Context, n int) ([]Pair, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]Pair, 0, n)
	for misses := 0; len(out) < n; {
		if p, ok := u.draw(); ok {
			out, misses = append(out, p), 0
			continue
		}
		if misses++; misses == maxMisses {
			return out, fmt.Errorf("label.Uniform.Sample: %w (%d draws in a row found none)", ErrExhausted, maxMisses)
		}
	}
	return out, ctx.Err()
}

// Release implements Releaser.
func (u *Uniform) Release(pairs []Pair) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, p := range pairs {
		delete(u.seen, p.Key())
	}
}

// Scorer rates candidate pairs for active querying; the reward trainer implements it.
type Scorer interface {
	// Disagreement returns one score per pair, higher for pairs worth asking about,
	// e.g. the standard deviation of P(A ≻ B) over a reward-model ensemble (PEBBLE).
	Disagreement(ctx context.Context, pairs []Pair) ([]float64, error)
}

// Disagreement draws Oversample×n candidates from a base sampler and keeps the n that
// the scorer rates highest; the rest go back to the base sampler when it can take them.
type Disagreement struct {
	Base       Sampler
	Scorer     Scorer
	Oversample int // candidates per pair kept; default 10
}

// Sample implements Sampler.
func (d *Disagreement) Sample(ctx context.Context, n int) ([]Pair, error) {
	k := d.Oversample
	if k <= 0 {
		k = 10
	}
	cands, err := d.Base.Sample(ctx, n*k)
	if len(cands) == 0 {
		return nil, err
	}
	scores, serr := d.Scorer.Disagreement(ctx, cands)
	if serr != nil {
		return nil, fmt.Errorf("label.Disagreement.Sample: %w", serr)
	}
	if len(scores) != len(cands) {
		return nil, fmt.Errorf("label.Disagreement.Sample: scorer returned %d scores for %d pairs", len(scores), len(cands))
	}
	idx := make([]int, len(cands))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return scores[idx[i]] > scores[idx[j]] })
	keep := min(n, len(idx))
	out := make([]Pair, keep)
	for i := range out {
		out[i] = cands[idx[i]]
	}
	if r, ok := d.Base.(Releaser); ok {
		rest := make([]Pair, 0, len(idx)-keep)
		for _, i := range idx[keep:] {
			rest = append(rest, cands[i])
		}
		r.Release(rest)
	}
	if len(out) < n {
		return out, err
	}
	return out, nil
}
