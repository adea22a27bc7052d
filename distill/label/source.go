package label

import (
	"errors"
	"math"
	"strings"
)

// ErrFrameNotFound is what Source.Frame returns (wrapped) for a hash it does not hold.
var ErrFrameNotFound = errors.New("frame not found")

// Episode describes one recorded episode of a Source.
type Episode struct {
	// ID names the episode stably across runs (a bag file's base name, say); labels
	// record it next to the frame hashes.
	ID string
	// Task names the task ("drawer-open"). Pairs are drawn within one task only:
	// progress toward different goals is not comparable.
	Task string
	// Goal is the goal text the labeller is given.
	Goal string
}

// FrameInfo is what sampling and scripted teachers need of a frame: no pixels.
type FrameInfo struct {
	// Hash is the frame's content hash (lowercase hex sha256, as the episode format
	// defines it). Labels name frames by it.
	Hash string
	// Episode is the index of the frame's episode in Source.Episodes(); Step its step.
	Episode, Step int
	// Reward and Success are simulator ground truth for the frame's state. On a robot
	// Reward is NaN and Success false.
	Reward  float64
	Success bool
}

// HasTruth reports whether the frame carries simulator ground truth.
func (f FrameInfo) HasTruth() bool { return !math.IsNaN(f.Reward) && !math.IsInf(f.Reward, 0) }

// Frame is a frame with its pixels.
type Frame struct {
	FrameInfo
	W, H int
	RGB  []byte // packed RGB8, first row at the top, len W*H*3
}

// Source gives a labelling run its episodes and frames. Implementations must be safe for
// concurrent use; labeltest.TestSource is the conformance suite every Source passes.
type Source interface {
	// Episodes lists the episodes; their indices are the Episode of FrameInfo.
	Episodes() []Episode
	// Frames lists one episode's frames in step order, without pixels.
	Frames(episode int) ([]FrameInfo, error)
	// Frame returns a frame with its pixels by content hash; an unknown hash gives an
	// error wrapping ErrFrameNotFound.
	Frame(hash string) (Frame, error)
}

// Segment is a run of consecutive frames of one episode. Single-frame pairs have
// segments of length one. A labeller that looks at one image per side (a VLM) sees the
// segment's last frame; scripted teachers sum the segment's rewards (B-Pref).
type Segment []FrameInfo

// Last is the segment's final frame, the one that names it in a label.
func (s Segment) Last() FrameInfo { return s[len(s)-1] }

// Return is the segment's discounted sum of rewards, Σ γ^(L-1-t)·r_t: with γ < 1 the
// later frames count more (B-Pref's myopic teacher). γ = 1 is the plain sum.
func (s Segment) Return(gamma float64) float64 {
	var sum, w float64 = 0, 1
	for i := len(s) - 1; i >= 0; i-- {
		sum += w * s[i].Reward
		w *= gamma
	}
	return sum
}

// HasTruth reports whether every frame of the segment carries ground truth.
func (s Segment) HasTruth() bool {
	for _, f := range s {
		if !f.HasTruth() {
			return false
		}
	}
	return len(s) > 0
}

// Hashes lists the segment's frame hashes in step order.
func (s Segment) Hashes() []string {
	out := make([]string, len(s))
	for i, f := range s {
		out[i] = f.Hash
	}
	return out
}

// Pair is one question: does A or B show more progress? A is the "first" of a label's
// answer.
type Pair struct {
	A, B Segment
}

// Key identifies the pair regardless of which side is A: the same two frames (or
// segments) asked in the other order are the same question.
func (p Pair) Key() string { return pairKey(p.A.Hashes(), p.B.Hashes()) }

func pairKey(a, b []string) string {
	ka, kb := strings.Join(a, ","), strings.Join(b, ",")
	if kb < ka {
		ka, kb = kb, ka
	}
	return ka + "|" + kb
}

// Query is a pair with what the labeller is told about it.
type Query struct {
	Pair
	Task, Goal string
	// EpisodeA and EpisodeB are the IDs of the segments' episodes.
	EpisodeA, EpisodeB string
}

// NewQuery completes a pair from the source's episode list.
func NewQuery(p Pair, episodes []Episode) Query {
	ea, eb := episodes[p.A.Last().Episode], episodes[p.B.Last().Episode]
	return Query{Pair: p, Task: ea.Task, Goal: ea.Goal, EpisodeA: ea.ID, EpisodeB: eb.ID}
}
