package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"robodistill/sim/frames"
	"robodistill/sim/metaworld"
	"robodistill/sim/rollout"
)

func (a *app) simDemoCmd() *cobra.Command {
	var (
		out      string
		tasks    []string
		episodes int
		size     int
		camera   string
	)
	c := &cobra.Command{
		Use:     "demo",
		Short:   "Scripted rollouts of a few tasks, a rendered frame of each, and a success table",
		Example: `  robodistill sim demo --out out/sim-demo`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			pf, _ := rollout.ParsePolicy("scripted")
			type row struct {
				rollout.Summary
				Frame string `json:"frame"`
			}
			var rows []row
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			a.human("robodistill demo: scripted MetaWorld rollouts on MuJoCo, %d episodes each, frames in %s\n\n", episodes, out)
			if !a.json {
				fmt.Fprintln(tw, "TASK\tSUCCESS\tMEAN RETURN\tMEAN STEPS\tSTEPS/S\tFRAME")
			}
			for _, name := range tasks {
				t, err := metaworld.Lookup(name)
				if err != nil {
					return err
				}
				s, err := rollout.Run(cmd.Context(), rollout.Config{Task: t, Env: a.envOptions(80), Policy: pf, Episodes: episodes})
				if err != nil {
					return err
				}
				frame, err := a.renderMidEpisode(t, camera, size, filepath.Join(out, t.Name+".png"))
				if err != nil {
					return err
				}
				rows = append(rows, row{s, frame})
				if !a.json {
					fmt.Fprintf(tw, "%s\t%.0f%%\t%.1f\t%.1f\t%.0f\t%s\n", s.Task, 100*s.SuccessRate, s.MeanReturn, s.MeanSteps, s.StepsPerSec, frame)
					fmt.Fprintf(a.stderr, "\r%d/%d tasks", len(rows), len(tasks))
				}
			}
			if !a.json {
				fmt.Fprintln(a.stderr)
				tw.Flush()
			}
			return a.summary(rows)
		},
	}
	f := c.Flags()
	f.StringVar(&out, "out", "out/sim-demo", "output folder")
	f.StringSliceVar(&tasks, "tasks", []string{"reach", "drawer-open", "button-press-topdown", "soccer"}, "tasks to run")
	f.IntVar(&episodes, "episodes", 10, "scripted episodes per task")
	f.IntVar(&size, "size", 224, "frame size in pixels")
	f.StringVar(&camera, "camera", "corner", "camera for the frames")
	return c
}

// renderMidEpisode renders the scripted policy's state 40 steps into episode 0.
func (a *app) renderMidEpisode(t *metaworld.Task, camera string, size int, path string) (string, error) {
	e, err := metaworld.New(t, a.envOptions(80))
	if err != nil {
		return "", err
	}
	defer e.Close()
	o, err := e.Reset(0)
	if err != nil {
		return "", err
	}
	for i := 0; i < 40; i++ {
		if o, _, _, _, err = e.Step(t.Scripted(&o)); err != nil {
			return "", err
		}
	}
	f := frames.NewRGB(size, size)
	if err := e.Render(camera, size, size, f.Pix); err != nil {
		return "", err
	}
	return path, f.WritePNG(path)
}
