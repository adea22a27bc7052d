package reward

import (
	"context"
	"fmt"

	"robodistill/control/nn"
	"robodistill/distill/label"
	"robodistill/vision"
)

// Scorer rates candidate pairs by the ensemble's disagreement about them: the standard
// deviation over members of P(A ≻ B) = σ(r_A − r_B), segment rewards summed (PEBBLE's
// disagreement sampling). It implements label.Scorer for label.Disagreement. Frames are
// read from Source and run through vision/ with the models' configuration; each frame's
// rewards are cached by hash, so a frame costs one preprocessing and one forward pass per
// member however many candidates name it. Not safe for concurrent use.
type Scorer struct {
	nets  []*nn.Sequential
	src   label.Source
	pre   *vision.Preprocessor
	cache map[string][]float32 // frame hash → raw reward per member
	x     nn.Tensor
}

// NewScorer returns a Scorer for an ensemble trained on frames prepared with cfg. Close
// it to free the preprocessor.
func NewScorer(nets []*nn.Sequential, cfg vision.Config, src label.Source) (*Scorer, error) {
	if len(nets) < 2 {
		return nil, fmt.Errorf("reward.NewScorer: disagreement needs at least 2 members, got %d", len(nets))
	}
	pre, err := vision.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("reward.NewScorer: %w", err)
	}
	s := &Scorer{nets: nets, src: src, pre: pre, cache: map[string][]float32{}}
	sh := pre.Shape()
	s.x = nn.Tensor{Shape: []int{1, sh[0], sh[1], sh[2]}, Data: make([]float32, pre.Len())}
	return s, nil
}

// Close frees the preprocessor.
func (s *Scorer) Close() error { return s.pre.Close() }

// Disagreement implements label.Scorer.
func (s *Scorer) Disagreement(ctx context.Context, pairs []label.Pair) ([]float64, error) {
	out := make([]float64, len(pairs))
	p := make([]float64, len(s.nets))
	for i, pr := range pairs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for m := range s.nets {
			a, err := s.segment(pr.A, m)
			if err != nil {
				return nil, err
			}
			b, err := s.segment(pr.B, m)
			if err != nil {
				return nil, err
			}
			p[m] = sigmoid(a - b)
		}
		_, out[i] = meanStd(p)
	}
	return out, nil
}

func (s *Scorer) segment(seg label.Segment, member int) (float64, error) {
	var sum float64
	for _, f := range seg {
		r, err := s.rewards(f.Hash)
		if err != nil {
			return 0, err
		}
		sum += float64(r[member])
	}
	return sum, nil
}

// rewards returns every member's raw reward for a frame.
func (s *Scorer) rewards(hash string) ([]float32, error) {
	if r, ok := s.cache[hash]; ok {
		return r, nil
	}
	f, err := s.src.Frame(hash)
	if err != nil {
		return nil, err
	}
	img := vision.ImageView{Encoding: "rgb8", Width: f.W, Height: f.H, Step: 3 * f.W, Data: f.RGB}
	if err := s.pre.Process(img, s.x.Data); err != nil {
		return nil, fmt.Errorf("frame %s: %w", short(hash), err)
	}
	r := make([]float32, len(s.nets))
	for m, net := range s.nets {
		r[m] = net.Forward(&s.x).Data[0]
	}
	s.cache[hash] = r
	return r, nil
}
