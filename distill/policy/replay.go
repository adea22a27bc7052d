package policy

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Replay is a ring buffer of transitions, allocated in full up front as float32 arrays
// (so a run's memory is known at its start and adding allocates nothing). Once full, each
// new transition replaces the oldest.
type Replay struct {
	obsDim, actDim, cap int
	obs, act, next      []float32 // [cap·obsDim], [cap·actDim], [cap·obsDim]
	rew, done           []float32 // [cap]
	div                 []float32 // [cap] the count term's divisors (nil: none), see SetReward
	size, pos           int
	// pinned slots [0, pinned) hold demonstrations (Pin): never overwritten, and a share
	// ratio of every sample is drawn from them.
	pinned int
	ratio  float64
}

// NewReplay allocates a buffer for capacity transitions.
func NewReplay(capacity, obsDim, actDim int) (*Replay, error) {
	if capacity < 1 || obsDim < 1 || actDim < 1 {
		return nil, fmt.Errorf("policy.NewReplay: capacity %d, dimensions %d and %d: want at least 1", capacity, obsDim, actDim)
	}
	return &Replay{
		obsDim: obsDim, actDim: actDim, cap: capacity,
		obs: make([]float32, capacity*obsDim), act: make([]float32, capacity*actDim),
		next: make([]float32, capacity*obsDim), rew: make([]float32, capacity), done: make([]float32, capacity),
	}, nil
}

// Len is the number of transitions held.
func (r *Replay) Len() int { return r.size }

// Cap is the capacity.
func (r *Replay) Cap() int { return r.cap }

// Bytes is the buffer's memory.
func (r *Replay) Bytes() int64 {
	return int64(4 * (2*r.cap*r.obsDim + r.cap*r.actDim + 2*r.cap + len(r.div)))
}

// Add stores one transition. terminal marks a true end of the task (no bootstrap from
// next); an episode cut off by a time limit is not terminal.
func (r *Replay) Add(obs, act []float32, reward float32, next []float32, terminal bool) {
	if len(obs) != r.obsDim || len(next) != r.obsDim || len(act) != r.actDim {
		panic(fmt.Sprintf("policy: Replay.Add: lengths %d, %d, %d, want %d, %d, %d", len(obs), len(act), len(next), r.obsDim, r.actDim, r.obsDim))
	}
	i := r.pos
	copy(r.obs[i*r.obsDim:], obs)
	copy(r.act[i*r.actDim:], act)
	copy(r.next[i*r.obsDim:], next)
	r.rew[i] = reward
	r.done[i] = 0
	if terminal {
		r.done[i] = 1
	}
	r.pos++
	if r.pos == r.cap {
		r.pos = r.pinned
	}
	r.size = min(r.size+1, r.cap)
}

// Pin makes the transitions held so far permanent (demonstrations): once the buffer is
// full, Add overwrites the oldest of the later ones, and Sample draws round(ratio·N) rows
// of each batch from the pinned ones and the rest from the others (Ball et al. 2023's
// symmetric sampling at ratio 0.5); until there are others, and at ratio 0, rows are drawn
// uniformly from the whole buffer. Pin is called once, before the buffer has wrapped.
func (r *Replay) Pin(ratio float64) {
	if r.size != r.pos || r.size == r.cap {
		panic("policy: Replay.Pin after the buffer has filled")
	}
	r.pinned, r.ratio = r.size, ratio
}

// Pinned is the number of pinned transitions (slots 0 to Pinned()−1).
func (r *Replay) Pinned() int { return r.pinned }

// Pos is the slot the next Add writes: slots are 0 to Cap()−1, and Add fills them in
// order, then overwrites the oldest.
func (r *Replay) Pos() int { return r.pos }

// SetReward rewrites the reward of slot i (a relabelled buffer, see Learner). With
// divisors enabled, the slot's divisor divides it: the count-based term recorded when
// the transition was added stays applied.
func (r *Replay) SetReward(i int, reward float32) {
	if r.div != nil {
		reward /= r.div[i]
	}
	r.rew[i] = reward
}

// EnableDivisors makes the buffer keep a divisor per slot (1 until SetDivisor).
func (r *Replay) EnableDivisors() {
	r.div = make([]float32, r.cap)
	for i := range r.div {
		r.div[i] = 1
	}
}

// SetDivisor records the count term's divisor of slot i (see SetReward).
func (r *Replay) SetDivisor(i int, d float32) { r.div[i] = d }

// Batch is a sample of transitions, row-major.
type Batch struct {
	N         int
	Obs, Next []float32 // [N·obsDim]
	Act       []float32 // [N·actDim]
	Rew, Done []float32 // [N]
}

func newBatch(n, obsDim, actDim int) Batch {
	return Batch{N: n, Obs: make([]float32, n*obsDim), Next: make([]float32, n*obsDim),
		Act: make([]float32, n*actDim), Rew: make([]float32, n), Done: make([]float32, n)}
}

// Sample fills b with b.N transitions drawn uniformly with replacement by rng (one IntN per
// row, in row order); with pinned transitions, the first round(ratio·N) rows from those and
// the rest from the others (see Pin). The buffer must not be empty.
func (r *Replay) Sample(rng *rand.Rand, b *Batch) {
	if r.size == 0 {
		panic("policy: Replay.Sample on an empty buffer")
	}
	O, A := r.obsDim, r.actDim
	mix := r.pinned > 0 && r.size > r.pinned && r.ratio > 0
	fromPinned := 0
	if mix {
		fromPinned = int(math.Round(r.ratio * float64(b.N)))
	}
	for k := 0; k < b.N; k++ {
		var i int
		switch {
		case k < fromPinned:
			i = rng.IntN(r.pinned)
		case mix:
			i = r.pinned + rng.IntN(r.size-r.pinned)
		default:
			i = rng.IntN(r.size)
		}
		copy(b.Obs[k*O:(k+1)*O], r.obs[i*O:(i+1)*O])
		copy(b.Next[k*O:(k+1)*O], r.next[i*O:(i+1)*O])
		copy(b.Act[k*A:(k+1)*A], r.act[i*A:(i+1)*A])
		b.Rew[k] = r.rew[i]
		b.Done[k] = r.done[i]
	}
}
