package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"robodistill/control/onnxio"
	"robodistill/control/runtime"
	"robodistill/distill/label"
	"robodistill/distill/label/teacher"
	"robodistill/distill/reward"
	"robodistill/vision"
)

// pointMassView is the point mass with a picture: a 32×32 frame with x as a red column
// and the goal as a green one, so that a reward CNN can see the distance.
type pointMassView struct{ pointMass }

const viewSize = 32

func newPointMassView() (Env, error) { return &pointMassView{}, nil }

func (p *pointMassView) Render(_ string, w, h int, frame []byte) error {
	clear(frame[:w*h*3])
	col := func(v float64) int { return min(w-1, int(math.Round((v+1)/2*float64(w-1)))) }
	cx, cg := col(p.x), col(p.g)
	for y := range h {
		frame[3*(y*w+cx)] = 255
		frame[3*(y*w+cg)+1] = 255
	}
	return nil
}

// startingReward writes an untrained ensemble of two for 32×32 frames, as reward train
// would export it, and returns member 0's path.
func startingReward(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	vc := vision.DefaultConfig()
	vc.Width, vc.Height = viewSize, viewSize
	path := filepath.Join(dir, "reward.onnx")
	for m := range 2 {
		net, err := reward.NewNet("cnn2", [3]int{3, viewSize, viewSize}, 16, rand.New(rand.NewPCG(11, uint64(m))))
		if err != nil {
			t.Fatal(err)
		}
		man := onnxio.Manifest{Version: onnxio.ManifestVersion, Kind: onnxio.KindReward, Task: "pointmass",
			Input:       onnxio.Input{Name: "image", Shape: []int{3, viewSize, viewSize}, Vision: &vc},
			Output:      onnxio.Output{Name: "reward", Shape: []int{1}, Meaning: "test"},
			Reward:      &onnxio.RewardNorm{Mean: 0, Std: 1},
			Ensemble:    &onnxio.Ensemble{Member: m, Size: 2},
			Training:    onnxio.Training{Labeler: "oracle", LabelsSHA256: []string{strings.Repeat("0f", 32)}},
			CodeVersion: "test", Created: time.Unix(1.7e9, 0).UTC()}
		if _, err := onnxio.Save(onnxio.MemberPath(path, m), net, man); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func oracle(label.Source) (label.Labeler, error) {
	return teacher.Labeler(label.Oracle, 0, label.ConsistentOptions{})
}

// onlineConfig is a small run of the point mass with the online reward.
func onlineConfig(t *testing.T, path string, sampler string) (Config, *Online) {
	t.Helper()
	cfg := smallConfig()
	cfg.NewEnv, cfg.FrameSize, cfg.Envs, cfg.Steps, cfg.Buffer = newPointMassView, viewSize, 2, 700, 700
	o, err := NewOnline(path, cfg.Envs, cfg.Buffer, OnlineConfig{Every: 200, Pairs: 60, Sampler: sampler, Candidates: 4,
		Train: reward.Config{Epochs: 4, Patience: 2, Batch: 16}, Seed: 5, NewLabeler: oracle})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	cfg.Reward = o
	return cfg, o
}

// The online reward labels pairs from the buffer, learns the point mass's distance from
// the pictures and relabels the buffer with it; runs are deterministic and resume bit for
// bit; the refined ensemble is exported and loads through the runtime.
func TestOnlineReward(t *testing.T) {
	path := startingReward(t)
	cfg, o := onlineConfig(t, path, "disagreement")
	cfg.Checkpoint = t.TempDir()
	cfg.CheckpointEvery = 100
	res, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Err(); err != nil {
		t.Fatal(err)
	}
	st := o.Stats()
	if len(st) != 3 {
		t.Fatalf("%d refreshes, want 3 (steps 200, 400, 600; none at the last step, 700)", len(st))
	}
	for _, s := range st {
		t.Logf("step %d: %d labels (+%d), accuracy before %.2f, validation %.2f, disagreement %.3f, Pearson with the simulator %.3f, epochs %v",
			s.Step, s.Labels, s.New, s.AccBefore, s.ValAcc, s.Disagreement, s.Pearson, s.Epochs)
		if s.New != 60 {
			t.Errorf("step %d: %d new labels, want 60 (the oracle never abstains)", s.Step, s.New)
		}
	}
	if last := st[len(st)-1]; last.Labels != 180 || last.Pearson < 0.5 {
		t.Errorf("after 3 refreshes: %d labels, Pearson %.3f with the simulator's reward (want 180 and > 0.5)", last.Labels, last.Pearson)
	}
	// Relabelling gives every slot the refined ensemble's reward of its frame.
	rp, err := NewReplay(50, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		rp.Add([]float32{0, 0}, []float32{0}, 123, []float32{0, 0}, false)
	}
	o.relabel(rp)
	for i := range 50 {
		o.pre[0].Normalize(o.frame(i), o.x[0])
		r, _, err := o.ens[0].Run(o.x[0])
		if err != nil {
			t.Fatal(err)
		}
		if rp.rew[i] != float32(r) || rp.rew[i] == 123 {
			t.Fatalf("slot %d relabelled %v, the ensemble gives %v", i, rp.rew[i], r)
		}
	}

	// The refined ensemble is saved and loads.
	out := filepath.Join(t.TempDir(), "policy.reward.onnx")
	if err := o.Save(out); err != nil {
		t.Fatal(err)
	}
	e, err := runtime.LoadEnsemble(out, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Size() != 2 || !strings.HasSuffix(e.Member(0).Manifest().Training.Labeler, "(online)") ||
		len(e.Member(1).Manifest().Training.LabelsSHA256) != 2 {
		t.Errorf("saved ensemble: size %d, manifest %+v", e.Size(), e.Member(0).Manifest().Training)
	}

	// Interrupted after the first refresh and resumed: the same weights, curve, labels
	// and final checkpoint.
	want, err := os.ReadFile(filepath.Join(cfg.Checkpoint, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg2, _ := onlineConfig(t, path, "disagreement")
	cfg2.Checkpoint, cfg2.CheckpointEvery = t.TempDir(), 100
	ctx, cancel := context.WithCancel(context.Background())
	cfg2.Progress = cancelAt(330, cancel)
	if _, err := Train(ctx, cfg2); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	cancel()
	cfg3, o3 := onlineConfig(t, path, "disagreement")
	cfg3.Checkpoint, cfg3.CheckpointEvery = cfg2.Checkpoint, 100
	res3, err := Train(context.Background(), cfg3)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(cfg3.Checkpoint, CheckpointFile))
	switch {
	case res3.ResumedFrom == 0:
		t.Error("the second run did not resume")
	case !sameWeights(res3.Agent, res.Agent):
		t.Error("resumed run: weights differ")
	case !reflect.DeepEqual(res3.Curve, res.Curve):
		t.Error("resumed run: curves differ")
	case !reflect.DeepEqual(stripTimes(o3.Stats()), stripTimes(st)):
		t.Errorf("resumed run: refreshes differ:\n%+v\n%+v", o3.Stats(), st)
	case !bytes.Equal(got, want):
		t.Error("resumed run: final checkpoints differ")
	}

	// A run with other online settings refuses the checkpoint.
	cfg4, _ := onlineConfig(t, path, "uniform")
	cfg4.Checkpoint = cfg.Checkpoint
	if _, err := Train(context.Background(), cfg4); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("other online settings: %v, want ErrCheckpoint", err)
	}
}

// cancellingLabeler answers with the oracle and, at its call number at, cancels the run
// and fails, as an interrupted VLM query does.
type cancellingLabeler struct {
	label.Labeler
	calls, at int
	cancel    func()
}

func (c *cancellingLabeler) Label(ctx context.Context, q label.Query) (label.Label, error) {
	if c.calls++; c.calls == c.at {
		c.cancel()
		return label.Label{}, ctx.Err()
	}
	return c.Labeler.Label(ctx, q)
}

// A run interrupted in the middle of a refresh does that refresh, and the updates and
// evaluation after it, when resumed; the labels the interrupted refresh got are kept.
func TestOnlineRefreshInterrupted(t *testing.T) {
	path := startingReward(t)
	cfg, o := onlineConfig(t, path, "uniform")
	res, err := Train(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	steps := func(st []RefreshStats) []int {
		var out []int
		for _, s := range st {
			out = append(out, s.Step)
		}
		return out
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg2, _ := onlineConfig(t, path, "uniform")
	cfg2.Checkpoint = t.TempDir()
	// The refresh at step 400 asks for labels 61 to 120: it is interrupted at the 90th.
	o2, err := NewOnline(path, cfg2.Envs, cfg2.Buffer, OnlineConfig{Every: 200, Pairs: 60, Sampler: "uniform", Candidates: 4,
		Train: reward.Config{Epochs: 4, Patience: 2, Batch: 16}, Seed: 5,
		NewLabeler: func(src label.Source) (label.Labeler, error) {
			l, err := oracle(src)
			return &cancellingLabeler{Labeler: l, at: 90, cancel: cancel}, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer o2.Close()
	cfg2.Reward = o2
	if _, err := Train(ctx, cfg2); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if got := steps(o2.Stats()); !reflect.DeepEqual(got, []int{200}) {
		t.Fatalf("refreshes before the interruption: %v, want [200]", got)
	}

	cfg3, o3 := onlineConfig(t, path, "uniform")
	cfg3.Checkpoint = cfg2.Checkpoint
	res3, err := Train(context.Background(), cfg3)
	if err != nil {
		t.Fatal(err)
	}
	if res3.ResumedFrom != 400 {
		t.Errorf("resumed from step %d, want 400 (the refresh's step)", res3.ResumedFrom)
	}
	if got, want := steps(o3.Stats()), steps(o.Stats()); !reflect.DeepEqual(got, want) {
		t.Errorf("refreshes of the resumed run %v, want %v", got, want)
	}
	if res3.Updates != res.Updates {
		t.Errorf("resumed run: %d updates, the uninterrupted one %d", res3.Updates, res.Updates)
	}
	var evals, want []int
	for _, p := range res3.Curve {
		evals = append(evals, p.Step)
	}
	for _, p := range res.Curve {
		want = append(want, p.Step)
	}
	if !reflect.DeepEqual(evals, want) {
		t.Errorf("evaluations of the resumed run at %v, want %v", evals, want)
	}
	// 60 labels per refresh, plus the 29 the interrupted one got before the 90th call.
	if got := o3.Stats()[len(o3.Stats())-1].Labels; got != 3*60+29 {
		t.Errorf("labels at the end %d, want %d", got, 3*60+29)
	}
}

func TestOnlineConfigErrors(t *testing.T) {
	path := startingReward(t)
	cases := []struct {
		cfg  OnlineConfig
		want string
	}{
		{OnlineConfig{Every: -1, NewLabeler: oracle}, "online.every"},
		{OnlineConfig{Sampler: "greedy", NewLabeler: oracle}, `online.sampler: "greedy"`},
		{OnlineConfig{ValFraction: 1.5, NewLabeler: oracle}, "online.val_fraction"},
		{OnlineConfig{}, "online.labeler: required"},
		{OnlineConfig{AnchorPairs: -1, NewLabeler: oracle}, "online.anchor_pairs: must be 0 or more"},
		{OnlineConfig{Anchor: &reward.Dataset{}, NewLabeler: oracle}, "online.anchor: the offline dataset has no training pairs"},
		{OnlineConfig{NewLabeler: func(label.Source) (label.Labeler, error) { return nil, errors.New("no endpoint") }}, "labeller: no endpoint"},
	}
	for _, tc := range cases {
		if _, err := NewOnline(path, 1, 10, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := NewOnline(filepath.Join(t.TempDir(), "none.onnx"), 1, 10, OnlineConfig{NewLabeler: oracle}); err == nil {
		t.Error("a missing model was accepted")
	}
	// A buffer larger than the frames kept is refused by Train.
	o, err := NewOnline(path, 1, 10, OnlineConfig{NewLabeler: oracle})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	cfg := smallConfig()
	cfg.NewEnv, cfg.FrameSize, cfg.Reward, cfg.Buffer = newPointMassView, viewSize, o, 100
	if _, err := Train(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "fewer than the replay buffer's 100") {
		t.Errorf("small frame ring: %v", err)
	}
}

// TestOnlineAnchor: a refresh's dataset gains a fresh draw of the offline pairs, their
// frames appended once each after the online ones, with the offline targets; a run with
// anchors trains on them at every refresh.
func TestOnlineAnchor(t *testing.T) {
	const L = 3 * viewSize * viewSize
	anchor := &reward.Dataset{Shape: [3]int{3, viewSize, viewSize}, X: make([]float32, 4*L)}
	for f := range 4 {
		for i := range L {
			anchor.X[f*L+i] = float32(10*f + 1)
		}
		anchor.Frames = append(anchor.Frames, label.FrameInfo{Step: f, Reward: float64(f)})
	}
	anchor.Train = []reward.Pair{{A: []int32{0}, B: []int32{1}, Target: 0}, {A: []int32{2}, B: []int32{1}, Target: 1}, {A: []int32{3}, B: []int32{2}, Target: 0.5}}
	o, err := NewOnline(startingReward(t), 1, 10, OnlineConfig{NewLabeler: oracle, Anchor: anchor, AnchorPairs: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	online := reward.Pair{A: []int32{0}, B: []int32{1}, Target: 1}
	d := &reward.Dataset{Shape: anchor.Shape, X: make([]float32, 2*L), Frames: make([]label.FrameInfo, 2), Train: []reward.Pair{online}}
	if k := o.anchor(d); k != 2 {
		t.Fatalf("%d anchor pairs, want 2", k)
	}
	if len(d.Train) != 3 || !reflect.DeepEqual(d.Train[0], online) || len(d.X) != len(d.Frames)*L || len(d.Frames) < 5 || len(d.Frames) > 6 {
		t.Fatalf("dataset: %d pairs, %d frames, %d values", len(d.Train), len(d.Frames), len(d.X))
	}
	for _, p := range d.Train[1:] {
		a, b := d.Frame(p.A[0])[0], d.Frame(p.B[0])[0]
		ia, ib := int(a-1)/10, int(b-1)/10
		found := false
		for _, q := range anchor.Train {
			found = found || (q.A[0] == int32(ia) && q.B[0] == int32(ib) && q.Target == p.Target)
		}
		if !found || p.A[0] < 2 || p.B[0] < 2 || d.Frames[p.A[0]].Step != ia {
			t.Errorf("pair %+v (frames of anchor %d and %d) is not an anchor pair appended after the online frames", p, ia, ib)
		}
	}

	// The anchors are part of the checkpoint's fingerprint.
	plain, err := json.Marshal(o2Settings(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	with, _ := json.Marshal(o2Settings(t, anchor))
	other := *anchor
	other.Train = anchor.Train[:2]
	with2, _ := json.Marshal(o2Settings(t, &other))
	if bytes.Equal(plain, with) || bytes.Equal(with, with2) {
		t.Error("the checkpoint fingerprint does not tell anchor sets apart")
	}

	cfg, o2 := onlineConfig(t, startingReward(t), "uniform")
	o2.cfg.Anchor = anchor
	if _, err := Train(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	for _, st := range o2.Stats() {
		if st.Anchor != 3 { // as many as the online training labels, at least 1000, at most the 3 there are
			t.Errorf("refresh at %d: %d anchor pairs, want 3", st.Step, st.Anchor)
		}
	}
}

// o2Settings is the fingerprint settings of an online reward with anchor d.
func o2Settings(t *testing.T, d *reward.Dataset) any {
	t.Helper()
	o, err := NewOnline(startingReward(t), 1, 10, OnlineConfig{NewLabeler: oracle, Anchor: d})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	return o.Settings()
}
