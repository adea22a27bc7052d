package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"robodistill/sim/frames"
	"robodistill/sim/metaworld"
	"robodistill/sim/mujoco"
	"robodistill/sim/rollout"
)

func (a *app) simCmd() *cobra.Command {
	c := &cobra.Command{Use: "sim", Short: "Run, render and list the MetaWorld simulator's tasks"}
	c.AddCommand(a.simRolloutCmd(), a.simRenderCmd(), a.simTasksCmd(), a.simBridgeCmd(), a.simDemoCmd())
	return c
}

func (a *app) envOptions(rate int) metaworld.Options {
	return metaworld.Options{Assets: a.assets, Rate: rate}
}

func (a *app) simRolloutCmd() *cobra.Command {
	var (
		task, policy string
		episodes     int
		seed         uint64
		rate         int
		workers      int
		full         bool
	)
	c := &cobra.Command{
		Use:   "rollout",
		Short: "Roll out a policy and report success rate, return and speed",
		Example: `  robodistill sim rollout --task drawer-open --policy scripted --episodes 20 --seed 0 --json
  robodistill sim rollout --task reach --policy scripted-noise:0.3 --episodes 50 --rate 50`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := metaworld.Lookup(task)
			if err != nil {
				return err
			}
			pf, err := rollout.ParsePolicy(policy)
			if err != nil {
				return err
			}
			log := a.log.With(zap.String("task", t.Name), zap.String("policy", policy))
			done := 0
			s, err := rollout.Run(cmd.Context(), rollout.Config{
				Task: t, Env: a.envOptions(rate), Policy: pf, Episodes: episodes, Seed: seed,
				Workers: workers, Full: full,
				OnEpisode: func(ep rollout.Episode) {
					done++
					log.Debug("episode", zap.Int("index", ep.Index), zap.Bool("success", ep.Success),
						zap.Float64("return", ep.Return), zap.Int("steps", ep.Steps))
					if !a.json {
						fmt.Fprintf(a.stderr, "\repisodes %d/%d", done, episodes)
					}
				},
			})
			if !a.json {
				fmt.Fprintln(a.stderr)
			}
			if err != nil && s.Episodes == 0 {
				return err
			}
			a.human("%s  policy %s  rate %d Hz  episodes %d  success %.1f%%  mean return %.1f  mean steps %.1f  %.0f steps/s\n",
				s.Task, policy, rateOr80(rate), s.Episodes, 100*s.SuccessRate, s.MeanReturn, s.MeanSteps, s.StepsPerSec)
			if jerr := a.summary(s); jerr != nil {
				return jerr
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&task, "task", "", "task name (see 'robodistill sim tasks')")
	f.StringVar(&policy, "policy", "scripted", "scripted | random | scripted-noise:STD | wander:STD, or a comma-separated mix (episode seed s runs the (s mod n)-th)")
	f.IntVar(&episodes, "episodes", 10, "number of episodes")
	f.Uint64Var(&seed, "seed", 0, "seed of the first episode (episode i uses seed+i)")
	f.IntVar(&rate, "rate", 80, "control rate in Hz: 80 (MetaWorld) or 50 (the daemon's)")
	f.IntVar(&workers, "workers", 0, "parallel environments (default: one per core)")
	f.BoolVar(&full, "full", false, "run every episode to its full length instead of stopping at the first success")
	_ = c.MarkFlagRequired("task")
	return c
}

func rateOr80(r int) int {
	if r == 0 {
		return 80
	}
	return r
}

func (a *app) simRenderCmd() *cobra.Command {
	var (
		task, camera, out, policy string
		seed                      uint64
		step, size, rate          int
		quality                   bool
	)
	c := &cobra.Command{
		Use:     "render",
		Short:   "Render one camera frame of a task to PNG",
		Example: `  robodistill sim render --task drawer-open --seed 3 --step 60 --camera corner --size 224 --out frame.png`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := metaworld.Lookup(task)
			if err != nil {
				return err
			}
			if size < 1 || size > mujoco.MaxRenderSize {
				return fmt.Errorf("--size %d outside 1..%d", size, mujoco.MaxRenderSize)
			}
			pf, err := rollout.ParsePolicy(policy)
			if err != nil {
				return err
			}
			opts := a.envOptions(rate)
			if quality {
				opts.Render = mujoco.RenderOptions{Multisamples: 4, Shadows: true, Reflections: true}
			}
			e, err := metaworld.New(t, opts)
			if err != nil {
				return err
			}
			defer e.Close()
			if _, err := e.Camera(camera); err != nil {
				return err
			}
			o, err := e.Reset(seed)
			if err != nil {
				return err
			}
			pol := pf(t, seed)
			for i := 0; i < step; i++ {
				if o, _, _, _, err = e.Step(pol.Act(&o)); err != nil {
					return err
				}
			}
			f := frames.NewRGB(size, size)
			if err := e.Render(camera, size, size, f.Pix); err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			if err := f.WritePNG(out); err != nil {
				return err
			}
			a.human("wrote %s (%s, seed %d, step %d, camera %s, %dx%d)\n", out, t.Name, seed, step, camera, size, size)
			return a.summary(map[string]any{"task": t.Name, "seed": seed, "step": step, "camera": camera, "size": size, "out": out})
		},
	}
	f := c.Flags()
	f.StringVar(&task, "task", "", "task name")
	f.Uint64Var(&seed, "seed", 0, "episode seed")
	f.IntVar(&step, "step", 0, "render after this many steps of --policy")
	f.StringVar(&policy, "policy", "scripted", "policy that drives the steps before the frame")
	f.StringVar(&camera, "camera", "corner", "camera name (corner, corner2, corner3, corner4, topview, behindGripper, gripperPOV)")
	f.IntVar(&size, "size", 224, "width and height in pixels (up to 480)")
	f.StringVar(&out, "out", "frame.png", "output PNG file")
	f.IntVar(&rate, "rate", 80, "control rate in Hz (80 or 50)")
	f.BoolVar(&quality, "quality", false, "render with MetaWorld's visual settings (multisampling, shadows, reflections; slower)")
	_ = c.MarkFlagRequired("task")
	return c
}

