// Package episodes is the label.Source over a recorded-episode collection
// (control/episode): the folder `robodistill collect` writes, or one the daemon's logs
// were gathered into. Frames are named by the collection's content hashes; ground truth
// comes from the simulator's episode status topic (absent on a robot: NaN rewards).
package episodes

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"

	"go.uber.org/zap"

	"robodistill/control/episode"
	"robodistill/distill/label"
)

// Source reads a collection. It is safe for concurrent use.
type Source struct {
	c      *episode.Collection
	eps    []label.Episode
	frames [][]label.FrameInfo
	files  []string
	byHash map[string]label.FrameInfo
}

// Open opens the collection folder dir and reads every episode's steps once for their
// hashes and ground truth. Task and goal text come from each episode's metadata, or the
// collection's "task" parameter.
func Open(dir string, log *zap.Logger) (*Source, error) {
	if log == nil {
		log = zap.NewNop()
	}
	c, err := episode.OpenCollection(dir)
	if err != nil {
		return nil, fmt.Errorf("episodes.Open: %w", err)
	}
	s := &Source{c: c, byHash: map[string]label.FrameInfo{}}
	if stale := c.Stale(); len(stale) > 0 {
		log.Warn("episodes indexed from their bags (run `robodistill collect` to rewrite the index)", zap.Ints("episodes", stale))
	}
	spec := c.Spec()
	for _, e := range c.Entries() {
		if err := s.add(e, spec); err != nil {
			c.Close()
			return nil, fmt.Errorf("episodes.Open %s: %w", dir, err)
		}
	}
	if len(s.eps) == 0 {
		c.Close()
		return nil, fmt.Errorf("episodes.Open %s: the collection has no episodes", dir)
	}
	return s, nil
}

func (s *Source) add(e episode.Entry, spec episode.Spec) error {
	ep, err := s.c.Episode(e.Episode)
	if err != nil {
		return err
	}
	defer ep.Close()
	le := label.Episode{ID: fmt.Sprintf("episode-%06d", e.Episode), Task: spec.Params["task"]}
	if ep.Meta != nil {
		if ep.Meta.Task != "" {
			le.Task = ep.Meta.Task
		}
		le.Goal = ep.Meta.Goal
	}
	idx := len(s.eps)
	// The index already holds every frame's hash and the bag its parsed statuses: no
	// frame needs decoding or hashing here.
	if len(e.Frames) != ep.Len() {
		return fmt.Errorf("episode %d: the index lists %d frames, the bag has %d steps (run 'robodistill collect verify')", e.Episode, len(e.Frames), ep.Len())
	}
	var infos []label.FrameInfo
	for k, ref := range e.Frames {
		st, err := ep.Status(k)
		if err != nil {
			return err
		}
		fi := label.FrameInfo{Hash: ref.Hash.String(), Episode: idx, Step: k, Reward: math.NaN()}
		if st != nil {
			fi.Reward, fi.Success = st.Reward, st.Success
		}
		infos = append(infos, fi)
		if _, ok := s.byHash[fi.Hash]; !ok {
			s.byHash[fi.Hash] = fi
		}
	}
	s.eps = append(s.eps, le)
	s.frames = append(s.frames, infos)
	s.files = append(s.files, filepath.Join(s.c.Dir(), e.File))
	return nil
}

// File is the path of episode e's bag: what a model's manifest names by hash as its
// training data.
func (s *Source) File(e int) string { return s.files[e] }

// Close closes the collection.
func (s *Source) Close() error { return s.c.Close() }

// Episodes implements label.Source.
func (s *Source) Episodes() []label.Episode { return append([]label.Episode(nil), s.eps...) }

// Frames implements label.Source.
func (s *Source) Frames(e int) ([]label.FrameInfo, error) {
	if e < 0 || e >= len(s.frames) {
		return nil, fmt.Errorf("episodes.Source.Frames: no episode %d", e)
	}
	return append([]label.FrameInfo(nil), s.frames[e]...), nil
}

// Frame implements label.Source: the frame's pixels as packed RGB8 (bgr8 and mono8
// images are converted).
func (s *Source) Frame(hash string) (label.Frame, error) {
	fi, ok := s.byHash[hash]
	if !ok {
		return label.Frame{}, fmt.Errorf("episodes.Source.Frame %s: %w", hash, label.ErrFrameNotFound)
	}
	h, err := episode.ParseHash(hash)
	if err != nil {
		return label.Frame{}, fmt.Errorf("episodes.Source.Frame: %w", err)
	}
	f, err := s.c.Frame(h) // the collection is safe for concurrent use
	if errors.Is(err, episode.ErrUnknownFrame) {
		return label.Frame{}, fmt.Errorf("episodes.Source.Frame %s: %w", hash, label.ErrFrameNotFound)
	}
	if err != nil {
		return label.Frame{}, fmt.Errorf("episodes.Source.Frame: %w", err)
	}
	rgb, err := toRGB(f)
	if err != nil {
		return label.Frame{}, fmt.Errorf("episodes.Source.Frame %s: %w", hash, err)
	}
	return label.Frame{FrameInfo: fi, W: f.Width, H: f.Height, RGB: rgb}, nil
}

func toRGB(f episode.Frame) ([]byte, error) {
	n := f.Width * f.Height
	switch f.Encoding {
	case "rgb8":
		return f.Data, nil
	case "bgr8":
		out := make([]byte, 3*n)
		for i := 0; i < n; i++ {
			out[3*i], out[3*i+1], out[3*i+2] = f.Data[3*i+2], f.Data[3*i+1], f.Data[3*i]
		}
		return out, nil
	case "mono8":
		out := make([]byte, 3*n)
		for i := 0; i < n; i++ {
			out[3*i], out[3*i+1], out[3*i+2] = f.Data[i], f.Data[i], f.Data[i]
		}
		return out, nil
	}
	return nil, fmt.Errorf("image encoding %q is not supported", f.Encoding)
}
