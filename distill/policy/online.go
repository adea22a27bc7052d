package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
	"robodistill/control/runtime"
	"robodistill/distill/label"
	"robodistill/distill/reward"
	"robodistill/vision"
)

// Learner is a Reward that keeps learning while the policy trains (the online mode).
// The trainer tells it which replay slot each training transition went to, and every
// Every() steps lets it refresh: it may retrain and must then rewrite the rewards the
// replay buffer holds. Keep and Refresh run on the trainer's goroutine while no
// environment steps.
type Learner interface {
	Reward
	// Keep records that training environment env's last scored step is in replay slot
	// slot.
	Keep(env, slot int)
	// Every is the refresh period in environment steps.
	Every() int
	// Refresh is called when the step count crosses a multiple of Every.
	Refresh(ctx context.Context, step int, r *Replay) error
	// Capacity is the number of slots Keep accepts, at least the buffer's capacity.
	Capacity() int
}

// OnlineConfig configures the online reward (PEBBLE, Lee et al. 2021; RL-VLM-F, Wang et
// al. 2024): every Every steps, Pairs new pairs of frames from the replay buffer are
// labelled, the ensemble is retrained on every label so far starting from its current
// weights, renormalised on the buffer's frames, and every reward in the buffer is
// recomputed. Zero fields take the defaults in brackets.
type OnlineConfig struct {
	Every int `json:"every"` // environment steps between refreshes [5000]
	Pairs int `json:"pairs"` // new labels per refresh [500]
	// Sampler picks the pairs: "uniform" over the buffer's frames, or "disagreement":
	// the Pairs most disputed by the members among Candidates·Pairs uniform ones
	// ["disagreement"].
	Sampler    string `json:"sampler"`
	Candidates int    `json:"candidates"` // [10]
	// Train is the reward trainer's configuration for each refresh [Epochs 10, Patience
	// 3, the rest reward.DefaultConfig]; Arch, Hidden and Ensemble come from the model.
	Train reward.Config `json:"train"`
	// ValFraction of the new labels validate (early stopping) [0.1].
	ValFraction float64 `json:"val_fraction"`
	// NormFrames is how many buffer frames the normalisation is fitted on [4096].
	NormFrames int `json:"norm_frames"`
	// Anchor, when set, is the offline reward's training set (its labels joined with
	// their frames by reward.LoadDataset under the model's own vision configuration).
	// Each refresh then also trains on AnchorPairs of its training pairs, drawn afresh,
	// so that the ensemble keeps what it learnt offline (the goal's neighbourhood, which
	// the policy's experience reaches last) while it learns that experience.
	Anchor *reward.Dataset `json:"-"`
	// AnchorPairs is how many anchor pairs a refresh adds [as many as the online
	// training labels so far, at least 1000].
	AnchorPairs int    `json:"anchor_pairs,omitempty"`
	Seed        uint64 `json:"seed"`
	// Goal is the goal text a VLM labeller is given (the task's).
	Goal string `json:"goal"`
	// NewLabeler makes the labeller that answers the pairs, given the Source of their
	// frames: a scripted teacher reads the simulator reward stored with each frame and
	// ignores it; a VLM judge gets the pixels from it.
	NewLabeler func(label.Source) (label.Labeler, error) `json:"-"`
	Log        *zap.Logger                               `json:"-"`
}

