package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"robodistill/distill/policy"
)

// DemoSummary is the one-line JSON summary of 'demo'.
type DemoSummary struct {
	Out    string             `json:"out"`
	Task   string             `json:"task"`
	Stages []DemoStage        `json:"stages"`
	Reward map[string]any     `json:"reward,omitempty"` // reward train's summary (selected keys)
	Policy *PolicySummary     `json:"policy,omitempty"`
	Eval   map[string]any     `json:"eval,omitempty"`
	Robot  *DemoRobot         `json:"robot,omitempty"`
	Curve  []policy.EvalPoint `json:"-"`
}

// DemoStage is one step of the pipeline.
type DemoStage struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	Skipped bool    `json:"skipped,omitempty"` // its output was there from an earlier run
}

// demoFlags are the pipeline's settings.
type demoFlags struct {
	out, task, camera          string
	episodes, pairs, size      int
	steps, every, onlinePairs  int
	hidden, ensemble           int
	robotEpisodes, demos       int
	average                    float64
	criticNorm                 bool
	seed                       uint64
	lf                         labelFlags
	crop                       string
	robotTimeout, stageTimeout time.Duration
}

func (a *app) demoCmd() *cobra.Command {
	var df demoFlags
	c := &cobra.Command{
		Use:   "demo",
		Short: "The whole pipeline on the embedded defaults: collect, label, distil the reward, train the policy, run it on the robot over ROS",
		Long: `Runs robodistill end to end on one task (reach by default), each stage as its own
'robodistill' command whose output stays in --out:

  1. collect      scripted-noise rollouts rendered at --size from --camera     episodes/
  2. label        --pairs pairs labelled by --labeler (the scripted oracle;      labels.jsonl
                  'vlm' asks an OpenAI-compatible endpoint, see 'label --help')
  3. reward train a Bradley-Terry ensemble of --ensemble CNNs on the frames     reward/
  4. demos        --demos full episodes of the scripted policy (half noisy),     demos/
                  the demonstrations in the replay buffer (0: none)
  5. policy train SAC on the distilled reward, refined online every --every     policy/
                  steps with --online-pairs new labels of the replay buffer;
                  exports a Polyak average of the actor (--actor-average);
                  --critic-norm puts LayerNorm in the critics
  6. eval         the exported policy through the model runtime                 policy/eval.json
  7. robot        rosmaster, the sim bridge (the simulated Sawyer as a ROS      robot/
                  robot, real time) and robodistilld with the exported models:
                  the daemon controls the arm over ROS at 50 Hz for
                  --robot-episodes episodes; success rate and the loop's timing

Every stage resumes: running the command again redoes only what did not finish.`,
		Example: `  robodistill demo --out out/demo
  OPENAI_BASE_URL=http://localhost:8000/v1 robodistill demo --labeler vlm --model Qwen/Qwen2.5-VL-7B-Instruct --out out/demo-vlm`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runDemo(cmd.Context(), &df) },
	}
	f := c.Flags()
	f.StringVar(&df.out, "out", "out/demo", "output folder")
	f.StringVar(&df.task, "task", "reach", "MetaWorld task")
	f.StringVar(&df.camera, "camera", "corner", "camera the reward model sees")
	f.IntVar(&df.size, "size", 128, "rendered frame size in pixels")
	f.StringVar(&df.crop, "crop", `{"x":28,"y":16,"width":80,"height":80}`, "the reward model's crop of the frame (vision.Rect JSON; \"\" for the whole frame)")
	f.IntVar(&df.episodes, "episodes", 100, "collected episodes")
	f.IntVar(&df.pairs, "pairs", 4000, "labelled pairs for the offline reward")
	f.IntVar(&df.steps, "steps", 20000, "policy training steps")
	f.IntVar(&df.every, "every", 5000, "online reward: steps between refreshes (0: off)")
	f.IntVar(&df.onlinePairs, "online-pairs", 500, "online reward: new labels per refresh")
	f.IntVar(&df.demos, "demos", 10, "scripted demonstrations in the policy's replay buffer (0: none)")
	f.Float64Var(&df.average, "actor-average", 0.0005, "Polyak rate of the averaged actor that is evaluated and exported (0: the actor itself)")
	f.BoolVar(&df.criticNorm, "critic-norm", false, "LayerNorm in the critics (policy train --critic-norm; what drawer-open needs, no gain measured on reach at 20k steps)")
	f.IntVar(&df.hidden, "hidden", 256, "hidden width of actor and critics")
	f.IntVar(&df.ensemble, "ensemble", 2, "reward ensemble size (one member per core trains at once)")
	f.IntVar(&df.robotEpisodes, "robot-episodes", 5, "episodes the daemon runs on the simulated robot")
	f.Uint64Var(&df.seed, "seed", 0, "seed of every stage")
	f.DurationVar(&df.robotTimeout, "robot-timeout", 3*time.Minute, "give up on the robot stage after this long")
	df.lf.addLabelerFlags(f, "")
	return c
}

