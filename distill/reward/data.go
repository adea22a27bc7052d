package reward

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"golang.org/x/sync/errgroup"

	"robodistill/distill/label"
	"robodistill/vision"
)

// Pair is one label as training uses it: the frames of each side (indices into
// Dataset.Frames; one frame, or a segment whose rewards are summed) and the probability
// that side A shows more progress.
type Pair struct {
	A, B   []int32
	Target float32 // 1: A preferred, 0: B preferred, 0.5: tie
	// Truth is the simulator's ground truth for the two sides, when the labels carry it.
	Truth *label.Truth
}

// Decisive reports whether the label prefers one side (it is not a tie).
func (p Pair) Decisive() bool { return p.Target != 0.5 }

// Dataset is a label file joined with the frames it names, every frame already turned
// into a model input by vision/, and split into training and validation by episode.
type Dataset struct {
	Vision vision.Config
	Shape  [3]int // C, H, W of one frame
	// X holds every loaded frame's tensor, frame i at X[i*FrameLen():(i+1)*FrameLen()]:
	// the frames the labels name, and every frame of the validation episodes.
	X      []float32
	Frames []label.FrameInfo
	// Train and Val are the labels whose frames all come from training (validation)
	// episodes.
	Train, Val []Pair
	// Episodes is the source's episode list; TrainEpisodes and ValEpisodes index it.
	Episodes                   []label.Episode
	TrainEpisodes, ValEpisodes []int
	// HeldOut lists, per validation episode, its frames in step order (indices into
	// Frames): the trajectories the reward is compared with the simulator's along.
	HeldOut [][]int32
	Dropped Dropped
}

// Dropped counts labels a Dataset leaves out, by reason.
type Dropped struct {
	Abstain int `json:"abstain"` // the labeller gave no verdict
	// Mixed labels compare a training episode with a validation episode: using them
	// for either would leak one side into the other.
	Mixed int `json:"mixed"`
}

// FrameLen is the number of values of one frame's tensor.
func (d *Dataset) FrameLen() int { return d.Shape[0] * d.Shape[1] * d.Shape[2] }

// Frame returns frame i's tensor.
func (d *Dataset) Frame(i int32) []float32 {
	n := d.FrameLen()
	return d.X[int(i)*n : (int(i)+1)*n]
}

// DataOptions says how to build a Dataset. Zero fields take the defaults in brackets.
type DataOptions struct {
	Vision vision.Config // [vision.DefaultConfig()]
	// ValFraction is the share of each task's episodes held out for validation [0.2];
	// at least one episode per task is held out and at least one kept.
	ValFraction float64
	Seed        uint64 // chooses the validation episodes
	Workers     int    // frames decoded and preprocessed at once [1]
	// Standardize replaces the Vision config's Mean and Std with per-channel statistics
	// of the training frames (rounded to 3 decimals), so that the network sees inputs
	// of mean 0 and standard deviation 1. The Dataset's Vision holds the result, which
	// goes into the model's manifest.
	Standardize bool
}

// standardizeSample is how many training frames the statistics are computed on.
const standardizeSample = 512

func (o *DataOptions) defaults() {
	if o.Vision.Version == 0 {
		o.Vision = vision.DefaultConfig()
	}
	if o.ValFraction == 0 {
		o.ValFraction = 0.2
	}
	if o.Workers < 1 {
		o.Workers = 1
	}
}

// Target maps an answer to the probability that A is preferred; ok is false for
// abstentions and unknown answers.
func Target(a label.Answer) (t float32, ok bool) {
	switch a {
	case label.First:
		return 1, true
	case label.Second:
		return 0, true
	case label.Tie:
		return 0.5, true
	}
	return 0, false
}