func (c *OnlineConfig) defaults() {
	if c.Every == 0 {
		c.Every = 5000
	}
	if c.Pairs == 0 {
		c.Pairs = 500
	}
	if c.Sampler == "" {
		c.Sampler = "disagreement"
	}
	if c.Candidates == 0 {
		c.Candidates = 10
	}
	if c.Train.Epochs == 0 {
		c.Train.Epochs = 10
	}
	if c.Train.Patience == 0 {
		c.Train.Patience = 3
	}
	if c.ValFraction == 0 {
		c.ValFraction = 0.1
	}
	if c.NormFrames == 0 {
		c.NormFrames = 4096
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
}

func (c *OnlineConfig) validate() error {
	switch {
	case c.Every < 1:
		return fmt.Errorf("online.every: must be at least 1, got %d", c.Every)
	case c.Pairs < 1:
		return fmt.Errorf("online.pairs: must be at least 1, got %d", c.Pairs)
	case c.Sampler != "uniform" && c.Sampler != "disagreement":
		return fmt.Errorf("online.sampler: %q is not uniform or disagreement", c.Sampler)
	case c.Candidates < 1:
		return fmt.Errorf("online.candidates: must be at least 1, got %d", c.Candidates)
	case !(c.ValFraction > 0 && c.ValFraction < 1):
		return fmt.Errorf("online.val_fraction: must be in (0, 1), got %g", c.ValFraction)
	case c.NewLabeler == nil:
		return errors.New("online.labeler: required")
	case c.AnchorPairs < 0:
		return fmt.Errorf("online.anchor_pairs: must be 0 or more, got %d", c.AnchorPairs)
	case c.Anchor != nil && len(c.Anchor.Train) == 0:
		return errors.New("online.anchor: the offline dataset has no training pairs")
	}
	return nil
}

// RefreshStats is one refresh of the online reward.
type RefreshStats struct {
	Step   int `json:"step"`
	Labels int `json:"labels"`           // labels so far
	New    int `json:"new"`              // answered this time (abstentions excluded)
	Anchor int `json:"anchor,omitempty"` // offline pairs trained on beside them (OnlineConfig.Anchor)
	// AccBefore is the share of the new decisive labels the ensemble agreed with before
	// retraining: how well it judged the policy's latest experience. ValAcc is its
	// members' mean validation accuracy after.
	AccBefore float64 `json:"acc_before"`
	ValAcc    float64 `json:"val_acc"`
	// Disagreement is the mean ensemble disagreement of the chosen pairs (0 for the
	// uniform sampler).
	Disagreement float64 `json:"disagreement"`
	// Pearson is the correlation of the new reward with the simulator's over the buffer
	// (0 when either is constant).
	Pearson        float64 `json:"pearson"`
	Epochs         []int   `json:"epochs"`
	LabelSeconds   float64 `json:"label_seconds"`
	TrainSeconds   float64 `json:"train_seconds"`
	RelabelSeconds float64 `json:"relabel_seconds"`
}

// Online is the distilled reward in online mode: it scores like Distilled (the
// runtime ensemble on the frame through vision/), keeps each training frame's model
// input as bytes beside the replay buffer, and retrains itself on new labels of those
// frames (see OnlineConfig).
type Online struct {
	cfg     OnlineConfig
	labeler label.Labeler
	base    onnxio.Manifest // member 0's manifest: vision, task, provenance
	nets    []*nn.Sequential
	ens     []*runtime.Ensemble // per environment index
	pre     []*vision.Preprocessor
	cur     [][]byte // per environment: the last scored frame's bytes
	curR    []float64
	x       [][]float32
	failure []error
	L       int // bytes per frame
	shape   [3]int

	// The ring beside the replay buffer: slot i's frame bytes and simulator reward.
	frames []byte
	simR   []float64

	// Labels: every labelled frame's bytes, its simulator reward, and the pairs.
	lframes []byte
	lsim    []float64
	train   []reward.Pair
	val     []reward.Pair
	x32     []float32 // the labelled frames as model inputs, appended as they come
	labelH  []byte    // running digest input of every label (for the manifest)

	pcg     *rand.PCG
	rng     *rand.Rand
	sha     string
	stats   []RefreshStats
	envs    int
	mu      sync.Mutex // guards src
	src     map[string]int
	sources []byte // frames offered to a VLM through Source, by src index
}

// NewOnline starts from the reward ensemble whose member 0 is path: its weights (for
// warm starts), vision configuration and normalisation. envs is the number of training
// environments and capacity the replay buffer's.
func NewOnline(path string, envs, capacity int, cfg OnlineConfig) (*Online, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("policy.NewOnline: %w", err)
	}
	ens, err := runtime.LoadEnsemble(path, runtime.Options{})
	if err != nil {
		return nil, fmt.Errorf("policy.NewOnline: %w", err)
	}
	pcg := rand.NewPCG(cfg.Seed, 0x0e11e)
	o := &Online{cfg: cfg, base: *ens.Member(0).Manifest(), envs: envs, sha: ens.Member(0).SHA256(),
		pcg: pcg, rng: rand.New(pcg), src: map[string]int{}}
	if o.base.Input.Vision == nil || len(o.base.Input.Shape) != 3 {
		return nil, fmt.Errorf("policy.NewOnline: %s takes no image (no vision configuration)", path)
	}
	for m := range ens.Size() {
		data, err := os.ReadFile(onnxio.MemberPath(path, m))
		if err != nil {
			return nil, fmt.Errorf("policy.NewOnline: %w", err)
		}
		net, err := reward.ImportNet(data)
		if err != nil {
			return nil, fmt.Errorf("policy.NewOnline: member %d: %w", m, err)
		}
		o.nets = append(o.nets, net)
	}
	o.shape = [3]int{o.base.Input.Shape[0], o.base.Input.Shape[1], o.base.Input.Shape[2]}
	o.L = o.shape[0] * o.shape[1] * o.shape[2]
	for range 2 * envs {
		p, err := vision.New(*o.base.Input.Vision)
		if err != nil {
			o.Close()
			return nil, fmt.Errorf("policy.NewOnline: %w", err)
		}
		o.pre = append(o.pre, p)
		o.cur = append(o.cur, make([]byte, o.L))
		o.x = append(o.x, make([]float32, o.L))
	}
	o.curR = make([]float64, 2*envs)
	o.failure = make([]error, 2*envs)
	o.setEnsemble(ens)
	if o.labeler, err = cfg.NewLabeler(o.Source()); err != nil {
		o.Close()
		return nil, fmt.Errorf("policy.NewOnline: labeller: %w", err)
	}
	o.frames = make([]byte, capacity*o.L)
	o.simR = make([]float64, capacity)
	return o, nil
}

