package cli

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"robodistill/control/onnxio"
	rt "robodistill/control/runtime"
	"robodistill/distill/label"
	"robodistill/distill/policy"
	"robodistill/distill/reward"
	"robodistill/sim/metaworld"
)

func (a *app) policyCmd() *cobra.Command {
	c := &cobra.Command{Use: "policy", Short: "Learn a robot policy in simulation from a reward"}
	c.AddCommand(a.policyTrainCmd(), a.policyCurvesCmd(), a.policyCreditCmd())
	return c
}

// PolicySummary is the one-line JSON summary of 'policy train'.
type PolicySummary struct {
	Task        string  `json:"task"`
	Reward      string  `json:"reward"`
	Labeler     string  `json:"labeler"`
	Rate        int     `json:"rate"`
	Seed        uint64  `json:"seed"`
	Envs        int     `json:"envs"`
	Steps       int     `json:"steps"`
	Updates     int     `json:"updates"`
	Episodes    int     `json:"episodes"`
	ResumedFrom int     `json:"resumed_from"`
	SuccessRate float64 `json:"success_rate"` // final evaluation
	MeanReturn  float64 `json:"mean_return"`  // final evaluation, simulator reward
	UsedReturn  float64 `json:"used_return"`  // final evaluation, the reward trained on
	EvalEpisode int     `json:"eval_episodes"`
	// Speed of this process: environment steps per second of stepping alone (with
	// action selection), and milliseconds per SAC update.
	EnvStepsPerSecond float64            `json:"env_steps_per_second"`
	UpdateMillis      float64            `json:"update_ms"`
	Seconds           float64            `json:"seconds"`
	Out               string             `json:"out"`
	Curve             []policy.EvalPoint `json:"curve"`
	// The online reward: its refreshes and where the refined ensemble was written.
	RewardSeconds float64               `json:"reward_seconds,omitempty"`
	Online        []policy.RefreshStats `json:"online,omitempty"`
	RewardOut     string                `json:"reward_out,omitempty"`
	// Demos describes the demonstrations that prefilled the replay buffer (--demos).
	Demos *policy.DemoStats `json:"demos,omitempty"`
	// SAC is the run's hyperparameters (network width, batch, learning rates, the averaged
	// actor, the critics' LayerNorm), so that a summary says how its curve was made.
	SAC policy.SACConfig `json:"sac"`
}

