// Package labeltest supports tests of labelling: an in-memory Source, synthetic episodes
// whose frames show their ground-truth progress as a bar that a fake VLM can read back
// (ReadProgress), and TestSource, the conformance suite every label.Source passes — the
// in-memory one here and the adapter over recorded episodes alike.
package labeltest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"robodistill/distill/label"
)

// Source is an in-memory label.Source.
type Source struct {
	mu     sync.RWMutex
	eps    []label.Episode
	frames [][]label.FrameInfo
	pix    map[string]label.Frame
}

// NewSource returns an empty Source.
func NewSource() *Source { return &Source{pix: map[string]label.Frame{}} }

// Add appends an episode. Each frame's Episode is set to the episode's index; a frame
// without a hash gets the sha256 of its pixels.
func (s *Source) Add(ep label.Episode, frames []label.Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := len(s.eps)
	s.eps = append(s.eps, ep)
	infos := make([]label.FrameInfo, len(frames))
	for i, f := range frames {
		f.Episode = e
		if f.Hash == "" {
			f.Hash = Hash(f.W, f.H, f.RGB)
		}
		infos[i] = f.FrameInfo
		s.pix[f.Hash] = f
	}
	s.frames = append(s.frames, infos)
}

// Hash is the content hash Source gives frames without one.
func Hash(w, h int, rgb []byte) string {
	d := sha256.New()
	fmt.Fprintf(d, "%dx%d:", w, h)
	d.Write(rgb)
	return hex.EncodeToString(d.Sum(nil))
}

// Episodes implements label.Source.
func (s *Source) Episodes() []label.Episode {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]label.Episode(nil), s.eps...)
}

// Frames implements label.Source.
func (s *Source) Frames(e int) ([]label.FrameInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e < 0 || e >= len(s.frames) {
		return nil, fmt.Errorf("labeltest.Source.Frames: no episode %d", e)
	}
	return append([]label.FrameInfo(nil), s.frames[e]...), nil
}

// Frame implements label.Source.
func (s *Source) Frame(hash string) (label.Frame, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f, ok := s.pix[hash]
	if !ok {
		return label.Frame{}, fmt.Errorf("labeltest.Source.Frame %q: %w", hash, label.ErrFrameNotFound)
	}
	return f, nil
}

// SyntheticOptions configures Synthetic.
type SyntheticOptions struct {
	Tasks    []string // default {"fill"}
	Episodes int      // per task, default 4
	Steps    int      // per episode, default 50
	W, H     int      // default 64×64
	// MaxReward scales progress (0..1) to reward; default 10, like MetaWorld's v2.
	MaxReward float64
	// Hold repeats each episode's last frame this many more times, byte for byte: a
	// robot idle after success, whose identical frames the sampler must skip.
	Hold int
	// NoTruth sets every reward to NaN, as on a robot.
	NoTruth bool
	Seed    uint64
}

// Goal is the goal text of a synthetic task.
func Goal(task string) string {
	return fmt.Sprintf("Task %s: fill the red bar at the top of the image from left to right.", task)
}

// Synthetic builds episodes whose progress p (0..1) rises noisily and is drawn as a red
// bar across the top quarter of the frame, p·W pixels long; reward is MaxReward·p and
// success p ≥ 0.9. Every frame differs (a per-frame pattern below the bar).
func Synthetic(o SyntheticOptions) *Source {
	if len(o.Tasks) == 0 {
		o.Tasks = []string{"fill"}
	}
	if o.Episodes == 0 {
		o.Episodes = 4
	}
	if o.Steps == 0 {
		o.Steps = 50
	}
	if o.W == 0 {
		o.W, o.H = 64, 64
	}
	if o.MaxReward == 0 {
		o.MaxReward = 10
	}
	rng := rand.New(rand.NewPCG(o.Seed, 77))
	s := NewSource()
	for _, task := range o.Tasks {
		for e := 0; e < o.Episodes; e++ {
			speed := 0.5 + rng.Float64()*1.5 // some episodes finish, some do not
			p := rng.Float64() * 0.1
			var frames []label.Frame
			for t := 0; t < o.Steps; t++ {
				p = math.Min(1, math.Max(0, p+speed*(rng.Float64()*2.4-0.6)/float64(o.Steps)))
				f := label.Frame{W: o.W, H: o.H, RGB: Draw(o.W, o.H, p, rng.Uint64())}
				f.Step, f.Reward, f.Success = t, o.MaxReward*p, p >= 0.9
				if o.NoTruth {
					f.Reward, f.Success = math.NaN(), false
				}
				frames = append(frames, f)
			}
			for h := 0; h < o.Hold; h++ {
				f := frames[len(frames)-1]
				f.Step++
				frames = append(frames, f)
			}
			s.Add(label.Episode{ID: fmt.Sprintf("%s-%03d", task, e), Task: task, Goal: Goal(task)}, frames)
		}
	}
	return s
}