func (o *Online) setEnsemble(e *runtime.Ensemble) {
	o.ens = o.ens[:0]
	for i := range 2 * o.envs {
		if i == 0 {
			o.ens = append(o.ens, e)
		} else {
			o.ens = append(o.ens, e.Clone())
		}
	}
}

// Close frees the preprocessors.
func (o *Online) Close() error {
	for _, p := range o.pre {
		p.Close()
	}
	return nil
}

// Name implements Reward.
func (o *Online) Name() string { return "online" }

// Labeler implements Reward: the starting model's sha256 (the policy's manifest names
// the refined model's hashes through the exported reward, see Save).
func (o *Online) Labeler() string { return o.sha }

// NeedsFrame implements Reward.
func (o *Online) NeedsFrame() bool { return true }

// Every implements Learner.
func (o *Online) Every() int { return o.cfg.Every }

// CountTerm is the starting model's count-based term (reward.count), applied by the
// trainer; the refined members keep it.
func (o *Online) CountTerm() *onnxio.CountTerm { return o.base.Reward.Count }

// Capacity implements Learner.
func (o *Online) Capacity() int { return len(o.simR) }

// Stats lists the refreshes so far.
func (o *Online) Stats() []RefreshStats { return o.stats }

// Reward implements Reward: like Distilled's, keeping the frame's bytes for Keep.
func (o *Online) Reward(env int, _ []float64, frame []byte, w, h int, simReward float64) float64 {
	img := vision.ImageView{Encoding: "rgb8", Width: w, Height: h, Step: 3 * w, Data: frame}
	if err := o.pre[env].ProcessBytes(img, o.cur[env]); err != nil {
		o.fail(env, err)
		return 0
	}
	o.curR[env] = simReward
	o.pre[env].Normalize(o.cur[env], o.x[env])
	r, _, err := o.ens[env].Run(o.x[env])
	if err != nil {
		o.fail(env, err)
		return 0
	}
	return r
}

func (o *Online) fail(env int, err error) {
	if o.failure[env] == nil {
		o.failure[env] = fmt.Errorf("online reward, environment %d: %w", env, err)
	}
}

// Err is the first failure of each environment, joined.
func (o *Online) Err() error { return errors.Join(o.failure...) }

// Keep implements Learner.
func (o *Online) Keep(env, slot int) {
	copy(o.frames[slot*o.L:(slot+1)*o.L], o.cur[env])
	o.simR[slot] = o.curR[env]
}

func (o *Online) frame(slot int) []byte { return o.frames[slot*o.L : (slot+1)*o.L] }

