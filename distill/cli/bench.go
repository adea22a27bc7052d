package cli

import (
	"fmt"
	"runtime"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"robodistill/sim/frames"
	"robodistill/sim/metaworld"
	"robodistill/sim/mujoco"
)

func (a *app) benchCmd() *cobra.Command {
	c := &cobra.Command{Use: "bench", Short: "Benchmarks that print figures side by side with their references"}
	c.AddCommand(a.benchSimCmd(), a.benchBridgeCmd(), a.benchBridgeSubscriberCmd(), a.benchLabelCmd(), a.benchRewardCmd(), a.benchModelCmd(), a.benchCostCmd(), a.benchPolicyCmd())
	return c
}

// SimBench is the JSON report of 'bench sim'.
type SimBench struct {
	Task     string `json:"task"`
	Rate     int    `json:"rate"`
	Substeps int    `json:"substeps"`
	Repeats  int    `json:"repeats"`
	// Control steps per second on one core, medians over repeats.
	// Go: Env.Step as MetaWorld does it (full mj_forward after the substeps), and with
	// Options.KinematicsOnly.
	GoEnvStepsPerSec    float64 `json:"go_env_steps_per_sec"`
	GoKinStepsPerSec    float64 `json:"go_env_kinematics_only_steps_per_sec"`
	CPlainStepsPerSec   float64 `json:"c_plain_steps_per_sec"`
	CForwardStepsPerSec float64 `json:"c_forward_steps_per_sec"`
	// RatioSameWork compares Go with C doing the same MuJoCo calls (mj_step x substeps +
	// mj_forward): the cost of the bindings, observation and reward.
	RatioSameWork float64 `json:"ratio_go_vs_c_same_work"`
	// RatioVsPlain compares Go (MetaWorld semantics) and Go (kinematics only) with the
	// plain mj_step loop.
	RatioVsPlain    float64 `json:"ratio_go_vs_plain_c"`
	RatioKinVsPlain float64 `json:"ratio_go_kinematics_only_vs_plain_c"`
	// Frames per second by size (fast settings), medians.
	RenderFPS map[int]float64 `json:"render_fps"`
}