// LoadDataset joins labels with the frames of src. Every label must name episodes and
// frames src has; a label that does not is an error naming it (labels from another
// collection, most likely), never silently dropped.
func LoadDataset(ctx context.Context, recs []label.Record, src label.Source, o DataOptions) (*Dataset, error) {
	o.defaults()
	if err := o.Vision.Validate(); err != nil {
		return nil, err
	}
	if !(o.ValFraction > 0 && o.ValFraction < 1) {
		return nil, fmt.Errorf("validation fraction must be in (0, 1), got %g", o.ValFraction)
	}
	if len(recs) == 0 {
		return nil, errors.New("no labels")
	}
	eps := src.Episodes()
	byID := make(map[string]int, len(eps))
	for i, e := range eps {
		byID[e.ID] = i
	}
	val := splitEpisodes(recs, eps, byID, o)

	d := &Dataset{Vision: o.Vision, Episodes: eps}
	for i := range eps {
		if _, used := val[i]; !used {
			continue
		}
		if val[i] {
			d.ValEpisodes = append(d.ValEpisodes, i)
		} else {
			d.TrainEpisodes = append(d.TrainEpisodes, i)
		}
	}

	// Frames by hash: one tensor per distinct frame, however many labels name it.
	index := map[string]int32{}
	var infos []label.FrameInfo
	add := func(f label.FrameInfo) int32 {
		if i, ok := index[f.Hash]; ok {
			return i
		}
		i := int32(len(infos))
		index[f.Hash] = i
		infos = append(infos, f)
		return i
	}
	episodeFrames := map[int]map[string]label.FrameInfo{}
	framesOf := func(ep int) (map[string]label.FrameInfo, error) {
		if m, ok := episodeFrames[ep]; ok {
			return m, nil
		}
		fs, err := src.Frames(ep)
		if err != nil {
			return nil, fmt.Errorf("episode %s: %w", eps[ep].ID, err)
		}
		m := make(map[string]label.FrameInfo, len(fs))
		for _, f := range fs {
			m[f.Hash] = f
		}
		episodeFrames[ep] = m
		return m, nil
	}
	side := func(ep int, hashes []string) ([]int32, error) {
		m, err := framesOf(ep)
		if err != nil {
			return nil, err
		}
		out := make([]int32, len(hashes))
		for i, h := range hashes {
			f, ok := m[h]
			if !ok {
				return nil, fmt.Errorf("frame %s is not in episode %s: %w", short(h), eps[ep].ID, label.ErrFrameNotFound)
			}
			out[i] = add(f)
		}
		return out, nil
	}

	for n := range recs {
		r := &recs[n]
		t, ok := Target(r.Answer)
		if !ok {
			d.Dropped.Abstain++
			continue
		}
		ea, okA := byID[r.AEpisode]
		eb, okB := byID[r.BEpisode]
		if !okA || !okB {
			missing := r.AEpisode
			if okA {
				missing = r.BEpisode
			}
			return nil, fmt.Errorf("label %d (pair %s): episode %q is not in the collection", n+1, r.PairKey(), missing)
		}
		if val[ea] != val[eb] {
			d.Dropped.Mixed++
			continue
		}
		a, err := side(ea, sideHashes(r.A, r.ASegment))
		if err != nil {
			return nil, fmt.Errorf("label %d: %w", n+1, err)
		}
		b, err := side(eb, sideHashes(r.B, r.BSegment))
		if err != nil {
			return nil, fmt.Errorf("label %d: %w", n+1, err)
		}
		p := Pair{A: a, B: b, Target: t, Truth: r.Truth}
		if val[ea] {
			d.Val = append(d.Val, p)
		} else {
			d.Train = append(d.Train, p)
		}
	}
	if len(d.Train) == 0 {
		return nil, fmt.Errorf("no training labels: %d labels, %d abstentions, %d across the split", len(recs), d.Dropped.Abstain, d.Dropped.Mixed)
	}
	if len(d.Val) == 0 {
		return nil, fmt.Errorf("no validation labels: %d labels, %d abstentions, %d across the split; label more pairs within episodes (--within) or hold out more episodes", len(recs), d.Dropped.Abstain, d.Dropped.Mixed)
	}

	// Every frame of the validation episodes, for the reward-along-trajectory figures.
	for _, ep := range d.ValEpisodes {
		fs, err := src.Frames(ep)
		if err != nil {
			return nil, fmt.Errorf("episode %s: %w", eps[ep].ID, err)
		}
		traj := make([]int32, len(fs))
		for i, f := range fs {
			traj[i] = add(f)
		}
		d.HeldOut = append(d.HeldOut, traj)
	}
	d.Frames = infos
	if o.Standardize {
		if err := d.standardize(ctx, src, o.Workers); err != nil {
			return nil, err
		}
	}
	if err := d.preprocess(ctx, src, o.Workers); err != nil {
		return nil, err
	}
	return d, nil
}