// Refresh implements Learner.
func (o *Online) Refresh(ctx context.Context, step int, rp *Replay) error {
	n := rp.Len()
	if n < 2 {
		return nil
	}
	st := RefreshStats{Step: step}
	t0 := time.Now()
	pairs, dis, err := o.sample(n)
	if err != nil {
		return err
	}
	st.Disagreement = dis
	agree, decisive, err := o.label(ctx, pairs, &st)
	if err != nil {
		return err
	}
	if decisive > 0 {
		st.AccBefore = float64(agree) / float64(decisive)
	}
	st.Labels = len(o.train) + len(o.val)
	st.LabelSeconds = time.Since(t0).Seconds()

	t1 := time.Now()
	infos := make([]label.FrameInfo, len(o.lsim))
	for i, r := range o.lsim {
		infos[i] = label.FrameInfo{Step: i, Reward: r}
	}
	d := &reward.Dataset{Vision: *o.base.Input.Vision, Shape: o.shape, X: o.x32, Frames: infos, Train: o.train, Val: o.val}
	if o.cfg.Anchor != nil {
		st.Anchor = o.anchor(d)
	}
	tc := o.cfg.Train
	tc.Ensemble = len(o.nets) // architecture and hidden width: the warm start's (Trainer.Init)
	tc.Seed = o.cfg.Seed + uint64(len(o.stats))
	tc.Workers = 2
	tr := reward.Trainer{Config: tc, Init: o.nets}
	res, err := tr.Train(ctx, d)
	if err != nil {
		return fmt.Errorf("online reward, refresh at step %d: %w", step, err)
	}
	for m, r := range res {
		o.nets[m] = r.Net
		st.ValAcc += r.ValAcc / float64(len(res))
		st.Epochs = append(st.Epochs, r.Epochs)
	}
	st.TrainSeconds = time.Since(t1).Seconds()

	t2 := time.Now()
	e, err := o.build(n)
	if err != nil {
		return fmt.Errorf("online reward, refresh at step %d: %w", step, err)
	}
	o.setEnsemble(e)
	st.Pearson = o.relabel(rp)
	st.RelabelSeconds = time.Since(t2).Seconds()
	o.stats = append(o.stats, st)
	o.cfg.Log.Info("online reward refreshed", zap.Int("step", step), zap.Int("labels", st.Labels),
		zap.Int("new", st.New), zap.Int("anchor", st.Anchor), zap.Float64("acc_before", st.AccBefore), zap.Float64("val_acc", st.ValAcc),
		zap.Float64("disagreement", st.Disagreement), zap.Float64("pearson_sim", st.Pearson), zap.Ints("epochs", st.Epochs),
		zap.Float64("label_s", st.LabelSeconds), zap.Float64("train_s", st.TrainSeconds), zap.Float64("relabel_s", st.RelabelSeconds))
	return nil
}

// anchor adds a fresh draw of the offline training pairs to d (their frames appended
// after the online ones) and returns how many.
func (o *Online) anchor(d *reward.Dataset) int {
	a := o.cfg.Anchor
	k := o.cfg.AnchorPairs
	if k == 0 {
		k = max(len(o.train), 1000)
	}
	k = min(k, len(a.Train))
	n := len(d.Frames)
	x := make([]float32, len(d.X), len(d.X)+2*k*o.L)
	copy(x, d.X)
	train := slices.Clone(d.Train)
	seen := map[int32]int32{}
	add := func(fs []int32) []int32 {
		out := make([]int32, len(fs))
		for i, f := range fs {
			j, ok := seen[f]
			if !ok {
				j = int32(n)
				n++
				seen[f] = j
				x = append(x, a.Frame(f)...)
				d.Frames = append(d.Frames, a.Frames[f])
			}
			out[i] = j
		}
		return out
	}
	for _, i := range o.rng.Perm(len(a.Train))[:k] {
		p := a.Train[i]
		train = append(train, reward.Pair{A: add(p.A), B: add(p.B), Target: p.Target, Truth: p.Truth})
	}
	d.X, d.Train = x, train
	return k
}