func (a *app) benchSimCmd() *cobra.Command {
	var (
		task    string
		steps   int
		repeats int
		rate    int
		sizes   []int
		camera  string
		frames_ int
	)
	c := &cobra.Command{
		Use:   "sim",
		Short: "Environment steps/s against a plain C mj_step loop, and render frames/s",
		Long: `Measures, on one core and in one run, alternating so that machine noise hits both alike:
  - Env.Step with the task's scripted policy (MuJoCo substeps, MetaWorld's mj_forward,
    observation, reward), and the same with Options.KinematicsOnly,
  - a plain C loop over mj_step on the same scene replaying the same hand targets and
    controls (same substeps per control step),
  - the same C loop plus MetaWorld's per-step mj_forward,
and headless render frames/s at the given sizes. Figures are medians over --repeats.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			t, err := metaworld.Lookup(task)
			if err != nil {
				return err
			}
			goEnv, err := metaworld.New(t, a.envOptions(rate))
			if err != nil {
				return err
			}
			defer goEnv.Close()
			cEnv, err := metaworld.New(t, a.envOptions(rate))
			if err != nil {
				return err
			}
			defer cEnv.Close()
			kinOpts := a.envOptions(rate)
			kinOpts.KinematicsOnly = true
			kinEnv, err := metaworld.New(t, kinOpts)
			if err != nil {
				return err
			}
			defer kinEnv.Close()

			// One measurement is one episode: the Go Env runs the scripted policy and
			// records the mocap targets and controls it applied; the C loops replay exactly
			// that trajectory from the same reset state.
			var goRates, kinRates, plainRates, fwdRates []float64
			for r := 0; r < repeats; r++ {
				if err := cmd.Context().Err(); err != nil {
					return err
				}
				seed := uint64(r)
				d, mocap, ctrl, err := timeEpisode(goEnv, t, seed, steps)
				if err != nil {
					return err
				}
				n := float64(len(mocap) / 3)
				goRates = append(goRates, n/d.Seconds())
				dk, _, _, err := timeEpisode(kinEnv, t, seed, steps)
				if err != nil {
					return err
				}
				kinRates = append(kinRates, n/dk.Seconds())
				for _, fwd := range []bool{false, true} {
					if _, err := cEnv.Reset(seed); err != nil {
						return err
					}
					d, err := cEnv.Data().CStepLoop(mocap, ctrl, cEnv.Substeps(), fwd)
					if err != nil {
						return err
					}
					if fwd {
						fwdRates = append(fwdRates, n/d.Seconds())
					} else {
						plainRates = append(plainRates, n/d.Seconds())
					}
				}
			}
			rep := SimBench{Task: t.Name, Rate: goEnv.Rate(), Substeps: goEnv.Substeps(), Repeats: repeats,
				GoEnvStepsPerSec: median(goRates), GoKinStepsPerSec: median(kinRates), CPlainStepsPerSec: median(plainRates), CForwardStepsPerSec: median(fwdRates),
				RenderFPS: map[int]float64{}}
			rep.RatioSameWork = rep.GoEnvStepsPerSec / rep.CForwardStepsPerSec
			rep.RatioVsPlain = rep.GoEnvStepsPerSec / rep.CPlainStepsPerSec
			rep.RatioKinVsPlain = rep.GoKinStepsPerSec / rep.CPlainStepsPerSec

			cam, err := goEnv.Camera(camera)
			if err != nil {
				return err
			}
			if _, err := goEnv.Reset(0); err != nil {
				return err
			}
			for _, sz := range sizes {
				if sz < 1 || sz > mujoco.MaxRenderSize {
					return fmt.Errorf("--sizes: %d outside 1..%d", sz, mujoco.MaxRenderSize)
				}
				f := frames.NewRGB(sz, sz)
				if err := goEnv.RenderID(cam, sz, sz, f.Pix); err != nil { // warm-up
					return err
				}
				var fps []float64
				for r := 0; r < repeats; r++ {
					start := time.Now()
					for i := 0; i < frames_; i++ {
						if err := goEnv.RenderID(cam, sz, sz, f.Pix); err != nil {
							return err
						}
					}
					fps = append(fps, float64(frames_)/time.Since(start).Seconds())
				}
				rep.RenderFPS[sz] = median(fps)
			}

			a.human("sim bench: task %s, %d Hz (%d substeps), %d steps x %d repeats, one core, medians\n", rep.Task, rep.Rate, rep.Substeps, steps, repeats)
			a.human("  C loop: mj_step x substeps                    %9.0f steps/s\n", rep.CPlainStepsPerSec)
			a.human("  C loop: mj_step x substeps + mj_forward       %9.0f steps/s\n", rep.CForwardStepsPerSec)
			a.human("  Go Env.Step, MetaWorld semantics (+forward)   %9.0f steps/s   vs C same work %.3f   vs plain C %.3f\n", rep.GoEnvStepsPerSec, rep.RatioSameWork, rep.RatioVsPlain)
			a.human("  Go Env.Step, KinematicsOnly                   %9.0f steps/s   vs plain C %.3f\n", rep.GoKinStepsPerSec, rep.RatioKinVsPlain)
			for _, sz := range sizes {
				a.human("  render %3dx%-3d camera %-8s                  %9.1f frames/s\n", sz, sz, camera, rep.RenderFPS[sz])
			}
			return a.summary(rep)
		},
	}
	f := c.Flags()
	f.StringVar(&task, "task", "reach", "task whose scene is stepped")
	f.IntVar(&steps, "steps", 500, "control steps per measurement (one episode at most)")
	f.IntVar(&repeats, "repeats", 7, "measurements per figure, one episode each (the median is reported)")
	f.IntVar(&rate, "rate", 80, "control rate (80 or 50)")
	f.IntSliceVar(&sizes, "sizes", []int{64, 128, 224}, "render sizes in pixels")
	f.StringVar(&camera, "camera", "corner", "camera to render")
	f.IntVar(&frames_, "frames", 50, "frames per render measurement")
	return c
}

// timeEpisode times up to steps calls of Env.Step under the scripted policy in one episode
// from seed, and returns the mocap targets and controls applied at each step.
func timeEpisode(e *metaworld.Env, t *metaworld.Task, seed uint64, steps int) (time.Duration, []float64, []float64, error) {
	o, err := e.Reset(seed)
	if err != nil {
		return 0, nil, nil, err
	}
	steps = min(steps, e.MaxSteps())
	nu := e.Model().NU()
	mocap := make([]float64, 0, 3*steps)
	ctrl := make([]float64, 0, nu*steps)
	var total time.Duration
	for i := 0; i < steps; i++ {
		a := t.Scripted(&o)
		start := time.Now()
		o, _, _, _, err = e.Step(a)
		total += time.Since(start)
		if err != nil {
			return 0, nil, nil, err
		}
		m := e.MocapPos()
		mocap = append(mocap, m[:]...)
		ctrl = append(ctrl, e.Data().Ctrl()...)
	}
	return total, mocap, ctrl, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
