package reward

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"robodistill/control/nn"
)

// Config is a training run's settings. Zero fields take the defaults in brackets.
type Config struct {
	Ensemble int    `json:"ensemble"` // members, each with its own initialisation and batch order [3]
	Hidden   int    `json:"hidden"`   // width of the hidden layer [64]
	Arch     string `json:"arch"`     // network: "cnn2", "cnn3" or "spatial" (see NewNet) ["cnn2"]
	Batch    int    `json:"batch"`    // pairs per step [64]
	Epochs   int    `json:"epochs"`   // at most this many passes over the training labels [60]
	Patience int    `json:"patience"` // stop after this many epochs without a better validation loss [6]
	Seed     uint64 `json:"seed"`
	// Adam's settings [lr 1e-3, PyTorch's betas and eps, no weight decay].
	Adam nn.AdamConfig `json:"adam"`
	// Smoothing is the Bradley-Terry label smoothing ε (targets move to y(1−ε)+ε/2) [0].
	Smoothing float64 `json:"smoothing"`
	// Shift is the augmentation: every training frame is moved by up to Shift pixels in
	// each direction, edges replicated (DrQ's random shift) [4]; -1 turns it off.
	Shift int `json:"shift"`
	// Workers is how many members train at once [1]. Each member's arithmetic is the
	// same whatever Workers is, so results do not depend on it.
	Workers int `json:"-"`
}

// DefaultConfig is Config with every default filled in.
func DefaultConfig() Config {
	var c Config
	c.defaults()
	return c
}

func (c *Config) defaults() {
	if c.Ensemble == 0 {
		c.Ensemble = 3
	}
	if c.Hidden == 0 {
		c.Hidden = 64
	}
	if c.Arch == "" {
		c.Arch = "cnn2"
	}
	if c.Batch == 0 {
		c.Batch = 64
	}
	if c.Epochs == 0 {
		c.Epochs = 60
	}
	if c.Patience == 0 {
		c.Patience = 6
	}
	if c.Adam == (nn.AdamConfig{}) {
		c.Adam = nn.DefaultAdam()
		c.Adam.LR = 1e-3
	}
	if c.Shift == 0 {
		c.Shift = 4
	}
	if c.Workers < 1 {
		c.Workers = 1
	}
}

// Validate reports the first bad setting, naming it.
func (c *Config) Validate() error {
	switch {
	case c.Ensemble < 1 || c.Ensemble > 32:
		return fmt.Errorf("ensemble: must be 1 to 32, got %d", c.Ensemble)
	case c.Arch != "cnn2" && c.Arch != "cnn3" && c.Arch != "spatial":
		return fmt.Errorf("arch: unknown network %q (want cnn2, cnn3 or spatial)", c.Arch)
	case c.Hidden < 1:
		return fmt.Errorf("hidden: must be positive, got %d", c.Hidden)
	case c.Batch < 1:
		return fmt.Errorf("batch: must be positive, got %d", c.Batch)
	case c.Epochs < 1:
		return fmt.Errorf("epochs: must be positive, got %d", c.Epochs)
	case c.Patience < 1:
		return fmt.Errorf("patience: must be positive, got %d", c.Patience)
	case !(c.Smoothing >= 0 && c.Smoothing < 1):
		return fmt.Errorf("smoothing: must be in [0, 1), got %g", c.Smoothing)
	case c.Shift < -1 || c.Shift > 16:
		return fmt.Errorf("shift: must be -1 (off) to 16 pixels, got %d", c.Shift)
	}
	if err := c.Adam.Validate(); err != nil {
		return fmt.Errorf("adam: %w", err)
	}
	return nil
}