// sample picks the new pairs (slots of the buffer) and returns the mean disagreement
// of the chosen ones.
func (o *Online) sample(n int) ([][2]int, float64, error) {
	draw := func(k int) [][2]int {
		ps := make([][2]int, 0, k)
		for len(ps) < k {
			a, b := o.rng.IntN(n), o.rng.IntN(n)
			if a != b {
				ps = append(ps, [2]int{a, b})
			}
		}
		return ps
	}
	if o.cfg.Sampler == "uniform" {
		return draw(o.cfg.Pairs), 0, nil
	}
	cands := draw(o.cfg.Pairs * o.cfg.Candidates)
	// Each member's published reward of every candidate frame, then the spread of the
	// members' Bradley-Terry probabilities per pair.
	score := map[int][]float64{}
	e, pre, x := o.ens[0], o.pre[0], o.x[0]
	for _, p := range cands {
		for _, s := range p {
			if _, ok := score[s]; ok {
				continue
			}
			pre.Normalize(o.frame(s), x)
			if _, _, err := e.Run(x); err != nil {
				return nil, 0, fmt.Errorf("online reward: scoring slot %d: %w", s, err)
			}
			score[s] = slices.Clone(e.Published())
		}
	}
	dis := make([]float64, len(cands))
	for k, p := range cands {
		a, b := score[p[0]], score[p[1]]
		var mean, sq float64
		for m := range a {
			q := 1 / (1 + math.Exp(b[m]-a[m]))
			mean += q
			sq += q * q
		}
		mean /= float64(len(a))
		dis[k] = math.Sqrt(math.Max(0, sq/float64(len(a))-mean*mean))
	}
	idx := make([]int, len(cands))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return dis[idx[i]] > dis[idx[j]] })
	out := make([][2]int, o.cfg.Pairs)
	var sum float64
	for k := range out {
		out[k] = cands[idx[k]]
		sum += dis[idx[k]]
	}
	return out, sum / float64(len(out)), nil
}

// label asks the labeller about the pairs and adds the answers to the label set; it
// returns how many decisive answers the current ensemble agreed with.
func (o *Online) label(ctx context.Context, pairs [][2]int, st *RefreshStats) (agree, decisive int, err error) {
	info := func(s int) label.FrameInfo {
		return label.FrameInfo{Hash: o.offer(o.frame(s)), Episode: 0, Step: s, Reward: o.simR[s]}
	}
	e, pre, x := o.ens[0], o.pre[0], o.x[0]
	score := func(s int) float64 {
		pre.Normalize(o.frame(s), x)
		r, _, _ := e.Run(x)
		return r
	}
	for _, p := range pairs {
		q := label.Query{Pair: label.Pair{A: label.Segment{info(p[0])}, B: label.Segment{info(p[1])}},
			Task: o.base.Task, Goal: o.cfg.Goal, EpisodeA: "replay", EpisodeB: "replay"}
		l, err := o.labeler.Label(ctx, q)
		if err != nil {
			return 0, 0, fmt.Errorf("online reward: labelling slots %d and %d: %w", p[0], p[1], err)
		}
		t, ok := reward.Target(l.Answer)
		if !ok {
			continue
		}
		if t != 0.5 {
			decisive++
			if (score(p[0]) > score(p[1])) == (t == 1) {
				agree++
			}
		}
		a, b := o.addFrame(p[0]), o.addFrame(p[1])
		rp := reward.Pair{A: []int32{a}, B: []int32{b}, Target: t}
		if o.rng.Float64() < o.cfg.ValFraction || len(o.val) == 0 {
			o.val = append(o.val, rp)
		} else {
			o.train = append(o.train, rp)
		}
		var rec [16]byte
		binary.LittleEndian.PutUint32(rec[0:], uint32(a))
		binary.LittleEndian.PutUint32(rec[4:], uint32(b))
		binary.LittleEndian.PutUint32(rec[8:], math.Float32bits(t))
		o.labelH = append(o.labelH, rec[:12]...)
		st.New++
	}
	o.mu.Lock()
	clear(o.src)
	o.sources = o.sources[:0]
	o.mu.Unlock()
	return agree, decisive, nil
}

// addFrame copies slot's frame into the label set and returns its index there.
func (o *Online) addFrame(slot int) int32 {
	i := int32(len(o.lsim))
	f := o.frame(slot)
	o.lframes = append(o.lframes, f...)
	o.lsim = append(o.lsim, o.simR[slot])
	o.x32 = slices.Grow(o.x32, o.L)[:len(o.x32)+o.L]
	o.pre[0].Normalize(f, o.x32[len(o.x32)-o.L:])
	return i
}

// offer names a frame by its content hash and keeps it for Source until the end of
// the refresh.
func (o *Online) offer(f []byte) string {
	h := sha256.Sum256(f)
	k := hex.EncodeToString(h[:])
	o.mu.Lock()
	if _, ok := o.src[k]; !ok {
		o.src[k] = len(o.sources) / o.L
		o.sources = append(o.sources, f...)
	}
	o.mu.Unlock()
	return k
}