// Draw renders a w×h RGB8 frame showing progress p: a red bar over the top quarter,
// ⌊p·w + 0.5⌋ pixels long, on dark grey; below it grey with a pattern from noise.
func Draw(w, h int, p float64, noise uint64) []byte {
	pix := make([]byte, w*h*3)
	bar := max(1, h/4)
	fill := int(p*float64(w) + 0.5)
	r := rand.New(rand.NewPCG(noise, 1))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := 3 * (y*w + x)
			switch {
			case y < bar && x < fill:
				pix[i], pix[i+1], pix[i+2] = 220, 30, 30
			case y < bar:
				pix[i], pix[i+1], pix[i+2] = 40, 40, 40
			default:
				v := byte(120 + r.IntN(16))
				pix[i], pix[i+1], pix[i+2] = v, v, v
			}
		}
	}
	return pix
}

// ReadProgress reads the progress back from an image drawn by Draw, after any resizing:
// the share of the bar's columns that are red, measured on its middle rows.
func ReadProgress(img image.Image) float64 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	bar := max(1, h/4)
	y0, y1 := bar/4, max(bar/4+1, bar*3/4)
	var sum float64
	for x := 0; x < w; x++ {
		var red float64
		for y := y0; y < y1; y++ {
			r, g, _, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			red += (float64(r>>8) - float64(g>>8)) / (220 - 30) // 1 on the bar, 0 on grey
		}
		sum += math.Min(1, math.Max(0, red/float64(y1-y0)))
	}
	return sum / float64(w)
}

// TestSource is the conformance suite of label.Source: episodes list frames in step
// order with their own index, hashes are non-empty and unique per content, Frame
// returns the same information with w·h·3 bytes of pixels, an unknown hash wraps
// label.ErrFrameNotFound, rewards are finite or NaN, and concurrent use is safe (run it
// with -race).
func TestSource(t *testing.T, src label.Source) {
	t.Helper()
	eps := src.Episodes()
	if len(eps) == 0 {
		t.Fatal("Episodes: none")
	}
	ids := map[string]bool{}
	var all []label.FrameInfo
	for e, ep := range eps {
		if ep.ID == "" || ids[ep.ID] {
			t.Errorf("episode %d: ID %q empty or repeated", e, ep.ID)
		}
		ids[ep.ID] = true
		fs, err := src.Frames(e)
		if err != nil {
			t.Fatalf("Frames(%d): %v", e, err)
		}
		for i, f := range fs {
			if f.Episode != e {
				t.Errorf("episode %d frame %d: Episode = %d", e, i, f.Episode)
			}
			if i > 0 && f.Step <= fs[i-1].Step {
				t.Errorf("episode %d: steps not increasing at frame %d (%d after %d)", e, i, f.Step, fs[i-1].Step)
			}
			if f.Hash == "" {
				t.Errorf("episode %d step %d: empty hash", e, f.Step)
			}
			if math.IsInf(f.Reward, 0) {
				t.Errorf("episode %d step %d: reward %v (want finite, or NaN when unknown)", e, f.Step, f.Reward)
			}
			all = append(all, f)
		}
	}
	if len(all) == 0 {
		t.Fatal("no frames")
	}
	// Identical images may occur at several steps, even with different ground truth
	// (the truth depends on state the camera does not see): Frame reports one of them.
	truths := map[string][]label.FrameInfo{}
	for _, f := range all {
		truths[f.Hash] = append(truths[f.Hash], f)
	}
	seen := map[string]string{}
	for i, f := range all {
		if i%max(1, len(all)/50) != 0 { // a sample keeps the suite fast on large sources
			continue
		}
		fr, err := src.Frame(f.Hash)
		if err != nil {
			t.Fatalf("Frame(%s): %v", f.Hash, err)
		}
		if fr.Hash != f.Hash {
			t.Errorf("Frame(%s).Hash = %s", f.Hash, fr.Hash)
		}
		if fr.W <= 0 || fr.H <= 0 || len(fr.RGB) != fr.W*fr.H*3 {
			t.Errorf("Frame(%s): %dx%d with %d bytes", f.Hash, fr.W, fr.H, len(fr.RGB))
		}
		match := false
		for _, o := range truths[f.Hash] {
			match = match || fr.HasTruth() == o.HasTruth() && (!fr.HasTruth() || fr.Reward == o.Reward)
		}
		if !match {
			t.Errorf("Frame(%s): reward %v, but Frames gives it %v", f.Hash, fr.Reward, f.Reward)
		}
		content := string(fr.RGB)
		if prev, ok := seen[f.Hash]; ok && prev != content {
			t.Errorf("hash %s names two different images", f.Hash)
		}
		seen[f.Hash] = content
	}
	if _, err := src.Frame("0000000000000000000000000000000000000000000000000000000000000000"); !errors.Is(err, label.ErrFrameNotFound) {
		t.Errorf("Frame(unknown) = %v, want an error wrapping label.ErrFrameNotFound", err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < len(all); i += max(1, len(all)/20) {
				if _, err := src.Frame(all[i].Hash); err != nil {
					t.Errorf("concurrent Frame: %v", err)
					return
				}
				_ = src.Episodes()
			}
		}(g)
	}
	wg.Wait()
}

// PNG encodes a frame as PNG.
func PNG(f label.Frame) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, f.W, f.H))
	for i := 0; i < f.W*f.H; i++ {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = f.RGB[3*i], f.RGB[3*i+1], f.RGB[3*i+2], 255
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img) // a bytes.Buffer does not fail
	return b.Bytes()
}

// PNGBase64 is PNG in standard base64, the payload of a data URL.
func PNGBase64(f label.Frame) string { return base64.StdEncoding.EncodeToString(PNG(f)) }
