package reward

import (
	"math"
	"slices"
	"sort"

	"robodistill/control/nn"
	"robodistill/control/onnxio"
)

// Scores are an ensemble's rewards for every frame of a Dataset.
type Scores struct {
	// Raw[m][f] is member m's network output for frame f.
	Raw [][]float32
	// Mean and Std are over members of the published (normalised) rewards.
	Mean, Std []float64
}

// ScoreAll runs every member on every frame and publishes the rewards with norms.
func ScoreAll(nets []*nn.Sequential, norms []onnxio.RewardNorm, d *Dataset) *Scores {
	all := make([]int32, len(d.Frames))
	for i := range all {
		all[i] = int32(i)
	}
	s := &Scores{Raw: make([][]float32, len(nets)), Mean: make([]float64, len(all)), Std: make([]float64, len(all))}
	for m, net := range nets {
		s.Raw[m] = make([]float32, len(all))
		Score(net, d, all, s.Raw[m])
	}
	pub := make([]float64, len(nets))
	for f := range all {
		for m := range nets {
			pub[m] = norms[m].Publish(s.Raw[m][f])
		}
		s.Mean[f], s.Std[f] = meanStd(pub)
	}
	return s
}

func meanStd(xs []float64) (mean, std float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs)))
}

// Metrics are the reward model's figures on the held-out episodes.
type Metrics struct {
	// ValAccuracy is the share of decisive validation labels whose preferred side gets
	// the higher ensemble reward (ties in the labels are left out).
	ValAccuracy float64 `json:"val_accuracy"`
	ValDecisive int     `json:"val_decisive_labels"`
	// GTAgreement is the share of validation pairs with a ground-truth difference whose
	// truly better side gets the higher ensemble reward; LabelGTAgreement is the same for
	// the labels themselves: the ceiling the labels set.
	GTAgreement      *float64 `json:"gt_agreement,omitempty"`
	LabelGTAgreement *float64 `json:"label_gt_agreement,omitempty"`
	GTPairs          int      `json:"gt_pairs"`
	// Disagreement is the ensemble's mean standard deviation of P(A ≻ B) over the
	// validation pairs (0 with one member).
	Disagreement float64 `json:"disagreement"`
	// RewardStd is the mean standard deviation over members of the published reward,
	// over the held-out frames.
	RewardStd float64 `json:"reward_std"`
	// Pearson and Spearman correlate the ensemble reward with the simulator's reward over
	// every frame of the held-out episodes; the Episode medians are over each episode's
	// own correlation.
	Pearson               *float64 `json:"pearson,omitempty"`
	Spearman              *float64 `json:"spearman,omitempty"`
	PearsonEpisodeMedian  *float64 `json:"pearson_episode_median,omitempty"`
	SpearmanEpisodeMedian *float64 `json:"spearman_episode_median,omitempty"`
	HeldOutFrames         int      `json:"held_out_frames"`
}

// Evaluate computes the Metrics of scored frames.
func Evaluate(d *Dataset, s *Scores) Metrics {
	var m Metrics
	r := func(f int32) float32 { return float32(s.Mean[f]) }
	_, m.ValAccuracy = pairLoss(d.Val, r)
	var gtRight, labelRight, gt int
	var dis float64
	members := len(s.Raw)
	p := make([]float64, members)
	for _, pr := range d.Val {
		if pr.Decisive() {
			m.ValDecisive++
		}
		for k := range members {
			raw := func(f int32) float32 { return s.Raw[k][f] }
			p[k] = sigmoid(sideReward(pr.A, raw) - sideReward(pr.B, raw))
		}
		_, sd := meanStd(p)
		dis += sd
		if pr.Truth == nil || pr.Truth.A == pr.Truth.B || math.IsNaN(pr.Truth.Gap()) {
			continue
		}
		gt++
		better := pr.Truth.A > pr.Truth.B
		if d := sideReward(pr.A, r) - sideReward(pr.B, r); d != 0 && (d > 0) == better {
			gtRight++
		}
		if pr.Decisive() && (pr.Target == 1) == better {
			labelRight++
		}
	}
	m.Disagreement = dis / float64(len(d.Val))
	m.GTPairs = gt
	if gt > 0 {
		m.GTAgreement = ptr(float64(gtRight) / float64(gt))
		m.LabelGTAgreement = ptr(float64(labelRight) / float64(gt))
	}

	var xs, ys []float64
	var pe, se []float64
	var stdSum float64
	for _, traj := range d.HeldOut {
		var ex, ey []float64
		for _, f := range traj {
			stdSum += s.Std[f]
			m.HeldOutFrames++
			if !d.Frames[f].HasTruth() {
				continue
			}
			ex = append(ex, s.Mean[f])
			ey = append(ey, d.Frames[f].Reward)
		}
		xs, ys = append(xs, ex...), append(ys, ey...)
		if c := Pearson(ex, ey); !math.IsNaN(c) {
			pe = append(pe, c)
		}
		if c := Spearman(ex, ey); !math.IsNaN(c) {
			se = append(se, c)
		}
	}
	if m.HeldOutFrames > 0 {
		m.RewardStd = stdSum / float64(m.HeldOutFrames)
	}
	m.Pearson, m.Spearman = finitePtr(Pearson(xs, ys)), finitePtr(Spearman(xs, ys))
	if len(pe) > 0 {
		m.PearsonEpisodeMedian = ptr(median(pe))
	}
	if len(se) > 0 {
		m.SpearmanEpisodeMedian = ptr(median(se))
	}
	return m
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

func ptr(x float64) *float64 { return &x }

func finitePtr(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

func median(xs []float64) float64 { return Quantile(xs, 0.5) }

// Pearson is the linear correlation of xs and ys; NaN when either is constant or they
// have fewer than two values.
func Pearson(xs, ys []float64) float64 {
	n := len(xs)
	if n < 2 || len(ys) != n {
		return math.NaN()
	}
	mx, _ := meanStd(xs)
	my, _ := meanStd(ys)
	var sxy, sxx, syy float64
	for i := range xs {
		dx, dy := xs[i]-mx, ys[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return math.NaN()
	}
	return sxy / math.Sqrt(sxx*syy)
}

// Spearman is the rank correlation of xs and ys (Pearson on ranks, ties given their
// mean rank).
func Spearman(xs, ys []float64) float64 {
	if len(xs) != len(ys) {
		return math.NaN()
	}
	return Pearson(ranks(xs), ranks(ys))
}

func ranks(xs []float64) []float64 {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return xs[idx[a]] < xs[idx[b]] })
	r := make([]float64, len(xs))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && xs[idx[j+1]] == xs[idx[i]] {
			j++
		}
		avg := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			r[idx[k]] = avg
		}
		i = j + 1
	}
	return r
}

// trainFrames lists the distinct frames the training labels name, in first-use order.
func trainFrames(d *Dataset) []int32 {
	seen := make([]bool, len(d.Frames))
	var out []int32
	for _, p := range d.Train {
		for _, side := range [2][]int32{p.A, p.B} {
			for _, f := range side {
				if !seen[f] {
					seen[f] = true
					out = append(out, f)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}