// NewNet is the reward network for frames of shape [C, H, W], by arch:
//
//   - "cnn2": two strided convolutions (5×5/2 to 16 channels, 3×3/2 to 32), flattened, a
//     hidden layer and one output, ReLU between. On 3×64×64 it is 4.81 MFLOPs per frame.
//   - "cnn3": cnn2 with a third convolution (3×3/1, 32 channels): 7.26 MFLOPs.
//   - "spatial": convolutions 5×5/2 and 3×3/1, both to 32 channels, then a spatial
//     soft-argmax (nn.SpatialSoftmax: the expected x and y of each channel's softmax
//     over its positions, 64 numbers), a hidden layer and one output. It keeps where
//     things are rather than what the flattened map looks like (Levine et al. 2016,
//     Finn et al. 2016). On 3×64×64 it is 19.09 MFLOPs per frame, 15,905 parameters at
//     hidden 64.
//
// Weights come from rng in layer order.
func NewNet(arch string, shape [3]int, hidden int, rng *rand.Rand) (*nn.Sequential, error) {
	var head []nn.Layer
	switch arch {
	case "cnn2", "cnn3":
		head = []nn.Layer{
			nn.NewConv2d(shape[0], 16, 5, 2, 0, rng), nn.NewReLU(),
			nn.NewConv2d(16, 32, 3, 2, 0, rng), nn.NewReLU(),
		}
		if arch == "cnn3" {
			head = append(head, nn.NewConv2d(32, 32, 3, 1, 0, rng), nn.NewReLU())
		}
		head = append(head, nn.NewFlatten())
	case "spatial":
		head = []nn.Layer{
			nn.NewConv2d(shape[0], 32, 5, 2, 0, rng), nn.NewReLU(),
			nn.NewConv2d(32, 32, 3, 1, 0, rng), nn.NewReLU(),
			nn.NewSpatialSoftmax(),
		}
	default:
		return nil, fmt.Errorf("unknown reward network %q", arch)
	}
	out, err := nn.NewSequential(head...).OutShape([]int{1, shape[0], shape[1], shape[2]})
	if err != nil {
		return nil, fmt.Errorf("frames of %v are too small for the reward network: %w", shape, err)
	}
	return nn.NewSequential(append(head,
		nn.NewLinear(out[1], hidden, rng), nn.NewReLU(),
		nn.NewLinear(hidden, 1, rng),
	)...), nil
}

// NetArch tells which NewNet architecture net is and its hidden width: "spatial" when it
// has a SpatialSoftmax, otherwise "cnn2" or "cnn3" by its number of convolutions. It
// looks at the layer types only; whether the shapes are NewNet's is for the caller (a warm
// start compares every parameter's shape).
func NetArch(net *nn.Sequential) (arch string, hidden int, err error) {
	convs, spatial := 0, false
	var last *nn.Linear
	for _, l := range net.Layers {
		switch l := l.(type) {
		case *nn.Conv2d:
			convs++
		case *nn.SpatialSoftmax:
			spatial = true
		case *nn.Linear:
			last = l
		}
	}
	switch {
	case last == nil || last.Out != 1:
		return "", 0, fmt.Errorf("reward: the network does not end in a Linear layer with one output")
	case spatial && convs == 2:
		arch = "spatial"
	case !spatial && convs == 2:
		arch = "cnn2"
	case !spatial && convs == 3:
		arch = "cnn3"
	default:
		return "", 0, fmt.Errorf("reward: %d convolutions (spatial softmax: %v): not a network NewNet makes", convs, spatial)
	}
	return arch, last.In, nil
}

// EpochStats is one member's figures after one epoch.
type EpochStats struct {
	Epoch     int     `json:"epoch"` // from 1
	TrainLoss float64 `json:"train_loss"`
	ValLoss   float64 `json:"val_loss"`
	ValAcc    float64 `json:"val_acc"` // share of decisive validation labels whose side the member prefers
	Seconds   float64 `json:"seconds"`
}

// MemberResult is how one member's training went.
type MemberResult struct {
	Member    int            `json:"member"`
	Epochs    int            `json:"epochs"`     // epochs run
	BestEpoch int            `json:"best_epoch"` // the one whose weights were kept
	Steps     int            `json:"steps"`      // optimizer steps
	ValLoss   float64        `json:"val_loss"`
	ValAcc    float64        `json:"val_acc"`
	Resumed   int            `json:"resumed_epochs,omitempty"` // epochs taken from a checkpoint
	History   []EpochStats   `json:"history"`
	Net       *nn.Sequential `json:"-"`
}

// Progress is told about every finished epoch. It may be called from several goroutines
// at once.
type Progress func(member int, st EpochStats)

// Trainer trains a reward ensemble on a Dataset.
type Trainer struct {
	Config Config
	// Checkpoints, when set, is a folder where each member's state is saved after every
	// epoch; a run with the same data and settings continues from it.
	Checkpoints string
	Progress    Progress
	// Init, when set, holds one network per member to start from instead of a fresh
	// initialisation (a warm start: the online reward of policy training retrains its
	// members this way). Their layers must be NewNet's; the architecture and hidden width
	// are theirs (NetArch of the first), whatever Config.Arch and Hidden say. They are
	// copied, not changed.
	Init []*nn.Sequential
}

