package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"robodistill/control/episode"
	"robodistill/sim/collect"
	"robodistill/sim/metaworld"
)

func (a *app) collectCmd() *cobra.Command {
	var cfg collect.Config
	var task string
	c := &cobra.Command{
		Use:   "collect",
		Short: "Roll out a policy and record episodes (ROS bags with an index; docs/episodes.md)",
		Long: `Roll out a policy in the simulator and record every step (camera frame, robot state,
observation, action, reward and success) as one ROS bag per episode in --out, with an index
that finds frames by content hash. An interrupted run continues where it stopped when run
again with the same arguments (--episodes may grow); other arguments are refused.`,
		Example: `  robodistill collect --task drawer-open --policy scripted-noise:0.3 --episodes 50 --seed 0 --camera corner --size 64 --out out/drawer --json
  robodistill collect verify out/drawer`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := metaworld.Lookup(task)
			if err != nil {
				return err
			}
			cfg.Task, cfg.Assets = t, a.assets
			cfg.Log = a.log.With(zap.String("task", t.Name), zap.String("out", cfg.Out))
			last := time.Time{}
			cfg.OnEpisode = func(p collect.Progress) {
				cfg.Log.Debug("episode", zap.Int("episode", p.Entry.Episode), zap.Int("steps", p.Entry.Steps),
					zap.Bool("success", p.Entry.Success), zap.Float64("return", p.Entry.Return))
				if !a.json && (time.Since(last) > 200*time.Millisecond || p.Done == p.Todo) {
					last = time.Now()
					fmt.Fprintf(a.stderr, "\repisodes %d/%d  frames %d", p.Done, p.Todo, p.Frames)
				}
			}
			s, err := collect.Run(cmd.Context(), cfg)
			if !a.json && s.New > 0 {
				fmt.Fprintln(a.stderr)
			}
			if s.Out == "" { // failed before anything was recorded
				return err
			}
			a.human("%s  policy %s  %d episodes in %s (%d resumed, %d new)  %d frames  success %.1f%%  %.1f MB  %.0f frames/s\n",
				s.Task, cfg.Policy, s.Episodes, s.Out, s.Resumed, s.New, s.Frames, 100*s.SuccessRate, float64(s.Bytes)/1e6, s.FramesPerSec)
			if jerr := a.summary(s); jerr != nil {
				return jerr
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&task, "task", "", "task name (see 'robodistill sim tasks')")
	f.StringVar(&cfg.Policy, "policy", "scripted", "scripted | random | scripted-noise:STD | wander:STD, or a comma-separated mix (episode seed s runs the (s mod n)-th)")
	f.IntVar(&cfg.Episodes, "episodes", 10, "number of episodes (episode i uses seed+i)")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed of the first episode")
	f.StringVar(&cfg.Camera, "camera", "corner", "camera name (corner, corner2, corner3, corner4, topview, behindGripper, gripperPOV)")
	f.IntVar(&cfg.Size, "size", 64, "frame width and height in pixels (up to 480)")
	f.StringVar(&cfg.Out, "out", "", "collection folder (created; an existing collection is continued)")
	f.IntVar(&cfg.Rate, "rate", 80, "control rate in Hz: 80 (MetaWorld) or 50 (the daemon's)")
	f.IntVar(&cfg.MaxSteps, "max-steps", 0, "episode length in steps (0: the task's, 6.25 s of simulated time)")
	f.BoolVar(&cfg.Full, "full", false, "run every episode to its full length instead of stopping at the first success")
	f.IntVar(&cfg.Workers, "workers", 0, "parallel environments (default: one per core); files do not depend on it")
	_ = c.MarkFlagRequired("task")
	_ = c.MarkFlagRequired("out")
	c.AddCommand(a.collectVerifyCmd())
	return c
}

func (a *app) collectVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify DIR",
		Short: "Read every bag of a collection and check it against the index",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := episode.OpenCollection(args[0])
			if err != nil {
				return err
			}
			defer c.Close()
			type summary struct {
				Out      string `json:"out"`
				Episodes int    `json:"episodes"`
				Frames   int    `json:"frames"`
				OK       bool   `json:"ok"`
				Error    string `json:"error,omitempty"`
			}
			s := summary{Out: args[0], Episodes: len(c.Entries())}
			for _, e := range c.Entries() {
				s.Frames += e.Steps
			}
			verr := c.Verify(cmd.Context())
			s.OK = verr == nil
			if verr != nil {
				s.Error = verr.Error()
			} else {
				a.human("%s: %d episodes, %d frames, every bag matches the index\n", args[0], s.Episodes, s.Frames)
			}
			if err := a.summary(s); err != nil {
				return err
			}
			return verr
		},
	}
}
