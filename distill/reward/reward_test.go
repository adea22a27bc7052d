package reward

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
	"robodistill/distill/label"
	"robodistill/distill/label/labeltest"
	"robodistill/vision"
)

// syntheticLabels draws n oracle labels over src's frames: half within one episode, half
// across, the side with the higher reward preferred, equal rewards a tie.
func syntheticLabels(t testing.TB, src label.Source, n int, seed uint64) []label.Record {
	t.Helper()
	eps := src.Episodes()
	frames := make([][]label.FrameInfo, len(eps))
	for i := range eps {
		fs, err := src.Frames(i)
		if err != nil {
			t.Fatal(err)
		}
		frames[i] = fs
	}
	rng := rand.New(rand.NewPCG(seed, 9))
	var recs []label.Record
	seen := map[string]bool{}
	for len(recs) < n {
		ea := rng.IntN(len(eps))
		eb := ea
		if rng.IntN(2) == 0 {
			eb = rng.IntN(len(eps))
		}
		a, b := frames[ea][rng.IntN(len(frames[ea]))], frames[eb][rng.IntN(len(frames[eb]))]
		if a.Hash == b.Hash {
			continue
		}
		ans := label.Tie
		switch {
		case a.Reward > b.Reward:
			ans = label.First
		case a.Reward < b.Reward:
			ans = label.Second
		}
		r := label.Record{V: label.RecordVersion, A: a.Hash, B: b.Hash,
			AEpisode: eps[ea].ID, AStep: a.Step, BEpisode: eps[eb].ID, BStep: b.Step,
			Task: eps[ea].Task, Labeler: label.LabelerInfo{Kind: "teacher", Spec: "oracle"},
			Answer: ans, Confidence: 1, Truth: &label.Truth{A: a.Reward, B: b.Reward},
			Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		if !seen[r.PairKey()] {
			seen[r.PairKey()] = true
			recs = append(recs, r)
		}
	}
	return recs
}

func smallVision() vision.Config {
	c := vision.DefaultConfig()
	c.Width, c.Height = 24, 24
	return c
}

func syntheticDataset(t testing.TB, episodes, labels int) *Dataset {
	t.Helper()
	src := labeltest.Synthetic(labeltest.SyntheticOptions{Episodes: episodes, Steps: 30, W: 48, H: 48, Seed: 1})
	d, err := LoadDataset(context.Background(), syntheticLabels(t, src, labels, 1), src,
		DataOptions{Vision: smallVision(), Seed: 3, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func smallConfig() Config {
	return Config{Ensemble: 2, Hidden: 16, Batch: 32, Epochs: 6, Patience: 3, Seed: 5, Workers: 2,
		Adam: nn.AdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}}
}

func TestLoadDatasetSplitsByEpisode(t *testing.T) {
	d := syntheticDataset(t, 10, 400)
	if len(d.ValEpisodes) != 2 || len(d.TrainEpisodes) != 8 {
		t.Fatalf("episodes: %d train, %d validation; want 8 and 2", len(d.TrainEpisodes), len(d.ValEpisodes))
	}
	val := map[int]bool{}
	for _, e := range d.ValEpisodes {
		val[e] = true
	}
	check := func(name string, pairs []Pair, want bool) {
		for _, p := range pairs {
			for _, f := range append(slices.Clone(p.A), p.B...) {
				if val[d.Frames[f].Episode] != want {
					t.Fatalf("%s pair uses a frame of episode %d (held out: %v)", name, d.Frames[f].Episode, !want)
				}
			}
		}
	}
	check("training", d.Train, false)
	check("validation", d.Val, true)
	if got := len(d.Train) + len(d.Val) + d.Dropped.Mixed + d.Dropped.Abstain; got != 400 {
		t.Errorf("%d labels accounted for, want 400", got)
	}
	if d.Dropped.Mixed == 0 {
		t.Error("no label was dropped for crossing the split; across-episode labels should be")
	}
	if len(d.HeldOut) != 2 || len(d.HeldOut[0]) != 30 {
		t.Errorf("held-out trajectories: %d, want 2 of 30 frames", len(d.HeldOut))
	}
	// The tensors are vision/'s output for the frames.
	src := labeltest.Synthetic(labeltest.SyntheticOptions{Episodes: 10, Steps: 30, W: 48, H: 48, Seed: 1})
	pre, _ := vision.New(smallVision())
	defer pre.Close()
	want := make([]float32, pre.Len())
	f, _ := src.Frame(d.Frames[7].Hash)
	if err := pre.Process(vision.ImageView{Encoding: "rgb8", Width: f.W, Height: f.H, Step: 3 * f.W, Data: f.RGB}, want); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Frame(7), want) {
		t.Error("a dataset frame differs from vision.Preprocessor's output")
	}
}

func TestLoadDatasetErrors(t *testing.T) {
	src := labeltest.Synthetic(labeltest.SyntheticOptions{Episodes: 4, Steps: 10, W: 32, H: 32})
	recs := syntheticLabels(t, src, 50, 2)
	ctx := context.Background()

	bad := slices.Clone(recs)
	bad[3].AEpisode = "episode-elsewhere"
	if _, err := LoadDataset(ctx, bad, src, DataOptions{}); err == nil || !contains(err.Error(), "episode-elsewhere") {
		t.Errorf("unknown episode: %v", err)
	}
	bad = slices.Clone(recs)
	bad[5].B = "0000000000000000000000000000000000000000000000000000000000000000"
	if _, err := LoadDataset(ctx, bad, src, DataOptions{}); !errors.Is(err, label.ErrFrameNotFound) || !contains(err.Error(), "label 6") {
		t.Errorf("unknown frame: %v", err)
	}
	abstain := slices.Clone(recs)
	for i := range abstain {
		abstain[i].Answer = label.Abstain
	}
	if _, err := LoadDataset(ctx, abstain, src, DataOptions{}); err == nil || !contains(err.Error(), "50 abstentions") {
		t.Errorf("only abstentions: %v", err)
	}
	if _, err := LoadDataset(ctx, nil, src, DataOptions{}); err == nil {
		t.Error("no labels accepted")
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestTrainLearnsProgress trains on synthetic frames whose progress is a bar: the
// ensemble must order held-out frames almost perfectly.
func TestTrainLearnsProgress(t *testing.T) {
	d := syntheticDataset(t, 10, 600)
	tr := Trainer{Config: smallConfig()}
	members, err := tr.Train(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	nets, norms := []*nn.Sequential{}, []onnxio.RewardNorm{}
	tf := trainFrames(d)
	raw := make([]float32, len(d.Frames))
	for _, m := range members {
		nets = append(nets, m.Net)
		Score(m.Net, d, tf, raw)
		vals := make([]float32, len(tf))
		for i, f := range tf {
			vals[i] = raw[f]
		}
		n, err := Normalize(vals, 0)
		if err != nil {
			t.Fatal(err)
		}
		norms = append(norms, n)
	}
	m := Evaluate(d, ScoreAll(nets, norms, d))
	t.Logf("val accuracy %.3f, GT agreement %.3f, Pearson %.3f, Spearman %.3f, disagreement %.3f",
		m.ValAccuracy, *m.GTAgreement, *m.Pearson, *m.Spearman, m.Disagreement)
	if m.ValAccuracy < 0.9 || *m.Pearson < 0.9 || *m.Spearman < 0.9 {
		t.Errorf("the ensemble did not learn the progress bar: %+v", m)
	}
	if m.Disagreement <= 0 {
		t.Error("two members with different seeds should disagree somewhat")
	}
}

func paramsOf(ms []MemberResult) [][]float32 {
	var out [][]float32
	for _, m := range ms {
		for _, p := range m.Net.Params() {
			out = append(out, slices.Clone(p.Value))
		}
	}
	return out
}

func equalParams(a, b [][]float32) bool {
	return slices.EqualFunc(a, b, func(x, y []float32) bool { return slices.Equal(x, y) })
}

// TestDeterministicAndResumable: the same seed gives bit-identical members whatever the
// worker count, and a run interrupted after an epoch continues from its checkpoint to
// the same weights.
func TestDeterministicAndResumable(t *testing.T) {
	d := syntheticDataset(t, 6, 200)
	cfg := smallConfig()
	cfg.Epochs, cfg.Patience = 3, 3
	run := func(workers int, dir string, progress Progress) ([]MemberResult, error) {
		c := cfg
		c.Workers = workers
		tr := Trainer{Config: c, Checkpoints: dir, Progress: progress}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if progress != nil {
			tr.Progress = func(m int, st EpochStats) { progress(m, st); cancel() }
		}
		return tr.Train(ctx, d)
	}
	a, err := run(2, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := run(1, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !equalParams(paramsOf(a), paramsOf(b)) {
		t.Fatal("one and two workers gave different weights")
	}

	dir := t.TempDir()
	if _, err := run(1, dir, func(int, EpochStats) {}); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	c, err := run(2, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c[0].Resumed == 0 {
		t.Error("the second run did not resume member 0 from its checkpoint")
	}
	if !equalParams(paramsOf(a), paramsOf(c)) {
		t.Fatal("a resumed run ended with other weights than an uninterrupted one")
	}
	if !slices.EqualFunc(a[0].History, c[0].History, func(x, y EpochStats) bool { return x.ValLoss == y.ValLoss }) {
		t.Error("a resumed run's history differs")
	}

	// Other settings: the checkpoint is refused, not continued.
	cfg.Smoothing = 0.1
	if _, err := run(1, dir, nil); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("checkpoint of other settings: %v", err)
	}
}

func TestShift(t *testing.T) {
	shape := [3]int{2, 4, 5}
	src := make([]float32, 40)
	for i := range src {
		src[i] = float32(i)
	}
	dst := make([]float32, 40)
	for dy := -2; dy <= 2; dy++ {
		for dx := -2; dx <= 2; dx++ {
			shiftBy(dst, src, shape, dy, dx)
			for c := range 2 {
				for y := range 4 {
					for x := range 5 {
						sy, sx := min(max(y+dy, 0), 3), min(max(x+dx, 0), 4)
						if dst[c*20+y*5+x] != src[c*20+sy*5+sx] {
							t.Fatalf("shift (%d,%d): wrong value at c%d y%d x%d", dy, dx, c, y, x)
						}
					}
				}
			}
		}
	}
	// Random shifts stay within ±s and reach both ends.
	rng := rand.New(rand.NewPCG(1, 1))
	seen := map[float32]bool{}
	for range 300 {
		shift(dst, src, shape, 2, rng)
		seen[dst[12]] = true // the centre pixel (2, 2) of channel 0 moves with the offset
	}
	if len(seen) != 20 { // rows 0..3 (clamped) × columns 0..4
		t.Errorf("%d distinct centre values over 300 random shifts, want 20", len(seen))
	}
	shift(dst, src, shape, -1, rng)
	if !slices.Equal(dst, src) {
		t.Error("shift -1 changed the frame")
	}
}

func TestCorrelations(t *testing.T) {
	x := []float64{1, 2, 3, 4, 5}
	if p := Pearson(x, []float64{2, 4, 6, 8, 10}); math.Abs(p-1) > 1e-12 {
		t.Errorf("Pearson of a line = %g", p)
	}
	if s := Spearman(x, []float64{1, 8, 27, 64, 125}); math.Abs(s-1) > 1e-12 {
		t.Errorf("Spearman of a monotone map = %g", s)
	}
	if p := Pearson(x, []float64{5, 4, 3, 2, 1}); math.Abs(p+1) > 1e-12 {
		t.Errorf("Pearson reversed = %g", p)
	}
	// Ties take their mean rank: ranks of {1, 2, 2, 3} are {1, 2.5, 2.5, 4}.
	if r := ranks([]float64{1, 2, 2, 3}); !slices.Equal(r, []float64{1, 2.5, 2.5, 4}) {
		t.Errorf("ranks = %v", r)
	}
	// scipy.stats.pearsonr([1,2,3,4,5],[2,1,4,3,5]) = 0.8; spearmanr is the same here.
	if p := Pearson(x, []float64{2, 1, 4, 3, 5}); math.Abs(p-0.8) > 1e-12 {
		t.Errorf("Pearson = %g, want 0.8", p)
	}
	if !math.IsNaN(Pearson(x, []float64{1, 1, 1, 1, 1})) || !math.IsNaN(Pearson(nil, nil)) {
		t.Error("Pearson of a constant or empty series should be NaN")
	}
	if q := Quantile([]float64{4, 1, 3, 2}, 0.5); q != 2.5 {
		t.Errorf("median of 1..4 = %g", q)
	}
}

func TestNormalize(t *testing.T) {
	raw := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	n, err := Normalize(raw, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(n.Mean-5.5) > 1e-12 || math.Abs(n.Std-math.Sqrt(8.25)) > 1e-12 {
		t.Errorf("mean %g std %g", n.Mean, n.Std)
	}
	if len(n.Thresholds) != 1 || n.Thresholds[0].Name != onnxio.ThresholdFloor {
		t.Fatalf("thresholds %v", n.Thresholds)
	}
	// The 0.3-quantile of 1..10 is 3.7; 3 is below it (published 0), 4 above.
	if n.Publish(3) != 0 || math.Abs(n.Publish(4)-(4-5.5)/n.Std) > 1e-12 {
		t.Errorf("publish 3 → %g, 4 → %g", n.Publish(3), n.Publish(4))
	}
	if _, err := Normalize([]float32{2, 2, 2}, 0); err == nil {
		t.Error("a constant reward was normalised")
	}
	if _, err := Normalize(raw, 1); err == nil {
		t.Error("quantile 1 accepted")
	}
	if err := (&onnxio.Manifest{}).Validate(); err == nil {
		t.Fatal("empty manifest valid")
	}
}

func TestCounter(t *testing.T) {
	c, err := NewCounter(onnxio.CountTerm{Beta: 0.5, Cell: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	o := []float64{0.01, 0.52, -0.33}
	if r := c.Apply(o, 2); r != 2 {
		t.Errorf("first visit: %g, want 2", r)
	}
	if r := c.Apply([]float64{0.09, 0.55, -0.31}, 2); math.Abs(r-2/math.Sqrt2) > 1e-12 {
		t.Errorf("second visit to the cell: %g, want 2/√2", r)
	}
	if n := c.Visit([]float64{0.11, 0.52, -0.33}); n != 1 || c.Cells() != 2 {
		t.Errorf("a neighbouring cell: count %d, cells %d", n, c.Cells())
	}
	c.Reset()
	if n := c.Visit(o); n != 1 {
		t.Errorf("after Reset: %d", n)
	}
	if _, err := NewCounter(onnxio.CountTerm{Beta: 0.5}); err == nil {
		t.Error("a zero cell accepted")
	}
}

func TestSelectLabeler(t *testing.T) {
	recs := []label.Record{
		{Labeler: label.LabelerInfo{Spec: "oracle"}}, {Labeler: label.LabelerInfo{Spec: "mistake:0.2"}},
		{Labeler: label.LabelerInfo{Spec: "oracle"}},
	}
	if _, _, err := selectLabeler(recs, ""); err == nil || !contains(err.Error(), "mistake:0.2, oracle") {
		t.Errorf("two labellers, none chosen: %v", err)
	}
	got, name, err := selectLabeler(recs, "oracle")
	if err != nil || len(got) != 2 || name != "oracle" {
		t.Errorf("oracle: %d labels, %q, %v", len(got), name, err)
	}
	if _, _, err := selectLabeler(recs, "vlm"); err == nil {
		t.Error("an absent labeller accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		mut func(*Config)
		key string
	}{
		{func(c *Config) { c.Ensemble = 0 }, "ensemble"},
		{func(c *Config) { c.Arch = "resnet" }, "arch"},
		{func(c *Config) { c.Smoothing = 1 }, "smoothing"},
		{func(c *Config) { c.Shift = 40 }, "shift"},
		{func(c *Config) { c.Adam.LR = -1 }, "adam"},
	} {
		cfg := DefaultConfig()
		c.mut(&cfg)
		if err := cfg.Validate(); err == nil || !contains(err.Error(), c.key) {
			t.Errorf("%s: %v", c.key, err)
		}
	}
}

func TestStandardize(t *testing.T) {
	src := labeltest.Synthetic(labeltest.SyntheticOptions{Episodes: 6, Steps: 20, W: 32, H: 32, Seed: 2})
	d, err := LoadDataset(context.Background(), syntheticLabels(t, src, 150, 1), src,
		DataOptions{Vision: smallVision(), Seed: 3, Standardize: true})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(d.Vision.Mean, []float64{0, 0, 0}) || d.Vision.Std[0] == 1 {
		t.Fatalf("vision config not standardised: %+v", d.Vision)
	}
	plane := d.Shape[1] * d.Shape[2]
	for ch := range 3 {
		var sum, sq float64
		frames := trainFrames(d)
		for _, f := range frames {
			for _, v := range d.Frame(f)[ch*plane : (ch+1)*plane] {
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
		}
		n := float64(len(frames) * plane)
		m, s := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n))
		if math.Abs(m) > 0.02 || math.Abs(s-1) > 0.02 {
			t.Errorf("channel %d: mean %.4f std %.4f over the training frames, want 0 and 1", ch, m, s)
		}
	}
}

// TestScorer plugs a trained ensemble into label.Disagreement: the pairs it keeps are
// the ones the members disagree on most, and a frame is preprocessed once.
func TestScorer(t *testing.T) {
	src := labeltest.Synthetic(labeltest.SyntheticOptions{Episodes: 6, Steps: 30, W: 48, H: 48, Seed: 1})
	d, err := LoadDataset(context.Background(), syntheticLabels(t, src, 200, 1), src, DataOptions{Vision: smallVision(), Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	cfg := smallConfig()
	cfg.Epochs = 2
	members, err := (&Trainer{Config: cfg}).Train(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	nets := []*nn.Sequential{members[0].Net, members[1].Net}
	sc, err := NewScorer(nets, d.Vision, src)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	base, err := label.NewUniform(src, label.UniformOptions{Within: 0.5, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	cands, err := base.Sample(context.Background(), 50)
	if err != nil {
		t.Fatal(err)
	}
	scores, err := sc.Disagreement(context.Background(), cands)
	if err != nil {
		t.Fatal(err)
	}
	// The score is the spread of the members' P(A ≻ B), recomputed here from Score.
	raw := [2][]float32{make([]float32, len(d.Frames)), make([]float32, len(d.Frames))}
	index := map[string]int32{}
	for i, f := range d.Frames {
		index[f.Hash] = int32(i)
	}
	checked := 0
	for i, p := range cands {
		a, okA := index[p.A.Last().Hash]
		b, okB := index[p.B.Last().Hash]
		if !okA || !okB {
			continue // a frame the dataset did not load
		}
		checked++
		var pr [2]float64
		for m := range 2 {
			Score(nets[m], d, []int32{a, b}, raw[m])
			pr[m] = sigmoid(float64(raw[m][a]) - float64(raw[m][b]))
		}
		if want := math.Abs(pr[0]-pr[1]) / 2; math.Abs(scores[i]-want) > 1e-6 {
			t.Fatalf("pair %d: disagreement %g, want %g", i, scores[i], want)
		}
	}
	if checked < 10 {
		t.Fatalf("only %d of %d candidates had both frames in the dataset", checked, len(cands))
	}
	dis := &label.Disagreement{Base: base, Scorer: sc, Oversample: 5}
	if got, err := dis.Sample(context.Background(), 10); err != nil || len(got) != 10 {
		t.Fatalf("Disagreement.Sample: %d pairs, %v", len(got), err)
	}
	if _, err := NewScorer(nets[:1], d.Vision, src); err == nil {
		t.Error("a one-member scorer accepted")
	}
}