// Train trains every member and returns them with the weights of their best validation
// epoch. Members are independent: member m draws its weights, batch order and
// augmentation from a generator seeded with (Seed, m).
func (t *Trainer) Train(ctx context.Context, d *Dataset) ([]MemberResult, error) {
	cfg := t.Config
	cfg.defaults()
	if len(t.Init) > 0 {
		arch, hidden, err := NetArch(t.Init[0])
		if err != nil {
			return nil, fmt.Errorf("reward: initial network: %w", err)
		}
		cfg.Arch, cfg.Hidden = arch, hidden
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if t.Init != nil && len(t.Init) != cfg.Ensemble {
		return nil, fmt.Errorf("reward: %d initial networks for an ensemble of %d", len(t.Init), cfg.Ensemble)
	}
	res := make([]MemberResult, cfg.Ensemble)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Workers)
	fp := fingerprint(cfg, d)
	for m := range cfg.Ensemble {
		g.Go(func() error {
			mt, err := newMemberTrainer(cfg, d, m)
			if err != nil {
				return err
			}
			if t.Init != nil {
				if err := mt.warmStart(t.Init[m]); err != nil {
					return fmt.Errorf("member %d: %w", m, err)
				}
			}
			r, err := mt.run(ctx, t.Checkpoints, fp, t.Progress)
			if err != nil {
				return fmt.Errorf("member %d: %w", m, err)
			}
			res[m] = r
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return res, nil
}

// memberTrainer holds one member's network, optimizer, generator and buffers.
type memberTrainer struct {
	cfg    Config
	d      *Dataset
	member int
	net    *nn.Sequential
	opt    *nn.Adam
	pcg    *rand.PCG
	rng    *rand.Rand
	best   []*nn.Param // the best epoch's weights
	st     trainState

	x        nn.Tensor
	xbuf     []float32
	ra, rb   []float32
	dra, drb []float32
	tgt      []float32
	dr       nn.Tensor
	order    []int
	valIdx   []int32 // distinct frames the validation labels name
	valR     []float32
}

// trainState is what a checkpoint restores besides weights and optimizer moments.
type trainState struct {
	Fingerprint string       `json:"fingerprint"`
	Epoch       int          `json:"epoch"` // epochs done
	Steps       int          `json:"steps"`
	BestEpoch   int          `json:"best_epoch"`
	BestLoss    float64      `json:"best_loss"`
	Bad         int          `json:"bad"` // epochs since the best
	Done        bool         `json:"done"`
	PCG         []byte       `json:"pcg"`
	History     []EpochStats `json:"history"`
	Resumed     int          `json:"-"`
}

func newMemberTrainer(cfg Config, d *Dataset, m int) (*memberTrainer, error) {
	pcg := rand.NewPCG(cfg.Seed, uint64(m)+1)
	rng := rand.New(pcg)
	net, err := NewNet(cfg.Arch, d.Shape, cfg.Hidden, rng)
	if err != nil {
		return nil, err
	}
	opt, err := nn.NewAdam(net.Params(), cfg.Adam)
	if err != nil {
		return nil, err
	}
	mt := &memberTrainer{cfg: cfg, d: d, member: m, net: net, opt: opt, pcg: pcg, rng: rng,
		best: cloneParams(net.Params()), st: trainState{BestLoss: math.Inf(1)}}
	seen := map[int32]bool{}
	for _, p := range d.Val {
		for _, f := range append(append([]int32(nil), p.A...), p.B...) {
			if !seen[f] {
				seen[f] = true
				mt.valIdx = append(mt.valIdx, f)
			}
		}
	}
	mt.order = make([]int, len(d.Train))
	return mt, nil
}

// warmStart replaces the fresh weights with init's.
func (mt *memberTrainer) warmStart(init *nn.Sequential) error {
	ps, qs := mt.net.Params(), init.Params()
	if len(ps) != len(qs) {
		return fmt.Errorf("initial network has %d parameters, want %d (%s, hidden %d)", len(qs), len(ps), mt.cfg.Arch, mt.cfg.Hidden)
	}
	for i, p := range ps {
		if !slices.Equal(p.Shape, qs[i].Shape) {
			return fmt.Errorf("initial network's %s has shape %v, want %v", p.Name, qs[i].Shape, p.Shape)
		}
	}
	copyValues(ps, qs)
	copyValues(mt.best, qs)
	return nil
}

func cloneParams(ps []*nn.Param) []*nn.Param {
	out := make([]*nn.Param, len(ps))
	for i, p := range ps {
		out[i] = &nn.Param{Name: p.Name, Shape: p.Shape, Value: append([]float32(nil), p.Value...)}
	}
	return out
}

func copyValues(dst, src []*nn.Param) {
	for i := range dst {
		copy(dst[i].Value, src[i].Value)
	}
}

func (mt *memberTrainer) run(ctx context.Context, ckptDir, fp string, progress Progress) (MemberResult, error) {
	mt.st.Fingerprint = fp
	if ckptDir != "" {
		if err := mt.restore(ckptDir); err != nil {
			return MemberResult{}, err
		}
	}
	for !mt.st.Done && mt.st.Epoch < mt.cfg.Epochs {
		if err := ctx.Err(); err != nil {
			return MemberResult{}, err
		}
		t0 := time.Now()
		trainLoss := mt.epoch()
		valLoss, valAcc := mt.validate()
		if math.IsNaN(trainLoss) || math.IsNaN(valLoss) {
			return MemberResult{}, errors.New("the loss became NaN; lower the learning rate")
		}
		mt.st.Epoch++
		es := EpochStats{Epoch: mt.st.Epoch, TrainLoss: trainLoss, ValLoss: valLoss, ValAcc: valAcc, Seconds: time.Since(t0).Seconds()}
		mt.st.History = append(mt.st.History, es)
		if valLoss < mt.st.BestLoss {
			mt.st.BestLoss, mt.st.BestEpoch, mt.st.Bad = valLoss, mt.st.Epoch, 0
			copyValues(mt.best, mt.net.Params())
		} else {
			mt.st.Bad++
		}
		if mt.st.Bad >= mt.cfg.Patience {
			mt.st.Done = true
		}
		if ckptDir != "" {
			if err := mt.save(ckptDir); err != nil {
				return MemberResult{}, err
			}
		}
		if progress != nil {
			progress(mt.member, es)
		}
	}
	copyValues(mt.net.Params(), mt.best)
	r := MemberResult{Member: mt.member, Epochs: mt.st.Epoch, BestEpoch: mt.st.BestEpoch, Steps: mt.st.Steps,
		Resumed: mt.st.Resumed, History: mt.st.History, Net: mt.net}
	if b := mt.st.BestEpoch; b > 0 {
		r.ValLoss, r.ValAcc = mt.st.History[b-1].ValLoss, mt.st.History[b-1].ValAcc
	}
	return r, nil
}

// epoch runs one shuffled pass over the training labels and returns the mean loss.
func (mt *memberTrainer) epoch() float64 {
	// The order starts from the identity every epoch, so that it depends only on the
	// generator's state, which a checkpoint restores.
	for i := range mt.order {
		mt.order[i] = i
	}
	mt.rng.Shuffle(len(mt.order), func(i, j int) { mt.order[i], mt.order[j] = mt.order[j], mt.order[i] })
	bt := nn.BradleyTerry{Smoothing: mt.cfg.Smoothing}
	var sum float64
	for lo := 0; lo < len(mt.order); lo += mt.cfg.Batch {
		batch := mt.order[lo:min(lo+mt.cfg.Batch, len(mt.order))]
		sum += mt.step(batch, bt) * float64(len(batch))
	}
	return sum / float64(len(mt.order))
}

// step is one Bradley-Terry update on the training labels batch. Frames are laid out
// pair by pair, side A's frames then side B's; a side's reward is the sum over its frames.
func (mt *memberTrainer) step(batch []int, bt nn.BradleyTerry) float64 {
	d, n := mt.d, mt.d.FrameLen()
	frames := 0
	for _, i := range batch {
		frames += len(d.Train[i].A) + len(d.Train[i].B)
	}
	mt.grow(frames, len(batch))
	f := 0
	for _, i := range batch {
		p := &d.Train[i]
		for _, side := range [2][]int32{p.A, p.B} {
			for _, fi := range side {
				shift(mt.xbuf[f*n:(f+1)*n], d.Frame(fi), d.Shape, mt.cfg.Shift, mt.rng)
				f++
			}
		}
	}
	mt.x.Shape = []int{frames, d.Shape[0], d.Shape[1], d.Shape[2]}
	mt.x.Data = mt.xbuf[:frames*n]

	mt.net.ZeroGrad()
	r := mt.net.Forward(&mt.x)
	P := len(batch)
	f = 0
	for k, i := range batch {
		p := &d.Train[i]
		mt.ra[k], f = sumRange(r.Data, f, len(p.A))
		mt.rb[k], f = sumRange(r.Data, f, len(p.B))
		mt.tgt[k] = p.Target
	}
	loss := bt.Loss(mt.ra[:P], mt.rb[:P], mt.tgt[:P], mt.dra[:P], mt.drb[:P])
	mt.dr.Shape = []int{frames, 1}
	mt.dr.Data = mt.dr.Data[:cap(mt.dr.Data)][:frames]
	f = 0
	for k, i := range batch {
		p := &d.Train[i]
		for range p.A {
			mt.dr.Data[f] = mt.dra[k]
			f++
		}
		for range p.B {
			mt.dr.Data[f] = mt.drb[k]
			f++
		}
	}
	mt.net.Backward(&mt.dr, false)
	mt.opt.Step()
	mt.st.Steps++
	return loss
}

func sumRange(r []float32, from, n int) (float32, int) {
	var s float32
	for _, v := range r[from : from+n] {
		s += v
	}
	return s, from + n
}

func (mt *memberTrainer) grow(frames, pairs int) {
	n := mt.d.FrameLen()
	if cap(mt.xbuf) < frames*n {
		mt.xbuf = make([]float32, frames*n)
	}
	if cap(mt.dr.Data) < frames {
		mt.dr.Data = make([]float32, frames)
	}
	if len(mt.ra) < pairs {
		mt.ra, mt.rb = make([]float32, pairs), make([]float32, pairs)
		mt.dra, mt.drb = make([]float32, pairs), make([]float32, pairs)
		mt.tgt = make([]float32, pairs)
	}
}

// shift copies the C×H×W frame src into dst moved by a random offset of up to s pixels
// in each direction, replicating the edge (a crop of the edge-padded frame); s < 1
// copies it unchanged.
func shift(dst, src []float32, shape [3]int, s int, rng *rand.Rand) {
	if s < 1 {
		copy(dst, src)
		return
	}
	shiftBy(dst, src, shape, rng.IntN(2*s+1)-s, rng.IntN(2*s+1)-s)
}

// shiftBy writes src moved by (−dy, −dx): dst(y, x) = src(y+dy, x+dx), clamped to the
// frame.
func shiftBy(dst, src []float32, shape [3]int, dy, dx int) {
	c, h, w := shape[0], shape[1], shape[2]
	for ch := range c {
		plane, out := src[ch*h*w:(ch+1)*h*w], dst[ch*h*w:(ch+1)*h*w]
		for y := range h {
			sy := min(max(y+dy, 0), h-1)
			row, orow := plane[sy*w:(sy+1)*w], out[y*w:(y+1)*w]
			for x := range w {
				orow[x] = row[min(max(x+dx, 0), w-1)]
			}
		}
	}
}

// validate scores the validation labels without augmentation: mean Bradley-Terry loss
// (no smoothing) and the share of decisive labels the member agrees with.
func (mt *memberTrainer) validate() (loss, acc float64) {
	d := mt.d
	if len(mt.valR) < len(d.Frames) {
		mt.valR = make([]float32, len(d.Frames))
	}
	Score(mt.net, d, mt.valIdx, mt.valR)
	return pairLoss(d.Val, func(f int32) float32 { return mt.valR[f] })
}

// pairLoss is the mean Bradley-Terry loss over pairs, and the share of decisive pairs
// whose preferred side gets the higher summed reward.
func pairLoss(pairs []Pair, r func(int32) float32) (loss, acc float64) {
	var right, decisive int
	for _, p := range pairs {
		a, b := sideReward(p.A, r), sideReward(p.B, r)
		d := a - b
		y := float64(p.Target)
		loss += math.Max(d, 0) - y*d + math.Log1p(math.Exp(-math.Abs(d)))
		if p.Decisive() {
			decisive++
			if (d > 0) == (p.Target == 1) && d != 0 {
				right++
			}
		}
	}
	loss /= float64(len(pairs))
	if decisive > 0 {
		acc = float64(right) / float64(decisive)
	}
	return loss, acc
}

func sideReward(frames []int32, r func(int32) float32) float64 {
	var s float64
	for _, f := range frames {
		s += float64(r(f))
	}
	return s
}

// scoreBatch is how many frames Score runs through the network at once.
const scoreBatch = 128

// Score writes net's raw reward for each listed frame of d into out[frame].
func Score(net *nn.Sequential, d *Dataset, frames []int32, out []float32) {
	n := d.FrameLen()
	buf := make([]float32, min(len(frames), scoreBatch)*n)
	var x nn.Tensor
	for lo := 0; lo < len(frames); lo += scoreBatch {
		chunk := frames[lo:min(lo+scoreBatch, len(frames))]
		for k, f := range chunk {
			copy(buf[k*n:(k+1)*n], d.Frame(f))
		}
		x.Shape = []int{len(chunk), d.Shape[0], d.Shape[1], d.Shape[2]}
		x.Data = buf[:len(chunk)*n]
		r := net.Forward(&x)
		for k, f := range chunk {
			out[f] = r.Data[k]
		}
	}
}
