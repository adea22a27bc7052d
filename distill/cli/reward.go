package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"robodistill/control/nn/torchref"
	"robodistill/control/onnxio"
	"robodistill/distill/policy"
	"robodistill/distill/reward"
	"robodistill/vision"
)

func (a *app) rewardCmd() *cobra.Command {
	c := &cobra.Command{Use: "reward", Short: "Distil preference labels into a reward model"}
	c.AddCommand(a.rewardTrainCmd(), a.rewardProbeCmd())
	return c
}

func (a *app) rewardProbeCmd() *cobra.Command {
	var (
		path string
		cfg  policy.ProbeConfig
		rate int
	)
	cfg.Camera, cfg.FrameSize = "corner", 64
	c := &cobra.Command{
		Use:   "probe",
		Short: "Where a reach reward peaks around the goal: what a perfect optimiser of it would do",
		Long: `For --goals reach episodes (seeds --seed, --seed+1, …) drives the hand with a proportional
controller to every point of a 7×7×7 grid around the goal (0, ±3, ±6 and ±12 cm on each axis),
renders --camera at --frame-size there and scores the frame with the reward ensemble, through
vision/ and the model runtime as 'policy train' does. It reports:

  - the reward's best point: how far from the goal (mean), and the share of goals where it lies
    within reach's 5 cm success radius;
  - the rank correlation of the reward with closeness to the goal;
  - the share of near-goal pairs (within 10 cm, 2 cm apart, not both within 5 cm) it orders
    correctly;
  - the peak region, the reward's best points, as many as the grid has within 5 cm (19): the
    share of them within 5 cm, their mean offset from the goal, and that offset's component
    along the camera's line of sight (positive: beyond the goal as the camera sees it).

Reach's own reward is flat within 5 cm, so its single best point can be anywhere in the ball; a
learned reward's region says where a policy that maximises it will stop. A reward whose region
misses the goal will not teach a policy reach, however well it ranks frames overall.
--reward groundtruth probes the simulator's own reward, for reference.`,
		Example: `  robodistill reward probe --reward out/reach/reward.onnx --frame-size 128 --json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return fmt.Errorf("--reward is required")
			}
			if cfg.Goals < 1 {
				return fmt.Errorf("--goals: must be at least 1, got %d", cfg.Goals)
			}
			var r policy.Reward = policy.GroundTruth{}
			if path != "groundtruth" {
				d, err := policy.NewDistilled(path, 1)
				if err != nil {
					return err
				}
				defer d.Close()
				r = d
			}
			cfg.Env = a.envOptions(rate)
			res, err := policy.ProbeReach(cmd.Context(), r, path, cfg)
			if err != nil {
				return err
			}
			a.human("%s on reach, %d goals × %d points: best point %.1f cm from the goal on average, within 5 cm for %.0f%% of goals; Spearman with closeness %.3f; near-goal pairs ordered %.3f\n",
				path, len(res.PerGoal), res.Points, 100*res.ArgmaxDist, 100*res.ArgmaxSuccess, res.Spearman, res.NearPairAcc)
			o := res.PeakOffset
			a.human("peak region: %.0f%% within 5 cm; offset from the goal %.1f cm on average, mean (%+.1f, %+.1f, %+.1f) cm, %+.1f cm along the camera's line of sight\n",
				100*res.PeakPrecision, 100*res.PeakDist, 100*o[0], 100*o[1], 100*o[2], 100*res.PeakSight)
			return a.summary(res)
		},
	}
	f := c.Flags()
	f.StringVar(&path, "reward", "", "reward model (member 0 of the ensemble), or groundtruth")
	f.IntVar(&cfg.Goals, "goals", 12, "reach episodes (goals) to probe")
	f.Uint64Var(&cfg.Seed, "seed", 1000, "seed of the first goal's episode")
	f.StringVar(&cfg.Camera, "camera", cfg.Camera, "camera rendered for the reward model")
	f.IntVar(&cfg.FrameSize, "frame-size", cfg.FrameSize, "rendered frame size in pixels (the size the reward's frames were recorded at)")
	f.IntVar(&rate, "rate", 50, "control rate in Hz (80 or 50)")
	return c
}

// RewardSummary is the one-line JSON summary of 'reward train'.
type RewardSummary struct {
	Models  []string `json:"models"`
	Report  string   `json:"report"`
	Task    string   `json:"task"`
	Labeler string   `json:"labeler"`
	Labels  int      `json:"labels"`
	Pairs   any      `json:"pairs"`
	reward.Metrics
	Members []rewardMember `json:"members"`
	FLOPs   int64          `json:"flops_per_inference"`
	Params  int            `json:"params"`
	Seconds float64        `json:"seconds"`
}

type rewardMember struct {
	Member    int     `json:"member"`
	Epochs    int     `json:"epochs"`
	BestEpoch int     `json:"best_epoch"`
	ValAcc    float64 `json:"val_acc"`
}

func (a *app) rewardTrainCmd() *cobra.Command {
	var (
		o          reward.Options
		visionJSON string
		countBeta  float64
		countCell  float64
		lr         float64
		wd         float64
	)
	c := &cobra.Command{
		Use:   "train",
		Short: "Train a Bradley-Terry reward ensemble on labelled frame pairs and export it to ONNX",
		Long: `Reads a label file and the recorded-episode collection its pairs come from, runs every
frame through vision/ (the preprocessing the daemon uses), holds out a share of the episodes for
validation, and trains an ensemble of small CNNs with the Bradley-Terry loss (ties as 0.5 targets,
optional label smoothing, random-shift augmentation, early stopping on the validation loss).

Member 0 is written to --out and member m to --out with ".m" before the extension, each with its
manifest embedded and in a sidecar (.onnx.json) naming the file's sha256. The report folder gets
report.json, rewards.csv (reward along the held-out episodes next to the simulator's),
history.csv and milestones.png.

An interrupted run keeps each member's last finished epoch in --out + ".train" and continues from
there when run again with the same arguments.`,
		Example: `  robodistill reward train --labels out/reach/labels.jsonl --episodes out/reach --out out/reach/reward.onnx --json
  robodistill reward train --labels labels.jsonl --episodes out/drawer --out reward.onnx --ensemble 5 --smoothing 0.05 --floor-quantile 0.5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Labels == "" || o.Episodes == "" || o.Out == "" {
				return fmt.Errorf("--labels, --episodes and --out are required")
			}
			for name, v := range map[string]int{"ensemble": o.Train.Ensemble, "epochs": o.Train.Epochs,
				"patience": o.Train.Patience, "batch": o.Train.Batch, "hidden": o.Train.Hidden} {
				if v < 1 {
					return fmt.Errorf("--%s: must be at least 1, got %d", name, v)
				}
			}
			if visionJSON != "" {
				cfg, err := vision.ParseConfig([]byte(visionJSON))
				if err != nil {
					return fmt.Errorf("--vision: %w", err)
				}
				o.Data.Vision = cfg
			}
			if countBeta != 0 {
				o.Count = &onnxio.CountTerm{Beta: countBeta, Cell: countCell}
			}
			if lr != 0 || wd != 0 {
				o.Train.Adam = reward.DefaultConfig().Adam
				if lr != 0 {
					o.Train.Adam.LR = lr
				}
				o.Train.Adam.WeightDecay = wd
			}
			o.Data.Seed = o.Train.Seed
			o.Data.Workers = runtime.GOMAXPROCS(0)
			if o.Train.Workers == 0 {
				o.Train.Workers = runtime.GOMAXPROCS(0)
			}
			o.Log = a.log
			o.CodeVersion = codeVersion()
			var mu sync.Mutex
			o.Progress = func(m int, st reward.EpochStats) {
				mu.Lock()
				defer mu.Unlock()
				a.log.Info("epoch", zap.Int("member", m), zap.Int("epoch", st.Epoch), zap.Float64("train_loss", st.TrainLoss),
					zap.Float64("val_loss", st.ValLoss), zap.Float64("val_acc", st.ValAcc), zap.Float64("seconds", st.Seconds))
			}
			s, err := reward.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			a.human("reward ensemble of %d on %s (%s): %d train / %d validation pairs from %d / %d episodes\n",
				len(s.Members), s.Task, s.Labeler, s.Pairs.Train, s.Pairs.Val, s.Episodes.Train, s.Episodes.Val)
			a.human("  validation preference accuracy %.3f   agreement with ground truth %s (labels: %s)   ensemble disagreement %.3f\n",
				s.ValAccuracy, fmtPtr(s.GTAgreement), fmtPtr(s.LabelGTAgreement), s.Disagreement)
			a.human("  reward vs simulator over %d held-out frames: Pearson %s, Spearman %s (per-episode medians %s, %s)\n",
				s.HeldOutFrames, fmtPtr(s.Pearson), fmtPtr(s.Spearman), fmtPtr(s.PearsonEpisodeMedian), fmtPtr(s.SpearmanEpisodeMedian))
			a.human("  %d parameters, %.2f MFLOPs per frame; %.0f s\n", s.Params, float64(s.FLOPs)/1e6, s.Seconds)
			for _, p := range s.Models {
				a.human("  wrote %s\n", p)
			}
			a.human("  report in %s\n", s.Report)
			sum := RewardSummary{Models: s.Models, Report: s.Report, Task: s.Task, Labeler: s.Labeler, Labels: s.Labels,
				Pairs: s.Pairs, Metrics: s.Metrics, FLOPs: s.FLOPs, Params: s.Params, Seconds: s.Seconds}
			for _, m := range s.Members {
				sum.Members = append(sum.Members, rewardMember{m.Member, m.Epochs, m.BestEpoch, m.ValAcc})
			}
			return a.summary(sum)
		},
	}
	d := reward.DefaultConfig()
	f := c.Flags()
	f.StringVar(&o.Labels, "labels", "", "label file (robodistill label --out)")
	f.StringVar(&o.Episodes, "episodes", "", "recorded-episode collection the labels come from")
	f.StringVar(&o.Out, "out", "", "model file for member 0 (.onnx)")
	f.StringVar(&o.Report, "report", "", "report folder (default: --out without .onnx, plus -report)")
	f.StringVar(&o.Labeler, "labeler", "", "use only this labeller's labels (required when the file holds several)")
	f.IntVar(&o.Train.Ensemble, "ensemble", d.Ensemble, "ensemble members")
	f.Uint64Var(&o.Train.Seed, "seed", 0, "seed of the validation split, weights, batch order and augmentation")
	f.IntVar(&o.Train.Epochs, "epochs", d.Epochs, "most epochs per member")
	f.IntVar(&o.Train.Patience, "patience", d.Patience, "stop after this many epochs without a better validation loss")
	f.IntVar(&o.Train.Batch, "batch", d.Batch, "pairs per step")
	f.IntVar(&o.Train.Hidden, "hidden", d.Hidden, "hidden layer width")
	f.StringVar(&o.Train.Arch, "arch", d.Arch, "network: cnn2 (two convolutions), cnn3 (three) or spatial (two convolutions and a spatial soft-argmax: keypoints)")
	f.Float64Var(&lr, "lr", 0, fmt.Sprintf("Adam learning rate (default %g)", d.Adam.LR))
	f.Float64Var(&wd, "weight-decay", 0, "Adam L2 weight decay")
	f.Float64Var(&o.Train.Smoothing, "smoothing", 0, "label smoothing ε: targets y become y(1−ε)+ε/2")
	f.IntVar(&o.Train.Shift, "shift", d.Shift, "random-shift augmentation in pixels (-1: off)")
	f.Float64Var(&o.Data.ValFraction, "val-fraction", 0.2, "share of each task's episodes held out")
	f.BoolVar(&o.Data.Standardize, "standardize", true, "set the preprocessing's mean and std per channel from the training frames (false: keep --vision's)")
	f.Float64Var(&o.FloorQuantile, "floor-quantile", 0, "Motif threshold: published rewards below this quantile of the training frames' become 0 (0: off)")
	f.Float64Var(&countBeta, "count-beta", 0, "count-based term r / N(o)^β for the policy trainer (0: off)")
	f.Float64Var(&countCell, "count-cell", 0.02, "count-based term: cell size of the observation grid")
	f.StringVar(&visionJSON, "vision", "", `preprocessing as vision.Config JSON, e.g. '{"width":96,"height":96}' (default 64×64 RGB in [0, 1])`)
	return c
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", *p)
}

// codeVersion is the VCS revision the binary was built from ("dev" outside a checkout).
func codeVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

func (a *app) benchRewardCmd() *cobra.Command {
	var cfg torchref.BenchConfig
	c := &cobra.Command{
		Use:   "reward",
		Short: "One Bradley-Terry training step of the reward CNN in Go next to PyTorch's, same shapes, one thread",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := torchref.Bench(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			a.human("%s", res.String())
			return a.summary(res)
		},
	}
	f := c.Flags()
	f.IntVar(&cfg.Pairs, "pairs", 64, "pairs per step")
	f.IntVar(&cfg.Hidden, "hidden", 64, "hidden layer width")
	f.IntVar(&cfg.Steps, "steps", 10, "timed steps per implementation")
	return c
}