// standardize sets the Vision config's Mean and Std to the statistics of up to
// standardizeSample training frames, evenly spaced, preprocessed with mean 0 and std 1.
func (d *Dataset) standardize(ctx context.Context, src label.Source, workers int) error {
	frames := trainFrames(d)
	if len(frames) > standardizeSample {
		step := float64(len(frames)) / standardizeSample
		sample := make([]int32, standardizeSample)
		for i := range sample {
			sample[i] = frames[int(float64(i)*step)]
		}
		frames = sample
	}
	raw := *d
	raw.Vision.Mean, raw.Vision.Std = nil, nil
	c := raw.Vision.Channels.Count()
	raw.Vision.Mean, raw.Vision.Std = make([]float64, c), make([]float64, c)
	for i := range raw.Vision.Std {
		raw.Vision.Std[i] = 1
	}
	raw.Frames = make([]label.FrameInfo, len(frames))
	for i, f := range frames {
		raw.Frames[i] = d.Frames[f]
	}
	if err := raw.preprocess(ctx, src, workers); err != nil {
		return err
	}
	plane := raw.Shape[1] * raw.Shape[2]
	mean, std := make([]float64, c), make([]float64, c)
	for ch := range c {
		var sum, sq float64
		for i := range raw.Frames {
			for _, v := range raw.X[(i*c+ch)*plane : (i*c+ch+1)*plane] {
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
		}
		n := float64(len(raw.Frames) * plane)
		m := sum / n
		mean[ch] = math.Round(m*1000) / 1000
		std[ch] = max(math.Round(math.Sqrt(max(sq/n-m*m, 0))*1000)/1000, 0.001)
	}
	d.Vision.Mean, d.Vision.Std = mean, std
	return d.Vision.Validate()
}

func sideHashes(last string, segment []string) []string {
	if len(segment) > 0 {
		return segment
	}
	return []string{last}
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// splitEpisodes chooses the validation episodes: per task, a seeded shuffle of the
// episodes the labels name, the first ValFraction of them (at least one, never all).
// The result maps each named episode to whether it is held out.
func splitEpisodes(recs []label.Record, eps []label.Episode, byID map[string]int, o DataOptions) map[int]bool {
	used := map[int]bool{}
	for i := range recs {
		for _, id := range []string{recs[i].AEpisode, recs[i].BEpisode} {
			if e, ok := byID[id]; ok {
				used[e] = false
			}
		}
	}
	byTask := map[string][]int{}
	for e := range used {
		byTask[eps[e].Task] = append(byTask[eps[e].Task], e)
	}
	tasks := make([]string, 0, len(byTask))
	for t := range byTask {
		tasks = append(tasks, t)
	}
	sort.Strings(tasks)
	rng := rand.New(rand.NewPCG(o.Seed, 0x5e1a))
	for _, t := range tasks {
		list := byTask[t]
		if len(list) < 2 {
			continue
		}
		slices.Sort(list)
		rng.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
		n := int(math.Round(o.ValFraction * float64(len(list))))
		n = min(max(n, 1), len(list)-1)
		for _, e := range list[:n] {
			used[e] = true
		}
	}
	return used
}

// preprocess reads every frame's pixels from src and runs them through vision/, the path
// the daemon runs live frames through.
func (d *Dataset) preprocess(ctx context.Context, src label.Source, workers int) error {
	pre, err := vision.New(d.Vision)
	if err != nil {
		return err
	}
	d.Shape = pre.Shape()
	pre.Close()
	n := d.FrameLen()
	d.X = make([]float32, len(d.Frames)*n)

	g, ctx := errgroup.WithContext(ctx)
	next := make(chan int)
	g.Go(func() error {
		defer close(next)
		for i := range d.Frames {
			select {
			case next <- i:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			p, err := vision.New(d.Vision)
			if err != nil {
				return err
			}
			defer p.Close()
			for i := range next {
				info := d.Frames[i]
				f, err := src.Frame(info.Hash)
				if err != nil {
					return fmt.Errorf("frame %s (episode %s step %d): %w", short(info.Hash), d.Episodes[info.Episode].ID, info.Step, err)
				}
				img := vision.ImageView{Encoding: "rgb8", Width: f.W, Height: f.H, Step: 3 * f.W, Data: f.RGB}
				if err := p.Process(img, d.X[i*n:(i+1)*n]); err != nil {
					return fmt.Errorf("frame %s (episode %s step %d): %w", short(info.Hash), d.Episodes[info.Episode].ID, info.Step, err)
				}
			}
			return nil
		})
	}
	return g.Wait()
}