// build exports the current networks with a normalisation fitted on up to NormFrames
// buffer frames and loads them through the runtime, as the daemon would.
func (o *Online) build(n int) (*runtime.Ensemble, error) {
	k := min(n, o.cfg.NormFrames)
	slots := o.rng.Perm(n)[:k]
	unit := onnxio.RewardNorm{Mean: 0, Std: 1}
	members := make([]*runtime.Model, len(o.nets))
	for m, net := range o.nets {
		raw, err := o.load(net, m, unit)
		if err != nil {
			return nil, err
		}
		rs := make([]float32, k)
		x := o.x[0]
		for i, s := range slots {
			o.pre[0].Normalize(o.frame(s), x)
			out, err := raw.Run(x, 1)
			if err != nil {
				return nil, err
			}
			rs[i] = out[0]
		}
		norm, err := reward.Normalize(rs, 0)
		if err != nil {
			return nil, err
		}
		if members[m], err = o.load(net, m, norm); err != nil {
			return nil, err
		}
	}
	return runtime.NewEnsemble(members)
}

// manifest is member m's manifest with normalisation norm.
func (o *Online) manifest(m int, norm onnxio.RewardNorm) onnxio.Manifest {
	man := o.base
	man.Reward = &norm
	man.Ensemble = &onnxio.Ensemble{Member: m, Size: len(o.nets)}
	h := sha256.Sum256(o.labelH)
	man.Training.LabelsSHA256 = append(slices.Clone(o.base.Training.LabelsSHA256), hex.EncodeToString(h[:]))
	man.Training.Labeler = o.labeler.Info().Name() + " (online)"
	man.Created = time.Now().UTC().Truncate(time.Second)
	man.Golden = onnxio.Golden{}
	return man
}

func (o *Online) load(net *nn.Sequential, m int, norm onnxio.RewardNorm) (*runtime.Model, error) {
	var buf bytes.Buffer
	man, err := onnxio.Export(&buf, net, o.manifest(m, norm))
	if err != nil {
		return nil, err
	}
	return runtime.LoadBytes(buf.Bytes(), man, runtime.Options{})
}

// relabel rewrites every reward in the buffer with the current ensemble (two
// goroutines) and returns the correlation of the new rewards with the simulator's.
func (o *Online) relabel(rp *Replay) float64 {
	n := rp.Len()
	out := make([]float64, n)
	var wg sync.WaitGroup
	workers := min(2, len(o.ens))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, pre, x := o.ens[w], o.pre[w], o.x[w]
			for i := w; i < n; i += workers {
				pre.Normalize(o.frame(i), x)
				r, _, err := e.Run(x)
				if err != nil {
					o.fail(w, err)
				}
				out[i] = r
			}
		}()
	}
	wg.Wait()
	for i, r := range out {
		rp.SetReward(i, float32(r))
	}
	return pearson0(out, o.simR[:n])
}

// Save writes the current ensemble as path (member 0) and its members beside it
// (onnxio.MemberPath), each with its manifest: the reward model the daemon should run
// with the policy trained on it.
func (o *Online) Save(path string) error {
	for m := range o.nets {
		norm := *o.ens[0].Member(m).Manifest().Reward
		if _, err := onnxio.Save(onnxio.MemberPath(path, m), o.nets[m], o.manifest(m, norm)); err != nil {
			return fmt.Errorf("online reward: %w", err)
		}
	}
	return nil
}

// Source offers the frames of the pairs being labelled to a labeller that needs pixels
// (a VLM): each is the model's input (the crop resized, Shape's size), as RGB8.
func (o *Online) Source() label.Source { return onlineSource{o} }

type onlineSource struct{ o *Online }

func (s onlineSource) Episodes() []label.Episode {
	return []label.Episode{{ID: "replay", Task: s.o.base.Task, Goal: s.o.cfg.Goal}}
}

func (s onlineSource) Frames(int) ([]label.FrameInfo, error) { return nil, nil }

func (s onlineSource) Frame(hash string) (label.Frame, error) {
	o := s.o
	o.mu.Lock()
	defer o.mu.Unlock()
	i, ok := o.src[hash]
	if !ok {
		return label.Frame{}, fmt.Errorf("%w: %s", label.ErrFrameNotFound, hash)
	}
	c, h, w := o.shape[0], o.shape[1], o.shape[2]
	chw := o.sources[i*o.L : (i+1)*o.L]
	rgb := make([]byte, 3*h*w)
	for p := range h * w {
		for k := range 3 {
			rgb[3*p+k] = chw[min(k, c-1)*h*w+p]
		}
	}
	return label.Frame{FrameInfo: label.FrameInfo{Hash: hash, Reward: math.NaN()}, W: w, H: h, RGB: rgb}, nil
}