func (a *app) policyTrainCmd() *cobra.Command {
	var (
		cfg        = policy.DefaultConfig()
		rewardSpec string
		out        string
		keep       bool
		oc         policy.OnlineConfig
		olf        labelFlags

		anchorLabels, anchorEpisodes, anchorLabeler string
	)
	c := &cobra.Command{
		Use:   "train",
		Short: "Train a SAC policy on a MetaWorld task and export its deterministic actor to ONNX",
		Long: `Runs Soft Actor-Critic on a MetaWorld task's 39-value state observation: --envs environments
stepped in lockstep (results depend on --seed and --envs, not on scheduling), uniformly random
actions for the first --learning-starts steps, then one update per step (--utd). Every --eval-every
steps the deterministic actor runs --eval-episodes episodes on fixed seeds disjoint from the
training seeds; the learning curve is logged and in the summary.

The reward is the simulator's (--reward groundtruth) or a distilled reward model (--reward
reward.onnx, member 0 of its ensemble), run through the model runtime on the --camera frame
rendered after every step at --frame-size, prepared by vision/ as on the robot.

Online mode (--online-every K, with a reward model): every K steps --online-pairs pairs of frames
from the replay buffer (uniform, or the most disputed by the ensemble) are labelled by
--online-labeler (a scripted teacher on the simulator's reward, or vlm), the ensemble is retrained
on every label so far from its current weights, and the buffer's rewards are recomputed. The
refined ensemble is written beside the policy (--out with .reward.onnx) for the daemon.

The state goes to --out + ".train" every --checkpoint-every steps and when interrupted; running the
same command again continues from there (bit for bit as an uninterrupted run). The folder is
removed once the policy is written, unless --keep-checkpoint.`,
		Example: `  robodistill policy train --task reach --reward groundtruth --steps 30000 --seed 0 --out out/reach/policy.onnx
  robodistill policy train --task drawer-open --steps 200000 --envs 2 --rate 50 --out policy.onnx --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Task == "" || out == "" {
				return fmt.Errorf("--task and --out are required")
			}
			var (
				distilled interface{ Err() error }
				online    *policy.Online
			)
			switch {
			case rewardSpec == "groundtruth" || rewardSpec == "ground-truth":
				if oc.Every > 0 {
					return fmt.Errorf("--online-every: the online mode needs a reward model (--reward reward.onnx)")
				}
				cfg.Reward = policy.GroundTruth{}
			case oc.Every > 0:
				if cfg.Envs < 1 {
					return fmt.Errorf("--envs: must be at least 1, got %d", cfg.Envs)
				}
				oc.Log = a.log
				if oc.Goal == "" {
					task, err := metaworld.Lookup(cfg.Task)
					if err != nil {
						return fmt.Errorf("--task: %w", err)
					}
					oc.Goal = task.Goal
				}
				oc.NewLabeler = func(src label.Source) (label.Labeler, error) {
					l, _, err := a.labeler(&olf, src)
					return l, err
				}
				if cfg.Buffer == 0 {
					n, err := policy.DefaultBuffer(cfg)
					if err != nil {
						return fmt.Errorf("--demos: %w", err)
					}
					cfg.Buffer = n
				}
				buffer := cfg.Buffer
				if (anchorLabels == "") != (anchorEpisodes == "") {
					return fmt.Errorf("--online-anchor-labels and --online-anchor-episodes go together")
				}
				if anchorLabels != "" {
					v, err := onnxio.Verify(rewardSpec)
					if err != nil {
						return fmt.Errorf("--reward: %w", err)
					}
					if v.Manifest.Input.Vision == nil {
						return fmt.Errorf("--reward: %s takes no image (no vision configuration)", rewardSpec)
					}
					d, err := reward.LoadLabels(cmd.Context(), anchorLabels, anchorEpisodes, anchorLabeler, *v.Manifest.Input.Vision, runtime.GOMAXPROCS(0), a.log)
					if err != nil {
						return fmt.Errorf("--online-anchor-labels: %w", err)
					}
					oc.Anchor = d
					a.log.Info("online reward: anchor labels loaded", zap.String("labels", anchorLabels), zap.Int("train_pairs", len(d.Train)), zap.Int("frames", len(d.Frames)))
				}
				o, err := policy.NewOnline(rewardSpec, cfg.Envs, buffer, oc)
				if err != nil {
					return fmt.Errorf("--reward: %w", err)
				}
				defer o.Close()
				cfg.Reward, distilled, online = o, o, o
			default:
				if cfg.Envs < 1 {
					return fmt.Errorf("--envs: must be at least 1, got %d", cfg.Envs)
				}
				d, err := policy.NewDistilled(rewardSpec, cfg.Envs)
				if err != nil {
					return fmt.Errorf("--reward: %w", err)
				}
				defer d.Close()
				cfg.Reward, distilled = d, d
			}
			cfg.Assets = a.assets
			if cfg.Checkpoint == "" {
				cfg.Checkpoint = out + ".train"
			}
			log := a.log.With(zap.String("task", cfg.Task), zap.String("reward", cfg.Reward.Name()))
			cfg.Log = log
			cfg.Progress = func(p policy.Progress) {
				fields := []zap.Field{zap.Int("step", p.Step), zap.Int("of", p.Steps), zap.Int("episodes", p.Episodes),
					zap.Int("updates", p.Updates), zap.Float64("steps_per_s", math.Round(p.StepsPerSecond))}
				if !math.IsNaN(p.TrainReturn) {
					fields = append(fields, zap.Float64("train_return", p.TrainReturn))
				}
				if p.Updates > 0 {
					fields = append(fields, zap.Float64("critic_loss", p.CriticLoss), zap.Float64("actor_loss", p.ActorLoss),
						zap.Float64("alpha", p.Alpha), zap.Float64("entropy", p.Entropy), zap.Float64("q", p.Q))
				}
				if e := p.Eval; e != nil {
					log.Info("evaluation", zap.Int("step", e.Step), zap.Float64("success_rate", e.SuccessRate),
						zap.Float64("return", e.Return), zap.Float64("used_return", e.UsedReturn),
						zap.Int("train_episodes", e.TrainEpisodes), zap.Float64("train_success_rate", e.TrainSuccessRate))
					return
				}
				log.Info("progress", fields...)
			}
			res, err := policy.Train(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if distilled != nil {
				if err := distilled.Err(); err != nil {
					return err
				}
			}
			var rewardOut string
			if online != nil {
				rewardOut = strings.TrimSuffix(out, ".onnx") + ".reward.onnx"
				if err := online.Save(rewardOut); err != nil {
					return err
				}
				m, err := rt.LoadEnsemble(rewardOut, rt.Options{})
				if err != nil {
					return fmt.Errorf("the refined reward model does not load: %w", err)
				}
				res.Labeler = m.Member(0).SHA256()
			}
			if _, err := res.Export(out, codeVersion()); err != nil {
				return err
			}
			if !keep {
				if err := os.RemoveAll(cfg.Checkpoint); err != nil {
					return fmt.Errorf("removing the checkpoint: %w", err)
				}
			}
			fin := res.Final()
			sum := PolicySummary{Task: res.Spec.Task, Reward: res.Reward, Labeler: res.Labeler, Rate: res.Spec.Rate, Seed: cfg.Seed,
				Envs: cfg.Envs, Steps: res.Steps, Updates: res.Updates, Episodes: res.Episodes, ResumedFrom: res.ResumedFrom,
				SuccessRate: fin.SuccessRate, MeanReturn: fin.Return, UsedReturn: fin.UsedReturn, EvalEpisode: fin.Episodes,
				Seconds: res.Seconds, Out: out, Curve: res.Curve, RewardSeconds: res.RewardSeconds, RewardOut: rewardOut,
				Demos: res.Demos, SAC: cfg.SAC}
			if online != nil {
				sum.Online = online.Stats()
			}
			if res.EnvSeconds > 0 {
				sum.EnvStepsPerSecond = float64(res.EnvStepsThisRun) / res.EnvSeconds
			}
			if res.UpdatesThisRun > 0 {
				sum.UpdateMillis = 1000 * res.UpdateSeconds / float64(res.UpdatesThisRun)
			}
			a.human("SAC on %s (%s reward, %d Hz, %d envs, seed %d): %d steps, %d updates, %d training episodes\n",
				sum.Task, sum.Reward, sum.Rate, sum.Envs, sum.Seed, sum.Steps, sum.Updates, sum.Episodes)
			a.human("  %8s %8s %9s %9s\n", "step", "success", "return", "train")
			for _, p := range res.Curve {
				a.human("  %8d %8.2f %9.1f %9.1f\n", p.Step, p.SuccessRate, p.Return, p.TrainReturn)
			}
			a.human("  %.0f s (stepping %.0f s at %.0f steps/s, updates %.0f s at %.1f ms each, evaluation %.0f s)\n",
				res.Seconds, res.EnvSeconds, sum.EnvStepsPerSecond, res.UpdateSeconds, sum.UpdateMillis, res.EvalSeconds)
			a.human("  wrote %s\n", out)
			return a.summary(sum)
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.Task, "task", "", "MetaWorld task (robodistill sim tasks lists them)")
	f.StringVar(&rewardSpec, "reward", "groundtruth", "reward: groundtruth (the simulator's) or a reward model (member 0 of an ensemble, reward.onnx)")
	f.StringVar(&cfg.Camera, "camera", cfg.Camera, "camera rendered for a reward model")
	f.IntVar(&cfg.FrameSize, "frame-size", cfg.FrameSize, "rendered frame size in pixels for a reward model (the size its frames were recorded at)")
	f.IntVar(&cfg.Steps, "steps", 100000, "environment steps in all")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed of the weights, exploration, batches and training episodes")
	f.StringVar(&out, "out", "", "policy file (.onnx; the manifest goes beside it)")
	f.IntVar(&cfg.Rate, "rate", cfg.Rate, "control rate in Hz: 50 (the daemon's) or 80 (MetaWorld's)")
	f.IntVar(&cfg.Envs, "envs", runtime.GOMAXPROCS(0), "environments stepped in parallel")
	f.IntVar(&cfg.LearningStarts, "learning-starts", cfg.LearningStarts, "random steps before learning")
	f.Float64Var(&cfg.UpdatesPerStep, "utd", cfg.UpdatesPerStep, "SAC updates per environment step")
	f.IntVar(&cfg.Buffer, "buffer", 0, "replay capacity (default min(steps, 1e6), plus the --demos transitions)")
	f.StringVar(&cfg.Demos, "demos", "", "collection folder (robodistill collect, this task and --rate) whose episodes prefill the replay buffer, scored by the run's reward, and stay there")
	f.Float64Var(&cfg.DemoRatio, "demo-ratio", 0.5, "with --demos: share of every batch drawn from the demonstrations (0: uniform over the whole buffer)")
	f.IntVar(&cfg.DemoEpisodes, "demo-episodes", 0, "with --demos: read at most this many episodes (0: all)")
	f.IntVar(&cfg.SAC.Batch, "batch", cfg.SAC.Batch, "transitions per update")
	f.IntVar(&cfg.SAC.Hidden, "hidden", cfg.SAC.Hidden, "hidden layer width of actor and critics")
	f.Float64Var(&cfg.SAC.ActorAverage, "actor-average", 0, "evaluate and export a Polyak average of the actor's weights, this factor per update (0: the actor itself)")
	f.BoolVar(&cfg.SAC.CriticNorm, "critic-norm", false, "LayerNorm after each hidden layer of the critics (RLPD's; steadies Q when demonstrations fill half of every batch)")
	f.IntVar(&cfg.EvalEvery, "eval-every", cfg.EvalEvery, "steps between evaluations")
	f.IntVar(&cfg.EvalEpisodes, "eval-episodes", cfg.EvalEpisodes, "episodes per evaluation (0: none)")
	f.IntVar(&cfg.CheckpointEvery, "checkpoint-every", cfg.CheckpointEvery, "steps between checkpoints")
	f.StringVar(&cfg.Checkpoint, "checkpoint", "", `checkpoint folder (default --out + ".train")`)
	f.BoolVar(&keep, "keep-checkpoint", false, "keep the checkpoint folder after writing the policy")
	f.IntVar(&cfg.LogEvery, "log-every", cfg.LogEvery, "steps between progress lines")
	f.BoolVar(&cfg.NoCount, "no-count", false, "leave out the reward model's count-based term (manifest reward.count: r / N(o)^β per episode)")
	f.IntVar(&oc.Every, "online-every", 0, "online reward: steps between refreshes (0: off)")
	f.IntVar(&oc.Pairs, "online-pairs", 500, "online reward: new labels per refresh")
	f.StringVar(&oc.Sampler, "online-sampler", "disagreement", "online reward: pair sampler, uniform or disagreement")
	f.IntVar(&oc.Candidates, "online-candidates", 10, "online reward: candidate pairs per chosen pair (disagreement)")
	f.IntVar(&oc.Train.Epochs, "online-epochs", 10, "online reward: at most this many epochs per refresh")
	f.IntVar(&oc.Train.Patience, "online-patience", 3, "online reward: early-stopping patience per refresh")
	f.StringVar(&oc.Goal, "online-goal", "", "online reward: goal text a VLM is given (default: the task's)")
	f.StringVar(&anchorLabels, "online-anchor-labels", "", "online reward: the offline reward's label file; every refresh also trains on a fresh draw of its training pairs")
	f.StringVar(&anchorEpisodes, "online-anchor-episodes", "", "online reward: the collection those labels come from")
	f.StringVar(&anchorLabeler, "online-anchor-labeler", "", "online reward: use only this labeller's anchor labels (required when the file holds several)")
	f.IntVar(&oc.AnchorPairs, "online-anchor-pairs", 0, "online reward: anchor pairs per refresh (0: as many as the online training labels so far, at least 1000)")
	olf.addLabelerFlags(f, "online-")
	return c
}

func (a *app) policyCurvesCmd() *cobra.Command {
	var out, title string
	c := &cobra.Command{
		Use:   "curves SUMMARY.json...",
		Short: "Learning curves of several runs (policy train --json summaries) as one figure and one CSV",
		Long: `Reads the one-line JSON summaries 'policy train --json' printed (one file per run) and writes
curves.csv and curves.png into --out: evaluation success rate and simulator return against
environment steps, runs with the same reward in one colour, seeds told apart by dashes.`,
		Example: `  robodistill policy curves --out out/curves out/policy/reach-*.json`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var (
				runs  []policy.Run
				stems []string
			)
			for _, p := range args {
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				var s PolicySummary
				if err := json.Unmarshal(b, &s); err != nil {
					return fmt.Errorf("%s: not a policy train --json summary: %w", p, err)
				}
				if len(s.Curve) == 0 {
					return fmt.Errorf("%s: the run has no learning curve", p)
				}
				runs = append(runs, policy.Run{Name: fmt.Sprintf("%s seed %d", s.Reward, s.Seed), Group: s.Reward, Curve: s.Curve, Reward: s.Reward})
				stems = append(stems, strings.TrimSuffix(filepath.Base(p), filepath.Ext(p)))
				if title == "" {
					title = fmt.Sprintf("%s at %d Hz", s.Task, s.Rate)
				}
			}
			// Runs that would share a legend entry (the same reward kind and seed, e.g. two
			// distilled reward models) are told apart by their summary file's name, each in
			// its own colour.
			names := map[string]int{}
			for _, r := range runs {
				names[r.Name]++
			}
			for i := range runs {
				if names[runs[i].Name] > 1 {
					runs[i].Name += " (" + stems[i] + ")"
					runs[i].Group += " (" + stems[i] + ")"
				}
			}
			if err := policy.WriteCurves(out, title, runs); err != nil {
				return err
			}
			a.human("wrote %s and %s\n", filepath.Join(out, "curves.csv"), filepath.Join(out, "curves.png"))
			return a.summary(map[string]any{"runs": len(runs), "out": out})
		},
	}
	c.Flags().StringVar(&out, "out", "curves", "output folder")
	c.Flags().StringVar(&title, "title", "", "figure title (default: task and rate of the first run)")
	return c
}

func (a *app) policyCreditCmd() *cobra.Command {
	var (
		task, critic, rewardPath, out, camera string
		rate, frameSize, episodes, hidden     int
		seed                                  uint64
	)
	c := &cobra.Command{
		Use:   "credit",
		Short: "Credit assignment: does the distilled reward follow the value of a critic trained on the true reward?",
		Long: `Loads the critics of a policy train run on the simulator's reward (its checkpoint folder, kept
with --keep-checkpoint), runs --episodes trajectories of that run's sampled policy, and correlates
the distilled reward (--reward, on the rendered frames as in training) of every state reached with
the critic's value V(s) = min(Q1, Q2)(s, tanh μ(s)), per episode and pooled; the simulator's reward
is correlated with V beside it as the reference. Writes credit.json, credit.csv and credit.png
(three trajectories, each series standardised) into --out.`,
		Example: `  robodistill policy credit --task reach --critic out/reach/gt.onnx.train --reward out/reward/reward.onnx --frame-size 128 --out out/reach/credit`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if task == "" || critic == "" || rewardPath == "" {
				return fmt.Errorf("--task, --critic and --reward are required")
			}
			sac := policy.DefaultSAC()
			sac.Hidden = hidden
			newEnv := func() (policy.Env, error) {
				return policy.NewMetaWorld(task, metaworld.Options{Assets: a.assets, Rate: rate})
			}
			env, err := newEnv()
			if err != nil {
				return err
			}
			sp := env.Spec()
			env.Close()
			ag, err := policy.LoadAgent(critic, sac, sp.ObsDim, sp.ActDim)
			if err != nil {
				return fmt.Errorf("--critic: %w", err)
			}
			d, err := policy.NewDistilled(rewardPath, 1)
			if err != nil {
				return fmt.Errorf("--reward: %w", err)
			}
			defer d.Close()
			res, err := policy.CreditAssignment(cmd.Context(), policy.CreditConfig{NewEnv: newEnv, Critic: ag, Reward: d,
				Camera: camera, FrameSize: frameSize, Episodes: episodes, Seed: seed})
			if err != nil {
				return err
			}
			if err := d.Err(); err != nil {
				return err
			}
			if err := policy.WriteCredit(out, fmt.Sprintf("%s at %d Hz: distilled reward against V", task, rate), res); err != nil {
				return err
			}
			a.human("%d episodes (success %.2f): corr(distilled reward, V) mean %.3f, pooled %.3f; corr(simulator reward, V) mean %.3f, pooled %.3f\n",
				len(res.Episodes), res.SuccessRate, res.MeanPearsonDistilled, res.PooledPearsonDistilled, res.MeanPearsonSim, res.PooledPearsonSim)
			a.human("wrote %s\n", out)
			return a.summary(res)
		},
	}
	f := c.Flags()
	f.StringVar(&task, "task", "", "MetaWorld task")
	f.StringVar(&critic, "critic", "", "checkpoint folder of a policy train run on the simulator's reward")
	f.StringVar(&rewardPath, "reward", "", "distilled reward model (member 0 of its ensemble)")
	f.StringVar(&out, "out", "credit", "output folder")
	f.StringVar(&camera, "camera", "corner", "camera rendered for the reward model")
	f.IntVar(&frameSize, "frame-size", 64, "rendered frame size (the size the reward model's frames were recorded at)")
	f.IntVar(&rate, "rate", 50, "control rate of the critic's run")
	f.IntVar(&hidden, "hidden", 256, "hidden width of the critic's run")
	f.IntVar(&episodes, "episodes", 10, "trajectories")
	f.Uint64Var(&seed, "seed", 0, "seed of the trajectories (evaluation seeds)")
	return c
}