func (a *app) simTasksCmd() *cobra.Command {
	var episodes int
	var seed uint64
	c := &cobra.Command{
		Use:   "tasks",
		Short: "List the tasks with their goal text and measured scripted-policy success",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			type row struct {
				Task     string   `json:"task"`
				Scene    string   `json:"scene"`
				Goal     string   `json:"goal"`
				Scripted *float64 `json:"scripted_success,omitempty"`
				Episodes int      `json:"episodes,omitempty"`
				Caveat   string   `json:"caveat,omitempty"`
			}
			var rows []row
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			if !a.json {
				fmt.Fprintln(tw, "TASK\tSCRIPTED\tGOAL")
			}
			for _, t := range metaworld.Tasks() {
				r := row{Task: t.Name, Scene: t.Scene, Goal: t.Goal, Caveat: t.Caveat}
				succ := "-"
				if episodes > 0 {
					pf, _ := rollout.ParsePolicy("scripted")
					s, err := rollout.Run(cmd.Context(), rollout.Config{Task: t, Env: a.envOptions(80), Policy: pf, Episodes: episodes, Seed: seed})
					if err != nil {
						return err
					}
					r.Scripted, r.Episodes = &s.SuccessRate, s.Episodes
					succ = fmt.Sprintf("%.0f%% of %d", 100*s.SuccessRate, s.Episodes)
				}
				rows = append(rows, r)
				if !a.json {
					goal := t.Goal
					if t.Caveat != "" {
						goal += "  [" + t.Caveat + "]"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, succ, goal)
					if episodes > 0 {
						fmt.Fprintf(a.stderr, "\rmeasured %d/%d tasks", len(rows), len(metaworld.Tasks()))
					}
				}
			}
			if !a.json {
				if episodes > 0 {
					fmt.Fprintln(a.stderr)
				}
				tw.Flush()
			}
			return a.summary(rows)
		},
	}
	c.Flags().IntVar(&episodes, "episodes", 10, "episodes of the scripted policy to measure per task (0: skip)")
	c.Flags().Uint64Var(&seed, "seed", 0, "seed of the first measured episode")
	return c
}