// stage runs one robodistill command (this executable) with args, its stderr going to
// logs/NAME.log and its stdout (the --json summary) returned.
func (a *app) stage(ctx context.Context, df *demoFlags, name string, args ...string) ([]byte, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logs := filepath.Join(df.out, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, err
	}
	lf, err := os.Create(filepath.Join(logs, name+".log"))
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	full := append([]string{}, args...)
	if a.assets != "" {
		full = append(full, "--assets", a.assets)
	}
	c := exec.CommandContext(ctx, exe, full...)
	c.Stderr = lf
	fmt.Fprintf(lf, "$ robodistill %s\n", strings.Join(full, " "))
	out, err := c.Output()
	if err != nil {
		return nil, fmt.Errorf("demo stage %s failed (%v); its log is %s", name, err, lf.Name())
	}
	return out, nil
}

func (a *app) runDemo(ctx context.Context, df *demoFlags) error {
	if err := os.MkdirAll(df.out, 0o755); err != nil {
		return err
	}
	sum := &DemoSummary{Out: df.out, Task: df.task}
	timed := func(name string, skip bool, f func() error) error {
		t0 := time.Now()
		if skip {
			a.human("%-8s already done\n", name)
			sum.Stages = append(sum.Stages, DemoStage{Name: name, Skipped: true})
			return nil
		}
		a.human("%-8s …", name)
		if err := f(); err != nil {
			a.human("\n")
			return err
		}
		d := time.Since(t0).Seconds()
		a.human("\r%-8s %6.0f s\n", name, d)
		sum.Stages = append(sum.Stages, DemoStage{Name: name, Seconds: d})
		return nil
	}
	seed := strconv.FormatUint(df.seed, 10)
	eps := filepath.Join(df.out, "episodes")
	labels := filepath.Join(df.out, "labels.jsonl")
	rewardPath := filepath.Join(df.out, "reward", "reward.onnx")
	policyPath := filepath.Join(df.out, "policy", "policy.onnx")
	labelerArgs := func(prefix string) []string {
		args := []string{"--" + prefix + "labeler", df.lf.spec}
		if df.lf.spec == "vlm" {
			if df.lf.baseURL != "" {
				args = append(args, "--"+prefix+"base-url", df.lf.baseURL)
			}
			if df.lf.model != "" {
				args = append(args, "--"+prefix+"model", df.lf.model)
			}
		}
		return args
	}
	a.human("robodistill demo: %s, output in %s\n", df.task, df.out)

	if err := timed("collect", false, func() error {
		_, err := a.stage(ctx, df, "collect", "collect", "--task", df.task, "--policy", "scripted-noise:2.0", "--max-steps", "150",
			"--episodes", strconv.Itoa(df.episodes), "--seed", seed, "--size", strconv.Itoa(df.size), "--camera", df.camera,
			"--rate", "50", "--out", eps, "--json")
		return err
	}); err != nil {
		return err
	}
	if err := timed("label", false, func() error {
		_, err := a.stage(ctx, df, "label", append([]string{"label", "--episodes", eps, "--pairs", strconv.Itoa(df.pairs),
			"--seed", seed, "--out", labels, "--json"}, labelerArgs("")...)...)
		return err
	}); err != nil {
		return err
	}
	_, err := os.Stat(rewardPath)
	if err := timed("reward", err == nil, func() error {
		vis := "{}"
		if df.crop != "" {
			vis = `{"crop":` + df.crop + `}`
		}
		out, err := a.stage(ctx, df, "reward", "reward", "train", "--labels", labels, "--episodes", eps, "--out", rewardPath,
			"--seed", seed, "--vision", vis, "--ensemble", strconv.Itoa(df.ensemble), "--json")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(df.out, "reward", "summary.json"), out, 0o644)
	}); err != nil {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(df.out, "reward", "summary.json")); err == nil {
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			sum.Reward = map[string]any{}
			for _, k := range []string{"val_accuracy", "gt_agreement", "pearson", "spearman", "flops_per_inference"} {
				sum.Reward[k] = m[k]
			}
		}
	}
	demos := filepath.Join(df.out, "demos")
	if df.demos > 0 {
		// Seeds far from the collected, training and evaluation episodes'.
		if err := timed("demos", false, func() error {
			_, err := a.stage(ctx, df, "demos", "collect", "--task", df.task, "--policy", "scripted,scripted-noise:0.5", "--full",
				"--episodes", strconv.Itoa(df.demos), "--seed", strconv.FormatUint(900000+df.seed, 10), "--size", strconv.Itoa(df.size),
				"--camera", df.camera, "--rate", "50", "--out", demos, "--json")
			return err
		}); err != nil {
			return err
		}
	}
	_, err = os.Stat(policyPath)
	if err := timed("policy", err == nil, func() error {
		args := []string{"policy", "train", "--task", df.task, "--reward", rewardPath, "--frame-size", strconv.Itoa(df.size),
			"--camera", df.camera, "--steps", strconv.Itoa(df.steps), "--seed", seed, "--rate", "50", "--hidden", strconv.Itoa(df.hidden),
			"--eval-every", "10000", "--actor-average", strconv.FormatFloat(df.average, 'g', -1, 64), "--out", policyPath, "--json"}
		if df.demos > 0 {
			args = append(args, "--demos", demos)
		}
		if df.criticNorm {
			args = append(args, "--critic-norm")
		}
		if df.every > 0 {
			args = append(append(args, "--online-every", strconv.Itoa(df.every), "--online-pairs", strconv.Itoa(df.onlinePairs)),
				labelerArgs("online-")...)
		}
		out, err := a.stage(ctx, df, "policy", args...)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(df.out, "policy", "summary.json"), out, 0o644)
	}); err != nil {
		return err
	}
	var ps PolicySummary
	if b, err := os.ReadFile(filepath.Join(df.out, "policy", "summary.json")); err == nil && json.Unmarshal(b, &ps) == nil {
		sum.Policy = &ps
		sum.Policy.Curve = nil
		sum.Curve = ps.Curve
		if len(ps.Curve) > 0 {
			if err := policy.WriteCurves(filepath.Join(df.out, "policy", "curves"), df.task+": distilled reward (online)",
				[]policy.Run{{Name: "distilled seed " + seed, Group: ps.Reward, Curve: ps.Curve, Reward: ps.Reward}}); err != nil {
				return err
			}
		}
	}
	if err := timed("eval", false, func() error {
		out, err := a.stage(ctx, df, "eval", "eval", "--task", df.task, "--policy", policyPath, "--episodes", "20", "--seed", seed, "--json")
		if err != nil {
			return err
		}
		if err := json.Unmarshal(out, &sum.Eval); err != nil {
			return fmt.Errorf("eval: %w", err)
		}
		return os.WriteFile(filepath.Join(df.out, "policy", "eval.json"), out, 0o644)
	}); err != nil {
		return err
	}
	// The daemon runs the reward the policy was trained on: with online refinement, the
	// refined ensemble written beside the policy.
	robotReward := rewardPath
	refined := strings.TrimSuffix(policyPath, ".onnx") + ".reward.onnx"
	if _, err := os.Stat(refined); err == nil && df.every > 0 {
		robotReward = refined
	}
	if err := timed("robot", false, func() error {
		r, err := a.demoRobot(ctx, df, robotReward, policyPath)
		sum.Robot = r
		return err
	}); err != nil {
		return err
	}

	a.human("\n")
	if _, ok := sum.Reward["val_accuracy"].(float64); ok {
		a.human("reward:  validation accuracy %.3f, Pearson with the simulator's reward %.3f\n", num(sum.Reward["val_accuracy"]), num(sum.Reward["pearson"]))
	}
	if sum.Policy != nil {
		a.human("policy:  %d steps, success %.2f in training's last evaluation\n", sum.Policy.Steps, sum.Policy.SuccessRate)
		if d := sum.Policy.Demos; d != nil {
			a.human("         %d demonstrations (%d transitions, %d successful) in its replay buffer\n", d.Episodes, d.Transitions, d.Successes)
		}
	}
	if sum.Eval != nil {
		a.human("eval:    success %.2f over %v episodes (exported policy, model runtime)\n", num(sum.Eval["success_rate"]), sum.Eval["episodes"])
	}
	if r := sum.Robot; r != nil {
		a.human("robot:   success %d of %d episodes with robodistilld over ROS at %d Hz\n", r.Successes, r.Episodes, r.RateHz)
		a.human("         loop lateness p50 %.3f ms, p99 %.3f ms; cycle compute p50 %.3f ms, p99 %.3f ms; camera-to-command p50 %.3f ms, p99 %.3f ms; %d overruns\n",
			r.LatenessP50Ms, r.LatenessP99Ms, r.ComputeP50Ms, r.ComputeP99Ms, r.LatencyP50Ms, r.LatencyP99Ms, r.Overruns)
		a.human("         transition log: %s\n", r.LogDir)
	}
	var total float64
	for _, s := range sum.Stages {
		total += s.Seconds
	}
	a.human("%.0f s in all; artifacts in %s\n", total, df.out)
	j, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(df.out, "summary.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	return a.summary(sum)
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}
